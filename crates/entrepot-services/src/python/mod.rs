//! Python repositories: the simple repository API over remote (pull-through)
//! and standard (hosted, twine upload) repositories.
//!
//! [`PythonRepositories`] takes the caller's [`Principal`] on every
//! operation and authorizes it there (what each operation needs is in
//! [`operation`]), then looks the repository up and routes the call to
//! [`HostedPython`] or [`RemotePython`], which know nothing of callers.
//!
//! Only the Python naming and checking rules live here; downloads go through
//! the format-agnostic fill engine and the one upstream client.

mod answered;
#[cfg(test)]
mod authorization_tests;
pub mod cooldown;
pub mod dist;
pub mod format;
pub mod hosted;
pub mod index;
pub mod operation;
mod page_record;
mod page_views;
pub mod remote;
mod virtual_index;

use std::sync::Arc;

use bytes::Bytes;
use entrepot_domain::repository::RepositoryNameError;
use entrepot_domain::{Digest, Format, Mode, Repository, RepositoryName};
use entrepot_storage::{BlobError, StoreError};
use futures::Stream;

pub use answered::{Answered, CacheReport};
pub use hosted::{HostedPython, StagedFile, UploadForm};
pub use index::{PageFormat, ProjectPage, ServedPage};
/// A file of a Python repository, ready to be read.
pub type LocatedFile = crate::located::LocatedBlob;
pub use operation::PythonOperation;
pub use remote::RemotePython;

