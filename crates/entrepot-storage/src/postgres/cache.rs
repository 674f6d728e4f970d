//! Tag freshness and referrers indexes of remote repositories on PostgreSQL.

use async_trait::async_trait;
use entrepot_domain::{Digest, Tag};

use super::PostgresMetadataStore;
use crate::cache::*;
use crate::metadata::{ImageRef, StoreError};

#[async_trait]
impl CacheStore for PostgresMetadataStore {
    async fn tag_checked_at(&self, image: &ImageRef, tag: &Tag) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT checked_at FROM tag_checks WHERE project = $1 AND repository = $2 AND image = $3 AND tag = $4",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(tag.as_str())
        .fetch_optional(self.pool())
        .await?)
    }

    async fn mark_tag_checked(
        &self,
        image: &ImageRef,
        tag: &Tag,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tag_checks (project, repository, image, tag, checked_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (project, repository, image, tag) DO UPDATE SET checked_at = excluded.checked_at",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(tag.as_str())
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn referrers_index(
        &self,
        image: &ImageRef,
        subject: &Digest,
    ) -> Result<Option<CachedReferrers>, StoreError> {
        let row: Option<(Vec<u8>, i64)> = sqlx::query_as(
            "SELECT content, checked_at FROM remote_referrers
             WHERE project = $1 AND repository = $2 AND image = $3 AND subject = $4",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(subject.to_string())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(content, checked_at)| CachedReferrers {
            content,
            checked_at,
        }))
    }

    async fn put_referrers_index(
        &self,
        image: &ImageRef,
        subject: &Digest,
        content: &[u8],
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO remote_referrers (project, repository, image, subject, content, checked_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (project, repository, image, subject)
             DO UPDATE SET content = excluded.content, checked_at = excluded.checked_at",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(subject.to_string())
        .bind(content)
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
