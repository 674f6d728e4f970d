-- Bytes held back under storage quotas for uploads in progress: one row per
-- upload (an upload session's id, or one made up for a single-request
-- push), until its bytes are committed (then they count as usage) or the
-- upload ends. A row counts only until it expires, so that one left behind
-- by a crash frees its bytes by itself. Reservations of one project are
-- serialized by a transaction-scoped advisory lock keyed on the project.
CREATE TABLE quota_reservations (
    id           TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    project      TEXT COLLATE "C" NOT NULL,
    repository   TEXT COLLATE "C" NOT NULL,
    bytes        BIGINT NOT NULL,
    expires_unix BIGINT NOT NULL
);
CREATE INDEX quota_reservations_by_repository ON quota_reservations (project, repository);
CREATE INDEX quota_reservations_by_expiry ON quota_reservations (expires_unix);

CREATE FUNCTION entrepot_quota_reservations_of_deleted_repository() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM quota_reservations WHERE project = OLD.project AND repository = OLD.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER quota_reservations_of_deleted_repository AFTER DELETE ON repositories
    FOR EACH ROW EXECUTE FUNCTION entrepot_quota_reservations_of_deleted_repository();
