-- The PostgreSQL metadata schema: the end state of the SQLite migrations
-- 0001..0049 in one step, with the same tables, columns and indexes. Integer
-- columns are BIGINT and flags are 0/1 BIGINTs, as on SQLite, so that both
-- backends run the same SQL text; byte columns are BYTEA. The row-keeping
-- triggers of SQLite are PL/pgSQL functions here.

-- Projects, repositories and the OCI content model of hosted repositories.
CREATE TABLE projects (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    number      BIGINT NOT NULL UNIQUE,
    create_time TEXT COLLATE "C" NOT NULL
);

CREATE TABLE repositories (
    project        TEXT COLLATE "C" NOT NULL REFERENCES projects(id),
    id             TEXT COLLATE "C" NOT NULL,
    format         TEXT COLLATE "C" NOT NULL,
    mode           TEXT COLLATE "C" NOT NULL,
    description    TEXT COLLATE "C" NOT NULL DEFAULT '',
    remote_config  TEXT COLLATE "C",
    create_time    TEXT COLLATE "C" NOT NULL,
    update_time    TEXT COLLATE "C" NOT NULL,
    -- Virtual repositories: members and rules (JSON); NULL for other modes.
    virtual_config TEXT COLLATE "C",
    PRIMARY KEY (project, id)
);
-- The repositories to weigh against the store-wide cache cap.
CREATE INDEX cache_eviction_repositories_by_mode ON repositories (mode);

-- Every committed blob, once, by digest. `doomed` = 1 once the garbage
-- collector has claimed it: no link to it can be made from then on.
CREATE TABLE blobs (
    digest      TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    size        BIGINT NOT NULL,
    create_time TEXT COLLATE "C" NOT NULL,
    doomed      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX blobs_doomed ON blobs (doomed) WHERE doomed = 1;

-- Which blobs an image in a repository may serve (pushed or mounted there),
-- and when the link was made (unix seconds), for the grace period.
CREATE TABLE blob_links (
    project    TEXT COLLATE "C" NOT NULL,
    repository TEXT COLLATE "C" NOT NULL,
    image      TEXT COLLATE "C" NOT NULL,
    digest     TEXT COLLATE "C" NOT NULL REFERENCES blobs(digest),
    link_time  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project, repository, image, digest)
);
CREATE INDEX blob_links_by_digest ON blob_links (digest);
CREATE INDEX blob_links_by_project_digest ON blob_links (project, digest, repository);

-- Manifests, byte for byte as pushed.
CREATE TABLE manifests (
    project       TEXT COLLATE "C" NOT NULL,
    repository    TEXT COLLATE "C" NOT NULL,
    image         TEXT COLLATE "C" NOT NULL,
    digest        TEXT COLLATE "C" NOT NULL,
    media_type    TEXT COLLATE "C" NOT NULL,
    artifact_type TEXT COLLATE "C",
    subject       TEXT COLLATE "C",
    annotations   TEXT COLLATE "C",
    content       BYTEA NOT NULL,
    create_time   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project, repository, image, digest)
);
CREATE INDEX manifests_by_subject ON manifests (project, repository, image, subject);

CREATE TABLE tags (
    project     TEXT COLLATE "C" NOT NULL,
    repository  TEXT COLLATE "C" NOT NULL,
    image       TEXT COLLATE "C" NOT NULL,
    tag         TEXT COLLATE "C" NOT NULL,
    digest      TEXT COLLATE "C" NOT NULL,
    update_time TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project, repository, image, tag)
);
CREATE INDEX tags_by_digest ON tags (project, repository, image, digest);

-- Blob upload sessions in progress; their bytes live in the blob store's
-- staging area. `part_names`: the parts' file names in order, space-separated.
CREATE TABLE uploads (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    project     TEXT COLLATE "C" NOT NULL,
    repository  TEXT COLLATE "C" NOT NULL,
    image       TEXT COLLATE "C" NOT NULL,
    size        BIGINT NOT NULL,
    parts       BIGINT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    part_names  TEXT COLLATE "C" NOT NULL DEFAULT ''
);

-- The images that hold manifests, one row each, kept by a trigger on
-- `manifests`: a catalog page is an index range on `path`.
CREATE TABLE images (
    project    TEXT COLLATE "C" NOT NULL,
    repository TEXT COLLATE "C" NOT NULL,
    image      TEXT COLLATE "C" NOT NULL,
    path       TEXT COLLATE "C" NOT NULL UNIQUE,
    manifests  BIGINT NOT NULL,
    PRIMARY KEY (project, repository, image)
);

