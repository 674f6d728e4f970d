//! First-seen times of tag digests, and host needs of the access policy, on
//! SQLite.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteMetadataStore;
use crate::cooldown::{TagDigestRecord, TagDigestStore, DIGESTS_PER_TAG};
use crate::host_needs::{HostNeedRecord, HostNeedStore, MAX_HOST_NEED_ROWS};
use crate::metadata::{ImageRef, StoreError};

fn record(row: &sqlx::sqlite::SqliteRow) -> Result<TagDigestRecord, StoreError> {
    Ok(TagDigestRecord {
        tag: row.try_get("tag")?,
        digest: row.try_get("digest")?,
        first_seen: row.try_get("first_seen")?,
        created: row.try_get("created")?,
    })
}

#[async_trait]
impl TagDigestStore for SqliteMetadataStore {
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
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
                     WHERE project = ? AND repository = ? AND image = ? AND digest = ?)
                 WHERE project = ? AND repository = ? AND image = ? AND tag = ? AND digest = ?",
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
                 WHERE project = ? AND repository = ? AND image = ? AND tag = ? AND digest NOT IN (
                     SELECT digest FROM cooldown_tag_digests
                     WHERE project = ? AND repository = ? AND image = ? AND tag = ?
                     ORDER BY first_seen DESC, digest LIMIT ?)",
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
             WHERE project = ? AND repository = ? AND image = ? AND tag = ? AND digest = ?",
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
            "UPDATE cooldown_tag_digests SET created = ?
             WHERE project = ? AND repository = ? AND image = ? AND digest = ?",
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
             WHERE project = ? AND repository = ? AND image = ? AND tag = ?
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
             WHERE project = ? AND repository = ? AND image = ? AND digest = ?
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
impl HostNeedStore for SqliteMetadataStore {
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
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (host, repository) DO UPDATE SET
                 blocked = blocked + excluded.blocked,
                 would_block = would_block + excluded.would_block,
                 last_time = MAX(last_time, excluded.last_time)",
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
            "DELETE FROM access_policy_host_needs WHERE rowid NOT IN (
                 SELECT rowid FROM access_policy_host_needs ORDER BY last_time DESC, host, repository LIMIT ?)",
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
        let store = SqliteMetadataStore::in_memory().await.unwrap();
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
    async fn first_seen_times_go_with_their_repository() {
        use crate::metadata::MetadataStore;
        use entrepot_domain::{Format, Mode, Repository, RepositoryName};
        let store = SqliteMetadataStore::in_memory().await.unwrap();
        let name: RepositoryName = "projects/p/repositories/r".parse().unwrap();
        let repo = Repository {
            name: name.to_string(),
            format: Format::Docker,
            mode: Mode::RemoteRepository,
            description: String::new(),
            remote_repository_config: None,
            virtual_repository_config: None,
            create_time: "2026-01-01T00:00:00Z".into(),
            update_time: "2026-01-01T00:00:00Z".into(),
        };
        store.create_project(&name.project).await.unwrap();
        store.create_repository(&name, &repo).await.unwrap();
        let other = ImageRef {
            repository: "kept".into(),
            ..image()
        };
        for at in [&image(), &other] {
            store
                .saw_tag_digest(at, "v1", "sha256:a", 100)
                .await
                .unwrap();
        }
        assert!(store.delete_repository_with_policy(&name).await.unwrap());
        store.create_repository(&name, &repo).await.unwrap();
        assert!(store.tag_digests(&image(), "v1").await.unwrap().is_empty());
        assert!(store
            .digest_records(&image(), "sha256:a")
            .await
            .unwrap()
            .is_empty());
        // A new first sighting starts from now, not from the old repository's.
        let seen = store
            .saw_tag_digest(&image(), "v1", "sha256:a", 900)
            .await
            .unwrap();
        assert_eq!(seen.first_seen, 900);
        // Another repository's records stay.
        assert_eq!(store.tag_digests(&other, "v1").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn host_needs_are_counted_and_bounded() {
        let store = SqliteMetadataStore::in_memory().await.unwrap();
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
