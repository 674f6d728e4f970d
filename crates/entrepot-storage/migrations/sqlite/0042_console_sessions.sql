-- Signed-in sessions of the web console. The cookie's value is never stored,
-- only its SHA-256; a session ends at expire_time (unix seconds) or on sign-out.
-- token_id names the personal access token it was opened with (NULL for a
-- password): the session dies with that token, as with its principal.
CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY NOT NULL,
    principal   TEXT NOT NULL,
    read_only   INTEGER NOT NULL DEFAULT 0,
    token_id    TEXT,
    csrf_token  TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    expire_time INTEGER NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expire_time);
