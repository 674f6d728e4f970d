//! First-seen times of tag digests, and host needs of the access policy, on
//! PostgreSQL.

use async_trait::async_trait;
use sqlx::Row;

use super::PostgresMetadataStore;
use crate::cooldown::{TagDigestRecord, TagDigestStore, DIGESTS_PER_TAG};
use crate::host_needs::{HostNeedRecord, HostNeedStore, MAX_HOST_NEED_ROWS};
use crate::metadata::{ImageRef, StoreError};

fn record(row: &sqlx::postgres::PgRow) -> Result<TagDigestRecord, StoreError> {
    Ok(TagDigestRecord {
        tag: row.try_get("tag")?,
        digest: row.try_get("digest")?,
        first_seen: row.try_get("first_seen")?,
        created: row.try_get("created")?,
    })
}

#[async_trait]
impl TagDigestStore for PostgresMetadataStore {
    async fn saw_tag_digest(
        &self,
        image: &ImageRef,
        tag: &str,
        digest: &str,
        now: i64,
    ) -> Result<TagDigestRecord, StoreError> {
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO cooldown_tag_digests (project, repository, image, tag, digest, first_seen)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(tag)
        .bind(digest)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted > 0 {
            // A digest the tag pointed at before, on another tag, keeps the
            // config time learnt there.
            sqlx::query(
                "UPDATE cooldown_tag_digests SET created = (
                     SELECT MIN(created) FROM cooldown_tag_digests
                     WHERE project = $1 AND repository = $2 AND image = $3 AND digest = $4)
                 WHERE project = $5 AND repository = $6 AND image = $7 AND tag = $8 AND digest = $9",
            )
            .bind(&image.project)
            .bind(&image.repository)
            .bind(&image.image)
            .bind(digest)
            .bind(&image.project)
            .bind(&image.repository)
            .bind(&image.image)
            .bind(tag)
            .bind(digest)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM cooldown_tag_digests
                 WHERE project = $1 AND repository = $2 AND image = $3 AND tag = $4 AND digest NOT IN (
                     SELECT digest FROM cooldown_tag_digests
                     WHERE project = $5 AND repository = $6 AND image = $7 AND tag = $8
                     ORDER BY first_seen DESC, digest LIMIT $9)",
            )
            .bind(&image.project)
            .bind(&image.repository)
            .bind(&image.image)
            .bind(tag)
            .bind(&image.project)
            .bind(&image.repository)
            .bind(&image.image)
            .bind(tag)
            .bind(DIGESTS_PER_TAG)
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query(
            "SELECT tag, digest, first_seen, created FROM cooldown_tag_digests
             WHERE project = $1 AND repository = $2 AND image = $3 AND tag = $4 AND digest = $5",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(tag)
        .bind(digest)
        .fetch_one(&mut *tx)
        .await?;
        let record = record(&row)?;
        tx.commit().await?;
        Ok(record)
    }

    async fn set_digest_created(
        &self,
        image: &ImageRef,
        digest: &str,
        created: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE cooldown_tag_digests SET created = $1
             WHERE project = $2 AND repository = $3 AND image = $4 AND digest = $5",
        )
        .bind(created)
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(digest)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn tag_digests(
        &self,
        image: &ImageRef,
        tag: &str,
    ) -> Result<Vec<TagDigestRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT tag, digest, first_seen, created FROM cooldown_tag_digests
             WHERE project = $1 AND repository = $2 AND image = $3 AND tag = $4
             ORDER BY first_seen DESC, digest",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(tag)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record).collect()
    }

    async fn digest_records(
        &self,
        image: &ImageRef,
        digest: &str,
    ) -> Result<Vec<TagDigestRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT tag, digest, first_seen, created FROM cooldown_tag_digests
             WHERE project = $1 AND repository = $2 AND image = $3 AND digest = $4
             ORDER BY first_seen, tag",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(digest)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record).collect()
    }
}

