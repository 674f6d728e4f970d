//! The PostgreSQL metadata store, for several servers over one database.
//!
//! This module opens the pool and runs the migrations of
//! `migrations/postgres`; each store trait is implemented in its own file,
//! with all of its SQL, as on the SQLite side. Unlike the SQLite store it
//! keeps no in-process read cache: other servers write the same rows, so
//! every lookup reads the database.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use entrepot_domain::clock::{Clock, SystemClock};
use entrepot_domain::Digest;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::metadata::StoreError;
use crate::Stores;

mod access_policy;
mod cache;
mod changes;
mod cleanup;
mod console_sessions;
mod cooldown;
mod eviction;
mod iam;
mod inventory;
mod lease;
mod lifecycle;
mod metadata;
mod python;
mod quota;
mod secrets;

/// Connections each server keeps to the database at most.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// Metadata in a PostgreSQL database, shared by every server pointed at it.
#[derive(Clone)]
pub struct PostgresMetadataStore {
    pool: PgPool,
    clock: Arc<dyn Clock>,
}

/// A digest read back from a column; a bad one means a damaged database.
fn digest_col(s: String) -> Result<Digest, StoreError> {
    Digest::from_str(&s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// An identifier read back from a column; one that does not parse means a
/// damaged database.
fn decode<T: FromStr>(text: String, what: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("{what} {text:?}: {e}")))
}

/// Whether an insert failed because the row exists: `AlreadyExists`.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Link a blob to an image (project, repository, image, digest, unix time),
/// or refresh the time of the link that exists: a re-pushed blob gets a new
/// grace period.
const LINK_BLOB: &str = "INSERT INTO blob_links (project, repository, image, digest, link_time)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (project, repository, image, digest) DO UPDATE SET link_time = excluded.link_time";

/// Record a committed blob (digest, size, RFC 3339 time); kept if it exists.
const INSERT_BLOB: &str = "INSERT INTO blobs (digest, size, create_time) VALUES ($1, $2, $3)
     ON CONFLICT (digest) DO NOTHING";

/// Fail a link in `tx` to a blob the garbage collector has claimed: its bytes
/// may be going, so no manifest may come to depend on it. `tx` holds the
/// blob lifecycle lock shared ([`lifecycle_shared`]), so the collector
/// either doomed the blob before (and this fails) or sees the link `tx`
/// makes.
async fn refuse_doomed(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    digest: &Digest,
) -> Result<(), StoreError> {
    let doomed: Option<i64> = sqlx::query_scalar("SELECT doomed FROM blobs WHERE digest = $1")
        .bind(digest.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    if doomed == Some(1) {
        return Err(StoreError::BlobBeingCollected(digest.clone()));
    }
    Ok(())
}

/// Serialize the transaction `tx` with every other one that takes the same
/// `lock` (a transaction-scoped advisory lock, released at commit or
/// rollback): for steps SQLite runs under its single writer lock.
async fn serialize(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    lock: i64,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Advisory lock keys, one per serialized step.
mod locks {
    /// Numbering new projects.
    pub const PROJECT_NUMBERS: i64 = 0x656e_7472_0001;
    /// Blob lifecycle: held shared by every transaction that links a blob or
    /// stores a manifest after checking its blobs, exclusively by each step
    /// of the garbage collector. SQLite gets the same from its single
    /// writer: a collector's "nothing links or names this blob" is never
    /// decided while a push that would link or name it is half done.
    pub const BLOB_LIFECYCLE: i64 = 0x656e_7472_0002;
    /// Quota reservations, with the project's name hashed as the second key
    /// (the two-key form of the advisory lock, apart from the keys above).
    pub const QUOTA_RESERVATIONS: i32 = 0x656e_7403;
}

/// Take the blob lifecycle lock shared in `tx` (see [`locks::BLOB_LIFECYCLE`]).
async fn lifecycle_shared(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(locks::BLOB_LIFECYCLE)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl PostgresMetadataStore {
    /// Connect to the database at `url` (`postgres://user:password@host/db`)
    /// and run migrations. Several servers may do so at once: migrations take
    /// a database-wide lock.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        Self::connect_with(options, DEFAULT_MAX_CONNECTIONS).await
    }

    /// Connect with `options`, at most `max` connections, and migrate.
    pub async fn connect_with(options: PgConnectOptions, max: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self {
            pool,
            clock: Arc::new(SystemClock),
        })
    }

    /// The same store writing `*_time` columns from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The current time as stored in `*_time` text columns.
    fn now_rfc3339(&self) -> String {
        self.clock.now_rfc3339()
    }

    /// The trait objects of every store, all over this database.
    pub fn stores(self) -> Stores {
        let store = Arc::new(self);
        Stores {
            metadata: store.clone(),
            iam: store.clone(),
            secrets: store.clone(),
            python: store.clone(),
            access_policy: store.clone(),
            lifecycle: store.clone(),
            eviction: store.clone(),
            cleanup: store.clone(),
            cache: store,
        }
    }

    /// Check the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The store contracts, each on a new database of the test server
/// (skipped when `ENTREPOT_TEST_POSTGRES_URL` is unset).
#[cfg(test)]
mod conformance {
    mod stores {
        crate::conformance::metadata_suite!(crate::testing::postgres_stores());
    }

    mod backend {
        crate::conformance::backend_suite!(async {
            let (store, db) = crate::testing::postgres_store().await?;
            let backend: crate::conformance::backend::Backend = std::sync::Arc::new(store);
            Some((backend, db))
        });
    }

    mod leases {
        crate::conformance::lease_suite!(async {
            let (store, db) = crate::testing::postgres_store().await?;
            let leases: crate::conformance::leases::Leases = std::sync::Arc::new(store);
            Some((leases, db))
        });
    }

    mod quota {
        crate::conformance::quota_suite!(async {
            let (store, db) = crate::testing::postgres_store().await?;
            let backend: crate::conformance::backend::Backend = std::sync::Arc::new(store);
            Some((backend, db))
        });
    }
}

/// A test database, or `None` to skip.
#[cfg(test)]
pub(crate) mod testing {
    pub(crate) use crate::testing::postgres_store as store;
}
