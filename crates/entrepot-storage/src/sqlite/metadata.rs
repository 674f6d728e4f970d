//! The metadata store on SQLite: projects, repositories, manifests, tags,
//! blob links and upload sessions.

use async_trait::async_trait;
use entrepot_domain::iam::Policy;
use entrepot_domain::repository::RemoteConfig;
use entrepot_domain::{Digest, ProjectId, Repository, RepositoryId, RepositoryName};
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

use super::{decode, digest_col, is_unique_violation, SqliteMetadataStore};
use crate::metadata::*;

/// Rows a repository deletion removes per transaction: SQLite has one
/// writer, and a deletion must not hold it for long.
const DELETE_BATCH_ROWS: u64 = 1000;

/// Tables whose rows belong to one repository (`project`, `repository`).
const REPOSITORY_TABLES: [&str; 10] = [
    "cache_eviction_pulls",
    // First-seen times of tag digests (minimum release age): a repository
    // re-created under the same name must see its tags' digests anew.
    "cooldown_tag_digests",
    "remote_referrers",
    "tags",
    "manifests",
    "blob_links",
    "uploads",
    "python_index_pages",
    "python_remote_files",
    "python_files",
];

fn repository_from_row(
    project: &str,
    row: &sqlx::sqlite::SqliteRow,
) -> Result<Repository, StoreError> {
    let id: String = row.try_get("id")?;
    let format: String = row.try_get("format")?;
    let mode: String = row.try_get("mode")?;
    let remote: Option<String> = row.try_get("remote_config")?;
    let remote_repository_config = remote
        .map(|json| serde_json::from_str::<RemoteConfig>(&json))
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let virtual_repository_config = row
        .try_get::<Option<String>, _>("virtual_config")?
        .map(|json| serde_json::from_str(&json))
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Repository {
        name: format!("projects/{project}/repositories/{id}"),
        format: format.parse().map_err(StoreError::Corrupt)?,
        mode: mode.parse().map_err(StoreError::Corrupt)?,
        description: row.try_get("description")?,
        remote_repository_config,
        virtual_repository_config,
        create_time: row.try_get("create_time")?,
        update_time: row.try_get("update_time")?,
    })
}

