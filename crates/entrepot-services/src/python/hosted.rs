//! Standard (hosted) Python repositories: twine uploads, served through the
//! simple repository API, with PEP 592 yanking.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use entrepot_domain::{Mode, Repository, Sha256Hasher};
use entrepot_storage::{
    BlobStore, ImageRef, PythonFileRecord, PythonStore, StoreError, PYTHON_FILES_IMAGE,
};
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use super::dist::{extract_metadata, normalize, parse_core_metadata, parse_filename};
use super::index::{first_seen, IndexFile, ProjectPage};
use super::{file_path, sha256_digest, LocatedFile, PythonError};
use crate::clock::now_rfc3339;
use crate::eviction::pulls::PullTracker;

/// Default largest upload: 1 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 1024 * 1024 * 1024;

/// An uploaded file on local disk, hashed, not yet committed. Removed on drop.
pub struct StagedFile {
    path: PathBuf,
    /// Lower-case hex sha256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The form fields of a legacy upload that entrepot checks.
#[derive(Debug, Clone, Default)]
pub struct UploadForm {
    /// `:action` (must be `file_upload`).
    pub action: String,
    /// `name`.
    pub name: String,
    /// `version`.
    pub version: String,
    /// `filetype` (`bdist_wheel` or `sdist`).
    pub filetype: String,
    /// `sha256_digest`, if sent.
    pub sha256_digest: Option<String>,
    /// `requires_python`, if sent.
    pub requires_python: Option<String>,
    /// The file name of the `content` part.
    pub filename: String,
}

/// Hosted Python repositories.
pub struct HostedPython {
    store: Arc<dyn PythonStore>,
    blobs: Arc<dyn BlobStore>,
    spool: PathBuf,
    max_upload_bytes: u64,
    /// Where downloads of files are told, for the inventory's last pulls.
    pulls: Option<Arc<PullTracker>>,
}

impl HostedPython {
    /// Hosted repositories staging uploads in `spool` (created, and emptied of
    /// what an earlier process left; best on the blob store's filesystem).
    pub fn new(
        store: Arc<dyn PythonStore>,
        blobs: Arc<dyn BlobStore>,
        spool: PathBuf,
        max_upload_bytes: u64,
    ) -> std::io::Result<Self> {
        crate::workdir::fresh_dir(&spool)?;
        Ok(Self {
            store,
            blobs,
            spool,
            max_upload_bytes,
            pulls: None,
        })
    }

    /// Tell `pulls` of every file downloaded (not of metadata files), in
    /// its batch, so that listings show when each was last downloaded.
    pub fn with_pull_tracker(mut self, pulls: Arc<PullTracker>) -> Self {
        self.pulls = Some(pulls);
        self
    }

