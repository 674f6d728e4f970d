//! OCI content of hosted (standard) repositories: manifests, tags, blobs,
//! upload sessions, referrers and the catalog, kept in the metadata store and
//! the blob store. The caller ([`super::OciRepositories`]) has checked that
//! the repository exists and may be read or written.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use entrepot_domain::manifest::{Descriptor, ManifestKind, OCI_INDEX};
use entrepot_domain::{Digest, ImagePath, Manifest, Reference, RepositoryName, Tag};
use entrepot_storage::{
    BlobError, BlobStore, ByteStream, CheckedPut, DiskSpace, ImageRef, LifecycleStore,
    ManifestRecord, MetadataStore, RunningHash, UploadRecord, WrittenPart,
};

use super::content::{image_ref, Page, PushedManifest, ServedManifest, UploadStart, UploadState};
use super::error::RegistryError;
use crate::clock::now_unix;
use crate::located::LocatedBlob;
use crate::quota::{limit_body, Headroom, QuotaError, QuotaExceeded, StorageQuotas};

/// How many indexes mentioning a manifest are read to find one that
/// references it, before it is deleted.
const INDEX_CANDIDATES: u32 = 50;

/// Hosted OCI content.
pub struct HostedOci {
    meta: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
    /// Running hashes of uploads this process has seen every part of, so a
    /// finished upload need not be read back. Each is bound to the part files
    /// it was fed from; the blob store uses it only for exactly those.
    running_hashes: Mutex<HashMap<String, RunningHash>>,
    /// With a garbage collector: image manifests are stored only if their
    /// blobs are still linked, checked in the storing transaction.
    lifecycle: Option<Arc<dyn LifecycleStore>>,
    /// With storage quotas: pushes that would exceed one are refused before
    /// their bytes are stored.
    quotas: Option<Arc<StorageQuotas>>,
}

impl HostedOci {
    /// Hosted content over the given stores.
    pub fn new(meta: Arc<dyn MetadataStore>, blobs: Arc<dyn BlobStore>) -> Self {
        Self {
            meta,
            blobs,
            running_hashes: Mutex::new(HashMap::new()),
            lifecycle: None,
            quotas: None,
        }
    }

    /// Refuse pushes that would exceed a storage quota of `quotas`.
    pub fn set_quotas(&mut self, quotas: Arc<StorageQuotas>) {
        self.quotas = Some(quotas);
    }

    /// How much more the repository of `path` may store (`None`: no quota).
    async fn headroom(&self, repo: &RepositoryName) -> Result<Option<Headroom>, RegistryError> {
        match &self.quotas {
            None => Ok(None),
            Some(q) => Ok(q.headroom(repo).await?),
        }
    }

    /// Reserve `bytes` under the quotas of `repo` for the upload `id`
    /// (see [`StorageQuotas::reserve`]): whether a reservation is held, or
    /// the refusal when they do not fit, for the caller to clean up before
    /// answering it.
    async fn reserve(
        &self,
        id: &str,
        repo: &RepositoryName,
        bytes: u64,
    ) -> Result<Result<bool, QuotaExceeded>, RegistryError> {
        let Some(q) = &self.quotas else {
            return Ok(Ok(false));
        };
        match q.reserve(id, repo, bytes).await {
            Ok(held) => Ok(Ok(held)),
            Err(QuotaError::Exceeded(e)) => Ok(Err(e)),
            Err(QuotaError::Store(e)) => Err(e.into()),
            Err(e) => Err(RegistryError::Denied(e.to_string())),
        }
    }

    /// Drop the reservation of upload `id`, if quotas are kept.
    async fn release(&self, id: &str) {
        if let Some(q) = &self.quotas {
            q.release(id).await;
        }
    }

    /// The refusal of a push over a quota, counted.
    fn over_quota(&self, e: QuotaExceeded) -> RegistryError {
        if let Some(q) = &self.quotas {
            q.refused();
        }
        tracing::info!(scope = %e.scope, quota = e.quota, usage = e.usage, "push refused by a storage quota");
        RegistryError::Denied(e.to_string())
    }

