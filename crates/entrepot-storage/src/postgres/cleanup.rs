//! [`CleanupStore`] on PostgreSQL: the `cleanup_policies` and `storage_quotas`
//! tables (migrations 0032 and 0033) and the listings cleanup evaluates.

use async_trait::async_trait;
use entrepot_domain::{ProjectId, RepositoryName};
use sqlx::Row as _;

use super::{decode, digest_col, PostgresMetadataStore};
use crate::cleanup::{CleanupStore, ManifestVersion, QuotaReservation, StoredCleanupPolicies};
use crate::metadata::StoreError;

/// Media types whose manifests list other manifests.
const INDEX_TYPES: &str = "('application/vnd.oci.image.index.v1+json',
    'application/vnd.docker.distribution.manifest.list.v2+json')";

/// Bytes the standard repositories of a project ($1) hold. Blobs are
/// counted once per repository, as each repository's size counts them: the
/// project's usage is the sum of its repositories'.
pub(super) const PROJECT_HOSTED_SIZE: &str = "SELECT
               (SELECT COALESCE(SUM(b.size), 0) FROM
                  (SELECT DISTINCT l.repository, l.digest FROM blob_links l
                   JOIN repositories r ON r.project = l.project AND r.id = l.repository
                   WHERE l.project = $1 AND r.mode = 'standard-repository') x
                  JOIN blobs b ON b.digest = x.digest)::BIGINT
             + (SELECT COALESCE(SUM(LENGTH(m.content)), 0) FROM manifests m
                  JOIN repositories r ON r.project = m.project AND r.id = m.repository
                  WHERE m.project = $1 AND r.mode = 'standard-repository')::BIGINT
             + (SELECT COALESCE(SUM(size), 0) FROM python_files WHERE project = $1)::BIGINT";

#[async_trait]
impl CleanupStore for PostgresMetadataStore {
    async fn cleanup_policies(
        &self,
        repo: &RepositoryName,
    ) -> Result<Option<StoredCleanupPolicies>, StoreError> {
        let row = sqlx::query(
            "SELECT policies, dry_run, update_time FROM cleanup_policies
             WHERE project = $1 AND repository = $2",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(StoredCleanupPolicies {
                policies: r.try_get("policies")?,
                dry_run: r.try_get::<i64, _>("dry_run")? != 0,
                update_time: r.try_get("update_time")?,
            })
        })
        .transpose()
    }

    async fn set_cleanup_policies(
        &self,
        repo: &RepositoryName,
        policies: &StoredCleanupPolicies,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cleanup_policies (project, repository, policies, dry_run, update_time)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (project, repository) DO UPDATE SET
               policies = excluded.policies, dry_run = excluded.dry_run,
               update_time = excluded.update_time",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(&policies.policies)
        .bind(i64::from(policies.dry_run))
        .bind(&policies.update_time)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn repositories_with_cleanup_policies(
        &self,
        after: Option<&RepositoryName>,
        limit: u32,
    ) -> Result<Vec<RepositoryName>, StoreError> {
        let (project, repository) = after
            .map(|n| (n.project.as_str(), n.repository.as_str()))
            .unwrap_or(("", ""));
        let rows = sqlx::query(
            "SELECT project, repository FROM cleanup_policies
             WHERE (project, repository) > ($1, $2)
             ORDER BY project, repository LIMIT $3",
        )
        .bind(project)
        .bind(repository)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RepositoryName::new(
                    decode(r.try_get("project")?, "project id")?,
                    decode(r.try_get("repository")?, "repository id")?,
                ))
            })
            .collect()
    }

    async fn manifest_versions(
        &self,
        repo: &RepositoryName,
    ) -> Result<Vec<ManifestVersion>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT m.image, m.digest, m.media_type, m.create_time,
                    CASE WHEN m.media_type IN {INDEX_TYPES} THEN m.content END AS index_content,
                    COALESCE((SELECT json_agg(t.tag ORDER BY t.tag) FROM tags t
                         WHERE t.project = m.project AND t.repository = m.repository
                           AND t.image = m.image AND t.digest = m.digest)::TEXT, '[]') AS tags
             FROM manifests m
             WHERE m.project = $1 AND m.repository = $2
             ORDER BY m.image, m.digest"
        ))
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let tags: String = r.try_get("tags")?;
                Ok(ManifestVersion {
                    image: r.try_get("image")?,
                    digest: digest_col(r.try_get("digest")?)?,
                    media_type: r.try_get("media_type")?,
                    create_time: r.try_get("create_time")?,
                    tags: serde_json::from_str(&tags)
                        .map_err(|e| StoreError::Corrupt(format!("tags of a manifest: {e}")))?,
                    index_content: r.try_get("index_content")?,
                })
            })
            .collect()
    }

    async fn delete_python_version(
        &self,
        repo: &RepositoryName,
        name: &str,
        version: &str,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM python_files WHERE project = $1 AND repository = $2 AND name = $3 AND version = $4",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(name)
        .bind(version)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    async fn storage_quota(
        &self,
        project: &ProjectId,
        repository: Option<&str>,
    ) -> Result<Option<u64>, StoreError> {
        let bytes: Option<i64> = sqlx::query_scalar(
            "SELECT bytes FROM storage_quotas WHERE project = $1 AND repository = $2",
        )
        .bind(project.as_str())
        .bind(repository.unwrap_or(""))
        .fetch_optional(self.pool())
        .await?;
        Ok(bytes.map(|b| u64::try_from(b).unwrap_or(0)))
    }

    async fn set_storage_quota(
        &self,
        project: &ProjectId,
        repository: Option<&str>,
        bytes: Option<u64>,
    ) -> Result<(), StoreError> {
        let query = match bytes {
            Some(bytes) => sqlx::query(
                "INSERT INTO storage_quotas (project, repository, bytes) VALUES ($1, $2, $3)
                 ON CONFLICT (project, repository) DO UPDATE SET bytes = excluded.bytes",
            )
            .bind(project.as_str())
            .bind(repository.unwrap_or(""))
            .bind(i64::try_from(bytes).unwrap_or(i64::MAX)),
            None => {
                sqlx::query("DELETE FROM storage_quotas WHERE project = $1 AND repository = $2")
                    .bind(project.as_str())
                    .bind(repository.unwrap_or(""))
            }
        };
        query.execute(self.pool()).await?;
        Ok(())
    }

    async fn project_hosted_bytes(&self, project: &ProjectId) -> Result<u64, StoreError> {
        // Blobs are counted once per repository, as each repository's size
        // counts them: the project's usage is the sum of its repositories'.
        let size: i64 = sqlx::query_scalar(PROJECT_HOSTED_SIZE)
            .bind(project.as_str())
            .fetch_one(self.pool())
            .await?;
        Ok(u64::try_from(size).unwrap_or(0))
    }

    async fn reserve_quota(
        &self,
        id: &str,
        repo: &RepositoryName,
        bytes: u64,
        now_unix: i64,
        expires_unix: i64,
    ) -> Result<QuotaReservation, StoreError> {
        self.reserve_quota_bytes(id, repo, bytes, now_unix, expires_unix)
            .await
    }

    async fn release_quota(&self, id: &str) -> Result<(), StoreError> {
        self.release_quota_bytes(id).await
    }

    async fn quota_reserved_bytes(
        &self,
        project: &ProjectId,
        repository: Option<&str>,
        now_unix: i64,
    ) -> Result<u64, StoreError> {
        self.reserved_quota_bytes(project, repository, now_unix)
            .await
    }
}
