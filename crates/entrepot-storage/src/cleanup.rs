//! The cleanup-policy and quota view of the metadata store: each
//! repository's cleanup policies, the versions they are evaluated over, the
//! deletion of a Python version, storage quotas and the reservations that
//! uploads in progress hold against them.
//!
//! Docker manifests are deleted through [`crate::MetadataStore::delete_manifest`],
//! the call the registry's manifest `DELETE` makes; this store only lists.

use async_trait::async_trait;
use entrepot_domain::{Digest, ProjectId, RepositoryName};

use crate::metadata::StoreError;

/// The stored cleanup policies of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCleanupPolicies {
    /// The validated policy list, as JSON (the REST form).
    pub policies: String,
    /// Only report what the policies would delete.
    pub dry_run: bool,
    /// RFC 3339 time they were set.
    pub update_time: String,
}

/// One manifest of a repository, as cleanup policies see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestVersion {
    /// The image (the package).
    pub image: String,
    /// Its digest (the version).
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// RFC 3339 time it was stored.
    pub create_time: String,
    /// Tags pointing at it, lexically.
    pub tags: Vec<String>,
    /// Its bytes, for indexes and manifest lists only (to read their
    /// children); `None` for image manifests.
    pub index_content: Option<Vec<u8>>,
}

/// Why a quota reservation was refused: the quota it would exceed, what is
/// stored under it and what other uploads in progress hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaShortfall {
    /// The repository whose quota it is, or `None` for the project's.
    pub repository: Option<String>,
    /// The quota in bytes.
    pub quota: u64,
    /// Bytes stored under it.
    pub usage: u64,
    /// Bytes other uploads in progress have reserved under it.
    pub reserved: u64,
}

/// What [`CleanupStore::reserve_quota`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaReservation {
    /// The bytes are reserved (or no quota applies).
    Granted,
    /// They do not fit; nothing changed.
    Refused(QuotaShortfall),
}

/// Storage of cleanup policies and quotas, and the listings cleanup needs.
#[async_trait]
pub trait CleanupStore: Send + Sync + 'static {
    /// The cleanup policies of a repository, if any were set.
    async fn cleanup_policies(
        &self,
        repo: &RepositoryName,
    ) -> Result<Option<StoredCleanupPolicies>, StoreError>;
    /// Replace the cleanup policies of a repository.
    async fn set_cleanup_policies(
        &self,
        repo: &RepositoryName,
        policies: &StoredCleanupPolicies,
    ) -> Result<(), StoreError>;
    /// Repositories with cleanup policies, by name, after `after`, at most
    /// `limit`: one keyset page.
    async fn repositories_with_cleanup_policies(
        &self,
        after: Option<&RepositoryName>,
        limit: u32,
    ) -> Result<Vec<RepositoryName>, StoreError>;
    /// Every manifest of a repository with its tags, by image and digest.
    async fn manifest_versions(
        &self,
        repo: &RepositoryName,
    ) -> Result<Vec<ManifestVersion>, StoreError>;
    /// Delete the uploaded files of one version of a Python project (the
    /// normalised name); how many went. Their bytes stay until the garbage
    /// collector finds nothing names them.
    async fn delete_python_version(
        &self,
        repo: &RepositoryName,
        name: &str,
        version: &str,
    ) -> Result<u64, StoreError>;

    /// The storage quota of a repository, or with `None` of the project
    /// (bytes), if one is set.
    async fn storage_quota(
        &self,
        project: &ProjectId,
        repository: Option<&str>,
    ) -> Result<Option<u64>, StoreError>;
    /// Set (`Some`) or remove (`None`) a storage quota.
    async fn set_storage_quota(
        &self,
        project: &ProjectId,
        repository: Option<&str>,
        bytes: Option<u64>,
    ) -> Result<(), StoreError>;
    /// Bytes the standard repositories of a project hold, counted as
    /// [`crate::MetadataStore::repository_size_bytes`] counts each.
    async fn project_hosted_bytes(&self, project: &ProjectId) -> Result<u64, StoreError>;

    /// Reserve `bytes` under the quotas of `repo` and its project for the
    /// upload `id` (replacing what `id` held), atomically against what is
    /// stored plus what every other live reservation holds, so that
    /// concurrent uploads never together pass a quota. The reservation
    /// counts until `expires_unix`; those expired at `now_unix` are dropped.
    /// Refused when, for either quota that is set, usage + the others'
    /// reservations + `bytes` would exceed it.
    async fn reserve_quota(
        &self,
        id: &str,
        repo: &RepositoryName,
        bytes: u64,
        now_unix: i64,
        expires_unix: i64,
    ) -> Result<QuotaReservation, StoreError>;
    /// Drop the reservation of upload `id` (its bytes were committed and
    /// now count as usage, or the upload ended); nothing if there is none.
    async fn release_quota(&self, id: &str) -> Result<(), StoreError>;
    /// Bytes live reservations (unexpired at `now_unix`) hold under
    /// `repository` of `project`, or with `None` under the whole project.
    async fn quota_reserved_bytes(
        &self,
        project: &ProjectId,
        repository: Option<&str>,
        now_unix: i64,
    ) -> Result<u64, StoreError>;
}
