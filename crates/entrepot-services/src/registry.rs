//! OCI content of hosted (standard) repositories: manifests, tags, blobs, upload
//! sessions, referrers and the catalog.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use entrepot_domain::manifest::{Descriptor, ManifestKind, OCI_INDEX};
use entrepot_domain::{
    ByteRange, Digest, Format, ImagePath, Manifest, Mode, Reference, Repository,
};
use entrepot_storage::{
    BlobError, BlobStore, ByteStream, DiskSpace, ImageRef, ManifestRecord, MetadataStore,
    RunningHash, StoreError, UploadRecord, WrittenPart,
};

use crate::clock::now_unix;
use crate::remote::RemoteDocker;

/// Errors of the registry, one per OCI error code it can lead to.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The repository does not exist (or is not a Docker repository).
    #[error("{0}")]
    NameUnknown(String),
    /// A name in the request is invalid.
    #[error("{0}")]
    NameInvalid(String),
    /// No such manifest.
    #[error("manifest {0} is not in this repository")]
    ManifestUnknown(String),
    /// The manifest was refused.
    #[error("{0}")]
    ManifestInvalid(String),
    /// A manifest references content the repository does not have.
    #[error("manifest references {kind} {digest}, which is not in this repository; push it first")]
    ManifestBlobUnknown {
        /// "blob" or "manifest".
        kind: &'static str,
        /// The missing digest.
        digest: Digest,
    },
    /// No such blob.
    #[error("blob {0} is not in this repository")]
    BlobUnknown(Digest),
    /// No such upload session.
    #[error("upload session {0} does not exist or has expired; start a new upload with POST .../blobs/uploads/")]
    BlobUploadUnknown(String),
    /// The upload request is out of order or malformed.
    #[error("{0}")]
    BlobUploadInvalid(String),
    /// A chunk's body is not as long as its `Content-Range` says; the
    /// session is left as it was.
    #[error("chunk declared {declared} bytes in Content-Range but its body has {received}; the upload still has {size} bytes")]
    ChunkLengthMismatch {
        /// Length the `Content-Range` gives.
        declared: u64,
        /// Bytes the body held.
        received: u64,
        /// Bytes the session holds, unchanged.
        size: u64,
    },
    /// The client stopped sending the body before its end (a disconnect, a
    /// timeout): the client's failure, nothing was stored.
    #[error("the request body ended early: {0}")]
    BodyIncomplete(String),
    /// A chunk does not start where the upload currently ends.
    #[error("chunk starts at byte {got} but the upload has {expected} bytes; resume at offset {expected}")]
    RangeMismatch {
        /// Bytes received so far.
        expected: u64,
        /// Where the chunk claims to start.
        got: u64,
    },
    /// The digest is malformed or does not match the content.
    #[error("{0}")]
    DigestInvalid(String),
    /// The operation is not supported on this repository.
    #[error("{0}")]
    Unsupported(String),
    /// The operation is refused by the repository's nature (e.g. push to a cache).
    #[error("{0}")]
    Denied(String),
    /// The upstream of a remote repository rate-limits us.
    #[error("{message}")]
    TooManyRequests {
        /// What happened.
        message: String,
        /// `Retry-After` from the upstream.
        retry_after: Option<String>,
    },
    /// The upstream of a remote repository failed or broke protocol.
    #[error("{message}")]
    Upstream {
        /// HTTP status for the client (502, 503).
        status: u16,
        /// What happened.
        message: String,
    },
    /// The upstream does not have the content.
    #[error("{0}")]
    UpstreamNotFound(String),
    /// The blob store's filesystem is nearly full.
    #[error(transparent)]
    LowDisk(LowDisk),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Blob storage failed.
    #[error(transparent)]
    Blob(BlobError),
}

impl From<BlobError> for RegistryError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::DigestMismatch { expected, actual } => RegistryError::DigestInvalid(
                format!("uploaded content has digest {actual}, not {expected}"),
            ),
            BlobError::Body(e) => RegistryError::BodyIncomplete(e.to_string()),
            other => RegistryError::Blob(other),
        }
    }
}

