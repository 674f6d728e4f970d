-- What a secret carries besides its labels (replication, annotations, expiry,
-- rotation), as one JSON document the secret manager reads and writes whole;
-- and the etag that changes with every update.
ALTER TABLE secrets ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE secrets ADD COLUMN etag TEXT NOT NULL DEFAULT '"0"';
