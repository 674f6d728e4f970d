//! Storage of what the minimum release age of remote Docker repositories
//! needs: when each digest of an upstream tag was first seen.

use async_trait::async_trait;

use crate::metadata::{ImageRef, StoreError};

/// The digests kept per tag: older ones are forgotten first.
pub const DIGESTS_PER_TAG: i64 = 16;

/// A digest a tag pointed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagDigestRecord {
    /// The tag.
    pub tag: String,
    /// The manifest digest (`sha256:...`).
    pub digest: String,
    /// When entrepot first saw the tag point at it (unix seconds).
    pub first_seen: i64,
    /// The image config's `created` time (unix seconds), when known.
    pub created: Option<i64>,
}

/// Where first-seen times of tag digests live.
#[async_trait]
pub trait TagDigestStore: Send + Sync + 'static {
    /// Record that `tag` points at `digest` at `now`, unless it was seen
    /// before; keep at most [`DIGESTS_PER_TAG`] digests of the tag. Returns
    /// the record (its first-seen time the earliest one).
    async fn saw_tag_digest(
        &self,
        image: &ImageRef,
        tag: &str,
        digest: &str,
        now: i64,
    ) -> Result<TagDigestRecord, StoreError>;

    /// Remember the image config's `created` time of a digest (every tag's
    /// record of it).
    async fn set_digest_created(
        &self,
        image: &ImageRef,
        digest: &str,
        created: i64,
    ) -> Result<(), StoreError>;

    /// The digests `tag` pointed at, most recently first seen first.
    async fn tag_digests(
        &self,
        image: &ImageRef,
        tag: &str,
    ) -> Result<Vec<TagDigestRecord>, StoreError>;

    /// Every record of `digest` in the image (one per tag that pointed at it).
    async fn digest_records(
        &self,
        image: &ImageRef,
        digest: &str,
    ) -> Result<Vec<TagDigestRecord>, StoreError>;
}
