-- Bytes held back under storage quotas for uploads in progress: one row per
-- upload (an upload session's id, or one made up for a single-request
-- push), until its bytes are committed (then they count as usage) or the
-- upload ends. A row counts only until it expires, so that one left behind
-- by a crash frees its bytes by itself.
CREATE TABLE quota_reservations (
    id           TEXT PRIMARY KEY NOT NULL,
    project      TEXT NOT NULL,
    repository   TEXT NOT NULL,
    bytes        INTEGER NOT NULL,
    expires_unix INTEGER NOT NULL
);
CREATE INDEX quota_reservations_by_repository ON quota_reservations (project, repository);
CREATE INDEX quota_reservations_by_expiry ON quota_reservations (expires_unix);

CREATE TRIGGER quota_reservations_on_repository_delete AFTER DELETE ON repositories
BEGIN
    DELETE FROM quota_reservations WHERE project = OLD.project AND repository = OLD.id;
END;
