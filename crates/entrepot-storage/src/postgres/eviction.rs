//! Eviction of remote repositories on PostgreSQL: pull times, cache sizes, the
//! least recently pulled manifests, and evicting one. All of eviction's SQL.

use async_trait::async_trait;
use entrepot_domain::{Digest, Mode};
use sqlx::Row;

use super::lifecycle::{doomed_from_row, NAMED_BY_PYTHON};
use super::{digest_col, PostgresMetadataStore};
use crate::eviction::*;
use crate::lifecycle::DoomedBlob;
use crate::metadata::{ImageRef, StoreError};

/// Blobs claimed per statement (and per hold of the lifecycle lock).
const DOOM_CHUNK: usize = 500;

/// When a manifest was last pulled: its pull record, else when it was cached.
const LAST_PULL_MS: &str = "COALESCE(p.pulled_ms,
    EXTRACT(EPOCH FROM m.create_time::TIMESTAMPTZ)::BIGINT * 1000)";

/// Manifests with their pull records.
const MANIFESTS_WITH_PULLS: &str = "manifests m
    LEFT JOIN cache_eviction_pulls p ON p.project = m.project AND p.repository = m.repository
        AND p.image = m.image AND p.manifest = m.digest";

fn usage_from_row(row: &sqlx::postgres::PgRow) -> Result<CacheUsage, StoreError> {
    Ok(CacheUsage {
        blobs: u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0),
        bytes: u64::try_from(row.try_get::<i64, _>("bytes")?).unwrap_or(0),
    })
}

