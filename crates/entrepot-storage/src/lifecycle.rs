//! The garbage collector's view of the metadata store: which blobs nothing
//! links any more, claiming them for deletion, and the manifest push that
//! checks its blobs in the transaction that stores it.
//!
//! The protocol (see `docs/lifecycle.md`): a link that no manifest of its
//! image names is dropped once older than the grace period; a blob with no
//! link left is *doomed* in one transaction; a doomed blob can never be
//! linked again ([`StoreError::BlobBeingCollected`]); its bytes are deleted,
//! then its row.

use async_trait::async_trait;
use entrepot_domain::Digest;

use crate::metadata::{ImageRef, ManifestRecord, StoreError};

/// A blob the collector has claimed: its bytes may be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoomedBlob {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// What a collection would reclaim now, counted without changing anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CollectableCount {
    /// Links that would be dropped.
    pub links: u64,
    /// Blobs that would be deleted.
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// The outcome of [`LifecycleStore::put_manifest_checked`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckedPut {
    /// Stored (or already there).
    Stored,
    /// This blob is not linked to the image (any more), or is being
    /// collected: nothing was stored.
    MissingBlob(Digest),
}

/// Storage side of garbage collection. Every method is one atomic step or a
/// series of short ones, so that pushes and pulls go on meanwhile.
#[async_trait]
pub trait LifecycleStore: Send + Sync + 'static {
    /// Store a manifest as [`crate::MetadataStore::put_manifest`] does, but
    /// only if every one of `blobs` is linked to the image and not being
    /// collected, checked in the transaction that stores it: once this
    /// returns `Stored`, the manifest's references protect those blobs.
    async fn put_manifest_checked(
        &self,
        image: &ImageRef,
        manifest: &ManifestRecord,
        tag: Option<&str>,
        blobs: &[Digest],
    ) -> Result<CheckedPut, StoreError>;

    /// Drop links of OCI images that no manifest of their image names and
    /// that were made at or before `cutoff` (unix seconds), at most `limit` per
    /// call. Python repositories' links (which no manifest names) are kept.
    /// Returns how many went.
    async fn drop_unreferenced_links(&self, cutoff: i64, limit: u32) -> Result<u64, StoreError>;

    /// Claim at most `limit` blobs that nothing links (nor a hosted Python
    /// file names): mark them doomed, in one transaction, and return them.
    async fn doom_unlinked_blobs(&self, limit: u32) -> Result<Vec<DoomedBlob>, StoreError>;

    /// Blobs claimed earlier whose deletion did not finish (a crash, a
    /// failed delete), at most `limit`, after `after`.
    async fn doomed_blobs(
        &self,
        after: Option<&Digest>,
        limit: u32,
    ) -> Result<Vec<DoomedBlob>, StoreError>;

    /// Remove the row of a doomed blob whose bytes are gone; false if there
    /// was none.
    async fn forget_doomed_blob(&self, digest: &Digest) -> Result<bool, StoreError>;

    /// Remove the rows of doomed blobs whose bytes are gone, in one
    /// statement; returns those that had a row.
    async fn forget_doomed_blobs(&self, digests: &[Digest]) -> Result<Vec<Digest>, StoreError>;

    /// Among blob files the blob store lists, those no row knows (nor a
    /// hosted Python file names): orphans, left by a crash between writing
    /// bytes and recording them. Read-only (a dry run's count).
    async fn orphans_among(&self, files: &[DoomedBlob]) -> Result<Vec<DoomedBlob>, StoreError>;

    /// Claim orphan files: give each one no row knows a doomed row, in one
    /// transaction, so that a push of the same bytes meanwhile fails to link
    /// it (and retries) instead of trusting bytes about to go. Returns those
    /// claimed; their bytes may be deleted, then their rows.
    async fn claim_orphans(&self, files: &[DoomedBlob]) -> Result<Vec<DoomedBlob>, StoreError>;

    /// What a collection with this `cutoff` would reclaim, without changing
    /// anything.
    async fn count_collectable(&self, cutoff: i64) -> Result<CollectableCount, StoreError>;
}
