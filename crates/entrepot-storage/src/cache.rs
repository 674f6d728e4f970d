//! Metadata of remote (pull-through) repositories: tag freshness and the
//! referrers indexes their upstreams answered.

use async_trait::async_trait;
use entrepot_domain::{Digest, Tag};

use crate::metadata::{ImageRef, StoreError};

/// What the remote cache engine remembers besides the cached content itself.
#[async_trait]
pub trait CacheStore: Send + Sync + 'static {
    /// When the tag was last confirmed with the upstream (unix seconds).
    async fn tag_checked_at(&self, image: &ImageRef, tag: &Tag) -> Result<Option<i64>, StoreError>;
    /// Record that the tag was confirmed with the upstream at `at`.
    async fn mark_tag_checked(
        &self,
        image: &ImageRef,
        tag: &Tag,
        at: i64,
    ) -> Result<(), StoreError>;
    /// The referrers index of `subject` the upstream last answered, if one
    /// is kept.
    async fn referrers_index(
        &self,
        image: &ImageRef,
        subject: &Digest,
    ) -> Result<Option<CachedReferrers>, StoreError>;
    /// Keep `content` as the referrers index of `subject`, confirmed by the
    /// upstream at `at` (replacing what was kept).
    async fn put_referrers_index(
        &self,
        image: &ImageRef,
        subject: &Digest,
        content: &[u8],
        at: i64,
    ) -> Result<(), StoreError>;
}

/// A referrers index a remote repository keeps for a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedReferrers {
    /// The index document, as the upstream sent it.
    pub content: Vec<u8>,
    /// When the upstream last answered it (unix seconds).
    pub checked_at: i64,
}