#[async_trait]
impl EvictionStore for PostgresMetadataStore {
    async fn record_pulls(&self, pulls: &[PullRecord]) -> Result<(), StoreError> {
        if pulls.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for pull in pulls {
            // Only for manifests still cached: a pull recorded after an
            // eviction must not leave a row behind. A Python file's pull is
            // kept under image '' with the file's digest in column `manifest`:
            // a remote repository's for a file it links, a hosted one's for
            // a file uploaded to it (`python_files_by_sha256`, 0015).
            sqlx::query(
                "INSERT INTO cache_eviction_pulls (project, repository, image, manifest, pulled_ms)
                 SELECT $1::TEXT, $2::TEXT, $3::TEXT, $4::TEXT, $5::BIGINT WHERE EXISTS (SELECT 1 FROM manifests
                     WHERE project = $1 AND repository = $2 AND image = $3 AND digest = $4)
                   OR ($3 = $6::TEXT AND EXISTS (SELECT 1 FROM blob_links
                     WHERE project = $1 AND repository = $2 AND image = $3 AND digest = $4))
                   OR ($3 = $6::TEXT AND EXISTS (SELECT 1 FROM python_files
                     WHERE project = $1 AND repository = $2 AND sha256 = substr($4, 8)))
                 ON CONFLICT (project, repository, image, manifest)
                 DO UPDATE SET pulled_ms = GREATEST(cache_eviction_pulls.pulled_ms, excluded.pulled_ms)",
            )
            .bind(&pull.image.project)
            .bind(&pull.image.repository)
            .bind(&pull.image.image)
            .bind(pull.digest.to_string())
            .bind(pull.pulled_ms)
            .bind(PYTHON_FILES_IMAGE)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn last_pull(
        &self,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT pulled_ms FROM cache_eviction_pulls
             WHERE project = $1 AND repository = $2 AND image = $3 AND manifest = $4",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn cache_usage(&self, project: &str, repository: &str) -> Result<CacheUsage, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(b.size), 0)::BIGINT AS bytes FROM blobs b
             WHERE b.digest IN (SELECT digest FROM blob_links WHERE project = $1 AND repository = $2)",
        )
        .bind(project)
        .bind(repository)
        .fetch_one(&self.pool)
        .await?;
        usage_from_row(&row)
    }

    async fn remote_cache_usage(&self) -> Result<CacheUsage, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(b.size), 0)::BIGINT AS bytes FROM blobs b
             WHERE b.digest IN (SELECT l.digest FROM repositories r
                 JOIN blob_links l ON l.project = r.project AND l.repository = r.id
                 WHERE r.mode = $1)",
        )
        .bind(Mode::RemoteRepository.as_str())
        .fetch_one(&self.pool)
        .await?;
        usage_from_row(&row)
    }

    async fn eviction_candidates(
        &self,
        scope: &EvictionScope,
        skip: u32,
        limit: u32,
    ) -> Result<Vec<EvictionCandidate>, StoreError> {
        let (filter, project, repository) = match scope {
            EvictionScope::Repository {
                project,
                repository,
            } => (
                "m.project = $1 AND m.repository = $2",
                project.as_str(),
                repository.as_str(),
            ),
            EvictionScope::AllRemote => (
                "$1::TEXT = $1 AND EXISTS (SELECT 1 FROM repositories r
                    WHERE r.project = m.project AND r.id = m.repository AND r.mode = $2)",
                "",
                Mode::RemoteRepository.as_str(),
            ),
        };
        let rows = sqlx::query(&format!(
            "SELECT m.project, m.repository, m.image, m.digest, {LAST_PULL_MS} AS last_pull_ms
             FROM {MANIFESTS_WITH_PULLS} WHERE {filter}
             ORDER BY last_pull_ms, m.project, m.repository, m.image, m.digest
             LIMIT $3 OFFSET $4"
        ))
        .bind(project)
        .bind(repository)
        .bind(i64::from(limit))
        .bind(i64::from(skip))
        .fetch_all(&self.pool)
        .await?;
        let mut candidates = Vec::with_capacity(rows.len());
        for row in rows {
            let image = ImageRef {
                project: row.try_get("project")?,
                repository: row.try_get("repository")?,
                image: row.try_get("image")?,
            };
            let digest = digest_col(row.try_get("digest")?)?;
            let blobs: Vec<String> = sqlx::query_scalar(
                "SELECT digest FROM manifest_blobs
                 WHERE project = $1 AND repository = $2 AND image = $3 AND manifest = $4",
            )
            .bind(&image.project)
            .bind(&image.repository)
            .bind(&image.image)
            .bind(digest.to_string())
            .fetch_all(&self.pool)
            .await?;
            candidates.push(EvictionCandidate {
                image,
                digest,
                last_pull_ms: row.try_get("last_pull_ms")?,
                blobs: blobs
                    .into_iter()
                    .map(digest_col)
                    .collect::<Result<_, _>>()?,
            });
        }
        Ok(candidates)
    }

    async fn evict_manifest(
        &self,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<EvictedManifest, StoreError> {
        let key = |q: &'static str| {
            sqlx::query(q)
                .bind(image.project.clone())
                .bind(image.repository.clone())
                .bind(image.image.clone())
                .bind(digest.to_string())
        };
        // Under the blob lifecycle lock from the start: nothing links or
        // names a blob of this image between the check and the deletes.
        let mut tx = self.collecting().await?;
        let tags: Vec<String> = key("DELETE FROM tags
             WHERE project = $1 AND repository = $2 AND image = $3 AND digest = $4 RETURNING tag")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get("tag"))
        .collect::<Result<_, _>>()?;
        for tag in &tags {
            sqlx::query(
                "DELETE FROM tag_checks WHERE project = $1 AND repository = $2 AND image = $3 AND tag = $4",
            )
            .bind(&image.project)
            .bind(&image.repository)
            .bind(&image.image)
            .bind(tag)
            .execute(&mut *tx)
            .await?;
        }
        let named: Vec<String> = key("SELECT digest FROM manifest_blobs
             WHERE project = $1 AND repository = $2 AND image = $3 AND manifest = $4")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get("digest"))
        .collect::<Result<_, _>>()?;
        // The trigger removes its manifest_blobs rows.
        let removed = key(
            "DELETE FROM manifests WHERE project = $1 AND repository = $2 AND image = $3 AND digest = $4",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        key("DELETE FROM cache_eviction_pulls
             WHERE project = $1 AND repository = $2 AND image = $3 AND manifest = $4")
        .execute(&mut *tx)
        .await?;
        let mut unlinked = Vec::new();
        for blob in named {
            let done = sqlx::query(
                "DELETE FROM blob_links
                 WHERE project = $1 AND repository = $2 AND image = $3 AND digest = $4
                   AND NOT EXISTS (SELECT 1 FROM manifest_blobs r
                       WHERE r.project = $1 AND r.repository = $2 AND r.image = $3 AND r.digest = $4)",
            )
            .bind(&image.project)
            .bind(&image.repository)
            .bind(&image.image)
            .bind(&blob)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() > 0 {
                unlinked.push(digest_col(blob)?);
            }
        }
        tx.commit().await?;
        Ok(EvictedManifest {
            removed,
            tags: tags.len() as u64,
            unlinked,
        })
    }

    async fn file_eviction_candidates(
        &self,
        scope: &EvictionScope,
        skip: u32,
        limit: u32,
    ) -> Result<Vec<FileCandidate>, StoreError> {
        let (filter, project, repository) = match scope {
            EvictionScope::Repository {
                project,
                repository,
            } => (
                "l.project = $1 AND l.repository = $2",
                project.as_str(),
                repository.as_str(),
            ),
            EvictionScope::AllRemote => ("$1::TEXT = $1 AND $2::TEXT = $2", "", ""),
        };
        // Linked files of remote repositories that a page listed (metadata
        // files extracted from them are linked too, and stay).
        let rows = sqlx::query(&format!(
            "SELECT l.project, l.repository, l.digest,
                    COALESCE(p.pulled_ms, l.link_time * 1000) AS last_pull_ms
             FROM blob_links l
             JOIN repositories r ON r.project = l.project AND r.id = l.repository AND r.mode = $3
             LEFT JOIN cache_eviction_pulls p ON p.project = l.project
                 AND p.repository = l.repository AND p.image = l.image AND p.manifest = l.digest
             WHERE l.image = $4 AND {filter}
               AND EXISTS (SELECT 1 FROM python_remote_files f
                   WHERE f.project = l.project AND f.repository = l.repository
                     AND f.sha256 = substr(l.digest, 8))
             ORDER BY last_pull_ms, l.project, l.repository, l.digest
             LIMIT $5 OFFSET $6"
        ))
        .bind(project)
        .bind(repository)
        .bind(Mode::RemoteRepository.as_str())
        .bind(PYTHON_FILES_IMAGE)
        .bind(i64::from(limit))
        .bind(i64::from(skip))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(FileCandidate {
                    project: row.try_get("project")?,
                    repository: row.try_get("repository")?,
                    digest: digest_col(row.try_get("digest")?)?,
                    last_pull_ms: row.try_get("last_pull_ms")?,
                })
            })
            .collect()
    }

    async fn evict_file(&self, file: &FileCandidate) -> Result<bool, StoreError> {
        let key = |q: &'static str| {
            sqlx::query(q)
                .bind(file.project.clone())
                .bind(file.repository.clone())
                .bind(PYTHON_FILES_IMAGE)
                .bind(file.digest.to_string())
        };
        // Removing a link never makes a claimed blob linked again, so this
        // needs no lifecycle lock; the bytes are claimed afterwards by
        // `doom_unlinked_among`, which takes it.
        let mut tx = self.pool.begin().await?;
        let removed = key("DELETE FROM blob_links
             WHERE project = $1 AND repository = $2 AND image = $3 AND digest = $4")
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        key("DELETE FROM cache_eviction_pulls
             WHERE project = $1 AND repository = $2 AND image = $3 AND manifest = $4")
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(removed)
    }

    async fn doom_unlinked_among(&self, digests: &[Digest]) -> Result<Vec<DoomedBlob>, StoreError> {
        let mut doomed = Vec::new();
        for chunk in digests.chunks(DOOM_CHUNK) {
            let list: Vec<String> = chunk.iter().map(Digest::to_string).collect();
            // One statement per chunk: the "no link" check and the mark are
            // atomic, and a link made after it finds the blob doomed.
            let sql = format!(
                "UPDATE blobs SET doomed = 1 WHERE digest IN
                   (SELECT b.digest FROM blobs b
                    WHERE b.digest = ANY($1) AND b.doomed = 0
                      AND NOT EXISTS (SELECT 1 FROM blob_links l WHERE l.digest = b.digest)
                      AND NOT {NAMED_BY_PYTHON})
                 RETURNING digest, size"
            );
            let mut tx = self.collecting().await?;
            for row in sqlx::query(&sql).bind(list).fetch_all(&mut *tx).await? {
                doomed.push(doomed_from_row(&row)?);
            }
            tx.commit().await?;
        }
        Ok(doomed)
    }
}
