//! Garbage collection on PostgreSQL: link pruning, dooming, and the checked
//! manifest push. All of the collector's SQL.

use async_trait::async_trait;
use entrepot_domain::Digest;
use sqlx::Row;

use super::metadata::insert_manifest;
use super::{digest_col, PostgresMetadataStore};
use crate::lifecycle::*;
use crate::metadata::{ImageRef, ManifestRecord, StoreError};

/// Digests bound per statement, well under PostgreSQL's parameter limit.
const BIND_CHUNK: usize = 500;

/// A link no manifest of its image names, made before `$1`, in a repository
/// of OCI images (Python repositories link files that no manifest names).
const UNREFERENCED_LINK: &str = "l.link_time <= $1
    AND l.image <> ''
    AND NOT EXISTS (SELECT 1 FROM manifest_blobs r
        WHERE r.project = l.project AND r.repository = l.repository
          AND r.image = l.image AND r.digest = l.digest)";

/// A blob that a hosted Python file names (its file or its metadata file):
/// those are kept without a link.
pub(super) const NAMED_BY_PYTHON: &str = "EXISTS (SELECT 1 FROM python_files f
        WHERE 'sha256:' || f.sha256 = b.digest OR 'sha256:' || f.metadata_sha256 = b.digest)";

pub(super) fn doomed_from_row(row: &sqlx::postgres::PgRow) -> Result<DoomedBlob, StoreError> {
    Ok(DoomedBlob {
        digest: digest_col(row.try_get("digest")?)?,
        size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
    })
}

#[async_trait]
impl LifecycleStore for PostgresMetadataStore {
    async fn put_manifest_checked(
        &self,
        image: &ImageRef,
        manifest: &ManifestRecord,
        tag: Option<&str>,
        blobs: &[Digest],
    ) -> Result<CheckedPut, StoreError> {
        let now = self.now_rfc3339();
        // The check and the insert under the blob lifecycle lock, so the
        // collector cannot drop a link or doom a blob in between.
        let mut tx = self.pool.begin().await?;
        super::lifecycle_shared(&mut tx).await?;
        for digest in blobs {
            let live: Option<i64> = sqlx::query_scalar(
                "SELECT 1::BIGINT FROM blob_links l JOIN blobs b ON b.digest = l.digest
                 WHERE l.project = $1 AND l.repository = $2 AND l.image = $3 AND l.digest = $4
                   AND b.doomed = 0",
            )
            .bind(&image.project)
            .bind(&image.repository)
            .bind(&image.image)
            .bind(digest.to_string())
            .fetch_optional(&mut *tx)
            .await?;
            if live.is_none() {
                return Ok(CheckedPut::MissingBlob(digest.clone()));
            }
        }
        insert_manifest(&mut tx, image, manifest, tag, &now).await?;
        tx.commit().await?;
        Ok(CheckedPut::Stored)
    }

