-- The file names of an upload session's parts, in order, separated by spaces.
-- Each request writes its part under a name of its own; the part becomes the
-- session's only when the request records its name here (compare-and-swap on
-- `parts`). Sessions from before this column keep their numbered part files,
-- which an empty list stands for.
ALTER TABLE uploads ADD COLUMN part_names TEXT NOT NULL DEFAULT '';
