//! The metadata backend as the services see it: one trait object per store.

use std::sync::Arc;

use crate::{
    AccessPolicyStore, CacheStore, CleanupStore, EvictionStore, IamStore, LifecycleStore,
    MetadataStore, PythonStore, SecretStore,
};

/// Every metadata store of one backend, all over the same database.
///
/// A backend builds it ([`crate::SqliteMetadataStore::stores`]); the wiring
/// hands each service the stores it needs, so nothing above this crate names
/// the backend.
#[derive(Clone)]
pub struct Stores {
    /// Projects, repositories, manifests, tags, blob links, upload sessions.
    pub metadata: Arc<dyn MetadataStore>,
    /// Users, service accounts, tokens and IAM policies.
    pub iam: Arc<dyn IamStore>,
    /// Secrets, their sealed versions and the audit log.
    pub secrets: Arc<dyn SecretStore>,
    /// Python index pages, file origins and uploaded files.
    pub python: Arc<dyn PythonStore>,
    /// The organisation's registry access policy.
    pub access_policy: Arc<dyn AccessPolicyStore>,
    /// Garbage collection of unlinked blobs.
    pub lifecycle: Arc<dyn LifecycleStore>,
    /// Pull times and eviction of remote caches over their size cap.
    pub eviction: Arc<dyn EvictionStore>,
    /// Tag freshness of remote repositories.
    pub cache: Arc<dyn CacheStore>,
    /// Cleanup policies and storage quotas.
    pub cleanup: Arc<dyn CleanupStore>,
}
