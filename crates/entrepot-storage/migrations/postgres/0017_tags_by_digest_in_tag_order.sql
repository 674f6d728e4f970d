-- A manifest's tags in lexical order along one index: "the first N tags of
-- this digest, by tag" is one seek reading only the tags it returns,
-- instead of a walk of the primary key (project, repository, image, tag)
-- that reads every tag of the image, or a sort of the digest's tags.
DROP INDEX tags_by_digest;
CREATE INDEX tags_by_digest ON tags (project, repository, image, digest, tag);
