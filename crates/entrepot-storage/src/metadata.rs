//! The metadata store: every fact about resources and content except the bytes of
//! blobs.

use async_trait::async_trait;
use entrepot_domain::iam::Policy;
use entrepot_domain::{Digest, ProjectId, Repository, RepositoryId, RepositoryName};

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row to create exists already.
    #[error("already exists")]
    AlreadyExists,
    /// A stored value could not be decoded (a bug or a damaged database).
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("metadata database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The blob is being deleted by the garbage collector: it can no longer
    /// be linked; the client pushes (or pulls) it again once it is gone.
    #[error("blob {0} is being garbage-collected; retry, and it is stored again")]
    BlobBeingCollected(Digest),
    /// Migrations failed at start-up.
    #[error("metadata database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// A project row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    /// Project id.
    pub id: ProjectId,
    /// Project number, unique, used in the service agent's identity.
    pub number: i64,
    /// RFC 3339 creation time.
    pub create_time: String,
}

/// Addresses one image inside a repository: `{project}/{repository}/{image}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Project id.
    pub project: String,
    /// Repository id.
    pub repository: String,
    /// Image name inside the repository.
    pub image: String,
}

/// A stored manifest.
#[derive(Debug, Clone)]
pub struct ManifestRecord {
    /// Digest of `content`.
    pub digest: Digest,
    /// Media type it was pushed with.
    pub media_type: String,
    /// Artifact type (or config media type), for referrers.
    pub artifact_type: Option<String>,
    /// Subject digest, for referrers.
    pub subject: Option<Digest>,
    /// Annotations as JSON text, for referrers.
    pub annotations: Option<String>,
    /// The exact bytes pushed.
    pub content: Vec<u8>,
}

/// One entry of a referrers listing.
#[derive(Debug, Clone)]
pub struct ReferrerRecord {
    /// Digest of the referring manifest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its artifact type.
    pub artifact_type: Option<String>,
    /// Its annotations as JSON text.
    pub annotations: Option<String>,
}

/// One entry of the catalog: an image that has at least one manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// `{project}/{repository}/{image}`.
    pub path: String,
}

/// A blob upload session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// Session id (a UUID).
    pub id: String,
    /// Where the blob will land.
    pub image: ImageRef,
    /// Bytes received so far.
    pub size: u64,
    /// Number of parts received so far.
    pub parts: u32,
    /// File names of those parts in the blob store, in order.
    pub part_names: Vec<String>,
    /// Unix seconds at creation.
    pub create_time: i64,
    /// Unix seconds at the last received part.
    pub update_time: i64,
}