/// A manifest ready to serve.
#[derive(Debug, Clone)]
pub struct ServedManifest {
    /// Its digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its exact bytes.
    pub content: Vec<u8>,
    /// Served from the cache because the upstream failed.
    pub stale: bool,
}

/// The result of storing a manifest.
#[derive(Debug, Clone)]
pub struct PushedManifest {
    /// Digest of the stored bytes.
    pub digest: Digest,
    /// The subject, when the manifest has one.
    pub subject: Option<Digest>,
}

/// A blob ready to stream.
pub struct ServedBlob {
    /// Full size of the blob.
    pub size: u64,
    /// The range served, if one was asked for.
    pub range: Option<ByteRange>,
    /// The bytes (of the range, if any).
    pub body: ByteStream,
}

/// State of an upload session as the protocol reports it.
#[derive(Debug, Clone)]
pub struct UploadState {
    /// Session id.
    pub id: String,
    /// Bytes received so far.
    pub size: u64,
}

/// How a blob upload ended: committed here, or mounted from elsewhere.
#[derive(Debug, Clone)]
pub enum UploadStart {
    /// The blob was linked from the mount source; nothing to upload.
    Mounted(Digest),
    /// A session is open.
    Session(UploadState),
}

/// The default and the largest page of `tags/list` and `_catalog`: a larger
/// `n` is served as this many with a `Link` to the next page, as the OCI
/// distribution spec allows (`max_page_size`).
pub const DEFAULT_MAX_PAGE_SIZE: u32 = 10_000;

/// One page of a listing (tags of an image, or the catalog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The entries, in lexical order.
    pub items: Vec<String>,
    /// How many entries this page could hold: the client's `n`, capped at the
    /// maximum page size, or the default page size without `n`.
    pub size: u32,
    /// Whether entries follow the last one (then the client is told where the
    /// next page starts).
    pub more: bool,
}

impl Page {
    /// A page of `size` from `rows`, which were fetched with one extra row so
    /// that an exactly full last page is known to be the last.
    pub fn from_rows(mut rows: Vec<String>, size: u32) -> Self {
        let more = rows.len() > size as usize;
        rows.truncate(size as usize);
        Self {
            items: rows,
            size,
            more,
        }
    }

    /// The entry the next page starts after, if there is a next page.
    pub fn next_after(&self) -> Option<&str> {
        if self.more {
            self.items.last().map(String::as_str)
        } else {
            None
        }
    }
}

/// The OCI content service.
pub struct Registry {
    meta: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
    /// Running hashes of uploads this process has seen every part of, so a
    /// finished upload need not be read back. Each is bound to the part files
    /// it was fed from; the blob store uses it only for exactly those.
    running_hashes: Mutex<HashMap<String, RunningHash>>,
    /// The pull-through cache, for remote repositories.
    remote: Option<Arc<RemoteDocker>>,
    /// Below this many free bytes where blobs live, the server is not ready.
    min_free_disk_bytes: u64,
    /// The default and the largest page of a listing.
    max_page_size: u32,
}

/// The blob store's filesystem is nearly full.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{available} bytes free on the filesystem of the blob store, below the minimum of {minimum} (min_free_disk_bytes)")]
pub struct LowDisk {
    /// Bytes available.
    pub available: u64,
    /// The configured minimum.
    pub minimum: u64,
}

fn image_ref(path: &ImagePath) -> ImageRef {
    ImageRef {
        project: path.project.to_string(),
        repository: path.repository.to_string(),
        image: path.image.to_string(),
    }
}

impl Registry {
    /// A registry over the given stores.
    pub fn new(meta: Arc<dyn MetadataStore>, blobs: Arc<dyn BlobStore>) -> Self {
        Self {
            meta,
            blobs,
            running_hashes: Mutex::new(HashMap::new()),
            remote: None,
            min_free_disk_bytes: 0,
            max_page_size: DEFAULT_MAX_PAGE_SIZE,
        }
    }

    /// Serve listings in pages of at most `size` entries (at least 1; also the
    /// page size when the client does not ask for one).
    pub fn with_max_page_size(mut self, size: u32) -> Self {
        self.max_page_size = size.clamp(1, u32::MAX - 1);
        self
    }

