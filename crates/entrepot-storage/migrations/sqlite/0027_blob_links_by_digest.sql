-- Finding the repositories of a project that have a blob, for a mount
-- without `from=`, without reading every link of the project.
CREATE INDEX blob_links_by_project_digest ON blob_links (project, digest, repository);
