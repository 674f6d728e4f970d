//! Python metadata on PostgreSQL: index pages, file origins and uploaded files.

use std::collections::HashMap;

use async_trait::async_trait;
use entrepot_domain::{Digest, RepositoryName};
use sqlx::Row;

use super::{is_unique_violation, PostgresMetadataStore};
use crate::metadata::StoreError;
use crate::python::*;

fn file_record(row: &sqlx::postgres::PgRow) -> Result<PythonFileRecord, StoreError> {
    Ok(PythonFileRecord {
        filename: row.try_get("filename")?,
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        sha256: row.try_get("sha256")?,
        size: row.try_get::<i64, _>("size")? as u64,
        requires_python: row.try_get("requires_python")?,
        metadata_sha256: row.try_get("metadata_sha256")?,
        yanked: row.try_get::<i64, _>("yanked")? != 0,
        yanked_reason: row.try_get("yanked_reason")?,
        upload_time: row.try_get("upload_time")?,
    })
}

fn remote_record(r: &sqlx::postgres::PgRow) -> Result<RemoteFileRecord, StoreError> {
    Ok(RemoteFileRecord {
        name: r.try_get("name")?,
        sha256: r.try_get("sha256")?,
        filename: r.try_get("filename")?,
        url: r.try_get("url")?,
        metadata_sha256: r.try_get("metadata_sha256")?,
    })
}

/// The `blob_links.image` of remote Python repositories: their files are
/// linked to the repository as a whole, and no OCI image name is empty.
const PYTHON_LINK_IMAGE: &str = "";

/// Rows per statement when remembering file origins (7 parameters each, far
/// below PostgreSQL's limit of 32,766): one statement per row made a page of
/// 300,000 files take seconds.
const REMOTE_FILES_PER_STATEMENT: usize = 500;

const FILE_COLUMNS: &str = "filename, name, version, sha256, size, requires_python, metadata_sha256, yanked, yanked_reason, upload_time";

