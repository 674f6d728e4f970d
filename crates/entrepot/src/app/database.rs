//! The metadata database of an application: the SQLite file of the data
//! directory (the default, one server, the directory locked), or the
//! PostgreSQL database of `database_url` (shared by every server on it).

use std::sync::Arc;

use entrepot_storage::{PostgresMetadataStore, ReadCacheStats, SqliteMetadataStore};

use super::error::{BuildError, Step as _};
use super::first_start;
use crate::config::Config;
use crate::data_dir_lock::DataDirLock;

/// The open metadata database, closed by the application's `shutdown`.
#[derive(Clone)]
pub(super) enum Database {
    /// `<data_dir>/metadata.db`.
    Sqlite(Arc<SqliteMetadataStore>),
    /// The database of `database_url`.
    Postgres(Arc<PostgresMetadataStore>),
}

impl Database {
    /// Open the database `config` names (migrating it). SQLite first locks
    /// the data directory, and the lock is returned to be held for as long
    /// as the server runs.
    pub(super) async fn open(config: &Config) -> Result<(Self, Option<DataDirLock>), BuildError> {
        if let Some(url) = &config.database_url {
            let store = PostgresMetadataStore::connect(url.expose())
                .await
                .step(|| format!("cannot open the metadata database {url}"))?;
            tracing::info!(database = %url, "metadata in PostgreSQL");
            return Ok((Self::Postgres(Arc::new(store)), None));
        }
        let lock = DataDirLock::acquire(&config.data_dir).map_err(BuildError::other)?;
        let db_path = config.data_dir.join("metadata.db");
        first_start::private_database_file(&db_path)
            .step(|| format!("cannot create {}", db_path.display()))?;
        let sqlite = Arc::new(
            SqliteMetadataStore::open(&db_path)
                .await
                .step(|| "cannot open the metadata database")?
                .with_read_cache_bytes(config.read_cache_bytes),
        );
        sqlite.spawn_wal_checkpoints();
        Ok((Self::Sqlite(sqlite), Some(lock)))
    }

    /// The read cache's figures (SQLite only: on PostgreSQL every lookup
    /// reads the database, which other servers write too).
    pub(super) fn read_cache_stats(&self) -> Vec<ReadCacheStats> {
        match self {
            Self::Sqlite(store) => store.read_cache_stats(),
            Self::Postgres(_) => Vec::new(),
        }
    }

    /// The database as the servers sharing it coordinate through it (fill
    /// and job leases, change notices); `None` for SQLite, which has one
    /// server.
    pub(super) fn shared(&self) -> Option<Arc<PostgresMetadataStore>> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(store) => Some(store.clone()),
        }
    }

    /// Close every connection.
    pub(super) async fn close(&self) {
        match self {
            Self::Sqlite(store) => store.pool().close().await,
            Self::Postgres(store) => store.pool().close().await,
        }
    }
}
