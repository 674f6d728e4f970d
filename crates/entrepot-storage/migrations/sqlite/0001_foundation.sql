-- Projects, repositories and the OCI content model of hosted repositories.

CREATE TABLE projects (
    id          TEXT PRIMARY KEY NOT NULL,
    number      INTEGER NOT NULL UNIQUE,
    create_time TEXT NOT NULL
);

CREATE TABLE repositories (
    project       TEXT NOT NULL REFERENCES projects(id),
    id            TEXT NOT NULL,
    format        TEXT NOT NULL,
    mode          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    remote_config TEXT,
    create_time   TEXT NOT NULL,
    update_time   TEXT NOT NULL,
    PRIMARY KEY (project, id)
);

-- Every committed blob, once, by digest.
CREATE TABLE blobs (
    digest      TEXT PRIMARY KEY NOT NULL,
    size        INTEGER NOT NULL,
    create_time TEXT NOT NULL
);

-- Which blobs an image in a repository may serve (pushed or mounted there).
CREATE TABLE blob_links (
    project    TEXT NOT NULL,
    repository TEXT NOT NULL,
    image      TEXT NOT NULL,
    digest     TEXT NOT NULL REFERENCES blobs(digest),
    PRIMARY KEY (project, repository, image, digest)
);

-- Manifests, byte for byte as pushed.
CREATE TABLE manifests (
    project       TEXT NOT NULL,
    repository    TEXT NOT NULL,
    image         TEXT NOT NULL,
    digest        TEXT NOT NULL,
    media_type    TEXT NOT NULL,
    artifact_type TEXT,
    subject       TEXT,
    annotations   TEXT,
    content       BLOB NOT NULL,
    create_time   TEXT NOT NULL,
    PRIMARY KEY (project, repository, image, digest)
);
CREATE INDEX manifests_by_subject ON manifests (project, repository, image, subject);

CREATE TABLE tags (
    project     TEXT NOT NULL,
    repository  TEXT NOT NULL,
    image       TEXT NOT NULL,
    tag         TEXT NOT NULL,
    digest      TEXT NOT NULL,
    update_time TEXT NOT NULL,
    PRIMARY KEY (project, repository, image, tag)
);
CREATE INDEX tags_by_digest ON tags (project, repository, image, digest);

-- Blob upload sessions in progress; their bytes live in the blob store's staging area.
CREATE TABLE uploads (
    id          TEXT PRIMARY KEY NOT NULL,
    project     TEXT NOT NULL,
    repository  TEXT NOT NULL,
    image       TEXT NOT NULL,
    size        INTEGER NOT NULL,
    parts       INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL
);
