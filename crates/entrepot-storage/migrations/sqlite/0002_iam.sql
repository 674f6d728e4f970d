-- IAM: local users, service accounts, personal access tokens and IAM policies.

CREATE TABLE iam_users (
    email         TEXT PRIMARY KEY NOT NULL,
    -- PHC string of an argon2id hash; NULL for users who only use tokens.
    password_hash TEXT,
    create_time   TEXT NOT NULL
);

CREATE TABLE iam_service_accounts (
    email        TEXT PRIMARY KEY NOT NULL,
    project      TEXT NOT NULL REFERENCES projects(id),
    account_id   TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    create_time  TEXT NOT NULL,
    UNIQUE (project, account_id)
);

-- Only the SHA-256 of a token is kept; the token itself is shown once.
CREATE TABLE iam_tokens (
    id             TEXT PRIMARY KEY NOT NULL,
    principal      TEXT NOT NULL,
    token_hash     TEXT NOT NULL UNIQUE,
    description    TEXT NOT NULL DEFAULT '',
    expire_time    INTEGER,
    read_only      INTEGER NOT NULL DEFAULT 0,
    revoked        INTEGER NOT NULL DEFAULT 0,
    create_time    TEXT NOT NULL,
    last_used_time TEXT
);
CREATE INDEX iam_tokens_by_principal ON iam_tokens (principal);

-- One policy per resource name: `organization`, `projects/p`,
-- `projects/p/repositories/r`, `projects/p/secrets/s`.
CREATE TABLE iam_policies (
    resource    TEXT PRIMARY KEY NOT NULL,
    bindings    TEXT NOT NULL,
    etag        TEXT NOT NULL,
    update_time TEXT NOT NULL
);