    /// Store image manifests through `store`, which checks in one
    /// transaction that their blobs are linked and not being collected, so
    /// that a garbage collector running meanwhile never leaves a manifest
    /// naming a deleted blob.
    pub fn set_lifecycle(&mut self, store: Arc<dyn LifecycleStore>) {
        self.lifecycle = Some(store);
    }

    /// Fetch a manifest by tag or digest.
    pub async fn get_manifest(
        &self,
        path: &ImagePath,
        reference: &Reference,
    ) -> Result<ServedManifest, RegistryError> {
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
            cache: None,
            age_secs: None,
            held_back: None,
        })
    }

    /// Validate and store a manifest under its digest and each of `tags`.
    /// A manifest pushed by digest is named under that digest's algorithm
    /// (a push by `sha512:` digest is stored and served as one), a manifest
    /// pushed by tag under sha256.
    pub async fn put_manifest(
        &self,
        path: &ImagePath,
        reference: &Reference,
        tags: &[Tag],
        content_type: Option<&str>,
        content: Vec<u8>,
    ) -> Result<PushedManifest, RegistryError> {
        let manifest = Manifest::parse(content_type, &content)
            .map_err(|e| RegistryError::ManifestInvalid(e.to_string()))?;
        let named = match reference {
            Reference::Digest(named) => Some(named.algorithm()),
            Reference::Tag(_) => None,
        };
        let digest = Digest::naming(named, &content);
        if let Reference::Digest(expected) = reference {
            if expected != &digest {
                return Err(RegistryError::DigestInvalid(format!(
                    "manifest content has digest {digest}, not {expected} as in the URL"
                )));
            }
        }
        let image = image_ref(path);
        self.require_references(&image, &manifest).await?;
        // The manifest's bytes are reserved while it is stored, so that
        // concurrent pushes are weighed against each other.
        let reservation = uuid::Uuid::new_v4().to_string();
        let held = self
            .reserve(&reservation, &path.repository_name(), content.len() as u64)
            .await?
            .map_err(|e| self.over_quota(e))?;
        let stored = self
            .store_manifest(path, &manifest, digest, tags, content)
            .await;
        if held {
            self.release(&reservation).await;
        }
        stored
    }

    /// [`Self::put_manifest`] once the manifest is checked and its bytes
    /// reserved.
    async fn store_manifest(
        &self,
        path: &ImagePath,
        manifest: &Manifest,
        digest: Digest,
        tags: &[Tag],
        content: Vec<u8>,
    ) -> Result<PushedManifest, RegistryError> {
        let image = image_ref(path);
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
        // The first tag goes with the checked store; each further tag only
        // points at the stored manifest.
        let (first, rest) = match tags.split_first() {
            None => (None, &[][..]),
            Some((first, rest)) => (Some(first.as_str()), rest),
        };
        match (&self.lifecycle, &manifest.kind) {
            (Some(lifecycle), ManifestKind::Image) => {
                // Foreign layers are not held here: only the blobs that must be.
                let blobs: Vec<Digest> = manifest
                    .blobs
                    .iter()
                    .filter(|d| !d.is_non_distributable())
                    .map(|d| d.digest.clone())
                    .collect();
                if let CheckedPut::MissingBlob(digest) = lifecycle
                    .put_manifest_checked(&image, &record, first, &blobs)
                    .await?
                {
                    // Collected between the check above and the store: the
                    // client pushes the blob again.
                    return Err(RegistryError::ManifestBlobUnknown {
                        kind: "blob",
                        digest,
                    });
                }
            }
            _ => self.meta.put_manifest(&image, &record, first).await?,
        }
        for tag in rest {
            self.meta
                .put_manifest(&image, &record, Some(tag.as_str()))
                .await?;
        }
        Ok(PushedManifest {
            digest,
            subject,
            tags: tags.to_vec(),
        })
    }

    async fn require_references(
        &self,
        image: &ImageRef,
        manifest: &Manifest,
    ) -> Result<(), RegistryError> {
        let (kind, all): (&'static str, &[Descriptor]) = match manifest.kind {
            ManifestKind::Image => ("blob", &manifest.blobs),
            ManifestKind::Index => ("manifest", &manifest.manifests),
        };
        // A non-distributable (foreign) layer need not be here: clients
        // fetch it from where its descriptor says, or the image's platform
        // provides it.
        let wanted: Vec<&Descriptor> = all
            .iter()
            .filter(|d| manifest.kind == ManifestKind::Index || !d.is_non_distributable())
            .collect();
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

    /// Delete a manifest (by digest, with its tags) or a single tag. A
    /// manifest that an index of the image references is refused, naming
    /// the index, unless `force`: deleting it would leave the index
    /// unpullable.
    pub async fn delete_manifest(
        &self,
        path: &ImagePath,
        reference: &Reference,
        force: bool,
    ) -> Result<(), RegistryError> {
        let image = image_ref(path);
        let deleted = match reference {
            Reference::Tag(t) => self.meta.delete_tag(&image, t.as_str()).await?,
            Reference::Digest(d) => {
                if !force {
                    if let Some(index) = self.index_referencing(&image, d).await? {
                        return Err(RegistryError::Denied(format!(
                            "manifest {d} is referenced by index {index} of {path}; delete the index first, or delete with ?force=true (the index then fails to pull)"
                        )));
                    }
                }
                self.meta.delete_manifest(&image, d).await?
            }
        };
        if deleted {
            Ok(())
        } else {
            Err(RegistryError::ManifestUnknown(format!(
                "{path}:{reference}"
            )))
        }
    }

    /// An index of the image (other than `digest` itself) that lists
    /// `digest` among its manifests.
    async fn index_referencing(
        &self,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<Option<Digest>, RegistryError> {
        let candidates = self
            .meta
            .indexes_mentioning(image, digest, INDEX_CANDIDATES)
            .await?;
        Ok(candidates.into_iter().find_map(|m| {
            let parsed = Manifest::parse(Some(&m.media_type), &m.content).ok()?;
            (m.digest != *digest && parsed.manifests.iter().any(|c| c.digest == *digest))
                .then_some(m.digest)
        }))
    }

    /// A blob linked to the image and present in the blob store, ready to be
    /// read.
    pub async fn locate_blob(
        &self,
        path: &ImagePath,
        digest: &Digest,
    ) -> Result<LocatedBlob, RegistryError> {
        let size = self.linked_size(path, digest).await?;
        // A blob moved to quarantine as damaged is unknown here, so that the
        // client pushes it again rather than skipping it.
        if self.blobs.stat(digest).await?.is_none() {
            return Err(RegistryError::BlobUnknown(digest.clone()));
        }
        Ok(LocatedBlob::stored(
            self.blobs.clone(),
            digest.clone(),
            size,
        ))
    }

    async fn linked_size(&self, path: &ImagePath, digest: &Digest) -> Result<u64, RegistryError> {
        self.meta
            .linked_blob_size(&image_ref(path), digest)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))
    }

    /// Whether the blob store accepts writes, for readiness checks.
    pub async fn check_blob_store_writable(&self) -> Result<(), RegistryError> {
        self.blobs
            .check_writable()
            .await
            .map_err(RegistryError::Blob)
    }

    /// Space left on the filesystem that holds the blobs (`None` on object
    /// storage), for readiness checks.
    pub fn disk_space(&self) -> Result<Option<DiskSpace>, RegistryError> {
        self.blobs.disk_space().map_err(RegistryError::Blob)
    }

    /// Remove a blob from the image.
    pub async fn delete_blob(
        &self,
        path: &ImagePath,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
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
        let room = self.headroom(&path.repository_name()).await?;
        if let Some((digest, from)) = mount {
            if from.project == path.project {
                if let Some(size) = self.meta.linked_blob_size(&image_ref(from), digest).await? {
                    // Not a blob moved to quarantine: that one must be pushed again.
                    if self.blobs.stat(digest).await?.is_some() {
                        let reservation = uuid::Uuid::new_v4().to_string();
                        let held = self
                            .reserve(&reservation, &path.repository_name(), size)
                            .await?
                            .map_err(|e| self.over_quota(e))?;
                        let linked = self.meta.link_blob(&image_ref(path), digest, size).await;
                        if held {
                            self.release(&reservation).await;
                        }
                        linked?;
                        return Ok(UploadStart::Mounted(digest.clone()));
                    }
                }
            }
        }
        // A repository already at its quota takes no new upload.
        if let Some(room) = room.filter(|r| r.bytes == 0) {
            return Err(self.over_quota(room.refusal(None)));
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
        let upload = self.session(path, id).await?;
        Ok(UploadState {
            id: upload.id,
            size: upload.size,
        })
    }

    /// Append a chunk. `range` is the inclusive byte range the client's
    /// `Content-Range` gives the chunk, if any: it must start where the upload
    /// ends, and the body must hold exactly that many bytes, or nothing changes.
    /// `content_length` is the request's `Content-Length`, if sent: under a
    /// quota, the chunk's bytes are reserved before it is read.
    pub async fn append_chunk(
        &self,
        path: &ImagePath,
        id: &str,
        range: Option<(u64, u64)>,
        content_length: Option<u64>,
        body: ByteStream,
    ) -> Result<UploadState, RegistryError> {
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
        let part = self
            .write_part(&upload, body, declared, content_length)
            .await?;
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
    ///
    /// Under a quota, the session holds a reservation of all its bytes: the
    /// part's are added before it is read when its length is known
    /// (`declared` from its `Content-Range`, else `content_length`), or once
    /// it is written (a body of unknown length is cut off where the quota's
    /// room ends), and the session is dropped when they do not fit.
    async fn write_part(
        &self,
        upload: &UploadRecord,
        body: ByteStream,
        declared: Option<u64>,
        content_length: Option<u64>,
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
        let repo = upload_repository(upload)?;
        let expected = declared.or(content_length);
        let mut room = None;
        if let Some(length) = expected {
            let total = upload.size.saturating_add(length);
            if let Err(e) = self.reserve(&upload.id, &repo, total).await? {
                self.drop_upload(&upload.id).await?;
                crate::quota::drain(body).await;
                return Err(self.over_quota(e));
            }
        } else {
            // What the session wrote so far is reserved already: the room
            // left after every reservation is what this part may add.
            room = self.headroom(&repo).await?;
        }
        let exceeded = Arc::new(AtomicBool::new(false));
        let body = match &room {
            Some(room) => limit_body(body, room.bytes, exceeded.clone()),
            None => body,
        };
        let written = self.blobs.write_part(&upload.id, body, running).await;
        if exceeded.load(Ordering::SeqCst) {
            if let Some(room) = room {
                self.drop_upload(&upload.id).await?;
                return Err(self.over_quota(room.refusal(None)));
            }
        }
        let mut part = written?;
        if let Some(declared) = declared.filter(|d| *d != part.size) {
            self.discard_part(&upload.id, &part.name).await;
            return Err(RegistryError::ChunkLengthMismatch {
                declared,
                received: part.size,
                size: upload.size,
            });
        }
        if expected.is_none() {
            let total = upload.size.saturating_add(part.size);
            if let Err(e) = self.reserve(&upload.id, &repo, total).await? {
                self.discard_part(&upload.id, &part.name).await;
                self.drop_upload(&upload.id).await?;
                return Err(self.over_quota(e));
            }
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
    /// `range` is the inclusive range the last chunk's `Content-Range`
    /// gives, if any: it must start where the upload ends (else 416 and the
    /// session is left as it was, for the client to resume), and the body
    /// must hold exactly that many bytes.
    pub async fn finish_upload(
        &self,
        path: &ImagePath,
        id: &str,
        digest: &Digest,
        range: Option<(u64, u64)>,
        content_length: Option<u64>,
        last_chunk: Option<ByteStream>,
    ) -> Result<Digest, RegistryError> {
        let mut upload = self.session(path, id).await?;
        if let Some((start, _)) = range {
            if start != upload.size {
                return Err(RegistryError::RangeMismatch {
                    expected: upload.size,
                    got: start,
                });
            }
        }
        let declared = range.map(|(start, end)| end - start + 1);
        if let Some(body) = last_chunk {
            let part = self
                .write_part(&upload, body, declared, content_length)
                .await?;
            upload.size += part.size;
            upload.parts += 1;
            upload.part_names.push(part.name);
        }
        // The whole upload is reserved (again: a session that began before
        // its quota was set, or was lowered since, is weighed now).
        if let Err(e) = self
            .reserve(&upload.id, &path.repository_name(), upload.size)
            .await?
        {
            self.drop_upload(&upload.id).await?;
            return Err(self.over_quota(e));
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
                self.release(&upload.id).await;
                return Err(RegistryError::BlobUploadUnknown(upload.id));
            }
            Err(e) => {
                self.release(&upload.id).await;
                return Err(e.into());
            }
        };
        // Released once linked: the bytes count as usage from then on, and
        // for a moment twice, never not at all.
        // (Released whether or not this request reserved: an earlier chunk
        // may have, under a quota removed since.)
        let linked = self.meta.link_blob(&image_ref(path), digest, size).await;
        self.release(&upload.id).await;
        linked?;
        Ok(digest.clone())
    }

    /// Push a whole blob in one request (`POST ...?digest=`), of
    /// `content_length` bytes when the client said: under a quota, a blob
    /// that does not fit is refused before it is read, and one of unknown
    /// length as soon as it carries more than fits.
    pub async fn put_blob(
        &self,
        path: &ImagePath,
        digest: &Digest,
        content_length: Option<u64>,
        body: ByteStream,
    ) -> Result<Digest, RegistryError> {
        let repo = path.repository_name();
        let reservation = uuid::Uuid::new_v4().to_string();
        let mut room = None;
        let mut held = false;
        if let Some(length) = content_length {
            match self.reserve(&reservation, &repo, length).await? {
                Ok(h) => held = h,
                Err(e) => {
                    crate::quota::drain(body).await;
                    return Err(self.over_quota(e));
                }
            }
        } else {
            room = self.headroom(&repo).await?;
        }
        let exceeded = Arc::new(AtomicBool::new(false));
        let body = match &room {
            Some(room) => limit_body(body, room.bytes, exceeded.clone()),
            None => body,
        };
        let stored = self.blobs.put_blob(digest, body, None).await;
        if let Some(room) = room.filter(|_| exceeded.load(Ordering::SeqCst)) {
            return Err(self.over_quota(room.refusal(None)));
        }
        let size = match stored {
            Ok(size) => size,
            Err(e) => {
                if held {
                    self.release(&reservation).await;
                }
                return Err(e.into());
            }
        };
        if content_length.is_none() {
            // Of unknown length: weighed once its size is known, before it
            // is linked (unlinked, its bytes go with the next collection).
            held = self
                .reserve(&reservation, &repo, size)
                .await?
                .map_err(|e| self.over_quota(e))?;
        }
        let linked = self.meta.link_blob(&image_ref(path), digest, size).await;
        if held {
            self.release(&reservation).await;
        }
        linked?;
        Ok(digest.clone())
    }

    /// Abandon an upload session.
    pub async fn cancel_upload(&self, path: &ImagePath, id: &str) -> Result<(), RegistryError> {
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
        self.release(id).await;
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

    /// Tags of an image, lexically, after `last`: one page of at most `size`.
    pub async fn list_tags(
        &self,
        path: &ImagePath,
        size: u32,
        last: Option<&str>,
    ) -> Result<Page, RegistryError> {
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
    /// `last` of at most `size`. Remote repositories' cached images count.
    pub async fn catalog(&self, size: u32, last: Option<&str>) -> Result<Page, RegistryError> {
        let rows = self
            .meta
            .catalog(last, size + 1)
            .await?
            .into_iter()
            .map(|e| e.path)
            .collect();
        Ok(Page::from_rows(rows, size))
    }

    /// The referrers index of `subject` among the stored manifests (for a
    /// remote repository, those it has cached), optionally filtered by
    /// artifact type. Returns the index document's bytes.
    pub async fn referrers(
        &self,
        path: &ImagePath,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<u8>, RegistryError> {
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

/// The repository an upload session writes to.
fn upload_repository(upload: &UploadRecord) -> Result<RepositoryName, RegistryError> {
    let invalid = |e: entrepot_domain::NameError| RegistryError::BlobUploadInvalid(e.to_string());
    Ok(RepositoryName::new(
        upload.image.project.parse().map_err(invalid)?,
        upload.image.repository.parse().map_err(invalid)?,
    ))
}