#[async_trait]
impl PythonStore for PostgresMetadataStore {
    async fn index_page(
        &self,
        repo: &RepositoryName,
        name: &str,
    ) -> Result<Option<CachedIndexPage>, StoreError> {
        let row = sqlx::query(
            "SELECT content_type, content, fetched_at FROM python_index_pages WHERE project = $1 AND repository = $2 AND name = $3",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(CachedIndexPage {
                content_type: r.try_get("content_type")?,
                content: r.try_get("content")?,
                fetched_at: r.try_get("fetched_at")?,
            })
        })
        .transpose()
    }

    async fn put_index_page(
        &self,
        repo: &RepositoryName,
        name: &str,
        page: &CachedIndexPage,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO python_index_pages (project, repository, name, content_type, content, fetched_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (project, repository, name) DO UPDATE SET content_type = excluded.content_type, content = excluded.content, fetched_at = excluded.fetched_at",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(name)
        .bind(&page.content_type)
        .bind(&page.content)
        .bind(page.fetched_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn remember_remote_files(
        &self,
        repo: &RepositoryName,
        files: &[RemoteFileRecord],
    ) -> Result<(), StoreError> {
        // A page may list one file twice: the last one wins, its metadata
        // falling back to an earlier one's, as with one statement per row
        // (and PostgreSQL refuses to update one row twice in a statement).
        let mut merged: Vec<RemoteFileRecord> = Vec::with_capacity(files.len());
        let mut at: HashMap<(&str, &str), usize> = HashMap::new();
        for f in files {
            match at.get(&(f.sha256.as_str(), f.filename.as_str())) {
                Some(&i) => {
                    let earlier = merged[i].metadata_sha256.take();
                    merged[i] = f.clone();
                    if merged[i].metadata_sha256.is_none() {
                        merged[i].metadata_sha256 = earlier;
                    }
                }
                None => {
                    at.insert((f.sha256.as_str(), f.filename.as_str()), merged.len());
                    merged.push(f.clone());
                }
            }
        }
        let mut tx = self.pool().begin().await?;
        for batch in merged.chunks(REMOTE_FILES_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO python_remote_files (project, repository, name, sha256, filename, url, metadata_sha256) VALUES ",
            );
            for i in 0..batch.len() {
                let n = i * 7;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6,
                    n + 7
                ));
            }
            sql.push_str(
                " ON CONFLICT (project, repository, sha256, filename) DO UPDATE SET name = excluded.name, url = excluded.url,
                     metadata_sha256 = COALESCE(excluded.metadata_sha256, python_remote_files.metadata_sha256)",
            );
            let mut query = sqlx::query(&sql);
            for f in batch {
                query = query
                    .bind(repo.project.as_str())
                    .bind(repo.repository.as_str())
                    .bind(&f.name)
                    .bind(&f.sha256)
                    .bind(&f.filename)
                    .bind(&f.url)
                    .bind(&f.metadata_sha256);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn remote_file(
        &self,
        repo: &RepositoryName,
        sha256: &str,
        filename: &str,
    ) -> Result<Option<RemoteFileRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT name, sha256, filename, url, metadata_sha256 FROM python_remote_files WHERE project = $1 AND repository = $2 AND sha256 = $3 AND filename = $4",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(sha256)
        .bind(filename)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(remote_record).transpose()
    }

    async fn remote_files_of(
        &self,
        repo: &RepositoryName,
        name: &str,
    ) -> Result<Vec<RemoteFileRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, sha256, filename, url, metadata_sha256 FROM python_remote_files WHERE project = $1 AND repository = $2 AND name = $3",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(name)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(remote_record).collect()
    }

    async fn remote_files_with_metadata(
        &self,
        repo: &RepositoryName,
        name: &str,
    ) -> Result<Vec<RemoteFileRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, sha256, filename, url, metadata_sha256 FROM python_remote_files WHERE project = $1 AND repository = $2 AND name = $3 AND metadata_sha256 IS NOT NULL",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(name)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(remote_record).collect()
    }

    async fn set_remote_metadata(
        &self,
        repo: &RepositoryName,
        sha256: &str,
        filename: &str,
        metadata_sha256: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE python_remote_files SET metadata_sha256 = $1 WHERE project = $2 AND repository = $3 AND sha256 = $4 AND filename = $5 AND metadata_sha256 IS NULL",
        )
        .bind(metadata_sha256)
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(sha256)
        .bind(filename)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn link_remote_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        super::lifecycle_shared(&mut tx).await?;
        sqlx::query(super::INSERT_BLOB)
            .bind(digest.to_string())
            .bind(size as i64)
            .bind(self.now_rfc3339())
            .execute(&mut *tx)
            .await?;
        super::refuse_doomed(&mut tx, digest).await?;
        sqlx::query(super::LINK_BLOB)
            .bind(repo.project.as_str())
            .bind(repo.repository.as_str())
            .bind(PYTHON_LINK_IMAGE)
            .bind(digest.to_string())
            .bind(self.clock.now_unix())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn remote_blob_size(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM blob_links l JOIN blobs b ON b.digest = l.digest
             WHERE l.project = $1 AND l.repository = $2 AND l.image = $3 AND l.digest = $4",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(PYTHON_LINK_IMAGE)
        .bind(digest.to_string())
        .fetch_optional(self.pool())
        .await?;
        Ok(size.map(|s| s as u64))
    }

    async fn linked_file_sizes(
        &self,
        repo: &RepositoryName,
        name: &str,
    ) -> Result<HashMap<String, u64>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT DISTINCT f.sha256, b.size FROM python_remote_files f
             JOIN blob_links l ON l.project = f.project AND l.repository = f.repository
                 AND l.image = $1 AND l.digest = 'sha256:' || f.sha256
             JOIN blobs b ON b.digest = l.digest
             WHERE f.project = $2 AND f.repository = $3 AND f.name = $4",
        )
        .bind(PYTHON_LINK_IMAGE)
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(name)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(h, s)| (h, s as u64)).collect())
    }

    async fn add_file(
        &self,
        repo: &RepositoryName,
        file: &PythonFileRecord,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(&format!(
            "INSERT INTO python_files (project, repository, {FILE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(&file.filename)
        .bind(&file.name)
        .bind(&file.version)
        .bind(&file.sha256)
        .bind(file.size as i64)
        .bind(&file.requires_python)
        .bind(&file.metadata_sha256)
        .bind(file.yanked as i64)
        .bind(&file.yanked_reason)
        .bind(&file.upload_time)
        .execute(self.pool())
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(e.into()),
        }
    }

    async fn file(
        &self,
        repo: &RepositoryName,
        filename: &str,
    ) -> Result<Option<PythonFileRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM python_files WHERE project = $1 AND repository = $2 AND filename = $3"
        ))
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(filename)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(file_record).transpose()
    }

    async fn files_of(
        &self,
        repo: &RepositoryName,
        name: &str,
    ) -> Result<Vec<PythonFileRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM python_files WHERE project = $1 AND repository = $2 AND name = $3 ORDER BY filename"
        ))
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(name)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(file_record).collect()
    }

    async fn project_names(&self, repo: &RepositoryName) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT name FROM python_files WHERE project = $1 AND repository = $2 ORDER BY name",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .fetch_all(self.pool())
        .await?)
    }

    async fn set_yanked(
        &self,
        repo: &RepositoryName,
        name: &str,
        version: &str,
        yanked: bool,
        reason: Option<&str>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE python_files SET yanked = $1, yanked_reason = $2 WHERE project = $3 AND repository = $4 AND name = $5 AND version = $6",
        )
        .bind(yanked as i64)
        .bind(if yanked { reason } else { None })
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(name)
        .bind(version)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