-- The blobs each stored manifest names (config, layers, an artifact's
-- blobs), kept by a trigger on `manifests` from the very bytes stored.
CREATE TABLE manifest_blobs (
    project    TEXT COLLATE "C" NOT NULL,
    repository TEXT COLLATE "C" NOT NULL,
    image      TEXT COLLATE "C" NOT NULL,
    manifest   TEXT COLLATE "C" NOT NULL,
    digest     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project, repository, image, manifest, digest)
);
CREATE INDEX manifest_blobs_by_blob ON manifest_blobs (project, repository, image, digest);

-- A manifest's bytes as JSON, or NULL when they are not JSON.
CREATE FUNCTION entrepot_manifest_json(content BYTEA) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN convert_from(content, 'UTF8')::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;

-- The elements of `list` when it is an array, none otherwise.
CREATE FUNCTION entrepot_json_elements(list JSONB) RETURNS SETOF JSONB
LANGUAGE sql IMMUTABLE AS $$
    SELECT e FROM jsonb_array_elements(
        CASE WHEN jsonb_typeof(list) = 'array' THEN list ELSE '[]'::jsonb END) AS e
$$;

CREATE FUNCTION entrepot_manifest_inserted() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
DECLARE
    doc JSONB := entrepot_manifest_json(NEW.content);
BEGIN
    INSERT INTO images (project, repository, image, path, manifests)
    VALUES (NEW.project, NEW.repository, NEW.image,
            NEW.project || '/' || NEW.repository || '/' || NEW.image, 1)
    ON CONFLICT (project, repository, image) DO UPDATE SET manifests = images.manifests + 1;
    IF doc IS NOT NULL AND jsonb_typeof(doc) = 'object' THEN
        INSERT INTO manifest_blobs (project, repository, image, manifest, digest)
        SELECT NEW.project, NEW.repository, NEW.image, NEW.digest, d
        FROM (
            SELECT doc -> 'config' ->> 'digest' AS d
            WHERE jsonb_typeof(doc -> 'config' -> 'digest') = 'string'
            UNION
            SELECT e ->> 'digest' FROM entrepot_json_elements(doc -> 'layers') e
            WHERE jsonb_typeof(e -> 'digest') = 'string'
            UNION
            SELECT e ->> 'digest' FROM entrepot_json_elements(doc -> 'blobs') e
            WHERE jsonb_typeof(e -> 'digest') = 'string'
        ) named
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION entrepot_manifest_deleted() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE images SET manifests = manifests - 1
    WHERE project = OLD.project AND repository = OLD.repository AND image = OLD.image;
    DELETE FROM images
    WHERE project = OLD.project AND repository = OLD.repository AND image = OLD.image
      AND manifests <= 0;
    DELETE FROM manifest_blobs
    WHERE project = OLD.project AND repository = OLD.repository AND image = OLD.image
      AND manifest = OLD.digest;
    -- A manifest deleted by any path (a delete, a cleanup policy, a
    -- repository deleted, an eviction) takes its pull record with it, so a
    -- later push of the same digest starts unpulled (SQLite 0047).
    DELETE FROM cache_eviction_pulls
    WHERE project = OLD.project AND repository = OLD.repository AND image = OLD.image
      AND manifest = OLD.digest;
    RETURN NULL;
END;
$$;

CREATE TRIGGER manifests_inserted AFTER INSERT ON manifests
    FOR EACH ROW EXECUTE FUNCTION entrepot_manifest_inserted();
CREATE TRIGGER manifests_deleted AFTER DELETE ON manifests
    FOR EACH ROW EXECUTE FUNCTION entrepot_manifest_deleted();

-- IAM: local users, service accounts, personal access tokens and IAM policies.
CREATE TABLE iam_users (
    email         TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    password_hash TEXT COLLATE "C",
    create_time   TEXT COLLATE "C" NOT NULL
);

CREATE TABLE iam_service_accounts (
    email        TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    project      TEXT COLLATE "C" NOT NULL REFERENCES projects(id),
    account_id   TEXT COLLATE "C" NOT NULL,
    display_name TEXT COLLATE "C" NOT NULL DEFAULT '',
    create_time  TEXT COLLATE "C" NOT NULL,
    UNIQUE (project, account_id)
);
CREATE INDEX iam_service_accounts_by_project ON iam_service_accounts (project, email);

