-- The organisation's registry access policy: one row, absent until first set
-- (the built-in default applies until then).
CREATE TABLE access_policy (
    id          INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    policy      TEXT NOT NULL,
    etag        TEXT NOT NULL,
    update_time TEXT NOT NULL
);