    /// The page size to serve for a client's `n`.
    fn page_size(&self, n: Option<u32>) -> u32 {
        n.map_or(self.max_page_size, |n| n.min(self.max_page_size))
    }

    /// Report low disk (see [`Registry::check_disk_space`]) below `bytes` free.
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

    /// Serve remote repositories through `remote`.
    pub fn with_remote(mut self, remote: Arc<RemoteDocker>) -> Self {
        self.remote = Some(remote);
        self
    }

    /// The pull-through cache, if remote repositories are enabled.
    pub fn remote(&self) -> Option<&Arc<RemoteDocker>> {
        self.remote.as_ref()
    }

    /// Check the repository exists and holds Docker content.
    async fn repository(&self, path: &ImagePath) -> Result<Repository, RegistryError> {
        let repo = self
            .meta
            .get_repository(path.project.as_str(), path.repository.as_str())
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

    /// For a readable repository: `None` if it is hosted, the cache if it is remote.
    async fn source(
        &self,
        path: &ImagePath,
    ) -> Result<(Repository, Option<&RemoteDocker>), RegistryError> {
        let repo = self.repository(path).await?;
        match repo.mode {
            Mode::StandardRepository => Ok((repo, None)),
            Mode::RemoteRepository => match self.remote.as_deref() {
                Some(remote) => Ok((repo, Some(remote))),
                None => Err(RegistryError::Unsupported(
                    "remote repositories are not enabled on this server".into(),
                )),
            },
            Mode::VirtualRepository => Err(RegistryError::Unsupported(
                "virtual repositories cannot serve content yet".into(),
            )),
        }
    }

    async fn readable(&self, path: &ImagePath) -> Result<(), RegistryError> {
        self.source(path).await.map(|_| ())
    }

    async fn writable(&self, path: &ImagePath) -> Result<(), RegistryError> {
        match self.repository(path).await?.mode {
            Mode::StandardRepository => Ok(()),
            Mode::RemoteRepository => Err(RegistryError::Denied(format!(
                "projects/{}/repositories/{} is a remote repository, a read-only cache of its upstream; push to a standard repository instead",
                path.project, path.repository
            ))),
            Mode::VirtualRepository => Err(RegistryError::Denied(format!(
                "projects/{}/repositories/{} is a virtual repository and cannot be pushed to; push to one of its standard repositories",
                path.project, path.repository
            ))),
        }
    }

    /// Fetch a manifest by tag or digest.
    pub async fn get_manifest(
        &self,
        path: &ImagePath,
        reference: &Reference,
    ) -> Result<ServedManifest, RegistryError> {
        if let (repo, Some(remote)) = self.source(path).await? {
            return remote.get_manifest(&repo, path, reference).await;
        }
        let image = image_ref(path);
        let found = match reference {
            Reference::Tag(tag) => self.meta.manifest_by_tag(&image, tag.as_str()).await?,
            Reference::Digest(d) => self.meta.manifest_by_digest(&image, d).await?,
        };
        let m =
            found.ok_or_else(|| RegistryError::ManifestUnknown(format!("{path}:{reference}")))?;
        Ok(ServedManifest {
            digest: m.digest,
            media_type: m.media_type,
            content: m.content,
            stale: false,
        })
    }

    /// Validate and store a manifest under a tag or digest.
    pub async fn put_manifest(
        &self,
        path: &ImagePath,
        reference: &Reference,
        content_type: Option<&str>,
        content: Vec<u8>,
    ) -> Result<PushedManifest, RegistryError> {
        self.writable(path).await?;
        let manifest = Manifest::parse(content_type, &content)
            .map_err(|e| RegistryError::ManifestInvalid(e.to_string()))?;
        let digest = Digest::of(&content);
        if let Reference::Digest(expected) = reference {
            if expected != &digest {
                return Err(RegistryError::DigestInvalid(format!(
                    "manifest content has digest {digest}, not {expected} as in the URL"
                )));
            }
        }
        let image = image_ref(path);
        self.require_references(&image, &manifest).await?;
        let subject = manifest.subject.as_ref().map(|s| s.digest.clone());
        let record = ManifestRecord {
            digest: digest.clone(),
            media_type: manifest.media_type.clone(),
            artifact_type: manifest.artifact_type.clone(),
            subject: subject.clone(),
            annotations: manifest
                .annotations
                .as_ref()
                .map(|a| serde_json::Value::Object(a.clone()).to_string()),
            content,
        };
        let tag = match reference {
            Reference::Tag(t) => Some(t.as_str()),
            Reference::Digest(_) => None,
        };
        self.meta.put_manifest(&image, &record, tag).await?;
        Ok(PushedManifest { digest, subject })
    }

    async fn require_references(
        &self,
        image: &ImageRef,
        manifest: &Manifest,
    ) -> Result<(), RegistryError> {
        let (kind, wanted): (&'static str, &[Descriptor]) = match manifest.kind {
            ManifestKind::Image => ("blob", &manifest.blobs),
            ManifestKind::Index => ("manifest", &manifest.manifests),
        };
        let digests: Vec<Digest> = wanted.iter().map(|d| d.digest.clone()).collect();
        let found: HashMap<Digest, u64> = match manifest.kind {
            ManifestKind::Image => self.meta.existing_blob_links(image, &digests).await?,
            ManifestKind::Index => self.meta.existing_manifests(image, &digests).await?,
        }
        .into_iter()
        .collect();
        for descriptor in wanted {
            let Some(&size) = found.get(&descriptor.digest) else {
                return Err(RegistryError::ManifestBlobUnknown {
                    kind,
                    digest: descriptor.digest.clone(),
                });
            };
            // A client trusts the descriptor's size (it sizes buffers and
            // checks downloads by it): it must be the content's.
            if size != descriptor.size {
                return Err(RegistryError::ManifestInvalid(format!(
                    "the descriptor of {kind} {} gives size {}, but the {kind} has {size} bytes",
                    descriptor.digest, descriptor.size
                )));
            }
        }
        Ok(())
    }

    /// Delete a manifest (by digest, with its tags) or a single tag.
    pub async fn delete_manifest(
        &self,
        path: &ImagePath,
        reference: &Reference,
    ) -> Result<(), RegistryError> {
        self.writable(path).await?;
        let image = image_ref(path);
        let deleted = match reference {
            Reference::Tag(t) => self.meta.delete_tag(&image, t.as_str()).await?,
            Reference::Digest(d) => self.meta.delete_manifest(&image, d).await?,
        };
        if deleted {
            Ok(())
        } else {
            Err(RegistryError::ManifestUnknown(format!(
                "{path}:{reference}"
            )))
        }
    }

    /// Size of a blob linked to the image (for HEAD).
    pub async fn stat_blob(&self, path: &ImagePath, digest: &Digest) -> Result<u64, RegistryError> {
        if let (repo, Some(remote)) = self.source(path).await? {
            return remote.stat_blob(&repo, path, digest).await;
        }
        let size = self.linked_size(path, digest).await?;
        // A blob moved to quarantine as damaged is unknown here, so that the
        // client pushes it again rather than skipping it.
        if self.blobs.stat(digest).await?.is_none() {
            return Err(RegistryError::BlobUnknown(digest.clone()));
        }
        Ok(size)
    }

    async fn linked_size(&self, path: &ImagePath, digest: &Digest) -> Result<u64, RegistryError> {
        self.meta
            .linked_blob_size(&image_ref(path), digest)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))
    }

    /// Space left on the filesystem that holds the blobs (`None` on object
    /// storage), for readiness checks.
    pub fn disk_space(&self) -> Result<Option<DiskSpace>, RegistryError> {
        self.blobs.disk_space().map_err(RegistryError::Blob)
    }

    /// Stream a blob, or the given range of it (already resolved by the caller
    /// against the size from [`Registry::stat_blob`]).
    pub async fn open_blob(
        &self,
        path: &ImagePath,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<ServedBlob, RegistryError> {
        if let (repo, Some(remote)) = self.source(path).await? {
            return remote.open_blob(&repo, path, digest, range).await;
        }
        let size = self.linked_size(path, digest).await?;
        let body = match self.blobs.read(digest, range).await {
            Ok(body) => body,
            Err(BlobError::NotFound) => return Err(RegistryError::BlobUnknown(digest.clone())),
            Err(e) => return Err(e.into()),
        };
        Ok(ServedBlob { size, range, body })
    }

    /// Remove a blob from the image.
    pub async fn delete_blob(
        &self,
        path: &ImagePath,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        self.writable(path).await?;
        if self.meta.unlink_blob(&image_ref(path), digest).await? {
            Ok(())
        } else {
            Err(RegistryError::BlobUnknown(digest.clone()))
        }
    }

    /// Open an upload session, or mount `digest` from `from` in the same project.
    pub async fn start_upload(
        &self,
        path: &ImagePath,
        mount: Option<(&Digest, &ImagePath)>,
    ) -> Result<UploadStart, RegistryError> {
        self.writable(path).await?;
        if let Some((digest, from)) = mount {
            if from.project == path.project {
                if let Some(size) = self.meta.linked_blob_size(&image_ref(from), digest).await? {
                    // Not a blob moved to quarantine: that one must be pushed again.
                    if self.blobs.stat(digest).await?.is_some() {
                        self.meta.link_blob(&image_ref(path), digest, size).await?;
                        return Ok(UploadStart::Mounted(digest.clone()));
                    }
                }
            }
        }
        let now = now_unix();
        let record = UploadRecord {
            id: uuid::Uuid::new_v4().to_string(),
            image: image_ref(path),
            size: 0,
            parts: 0,
            part_names: Vec::new(),
            create_time: now,
            update_time: now,
        };
        self.meta.create_upload(&record).await?;
        Ok(UploadStart::Session(UploadState {
            id: record.id,
            size: 0,
        }))
    }

    async fn session(&self, path: &ImagePath, id: &str) -> Result<UploadRecord, RegistryError> {
        let unknown = || RegistryError::BlobUploadUnknown(id.to_owned());
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(unknown());
        }
        let upload = self.meta.get_upload(id).await?.ok_or_else(unknown)?;
        if upload.image != image_ref(path) {
            return Err(unknown());
        }
        Ok(upload)
    }

    /// Where an upload session stands.
    pub async fn upload_status(
        &self,
        path: &ImagePath,
        id: &str,
    ) -> Result<UploadState, RegistryError> {
        self.writable(path).await?;
        let upload = self.session(path, id).await?;
        Ok(UploadState {
            id: upload.id,
            size: upload.size,
        })
    }

    /// Append a chunk. `range` is the inclusive byte range the client's
    /// `Content-Range` gives the chunk, if any: it must start where the upload
    /// ends, and the body must hold exactly that many bytes, or nothing changes.
    pub async fn append_chunk(
        &self,
        path: &ImagePath,
        id: &str,
        range: Option<(u64, u64)>,
        body: ByteStream,
    ) -> Result<UploadState, RegistryError> {
        self.writable(path).await?;
        let upload = self.session(path, id).await?;
        if let Some((start, _)) = range {
            if start != upload.size {
                return Err(RegistryError::RangeMismatch {
                    expected: upload.size,
                    got: start,
                });
            }
        }
        let declared = range.map(|(start, end)| end - start + 1);
        let part = self.write_part(&upload, body, declared).await?;
        Ok(UploadState {
            id: upload.id,
            size: upload.size + part.size,
        })
    }

    /// Write one part and make it the session's next part. The part is written
    /// under a file name of its own and joins the session only by winning the
    /// compare-and-swap on the part count, which records that name; a request
    /// that loses removes its file, so two racing requests can never swap
    /// bytes under each other's hash.
    async fn write_part(
        &self,
        upload: &UploadRecord,
        body: ByteStream,
        declared: Option<u64>,
    ) -> Result<WrittenPart, RegistryError> {
        let running = {
            let mut hashes = self
                .running_hashes
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match hashes.remove(&upload.id) {
                Some(h) if h.parts() == upload.part_names.as_slice() => Some(h),
                _ if upload.parts == 0 => Some(RunningHash::new()),
                _ => None,
            }
        };
        let mut part = self.blobs.write_part(&upload.id, body, running).await?;
        if let Some(declared) = declared.filter(|d| *d != part.size) {
            self.discard_part(&upload.id, &part.name).await;
            return Err(RegistryError::ChunkLengthMismatch {
                declared,
                received: part.size,
                size: upload.size,
            });
        }
        let advanced = self
            .meta
            .advance_upload(
                &upload.id,
                upload.parts,
                &part.name,
                upload.size + part.size,
                now_unix(),
            )
            .await;
        if !matches!(advanced, Ok(true)) {
            self.discard_part(&upload.id, &part.name).await;
            advanced?;
            return Err(RegistryError::BlobUploadInvalid(format!(
                "upload session {} received two chunks at once; send chunks one after another",
                upload.id
            )));
        }
        if let Some(h) = part.running.take() {
            self.running_hashes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(upload.id.clone(), h);
        }
        Ok(part)
    }

    async fn discard_part(&self, upload: &str, part: &str) {
        if let Err(e) = self.blobs.discard_part(upload, part).await {
            tracing::warn!(upload, error = %e, "could not remove an unrecorded upload part");
        }
    }

    /// Finish an upload with an optional last chunk, verifying the digest.
    pub async fn finish_upload(
        &self,
        path: &ImagePath,
        id: &str,
        digest: &Digest,
        last_chunk: Option<ByteStream>,
    ) -> Result<Digest, RegistryError> {
        self.writable(path).await?;
        let mut upload = self.session(path, id).await?;
        if let Some(body) = last_chunk {
            let part = self.write_part(&upload, body, None).await?;
            upload.size += part.size;
            upload.parts += 1;
            upload.part_names.push(part.name);
        }
        let running = self
            .running_hashes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&upload.id);
        let committed = self
            .blobs
            .commit_upload(&upload.id, &upload.part_names, digest, running)
            .await;
        self.meta.delete_upload(&upload.id).await?;
        let size = match committed {
            Ok(size) => size,
            // Its parts went meanwhile: another request finished or cancelled it.
            Err(BlobError::NotFound) => {
                return Err(RegistryError::BlobUploadUnknown(upload.id));
            }
            Err(e) => return Err(e.into()),
        };
        self.meta.link_blob(&image_ref(path), digest, size).await?;
        Ok(digest.clone())
    }

    /// Push a whole blob in one request (`POST ...?digest=`).
    pub async fn put_blob(
        &self,
        path: &ImagePath,
        digest: &Digest,
        body: ByteStream,
    ) -> Result<Digest, RegistryError> {
        self.writable(path).await?;
        let size = self.blobs.put_blob(digest, body, None).await?;
        self.meta.link_blob(&image_ref(path), digest, size).await?;
        Ok(digest.clone())
    }

    /// Abandon an upload session.
    pub async fn cancel_upload(&self, path: &ImagePath, id: &str) -> Result<(), RegistryError> {
        self.writable(path).await?;
        let upload = self.session(path, id).await?;
        self.drop_upload(&upload.id).await
    }

    async fn drop_upload(&self, id: &str) -> Result<(), RegistryError> {
        self.running_hashes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.blobs.discard_upload(id).await?;
        self.meta.delete_upload(id).await?;
        Ok(())
    }

    /// Remove upload sessions idle for longer than `max_idle_secs`. Returns how many.
    pub async fn expire_uploads(&self, max_idle_secs: i64) -> Result<usize, RegistryError> {
        let stale = self.meta.stale_uploads(now_unix() - max_idle_secs).await?;
        for upload in &stale {
            self.drop_upload(&upload.id).await?;
        }
        Ok(stale.len())
    }

    /// Tags of an image, lexically, after `last`: one page of at most `n`
    /// (capped at the maximum page size; the default page size without `n`).
    pub async fn list_tags(
        &self,
        path: &ImagePath,
        n: Option<u32>,
        last: Option<&str>,
    ) -> Result<Page, RegistryError> {
        let size = self.page_size(n);
        if let (repo, Some(remote)) = self.source(path).await? {
            return remote.list_tags(&repo, path, size, last).await;
        }
        let image = image_ref(path);
        let rows = self.meta.list_tags(&image, last, size + 1).await?;
        if rows.is_empty() && last.is_none() && !self.meta.image_exists(&image).await? {
            return Err(RegistryError::NameUnknown(format!(
                "image {path} has no manifests"
            )));
        }
        Ok(Page::from_rows(rows, size))
    }

    /// Images with manifests, as `project/repository/image`: one page after
    /// `last` of at most `n` (capped as for tags).
    pub async fn catalog(&self, n: Option<u32>, last: Option<&str>) -> Result<Page, RegistryError> {
        let size = self.page_size(n);
        let rows = self
            .meta
            .catalog(last, size + 1)
            .await?
            .into_iter()
            .map(|e| e.path)
            .collect();
        Ok(Page::from_rows(rows, size))
    }

    /// The referrers index of `subject`, optionally filtered by artifact type.
    /// Returns the index document's bytes.
    pub async fn referrers(
        &self,
        path: &ImagePath,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<u8>, RegistryError> {
        self.readable(path).await?;
        let found = self.meta.list_referrers(&image_ref(path), subject).await?;
        let manifests: Vec<serde_json::Value> = found
            .into_iter()
            .filter(|r| artifact_type.is_none() || r.artifact_type.as_deref() == artifact_type)
            .map(|r| {
                let mut d = serde_json::json!({
                    "mediaType": r.media_type,
                    "digest": r.digest.to_string(),
                    "size": r.size,
                });
                if let Some(t) = r.artifact_type {
                    d["artifactType"] = t.into();
                }
                if let Some(a) = r
                    .annotations
                    .and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok())
                {
                    d["annotations"] = a;
                }
                d
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
        });
        Ok(index.to_string().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repositories::{NewRepository, RepositoryService};
    use entrepot_domain::RepositoryName;
    use entrepot_storage::testing::memory_stores;
    use entrepot_storage::ObjectBlobStore;
    use futures::StreamExt;

    async fn registry() -> (Registry, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let meta = memory_stores().await.unwrap().metadata;
        meta.create_project("default").await.unwrap();
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
                },
            )
            .await
            .unwrap();
        let blobs = Arc::new(ObjectBlobStore::local(dir.path()).unwrap());
        (Registry::new(meta, blobs), dir)
    }

    fn body(bytes: &'static [u8]) -> ByteStream {
        futures::stream::once(async move { Ok(bytes::Bytes::from_static(bytes)) }).boxed()
    }

    #[tokio::test]
    async fn chunked_upload_then_manifest_that_references_it() {
        let (reg, _dir) = registry().await;
        let path: ImagePath = "default/images/app".parse().unwrap();
        let UploadStart::Session(s) = reg.start_upload(&path, None).await.unwrap() else {
            panic!("expected a session")
        };
        reg.append_chunk(&path, &s.id, Some((0, 1)), body(b"{}"))
            .await
            .unwrap();
        let err = reg
            .append_chunk(&path, &s.id, Some((0, 0)), body(b"x"))
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
        reg.finish_upload(&path, &s.id, &config, None)
            .await
            .unwrap();
        assert_eq!(reg.stat_blob(&path, &config).await.unwrap(), 2);

        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[]}}"#
        );
        let tag: Reference = "v1".parse().unwrap();
        let pushed = reg
            .put_manifest(&path, &tag, None, manifest.clone().into_bytes())
            .await
            .unwrap();
        let got = reg.get_manifest(&path, &tag).await.unwrap();
        assert_eq!(got.content, manifest.as_bytes());
        assert_eq!(got.digest, pushed.digest);

        let missing = manifest.replace(&config.to_string(), &Digest::of(b"nope").to_string());
        let err = reg
            .put_manifest(&path, &tag, None, missing.into_bytes())
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::ManifestBlobUnknown { .. }));
    }
}
