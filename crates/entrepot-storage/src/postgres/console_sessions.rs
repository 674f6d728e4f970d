//! Console sessions on PostgreSQL: one row per signed-in session, keyed by the
//! hash of its cookie.

use async_trait::async_trait;
use sqlx::Row;

use super::PostgresMetadataStore;
use crate::console_sessions::{ConsoleSessionRecord, ConsoleSessionStore};
use crate::metadata::StoreError;

#[async_trait]
impl ConsoleSessionStore for PostgresMetadataStore {
    async fn insert_console_session(
        &self,
        session: &ConsoleSessionRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, principal, read_only, token_id, csrf_token, create_time, expire_time) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&session.id_hash)
        .bind(&session.principal)
        .bind(i64::from(session.read_only))
        .bind(&session.token_id)
        .bind(&session.csrf_token)
        .bind(session.create_time)
        .bind(session.expire_time)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn get_console_session(
        &self,
        id_hash: &str,
    ) -> Result<Option<ConsoleSessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id_hash, principal, read_only, token_id, csrf_token, create_time, expire_time FROM console_sessions WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(ConsoleSessionRecord {
            id_hash: row.try_get("id_hash")?,
            principal: row.try_get("principal")?,
            read_only: row.try_get::<i64, _>("read_only")? != 0,
            token_id: row.try_get("token_id")?,
            csrf_token: row.try_get("csrf_token")?,
            create_time: row.try_get("create_time")?,
            expire_time: row.try_get("expire_time")?,
        }))
    }

    async fn delete_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn delete_expired_console_sessions(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE expire_time < $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
