-- Upstream hosts the registry access policy blocked, or would have blocked in
-- dry-run mode, per repository that needed them: what
-- `entrepot access-policy suggest` lists. Bounded: the store keeps the rows
-- seen most recently only.
CREATE TABLE access_policy_host_needs (
    host       TEXT NOT NULL,
    repository TEXT NOT NULL,
    blocked    INTEGER NOT NULL,
    would_block INTEGER NOT NULL,
    first_time INTEGER NOT NULL,
    last_time  INTEGER NOT NULL,
    PRIMARY KEY (host, repository)
);

CREATE INDEX access_policy_host_needs_by_time ON access_policy_host_needs (last_time);
