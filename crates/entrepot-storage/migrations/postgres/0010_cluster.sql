-- What the servers sharing this database coordinate through.

-- Leases: one server at a time does a piece of work (fills one content key
-- from its upstream, runs one background job). A lease is held by `holder`
-- until `expires_at` (the database's clock, so the servers' clocks need not
-- agree); its holder renews it while it works. `outcome`, once set, is what
-- the holder left for the others (a fill's committed blob name) until the
-- row expires.
CREATE TABLE leases (
    name       TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    holder     TEXT COLLATE "C" NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    outcome    TEXT COLLATE "C"
);
CREATE INDEX leases_by_expiry ON leases (expires_at);

-- Change notices on channel `entrepot_changes`, sent when the transaction
-- that made the change commits, so that every server drops what it keeps in
-- memory of the changed rows. The payload names what changed (see
-- `Change` in the storage crate).
CREATE FUNCTION entrepot_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('entrepot_changes', TG_ARGV[0]);
    RETURN NULL;
END;
$$;

-- A cached Python file of a repository (its link, or its extracted
-- metadata): the repository's served pages list it differently now.
CREATE FUNCTION entrepot_notify_python_file() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('entrepot_changes', 'python-files ' || NEW.project || '/' || NEW.repository);
    RETURN NULL;
END;
$$;

CREATE TRIGGER iam_users_changed AFTER INSERT OR UPDATE OR DELETE ON iam_users
    FOR EACH STATEMENT EXECUTE FUNCTION entrepot_notify_change('credentials');
CREATE TRIGGER iam_service_accounts_changed AFTER INSERT OR UPDATE OR DELETE ON iam_service_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION entrepot_notify_change('credentials');
-- Not on every update: a token's last use is written as it is used.
CREATE TRIGGER iam_tokens_changed AFTER INSERT OR DELETE OR UPDATE OF revoked, expire_time, read_only ON iam_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION entrepot_notify_change('credentials');
CREATE TRIGGER iam_policies_changed AFTER INSERT OR UPDATE OR DELETE ON iam_policies
    FOR EACH STATEMENT EXECUTE FUNCTION entrepot_notify_change('iam-policies');
CREATE TRIGGER secrets_changed AFTER INSERT OR UPDATE OR DELETE ON secrets
    FOR EACH STATEMENT EXECUTE FUNCTION entrepot_notify_change('secrets');
CREATE TRIGGER secret_versions_changed AFTER INSERT OR UPDATE OR DELETE ON secret_versions
    FOR EACH STATEMENT EXECUTE FUNCTION entrepot_notify_change('secrets');
CREATE TRIGGER access_policy_changed AFTER INSERT OR UPDATE OR DELETE ON access_policy
    FOR EACH STATEMENT EXECUTE FUNCTION entrepot_notify_change('access-policy');
CREATE TRIGGER repositories_changed AFTER INSERT OR UPDATE OR DELETE ON repositories
    FOR EACH STATEMENT EXECUTE FUNCTION entrepot_notify_change('repositories');
CREATE TRIGGER python_file_linked AFTER INSERT OR UPDATE ON blob_links
    FOR EACH ROW WHEN (NEW.image = '') EXECUTE FUNCTION entrepot_notify_python_file();
CREATE TRIGGER python_file_metadata_extracted AFTER UPDATE OF metadata_sha256 ON python_remote_files
    FOR EACH ROW EXECUTE FUNCTION entrepot_notify_python_file();
