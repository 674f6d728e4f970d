-- The secret manager: secrets, their encrypted versions, and the access audit log.

CREATE TABLE secrets (
    project     TEXT NOT NULL REFERENCES projects(id),
    id          TEXT NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}',
    create_time TEXT NOT NULL,
    PRIMARY KEY (project, id)
);

-- One row per version. The payload is sealed with a per-version data key
-- (AES-256-GCM, associated data = the version's resource name); the data key is
-- wrapped by the master key named in key_id. Destroying a version sets the four
-- sealed columns to NULL.
CREATE TABLE secret_versions (
    project      TEXT NOT NULL,
    secret       TEXT NOT NULL,
    number       INTEGER NOT NULL,
    state        TEXT NOT NULL,
    ciphertext   BLOB,
    nonce        BLOB,
    wrapped_key  BLOB,
    key_id       TEXT,
    create_time  TEXT NOT NULL,
    destroy_time TEXT,
    PRIMARY KEY (project, secret, number),
    FOREIGN KEY (project, secret) REFERENCES secrets(project, id) ON DELETE CASCADE
);

-- Every access attempt, allowed or denied. Kept when the secret is deleted.
CREATE TABLE secret_audit_log (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    time      TEXT NOT NULL,
    project   TEXT NOT NULL,
    principal TEXT NOT NULL,
    action    TEXT NOT NULL,
    resource  TEXT NOT NULL,
    version   TEXT,
    allowed   INTEGER NOT NULL,
    reason    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX secret_audit_log_by_resource ON secret_audit_log (project, resource, seq);
