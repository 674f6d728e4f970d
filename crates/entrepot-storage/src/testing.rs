//! Stores for the tests of the crates above this one, so that their unit
//! tests exercise the real store without naming a backend.

use std::path::Path;

use crate::{SqliteMetadataStore, StoreError, Stores};

/// Every metadata store over one private in-memory database (one
/// connection): the quick choice for unit tests.
pub async fn memory_stores() -> Result<Stores, StoreError> {
    Ok(SqliteMetadataStore::in_memory().await?.stores())
}

/// [`memory_stores`] writing their `*_time` columns from `clock`.
pub async fn memory_stores_with_clock(
    clock: std::sync::Arc<dyn entrepot_domain::clock::Clock>,
) -> Result<Stores, StoreError> {
    Ok(SqliteMetadataStore::in_memory()
        .await?
        .with_clock(clock)
        .stores())
}

/// Every metadata store over a database file in `dir`, opened as the server
/// opens it (several connections, WAL): for tests of concurrent writers.
pub async fn file_stores(dir: &Path) -> Result<Stores, StoreError> {
    Ok(SqliteMetadataStore::open(&dir.join("metadata.db"))
        .await?
        .stores())
}
