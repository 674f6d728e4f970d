//! [`ObjectBlobStore`]: the blob store on any `object_store` backend, with
//! the local filesystem's fast paths.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use entrepot_domain::{Algorithm, ByteRange, Digest, DigestHasher};
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, WriteMultipart};

use super::*;
/// A [`BlobStore`] on any `object_store` backend; on the local filesystem it also
/// fsyncs before every commit and reads files directly with large buffers.
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
    /// Age in seconds past which [`BlobStore::remove_staging`] takes a
    /// staging object for a crashed commit's leftover.
    staging_leftover_secs: i64,
}

const WRITE_CHUNK: usize = 8 * 1024 * 1024;
/// Size of the chunks a local blob is read in.
const READ_CHUNK: u64 = 1024 * 1024;
/// Chunks read ahead of the one being sent: reading overlaps with sending,
/// and memory per download stays bounded whatever the blob's size.
const READ_AHEAD: usize = 2;

/// Stream `len` bytes of a local file from `start`, in [`READ_CHUNK`] pieces
/// read on the blocking pool. No thread waits on a slow client: each read is
/// its own short blocking task.
fn file_chunks(file: std::fs::File, start: u64, len: u64) -> ByteStream {
    let file = Arc::new(std::sync::Mutex::new(file));
    let chunks = (0..len.div_ceil(READ_CHUNK)).map(move |i| {
        let offset = i * READ_CHUNK;
        (start + offset, READ_CHUNK.min(len - offset))
    });
    futures::stream::iter(chunks)
        .map(move |(offset, n)| {
            let file = file.clone();
            async move {
                tokio::task::spawn_blocking(move || read_chunk(&file, offset, n))
                    .await
                    .map_err(std::io::Error::other)?
            }
        })
        .buffered(READ_AHEAD)
        .boxed()
}

/// Read exactly `n` bytes at `offset`; a file shorter than its recorded size
/// is an error, never a short answer.
fn read_chunk(
    file: &std::sync::Mutex<std::fs::File>,
    offset: u64,
    n: u64,
) -> Result<Bytes, std::io::Error> {
    use std::io::{Read, Seek};
    // read_to_end fills the spare capacity without zeroing it first, which a
    // positioned read into a zeroed buffer would need: one pass less over
    // every byte served. Seek and read under the lock, as the chunks read
    // ahead share the file's offset.
    let mut buf = Vec::with_capacity(n as usize);
    let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
    file.seek(std::io::SeekFrom::Start(offset))?;
    (&mut *file).take(n).read_to_end(&mut buf)?;
    if buf.len() as u64 != n {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "blob file is shorter than its recorded size",
        ));
    }
    Ok(Bytes::from(buf))
}

/// Whether a stream error is an object that is not there (a part removed
/// while a commit read it).
fn is_not_found(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<object_store::Error>())
        .is_some_and(|inner| matches!(inner, object_store::Error::NotFound { .. }))
}

fn blob_path(digest: &Digest) -> Path {
    let hex = digest.hex();
    Path::from(format!(
        "blobs/{}/{}/{}",
        digest.algorithm().name(),
        &hex[..2],
        hex
    ))
}

fn part_path(upload: &str, part: &str) -> Path {
    Path::from(format!("uploads/{upload}/{part}"))
}

/// A file name for a new part or staging object: random, so two requests can
/// never write the same file.
fn unique_name() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Part names come from the session row, which only this store fills; refuse
/// anything that could name a file outside the session's directory.
fn check_part_name(part: &str) -> Result<(), BlobError> {
    if !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(())
    } else {
        Err(BlobError::NotFound)
    }
}

fn quarantine_path(digest: &Digest, suffix: &str) -> Path {
    Path::from(format!(
        "quarantine/{}/{}.{suffix}",
        digest.algorithm().name(),
        digest.hex()
    ))
}

fn staging_path(id: &str) -> Path {
    Path::from(format!("staging/{id}"))
}

