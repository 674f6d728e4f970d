-- When a remote repository last confirmed a tag with its upstream.
CREATE TABLE tag_checks (
    project    TEXT NOT NULL,
    repository TEXT NOT NULL,
    image      TEXT NOT NULL,
    tag        TEXT NOT NULL,
    checked_at INTEGER NOT NULL,
    PRIMARY KEY (project, repository, image, tag)
);
