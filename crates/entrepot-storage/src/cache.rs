//! Metadata of remote (pull-through) repositories: tag freshness.

use async_trait::async_trait;

use crate::metadata::{ImageRef, StoreError};
use crate::sqlite::SqliteMetadataStore;

/// What the remote cache engine remembers besides the cached content itself.
#[async_trait]
pub trait CacheStore: Send + Sync + 'static {
    /// When the tag was last confirmed with the upstream (unix seconds).
    async fn tag_checked_at(&self, image: &ImageRef, tag: &str) -> Result<Option<i64>, StoreError>;
    /// Record that the tag was confirmed with the upstream at `at`.
    async fn mark_tag_checked(
        &self,
        image: &ImageRef,
        tag: &str,
        at: i64,
    ) -> Result<(), StoreError>;
}

#[async_trait]
impl CacheStore for SqliteMetadataStore {
    async fn tag_checked_at(&self, image: &ImageRef, tag: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT checked_at FROM tag_checks WHERE project = ? AND repository = ? AND image = ? AND tag = ?",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(tag)
        .fetch_optional(self.pool())
        .await?)
    }

    async fn mark_tag_checked(
        &self,
        image: &ImageRef,
        tag: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tag_checks (project, repository, image, tag, checked_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (project, repository, image, tag) DO UPDATE SET checked_at = excluded.checked_at",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(tag)
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
