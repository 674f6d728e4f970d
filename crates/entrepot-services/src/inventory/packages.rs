//! Packages and versions in Artifact Registry's sense, whatever the
//! format: a Docker repository's packages are its image names and their
//! versions its manifests; a Python repository's are its projects and
//! their versions.

use entrepot_domain::{Format, Mode, RepositoryName};
use entrepot_storage::{DockerPackageRecord, PythonPackageRecord};

use super::{ArtifactInventory, DockerImage, InventoryError, PythonVersion};
use crate::access::{Permission, Principal};
use crate::paging::{Page, PageRequest};

/// A package of either format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Package {
    /// An image name.
    Docker(DockerPackageRecord),
    /// A project of a hosted Python repository.
    Python(PythonPackageRecord),
    /// A project a remote Python repository holds cached files of: its
    /// times are when they were cached.
    PythonCached(PythonPackageRecord),
}

/// A version of either format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// A manifest of the image.
    Docker(DockerImage),
    /// A version of a hosted Python project, with its files.
    Python(PythonVersion),
    /// A version of a Python project with the files a remote repository
    /// cached: their upload times are when they were cached.
    PythonCached(PythonVersion),
}

/// Where a page of versions starts: a Docker page is keyed by (image,
/// digest), a Python one by version; the key carries both shapes.
pub type VersionKey = (String, String);

impl ArtifactInventory {
    /// One page of a repository's packages.
    pub async fn packages(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        page: &PageRequest<String>,
    ) -> Result<Page<Package, String>, InventoryError> {
        let repo = self
            .repository(caller, Permission::DownloadArtifacts, name)
            .await?;
        Ok(match repo.format {
            Format::Docker => self
                .docker_packages(caller, name, page)
                .await?
                .map(Package::Docker),
            Format::Python if repo.mode == Mode::RemoteRepository => self
                .python_cached_packages(caller, name, page)
                .await?
                .map(Package::PythonCached),
            Format::Python => self
                .python_packages(caller, name, page)
                .await?
                .map(Package::Python),
        })
    }

    /// One page of a package's versions (with their tags for Docker).
    pub async fn versions(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        package: &str,
        page: &PageRequest<VersionKey>,
    ) -> Result<Page<Version, VersionKey>, InventoryError> {
        let repo = self
            .repository(caller, Permission::DownloadArtifacts, name)
            .await?;
        Ok(match repo.format {
            Format::Docker => self
                .docker_images(caller, name, Some(package), page, true)
                .await?
                .map(Version::Docker),
            Format::Python => {
                let by_version = PageRequest {
                    after: page.after.as_ref().map(|(_, v)| v.clone()),
                    size: page.size,
                };
                let (versions, kind): (_, fn(PythonVersion) -> Version) =
                    if repo.mode == Mode::RemoteRepository {
                        let versions = self
                            .python_cached_versions(caller, name, package, &by_version)
                            .await?;
                        (versions, Version::PythonCached)
                    } else {
                        let versions = self
                            .python_versions(caller, name, package, &by_version)
                            .await?;
                        (versions, Version::Python)
                    };
                Page {
                    next: versions.next.map(|v| (String::new(), v)),
                    items: versions.items.into_iter().map(kind).collect(),
                }
            }
        })
    }
}
