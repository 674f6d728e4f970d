-- The inventory lists a Python project's versions in order, with their
-- files: one index range instead of a sort of every file of the project.
CREATE INDEX inventory_python_files_by_version ON python_files (project, repository, name, version, filename);
