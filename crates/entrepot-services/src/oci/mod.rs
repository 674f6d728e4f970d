//! OCI repositories: the distribution spec's content (manifests, tags, blobs,
//! uploads, referrers, the catalog) over standard (hosted) and remote
//! (pull-through) repositories.
//!
//! [`OciRepositories`] takes the caller's [`Principal`] on every operation,
//! authorizes it there (what each operation needs is in [`operation`]),
//! then finds the repository once per request and sends the call to
//! [`HostedOci`] or [`RemoteOci`], which know nothing of callers. Those two
//! never call each other:
//! both build on the shared [`content`] types and [`error`], and downloads go
//! through the format-agnostic fill engine and the one upstream client.

#[cfg(test)]
mod authorization_tests;
mod catalog;
pub mod content;
pub mod cooldown;
pub mod error;
mod grants;
pub mod hosted;
pub mod operation;
pub mod referrers;
pub mod remote;
mod virtual_members;

use std::sync::Arc;

use entrepot_domain::manifest::MAX_MANIFEST_BYTES;
use entrepot_domain::{
    parse_chunk_range, Digest, Format, ImagePath, Mode, NameError, Reference, Repository, Tag,
};
use entrepot_storage::{BlobStore, ByteStream, DiskSpace, MetadataStore};
use futures::StreamExt;

pub use content::{
    CacheStatus, ChunkHeaders, Page, PushedManifest, ServedManifest, UploadStart, UploadState,
    DEFAULT_MAX_PAGE_SIZE,
};
pub use error::{LowDisk, RegistryError};
pub use hosted::HostedOci;
pub use operation::OciOperation;
pub use referrers::ServedReferrers;
pub use remote::RemoteOci;

use crate::access::{AccessControl, Principal};
use crate::located::LocatedBlob;

/// OCI repositories of every mode, behind one front door.
pub struct OciRepositories {
    meta: Arc<dyn MetadataStore>,
    /// Decides whether a caller may perform an operation.
    access: Arc<dyn AccessControl>,
    /// Hosted repositories.
    hosted: HostedOci,
    /// The pull-through cache, for remote repositories.
    remote: Option<Arc<RemoteOci>>,
    /// Below this many free bytes where blobs live, the server is not ready.
    min_free_disk_bytes: u64,
    /// The default and the largest page of a listing.
    max_page_size: u32,
    /// Where pulls of hosted manifests are told, for the last-pull times
    /// the inventory shows (remote pulls are told by [`RemoteOci`]).
    pulls: Option<Arc<crate::eviction::pulls::PullTracker>>,
}

/// Where a readable repository's content comes from. Short-lived, one per
/// request, on the stack: boxing the repository would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Source<'a> {
    Hosted,
    Remote(Box<Repository>, &'a RemoteOci),
    Virtual(Box<Repository>),
}

