-- The referrers index of a subject as a remote repository's upstream last
-- answered it (its referrers API, or the referrers tag schema's
-- `sha256-<hex>` tag), exactly as received, and when that was.
CREATE TABLE remote_referrers (
    project    TEXT NOT NULL,
    repository TEXT NOT NULL,
    image      TEXT NOT NULL,
    subject    TEXT NOT NULL,
    content    BLOB NOT NULL,
    checked_at INTEGER NOT NULL,
    PRIMARY KEY (project, repository, image, subject)
);
