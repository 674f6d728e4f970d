//! What repositories hold, for people: Docker images with their tags and
//! sizes, Python projects with their versions and files (uploaded to a
//! hosted repository, or cached by a remote one), repository and
//! store sizes, and deleting an image the way `gcloud artifacts docker
//! images delete` does.
//!
//! Every method authorizes its caller here: reading needs
//! `artifactregistry.repositories.downloadArtifacts` on the repository,
//! deleting `artifactregistry.repositories.deleteArtifacts`. The caller is
//! authorized before the repository is looked up, so that a caller who may
//! not read learns nothing, not even whether it exists.

mod docker;
mod packages;
mod python;
mod python_cache;

use std::sync::Arc;

use entrepot_domain::{Format, ProjectId, Repository, RepositoryName};
use entrepot_storage::{InventoryStore, MetadataStore, StoreError};

use crate::access::{AccessControl, AuthError, Permission, Principal, Resource};
use crate::eviction::pulls::PullTracker;
use crate::oci::{OciRepositories, RegistryError};

pub use docker::{DeletedImage, DockerImage, ImageReference};
pub use entrepot_storage::{
    DockerImageRecord, DockerPackageRecord, DockerTagRecord, PythonCachedFileRecord,
    PythonPackageRecord, PythonVersionFile,
};
pub use packages::{Package, Version, VersionKey};
pub use python::PythonVersion;
pub use python_cache::PythonCachedFile;

/// Tags listed with each image of an image listing; `docker tags list`
/// lists them all. Bounds the answer when one manifest has many tags.
pub const MAX_TAGS_PER_IMAGE: u32 = 1000;

/// Errors of the inventory.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The caller may not do this.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// No such repository, image, tag, package or version.
    #[error("{0}")]
    NotFound(String),
    /// The request does not apply (a Python listing of a Docker repository,
    /// a bad name).
    #[error("{0}")]
    Invalid(String),
    /// The request is refused in the current state (a tagged image deleted
    /// without deleting its tags, a manifest an index still needs).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The registry failed otherwise while deleting.
    #[error(transparent)]
    Registry(RegistryError),
}

/// A repository's size, as lists and descriptions show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySize {
    /// The repository's canonical name.
    pub name: String,
    /// Bytes it holds (see [`MetadataStore::repository_size_bytes`]).
    pub bytes: u64,
}

/// When a repository's content was last pulled, as lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryLastPull {
    /// The repository's canonical name.
    pub name: String,
    /// The latest recorded pull of one of its manifests or Python files
    /// (unix ms).
    pub last_pull_ms: Option<i64>,
}

/// The inventory service.
#[derive(Clone)]
pub struct ArtifactInventory {
    store: Arc<dyn InventoryStore>,
    meta: Arc<dyn MetadataStore>,
    access: Arc<dyn AccessControl>,
    registry: Arc<OciRepositories>,
    pulls: Option<Arc<PullTracker>>,
}

fn resource(name: &RepositoryName) -> Resource {
    Resource::Repository {
        project: name.project.to_string(),
        repository: name.repository.to_string(),
    }
}

impl ArtifactInventory {
    /// An inventory over these stores; deletions go through `registry`, so
    /// they follow its rules (hosted repositories only, an index's children
    /// kept).
    pub fn new(
        store: Arc<dyn InventoryStore>,
        meta: Arc<dyn MetadataStore>,
        access: Arc<dyn AccessControl>,
        registry: Arc<OciRepositories>,
    ) -> Self {
        Self {
            store,
            meta,
            access,
            registry,
            pulls: None,
        }
    }

    /// Read last-pull times through `pulls`: the pulls it holds in memory
    /// are written before a listing that shows them, so that a listing
    /// never shows an older time than the pull just served.
    pub fn with_pull_tracker(mut self, pulls: Arc<PullTracker>) -> Self {
        self.pulls = Some(pulls);
        self
    }

    /// Write the pending pulls (a no-op when none are pending); a failure
    /// leaves the listing with the times last written.
    async fn flush_pulls(&self) {
        if let Some(pulls) = &self.pulls {
            if let Err(e) = pulls.flush().await {
                tracing::warn!(error = %e, "could not record the last pull times before a listing");
            }
        }
    }

    /// The repository, once `caller` is known to hold `permission` on it.
    async fn repository(
        &self,
        caller: &Principal,
        permission: Permission,
        name: &RepositoryName,
    ) -> Result<Repository, InventoryError> {
        self.access
            .authorize(caller, permission, &resource(name))
            .await?;
        self.meta
            .get_repository(name)
            .await?
            .ok_or_else(|| InventoryError::NotFound(format!("repository {name} not found")))
    }

    /// The repository for reading, which must be of `format`.
    async fn readable(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        format: Format,
    ) -> Result<Repository, InventoryError> {
        let repo = self
            .repository(caller, Permission::DownloadArtifacts, name)
            .await?;
        if repo.format != format {
            return Err(InventoryError::Invalid(format!(
                "{name} is a {} repository, not a {} one: {}",
                repo.format.as_str(),
                format.as_str(),
                match repo.format {
                    Format::Docker =>
                        "list its images with `entrepot artifacts docker images list`",
                    _ => "list its packages with `entrepot artifacts packages list`",
                }
            )));
        }
        Ok(repo)
    }

    /// The sizes of `repositories` (a page of a listing of `project`), for
    /// a caller with `artifactregistry.repositories.list` on the project.
    /// One indexed sum per repository.
    pub async fn repository_sizes(
        &self,
        caller: &Principal,
        project: &ProjectId,
        repositories: &[RepositoryName],
    ) -> Result<Vec<RepositorySize>, InventoryError> {
        self.access
            .authorize(
                caller,
                Permission::RepositoriesList,
                &Resource::Project(project.to_string()),
            )
            .await?;
        let mut sizes = Vec::with_capacity(repositories.len());
        for name in repositories.iter().filter(|n| n.project == *project) {
            sizes.push(RepositorySize {
                name: name.to_string(),
                bytes: self.meta.repository_size_bytes(name).await?,
            });
        }
        Ok(sizes)
    }

    /// When each of `repositories` (a page of a listing of `project`) was
    /// last pulled, for a caller with `artifactregistry.repositories.list`
    /// on the project. One indexed probe per repository.
    pub async fn repository_last_pulls(
        &self,
        caller: &Principal,
        project: &ProjectId,
        repositories: &[RepositoryName],
    ) -> Result<Vec<RepositoryLastPull>, InventoryError> {
        self.access
            .authorize(
                caller,
                Permission::RepositoriesList,
                &Resource::Project(project.to_string()),
            )
            .await?;
        self.flush_pulls().await;
        let mut pulls = Vec::with_capacity(repositories.len());
        for name in repositories.iter().filter(|n| n.project == *project) {
            pulls.push(RepositoryLastPull {
                name: name.to_string(),
                last_pull_ms: self.store.repository_last_pull(name).await?,
            });
        }
        Ok(pulls)
    }

    /// Bytes of the whole store, for a caller who administers the store
    /// (`entrepot.storage.collectGarbage` on the organisation); `None` for
    /// anyone else. The total is kept from project admins: blobs are shared
    /// across projects, so watching it grow or not after a push would tell
    /// whether another tenant already stored those bytes.
    pub async fn store_size(&self, caller: &Principal) -> Result<Option<u64>, InventoryError> {
        let allowed = self
            .access
            .authorize(
                caller,
                Permission::StorageCollectGarbage,
                &Resource::Organization,
            )
            .await;
        match allowed {
            Ok(()) => Ok(Some(self.store.store_size_bytes().await?)),
            Err(AuthError::Denied { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
