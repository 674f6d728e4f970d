-- Pull records (cache_eviction_pulls) are kept for hosted manifests too, for
-- the last-pull times of the inventory. A manifest deleted by any path (a
-- delete, a cleanup policy, a repository deleted, an eviction) takes its
-- record with it, so a later push of the same digest starts unpulled.
CREATE TRIGGER pull_records_on_manifest_delete AFTER DELETE ON manifests
BEGIN
    DELETE FROM cache_eviction_pulls
     WHERE project = OLD.project AND repository = OLD.repository
       AND image = OLD.image AND manifest = OLD.digest;
END;

-- Records left behind by manifests deleted before this trigger existed.
DELETE FROM cache_eviction_pulls
 WHERE NOT EXISTS (SELECT 1 FROM manifests m
     WHERE m.project = cache_eviction_pulls.project
       AND m.repository = cache_eviction_pulls.repository
       AND m.image = cache_eviction_pulls.image
       AND m.digest = cache_eviction_pulls.manifest);
