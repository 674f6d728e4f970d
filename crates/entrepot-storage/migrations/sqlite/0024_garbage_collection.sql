-- Garbage collection of blobs that nothing links, online.
--
-- A blob is `doomed` once the collector has found it unlinked and claimed
-- it, in the same transaction; from then on no link to it can be made
-- (`link_blob` refuses), so its bytes can be deleted and its row removed
-- without racing a push. A push that meets a doomed blob fails and is
-- retried by the client, which then stores the bytes afresh.
ALTER TABLE blobs ADD COLUMN doomed INTEGER NOT NULL DEFAULT 0;

-- When a link was made (unix seconds): a link that no manifest of its image
-- references is protected for the grace period after it, so that a push
-- that uploaded its blobs but has not yet put its manifest keeps them.
-- Links from before this column count as old.
ALTER TABLE blob_links ADD COLUMN link_time INTEGER NOT NULL DEFAULT 0;

CREATE INDEX blob_links_by_digest ON blob_links (digest);
CREATE INDEX blobs_doomed ON blobs (doomed) WHERE doomed = 1;

-- The blobs each stored manifest names (its config and layers, or an
-- artifact manifest's blobs), kept by triggers on `manifests` from the very
-- bytes stored, so that "is this link still referenced" is one index probe.
CREATE TABLE manifest_blobs (
    project    TEXT NOT NULL,
    repository TEXT NOT NULL,
    image      TEXT NOT NULL,
    manifest   TEXT NOT NULL,
    digest     TEXT NOT NULL,
    PRIMARY KEY (project, repository, image, manifest, digest)
);
CREATE INDEX manifest_blobs_by_blob ON manifest_blobs (project, repository, image, digest);

INSERT OR IGNORE INTO manifest_blobs (project, repository, image, manifest, digest)
SELECT m.project, m.repository, m.image, m.digest, json_extract(CAST(m.content AS TEXT), '$.config.digest')
FROM manifests m
WHERE json_valid(CAST(m.content AS TEXT))
  AND json_type(CAST(m.content AS TEXT), '$.config.digest') = 'text';

INSERT OR IGNORE INTO manifest_blobs (project, repository, image, manifest, digest)
SELECT m.project, m.repository, m.image, m.digest, json_extract(e.value, '$.digest')
FROM manifests m, json_each(CAST(m.content AS TEXT), '$.layers') e
WHERE json_valid(CAST(m.content AS TEXT)) AND json_type(CAST(m.content AS TEXT), '$.layers') = 'array'
  AND json_type(e.value, '$.digest') = 'text';

INSERT OR IGNORE INTO manifest_blobs (project, repository, image, manifest, digest)
SELECT m.project, m.repository, m.image, m.digest, json_extract(e.value, '$.digest')
FROM manifests m, json_each(CAST(m.content AS TEXT), '$.blobs') e
WHERE json_valid(CAST(m.content AS TEXT)) AND json_type(CAST(m.content AS TEXT), '$.blobs') = 'array'
  AND json_type(e.value, '$.digest') = 'text';

CREATE TRIGGER manifest_blobs_on_insert AFTER INSERT ON manifests
WHEN json_valid(CAST(NEW.content AS TEXT))
BEGIN
    INSERT OR IGNORE INTO manifest_blobs (project, repository, image, manifest, digest)
    SELECT NEW.project, NEW.repository, NEW.image, NEW.digest,
           json_extract(CAST(NEW.content AS TEXT), '$.config.digest')
    WHERE json_type(CAST(NEW.content AS TEXT), '$.config.digest') = 'text';
    INSERT OR IGNORE INTO manifest_blobs (project, repository, image, manifest, digest)
    SELECT NEW.project, NEW.repository, NEW.image, NEW.digest, json_extract(e.value, '$.digest')
    FROM json_each(CAST(NEW.content AS TEXT), '$.layers') e
    WHERE json_type(CAST(NEW.content AS TEXT), '$.layers') = 'array'
      AND json_type(e.value, '$.digest') = 'text';
    INSERT OR IGNORE INTO manifest_blobs (project, repository, image, manifest, digest)
    SELECT NEW.project, NEW.repository, NEW.image, NEW.digest, json_extract(e.value, '$.digest')
    FROM json_each(CAST(NEW.content AS TEXT), '$.blobs') e
    WHERE json_type(CAST(NEW.content AS TEXT), '$.blobs') = 'array'
      AND json_type(e.value, '$.digest') = 'text';
END;

CREATE TRIGGER manifest_blobs_on_delete AFTER DELETE ON manifests
BEGIN
    DELETE FROM manifest_blobs
    WHERE project = OLD.project AND repository = OLD.repository AND image = OLD.image
      AND manifest = OLD.digest;
END;