/// Create `dir` (and missing parents) with mode 0700 whatever the umask, and
/// tighten it to 0700 if it exists: blobs of private repositories live there.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Give a file mode 0600 whatever the umask it was created under.
fn make_private(file: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

impl ObjectBlobStore {
    /// A blob store in a local directory (created if missing, mode 0700).
    pub fn local(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        create_private_dir(&root)?;
        let root = root.canonicalize()?;
        // No automatic cleanup of empty directories: it removes parents up to
        // the root after a delete, so a shared directory such as `uploads/`
        // could vanish between another writer's mkdir and its file creation.
        // Each session removes its own directory (`discard_upload`).
        let store = LocalFileSystem::new_with_prefix(&root)?;
        Ok(Self {
            store: Arc::new(store),
            local_root: Some(root),
            staging_leftover_secs: 0,
        })
    }

    /// A blob store on another backend (S3-compatible object storage, memory).
    ///
    /// The backend must copy create-only (`copy_if_not_exists`): every commit
    /// publishes with `rename_if_not_exists`. `InMemory` does; `AmazonS3`
    /// refuses with `NotSupported` unless built with an `S3CopyIfNotExists`
    /// mode the bucket supports.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            local_root: None,
            staging_leftover_secs: 0,
        }
    }

    /// Have [`BlobStore::remove_staging`] leave staging objects younger than
    /// `secs` alone: on a bucket that several nodes share, those are other
    /// nodes' commits in flight, not a crash's leftovers.
    pub fn with_staging_leftover_age(mut self, secs: u32) -> Self {
        self.staging_leftover_secs = i64::from(secs);
        self
    }

    fn local_file(&self, path: &Path) -> Option<PathBuf> {
        self.local_root
            .as_ref()
            .map(|root| root.join(path.as_ref()))
    }

    /// Make a finished local file private to the server and durable before
    /// it becomes visible.
    async fn sync_file(&self, path: &Path) -> Result<(), BlobError> {
        if let Some(file) = self.local_file(path) {
            tokio::task::spawn_blocking(move || {
                let file = std::fs::File::open(file)?;
                make_private(&file)?;
                file.sync_all()
            })
            .await
            .map_err(std::io::Error::other)??;
        }
        Ok(())
    }

    /// Make a rename durable: fsync the directory that now holds the file.
    async fn sync_parent(&self, path: &Path) -> Result<(), BlobError> {
        if let Some(dir) = self
            .local_file(path)
            .and_then(|f| f.parent().map(PathBuf::from))
        {
            tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
                .await
                .map_err(std::io::Error::other)??;
        }
        Ok(())
    }

    /// Stream `body` into `path`, hashing; returns the byte count.
    async fn write_stream(
        &self,
        path: &Path,
        mut body: ByteStream,
        mut hasher: Option<&mut DigestHasher>,
        limit: Option<u64>,
    ) -> Result<u64, BlobError> {
        let upload = self.store.put_multipart(path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, WRITE_CHUNK);
        let mut written: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(BlobError::Body(e));
                }
            };
            written += chunk.len() as u64;
            if let Some(limit) = limit.filter(|l| written > *l) {
                let _ = writer.abort().await;
                return Err(BlobError::TooLarge { limit });
            }
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&chunk);
            }
            writer.wait_for_capacity(2).await?;
            writer.put(chunk);
        }
        writer.finish().await?;
        self.sync_file(path).await?;
        Ok(written)
    }

    /// Move a verified staging object to its digest path, create-only.
    async fn publish(&self, from: &Path, digest: &Digest) -> Result<(), BlobError> {
        let to = blob_path(digest);
        if self.local_root.is_none() && self.store.head(&to).await.is_ok() {
            // Object storage: spare the copy when the blob is there, and narrow
            // the race on a store that ignores `If-None-Match` (Garage).
            self.delete_quietly(from).await;
            return Ok(());
        }
        match self.store.rename_if_not_exists(from, &to).await {
            Ok(()) => self.sync_parent(&to).await,
            // Same digest, same bytes: the existing blob wins.
            Err(object_store::Error::AlreadyExists { .. }) => {
                self.delete_quietly(from).await;
                Ok(())
            }
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_quietly(&self, path: &Path) {
        // Without automatic cleanup, a delete never touches a directory.
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(path = %path, error = %e, "could not delete staging object"),
        }
    }

    fn parts_stream(&self, upload: &str, parts: &[String]) -> ByteStream {
        let store = self.store.clone();
        let paths: Vec<Path> = parts.iter().map(|p| part_path(upload, p)).collect();
        futures::stream::iter(paths)
            .then(move |path| {
                let store = store.clone();
                async move { store.get(&path).await.map(|r| r.into_stream()) }
            })
            .try_flatten()
            .map_err(std::io::Error::other)
            .boxed()
    }
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        match self.store.head(&blob_path(digest)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn read(
        &self,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<ByteStream, BlobError> {
        let path = blob_path(digest);
        if let Some(file) = self.local_file(&path) {
            let opened = tokio::task::spawn_blocking(move || {
                let file = std::fs::File::open(file)?;
                let size = file.metadata()?.len();
                Ok::<_, std::io::Error>((file, size))
            })
            .await
            .map_err(std::io::Error::other)?;
            let (file, size) = match opened {
                Ok(opened) => opened,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(BlobError::NotFound)
                }
                Err(e) => return Err(e.into()),
            };
            let (start, len) = range.map_or((0, size), |r| (r.start, r.len()));
            return Ok(file_chunks(file, start, len));
        }
        let options = GetOptions {
            range: range.map(|r| GetRange::Bounded(r.start..r.end + 1)),
            ..GetOptions::default()
        };
        match self.store.get_opts(&path, options).await {
            Ok(result) => Ok(result.into_stream().map_err(std::io::Error::other).boxed()),
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    async fn open_local(&self, digest: &Digest) -> Result<Option<LocalBlobFile>, BlobError> {
        let Some(file) = self.local_file(&blob_path(digest)) else {
            return Ok(None);
        };
        let opened = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(file)?;
            let len = file.metadata()?.len();
            Ok::<_, std::io::Error>(LocalBlobFile { file, len })
        })
        .await
        .map_err(std::io::Error::other)?;
        match opened {
            Ok(opened) => Ok(Some(opened)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn write_part(
        &self,
        upload: &str,
        body: ByteStream,
        mut running: Option<RunningHash>,
    ) -> Result<WrittenPart, BlobError> {
        let name = unique_name();
        let size = self
            .write_stream(
                &part_path(upload, &name),
                body,
                running.as_mut().map(|r| &mut r.hasher),
                None,
            )
            .await?;
        if let Some(r) = running.as_mut() {
            r.parts.push(name.clone());
        }
        Ok(WrittenPart {
            name,
            size,
            running,
        })
    }

    async fn discard_part(&self, upload: &str, part: &str) -> Result<(), BlobError> {
        check_part_name(part)?;
        self.delete_quietly(&part_path(upload, part)).await;
        Ok(())
    }

    async fn commit_upload(
        &self,
        upload: &str,
        parts: &[String],
        expected: &Digest,
        running: Option<RunningHash>,
    ) -> Result<u64, BlobError> {
        let result = async {
            for part in parts {
                check_part_name(part)?;
            }
            let running = running
                .filter(|r| r.parts == parts && r.hasher.algorithm() == expected.algorithm());
            if let (1, Some(running)) = (parts.len(), running) {
                // One part whose bytes were hashed while they were written to
                // this very file, which no other request can write: publish
                // it in place.
                let size = running.hasher.len();
                let actual = running.hasher.finish();
                if &actual != expected {
                    return Err(BlobError::DigestMismatch {
                        expected: expected.clone(),
                        actual,
                    });
                }
                self.publish(&part_path(upload, &parts[0]), expected)
                    .await?;
                return Ok(size);
            }
            // A staging object of this commit alone: two commits of one
            // session must never publish each other's bytes.
            let staging = staging_path(&unique_name());
            let mut hasher = DigestHasher::for_digest(expected);
            let written = self
                .write_stream(
                    &staging,
                    self.parts_stream(upload, parts),
                    Some(&mut hasher),
                    None,
                )
                .await;
            let size = match written {
                Ok(size) => size,
                Err(e) => {
                    self.delete_quietly(&staging).await;
                    // A part gone from under the commit: the session was
                    // finished or cancelled by another request.
                    return Err(match e {
                        BlobError::Body(e) if is_not_found(&e) => BlobError::NotFound,
                        e => e,
                    });
                }
            };
            let actual = hasher.finish();
            if &actual != expected {
                self.delete_quietly(&staging).await;
                return Err(BlobError::DigestMismatch {
                    expected: expected.clone(),
                    actual,
                });
            }
            self.publish(&staging, expected).await?;
            Ok(size)
        }
        .await;
        self.discard_upload(upload).await?;
        result
    }

    async fn discard_upload(&self, upload: &str) -> Result<(), BlobError> {
        let prefix = Path::from(format!("uploads/{upload}"));
        if let Some(dir) = self.local_file(&prefix) {
            // The whole directory, with half-written part files a listing skips.
            return match tokio::fs::remove_dir_all(&dir).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.into()),
            };
        }
        let paths: Vec<_> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        for path in paths {
            self.delete_quietly(&path).await;
        }
        Ok(())
    }

    async fn put_blob(
        &self,
        expected: &Digest,
        body: ByteStream,
        limit: Option<u64>,
    ) -> Result<u64, BlobError> {
        let staging = staging_path(&uuid::Uuid::new_v4().to_string());
        let mut hasher = DigestHasher::for_digest(expected);
        let size = self
            .write_stream(&staging, body, Some(&mut hasher), limit)
            .await?;
        let actual = hasher.finish();
        if &actual != expected {
            self.delete_quietly(&staging).await;
            return Err(BlobError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        self.publish(&staging, expected).await?;
        Ok(size)
    }

    async fn delete(&self, digest: &Digest) -> Result<(), BlobError> {
        // Unlike staging leftovers, a blob that could not be deleted is the
        // caller's business: a collector must not forget bytes still stored.
        match self.store.delete(&blob_path(digest)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn import_verified_file(
        &self,
        digest: &Digest,
        file: &std::path::Path,
    ) -> Result<(), BlobError> {
        let target = blob_path(digest);
        if let Some(dest) = self.local_file(&target) {
            let (src, dst) = (file.to_owned(), dest.clone());
            let linked = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
                let file = std::fs::File::open(&src)?;
                make_private(&file)?;
                file.sync_all()?;
                if let Some(dir) = dst.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let linked = match std::fs::hard_link(&src, &dst) {
                    Ok(()) => true,
                    // Same digest, same bytes: the existing blob wins.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => true,
                    // Another filesystem: fall back to a streamed copy.
                    Err(e) if e.raw_os_error() == Some(18) => false,
                    Err(e) => return Err(e),
                };
                if linked {
                    std::fs::remove_file(&src)?;
                }
                Ok(linked)
            })
            .await
            .map_err(std::io::Error::other)??;
            if linked {
                return self.sync_parent(&target).await;
            }
        }
        // Another server sharing the bucket may have committed these bytes
        // already (it held the fill's lease): keep its copy rather than
        // upload them again.
        if self.stat(digest).await?.is_some() {
            tokio::fs::remove_file(file).await?;
            return Ok(());
        }
        let reader = tokio::fs::File::open(file).await?;
        let body = tokio_util::io::ReaderStream::with_capacity(reader, READ_CHUNK as usize).boxed();
        self.put_blob(digest, body, None).await?;
        tokio::fs::remove_file(file).await?;
        Ok(())
    }

    async fn verify_blobs(&self) -> Result<VerifyReport, BlobError> {
        if let Some(root) = self.local_root.clone() {
            return tokio::task::spawn_blocking(move || verify_local(&root))
                .await
                .map_err(std::io::Error::other)?;
        }
        let mut paths = Vec::new();
        for algorithm in Algorithm::ALL {
            let dir = Path::from(format!("blobs/{}", algorithm.name()));
            let found: Vec<_> = self
                .store
                .list(Some(&dir))
                .map_ok(|m| (algorithm, m.location))
                .try_collect()
                .await?;
            paths.extend(found);
        }
        let mut report = VerifyReport::default();
        for (algorithm, path) in paths {
            let Some(expected) = path
                .filename()
                .and_then(|name| digest_of_file_name(algorithm, name))
            else {
                continue;
            };
            let mut hasher = DigestHasher::for_digest(&expected);
            let mut body = match self.store.get(&path).await {
                Ok(r) => r.into_stream(),
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            while let Some(chunk) = body.next().await {
                hasher.update(&chunk?);
            }
            report.checked += 1;
            if hasher.finish() != expected {
                let to = quarantine_path(&expected, &unique_name());
                self.store.rename(&path, &to).await?;
                tracing::warn!(digest = %expected, to = %to, "blob does not match its digest; moved to quarantine");
                report.quarantined.push(expected);
            }
        }
        Ok(report)
    }

    fn disk_space(&self) -> Result<Option<DiskSpace>, BlobError> {
        let Some(root) = &self.local_root else {
            return Ok(None);
        };
        let stat = rustix::fs::statvfs(root).map_err(std::io::Error::from)?;
        Ok(Some(DiskSpace {
            available: stat.f_bavail.saturating_mul(stat.f_frsize),
            total: stat.f_blocks.saturating_mul(stat.f_frsize),
        }))
    }

    async fn check_writable(&self) -> Result<(), BlobError> {
        // In staging: a probe a crash leaves behind is removed at the next start.
        let probe = Path::from(format!("staging/readiness-probe-{}", uuid::Uuid::new_v4()));
        self.store
            .put(&probe, object_store::PutPayload::from_static(b"probe"))
            .await?;
        self.store.delete(&probe).await?;
        Ok(())
    }

    fn list_blobs(&self) -> futures::stream::BoxStream<'_, Result<StoredBlob, BlobError>> {
        futures::stream::iter(Algorithm::ALL)
            .flat_map(move |algorithm| {
                let dir = Path::from(format!("blobs/{}", algorithm.name()));
                self.store
                    .list(Some(&dir))
                    .filter_map(move |listed| async move {
                        match listed {
                            Err(e) => Some(Err(e.into())),
                            // Anything else there (a half-written `name#N`) is no blob.
                            Ok(meta) => {
                                let digest = meta
                                    .location
                                    .filename()
                                    .and_then(|name| digest_of_file_name(algorithm, name))?;
                                Some(Ok(StoredBlob {
                                    digest,
                                    size: meta.size,
                                    modified_unix: meta.last_modified.timestamp(),
                                }))
                            }
                        }
                    })
            })
            .boxed()
    }

    async fn remove_staging(&self) -> Result<usize, BlobError> {
        let prefix = Path::from("staging");
        if let Some(dir) = self.local_file(&prefix) {
            // Read the directory itself: a listing through object_store skips the
            // half-written files (`name#N`) that a crash mid-write leaves.
            let mut removed = 0;
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e.into()),
            };
            while let Some(entry) = entries.next_entry().await? {
                let path = entry.path();
                if entry.file_type().await?.is_dir() {
                    tokio::fs::remove_dir_all(&path).await?;
                } else {
                    tokio::fs::remove_file(&path).await?;
                }
                removed += 1;
            }
            return Ok(removed);
        }
        // A bucket may be shared by several nodes, whose commits run while
        // this one starts: only staging objects older than any commit are
        // leftovers. (An upload still in progress is no object yet.)
        let cutoff = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
            - self.staging_leftover_secs;
        let paths: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_filter(|m| {
                let leftover =
                    self.staging_leftover_secs == 0 || m.last_modified.timestamp() < cutoff;
                futures::future::ready(leftover)
            })
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        for path in &paths {
            self.delete_quietly(path).await;
        }
        Ok(paths.len())
    }
}

/// The digest a blob file's name promises under `algorithm`: lowercase hex
/// of the algorithm's length. Anything else (a half-written `name#N` left by
/// a crash) is not a blob.
fn digest_of_file_name(algorithm: Algorithm, name: &str) -> Option<Digest> {
    let hex_only = name.len() == algorithm.hex_len()
        && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex_only
        .then(|| format!("{}:{name}", algorithm.name()).parse().ok())
        .flatten()
}

/// Rehash every file under `root/blobs/<algorithm>`, moving mismatches to
/// `root/quarantine/<algorithm>/<hex>.<random>`; reads with the same large
/// buffers as downloads, one file at a time. The report names the sha256
/// quarantine directory, where nearly every blob lives.
fn verify_local(root: &std::path::Path) -> Result<VerifyReport, BlobError> {
    let mut report = VerifyReport {
        quarantine_dir: Some(root.join("quarantine").join(Algorithm::Sha256.name())),
        ..VerifyReport::default()
    };
    for algorithm in Algorithm::ALL {
        verify_local_algorithm(root, algorithm, &mut report)?;
    }
    Ok(report)
}

/// [`verify_local`] for the blobs of one algorithm.
fn verify_local_algorithm(
    root: &std::path::Path,
    algorithm: Algorithm,
    report: &mut VerifyReport,
) -> Result<(), BlobError> {
    use std::io::Read as _;
    let blobs = root.join("blobs").join(algorithm.name());
    let quarantine = root.join("quarantine").join(algorithm.name());
    let shards = match std::fs::read_dir(&blobs) {
        Ok(shards) => shards,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut buf = vec![0u8; READ_CHUNK as usize];
    for shard in shards {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(shard.path())? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(expected) = name
                .to_str()
                .and_then(|name| digest_of_file_name(algorithm, name))
            else {
                continue;
            };
            let mut file = match std::fs::File::open(entry.path()) {
                Ok(file) => file,
                // Deleted meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let mut hasher = DigestHasher::for_digest(&expected);
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            report.checked += 1;
            if hasher.finish() == expected {
                continue;
            }
            create_private_dir(&quarantine)?;
            let to = quarantine.join(format!("{}.{}", expected.hex(), unique_name()));
            std::fs::rename(entry.path(), &to)?;
            tracing::warn!(digest = %expected, to = %to.display(), "blob does not match its digest; moved to quarantine");
            report.quarantined.push(expected);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::blob::Blobs;

    /// The blob store contracts on a local directory, and on an in-memory
    /// object store: the path object storage (S3) takes.
    mod local {
        crate::conformance::blob_suite!(async {
            let dir = tempfile::tempdir().unwrap();
            (super::local_blobs(dir.path()), dir)
        });
    }

    mod in_memory {
        use std::sync::Arc;

        use crate::conformance::blob::Blobs;
        use crate::ObjectBlobStore;

        crate::conformance::blob_suite!(async {
            let objects = Arc::new(object_store::memory::InMemory::new());
            let store = Arc::new(ObjectBlobStore::new(objects.clone()));
            (Blobs { store, objects }, ())
        });
    }

    fn local_blobs(root: &std::path::Path) -> Blobs {
        let store = Arc::new(ObjectBlobStore::local(root).unwrap());
        let root = root.canonicalize().unwrap();
        let objects = Arc::new(LocalFileSystem::new_with_prefix(root).unwrap());
        Blobs { store, objects }
    }

    fn body(chunks: &[&'static [u8]]) -> ByteStream {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        futures::stream::iter(chunks).boxed()
    }

    #[tokio::test]
    async fn local_sessions_leave_no_directory_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectBlobStore::local(dir.path()).unwrap();
        let a = store
            .write_part("u1", body(&[b"hello "]), None)
            .await
            .unwrap();
        let b = store
            .write_part("u1", body(&[b"wor", b"ld"]), None)
            .await
            .unwrap();
        let d = Digest::of(b"hello world");
        store
            .commit_upload("u1", &[a.name, b.name], &d, None)
            .await
            .unwrap();
        assert!(!dir.path().join("uploads/u1").exists());
        let part = store
            .write_part("u4", body(&[b"abc"]), Some(RunningHash::new()))
            .await
            .unwrap();
        store
            .commit_upload("u4", &[part.name], &Digest::of(b"abc"), part.running)
            .await
            .unwrap();
        assert!(!dir.path().join("uploads/u4").exists());
        store
            .write_part("u5", body(&[b"cancelled"]), None)
            .await
            .unwrap();
        store.discard_upload("u5").await.unwrap();
        assert!(!dir.path().join("uploads/u5").exists());
    }

    #[tokio::test]
    async fn local_blobs_are_files_of_the_server_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectBlobStore::local(dir.path()).unwrap();
        let part = store
            .write_part("u2", body(&[b"abc"]), Some(RunningHash::new()))
            .await
            .unwrap();
        let d = Digest::of(b"abc");
        store
            .commit_upload("u2", &[part.name], &d, part.running)
            .await
            .unwrap();
        let e = Digest::of(b"put whole");
        store
            .put_blob(&e, body(&[b"put whole"]), None)
            .await
            .unwrap();
        #[cfg(unix)]
        for d in [d, e] {
            use std::os::unix::fs::PermissionsExt as _;
            let file = dir
                .path()
                .join(format!("blobs/sha256/{}/{}", &d.hex()[..2], d.hex()));
            let mode = std::fs::metadata(file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn remove_staging_clears_half_written_local_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectBlobStore::local(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("staging")).unwrap();
        std::fs::write(dir.path().join("staging/a"), b"x").unwrap();
        // What a crash mid-write leaves, which listings skip.
        std::fs::write(dir.path().join("staging/b#1"), b"y").unwrap();
        assert_eq!(store.remove_staging().await.unwrap(), 2);
        assert_eq!(store.remove_staging().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn local_quarantine_is_a_directory_beside_the_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectBlobStore::local(dir.path()).unwrap();
        let bad = Digest::of(b"bad!");
        store.put_blob(&bad, body(&[b"bad!"]), None).await.unwrap();
        let file = dir
            .path()
            .join(format!("blobs/sha256/{}/{}", &bad.hex()[..2], bad.hex()));
        std::fs::write(&file, b"evil").unwrap();
        let report = store.verify_blobs().await.unwrap();
        assert_eq!(report.quarantined, vec![bad.clone()]);
        let quarantine = dir.path().canonicalize().unwrap().join("quarantine/sha256");
        assert_eq!(report.quarantine_dir, Some(quarantine.clone()));
        let kept: Vec<_> = std::fs::read_dir(quarantine)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert_eq!(kept, vec![b"evil".to_vec()]);
    }

    /// An in-memory object store on which deleting a committed blob fails,
    /// as it does on a bucket when the network or the credentials do.
    #[derive(Debug)]
    struct DeletesFail(object_store::memory::InMemory);

    impl std::fmt::Display for DeletesFail {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "DeletesFail")
        }
    }

    #[async_trait]
    impl ObjectStore for DeletesFail {
        async fn put_opts(
            &self,
            location: &Path,
            payload: object_store::PutPayload,
            opts: object_store::PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            self.0.put_opts(location, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.0.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &Path,
            options: GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            self.0.get_opts(location, options).await
        }
        async fn delete(&self, location: &Path) -> object_store::Result<()> {
            if !location.as_ref().starts_with("blobs/") {
                return self.0.delete(location).await;
            }
            Err(object_store::Error::Generic {
                store: "DeletesFail",
                source: "connection reset".into(),
            })
        }
        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
            self.0.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<object_store::ListResult> {
            self.0.list_with_delimiter(prefix).await
        }
        async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
            self.0.copy(from, to).await
        }
        async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
            self.0.copy_if_not_exists(from, to).await
        }
    }

    #[tokio::test]
    async fn a_delete_the_object_store_refuses_is_an_error() {
        let store = ObjectBlobStore::new(Arc::new(DeletesFail(Default::default())));
        let d = Digest::of(b"layer");
        store.put_blob(&d, body(&[b"layer"]), None).await.unwrap();
        assert_eq!(store.stat(&d).await.unwrap(), Some(5));
        assert!(matches!(
            store.delete(&d).await,
            Err(BlobError::Store(object_store::Error::Generic { .. }))
        ));
        assert_eq!(store.stat(&d).await.unwrap(), Some(5));
    }

    #[tokio::test]
    async fn only_a_local_directory_has_disk_space() {
        let dir = tempfile::tempdir().unwrap();
        let local = ObjectBlobStore::local(dir.path()).unwrap();
        let space = local.disk_space().unwrap().unwrap();
        assert!(space.total > 0 && space.available <= space.total);
        let memory = ObjectBlobStore::new(Arc::new(object_store::memory::InMemory::new()));
        assert_eq!(memory.disk_space().unwrap(), None);
    }
}
