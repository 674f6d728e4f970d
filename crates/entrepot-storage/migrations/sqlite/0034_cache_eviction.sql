-- Eviction of remote repositories over their size cap: when each cached
-- manifest was last pulled (unix milliseconds). Written in batches from an
-- in-memory map, never once per request; a manifest without a row counts as
-- pulled when it was cached.
CREATE TABLE cache_eviction_pulls (
    project    TEXT NOT NULL,
    repository TEXT NOT NULL,
    image      TEXT NOT NULL,
    manifest   TEXT NOT NULL,
    pulled_ms  INTEGER NOT NULL,
    PRIMARY KEY (project, repository, image, manifest)
);

-- The repositories to weigh against the store-wide cap, without a scan of
-- every repository row.
CREATE INDEX cache_eviction_repositories_by_mode ON repositories (mode);
