-- Downloads of hosted Python files are recorded too (cache_eviction_pulls,
-- image '' and the file's digest, as for the files a remote repository
-- cached), for the last-pull times of the inventory. A pull is recorded
-- only for a file the repository holds: one probe of this index.
CREATE INDEX python_files_by_sha256 ON python_files (project, repository, sha256);

-- A hosted file deleted (a cleanup policy, a repository deleted) takes its
-- download record with it, unless another file of the repository has the
-- same bytes; so a later upload of the same bytes starts undownloaded.
CREATE TRIGGER pull_records_on_python_file_delete AFTER DELETE ON python_files
WHEN NOT EXISTS (SELECT 1 FROM python_files
    WHERE project = OLD.project AND repository = OLD.repository AND sha256 = OLD.sha256)
BEGIN
    DELETE FROM cache_eviction_pulls
     WHERE project = OLD.project AND repository = OLD.repository
       AND image = '' AND manifest = 'sha256:' || OLD.sha256;
END;
