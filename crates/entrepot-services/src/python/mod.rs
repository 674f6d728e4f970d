//! Python repositories: the simple repository API over remote (pull-through)
//! and standard (hosted, twine upload) repositories.
//!
//! Only the Python naming and checking rules live here; downloads go through
//! the format-agnostic fill engine and the one upstream client.

pub mod dist;
pub mod format;
pub mod hosted;
pub mod index;
mod page_views;
pub mod remote;

use std::sync::Arc;

use entrepot_domain::{Digest, Mode, Repository};
use entrepot_storage::{BlobError, PythonRepo, StoreError};

pub use hosted::{HostedPython, StagedFile, UploadForm};
pub use index::{PageFormat, ProjectPage, ServedPage};
/// A file of a Python repository, ready to be read.
pub type LocatedFile = crate::located::LocatedBlob;
pub use remote::RemotePython;

use crate::located::ServedBlob;
use crate::remote::UpstreamFailure;

/// Errors of the Python services. The front-ends choose the status.
#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    /// No such project, file or repository content.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or fails validation.
    #[error("{0}")]
    Invalid(String),
    /// The file name is taken (PyPI's wording).
    #[error("File already exists: {0}")]
    FileExists(String),
    /// The upload is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// The operation does not apply to this repository.
    #[error("{0}")]
    NotAllowed(String),
    /// A remote repository could not get the content from its upstream.
    #[error(transparent)]
    Remote(#[from] UpstreamFailure),
    /// Local storage failed.
    #[error("storage failed: {0}")]
    Storage(String),
}

impl From<StoreError> for PythonError {
    fn from(e: StoreError) -> Self {
        PythonError::Storage(e.to_string())
    }
}

impl From<BlobError> for PythonError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::NotFound => PythonError::NotFound("the file is not in the store".into()),
            e => PythonError::Storage(e.to_string()),
        }
    }
}

/// The `(project, repository)` of a repository resource.
pub fn repo_ids(repo: &Repository) -> PythonRepo {
    let mut parts = repo.name.split('/');
    PythonRepo {
        project: parts.nth(1).unwrap_or_default().to_owned(),
        repository: parts.nth(1).unwrap_or_default().to_owned(),
    }
}

/// The path entrepot serves a file at.
pub fn file_path(repo: &PythonRepo, sha256: &str, filename: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(filename.as_bytes()).collect();
    format!(
        "/pypi/{}/{}/files/{sha256}/{}",
        repo.project,
        repo.repository,
        encoded.replace("%2B", "+")
    )
}

/// A lower-case hex sha256 as a digest.
pub fn sha256_digest(hex: &str) -> Result<Digest, PythonError> {
    format!("sha256:{}", hex.to_ascii_lowercase())
        .parse()
        .map_err(|_| PythonError::NotFound(format!("{hex:?} is not a sha256 digest")))
}

/// A file or metadata file, whole or a range of it.
pub type ServedFile = ServedBlob;

/// Python repositories of every mode, behind one front door.
pub struct PythonRepositories {
    /// Pull-through caches.
    pub remote: Arc<RemotePython>,
    /// Hosted repositories.
    pub hosted: Arc<HostedPython>,
}

impl PythonRepositories {
    /// The project list (normalised names).
    pub async fn project_list(&self, repo: &Repository) -> Result<Arc<Vec<String>>, PythonError> {
        match repo.mode {
            Mode::RemoteRepository => self.remote.project_list(repo).await,
            Mode::StandardRepository => Ok(Arc::new(self.hosted.project_list(repo).await?)),
            Mode::VirtualRepository => Err(not_supported()),
        }
    }

    /// A project's page, with file URLs pointing at entrepot.
    pub async fn project_page(
        &self,
        repo: &Repository,
        name: &str,
    ) -> Result<Arc<ServedPage>, PythonError> {
        match repo.mode {
            Mode::RemoteRepository => self.remote.project_page(repo, name).await,
            Mode::StandardRepository => Ok(Arc::new(ServedPage::new(
                self.hosted.project_page(repo, name).await?,
            ))),
            Mode::VirtualRepository => Err(not_supported()),
        }
    }

    /// A file, ready to be read; for a remote repository, its download
    /// starts if it is not cached.
    pub async fn file(
        &self,
        repo: &Repository,
        sha256: &str,
        filename: &str,
    ) -> Result<LocatedFile, PythonError> {
        match repo.mode {
            Mode::RemoteRepository => self.remote.file(repo, sha256, filename).await,
            Mode::StandardRepository => self.hosted.file(repo, sha256, filename).await,
            Mode::VirtualRepository => Err(not_supported()),
        }
    }
}

fn not_supported() -> PythonError {
    PythonError::NotAllowed("virtual Python repositories are not available yet".into())
}
