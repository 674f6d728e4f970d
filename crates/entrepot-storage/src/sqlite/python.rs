//! Python metadata on SQLite: index pages, file origins and uploaded files.

use std::collections::HashMap;

use async_trait::async_trait;
use entrepot_domain::{Digest, RepositoryName};
use sqlx::Row;

use super::read_cache::RemoteFileKey;
use super::{is_unique_violation, SqliteMetadataStore};
use crate::metadata::StoreError;
use crate::python::*;

fn file_record(row: &sqlx::sqlite::SqliteRow) -> Result<PythonFileRecord, StoreError> {
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

fn remote_file_key(repo: &RepositoryName, sha256: &str, filename: &str) -> RemoteFileKey {
    (
        repo.project.as_str().to_owned(),
        repo.repository.as_str().to_owned(),
        sha256.to_owned(),
        filename.to_owned(),
    )
}

fn remote_record(r: &sqlx::sqlite::SqliteRow) -> Result<RemoteFileRecord, StoreError> {
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
/// below SQLite's limit of 32,766): one statement per row made a page of
/// 300,000 files take seconds.
const REMOTE_FILES_PER_STATEMENT: usize = 500;

const FILE_COLUMNS: &str = "filename, name, version, sha256, size, requires_python, metadata_sha256, yanked, yanked_reason, upload_time";

#[async_trait]
impl PythonStore for SqliteMetadataStore {
    async fn index_page(
        &self,
        repo: &RepositoryName,
        name: &str,
    ) -> Result<Option<CachedIndexPage>, StoreError> {
        let row = sqlx::query(
            "SELECT content_type, content, fetched_at FROM python_index_pages WHERE project = ? AND repository = ? AND name = ?",
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
            "INSERT INTO python_index_pages (project, repository, name, content_type, content, fetched_at) VALUES (?, ?, ?, ?, ?, ?)
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
        let mut tx = self.pool().begin().await?;
        for batch in files.chunks(REMOTE_FILES_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO python_remote_files (project, repository, name, sha256, filename, url, metadata_sha256) VALUES ",
            );
            for i in 0..batch.len() {
                sql.push_str(if i == 0 {
                    "(?, ?, ?, ?, ?, ?, ?)"
                } else {
                    ", (?, ?, ?, ?, ?, ?, ?)"
                });
            }
            // A page may list one file twice: the last one wins, as it did
            // with one statement per row.
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
        self.cache.forget_remote_files(
            files
                .iter()
                .map(|f| remote_file_key(repo, &f.sha256, &f.filename)),
        );
        Ok(())
    }

    async fn remote_file(
        &self,
        repo: &RepositoryName,
        sha256: &str,
        filename: &str,
    ) -> Result<Option<RemoteFileRecord>, StoreError> {
        let key = remote_file_key(repo, sha256, filename);
        if let Some(record) = self.cache.remote_file(&key) {
            return Ok(Some(record));
        }
        let generation = self.cache.generation();
        let row = sqlx::query(
            "SELECT name, sha256, filename, url, metadata_sha256 FROM python_remote_files WHERE project = ? AND repository = ? AND sha256 = ? AND filename = ?",
        )
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(sha256)
        .bind(filename)
        .fetch_optional(self.pool())
        .await?;
        let record = row.as_ref().map(remote_record).transpose()?;
        if let Some(record) = &record {
            self.cache.offer_remote_file(generation, key, record);
        }
        Ok(record)
    }

    async fn remote_files_of(
        &self,
        repo: &RepositoryName,
        name: &str,
    ) -> Result<Vec<RemoteFileRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, sha256, filename, url, metadata_sha256 FROM python_remote_files WHERE project = ? AND repository = ? AND name = ?",
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
            "SELECT name, sha256, filename, url, metadata_sha256 FROM python_remote_files WHERE project = ? AND repository = ? AND name = ? AND metadata_sha256 IS NOT NULL",
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
            "UPDATE python_remote_files SET metadata_sha256 = ? WHERE project = ? AND repository = ? AND sha256 = ? AND filename = ? AND metadata_sha256 IS NULL",
        )
        .bind(metadata_sha256)
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(sha256)
        .bind(filename)
        .execute(self.pool())
        .await?;
        self.cache
            .forget_remote_files([remote_file_key(repo, sha256, filename)]);
        Ok(())
    }

    async fn link_remote_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("INSERT OR IGNORE INTO blobs (digest, size, create_time) VALUES (?, ?, ?)")
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
             WHERE l.project = ? AND l.repository = ? AND l.image = ? AND l.digest = ?",
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
                 AND l.image = ? AND l.digest = 'sha256:' || f.sha256
             JOIN blobs b ON b.digest = l.digest
             WHERE f.project = ? AND f.repository = ? AND f.name = ?",
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
            "INSERT INTO python_files (project, repository, {FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
            "SELECT {FILE_COLUMNS} FROM python_files WHERE project = ? AND repository = ? AND filename = ?"
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
            "SELECT {FILE_COLUMNS} FROM python_files WHERE project = ? AND repository = ? AND name = ? ORDER BY filename"
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
            "SELECT DISTINCT name FROM python_files WHERE project = ? AND repository = ? ORDER BY name",
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
            "UPDATE python_files SET yanked = ?, yanked_reason = ? WHERE project = ? AND repository = ? AND name = ? AND version = ?",
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
