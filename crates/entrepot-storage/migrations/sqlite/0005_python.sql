-- Index pages of remote Python repositories, exactly as the upstream sent them.
-- `name` is the normalised project name, or '' for the project list.
CREATE TABLE python_index_pages (
    project      TEXT NOT NULL,
    repository   TEXT NOT NULL,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content      BLOB NOT NULL,
    fetched_at   INTEGER NOT NULL,
    PRIMARY KEY (project, repository, name)
);

-- Where the files of remote Python repositories come from, learnt from index pages.
-- `metadata_sha256` is the upstream's metadata file, or the one entrepot
-- extracted from the cached wheel when the upstream has none.
CREATE TABLE python_remote_files (
    project         TEXT NOT NULL,
    repository      TEXT NOT NULL,
    name            TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    filename        TEXT NOT NULL,
    url             TEXT NOT NULL,
    metadata_sha256 TEXT,
    PRIMARY KEY (project, repository, sha256, filename)
);
CREATE INDEX python_remote_files_by_name ON python_remote_files (project, repository, name);

-- Files uploaded to standard (hosted) Python repositories.
CREATE TABLE python_files (
    project         TEXT NOT NULL,
    repository      TEXT NOT NULL,
    filename        TEXT NOT NULL,
    name            TEXT NOT NULL,
    version         TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    size            INTEGER NOT NULL,
    requires_python TEXT,
    metadata_sha256 TEXT,
    yanked          INTEGER NOT NULL DEFAULT 0,
    yanked_reason   TEXT,
    upload_time     TEXT NOT NULL,
    PRIMARY KEY (project, repository, filename)
);
CREATE INDEX python_files_by_name ON python_files (project, repository, name);
