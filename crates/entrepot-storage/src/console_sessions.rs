//! Storage of the web console's signed-in sessions: in the metadata database,
//! so that every node of a cluster knows every session.

use async_trait::async_trait;

use crate::metadata::StoreError;

/// One signed-in session.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleSessionRecord {
    /// Hex SHA-256 of the session cookie's value (the value is not stored).
    pub id_hash: String,
    /// The member who signed in (`user:...`, `serviceAccount:...`).
    pub principal: String,
    /// Signed in with a read-only token.
    pub read_only: bool,
    /// The personal access token signed in with (`None` for a password).
    pub token_id: Option<String>,
    /// The token every form of the session carries.
    pub csrf_token: String,
    /// Unix seconds of the sign-in.
    pub create_time: i64,
    /// Unix seconds after which the session is refused.
    pub expire_time: i64,
}

impl std::fmt::Debug for ConsoleSessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSessionRecord")
            .field("principal", &self.principal)
            .field("read_only", &self.read_only)
            .field("expire_time", &self.expire_time)
            .finish_non_exhaustive()
    }
}

/// Where console sessions live.
#[async_trait]
pub trait ConsoleSessionStore: Send + Sync + 'static {
    /// Store a new session.
    async fn insert_console_session(
        &self,
        session: &ConsoleSessionRecord,
    ) -> Result<(), StoreError>;

    /// The session whose cookie hashes to `id_hash`, expired or not.
    async fn get_console_session(
        &self,
        id_hash: &str,
    ) -> Result<Option<ConsoleSessionRecord>, StoreError>;

    /// End a session (sign-out); nothing happens if it does not exist.
    async fn delete_console_session(&self, id_hash: &str) -> Result<(), StoreError>;

    /// Remove the sessions expired before `now` (unix seconds); how many.
    async fn delete_expired_console_sessions(&self, now: i64) -> Result<u64, StoreError>;
}