/// Metadata storage. One implementation per database engine; every method is a
/// single atomic step.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Create a project; `AlreadyExists` if it does.
    async fn create_project(&self, id: &ProjectId) -> Result<ProjectRecord, StoreError>;
    /// Create a project and, in the same transaction, make `policy` the IAM
    /// policy of `projects/{id}` (replacing whatever was stored under that
    /// name). All or nothing: `AlreadyExists`, and no policy written, if the
    /// project exists.
    async fn create_project_with_policy(
        &self,
        id: &ProjectId,
        policy: &Policy,
    ) -> Result<ProjectRecord, StoreError>;
    /// Look a project up.
    async fn get_project(&self, id: &ProjectId) -> Result<Option<ProjectRecord>, StoreError>;
    /// Projects by id, those after `after` (all with `None`), at most `limit`:
    /// one keyset page, read along the primary key.
    async fn list_projects(
        &self,
        after: Option<&ProjectId>,
        limit: u32,
    ) -> Result<Vec<ProjectRecord>, StoreError>;

    /// Create a repository; `AlreadyExists` if it does.
    async fn create_repository(
        &self,
        name: &RepositoryName,
        repo: &Repository,
    ) -> Result<(), StoreError>;
    /// Look a repository up.
    async fn get_repository(&self, name: &RepositoryName)
        -> Result<Option<Repository>, StoreError>;
    /// Repositories of a project by id, those after `after` (all with `None`),
    /// at most `limit`: one keyset page, read along the primary key.
    async fn list_repositories(
        &self,
        project: &ProjectId,
        after: Option<&RepositoryId>,
        limit: u32,
    ) -> Result<Vec<Repository>, StoreError>;
    /// The virtual repositories of `format` in every project, by name (the
    /// catalog lists what they serve). The default walks every project's
    /// repositories; a backend answers with one query where it can.
    async fn virtual_repositories(
        &self,
        format: entrepot_domain::Format,
    ) -> Result<Vec<Repository>, StoreError> {
        const PAGE: u32 = 500;
        let mut found = Vec::new();
        let mut after_project: Option<ProjectId> = None;
        loop {
            let projects = self.list_projects(after_project.as_ref(), PAGE).await?;
            for project in &projects {
                let mut after: Option<RepositoryId> = None;
                loop {
                    let repos = self
                        .list_repositories(&project.id, after.as_ref(), PAGE)
                        .await?;
                    let full = repos.len() == PAGE as usize;
                    after = repos
                        .last()
                        .and_then(|r| r.repository_name().ok())
                        .map(|n| n.repository);
                    found.extend(repos.into_iter().filter(|r| {
                        r.format == format && r.mode == entrepot_domain::Mode::VirtualRepository
                    }));
                    if !full || after.is_none() {
                        break;
                    }
                }
            }
            if projects.len() < PAGE as usize {
                return Ok(found);
            }
            after_project = projects.last().map(|p| p.id.clone());
        }
    }
    /// Replace a repository's mutable fields; false if it does not exist.
    async fn update_repository(
        &self,
        name: &RepositoryName,
        repo: &Repository,
    ) -> Result<bool, StoreError>;
    /// Delete a repository with its manifests, tags, links and uploads; false if absent.
    async fn delete_repository(&self, name: &RepositoryName) -> Result<bool, StoreError>;
    /// Delete a repository as [`Self::delete_repository`] does and, in the
    /// transaction that removes the repository itself, its IAM policy (the
    /// one named `name`), so that a new
    /// repository of the same name never inherits its grants. False, and the
    /// policy left as it was, if the repository is absent.
    async fn delete_repository_with_policy(
        &self,
        name: &RepositoryName,
    ) -> Result<bool, StoreError>;

    /// Bytes a repository holds: its linked blobs (each counted once, however
    /// many images share it; pulled-through Python files are linked blobs
    /// too), its manifests and its uploaded Python files. 0 for a repository
    /// that holds nothing or does not exist. Costs a scan of the
    /// repository's own rows, never of the whole store.
    async fn repository_size_bytes(&self, name: &RepositoryName) -> Result<u64, StoreError>;

    /// Record a committed blob (idempotent) and link it to an image.
    async fn link_blob(
        &self,
        image: &ImageRef,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError>;
    /// Size of a blob if it is linked to the image.
    async fn linked_blob_size(
        &self,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError>;
    /// Size of a blob if it is linked to any image of the repository.
    async fn blob_size_in_repository(
        &self,
        project: &str,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError>;
    /// Size of a committed blob, wherever it is linked.
    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, StoreError>;
    /// Remove a blob's link from an image; false if it was not linked.
    async fn unlink_blob(&self, image: &ImageRef, digest: &Digest) -> Result<bool, StoreError>;

    /// Store a manifest (idempotent by digest) and, if given, point a tag at it.
    async fn put_manifest(
        &self,
        image: &ImageRef,
        manifest: &ManifestRecord,
        tag: Option<&str>,
    ) -> Result<(), StoreError>;
    /// A manifest by digest.
    async fn manifest_by_digest(
        &self,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<Option<ManifestRecord>, StoreError>;
    /// A manifest by tag.
    async fn manifest_by_tag(
        &self,
        image: &ImageRef,
        tag: &str,
    ) -> Result<Option<ManifestRecord>, StoreError>;
    /// Which of `digests` are manifests of the image, with their sizes in bytes.
    async fn existing_manifests(
        &self,
        image: &ImageRef,
        digests: &[Digest],
    ) -> Result<Vec<(Digest, u64)>, StoreError>;
    /// Which of `digests` are blobs linked to the image, with their sizes in bytes.
    async fn existing_blob_links(
        &self,
        image: &ImageRef,
        digests: &[Digest],
    ) -> Result<Vec<(Digest, u64)>, StoreError>;
    /// Images of `project` that link the blob `digest`, one per repository
    /// (the lexically first image of each), at most `limit` repositories.
    async fn images_linking_blob(
        &self,
        project: &str,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<ImageRef>, StoreError>;
    /// Indexes (and manifest lists) of the image whose bytes mention
    /// `digest`, at most `limit`: candidates the caller parses to know
    /// whether they reference it.
    async fn indexes_mentioning(
        &self,
        image: &ImageRef,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<ManifestRecord>, StoreError>;
    /// Delete a manifest and the tags pointing at it; false if absent.
    async fn delete_manifest(&self, image: &ImageRef, digest: &Digest) -> Result<bool, StoreError>;
    /// Delete one tag; false if absent.
    async fn delete_tag(&self, image: &ImageRef, tag: &str) -> Result<bool, StoreError>;
    /// Tags of an image in lexical order, after `last`, at most `limit`.
    async fn list_tags(
        &self,
        image: &ImageRef,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;
    /// Whether the image has any manifest.
    async fn image_exists(&self, image: &ImageRef) -> Result<bool, StoreError>;
    /// Manifests of the image whose subject is `subject`.
    async fn list_referrers(
        &self,
        image: &ImageRef,
        subject: &Digest,
    ) -> Result<Vec<ReferrerRecord>, StoreError>;
    /// All images with manifests, as `project/repository/image`, after `last`, at most `limit`.
    async fn catalog(
        &self,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CatalogEntry>, StoreError>;

    /// Open an upload session.
    async fn create_upload(&self, upload: &UploadRecord) -> Result<(), StoreError>;
    /// Look an upload session up.
    async fn get_upload(&self, id: &str) -> Result<Option<UploadRecord>, StoreError>;
    /// Record a received part, the file `part_name` bringing the session to
    /// `size` bytes: only if the session still has `expected_parts` parts (a
    /// compare-and-swap: of two requests writing the same part, one wins).
    async fn advance_upload(
        &self,
        id: &str,
        expected_parts: u32,
        part_name: &str,
        size: u64,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Close an upload session; false if absent.
    async fn delete_upload(&self, id: &str) -> Result<bool, StoreError>;
    /// Sessions not touched since `before` (unix seconds).
    async fn stale_uploads(&self, before: i64) -> Result<Vec<UploadRecord>, StoreError>;
}