-- Only the SHA-256 of a token is kept; the token itself is shown once.
CREATE TABLE iam_tokens (
    id             TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    principal      TEXT COLLATE "C" NOT NULL,
    token_hash     TEXT COLLATE "C" NOT NULL UNIQUE,
    description    TEXT COLLATE "C" NOT NULL DEFAULT '',
    expire_time    BIGINT,
    read_only      BIGINT NOT NULL DEFAULT 0,
    revoked        BIGINT NOT NULL DEFAULT 0,
    create_time    TEXT COLLATE "C" NOT NULL,
    last_used_time TEXT COLLATE "C"
);
CREATE INDEX iam_tokens_by_principal_newest ON iam_tokens (principal, create_time DESC, id);

CREATE TABLE iam_policies (
    resource    TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    bindings    TEXT COLLATE "C" NOT NULL,
    etag        TEXT COLLATE "C" NOT NULL,
    update_time TEXT COLLATE "C" NOT NULL
);

-- The secret manager: secrets, their encrypted versions, the audit log.
CREATE TABLE secrets (
    project     TEXT COLLATE "C" NOT NULL REFERENCES projects(id),
    id          TEXT COLLATE "C" NOT NULL,
    labels      TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    create_time TEXT COLLATE "C" NOT NULL,
    settings    TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    etag        TEXT COLLATE "C" NOT NULL DEFAULT '"0"',
    PRIMARY KEY (project, id)
);

CREATE TABLE secret_versions (
    project      TEXT COLLATE "C" NOT NULL,
    secret       TEXT COLLATE "C" NOT NULL,
    number       BIGINT NOT NULL,
    state        TEXT COLLATE "C" NOT NULL,
    ciphertext   BYTEA,
    nonce        BYTEA,
    wrapped_key  BYTEA,
    key_id       TEXT COLLATE "C",
    create_time  TEXT COLLATE "C" NOT NULL,
    destroy_time TEXT COLLATE "C",
    PRIMARY KEY (project, secret, number),
    FOREIGN KEY (project, secret) REFERENCES secrets(project, id) ON DELETE CASCADE
);

CREATE TABLE secret_audit_log (
    seq       BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    time      TEXT COLLATE "C" NOT NULL,
    project   TEXT COLLATE "C" NOT NULL,
    principal TEXT COLLATE "C" NOT NULL,
    action    TEXT COLLATE "C" NOT NULL,
    resource  TEXT COLLATE "C" NOT NULL,
    version   TEXT COLLATE "C",
    allowed   BIGINT NOT NULL,
    reason    TEXT COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX secret_audit_log_by_resource ON secret_audit_log (project, resource, seq);
CREATE INDEX secret_audit_log_by_project ON secret_audit_log (project, seq);

-- When a remote repository last confirmed a tag with its upstream.
CREATE TABLE tag_checks (
    project    TEXT COLLATE "C" NOT NULL,
    repository TEXT COLLATE "C" NOT NULL,
    image      TEXT COLLATE "C" NOT NULL,
    tag        TEXT COLLATE "C" NOT NULL,
    checked_at BIGINT NOT NULL,
    PRIMARY KEY (project, repository, image, tag)
);

-- Python: remote index pages, remote file origins, hosted files.
CREATE TABLE python_index_pages (
    project      TEXT COLLATE "C" NOT NULL,
    repository   TEXT COLLATE "C" NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    content_type TEXT COLLATE "C" NOT NULL,
    content      BYTEA NOT NULL,
    fetched_at   BIGINT NOT NULL,
    PRIMARY KEY (project, repository, name)
);

CREATE TABLE python_remote_files (
    project         TEXT COLLATE "C" NOT NULL,
    repository      TEXT COLLATE "C" NOT NULL,
    name            TEXT COLLATE "C" NOT NULL,
    sha256          TEXT COLLATE "C" NOT NULL,
    filename        TEXT COLLATE "C" NOT NULL,
    url             TEXT COLLATE "C" NOT NULL,
    metadata_sha256 TEXT COLLATE "C",
    PRIMARY KEY (project, repository, sha256, filename)
);
CREATE INDEX python_remote_files_by_name ON python_remote_files (project, repository, name);

CREATE TABLE python_files (
    project         TEXT COLLATE "C" NOT NULL,
    repository      TEXT COLLATE "C" NOT NULL,
    filename        TEXT COLLATE "C" NOT NULL,
    name            TEXT COLLATE "C" NOT NULL,
    version         TEXT COLLATE "C" NOT NULL,
    sha256          TEXT COLLATE "C" NOT NULL,
    size            BIGINT NOT NULL,
    requires_python TEXT COLLATE "C",
    metadata_sha256 TEXT COLLATE "C",
    yanked          BIGINT NOT NULL DEFAULT 0,
    yanked_reason   TEXT COLLATE "C",
    upload_time     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project, repository, filename)
);
CREATE INDEX python_files_by_name ON python_files (project, repository, name);
CREATE INDEX inventory_python_files_by_version ON python_files (project, repository, name, version, filename);

