-- First-seen times of tag digests are deleted with their repository from now
-- on; drop those that repositories deleted earlier left behind, so that a
-- repository re-created under the same name does not inherit them.
DELETE FROM cooldown_tag_digests
 WHERE NOT EXISTS (
    SELECT 1 FROM repositories r
     WHERE r.project = cooldown_tag_digests.project
       AND r.id = cooldown_tag_digests.repository);