#[async_trait]
impl HostNeedStore for PostgresMetadataStore {
    async fn count_host_need(
        &self,
        host: &str,
        repository: &str,
        blocked: u64,
        would_block: u64,
        now: i64,
    ) -> Result<(), StoreError> {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO access_policy_host_needs (host, repository, blocked, would_block, first_time, last_time)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (host, repository) DO UPDATE SET
                 blocked = access_policy_host_needs.blocked + excluded.blocked,
                 would_block = access_policy_host_needs.would_block + excluded.would_block,
                 last_time = GREATEST(access_policy_host_needs.last_time, excluded.last_time)",
        )
        .bind(host)
        .bind(repository)
        .bind(count(blocked))
        .bind(count(would_block))
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM access_policy_host_needs WHERE ctid NOT IN (
                 SELECT ctid FROM access_policy_host_needs ORDER BY last_time DESC, host, repository LIMIT $1)",
        )
        .bind(MAX_HOST_NEED_ROWS)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn host_needs(&self) -> Result<Vec<HostNeedRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT host, repository, blocked, would_block, first_time, last_time
             FROM access_policy_host_needs ORDER BY last_time DESC, host, repository",
        )
        .fetch_all(self.pool())
        .await?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        rows.iter()
            .map(|row| {
                Ok(HostNeedRecord {
                    host: row.try_get("host")?,
                    repository: row.try_get("repository")?,
                    blocked: count(row.try_get("blocked")?),
                    would_block: count(row.try_get("would_block")?),
                    first_time: row.try_get("first_time")?,
                    last_time: row.try_get("last_time")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn image() -> ImageRef {
        ImageRef {
            project: "p".into(),
            repository: "r".into(),
            image: "app".into(),
        }
    }

    #[tokio::test]
    async fn a_digest_keeps_the_time_it_was_first_seen_and_old_ones_are_forgotten() {
        let Some((store, _db)) = crate::postgres::testing::store().await else {
            return;
        };
        let first = store
            .saw_tag_digest(&image(), "v1", "sha256:a", 100)
            .await
            .unwrap();
        assert_eq!(first.first_seen, 100);
        let again = store
            .saw_tag_digest(&image(), "v1", "sha256:a", 500)
            .await
            .unwrap();
        assert_eq!(again.first_seen, 100);
        store
            .set_digest_created(&image(), "sha256:a", 50)
            .await
            .unwrap();
        // The same digest under another tag learns the config time.
        let other = store
            .saw_tag_digest(&image(), "latest", "sha256:a", 600)
            .await
            .unwrap();
        assert_eq!(other.created, Some(50));
        for i in 0..DIGESTS_PER_TAG + 3 {
            store
                .saw_tag_digest(&image(), "v1", &format!("sha256:{i:02}"), 1000 + i)
                .await
                .unwrap();
        }
        let kept = store.tag_digests(&image(), "v1").await.unwrap();
        assert_eq!(kept.len() as i64, DIGESTS_PER_TAG);
        assert_eq!(kept[0].digest, format!("sha256:{:02}", DIGESTS_PER_TAG + 2));
        assert_eq!(
            store
                .digest_records(&image(), "sha256:a")
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn host_needs_are_counted_and_bounded() {
        let Some((store, _db)) = crate::postgres::testing::store().await else {
            return;
        };
        store
            .count_host_need("cdn.example", "projects/p/repositories/r", 0, 2, 10)
            .await
            .unwrap();
        store
            .count_host_need("cdn.example", "projects/p/repositories/r", 1, 3, 20)
            .await
            .unwrap();
        let rows = store.host_needs().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].blocked, rows[0].would_block), (1, 5));
        assert_eq!((rows[0].first_time, rows[0].last_time), (10, 20));
        for i in 0..MAX_HOST_NEED_ROWS + 5 {
            store
                .count_host_need(&format!("h{i}.example"), "", 1, 0, 100 + i)
                .await
                .unwrap();
        }
        let rows = store.host_needs().await.unwrap();
        assert_eq!(rows.len() as i64, MAX_HOST_NEED_ROWS);
        assert!(rows.iter().all(|r| r.host != "cdn.example"));
    }
}
