-- Virtual repositories: their members and rules (JSON, the
-- virtualRepositoryConfig resource field); NULL for other modes.
ALTER TABLE repositories ADD COLUMN virtual_config TEXT;