use crate::access::{AccessControl, AuthError, Principal};
use crate::located::ServedBlob;
use crate::remote::UpstreamFailure;
use crate::repositories::{RepositoryError, RepositoryService};

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
    /// The upload would exceed a storage quota; the message names it and
    /// the usage.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The operation does not apply to this repository.
    #[error("{0}")]
    NotAllowed(String),
    /// The repository's minimum release age holds the file back; the
    /// message says until when.
    #[error("{0}")]
    HeldBack(String),
    /// A remote repository could not get the content from its upstream.
    #[error(transparent)]
    Remote(#[from] UpstreamFailure),
    /// Local storage failed.
    #[error("storage failed: {0}")]
    Storage(String),
    /// The caller may not perform the operation: anonymous callers get
    /// [`AuthError::Unauthenticated`], authenticated ones [`AuthError::Denied`].
    #[error(transparent)]
    Access(#[from] AuthError),
    /// The repository could not be looked up (it does not exist, or storage
    /// failed).
    #[error(transparent)]
    Repository(#[from] RepositoryError),
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

impl From<RepositoryNameError> for PythonError {
    /// A repository whose stored name does not parse: the store is damaged.
    fn from(e: RepositoryNameError) -> Self {
        StoreError::Corrupt(e.to_string()).into()
    }
}

/// The path entrepot serves a file at.
pub fn file_path(repo: &RepositoryName, sha256: &str, filename: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(filename.as_bytes()).collect();
    format!(
        "/pypi/{}/{}/files/{sha256}/{}",
        repo.project,
        repo.repository,
        encoded.replace("%2B", "+")
    )
}

/// What the form fields of an upload may add to its file in the request's
/// `Content-Length`.
pub const FORM_ALLOWANCE: u64 = 64 * 1024;

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
    /// Decides whether a caller may perform an operation.
    access: Arc<dyn AccessControl>,
    /// Where repositories are looked up.
    repositories: RepositoryService,
    /// Pull-through caches. Exposed for the admin API's `:testUpstream`,
    /// which authorizes on its own; content goes through the methods below.
    pub remote: Arc<RemotePython>,
    /// Hosted repositories.
    hosted: Arc<HostedPython>,
    /// Storage quotas uploads are checked against.
    quotas: Option<Arc<crate::quota::StorageQuotas>>,
    /// Merged project pages of virtual repositories.
    merged: virtual_index::MergedPages,
}

/// A standard repository the caller may upload to, found by
/// [`PythonRepositories::upload_target`]: staging and storing a file need
/// one, so neither runs for a caller who was refused.
#[derive(Debug)]
pub struct UploadTarget {
    repo: Repository,
}

impl UploadTarget {
    /// The repository uploaded to.
    pub fn repository(&self) -> &Repository {
        &self.repo
    }
}

impl PythonRepositories {
    /// Python repositories over `hosted` and `remote`, looked up in
    /// `repositories`, every caller authorized through `access`.
    pub fn new(
        access: Arc<dyn AccessControl>,
        repositories: RepositoryService,
        hosted: Arc<HostedPython>,
        remote: Arc<RemotePython>,
    ) -> Self {
        Self {
            access,
            repositories,
            remote,
            hosted,
            merged: Default::default(),
            quotas: None,
        }
    }

    /// Refuse uploads that would exceed a storage quota.
    pub fn with_quotas(mut self, quotas: Arc<crate::quota::StorageQuotas>) -> Self {
        self.quotas = Some(quotas);
        self
    }

    /// Refuse an upload of `incoming` bytes to `target` that would exceed a
    /// storage quota. Called with the request's `Content-Length` before the
    /// body is read (the form fields around the file count there too, so
    /// only an upload over by more than [`FORM_ALLOWANCE`] is refused then),
    /// while [`Self::upload`] reserves the staged file's size before it is
    /// stored.
    pub async fn check_upload_quota(
        &self,
        target: &UploadTarget,
        content_length: Option<u64>,
    ) -> Result<(), PythonError> {
        match content_length {
            Some(length) => {
                self.check_quota(target, length.saturating_sub(FORM_ALLOWANCE))
                    .await
            }
            None => Ok(()),
        }
    }

    async fn check_quota(&self, target: &UploadTarget, incoming: u64) -> Result<(), PythonError> {
        let Some(quotas) = &self.quotas else {
            return Ok(());
        };
        let repo = target.repo.repository_name()?;
        match quotas.check(&repo, incoming).await {
            Ok(()) => Ok(()),
            Err(crate::quota::QuotaError::Exceeded(e)) => {
                quotas.refused();
                tracing::info!(scope = %e.scope, quota = e.quota, usage = e.usage, "upload refused by a storage quota");
                Err(PythonError::QuotaExceeded(e.to_string()))
            }
            Err(e) => Err(PythonError::Storage(e.to_string())),
        }
    }

    /// Refuse `principal` unless it may perform `operation` on the
    /// repository `name`, then look the repository up: a refused caller
    /// learns nothing about it. An anonymous caller gets
    /// [`AuthError::Unauthenticated`], others [`AuthError::Denied`].
    async fn authorized(
        &self,
        principal: &Principal,
        operation: PythonOperation,
        name: &RepositoryName,
    ) -> Result<Repository, PythonError> {
        self.access
            .authorize(
                principal,
                operation.permission(),
                &operation::repository_resource(name),
            )
            .await?;
        Ok(self.repositories.get(name).await?)
    }

    /// [`Self::authorized`], for a repository that must hold Python packages.
    async fn python_repository(
        &self,
        principal: &Principal,
        operation: PythonOperation,
        name: &RepositoryName,
    ) -> Result<Repository, PythonError> {
        let repo = self.authorized(principal, operation, name).await?;
        if repo.format != Format::Python {
            return Err(PythonError::NotFound(format!(
                "{name} is a {} repository, not a Python one",
                repo.format.as_str()
            )));
        }
        Ok(repo)
    }

    /// The project list (normalised names).
    pub async fn project_list(
        &self,
        principal: &Principal,
        name: &RepositoryName,
    ) -> Result<Arc<Vec<String>>, PythonError> {
        Ok(self.project_list_answered(principal, name).await?.value)
    }

    /// [`Self::project_list`], and how a remote repository's cache answered.
    pub async fn project_list_answered(
        &self,
        principal: &Principal,
        name: &RepositoryName,
    ) -> Result<Answered<Arc<Vec<String>>>, PythonError> {
        let repo = self
            .python_repository(principal, PythonOperation::ProjectList, name)
            .await?;
        let uncached = |value| Answered { value, cache: None };
        match repo.mode {
            Mode::RemoteRepository => {
                let (value, report) = self.remote.project_list_answered(&repo).await?;
                Ok(Answered {
                    value,
                    cache: Some(report),
                })
            }
            Mode::StandardRepository => {
                Ok(uncached(Arc::new(self.hosted.project_list(&repo).await?)))
            }
            Mode::VirtualRepository => Ok(uncached(self.virtual_project_list(&repo).await?)),
        }
    }

    /// A project's page, with file URLs pointing at entrepot.
    pub async fn project_page(
        &self,
        principal: &Principal,
        name: &RepositoryName,
        project: &str,
    ) -> Result<Arc<ServedPage>, PythonError> {
        Ok(self
            .project_page_answered(principal, name, project)
            .await?
            .value)
    }

    /// [`Self::project_page`], and how a remote repository's cache answered.
    pub async fn project_page_answered(
        &self,
        principal: &Principal,
        name: &RepositoryName,
        project: &str,
    ) -> Result<Answered<Arc<ServedPage>>, PythonError> {
        let repo = self
            .python_repository(principal, PythonOperation::ProjectPage, name)
            .await?;
        let uncached = |value| Answered { value, cache: None };
        match repo.mode {
            Mode::RemoteRepository => {
                let (value, report) = self.remote.project_page_answered(&repo, project).await?;
                Ok(Answered {
                    value,
                    cache: Some(report),
                })
            }
            Mode::StandardRepository => Ok(uncached(Arc::new(ServedPage::new(
                self.hosted.project_page(&repo, project).await?,
            )))),
            Mode::VirtualRepository => Ok(uncached(
                self.virtual_page(&repo, project).await?.page.clone(),
            )),
        }
    }

    /// A file, ready to be read; for a remote repository, its download
    /// starts if it is not cached.
    pub async fn file(
        &self,
        principal: &Principal,
        name: &RepositoryName,
        sha256: &str,
        filename: &str,
    ) -> Result<LocatedFile, PythonError> {
        let repo = self
            .python_repository(principal, PythonOperation::File, name)
            .await?;
        match repo.mode {
            Mode::RemoteRepository => self.remote.file(&repo, sha256, filename).await,
            Mode::StandardRepository => self.hosted.file(&repo, sha256, filename).await,
            Mode::VirtualRepository => self.virtual_file(&repo, sha256, filename).await,
        }
    }

    /// The standard repository `name`, if `principal` may upload to it and
    /// it takes uploads; to be given to [`Self::stage`] and [`Self::upload`].
    pub async fn upload_target(
        &self,
        principal: &Principal,
        name: &RepositoryName,
    ) -> Result<UploadTarget, PythonError> {
        let repo = self
            .python_repository(principal, PythonOperation::Upload, name)
            .await?;
        if let Some(config) = &repo.virtual_repository_config {
            let members: Vec<String> = config.members().iter().map(|m| m.to_string()).collect();
            return Err(PythonError::NotAllowed(format!(
                "{} is a virtual repository and takes no uploads; upload to one of its standard members instead (members, by priority: {})",
                repo.name,
                members.join(", ")
            )));
        }
        self.hosted.accepts_uploads(&repo)?;
        Ok(UploadTarget { repo })
    }

    /// Stream an upload's file to the staging area (hashing it, capped at
    /// the largest upload), for [`Self::upload`].
    pub async fn stage<S, E>(
        &self,
        _target: &UploadTarget,
        body: S,
    ) -> Result<StagedFile, PythonError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        self.hosted.stage(body).await
    }

    /// Store a staged file as a release file of `target`.
    pub async fn upload(
        &self,
        target: &UploadTarget,
        form: &UploadForm,
        staged: StagedFile,
    ) -> Result<(), PythonError> {
        let Some(quotas) = &self.quotas else {
            return self.hosted.upload(&target.repo, form, staged).await;
        };
        // The file's bytes are reserved while it is stored, so that
        // concurrent uploads are weighed against each other.
        let repo = target.repo.repository_name()?;
        let reservation = uuid::Uuid::new_v4().to_string();
        let held = match quotas.reserve(&reservation, &repo, staged.size).await {
            Ok(held) => held,
            Err(crate::quota::QuotaError::Exceeded(e)) => {
                quotas.refused();
                tracing::info!(scope = %e.scope, quota = e.quota, usage = e.usage, reserved = e.reserved, "upload refused by a storage quota");
                return Err(PythonError::QuotaExceeded(e.to_string()));
            }
            Err(e) => return Err(PythonError::Storage(e.to_string())),
        };
        let stored = self.hosted.upload(&target.repo, form, staged).await;
        if held {
            quotas.release(&reservation).await;
        }
        stored
    }

    /// Yank (or unyank) every file of a release of a hosted repository.
    /// `request` is the verb's JSON body as sent (empty, or an object with
    /// an optional `reason`), parsed once the caller is authorized, so a
    /// refused caller is refused whatever it sent. Returns how many files
    /// changed.
    pub async fn set_yanked(
        &self,
        principal: &Principal,
        name: &RepositoryName,
        package: &str,
        version: &str,
        yanked: bool,
        request: &[u8],
    ) -> Result<u64, PythonError> {
        let repo = self
            .authorized(principal, PythonOperation::SetYanked, name)
            .await?;
        let request = YankRequest::parse(request)?;
        self.hosted
            .set_yanked(&repo, package, version, yanked, request.reason.as_deref())
            .await
    }
}

/// The body of a `:yank` or `:unyank` request.
#[derive(serde::Deserialize, Default)]
struct YankRequest {
    /// Why the release is yanked (PEP 592), if the client says.
    #[serde(default)]
    reason: Option<String>,
}

impl YankRequest {
    /// An empty body, or a JSON object.
    fn parse(body: &[u8]) -> Result<Self, PythonError> {
        if body.is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_slice(body)
            .map_err(|e| PythonError::Invalid(format!("bad request body: {e}")))
    }
}
