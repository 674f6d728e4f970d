//! The inventory's view of the metadata store: what a repository holds, one
//! keyset page at a time, and how many bytes that is.
//!
//! Every listing reads along an index (the primary keys of `manifests`,
//! `tags`, `images`, and `python_files_by_name`): a page costs one seek and
//! its own rows, however large the repository.

use async_trait::async_trait;
use entrepot_domain::{Digest, RepositoryName};

use crate::metadata::StoreError;

/// One manifest of a Docker repository, as the inventory lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerImageRecord {
    /// Image name inside the repository (`team/app`).
    pub image: String,
    /// The manifest's digest.
    pub digest: Digest,
    /// Media type it was pushed with.
    pub media_type: String,
    /// Bytes of the manifest itself.
    pub manifest_bytes: u64,
    /// Bytes of the blobs it names (config and layers), each counted once.
    pub blob_bytes: u64,
    /// RFC 3339 time the manifest was stored (pushed or first pulled through).
    pub create_time: String,
    /// Tags pointing at it, in lexical order, at most the limit asked for.
    pub tags: Vec<String>,
    /// When it was last pulled (unix ms), as last recorded; `None` if no
    /// pull was recorded since it was stored.
    pub last_pull_ms: Option<i64>,
}

/// One tag of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerTagRecord {
    /// The tag.
    pub tag: String,
    /// The manifest it points at.
    pub digest: Digest,
    /// RFC 3339 time it was last pointed.
    pub update_time: String,
    /// When the manifest it points at was last pulled (unix ms), if recorded.
    pub last_pull_ms: Option<i64>,
}

/// One image name of a Docker repository (a "package").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerPackageRecord {
    /// Image name.
    pub image: String,
    /// RFC 3339 time of its oldest manifest.
    pub create_time: String,
    /// RFC 3339 time of its newest manifest.
    pub update_time: String,
    /// The latest recorded pull of one of its manifests (unix ms).
    pub last_pull_ms: Option<i64>,
}

/// One project (distribution name) of a hosted Python repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonPackageRecord {
    /// Normalised project name.
    pub name: String,
    /// Distinct versions uploaded.
    pub versions: u64,
    /// Files uploaded.
    pub files: u64,
    /// Their bytes.
    pub size: u64,
    /// RFC 3339 time of the first upload.
    pub create_time: String,
    /// RFC 3339 time of the last upload.
    pub update_time: String,
    /// The latest recorded download of one of its files (unix ms).
    pub last_pull_ms: Option<i64>,
}

/// One uploaded file of a Python version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonVersionFile {
    /// The version it belongs to, as uploaded.
    pub version: String,
    /// File name.
    pub filename: String,
    /// Hex sha256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// RFC 3339 upload time.
    pub upload_time: String,
    /// PEP 592 yanked.
    pub yanked: bool,
    /// Why, if yanked with a reason.
    pub yanked_reason: Option<String>,
    /// When it was last downloaded (unix ms), as last recorded; `None` if
    /// no download was recorded.
    pub last_pull_ms: Option<i64>,
}

/// A file a remote Python repository has cached: named by an index page it
/// fetched, and its bytes linked to the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonCachedFileRecord {
    /// Normalised name of the project whose page lists it.
    pub name: String,
    /// File name.
    pub filename: String,
    /// Hex sha256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// RFC 3339 time it was cached (its bytes linked to the repository);
    /// `None` for a link older than link times.
    pub cache_time: Option<String>,
    /// When it was last downloaded (unix ms), as last recorded; `None` if
    /// no download was recorded since it was cached.
    pub last_pull_ms: Option<i64>,
}

/// A link time (unix seconds) as the RFC 3339 time a file was cached;
/// links made before link times were kept read 0, unknown.
pub(crate) fn cache_time(link_time: i64) -> Option<String> {
    (link_time > 0).then(|| entrepot_domain::clock::rfc3339(link_time))
}

/// Listings and sizes of what repositories hold.
#[async_trait]
pub trait InventoryStore: Send + Sync + 'static {
    /// Manifests of a repository ordered by (image, digest), those after
    /// `after`, at most `limit`, each with at most `max_tags` of its tags.
    async fn docker_images(
        &self,
        repo: &RepositoryName,
        after: Option<(&str, &str)>,
        limit: u32,
        max_tags: u32,
    ) -> Result<Vec<DockerImageRecord>, StoreError>;

    /// Tags of one image in lexical order, after `after`, at most `limit`.
    async fn docker_tags(
        &self,
        repo: &RepositoryName,
        image: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DockerTagRecord>, StoreError>;

    /// One tag of an image, if it exists.
    async fn docker_tag(
        &self,
        repo: &RepositoryName,
        image: &str,
        tag: &str,
    ) -> Result<Option<DockerTagRecord>, StoreError>;

    /// Tags pointing at one manifest, in lexical order, at most `limit`.
    async fn docker_tags_of(
        &self,
        repo: &RepositoryName,
        image: &str,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// Image names of a repository, after `after`, at most `limit`.
    async fn docker_packages(
        &self,
        repo: &RepositoryName,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DockerPackageRecord>, StoreError>;

    /// Projects of a hosted Python repository by name, after `after`, at
    /// most `limit`.
    async fn python_packages(
        &self,
        repo: &RepositoryName,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<PythonPackageRecord>, StoreError>;

    /// The files of at most `limit` versions of one project (versions in
    /// lexical order, after `after`), ordered by version then file name.
    async fn python_version_files(
        &self,
        repo: &RepositoryName,
        name: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<PythonVersionFile>, StoreError>;

    /// The files a remote Python repository has cached, ordered by
    /// (project, file name), those after `after`, at most `limit`.
    async fn python_cached_files(
        &self,
        repo: &RepositoryName,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<PythonCachedFileRecord>, StoreError>;

    /// The latest recorded pull of a manifest or Python file of `repo`
    /// (unix ms), `None` if none was recorded. One probe of the pull records' primary key.
    async fn repository_last_pull(&self, repo: &RepositoryName) -> Result<Option<i64>, StoreError>;

    /// Bytes of the whole store: every blob (each once, whoever links it)
    /// and every stored manifest. A scan of the `blobs` and `manifests`
    /// rows (their sizes, never their content), not of files.
    async fn store_size_bytes(&self) -> Result<u64, StoreError>;
}
