//! Metadata of remote (pull-through) repositories: tag freshness.

use async_trait::async_trait;
use entrepot_domain::Tag;

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
}
