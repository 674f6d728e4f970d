//! Metadata of Python repositories: cached index pages and file origins of
//! remote repositories, uploaded files of standard ones.

use std::collections::HashMap;

use async_trait::async_trait;
use entrepot_domain::{Digest, RepositoryName};

use crate::metadata::StoreError;

/// An index page as the upstream sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedIndexPage {
    /// The upstream's Content-Type.
    pub content_type: String,
    /// The bytes, unchanged.
    pub content: Vec<u8>,
    /// When it was fetched (unix seconds).
    pub fetched_at: i64,
}

/// Where a file of a remote repository comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFileRecord {
    /// Normalised name of the project whose page lists the file.
    pub name: String,
    /// Hex sha256 of the file, from the index page.
    pub sha256: String,
    /// The file name.
    pub filename: String,
    /// Absolute upstream URL (without fragment).
    pub url: String,
    /// Hex sha256 of the upstream's `.metadata` file, if it has one.
    pub metadata_sha256: Option<String>,
}

/// A file uploaded to a standard repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonFileRecord {
    /// The file name (unique within the repository).
    pub filename: String,
    /// Normalised project name.
    pub name: String,
    /// Version, as uploaded.
    pub version: String,
    /// Hex sha256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// `Requires-Python`, if declared.
    pub requires_python: Option<String>,
    /// Hex sha256 of the extracted core metadata file, if any.
    pub metadata_sha256: Option<String>,
    /// PEP 592: yanked.
    pub yanked: bool,
    /// Why it was yanked.
    pub yanked_reason: Option<String>,
    /// RFC 3339 upload time.
    pub upload_time: String,
}

/// Python-specific metadata.
#[async_trait]
pub trait PythonStore: Send + Sync + 'static {
    /// A cached index page (`name` normalised, `""` for the project list).
    async fn index_page(
        &self,
        repo: &RepositoryName,
        name: &str,
    ) -> Result<Option<CachedIndexPage>, StoreError>;
    /// Store (replace) an index page.
    async fn put_index_page(
        &self,
        repo: &RepositoryName,
        name: &str,
        page: &CachedIndexPage,
    ) -> Result<(), StoreError>;
    /// Remember where files come from (replacing what was known).
    async fn remember_remote_files(
        &self,
        repo: &RepositoryName,
        files: &[RemoteFileRecord],
    ) -> Result<(), StoreError>;
    /// What is known of the files on a project's page.
    async fn remote_files_of(
        &self,
        repo: &RepositoryName,
        name: &str,
    ) -> Result<Vec<RemoteFileRecord>, StoreError>;
    /// What is known of the files on a project's page that have a metadata
    /// file (the upstream's or one entrepot extracted).
    async fn remote_files_with_metadata(
        &self,
        repo: &RepositoryName,
        name: &str,
    ) -> Result<Vec<RemoteFileRecord>, StoreError>;
    /// Record the metadata file entrepot extracted from a cached file.
    async fn set_remote_metadata(
        &self,
        repo: &RepositoryName,
        sha256: &str,
        filename: &str,
        metadata_sha256: &str,
    ) -> Result<(), StoreError>;
    /// Where a file comes from.
    async fn remote_file(
        &self,
        repo: &RepositoryName,
        sha256: &str,
        filename: &str,
    ) -> Result<Option<RemoteFileRecord>, StoreError>;
    /// Link a committed blob (a file or metadata file) to a remote repository:
    /// it was fetched from that repository's upstream and verified, so the
    /// repository may serve it. Idempotent.
    async fn link_remote_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError>;
    /// Size of a blob if it is linked to the remote repository.
    async fn remote_blob_size(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError>;
    /// Sizes of the files on a project's page that are linked to the
    /// repository, by hex sha256.
    async fn linked_file_sizes(
        &self,
        repo: &RepositoryName,
        name: &str,
    ) -> Result<HashMap<String, u64>, StoreError>;
    /// Record an uploaded file; `AlreadyExists` if the file name is taken.
    async fn add_file(
        &self,
        repo: &RepositoryName,
        file: &PythonFileRecord,
    ) -> Result<(), StoreError>;
    /// An uploaded file by name.
    async fn file(
        &self,
        repo: &RepositoryName,
        filename: &str,
    ) -> Result<Option<PythonFileRecord>, StoreError>;
    /// The uploaded files of a project, by file name.
    async fn files_of(
        &self,
        repo: &RepositoryName,
        name: &str,
    ) -> Result<Vec<PythonFileRecord>, StoreError>;
    /// Normalised names of the projects with uploaded files.
    async fn project_names(&self, repo: &RepositoryName) -> Result<Vec<String>, StoreError>;
    /// Yank or unyank the files of a version; how many files changed.
    async fn set_yanked(
        &self,
        repo: &RepositoryName,
        name: &str,
        version: &str,
        yanked: bool,
        reason: Option<&str>,
    ) -> Result<u64, StoreError>;
}
