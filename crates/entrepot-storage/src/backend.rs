//! One bound for "a metadata backend": every store trait, implemented over
//! one database, so that the wiring can be written once for SQLite and
//! PostgreSQL.

use crate::{
    AccessPolicyStore, CacheStore, CleanupStore, ConsoleSessionStore, EvictionStore, HostNeedStore,
    IamStore, InventoryStore, LifecycleStore, MetadataStore, PythonStore, SecretStore,
    TagDigestStore,
};

/// Every store trait of the metadata: what [`crate::SqliteMetadataStore`]
/// and [`crate::PostgresMetadataStore`] both implement. A blanket impl
/// covers every type that implements them all.
pub trait MetadataBackend:
    MetadataStore
    + IamStore
    + SecretStore
    + PythonStore
    + AccessPolicyStore
    + LifecycleStore
    + EvictionStore
    + CacheStore
    + CleanupStore
    + TagDigestStore
    + HostNeedStore
    + ConsoleSessionStore
    + InventoryStore
{
}

impl<T> MetadataBackend for T where
    T: MetadataStore
        + IamStore
        + SecretStore
        + PythonStore
        + AccessPolicyStore
        + LifecycleStore
        + EvictionStore
        + CacheStore
        + CleanupStore
        + TagDigestStore
        + HostNeedStore
        + ConsoleSessionStore
        + InventoryStore
{
}

/// The backend's compile-time check: both stores implement every trait.
#[allow(dead_code)]
fn both_backends_implement_every_store() {
    fn is_backend<T: MetadataBackend>() {}
    is_backend::<crate::SqliteMetadataStore>();
    is_backend::<crate::PostgresMetadataStore>();
}