    async fn drop_unreferenced_links(&self, cutoff: i64, limit: u32) -> Result<u64, StoreError> {
        let mut tx = self.collecting().await?;
        let done = sqlx::query(&format!(
            "DELETE FROM blob_links WHERE ctid IN
               (SELECT l.ctid FROM blob_links l WHERE {UNREFERENCED_LINK} LIMIT $2)"
        ))
        .bind(cutoff)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn doom_unlinked_blobs(&self, limit: u32) -> Result<Vec<DoomedBlob>, StoreError> {
        // One statement: the "no link" check and the mark are atomic, and a
        // link made after it finds the blob doomed.
        let mut tx = self.collecting().await?;
        let rows = sqlx::query(&format!(
            "UPDATE blobs SET doomed = 1 WHERE digest IN
               (SELECT b.digest FROM blobs b
                WHERE b.doomed = 0
                  AND NOT EXISTS (SELECT 1 FROM blob_links l WHERE l.digest = b.digest)
                  AND NOT {NAMED_BY_PYTHON}
                LIMIT $1)
             RETURNING digest, size"
        ))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(doomed_from_row).collect()
    }

    async fn doomed_blobs(
        &self,
        after: Option<&Digest>,
        limit: u32,
    ) -> Result<Vec<DoomedBlob>, StoreError> {
        let rows = sqlx::query(
            "SELECT digest, size FROM blobs WHERE doomed = 1 AND digest > $1 ORDER BY digest LIMIT $2",
        )
        .bind(after.map(ToString::to_string).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(doomed_from_row).collect()
    }

    async fn forget_doomed_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM blobs WHERE digest = $1 AND doomed = 1")
            .bind(digest.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn forget_doomed_blobs(&self, digests: &[Digest]) -> Result<Vec<Digest>, StoreError> {
        let mut forgotten = Vec::with_capacity(digests.len());
        for chunk in digests.chunks(BIND_CHUNK) {
            let list: Vec<String> = chunk.iter().map(Digest::to_string).collect();
            let query = sqlx::query_scalar::<_, String>(
                "DELETE FROM blobs WHERE doomed = 1 AND digest = ANY($1) RETURNING digest",
            )
            .bind(list);
            for digest in query.fetch_all(&self.pool).await? {
                forgotten.push(digest_col(digest)?);
            }
        }
        Ok(forgotten)
    }

    async fn orphans_among(&self, files: &[DoomedBlob]) -> Result<Vec<DoomedBlob>, StoreError> {
        let mut orphans = Vec::new();
        for file in files {
            let known: Option<i64> = sqlx::query_scalar(&format!(
                "SELECT 1::BIGINT WHERE EXISTS (SELECT 1 FROM blobs WHERE digest = $1)
                    OR EXISTS (SELECT 1 FROM (SELECT $1::TEXT AS digest) b WHERE {NAMED_BY_PYTHON})"
            ))
            .bind(file.digest.to_string())
            .fetch_optional(&self.pool)
            .await?;
            if known.is_none() {
                orphans.push(file.clone());
            }
        }
        Ok(orphans)
    }

    async fn claim_orphans(&self, files: &[DoomedBlob]) -> Result<Vec<DoomedBlob>, StoreError> {
        let now = self.now_rfc3339();
        let mut tx = self.collecting().await?;
        let mut claimed = Vec::new();
        for file in files {
            let done = sqlx::query(&format!(
                "INSERT INTO blobs (digest, size, create_time, doomed)
                 SELECT $1::TEXT, $2::BIGINT, $3::TEXT, 1 WHERE NOT EXISTS
                     (SELECT 1 FROM (SELECT $1::TEXT AS digest) b WHERE {NAMED_BY_PYTHON})
                 ON CONFLICT (digest) DO NOTHING"
            ))
            .bind(file.digest.to_string())
            .bind(i64::try_from(file.size).unwrap_or(i64::MAX))
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                claimed.push(file.clone());
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn count_collectable(&self, cutoff: i64) -> Result<CollectableCount, StoreError> {
        let links: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM blob_links l WHERE {UNREFERENCED_LINK}"
        ))
        .bind(cutoff)
        .fetch_one(&self.pool)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS n, COALESCE(SUM(b.size), 0)::BIGINT AS bytes FROM blobs b
             WHERE (b.doomed = 1 OR NOT {NAMED_BY_PYTHON})
               AND NOT EXISTS (SELECT 1 FROM blob_links l
                   WHERE l.digest = b.digest AND NOT ({UNREFERENCED_LINK}))"
        ))
        .bind(cutoff)
        .fetch_one(&self.pool)
        .await?;
        Ok(CollectableCount {
            links: u64::try_from(links).unwrap_or(0),
            blobs: u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0),
            bytes: u64::try_from(row.try_get::<i64, _>("bytes")?).unwrap_or(0),
        })
    }
}

impl PostgresMetadataStore {
    /// A transaction holding the blob lifecycle lock exclusively: one step
    /// of the collector, which no link or checked push interleaves with.
    pub(super) async fn collecting(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        super::serialize(&mut tx, super::locks::BLOB_LIFECYCLE).await?;
        Ok(tx)
    }
}