fn remote_json(repo: &Repository) -> Result<Option<String>, StoreError> {
    repo.remote_repository_config
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn virtual_json(repo: &Repository) -> Result<Option<String>, StoreError> {
    repo.virtual_repository_config
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn manifest_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ManifestRecord, StoreError> {
    Ok(ManifestRecord {
        digest: digest_col(row.try_get("digest")?)?,
        media_type: row.try_get("media_type")?,
        artifact_type: row.try_get("artifact_type")?,
        subject: row
            .try_get::<Option<String>, _>("subject")?
            .map(digest_col)
            .transpose()?,
        annotations: row.try_get("annotations")?,
        content: row.try_get("content")?,
    })
}

fn upload_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<UploadRecord, StoreError> {
    let parts = row.try_get::<i64, _>("parts")? as u32;
    let names: String = row.try_get("part_names")?;
    let mut part_names: Vec<String> = names.split_whitespace().map(str::to_owned).collect();
    if part_names.is_empty() {
        // A session opened before part names were recorded: numbered files.
        part_names = (0..parts).map(|p| format!("{p:08}")).collect();
    }
    if part_names.len() != parts as usize {
        return Err(StoreError::Corrupt(format!(
            "upload session has {parts} parts but {} part files",
            part_names.len()
        )));
    }
    Ok(UploadRecord {
        part_names,
        id: row.try_get("id")?,
        image: ImageRef {
            project: row.try_get("project")?,
            repository: row.try_get("repository")?,
            image: row.try_get("image")?,
        },
        size: row.try_get::<i64, _>("size")? as u64,
        parts,
        create_time: row.try_get("create_time")?,
        update_time: row.try_get("update_time")?,
    })
}

/// Which of `digests` the image has, with their sizes: `select` is the query
/// up to the digest list (its first three placeholders take the image), one
/// query per batch of digests.
async fn existing(
    pool: &SqlitePool,
    select: &str,
    image: &ImageRef,
    digests: &[Digest],
) -> Result<Vec<(Digest, u64)>, StoreError> {
    let mut found = Vec::new();
    for chunk in digests.chunks(200) {
        let placeholders = vec!["?"; chunk.len()].join(",");
        let sql = format!("{select} ({placeholders})");
        let mut q = sqlx::query(&sql)
            .bind(&image.project)
            .bind(&image.repository)
            .bind(&image.image);
        for d in chunk {
            q = q.bind(d.to_string());
        }
        for row in q.fetch_all(pool).await? {
            let size: i64 = row.try_get("size")?;
            found.push((digest_col(row.try_get("digest")?)?, size as u64));
        }
    }
    Ok(found)
}

/// Bytes a repository holds (?1 project, ?2 repository): each linked blob
/// once, its manifests and its uploaded Python files.
pub(super) const REPOSITORY_SIZE: &str = "SELECT
               (SELECT COALESCE(SUM(b.size), 0) FROM blobs b WHERE b.digest IN
                  (SELECT digest FROM blob_links WHERE project = ?1 AND repository = ?2))
             + (SELECT COALESCE(SUM(LENGTH(content)), 0) FROM manifests
                  WHERE project = ?1 AND repository = ?2)
             + (SELECT COALESCE(SUM(size), 0) FROM python_files
                  WHERE project = ?1 AND repository = ?2)";

#[async_trait]
impl MetadataStore for SqliteMetadataStore {
    async fn create_project(&self, id: &ProjectId) -> Result<ProjectRecord, StoreError> {
        self.insert_project(id, None).await
    }

    async fn create_project_with_policy(
        &self,
        id: &ProjectId,
        policy: &Policy,
    ) -> Result<ProjectRecord, StoreError> {
        self.insert_project(id, Some(policy)).await
    }

    async fn get_project(&self, id: &ProjectId) -> Result<Option<ProjectRecord>, StoreError> {
        let row = sqlx::query("SELECT id, number, create_time FROM projects WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(ProjectRecord {
                id: decode(r.try_get("id")?, "project id")?,
                number: r.try_get("number")?,
                create_time: r.try_get("create_time")?,
            })
        })
        .transpose()
    }

    async fn list_projects(
        &self,
        after: Option<&ProjectId>,
        limit: u32,
    ) -> Result<Vec<ProjectRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, number, create_time FROM projects WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after.map_or("", ProjectId::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ProjectRecord {
                    id: decode(r.try_get("id")?, "project id")?,
                    number: r.try_get("number")?,
                    create_time: r.try_get("create_time")?,
                })
            })
            .collect()
    }

    async fn create_repository(
        &self,
        name: &RepositoryName,
        repo: &Repository,
    ) -> Result<(), StoreError> {
        let (project, id) = (name.project.as_str(), name.repository.as_str());
        let result = sqlx::query(
            "INSERT INTO repositories (project, id, format, mode, description, remote_config, virtual_config, create_time, update_time)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(project)
        .bind(id)
        .bind(repo.format.as_str())
        .bind(repo.mode.as_str())
        .bind(&repo.description)
        .bind(remote_json(repo)?)
        .bind(virtual_json(repo)?)
        .bind(&repo.create_time)
        .bind(&repo.update_time)
        .execute(&self.pool)
        .await;
        self.cache.forget_repository(project, id);
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_repository(
        &self,
        name: &RepositoryName,
    ) -> Result<Option<Repository>, StoreError> {
        let (project, id) = (name.project.as_str(), name.repository.as_str());
        if let Some(repo) = self.cache.repository(project, id) {
            return Ok(Some(repo));
        }
        let generation = self.cache.generation();
        let row = sqlx::query("SELECT * FROM repositories WHERE project = ? AND id = ?")
            .bind(project)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let repo = row.map(|r| repository_from_row(project, &r)).transpose()?;
        if let Some(repo) = &repo {
            self.cache.offer_repository(generation, repo, project, id);
        }
        Ok(repo)
    }

    async fn list_repositories(
        &self,
        project: &ProjectId,
        after: Option<&RepositoryId>,
        limit: u32,
    ) -> Result<Vec<Repository>, StoreError> {
        let project = project.as_str();
        let rows = sqlx::query(
            "SELECT * FROM repositories WHERE project = ? AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(project)
        .bind(after.map_or("", RepositoryId::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| repository_from_row(project, r))
            .collect()
    }

    async fn virtual_repositories(
        &self,
        format: entrepot_domain::Format,
    ) -> Result<Vec<Repository>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM repositories WHERE mode = ? AND format = ? ORDER BY project, id",
        )
        .bind(entrepot_domain::Mode::VirtualRepository.as_str())
        .bind(format.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let project: String = r.try_get("project")?;
                repository_from_row(&project, r)
            })
            .collect()
    }

    async fn update_repository(
        &self,
        name: &RepositoryName,
        repo: &Repository,
    ) -> Result<bool, StoreError> {
        let (project, id) = (name.project.as_str(), name.repository.as_str());
        let done = sqlx::query(
            "UPDATE repositories SET description = ?, remote_config = ?, virtual_config = ?, update_time = ? WHERE project = ? AND id = ?",
        )
        .bind(&repo.description)
        .bind(remote_json(repo)?)
        .bind(virtual_json(repo)?)
        .bind(&repo.update_time)
        .bind(project)
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.cache.forget_repository(project, id);
        Ok(done.rows_affected() == 1)
    }

    async fn delete_repository(&self, name: &RepositoryName) -> Result<bool, StoreError> {
        self.remove_repository(name.project.as_str(), name.repository.as_str(), false)
            .await
    }

    async fn repository_size_bytes(&self, name: &RepositoryName) -> Result<u64, StoreError> {
        let size: i64 = sqlx::query_scalar(REPOSITORY_SIZE)
            .bind(name.project.as_str())
            .bind(name.repository.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(size).unwrap_or(0))
    }

    async fn delete_repository_with_policy(
        &self,
        name: &RepositoryName,
    ) -> Result<bool, StoreError> {
        self.remove_repository(name.project.as_str(), name.repository.as_str(), true)
            .await
    }

    async fn link_blob(
        &self,
        image: &ImageRef,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT OR IGNORE INTO blobs (digest, size, create_time) VALUES (?, ?, ?)")
            .bind(digest.to_string())
            .bind(size as i64)
            .bind(self.now_rfc3339())
            .execute(&mut *tx)
            .await?;
        super::refuse_doomed(&mut tx, digest).await?;
        sqlx::query(super::LINK_BLOB)
            .bind(&image.project)
            .bind(&image.repository)
            .bind(&image.image)
            .bind(digest.to_string())
            .bind(self.clock.now_unix())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn linked_blob_size(
        &self,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM blob_links l JOIN blobs b ON b.digest = l.digest
             WHERE l.project = ? AND l.repository = ? AND l.image = ? AND l.digest = ?",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(size.map(|s| s as u64))
    }

    async fn blob_size_in_repository(
        &self,
        project: &str,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM blob_links l JOIN blobs b ON b.digest = l.digest
             WHERE l.project = ? AND l.repository = ? AND l.digest = ? LIMIT 1",
        )
        .bind(project)
        .bind(repository)
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(size.map(|s| s as u64))
    }

    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = sqlx::query_scalar("SELECT size FROM blobs WHERE digest = ?")
            .bind(digest.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(size.map(|s| s as u64))
    }

    async fn unlink_blob(&self, image: &ImageRef, digest: &Digest) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM blob_links WHERE project = ? AND repository = ? AND image = ? AND digest = ?",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(digest.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_manifest(
        &self,
        image: &ImageRef,
        manifest: &ManifestRecord,
        tag: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = self.now_rfc3339();
        let mut tx = self.pool.begin().await?;
        insert_manifest(&mut tx, image, manifest, tag, &now).await?;
        tx.commit().await?;
        if let Some(tag) = tag {
            self.cache.forget_tag(image, tag);
        }
        Ok(())
    }

    async fn manifest_by_digest(
        &self,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<Option<ManifestRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT digest, media_type, artifact_type, subject, annotations, content FROM manifests
             WHERE project = ? AND repository = ? AND image = ? AND digest = ?",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(manifest_from_row).transpose()
    }

    async fn manifest_by_tag(
        &self,
        image: &ImageRef,
        tag: &str,
    ) -> Result<Option<ManifestRecord>, StoreError> {
        if let Some(manifest) = self.cache.manifest_by_tag(image, tag) {
            return Ok(Some(manifest));
        }
        let generation = self.cache.generation();
        let row = sqlx::query(
            "SELECT m.digest, m.media_type, m.artifact_type, m.subject, m.annotations, m.content
             FROM tags t JOIN manifests m
               ON m.project = t.project AND m.repository = t.repository AND m.image = t.image AND m.digest = t.digest
             WHERE t.project = ? AND t.repository = ? AND t.image = ? AND t.tag = ?",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(tag)
        .fetch_optional(&self.pool)
        .await?;
        let manifest = row.as_ref().map(manifest_from_row).transpose()?;
        if let Some(manifest) = &manifest {
            self.cache.offer_tag(generation, image, tag, manifest);
        }
        Ok(manifest)
    }

    async fn existing_manifests(
        &self,
        image: &ImageRef,
        digests: &[Digest],
    ) -> Result<Vec<(Digest, u64)>, StoreError> {
        existing(
            &self.pool,
            "SELECT DISTINCT digest, LENGTH(content) AS size FROM manifests
             WHERE project = ? AND repository = ? AND image = ? AND digest IN",
            image,
            digests,
        )
        .await
    }

    async fn existing_blob_links(
        &self,
        image: &ImageRef,
        digests: &[Digest],
    ) -> Result<Vec<(Digest, u64)>, StoreError> {
        existing(
            &self.pool,
            "SELECT DISTINCT l.digest AS digest, b.size AS size
             FROM blob_links l JOIN blobs b ON b.digest = l.digest
             WHERE l.project = ? AND l.repository = ? AND l.image = ? AND l.digest IN",
            image,
            digests,
        )
        .await
    }

    async fn images_linking_blob(
        &self,
        project: &str,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<ImageRef>, StoreError> {
        let rows = sqlx::query(
            "SELECT repository, MIN(image) AS image FROM blob_links
             WHERE project = ? AND digest = ? GROUP BY repository ORDER BY repository LIMIT ?",
        )
        .bind(project)
        .bind(digest.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ImageRef {
                    project: project.to_owned(),
                    repository: row.try_get("repository")?,
                    image: row.try_get("image")?,
                })
            })
            .collect()
    }

    async fn indexes_mentioning(
        &self,
        image: &ImageRef,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<ManifestRecord>, StoreError> {
        // The content is a BLOB: search it for the digest's bytes.
        let rows = sqlx::query(
            "SELECT digest, media_type, artifact_type, subject, annotations, content FROM manifests
             WHERE project = ? AND repository = ? AND image = ?
               AND media_type IN (?, ?) AND instr(content, ?) > 0
             ORDER BY digest LIMIT ?",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(entrepot_domain::manifest::OCI_INDEX)
        .bind(entrepot_domain::manifest::DOCKER_MANIFEST_LIST)
        .bind(digest.to_string().into_bytes())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(manifest_from_row).collect()
    }

    async fn delete_manifest(&self, image: &ImageRef, digest: &Digest) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM tags WHERE project = ? AND repository = ? AND image = ? AND digest = ?",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(digest.to_string())
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM manifests WHERE project = ? AND repository = ? AND image = ? AND digest = ?")
            .bind(&image.project)
            .bind(&image.repository)
            .bind(&image.image)
            .bind(digest.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.cache.forget_manifest(image, digest);
        Ok(done.rows_affected() == 1)
    }

    async fn delete_tag(&self, image: &ImageRef, tag: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM tags WHERE project = ? AND repository = ? AND image = ? AND tag = ?",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(tag)
        .execute(&self.pool)
        .await?;
        self.cache.forget_tag(image, tag);
        Ok(done.rows_affected() == 1)
    }

    async fn list_tags(
        &self,
        image: &ImageRef,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let tags = sqlx::query_scalar(
            "SELECT tag FROM tags WHERE project = ? AND repository = ? AND image = ? AND tag > ?
             ORDER BY tag LIMIT ?",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(last.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(tags)
    }

    async fn image_exists(&self, image: &ImageRef) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM manifests WHERE project = ? AND repository = ? AND image = ? LIMIT 1",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    async fn list_referrers(
        &self,
        image: &ImageRef,
        subject: &Digest,
    ) -> Result<Vec<ReferrerRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT digest, media_type, artifact_type, annotations, length(content) AS size FROM manifests
             WHERE project = ? AND repository = ? AND image = ? AND subject = ? ORDER BY digest",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(subject.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReferrerRecord {
                    digest: digest_col(r.try_get("digest")?)?,
                    media_type: r.try_get("media_type")?,
                    size: r.try_get::<i64, _>("size")? as u64,
                    artifact_type: r.try_get("artifact_type")?,
                    annotations: r.try_get("annotations")?,
                })
            })
            .collect()
    }

    async fn catalog(
        &self,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CatalogEntry>, StoreError> {
        let paths: Vec<String> = sqlx::query_scalar(
            // `images` (kept by triggers on `manifests`): an index range, not
            // a DISTINCT over every manifest.
            "SELECT path FROM images WHERE path > ? ORDER BY path LIMIT ?",
        )
        .bind(last.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(paths
            .into_iter()
            .map(|path| CatalogEntry { path })
            .collect())
    }

    async fn create_upload(&self, upload: &UploadRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO uploads (id, project, repository, image, size, parts, part_names, create_time, update_time)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&upload.id)
        .bind(&upload.image.project)
        .bind(&upload.image.repository)
        .bind(&upload.image.image)
        .bind(upload.size as i64)
        .bind(i64::from(upload.parts))
        .bind(upload.part_names.join(" "))
        .bind(upload.create_time)
        .bind(upload.update_time)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_upload(&self, id: &str) -> Result<Option<UploadRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM uploads WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(upload_from_row).transpose()
    }

    async fn advance_upload(
        &self,
        id: &str,
        expected_parts: u32,
        part_name: &str,
        size: u64,
        now: i64,
    ) -> Result<bool, StoreError> {
        if part_name.is_empty() || part_name.contains(char::is_whitespace) {
            return Err(StoreError::Corrupt(format!(
                "invalid part file name {part_name:?}"
            )));
        }
        // A session from before part names were recorded lists its numbered
        // files first, so the list always names every part.
        let legacy: Vec<String> = (0..expected_parts).map(|p| format!("{p:08}")).collect();
        let done = sqlx::query(
            "UPDATE uploads SET parts = parts + 1,
                 part_names = CASE WHEN part_names = '' THEN ? ELSE part_names || ' ' || ? END,
                 size = ?, update_time = ?
             WHERE id = ? AND parts = ?",
        )
        .bind(
            legacy
                .iter()
                .map(String::as_str)
                .chain([part_name])
                .collect::<Vec<_>>()
                .join(" "),
        )
        .bind(part_name)
        .bind(size as i64)
        .bind(now)
        .bind(id)
        .bind(i64::from(expected_parts))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_upload(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM uploads WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn stale_uploads(&self, before: i64) -> Result<Vec<UploadRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM uploads WHERE update_time < ?")
            .bind(before)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(upload_from_row).collect()
    }
}

impl SqliteMetadataStore {
    /// Insert a project and, with `policy`, its IAM policy, in one
    /// transaction. The policy is written first, so that a project that
    /// exists already rolls the policy write back.
    async fn insert_project(
        &self,
        id: &ProjectId,
        policy: Option<&Policy>,
    ) -> Result<ProjectRecord, StoreError> {
        let create_time = self.now_rfc3339();
        let resource = format!("projects/{id}");
        let mut tx = self.pool.begin().await?;
        if let Some(policy) = policy {
            let bindings = serde_json::to_string(&policy.bindings)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO iam_policies (resource, bindings, etag, update_time) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (resource) DO UPDATE SET bindings = excluded.bindings, etag = excluded.etag, \
                 update_time = excluded.update_time",
            )
            .bind(&resource)
            .bind(&bindings)
            .bind(&policy.etag)
            .bind(&create_time)
            .execute(&mut *tx)
            .await?;
        }
        // Project numbers look like the managed registries' ones: 12 digits.
        let number: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(number), 100000000000) + 1 FROM projects")
                .fetch_one(&mut *tx)
                .await?;
        let inserted =
            sqlx::query("INSERT INTO projects (id, number, create_time) VALUES (?, ?, ?)")
                .bind(id.as_str())
                .bind(number)
                .bind(&create_time)
                .execute(&mut *tx)
                .await;
        let result = match inserted {
            Ok(_) => {
                tx.commit().await?;
                Ok(ProjectRecord {
                    id: id.clone(),
                    number,
                    create_time,
                })
            }
            // Dropping the transaction rolls the policy write back.
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(e.into()),
        };
        if policy.is_some() {
            self.cache.forget_policy(&resource);
        }
        result
    }

    /// Delete a repository, its content and, with `with_policy`, its IAM
    /// policy.
    async fn remove_repository(
        &self,
        project: &str,
        id: &str,
        with_policy: bool,
    ) -> Result<bool, StoreError> {
        // The content goes in bounded transactions first, so that deleting a
        // repository of many tags never holds the single writer for long;
        // the repository stays visible (with less and less content) until the
        // last transaction removes what remains together with it.
        for table in REPOSITORY_TABLES {
            loop {
                let done = sqlx::query(&format!(
                    "DELETE FROM {table} WHERE rowid IN
                     (SELECT rowid FROM {table} WHERE project = ? AND repository = ? LIMIT ?)"
                ))
                .bind(project)
                .bind(id)
                .bind(DELETE_BATCH_ROWS as i64)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() < DELETE_BATCH_ROWS {
                    break;
                }
            }
        }
        let mut tx = self.pool.begin().await?;
        // Whatever a concurrent push added meanwhile.
        for table in REPOSITORY_TABLES {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE project = ? AND repository = ?"
            ))
            .bind(project)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let done = sqlx::query("DELETE FROM repositories WHERE project = ? AND id = ?")
            .bind(project)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted = done.rows_affected() == 1;
        // Only a repository that was there takes its policy along; a failure
        // here drops the transaction, and the repository stays too.
        let resource = format!("projects/{project}/repositories/{id}");
        if with_policy && deleted {
            sqlx::query("DELETE FROM iam_policies WHERE resource = ?")
                .bind(&resource)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.cache.forget_repository(project, id);
        if with_policy {
            self.cache.forget_policy(&resource);
        }
        Ok(deleted)
    }
}

/// Store a manifest (kept if already there) and point `tag` at it, inside
/// the caller's transaction: the one write of a manifest push, shared by the
/// plain and the garbage-collection-checked store.
pub(super) async fn insert_manifest(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    image: &ImageRef,
    manifest: &ManifestRecord,
    tag: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(
            "INSERT OR IGNORE INTO manifests
             (project, repository, image, digest, media_type, artifact_type, subject, annotations, content, create_time)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&image.project)
        .bind(&image.repository)
        .bind(&image.image)
        .bind(manifest.digest.to_string())
        .bind(&manifest.media_type)
        .bind(&manifest.artifact_type)
        .bind(manifest.subject.as_ref().map(|d| d.to_string()))
        .bind(&manifest.annotations)
        .bind(&manifest.content)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    if let Some(tag) = tag {
        sqlx::query(
                "INSERT INTO tags (project, repository, image, tag, digest, update_time) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (project, repository, image, tag) DO UPDATE SET digest = excluded.digest, update_time = excluded.update_time",
            )
            .bind(&image.project)
            .bind(&image.repository)
            .bind(&image.image)
            .bind(tag)
            .bind(manifest.digest.to_string())
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
