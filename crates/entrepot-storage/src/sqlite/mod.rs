//! The SQLite metadata store, the embedded default.
//!
//! This module opens the database (pool, migrations, WAL checkpoints); each
//! store trait is implemented in its own file, with all of its SQL:
//! `metadata.rs`, `iam.rs`, `secrets.rs`, `python.rs`, `access_policy.rs` and
//! `cache.rs`. `read_cache.rs` is the in-process cache those implementations
//! consult and invalidate; it is correct only because one process owns the
//! file.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use entrepot_domain::clock::{Clock, SystemClock};
use entrepot_domain::Digest;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

use crate::metadata::StoreError;
use crate::Stores;
use read_cache::ReadCache;
pub use read_cache::{ReadCacheStats, DEFAULT_READ_CACHE_BYTES};

mod access_policy;
mod cache;
mod cleanup;
mod console_sessions;
mod cooldown;
mod eviction;
mod iam;
mod inventory;
mod lifecycle;
mod metadata;
mod python;
mod quota;
mod read_cache;
mod secrets;

/// Metadata in one SQLite file (WAL mode).
///
/// IAM policy, repository and tag lookups are answered from an in-process
/// cache that every write through this store invalidates: one process owns the
/// file.
#[derive(Clone)]
pub struct SqliteMetadataStore {
    pool: SqlitePool,
    cache: Arc<ReadCache>,
    clock: Arc<dyn Clock>,
}

