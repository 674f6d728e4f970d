//! The eviction side of remote repositories: when cached manifests were last
//! pulled, how much each cache holds, which manifests are the least recently
//! pulled, and evicting one (its tags, its row and the links only it needed).
//!
//! Eviction only unlinks; the bytes of blobs that nothing links any more are
//! then claimed ([`EvictionStore::doom_unlinked_among`]) and deleted by the
//! garbage collector's protocol (see `docs/lifecycle.md`).

use async_trait::async_trait;
use entrepot_domain::Digest;

use crate::lifecycle::DoomedBlob;
use crate::metadata::{ImageRef, StoreError};

/// The image name under which a remote Python repository links the files
/// it cached: a [`PullRecord`] of this image with a file's digest records a
/// download of that file, from a remote repository that links it or a
/// hosted one it was uploaded to.
pub const PYTHON_FILES_IMAGE: &str = "";

/// One pull to record: the manifest `digest` of `image`, at `pulled_ms`
/// (unix milliseconds); for a Python file, its digest under
/// [`PYTHON_FILES_IMAGE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRecord {
    /// The image.
    pub image: ImageRef,
    /// The manifest pulled.
    pub digest: Digest,
    /// When, in unix milliseconds.
    pub pulled_ms: i64,
}

/// What a cache holds: its linked blobs, each counted once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheUsage {
    /// Bytes of the blobs.
    pub bytes: u64,
    /// How many blobs.
    pub blobs: u64,
}

/// Which caches an eviction weighs: one repository, or every remote
/// repository together (the store-wide cap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvictionScope {
    /// One repository.
    Repository {
        /// Its project.
        project: String,
        /// Its id.
        repository: String,
    },
    /// Every remote repository.
    AllRemote,
}

/// A cached manifest that eviction may remove, least recently pulled first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictionCandidate {
    /// Where it is cached.
    pub image: ImageRef,
    /// Its digest.
    pub digest: Digest,
    /// When it was last pulled (or cached, if never pulled since), unix ms.
    pub last_pull_ms: i64,
    /// The blobs it names (config and layers).
    pub blobs: Vec<Digest>,
}

/// A distribution file a remote Python repository cached, that eviction
/// may remove, least recently downloaded first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCandidate {
    /// Its repository's project.
    pub project: String,
    /// Its repository.
    pub repository: String,
    /// The file's digest (`sha256:` and its sha256).
    pub digest: Digest,
    /// When it was last downloaded (or cached, if never since), unix ms.
    pub last_pull_ms: i64,
}

/// What evicting one manifest removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvictedManifest {
    /// Whether the manifest was still there.
    pub removed: bool,
    /// Tags that pointed at it.
    pub tags: u64,
    /// Links of the image that only this manifest needed, now gone: their
    /// blobs may be unlinked everywhere.
    pub unlinked: Vec<Digest>,
}

/// Storage side of eviction. Every method is one short transaction.
#[async_trait]
pub trait EvictionStore: Send + Sync + 'static {
    /// Record pulls in one transaction, keeping the latest time of each.
    async fn record_pulls(&self, pulls: &[PullRecord]) -> Result<(), StoreError>;

    /// When the manifest `digest` of `image` was last pulled (unix ms), as
    /// last flushed; `None` if no pull was recorded.
    async fn last_pull(&self, image: &ImageRef, digest: &Digest)
        -> Result<Option<i64>, StoreError>;

    /// The blobs a repository links, each once: one indexed sum.
    async fn cache_usage(&self, project: &str, repository: &str) -> Result<CacheUsage, StoreError>;

    /// The blobs every remote repository together links, each once.
    async fn remote_cache_usage(&self) -> Result<CacheUsage, StoreError>;

    /// At most `limit` manifests of `scope`, least recently pulled first,
    /// skipping the first `skip`.
    async fn eviction_candidates(
        &self,
        scope: &EvictionScope,
        skip: u32,
        limit: u32,
    ) -> Result<Vec<EvictionCandidate>, StoreError>;

    /// Remove a cached manifest in one transaction: the tags pointing at it,
    /// its row, its pull record, and the links of its image to blobs that it
    /// named and that no other manifest of the image names.
    async fn evict_manifest(
        &self,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<EvictedManifest, StoreError>;

    /// At most `limit` distribution files cached by the remote Python
    /// repositories of `scope`, least recently downloaded first, skipping
    /// the first `skip`. Extracted metadata files are not listed: they are
    /// small and a page names them.
    async fn file_eviction_candidates(
        &self,
        scope: &EvictionScope,
        skip: u32,
        limit: u32,
    ) -> Result<Vec<FileCandidate>, StoreError>;

    /// Unlink a cached Python file from its repository, with its download
    /// record, in one transaction; whether it was still linked. Its bytes
    /// then go through [`Self::doom_unlinked_among`].
    async fn evict_file(&self, file: &FileCandidate) -> Result<bool, StoreError>;

    /// Claim, among `digests`, the blobs that nothing links (nor a hosted
    /// Python file names): mark them doomed in one statement and return them,
    /// as [`crate::LifecycleStore::doom_unlinked_blobs`] does store-wide.
    async fn doom_unlinked_among(&self, digests: &[Digest]) -> Result<Vec<DoomedBlob>, StoreError>;
}