impl OciRepositories {
    /// OCI repositories over the given stores, authorizing every caller
    /// through `access`; remote repositories are not served until
    /// [`Self::with_remote`].
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        blobs: Arc<dyn BlobStore>,
        access: Arc<dyn AccessControl>,
    ) -> Self {
        Self {
            hosted: HostedOci::new(meta.clone(), blobs),
            meta,
            access,
            remote: None,
            min_free_disk_bytes: 0,
            max_page_size: DEFAULT_MAX_PAGE_SIZE,
            pulls: None,
        }
    }

    /// Tell `pulls` of every hosted manifest served by GET, batched as the
    /// remote cache's pulls are, so that listings show when it was last
    /// pulled.
    pub fn with_pull_tracker(mut self, pulls: Arc<crate::eviction::pulls::PullTracker>) -> Self {
        self.pulls = Some(pulls);
        self
    }

    /// Serve listings in pages of at most `size` entries (at least 1; also the
    /// page size when the client does not ask for one).
    pub fn with_max_page_size(mut self, size: u32) -> Self {
        self.max_page_size = size.clamp(1, u32::MAX - 1);
        self
    }

    /// The page size to serve for a client's `n` (as sent), capped at the
    /// maximum page size.
    fn page_size(&self, n: Option<&str>) -> Result<u32, RegistryError> {
        match n {
            None => Ok(self.max_page_size),
            Some(n) => n
                .parse::<u32>()
                .map(|n| n.min(self.max_page_size))
                .map_err(|_| RegistryError::PageSizeInvalid(n.to_owned())),
        }
    }

    /// Report low disk (see [`Self::check_disk_space`]) below `bytes` free.
    pub fn with_min_free_disk_bytes(mut self, bytes: u64) -> Self {
        self.min_free_disk_bytes = bytes;
        self
    }

    /// Whether the filesystem that holds the blobs has the configured free
    /// space left; always fine on object storage or with a minimum of 0.
    pub fn check_disk_space(&self) -> Result<(), RegistryError> {
        if self.min_free_disk_bytes == 0 {
            return Ok(());
        }
        match self.disk_space()? {
            Some(space) if space.available < self.min_free_disk_bytes => {
                Err(RegistryError::LowDisk(LowDisk {
                    available: space.available,
                    minimum: self.min_free_disk_bytes,
                }))
            }
            _ => Ok(()),
        }
    }

    /// Whether the blob store accepts writes (a probe written and removed),
    /// for readiness checks.
    pub async fn check_blob_store_writable(&self) -> Result<(), RegistryError> {
        self.hosted.check_blob_store_writable().await
    }

    /// Space left on the filesystem that holds the blobs (`None` on object
    /// storage), for readiness checks.
    pub fn disk_space(&self) -> Result<Option<DiskSpace>, RegistryError> {
        self.hosted.disk_space()
    }

    /// Store hosted image manifests through the garbage collector's store
    /// (see [`HostedOci::set_lifecycle`]).
    pub fn with_lifecycle(mut self, store: Arc<dyn entrepot_storage::LifecycleStore>) -> Self {
        self.hosted.set_lifecycle(store);
        self
    }

    /// Refuse hosted pushes that would exceed a storage quota (see
    /// [`crate::quota`]).
    pub fn with_quotas(mut self, quotas: Arc<crate::quota::StorageQuotas>) -> Self {
        self.hosted.set_quotas(quotas);
        self
    }

    /// Serve remote repositories through `remote`.
    pub fn with_remote(mut self, remote: Arc<RemoteOci>) -> Self {
        self.remote = Some(remote);
        self
    }

    /// The pull-through cache, if remote repositories are enabled.
    pub fn remote(&self) -> Option<&Arc<RemoteOci>> {
        self.remote.as_ref()
    }

    /// Refuse `principal` unless it may perform `operation` on `image`: an
    /// anonymous caller gets [`crate::AuthError::Unauthenticated`], others
    /// [`crate::AuthError::Denied`]. Called first by every operation, before
    /// anything is looked up or parsed, so a refused caller learns nothing
    /// and an anonymous one always gets its challenge: this is why the
    /// operations take the client's digests, page sizes and ranges as sent.
    async fn authorize(
        &self,
        principal: &Principal,
        operation: OciOperation,
        image: Option<&ImagePath>,
    ) -> Result<(), RegistryError> {
        self.access
            .authorize(
                principal,
                operation.permission(),
                &operation.resource(image),
            )
            .await
            .map_err(RegistryError::Access)
    }

    /// Check the repository exists and holds Docker content.
    async fn repository(&self, path: &ImagePath) -> Result<Repository, RegistryError> {
        let repo = self
            .meta
            .get_repository(&path.repository_name())
            .await?
            .ok_or_else(|| {
                RegistryError::NameUnknown(format!(
                    "repository projects/{}/repositories/{} does not exist",
                    path.project, path.repository
                ))
            })?;
        if repo.format != Format::Docker {
            return Err(RegistryError::NameUnknown(format!(
                "repository {} holds {} packages, not container images",
                repo.name,
                repo.format.as_str()
            )));
        }
        Ok(repo)
    }

    /// Where a readable repository's content comes from.
    async fn source(&self, path: &ImagePath) -> Result<Source<'_>, RegistryError> {
        let repo = self.repository(path).await?;
        match repo.mode {
            Mode::StandardRepository => Ok(Source::Hosted),
            Mode::RemoteRepository => match self.remote.as_deref() {
                Some(remote) => Ok(Source::Remote(Box::new(repo), remote)),
                None => Err(RegistryError::Unsupported(
                    "remote repositories are not enabled on this server".into(),
                )),
            },
            Mode::VirtualRepository => Ok(Source::Virtual(Box::new(repo))),
        }
    }

    /// The hosted content of a repository that may be pushed to.
    async fn writable(&self, path: &ImagePath) -> Result<&HostedOci, RegistryError> {
        let repo = self.repository(path).await?;
        match repo.mode {
            Mode::StandardRepository => Ok(&self.hosted),
            Mode::RemoteRepository => Err(RegistryError::Denied(format!(
                "projects/{}/repositories/{} is a remote repository, a read-only cache of its upstream; push to a standard repository instead",
                path.project, path.repository
            ))),
            Mode::VirtualRepository => Err(virtual_members::push_refused(&repo)),
        }
    }

    /// Fetch a manifest by tag or digest (`reference` as sent, parsed once
    /// the caller is authorized: a reference that is no valid tag names no
    /// manifest).
    pub async fn get_manifest(
        &self,
        principal: &Principal,
        path: &ImagePath,
        reference: &str,
    ) -> Result<ServedManifest, RegistryError> {
        self.authorize(principal, OciOperation::GetManifest, Some(path))
            .await?;
        let reference = lookup_reference(path, reference)?;
        match self.source(path).await? {
            Source::Hosted => self.hosted_manifest(path, &reference).await,
            Source::Remote(repo, remote) => remote.get_manifest(&repo, path, &reference).await,
            Source::Virtual(repo) => self.virtual_manifest(&repo, path, &reference).await,
        }
    }

    /// A manifest of a hosted repository (the one asked for, or a member of
    /// a virtual one), its pull recorded for that repository.
    async fn hosted_manifest(
        &self,
        path: &ImagePath,
        reference: &Reference,
    ) -> Result<ServedManifest, RegistryError> {
        let served = self.hosted.get_manifest(path, reference).await?;
        if let Some(pulls) = &self.pulls {
            pulls.record(&content::image_ref(path), &served.digest);
        }
        Ok(served)
    }

    /// Validate and store a manifest under a tag or digest, and under each
    /// of `tags` (the `?tag=` parameters of a push by digest). References
    /// and tags are as sent, parsed once the caller is authorized; the body
    /// is read (at most [`MAX_MANIFEST_BYTES`]) only then.
    pub async fn put_manifest(
        &self,
        principal: &Principal,
        path: &ImagePath,
        reference: &str,
        tags: &[String],
        content_type: Option<&str>,
        body: ByteStream,
    ) -> Result<PushedManifest, RegistryError> {
        self.authorize(principal, OciOperation::PutManifest, Some(path))
            .await?;
        let reference = push_reference(reference)?;
        let tags = push_tags(&reference, tags)?;
        let content = read_manifest(body).await?;
        self.writable(path)
            .await?
            .put_manifest(path, &reference, &tags, content_type, content)
            .await
    }

    /// Delete a manifest (by digest, with its tags) or a single tag
    /// (`reference` as sent, parsed once the caller is authorized). A
    /// manifest an index of the image references is kept unless `force`.
    pub async fn delete_manifest(
        &self,
        principal: &Principal,
        path: &ImagePath,
        reference: &str,
        force: bool,
    ) -> Result<(), RegistryError> {
        self.authorize(principal, OciOperation::DeleteManifest, Some(path))
            .await?;
        let reference = lookup_reference(path, reference)?;
        self.writable(path)
            .await?
            .delete_manifest(path, &reference, force)
            .await
    }

    /// A blob of the image, ready to be read: HEAD answers from its size,
    /// GET opens it, so the repository (and for a remote one its upstream,
    /// the access policy and the link) is resolved once per request. For a
    /// remote repository this starts or joins the blob's fill.
    pub async fn locate_blob(
        &self,
        principal: &Principal,
        path: &ImagePath,
        digest: &Digest,
    ) -> Result<LocatedBlob, RegistryError> {
        self.authorize(principal, OciOperation::GetBlob, Some(path))
            .await?;
        match self.source(path).await? {
            Source::Hosted => self.hosted.locate_blob(path, digest).await,
            Source::Remote(repo, remote) => remote.locate_blob(&repo, path, digest).await,
            Source::Virtual(repo) => self.virtual_blob(&repo, path, digest).await,
        }
    }

    /// Remove a blob from the image.
    pub async fn delete_blob(
        &self,
        principal: &Principal,
        path: &ImagePath,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        self.authorize(principal, OciOperation::DeleteBlob, Some(path))
            .await?;
        self.writable(path).await?.delete_blob(path, digest).await
    }

    /// Open an upload session, or mount `digest` from `from` in the same
    /// project. Mounting reads the source, named by the client rather than
    /// by the path: a caller who may not pull it gets a session instead, and
    /// uploads the blob the ordinary way. Without `from`, the source is the
    /// first repository of the project that has the blob and that the caller
    /// may pull from ([`Self::mount_source`]).
    pub async fn start_upload(
        &self,
        principal: &Principal,
        path: &ImagePath,
        mount: Option<(&Digest, Option<&ImagePath>)>,
    ) -> Result<UploadStart, RegistryError> {
        self.authorize(principal, OciOperation::StartUpload, Some(path))
            .await?;
        let hosted = self.writable(path).await?;
        let source = match mount {
            Some((digest, Some(from))) => self
                .authorize(principal, OciOperation::GetBlob, Some(from))
                .await
                .is_ok()
                .then(|| (digest, from.clone())),
            Some((digest, None)) => self
                .mount_source(principal, path, digest)
                .await?
                .map(|from| (digest, from)),
            None => None,
        };
        hosted
            .start_upload(path, source.as_ref().map(|(d, f)| (*d, f)))
            .await
    }

    /// An image of `path`'s project that links `digest`, in a repository
    /// `principal` may pull from: the source of a mount without `from`.
    /// Only the project's own repositories are looked at, so a mount never
    /// crosses tenants, and each candidate is authorized like a `from`.
    async fn mount_source(
        &self,
        principal: &Principal,
        path: &ImagePath,
        digest: &Digest,
    ) -> Result<Option<ImagePath>, RegistryError> {
        let candidates = self
            .meta
            .images_linking_blob(path.project.as_str(), digest, MOUNT_CANDIDATES)
            .await?;
        for image in candidates {
            let Ok(from) = format!("{}/{}/{}", image.project, image.repository, image.image)
                .parse::<ImagePath>()
            else {
                continue;
            };
            if self
                .authorize(principal, OciOperation::GetBlob, Some(&from))
                .await
                .is_ok()
            {
                return Ok(Some(from));
            }
        }
        Ok(None)
    }

    /// Where an upload session stands.
    pub async fn upload_status(
        &self,
        principal: &Principal,
        path: &ImagePath,
        id: &str,
    ) -> Result<UploadState, RegistryError> {
        self.authorize(principal, OciOperation::UploadStatus, Some(path))
            .await?;
        self.writable(path).await?.upload_status(path, id).await
    }

    /// Append a chunk. `content_range` is the client's `Content-Range` as
    /// sent, if any, and `content_length` its `Content-Length`: the range is
    /// parsed once the caller is authorized, must agree with the length,
    /// start where the upload ends, and the body must hold exactly that many
    /// bytes, or nothing changes.
    pub async fn append_chunk(
        &self,
        principal: &Principal,
        path: &ImagePath,
        id: &str,
        content_range: Option<&str>,
        content_length: Option<u64>,
        body: ByteStream,
    ) -> Result<UploadState, RegistryError> {
        self.authorize(principal, OciOperation::AppendChunk, Some(path))
            .await?;
        let range = content_range
            .map(|value| parse_chunk_range(value, content_length))
            .transpose()?
            .map(|r| (r.start, r.end));
        self.writable(path)
            .await?
            .append_chunk(path, id, range, content_length, body)
            .await
    }

    /// Finish an upload with an optional last chunk, verifying the digest
    /// (the `digest` query parameter as sent, required; parsed once the
    /// caller is authorized). The last chunk's `Content-Range`, if any, is
    /// checked as for [`Self::append_chunk`]: a chunk that does not follow
    /// the bytes received is refused before anything is written, and the
    /// session stays open for the client to resume.
    pub async fn finish_upload(
        &self,
        principal: &Principal,
        path: &ImagePath,
        id: &str,
        digest: Option<&str>,
        chunk: ChunkHeaders<'_>,
        last_chunk: Option<ByteStream>,
    ) -> Result<Digest, RegistryError> {
        self.authorize(principal, OciOperation::FinishUpload, Some(path))
            .await?;
        let digest = digest.ok_or_else(|| {
            RegistryError::DigestInvalid(
                "the digest query parameter is required to complete an upload".into(),
            )
        })?;
        let digest = parse_digest(digest)?;
        let range = chunk
            .content_range
            .map(|value| parse_chunk_range(value, chunk.content_length))
            .transpose()?
            .map(|r| (r.start, r.end));
        self.writable(path)
            .await?
            .finish_upload(path, id, &digest, range, chunk.content_length, last_chunk)
            .await
    }

    /// Push a whole blob in one request (`POST ...?digest=`, the digest as
    /// sent; parsed once the caller is authorized).
    pub async fn put_blob(
        &self,
        principal: &Principal,
        path: &ImagePath,
        digest: &str,
        body: ByteStream,
    ) -> Result<Digest, RegistryError> {
        self.put_blob_sized(principal, path, digest, None, body)
            .await
    }

    /// [`Self::put_blob`] of a body of `content_length` bytes (the client's
    /// `Content-Length`, when it sent one): under a storage quota, a blob
    /// that does not fit is refused before a byte is read.
    pub async fn put_blob_sized(
        &self,
        principal: &Principal,
        path: &ImagePath,
        digest: &str,
        content_length: Option<u64>,
        body: ByteStream,
    ) -> Result<Digest, RegistryError> {
        self.authorize(principal, OciOperation::PutBlob, Some(path))
            .await?;
        let digest = parse_digest(digest)?;
        self.writable(path)
            .await?
            .put_blob(path, &digest, content_length, body)
            .await
    }

    /// Abandon an upload session.
    pub async fn cancel_upload(
        &self,
        principal: &Principal,
        path: &ImagePath,
        id: &str,
    ) -> Result<(), RegistryError> {
        self.authorize(principal, OciOperation::CancelUpload, Some(path))
            .await?;
        self.writable(path).await?.cancel_upload(path, id).await
    }

    /// Remove upload sessions idle for longer than `max_idle_secs`. Returns
    /// how many. Housekeeping of the server itself, not a caller's operation.
    pub async fn expire_uploads(&self, max_idle_secs: i64) -> Result<usize, RegistryError> {
        self.hosted.expire_uploads(max_idle_secs).await
    }

    /// Tags of an image, lexically, after `last`: one page of at most `n`
    /// (as sent, parsed once the caller is authorized; capped at the maximum
    /// page size; the default page size without `n`).
    pub async fn list_tags(
        &self,
        principal: &Principal,
        path: &ImagePath,
        n: Option<&str>,
        last: Option<&str>,
    ) -> Result<Page, RegistryError> {
        self.authorize(principal, OciOperation::ListTags, Some(path))
            .await?;
        let size = self.page_size(n)?;
        match self.source(path).await? {
            Source::Hosted => self.hosted.list_tags(path, size, last).await,
            Source::Remote(repo, remote) => remote.list_tags(&repo, path, size, last).await,
            Source::Virtual(repo) => self.virtual_tags(&repo, path, size, last).await,
        }
    }

    /// Images with manifests, as `project/repository/image`, and the images
    /// of the virtual repositories the caller may read: one page after
    /// `last` of at most `n` (capped as for tags).
    pub async fn catalog(
        &self,
        principal: &Principal,
        n: Option<&str>,
        last: Option<&str>,
    ) -> Result<Page, RegistryError> {
        self.authorize(principal, OciOperation::Catalog, None)
            .await?;
        self.catalog_page(principal, self.page_size(n)?, last).await
    }

    /// The referrers index of `subject`, optionally filtered by artifact
    /// type. A remote repository answers its upstream's (see
    /// [`RemoteOci::referrers`]).
    pub async fn referrers(
        &self,
        principal: &Principal,
        path: &ImagePath,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<ServedReferrers, RegistryError> {
        self.authorize(principal, OciOperation::Referrers, Some(path))
            .await?;
        let content = match self.source(path).await? {
            Source::Remote(repo, remote) => {
                return remote.referrers(&repo, path, subject, artifact_type).await
            }
            // A virtual repository answers from the member that holds the
            // subject.
            Source::Virtual(repo) => {
                self.virtual_referrers(&repo, path, subject, artifact_type)
                    .await?
            }
            Source::Hosted => self.hosted.referrers(path, subject, artifact_type).await?,
        };
        Ok(ServedReferrers {
            content,
            cache: None,
            age_secs: None,
        })
    }
}