-- The organisation's registry access policy: one row, absent until first set.
CREATE TABLE access_policy (
    id          BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    policy      TEXT COLLATE "C" NOT NULL,
    etag        TEXT COLLATE "C" NOT NULL,
    update_time TEXT COLLATE "C" NOT NULL
);

-- Cleanup policies and storage quotas of repositories; both go with the
-- repository (a trigger), so a new one of the same name starts without.
CREATE TABLE cleanup_policies (
    project     TEXT COLLATE "C" NOT NULL,
    repository  TEXT COLLATE "C" NOT NULL,
    policies    TEXT COLLATE "C" NOT NULL,
    dry_run     BIGINT NOT NULL DEFAULT 0,
    update_time TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project, repository)
);

-- Quotas in bytes: one row per repository, one per project with repository ''.
CREATE TABLE storage_quotas (
    project    TEXT COLLATE "C" NOT NULL,
    repository TEXT COLLATE "C" NOT NULL,
    bytes      BIGINT NOT NULL,
    PRIMARY KEY (project, repository)
);

CREATE FUNCTION entrepot_repository_deleted() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM cleanup_policies WHERE project = OLD.project AND repository = OLD.id;
    DELETE FROM storage_quotas WHERE project = OLD.project AND repository = OLD.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER repositories_deleted AFTER DELETE ON repositories
    FOR EACH ROW EXECUTE FUNCTION entrepot_repository_deleted();

-- When each manifest was last pulled (unix ms), for eviction of remote
-- repositories and the last-pull times of the inventory; a remote Python
-- file's downloads are kept under image '' with the file's digest.
CREATE TABLE cache_eviction_pulls (
    project    TEXT COLLATE "C" NOT NULL,
    repository TEXT COLLATE "C" NOT NULL,
    image      TEXT COLLATE "C" NOT NULL,
    manifest   TEXT COLLATE "C" NOT NULL,
    pulled_ms  BIGINT NOT NULL,
    PRIMARY KEY (project, repository, image, manifest)
);

-- Minimum release age: when each digest of an upstream tag was first seen.
-- Deleted with the repository, so that one re-created under the same name
-- sees its tags' digests anew (SQLite 0045).
CREATE TABLE cooldown_tag_digests (
    project    TEXT COLLATE "C" NOT NULL,
    repository TEXT COLLATE "C" NOT NULL,
    image      TEXT COLLATE "C" NOT NULL,
    tag        TEXT COLLATE "C" NOT NULL,
    digest     TEXT COLLATE "C" NOT NULL,
    first_seen BIGINT NOT NULL,
    created    BIGINT,
    PRIMARY KEY (project, repository, image, tag, digest)
);
CREATE INDEX cooldown_tag_digests_by_digest
    ON cooldown_tag_digests (project, repository, image, digest);

-- Upstream hosts the access policy blocked (or would have), per repository.
CREATE TABLE access_policy_host_needs (
    host        TEXT COLLATE "C" NOT NULL,
    repository  TEXT COLLATE "C" NOT NULL,
    blocked     BIGINT NOT NULL,
    would_block BIGINT NOT NULL,
    first_time  BIGINT NOT NULL,
    last_time   BIGINT NOT NULL,
    PRIMARY KEY (host, repository)
);
CREATE INDEX access_policy_host_needs_by_time ON access_policy_host_needs (last_time);

-- Signed-in sessions of the web console (only the cookie's SHA-256 is kept).
CREATE TABLE console_sessions (
    id_hash     TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    principal   TEXT COLLATE "C" NOT NULL,
    read_only   BIGINT NOT NULL DEFAULT 0,
    token_id    TEXT COLLATE "C",
    csrf_token  TEXT COLLATE "C" NOT NULL,
    create_time BIGINT NOT NULL,
    expire_time BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expire_time);

-- The referrers index of a subject as a remote repository's upstream last
-- answered it (its referrers API, or the referrers tag schema's
-- `sha256-<hex>` tag), exactly as received, and when that was. Deleted with
-- the repository.
CREATE TABLE remote_referrers (
    project    TEXT COLLATE "C" NOT NULL,
    repository TEXT COLLATE "C" NOT NULL,
    image      TEXT COLLATE "C" NOT NULL,
    subject    TEXT COLLATE "C" NOT NULL,
    content    BYTEA NOT NULL,
    checked_at BIGINT NOT NULL,
    PRIMARY KEY (project, repository, image, subject)
);