/// A digest read back from a column; a bad one means a damaged database.
fn digest_col(s: String) -> Result<Digest, StoreError> {
    Digest::from_str(&s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// An identifier read back from a column (a project id, a token id, a
/// member); one that does not parse means a damaged database.
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
     VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (project, repository, image, digest) DO UPDATE SET link_time = excluded.link_time";

/// Fail a link in `tx` to a blob the garbage collector has claimed: its bytes
/// may be going, so no manifest may come to depend on it.
async fn refuse_doomed(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    digest: &Digest,
) -> Result<(), StoreError> {
    let doomed: Option<i64> = sqlx::query_scalar("SELECT doomed FROM blobs WHERE digest = ?")
        .bind(digest.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    if doomed == Some(1) {
        return Err(StoreError::BlobBeingCollected(digest.clone()));
    }
    Ok(())
}

/// The size a checkpointed write-ahead log is truncated to (`journal_size_limit`).
const JOURNAL_SIZE_LIMIT_BYTES: u64 = 4 * 1024 * 1024;

/// How much of the database file each connection reads through a memory
/// map instead of `read` calls into its own 2 MiB page cache: the index
/// pages of a large store are then shared by every connection through the
/// kernel's page cache, so a lookup that misses the read cache costs a
/// B-tree walk in memory, not a system call per page.
const MMAP_SIZE_BYTES: u64 = 1024 * 1024 * 1024;

/// How often the write-ahead log is checkpointed and truncated.
pub const WAL_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

impl SqliteMetadataStore {
    /// Checkpoint the write-ahead log every [`WAL_CHECKPOINT_INTERVAL`] and
    /// truncate it, for as long as the store lives. SQLite's own checkpoints
    /// (every 1,000 pages, at commit) copy pages back but never shrink the
    /// file, and cannot finish while readers keep arriving, so under steady
    /// load the log would grow until restart. Needs a Tokio runtime.
    pub fn spawn_wal_checkpoints(&self) {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            // The first checkpoint comes one interval after start, not at
            // once: at start the server is creating its first records, and a
            // TRUNCATE checkpoint racing those writes on a new file can make
            // one of them fail with "database is locked".
            let mut every = tokio::time::interval_at(
                tokio::time::Instant::now() + WAL_CHECKPOINT_INTERVAL,
                WAL_CHECKPOINT_INTERVAL,
            );
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if pool.is_closed() {
                    return;
                }
                // TRUNCATE waits (busy timeout) for readers of old snapshots
                // to finish; new readers and writers proceed meanwhile or
                // right after, as reads never wait for a checkpoint.
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&pool)
                    .await
                {
                    tracing::warn!(error = %e, "could not checkpoint the write-ahead log");
                }
            }
        });
    }

    /// Open (creating if needed) the database file and run migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // A WAL that a burst of writes grew is cut back to this size once
            // checkpointed, instead of keeping its largest size until restart.
            .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT_BYTES.to_string())
            .pragma("mmap_size", MMAP_SIZE_BYTES.to_string())
            .busy_timeout(Duration::from_secs(10));
        // Create the file, switch it to WAL and migrate it on one connection
        // before the pool opens several at once: on a new file, connections
        // racing to change the journal mode can fail with "database is locked"
        // (SQLite does not wait when waiting could deadlock). Once the file is
        // in WAL mode, the pool's connections find it so.
        let mut first = options.connect().await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut first)
            .await?;
        first.close().await?;
        Self::connect(options, 8).await
    }

    /// A private in-memory database, for unit tests.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        Self::connect(options, 1).await
    }

    async fn connect(options: SqliteConnectOptions, max: u32) -> Result<Self, StoreError> {
        if max > 1 {
            // Migrate (and switch to WAL) on one connection before the pool opens
            // others: a second connection setting the journal mode while a
            // migration holds the write lock fails with "database is locked".
            use sqlx::{ConnectOptions as _, Connection as _};
            let mut connection = options.connect().await?;
            sqlx::migrate!("./migrations/sqlite")
                .run(&mut connection)
                .await?;
            connection.close().await?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self {
            pool,
            cache: Arc::default(),
            clock: Arc::new(SystemClock),
        })
    }

    /// The same store writing `*_time` columns from `clock` (the machine's
    /// clock by default).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same store with a read cache of about `bytes` (estimated) in all
    /// instead of [`DEFAULT_READ_CACHE_BYTES`]; 0 keeps nothing, so every
    /// lookup reads the database. Call it before the store is shared: it
    /// starts an empty cache.
    pub fn with_read_cache_bytes(mut self, bytes: u64) -> Self {
        self.cache = Arc::new(ReadCache::with_budget(bytes));
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

    /// Hits and misses of the in-process read cache, per map.
    pub fn read_cache_stats(&self) -> Vec<crate::ReadCacheStats> {
        self.cache.stats()
    }

    /// Check the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The pool, for stores of other services that share this database file.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// The store contracts, on a private in-memory database (one connection) and
/// on a file opened as the server opens it (a pool, WAL).
#[cfg(test)]
mod conformance {
    mod in_memory {
        crate::conformance::metadata_suite!(async {
            (crate::testing::memory_stores().await.unwrap(), ())
        });
    }

    mod backend_in_memory {
        crate::conformance::backend_suite!(async {
            let store = crate::SqliteMetadataStore::in_memory().await.unwrap();
            let backend: crate::conformance::backend::Backend = std::sync::Arc::new(store);
            (backend, ())
        });
    }

    mod quota_in_memory {
        crate::conformance::quota_suite!(async {
            let store = crate::SqliteMetadataStore::in_memory().await.unwrap();
            let backend: crate::conformance::backend::Backend = std::sync::Arc::new(store);
            (backend, ())
        });
    }

    mod quota_on_file {
        crate::conformance::quota_suite!(async {
            let dir = tempfile::tempdir().unwrap();
            let store = crate::SqliteMetadataStore::open(&dir.path().join("metadata.db"))
                .await
                .unwrap();
            let backend: crate::conformance::backend::Backend = std::sync::Arc::new(store);
            (backend, dir)
        });
    }

    mod on_file {
        crate::conformance::metadata_suite!(async {
            let dir = tempfile::tempdir().unwrap();
            let stores = crate::testing::file_stores(dir.path()).await.unwrap();
            (stores, dir)
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::conformance::pid;

    use super::*;

    /// Every connection of a store on file reads the database through a
    /// memory map of [`MMAP_SIZE_BYTES`].
    #[tokio::test]
    async fn connections_read_the_file_through_a_memory_map() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMetadataStore::open(&dir.path().join("metadata.db"))
            .await
            .unwrap();
        for _ in 0..3 {
            let size: i64 = sqlx::query_scalar("PRAGMA mmap_size")
                .fetch_one(store.pool())
                .await
                .unwrap();
            assert_eq!(size, MMAP_SIZE_BYTES as i64);
        }
    }
    use crate::MetadataStore;
    use entrepot_domain::clock::ManualClock;

    #[tokio::test]
    async fn recorded_times_come_from_the_store_s_clock() {
        let clock = Arc::new(ManualClock::at(1_700_000_000));
        let store = SqliteMetadataStore::in_memory()
            .await
            .unwrap()
            .with_clock(clock.clone());
        let first = store.create_project(&pid("first")).await.unwrap();
        assert_eq!(first.create_time, "2023-11-14T22:13:20Z");
        clock.advance(60);
        let second = store.create_project(&pid("second")).await.unwrap();
        assert_eq!(second.create_time, "2023-11-14T22:14:20Z");
    }

    /// The tag map's (hits, misses, entries, bytes).
    fn tag_stats(store: &SqliteMetadataStore) -> (u64, u64, u64, u64) {
        let stats = store.read_cache_stats();
        let tag = stats.iter().find(|s| s.cache == "tag").unwrap();
        (tag.hits, tag.misses, tag.entries, tag.bytes)
    }

    /// A store given `budget` bytes of read cache, holding 500 tags of about
    /// 1 KB manifests in `p/r/app`, each of which has been read twice.
    async fn store_with_read_tags(budget: u64) -> SqliteMetadataStore {
        use crate::conformance::metadata::{image, manifest, repository};
        use crate::conformance::{pid, rname};
        let store = SqliteMetadataStore::in_memory()
            .await
            .unwrap()
            .with_read_cache_bytes(budget);
        store.create_project(&pid("p")).await.unwrap();
        store
            .create_repository(&rname("p", "r"), &repository("p", "r", ""))
            .await
            .unwrap();
        let app = image("p", "r", "app");
        for i in 0..500 {
            let m = manifest(&format!("{i:01000}"));
            store
                .put_manifest(&app, &m, Some(&format!("t{i}")))
                .await
                .unwrap();
        }
        for _ in 0..2 {
            for i in 0..500 {
                let found = store.manifest_by_tag(&app, &format!("t{i}")).await;
                assert!(found.unwrap().is_some(), "t{i}");
            }
        }
        store
    }

    #[tokio::test]
    async fn a_small_read_cache_stays_within_its_budget() {
        // 500 manifests of 1 KB are about 0.6 MB; the manifest map gets 4/9
        // of 110,000 bytes, room for a tenth of them, and the tag map 2/9.
        let budget = 110_000;
        let store = store_with_read_tags(budget).await;
        let (hits, misses, entries, bytes) = tag_stats(&store);
        assert!(bytes <= budget * 2 / 9, "{bytes} bytes held");
        assert!(entries > 0, "{entries} entries");
        let stats = store.read_cache_stats();
        let manifests = stats.iter().find(|s| s.cache == "manifest").unwrap();
        assert!(manifests.bytes <= budget * 4 / 9, "{manifests:?}");
        assert!(
            manifests.entries > 0 && manifests.entries < 100,
            "{manifests:?}"
        );
        assert_eq!(hits + misses, 1000);
        assert!(misses > 900, "{misses} misses");
        let held: u64 = store.read_cache_stats().iter().map(|s| s.bytes).sum();
        assert!(held <= budget, "{held} bytes held in all");

        // The default budget holds them all: the second pass only hits.
        let store = store_with_read_tags(DEFAULT_READ_CACHE_BYTES).await;
        let (hits, misses, entries, _) = tag_stats(&store);
        assert_eq!((hits, misses, entries), (500, 500, 500));
    }

    #[tokio::test]
    async fn a_read_cache_of_no_bytes_keeps_nothing_and_reads_the_database() {
        let store = store_with_read_tags(0).await;
        let (hits, misses, entries, bytes) = tag_stats(&store);
        assert_eq!((hits, misses, entries, bytes), (0, 1000, 0, 0));
        for stats in store.read_cache_stats() {
            assert_eq!((stats.hits, stats.entries), (0, 0), "{stats:?}");
        }
    }
}
