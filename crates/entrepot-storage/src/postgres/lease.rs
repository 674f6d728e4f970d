//! Leases in the `leases` table, timed by the database's clock.

use std::time::Duration;

use async_trait::async_trait;

use super::PostgresMetadataStore;
use crate::lease::{LeaseGrant, LeaseStore};
use crate::metadata::StoreError;

/// Take the lease ($1) for $2 for $3 milliseconds if it is free or expired;
/// returns a row only when granted. A racing taker waits for the row lock
/// and then finds the lease unexpired: exactly one is granted.
const ACQUIRE: &str = "INSERT INTO leases (name, holder, expires_at, outcome)
     VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond', NULL)
     ON CONFLICT (name) DO UPDATE
         SET holder = excluded.holder, expires_at = excluded.expires_at, outcome = NULL
         WHERE leases.expires_at <= clock_timestamp()
     RETURNING holder";

/// Who holds an unexpired lease, and what it left.
const CURRENT: &str =
    "SELECT holder, outcome FROM leases WHERE name = $1 AND expires_at > clock_timestamp()";

/// Leases expired this long ago are deleted as fills finish: the table
/// holds roughly the fills and jobs of the last few minutes.
const PRUNE_AFTER_SECS: i64 = 600;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl LeaseStore for PostgresMetadataStore {
    async fn acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseGrant, StoreError> {
        // The lease can expire or be released between the two statements;
        // then ask again.
        for _ in 0..8 {
            let granted: Option<String> = sqlx::query_scalar(ACQUIRE)
                .bind(name)
                .bind(holder)
                .bind(millis(ttl))
                .fetch_optional(self.pool())
                .await?;
            if granted.is_some() {
                return Ok(LeaseGrant::Granted);
            }
            let current: Option<(String, Option<String>)> = sqlx::query_as(CURRENT)
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
            match current {
                Some((_, Some(outcome))) => return Ok(LeaseGrant::Done { outcome }),
                Some((holder, None)) => return Ok(LeaseGrant::Held { holder }),
                None => continue,
            }
        }
        Err(StoreError::Corrupt(format!(
            "lease {name} changed hands eight times while it was asked for"
        )))
    }

    async fn renew(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE leases SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
             WHERE name = $1 AND holder = $2 AND outcome IS NULL",
        )
        .bind(name)
        .bind(holder)
        .bind(millis(ttl))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish(
        &self,
        name: &str,
        holder: &str,
        outcome: &str,
        keep: Duration,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE leases SET outcome = $3, expires_at = clock_timestamp() + $4 * interval '1 millisecond'
             WHERE name = $1 AND holder = $2",
        )
        .bind(name)
        .bind(holder)
        .bind(outcome)
        .bind(millis(keep))
        .execute(self.pool())
        .await?;
        sqlx::query(
            "DELETE FROM leases WHERE expires_at < clock_timestamp() - $1 * interval '1 second'",
        )
        .bind(PRUNE_AFTER_SECS)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2 AND outcome IS NULL")
            .bind(name)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
