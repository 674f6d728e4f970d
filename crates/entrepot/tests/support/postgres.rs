//! PostgreSQL for the servers of a test: a new database on the server named
//! by `ENTREPOT_TEST_POSTGRES_URL`, dropped when the last server using it
//! is. `ENTREPOT_TEST_BACKEND=postgres` starts every server of every test
//! on one of its own.

use std::sync::Arc;

pub use entrepot_storage::testing::{TestDatabase, TEST_POSTGRES_URL_VAR};

/// The environment variable that puts every test server on PostgreSQL.
pub const TEST_BACKEND_VAR: &str = "ENTREPOT_TEST_BACKEND";

/// A new database on the test server, or `None` (after printing why) when
/// `ENTREPOT_TEST_POSTGRES_URL` is unset: the test is skipped.
pub fn postgres_database() -> Option<Arc<TestDatabase>> {
    match TestDatabase::create_blocking() {
        Ok(db) => db.map(Arc::new),
        Err(e) => panic!("{TEST_POSTGRES_URL_VAR} is set, but no test database: {e}"),
    }
}

/// Whether `ENTREPOT_TEST_BACKEND=postgres` asks for every server on
/// PostgreSQL.
pub fn every_server_on_postgres() -> bool {
    std::env::var(TEST_BACKEND_VAR).is_ok_and(|v| v.starts_with("postgres"))
}
