-- Minimum release age of remote Docker repositories: when entrepot first saw
-- each digest a tag of an upstream image pointed at (unix seconds), and the
-- image config's `created` time when known. A few rows per tag: the store
-- keeps the most recent digests of each tag only.
CREATE TABLE cooldown_tag_digests (
    project    TEXT NOT NULL,
    repository TEXT NOT NULL,
    image      TEXT NOT NULL,
    tag        TEXT NOT NULL,
    digest     TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    created    INTEGER,
    PRIMARY KEY (project, repository, image, tag, digest)
);

-- A pull by digest asks whether, and since when, any tag pointed at it.
CREATE INDEX cooldown_tag_digests_by_digest
    ON cooldown_tag_digests (project, repository, image, digest);
