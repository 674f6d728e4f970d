//! The inventory store on SQLite: listings along primary keys and indexes,
//! sizes from the `size` columns (never from the blob files).

use async_trait::async_trait;
use entrepot_domain::{Digest, RepositoryName};
use sqlx::Row;

use super::{digest_col, SqliteMetadataStore};
use crate::inventory::*;
use crate::metadata::StoreError;

/// When the manifest a tag (`t`) points at was last pulled: one probe of
/// the pull records' primary key.
const TAG_LAST_PULL: &str = "(SELECT p.pulled_ms FROM cache_eviction_pulls p
    WHERE p.project = t.project AND p.repository = t.repository
      AND p.image = t.image AND p.manifest = t.digest)";

/// When a Python file (`f`) was last downloaded: one probe of the pull
/// records' primary key, where a file's downloads are kept under image ''
/// ([`crate::PYTHON_FILES_IMAGE`]) and the file's digest.
const FILE_LAST_PULL: &str = "(SELECT p.pulled_ms FROM cache_eviction_pulls p
    WHERE p.project = f.project AND p.repository = f.repository
      AND p.image = '' AND p.manifest = 'sha256:' || f.sha256)";

fn bytes(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[async_trait]
impl InventoryStore for SqliteMetadataStore {
    async fn docker_images(
        &self,
        repo: &RepositoryName,
        after: Option<(&str, &str)>,
        limit: u32,
        max_tags: u32,
    ) -> Result<Vec<DockerImageRecord>, StoreError> {
        let (after_image, after_digest) = after.unwrap_or(("", ""));
        // One query a page, whatever the repository holds: a seek along the
        // manifests' primary key, then per manifest one probe of the pull
        // records' primary key, one of `manifest_blobs` (and of `blobs` per
        // blob it names), and one seek of `tags_by_digest` (project,
        // repository, image, digest, tag) reading at most `max_tags` tags.
        let rows = sqlx::query(
            "SELECT m.image, m.digest, m.media_type, LENGTH(m.content) AS manifest_bytes, m.create_time,
                    (SELECT p.pulled_ms FROM cache_eviction_pulls p
                      WHERE p.project = m.project AND p.repository = m.repository
                        AND p.image = m.image AND p.manifest = m.digest) AS last_pull_ms,
                    (SELECT COALESCE(SUM(b.size), 0) FROM manifest_blobs mb
                       JOIN blobs b ON b.digest = mb.digest
                      WHERE mb.project = m.project AND mb.repository = m.repository
                        AND mb.image = m.image AND mb.manifest = m.digest) AS blob_bytes,
                    (SELECT json_group_array(tag) FROM
                       (SELECT t.tag FROM tags t
                         WHERE t.project = m.project AND t.repository = m.repository
                           AND t.image = m.image AND t.digest = m.digest
                         ORDER BY t.tag LIMIT ?6)) AS tags
             FROM manifests m
             WHERE m.project = ?1 AND m.repository = ?2 AND (m.image, m.digest) > (?3, ?4)
             ORDER BY m.image, m.digest LIMIT ?5",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(after_image)
        .bind(after_digest)
        .bind(i64::from(limit))
        .bind(i64::from(max_tags))
        .fetch_all(self.pool())
        .await?;
        let mut images = Vec::with_capacity(rows.len());
        for row in rows {
            let image: String = row.try_get("image")?;
            let digest = digest_col(row.try_get("digest")?)?;
            let tags = if max_tags == 0 {
                Vec::new()
            } else {
                let json: String = row.try_get("tags")?;
                let mut tags: Vec<String> = serde_json::from_str(&json).map_err(|e| {
                    StoreError::Corrupt(format!("the tags of {image}@{digest}: {e}"))
                })?;
                // json_group_array keeps the subquery's order in practice,
                // not by contract.
                tags.sort_unstable();
                tags
            };
            images.push(DockerImageRecord {
                media_type: row.try_get("media_type")?,
                manifest_bytes: bytes(row.try_get("manifest_bytes")?),
                blob_bytes: bytes(row.try_get("blob_bytes")?),
                create_time: row.try_get("create_time")?,
                last_pull_ms: row.try_get("last_pull_ms")?,
                image,
                digest,
                tags,
            });
        }
        Ok(images)
    }

    async fn docker_tags(
        &self,
        repo: &RepositoryName,
        image: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DockerTagRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT t.tag, t.digest, t.update_time, {TAG_LAST_PULL} AS last_pull_ms FROM tags t
             WHERE t.project = ? AND t.repository = ? AND t.image = ? AND t.tag > ?
             ORDER BY t.tag LIMIT ?"
        ))
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(image)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DockerTagRecord {
                    tag: row.try_get("tag")?,
                    digest: digest_col(row.try_get("digest")?)?,
                    update_time: row.try_get("update_time")?,
                    last_pull_ms: row.try_get("last_pull_ms")?,
                })
            })
            .collect()
    }

    async fn docker_tag(
        &self,
        repo: &RepositoryName,
        image: &str,
        tag: &str,
    ) -> Result<Option<DockerTagRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT t.tag, t.digest, t.update_time, {TAG_LAST_PULL} AS last_pull_ms FROM tags t
             WHERE t.project = ? AND t.repository = ? AND t.image = ? AND t.tag = ?"
        ))
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(image)
        .bind(tag)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(DockerTagRecord {
                tag: row.try_get("tag")?,
                digest: digest_col(row.try_get("digest")?)?,
                update_time: row.try_get("update_time")?,
                last_pull_ms: row.try_get("last_pull_ms")?,
            })
        })
        .transpose()
    }

    async fn docker_tags_of(
        &self,
        repo: &RepositoryName,
        image: &str,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        // One seek of `tags_by_digest` (project, repository, image, digest,
        // tag), in tag order.
        let tags = sqlx::query_scalar(
            "SELECT tag FROM tags WHERE project = ? AND repository = ? AND image = ? AND digest = ?
             ORDER BY tag LIMIT ?",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(image)
        .bind(digest.to_string())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        Ok(tags)
    }

    async fn docker_packages(
        &self,
        repo: &RepositoryName,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DockerPackageRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.image,
                    (SELECT MIN(create_time) FROM manifests m WHERE m.project = i.project
                       AND m.repository = i.repository AND m.image = i.image) AS create_time,
                    (SELECT MAX(create_time) FROM manifests m WHERE m.project = i.project
                       AND m.repository = i.repository AND m.image = i.image) AS update_time,
                    (SELECT MAX(p.pulled_ms) FROM cache_eviction_pulls p WHERE p.project = i.project
                       AND p.repository = i.repository AND p.image = i.image) AS last_pull_ms
             FROM images i WHERE i.project = ? AND i.repository = ? AND i.image > ?
             ORDER BY i.image LIMIT ?",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DockerPackageRecord {
                    image: row.try_get("image")?,
                    create_time: row
                        .try_get::<Option<String>, _>("create_time")?
                        .unwrap_or_default(),
                    update_time: row
                        .try_get::<Option<String>, _>("update_time")?
                        .unwrap_or_default(),
                    last_pull_ms: row.try_get("last_pull_ms")?,
                })
            })
            .collect()
    }

    async fn python_packages(
        &self,
        repo: &RepositoryName,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<PythonPackageRecord>, StoreError> {
        // Grouped along `python_files_by_name` (project, repository, name).
        let rows = sqlx::query(
            "SELECT f.name, COUNT(DISTINCT f.version) AS versions, COUNT(*) AS files,
                    COALESCE(SUM(f.size), 0) AS size, MIN(f.upload_time) AS create_time,
                    MAX(f.upload_time) AS update_time, MAX(p.pulled_ms) AS last_pull_ms
             FROM python_files f
             LEFT JOIN cache_eviction_pulls p ON p.project = f.project
                 AND p.repository = f.repository AND p.image = ''
                 AND p.manifest = 'sha256:' || f.sha256
             WHERE f.project = ? AND f.repository = ? AND f.name > ?
             GROUP BY f.name ORDER BY f.name LIMIT ?",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PythonPackageRecord {
                    name: row.try_get("name")?,
                    versions: bytes(row.try_get("versions")?),
                    files: bytes(row.try_get("files")?),
                    size: bytes(row.try_get("size")?),
                    create_time: row.try_get("create_time")?,
                    update_time: row.try_get("update_time")?,
                    last_pull_ms: row.try_get("last_pull_ms")?,
                })
            })
            .collect()
    }

    async fn python_version_files(
        &self,
        repo: &RepositoryName,
        name: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<PythonVersionFile>, StoreError> {
        // `inventory_python_files_by_version` (0030): the versions in order,
        // then each version's files, along one index.
        let rows = sqlx::query(&format!(
            "SELECT f.version, f.filename, f.sha256, f.size, f.upload_time, f.yanked,
                    f.yanked_reason, {FILE_LAST_PULL} AS last_pull_ms
             FROM python_files f
             WHERE f.project = ?1 AND f.repository = ?2 AND f.name = ?3 AND f.version IN
               (SELECT DISTINCT version FROM python_files
                 WHERE project = ?1 AND repository = ?2 AND name = ?3 AND version > ?4
                 ORDER BY version LIMIT ?5)
             ORDER BY f.version, f.filename"
        ))
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(name)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PythonVersionFile {
                    version: row.try_get("version")?,
                    filename: row.try_get("filename")?,
                    sha256: row.try_get("sha256")?,
                    size: bytes(row.try_get("size")?),
                    upload_time: row.try_get("upload_time")?,
                    yanked: row.try_get::<i64, _>("yanked")? != 0,
                    yanked_reason: row.try_get("yanked_reason")?,
                    last_pull_ms: row.try_get("last_pull_ms")?,
                })
            })
            .collect()
    }

    async fn python_cached_files(
        &self,
        repo: &RepositoryName,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<PythonCachedFileRecord>, StoreError> {
        let (after_name, after_file) = after.unwrap_or(("", ""));
        // Along `python_remote_files_by_name`; a file is cached when its
        // bytes are linked to the repository (image '', as the remote cache
        // links them).
        let rows = sqlx::query(&format!(
            "SELECT DISTINCT f.name, f.filename, f.sha256, b.size, l.link_time,
                    {FILE_LAST_PULL} AS last_pull_ms
             FROM python_remote_files f
             JOIN blob_links l ON l.project = f.project AND l.repository = f.repository
                 AND l.image = '' AND l.digest = 'sha256:' || f.sha256
             JOIN blobs b ON b.digest = l.digest
             WHERE f.project = ? AND f.repository = ? AND (f.name, f.filename) > (?, ?)
             ORDER BY f.name, f.filename LIMIT ?"
        ))
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(after_name)
        .bind(after_file)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PythonCachedFileRecord {
                    name: row.try_get("name")?,
                    filename: row.try_get("filename")?,
                    sha256: row.try_get("sha256")?,
                    size: bytes(row.try_get("size")?),
                    cache_time: crate::inventory::cache_time(row.try_get("link_time")?),
                    last_pull_ms: row.try_get("last_pull_ms")?,
                })
            })
            .collect()
    }

    async fn repository_last_pull(&self, repo: &RepositoryName) -> Result<Option<i64>, StoreError> {
        // Along the pull records' primary key (project, repository, ...).
        Ok(sqlx::query_scalar(
            "SELECT MAX(pulled_ms) FROM cache_eviction_pulls WHERE project = ? AND repository = ?",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .fetch_one(self.pool())
        .await?)
    }

    async fn store_size_bytes(&self) -> Result<u64, StoreError> {
        // Two scans of narrow rows: a blob row is its digest and size, and
        // LENGTH of a manifest's content reads the record header only.
        let size: i64 = sqlx::query_scalar(
            "SELECT (SELECT COALESCE(SUM(size), 0) FROM blobs)
                  + (SELECT COALESCE(SUM(LENGTH(content)), 0) FROM manifests)",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(bytes(size))
    }
}
