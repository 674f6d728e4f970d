-- Indexes that let every admin listing read one keyset page
-- (`WHERE key > ? ORDER BY key LIMIT n`) by seeking, not by scanning.

-- Service accounts of a project, by e-mail.
CREATE INDEX iam_service_accounts_by_project ON iam_service_accounts (project, email);

-- Tokens of a principal, newest first, ties by id. Covers lookups by
-- principal alone, so the older index goes.
CREATE INDEX iam_tokens_by_principal_newest ON iam_tokens (principal, create_time DESC, id);
DROP INDEX iam_tokens_by_principal;

-- A project's audit log, newest first, without a resource filter.
CREATE INDEX secret_audit_log_by_project ON secret_audit_log (project, seq);
