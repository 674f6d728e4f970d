-- Cleanup policies of repositories, in Artifact Registry's shape: the
-- validated policy list as JSON (the REST form), and whether the repository
-- only reports what its policies would delete (`cleanupPolicyDryRun`).
CREATE TABLE cleanup_policies (
    project    TEXT NOT NULL,
    repository TEXT NOT NULL,
    policies   TEXT NOT NULL,
    dry_run    INTEGER NOT NULL DEFAULT 0,
    update_time TEXT NOT NULL,
    PRIMARY KEY (project, repository)
);

-- A repository's policies go with it: a new repository of the same name
-- starts without any.
CREATE TRIGGER cleanup_policies_on_repository_delete AFTER DELETE ON repositories
BEGIN
    DELETE FROM cleanup_policies WHERE project = OLD.project AND repository = OLD.id;
END;