/// How many repositories a mount without `from` looks at.
const MOUNT_CANDIDATES: u32 = 20;

/// The most tags one manifest push may name (`?tag=`); the spec asks for
/// at least 10.
pub const MAX_PUSH_TAGS: usize = 100;

/// A reference the client reads or deletes by, as sent: a tag that breaks
/// the grammar names no manifest (`MANIFEST_UNKNOWN`, as the conformance
/// suite expects), a malformed or unsupported digest is `DIGEST_INVALID`.
fn lookup_reference(path: &ImagePath, reference: &str) -> Result<Reference, RegistryError> {
    reference.parse().map_err(|e| match e {
        NameError::BadDigest(e) => RegistryError::DigestInvalid(e.to_string()),
        _ => RegistryError::ManifestUnknown(format!("{path}:{reference}")),
    })
}

/// A reference the client pushes to, as sent: a bad tag is `TAG_INVALID`, a
/// bad digest `DIGEST_INVALID`.
fn push_reference(reference: &str) -> Result<Reference, RegistryError> {
    reference.parse().map_err(|e| match e {
        NameError::BadDigest(e) => RegistryError::DigestInvalid(e.to_string()),
        e => RegistryError::TagInvalid(e.to_string()),
    })
}

/// Every tag a push names: the reference's, if a tag, then each `?tag=` in
/// order, once each.
fn push_tags(reference: &Reference, extra: &[String]) -> Result<Vec<Tag>, RegistryError> {
    if extra.len() > MAX_PUSH_TAGS {
        return Err(RegistryError::TooManyTags {
            given: extra.len(),
            limit: MAX_PUSH_TAGS,
        });
    }
    let mut tags = Vec::new();
    if let Reference::Tag(t) = reference {
        tags.push(t.clone());
    }
    for tag in extra {
        let tag: Tag = tag
            .parse()
            .map_err(|e: NameError| RegistryError::TagInvalid(e.to_string()))?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

/// A digest the client sent, parsed.
fn parse_digest(digest: &str) -> Result<Digest, RegistryError> {
    digest
        .parse()
        .map_err(|e: entrepot_domain::DigestError| RegistryError::DigestInvalid(e.to_string()))
}

/// A manifest's body, at most [`MAX_MANIFEST_BYTES`]. A body that cannot be
/// read to its end is refused the same way as one that is too large.
async fn read_manifest(mut body: ByteStream) -> Result<Vec<u8>, RegistryError> {
    let mut content = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| RegistryError::ManifestTooLarge(MAX_MANIFEST_BYTES))?;
        if content.len() + chunk.len() > MAX_MANIFEST_BYTES {
            return Err(RegistryError::ManifestTooLarge(MAX_MANIFEST_BYTES));
        }
        content.extend_from_slice(&chunk);
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::AllowAll;
    use crate::repositories::{NewRepository, RepositoryService};
    use entrepot_domain::RepositoryName;
    use entrepot_storage::testing::memory_stores;
    use entrepot_storage::ObjectBlobStore;

    async fn registry() -> (OciRepositories, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let meta = memory_stores().await.unwrap().metadata;
        meta.create_project(&"default".parse().unwrap())
            .await
            .unwrap();
        RepositoryService::new(meta.clone())
            .create(
                &"projects/default/repositories/images"
                    .parse::<RepositoryName>()
                    .unwrap(),
                NewRepository {
                    format: Format::Docker,
                    mode: Mode::StandardRepository,
                    description: String::new(),
                    remote: None,
                    virtual_config: None,
                },
            )
            .await
            .unwrap();
        let blobs = Arc::new(ObjectBlobStore::local(dir.path()).unwrap());
        (OciRepositories::new(meta, blobs, Arc::new(AllowAll)), dir)
    }

    fn bytes_body(text: String) -> ByteStream {
        futures::stream::once(async move { Ok(bytes::Bytes::from(text)) }).boxed()
    }

    fn body(bytes: &'static [u8]) -> ByteStream {
        futures::stream::once(async move { Ok(bytes::Bytes::from_static(bytes)) }).boxed()
    }

    #[tokio::test]
    async fn chunked_upload_then_manifest_that_references_it() {
        let (reg, _dir) = registry().await;
        let anyone = Principal::Anonymous;
        let path: ImagePath = "default/images/app".parse().unwrap();
        let UploadStart::Session(s) = reg.start_upload(&anyone, &path, None).await.unwrap() else {
            panic!("expected a session")
        };
        reg.append_chunk(&anyone, &path, &s.id, Some("0-1"), None, body(b"{}"))
            .await
            .unwrap();
        let err = reg
            .append_chunk(&anyone, &path, &s.id, Some("0-0"), None, body(b"x"))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            RegistryError::RangeMismatch {
                expected: 2,
                got: 0
            }
        ));
        let config = Digest::of(b"{}");
        reg.finish_upload(
            &anyone,
            &path,
            &s.id,
            Some(&config.to_string()),
            ChunkHeaders::default(),
            None,
        )
        .await
        .unwrap();
        assert_eq!(
            reg.locate_blob(&anyone, &path, &config)
                .await
                .unwrap()
                .size(),
            2
        );

        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[]}}"#
        );
        let tag = "v1";
        let pushed = reg
            .put_manifest(&anyone, &path, tag, &[], None, bytes_body(manifest.clone()))
            .await
            .unwrap();
        let got = reg.get_manifest(&anyone, &path, tag).await.unwrap();
        assert_eq!(got.content, manifest.as_bytes());
        assert_eq!(got.digest, pushed.digest);

        let missing = manifest.replace(&config.to_string(), &Digest::of(b"nope").to_string());
        let err = reg
            .put_manifest(&anyone, &path, tag, &[], None, bytes_body(missing))
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::ManifestBlobUnknown { .. }));
    }
}
