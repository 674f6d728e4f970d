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

/// The environment variable naming a PostgreSQL server for tests: a
/// `postgres://` URL of a role that may create databases. Tests on
/// PostgreSQL are skipped, with a message, when it is unset.
pub const TEST_POSTGRES_URL_VAR: &str = "ENTREPOT_TEST_POSTGRES_URL";

/// A new, empty database on the test server of [`TEST_POSTGRES_URL_VAR`],
/// dropped (with any connection still open to it) when this is dropped.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Create a database with a random name; `None`, after printing why,
    /// when [`TEST_POSTGRES_URL_VAR`] is unset. Fails when the server
    /// cannot be reached or refuses to create it.
    pub async fn create() -> Result<Option<Self>, StoreError> {
        use sqlx::{Connection as _, Executor as _};
        let Ok(admin_url) = std::env::var(TEST_POSTGRES_URL_VAR) else {
            eprintln!(
                "skipped on PostgreSQL: {TEST_POSTGRES_URL_VAR} is not set \
                 (a postgres:// URL of a role that may create databases)"
            );
            return Ok(None);
        };
        let name = format!("entrepot_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
        admin
            .execute(format!("CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0").as_str())
            .await?;
        admin.close().await?;
        let url = with_database(&admin_url, &name);
        Ok(Some(Self {
            admin_url,
            name,
            url,
        }))
    }

    /// [`Self::create`] from synchronous code (or from inside a runtime,
    /// which cannot be blocked on): on a thread with a runtime of its own.
    pub fn create_blocking() -> Result<Option<Self>, StoreError> {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?
                .block_on(Self::create())
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// The URL of this database, for a server to connect to.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on:
        // the statement runs on a thread of its own.
        let dropped = std::thread::spawn(move || {
            use sqlx::{Connection as _, Executor as _};
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await?;
                admin.close().await?;
                Ok::<_, sqlx::Error>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// `url` (`postgres://user:password@host:port/db?options`) naming database
/// `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Every metadata store over a new database on the PostgreSQL test server,
/// with the guard that drops it; `None` (after a message) when
/// [`TEST_POSTGRES_URL_VAR`] is unset.
///
/// # Panics
/// When the variable is set but the server cannot be used: a test that
/// was asked to run on PostgreSQL fails rather than passes unseen.
pub async fn postgres_stores() -> Option<(Stores, TestDatabase)> {
    let (store, db) = postgres_store().await?;
    Some((store.stores(), db))
}

/// The PostgreSQL store itself over a new test database, as
/// [`postgres_stores`].
///
/// # Panics
/// As [`postgres_stores`].
pub async fn postgres_store() -> Option<(crate::PostgresMetadataStore, TestDatabase)> {
    let db = match TestDatabase::create().await {
        Ok(db) => db?,
        Err(e) => panic!("{TEST_POSTGRES_URL_VAR} is set, but no test database: {e}"),
    };
    match crate::PostgresMetadataStore::connect(db.url()).await {
        Ok(store) => Some((store, db)),
        Err(e) => panic!("cannot open the test database {}: {e}", db.url()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_test_database_url_names_the_new_database() {
        let cases = [
            ("postgres://u:p@h:5/postgres", "postgres://u:p@h:5/t"),
            ("postgres://u@h", "postgres://u@h/t"),
            (
                "postgres://h/x?sslmode=disable",
                "postgres://h/t?sslmode=disable",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(super::with_database(url, "t"), want);
        }
    }
}
