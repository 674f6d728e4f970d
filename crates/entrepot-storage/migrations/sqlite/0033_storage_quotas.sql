-- Storage quotas of hosted content, in bytes: one row per repository, and
-- one per project with `repository` = '' (the project's total).
CREATE TABLE storage_quotas (
    project    TEXT NOT NULL,
    repository TEXT NOT NULL,
    bytes      INTEGER NOT NULL,
    PRIMARY KEY (project, repository)
);

CREATE TRIGGER storage_quotas_on_repository_delete AFTER DELETE ON repositories
BEGIN
    DELETE FROM storage_quotas WHERE project = OLD.project AND repository = OLD.id;
END;