    /// Write an upload's bytes to disk, hashing as they arrive; refuses more than
    /// the size cap without reading further.
    pub async fn stage<S, E>(&self, mut body: S) -> Result<StagedFile, PythonError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let storage = |e: std::io::Error| PythonError::Storage(e.to_string());
        let path = self.spool.join(uuid::Uuid::new_v4().to_string());
        let mut file = tokio::fs::File::create(&path).await.map_err(storage)?;
        let mut staged = StagedFile {
            path,
            sha256: String::new(),
            size: 0,
        };
        let mut hasher = Sha256Hasher::new();
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| PythonError::Invalid(format!("the upload broke off: {e}")))?;
            if hasher.len() + chunk.len() as u64 > self.max_upload_bytes {
                return Err(PythonError::TooLarge(format!(
                    "File too large: the limit is {} bytes",
                    self.max_upload_bytes
                )));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(storage)?;
        }
        file.flush().await.map_err(storage)?;
        staged.size = hasher.len();
        staged.sha256 = hasher.finish().hex().to_owned();
        Ok(staged)
    }

    /// Refuse uploads to repositories that are not standard ones, before any
    /// byte is read.
    pub fn accepts_uploads(&self, repo: &Repository) -> Result<(), PythonError> {
        if repo.mode == Mode::StandardRepository {
            Ok(())
        } else {
            Err(PythonError::NotAllowed(format!(
                "{} is a {} repository; upload to a standard repository",
                repo.name,
                if repo.mode == Mode::RemoteRepository {
                    "remote"
                } else {
                    "virtual"
                }
            )))
        }
    }

    /// Check an upload against its form and its own metadata, then commit it.
    pub async fn upload(
        &self,
        repo: &Repository,
        form: &UploadForm,
        staged: StagedFile,
    ) -> Result<(), PythonError> {
        self.accepts_uploads(repo)?;
        if form.action != "file_upload" {
            return Err(PythonError::Invalid(format!(
                "Invalid value for ':action': {:?}; only file_upload is supported",
                form.action
            )));
        }
        let parsed = parse_filename(&form.filename)
            .map_err(|e| PythonError::Invalid(format!("Invalid distribution file. {e}")))?;
        if normalize(&parsed.name) != normalize(&form.name) {
            return Err(PythonError::Invalid(format!(
                "Start filename for {:?} with {:?}.",
                form.name,
                normalize(&form.name).replace('-', "_")
            )));
        }
        if !same_version(&parsed.version, &form.version) {
            return Err(PythonError::Invalid(format!(
                "Version in filename {:?} should be {:?}",
                parsed.version, form.version
            )));
        }
        if let Some(expected) = &form.sha256_digest {
            if !expected.eq_ignore_ascii_case(&staged.sha256) {
                return Err(PythonError::Invalid(format!(
                    "The digest supplied does not match a digest calculated from the uploaded file (sha256 {expected} was sent, the file hashes to {})",
                    staged.sha256
                )));
            }
        }
        let ids = repo.repository_name()?;
        if self.store.file(&ids, &form.filename).await?.is_some() {
            return Err(PythonError::FileExists(form.filename.clone()));
        }
        let (path, kind) = (staged.path.clone(), parsed.kind);
        let metadata = tokio::task::spawn_blocking(move || extract_metadata(&path, kind))
            .await
            .map_err(|e| PythonError::Storage(e.to_string()))?
            .map_err(|e| PythonError::Invalid(format!("Invalid distribution file. {e}")))?;
        let core = parse_core_metadata(&metadata);
        if normalize(&core.name) != normalize(&form.name)
            || !same_version(&core.version, &form.version)
        {
            return Err(PythonError::Invalid(format!(
                "The file's metadata names {} {}, but the upload says {} {}",
                core.name, core.version, form.name, form.version
            )));
        }
        let metadata_digest = entrepot_domain::Digest::of(&metadata);
        let body = futures::stream::once(async move { Ok(Bytes::from(metadata)) }).boxed();
        self.blobs.put_blob(&metadata_digest, body, None).await?;
        let digest = sha256_digest(&staged.sha256)?;
        self.blobs
            .import_verified_file(&digest, &staged.path)
            .await?;
        let record = PythonFileRecord {
            filename: form.filename.clone(),
            name: normalize(&form.name),
            version: form.version.clone(),
            sha256: staged.sha256.clone(),
            size: staged.size,
            requires_python: core
                .requires_python
                .or_else(|| form.requires_python.clone().filter(|r| !r.is_empty())),
            metadata_sha256: Some(metadata_digest.hex().to_owned()),
            yanked: false,
            yanked_reason: None,
            upload_time: now_rfc3339(),
        };
        match self.store.add_file(&ids, &record).await {
            Ok(()) => Ok(()),
            Err(StoreError::AlreadyExists) => Err(PythonError::FileExists(form.filename.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// Names of the projects with files.
    pub async fn project_list(&self, repo: &Repository) -> Result<Vec<String>, PythonError> {
        Ok(self.store.project_names(&repo.repository_name()?).await?)
    }

    /// A project's page.
    pub async fn project_page(
        &self,
        repo: &Repository,
        name: &str,
    ) -> Result<ProjectPage, PythonError> {
        let ids = repo.repository_name()?;
        let name = normalize(name);
        let files = self.store.files_of(&ids, &name).await?;
        if files.is_empty() {
            return Err(PythonError::NotFound(format!(
                "project {name:?} has no files in {}",
                repo.name
            )));
        }
        let versions = first_seen(files.iter().map(|f| f.version.clone()));
        let files = files
            .into_iter()
            .map(|f| IndexFile {
                url: file_path(&ids, &f.sha256, &f.filename),
                hashes: BTreeMap::from([("sha256".to_owned(), f.sha256.clone())]),
                requires_python: f.requires_python,
                yanked: f.yanked.then(|| f.yanked_reason.unwrap_or_default()),
                core_metadata: f
                    .metadata_sha256
                    .map(|h| BTreeMap::from([("sha256".to_owned(), h)])),
                size: Some(f.size),
                upload_time: super::index::parse_upload_time(&f.upload_time),
                filename: f.filename,
            })
            .collect();
        Ok(ProjectPage {
            name,
            files,
            versions,
            stale: false,
        })
    }

    /// The blob digest (hex) behind a file or its `.metadata`, and its size.
    async fn locate(
        &self,
        repo: &Repository,
        sha256: &str,
        filename: &str,
    ) -> Result<(String, u64), PythonError> {
        let (file, metadata) = match filename.strip_suffix(".metadata") {
            Some(f) => (f, true),
            None => (filename, false),
        };
        let not_found = || PythonError::NotFound(format!("{filename} is not in {}", repo.name));
        let record = self
            .store
            .file(&repo.repository_name()?, file)
            .await?
            .filter(|r| r.sha256.eq_ignore_ascii_case(sha256))
            .ok_or_else(not_found)?;
        if metadata {
            let hex = record.metadata_sha256.ok_or_else(not_found)?;
            let size = self
                .blobs
                .stat(&sha256_digest(&hex)?)
                .await?
                .ok_or_else(not_found)?;
            Ok((hex, size))
        } else {
            Ok((record.sha256, record.size))
        }
    }

    /// A file, ready to be read; a distribution file's download is
    /// recorded (in the pull tracker's batch, never a write per request).
    pub async fn file(
        &self,
        repo: &Repository,
        sha256: &str,
        filename: &str,
    ) -> Result<LocatedFile, PythonError> {
        let (hex, size) = self.locate(repo, sha256, filename).await?;
        let digest = sha256_digest(&hex)?;
        if let (Some(pulls), false) = (&self.pulls, filename.ends_with(".metadata")) {
            let name = repo.repository_name()?;
            let image = ImageRef {
                project: name.project.to_string(),
                repository: name.repository.to_string(),
                image: PYTHON_FILES_IMAGE.to_owned(),
            };
            pulls.record(&image, &digest);
        }
        Ok(LocatedFile::stored(self.blobs.clone(), digest, size))
    }

    /// PEP 592: yank (or unyank) every file of a version.
    pub async fn set_yanked(
        &self,
        repo: &Repository,
        name: &str,
        version: &str,
        yanked: bool,
        reason: Option<&str>,
    ) -> Result<u64, PythonError> {
        if repo.mode != Mode::StandardRepository {
            return Err(PythonError::NotAllowed(format!(
                "{} is not a standard repository; only uploaded files can be yanked",
                repo.name
            )));
        }
        let n = self
            .store
            .set_yanked(
                &repo.repository_name()?,
                &normalize(name),
                version,
                yanked,
                reason,
            )
            .await?;
        if n == 0 {
            return Err(PythonError::NotFound(format!(
                "{name} {version} has no files in {}",
                repo.name
            )));
        }
        Ok(n)
    }
}

/// Versions compare case-insensitively, `_` and `-` alike (file names escape `-`).
fn same_version(a: &str, b: &str) -> bool {
    let canon = |v: &str| v.trim().to_ascii_lowercase().replace('_', "-");
    canon(a) == canon(b)
}
