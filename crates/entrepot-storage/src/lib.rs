//! Storage edges of entrepot.
//!
//! Two parts, each behind a trait: the [`MetadataStore`] (projects, repositories,
//! manifests, tags, upload sessions; SQLite by default, or PostgreSQL) and the [`BlobStore`]
//! (content-addressed bytes; a local directory through `object_store` by default).
//! Nothing above this crate writes SQL or touches blob paths.
//!
//! The trait modules (`metadata`, `iam`, `secrets`, `python`, `access_policy`,
//! `cache`) hold only records, errors and traits; [`sqlite`] implements them
//! all, with all of the SQL; [`postgres`] implements them all again for
//! servers that share one PostgreSQL database.

pub mod access_policy;
mod backend;
pub mod blob;
pub mod cache;
pub mod changes;
pub mod cleanup;
#[cfg(test)]
mod conformance;
pub mod console_sessions;
pub mod cooldown;
pub mod eviction;
pub mod host_needs;
pub mod iam;
pub mod inventory;
pub mod lease;
pub mod lifecycle;
pub mod metadata;
pub mod postgres;
pub mod python;
pub mod secrets;
pub mod sqlite;
mod stores;
pub mod testing;

pub use access_policy::{AccessPolicyStore, StoredAccessPolicy};
pub use backend::MetadataBackend;
pub use blob::{
    create_private_dir, BlobError, BlobStore, ByteStream, DiskSpace, LocalBlobFile,
    ObjectBlobStore, RunningHash, S3Credentials, S3Location, S3LocationError, StoredBlob,
    VerifyReport, WrittenPart,
};
pub use cache::{CacheStore, CachedReferrers};
pub use changes::Change;
pub use cleanup::{
    CleanupStore, ManifestVersion, QuotaReservation, QuotaShortfall, StoredCleanupPolicies,
};
pub use console_sessions::{ConsoleSessionRecord, ConsoleSessionStore};
pub use cooldown::{TagDigestRecord, TagDigestStore};
pub use eviction::{
    CacheUsage, EvictedManifest, EvictionCandidate, EvictionScope, EvictionStore, FileCandidate,
    PullRecord, PYTHON_FILES_IMAGE,
};
pub use host_needs::{HostNeedRecord, HostNeedStore};
pub use iam::{IamStore, ServiceAccountRecord, TokenKey, TokenRecord, UserRecord};
pub use inventory::{
    DockerImageRecord, DockerPackageRecord, DockerTagRecord, InventoryStore,
    PythonCachedFileRecord, PythonPackageRecord, PythonVersionFile,
};
pub use lease::{LeaseGrant, LeaseStore, MemoryLeases};
pub use lifecycle::{CheckedPut, CollectableCount, DoomedBlob, LifecycleStore};
pub use metadata::{
    CatalogEntry, ImageRef, ManifestRecord, MetadataStore, ProjectRecord, ReferrerRecord,
    StoreError, UploadRecord,
};
pub use postgres::PostgresMetadataStore;
pub use python::{CachedIndexPage, PythonFileRecord, PythonStore, RemoteFileRecord};
pub use secrets::{
    AuditEntry, AuditRecord, SealedPayload, SecretRecord, SecretStore, VersionRecord,
    WrappedKeyRecord,
};
pub use sqlite::{ReadCacheStats, SqliteMetadataStore, DEFAULT_READ_CACHE_BYTES};
pub use stores::Stores;
