//! The content-addressed blob store.
//!
//! Bytes flow body → hasher → staging object → verify → create-only commit, so a
//! blob is visible at its digest path only once its bytes are known to match.
//! Upload parts and staging objects live under their own prefixes and are never
//! served.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use entrepot_domain::{ByteRange, Digest, Sha256Hasher};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, WriteMultipart};

/// A stream of body bytes.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No blob (or upload part) at that address.
    #[error("blob not found")]
    NotFound,
    /// The bytes received do not hash to the digest the client announced.
    #[error("content digest is {actual}, not {expected} as announced")]
    DigestMismatch {
        /// What the client said.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// More bytes than allowed.
    #[error("content is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Reading the client's body failed (disconnect, timeout).
    #[error("reading the request body failed: {0}")]
    Body(std::io::Error),
    /// The object store failed.
    #[error("blob storage error: {0}")]
    Store(#[from] object_store::Error),
    /// A local file operation failed.
    #[error("blob storage I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Content-addressed storage of blobs and of upload parts.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Size of a committed blob; `None` if there is none.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError>;

    /// Stream a committed blob, or one range of it.
    async fn read(
        &self,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<ByteStream, BlobError>;

    /// Store part `part` of upload session `upload`, feeding its bytes to `hasher`.
    /// Returns the number of bytes written.
    async fn write_part(
        &self,
        upload: &str,
        part: u32,
        body: ByteStream,
        hasher: Option<&mut Sha256Hasher>,
    ) -> Result<u64, BlobError>;

    /// Turn parts `0..parts` of an upload into the blob `expected`, verifying the
    /// digest. `hasher` is the running hash over all parts when the caller kept it,
    /// which spares re-reading the parts. The parts are removed either way.
    async fn commit_upload(
        &self,
        upload: &str,
        parts: u32,
        expected: &Digest,
        hasher: Option<Sha256Hasher>,
    ) -> Result<u64, BlobError>;

    /// Remove every part of an upload session.
    async fn discard_upload(&self, upload: &str) -> Result<(), BlobError>;

    /// Store a whole blob from a stream, verifying it hashes to `expected`.
    async fn put_blob(
        &self,
        expected: &Digest,
        body: ByteStream,
        limit: Option<u64>,
    ) -> Result<u64, BlobError>;

    /// Delete a committed blob (no error if absent).
    async fn delete(&self, digest: &Digest) -> Result<(), BlobError>;

    /// Commit a local file whose bytes the caller has already verified to hash to
    /// `digest`. On the local backend this is a create-only link, no copy; the
    /// file is removed either way.
    async fn import_verified_file(
        &self,
        digest: &Digest,
        file: &std::path::Path,
    ) -> Result<(), BlobError>;

    /// Remove what commits interrupted by a crash left in the staging area.
    /// Call it at start-up, before serving: staging objects are never visible,
    /// and no commit can be in flight then. Returns how many were removed.
    async fn remove_staging(&self) -> Result<usize, BlobError>;
}

/// A [`BlobStore`] on any `object_store` backend; on the local filesystem it also
/// fsyncs before every commit and reads files directly with large buffers.
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
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

fn blob_path(digest: &Digest) -> Path {
    let hex = digest.hex();
    Path::from(format!("blobs/sha256/{}/{}", &hex[..2], hex))
}

fn part_path(upload: &str, part: u32) -> Path {
    Path::from(format!("uploads/{upload}/{part:08}"))
}

fn staging_path(id: &str) -> Path {
    Path::from(format!("staging/{id}"))
}

impl ObjectBlobStore {
    /// A blob store in a local directory (created if missing).
    pub fn local(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        let root = root.canonicalize()?;
        let store = LocalFileSystem::new_with_prefix(&root)?.with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(store),
            local_root: Some(root),
        })
    }

    /// A blob store on another backend (S3-compatible object storage, memory).
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            local_root: None,
        }
    }

    fn local_file(&self, path: &Path) -> Option<PathBuf> {
        self.local_root
            .as_ref()
            .map(|root| root.join(path.as_ref()))
    }

    /// Make a finished local file durable before it becomes visible.
    async fn sync_file(&self, path: &Path) -> Result<(), BlobError> {
        if let Some(file) = self.local_file(path) {
            tokio::task::spawn_blocking(move || std::fs::File::open(file)?.sync_all())
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
        mut hasher: Option<&mut Sha256Hasher>,
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
        match self.store.rename_if_not_exists(from, &to).await {
            Ok(()) => self.sync_parent(&to).await,
            // Same digest, same bytes: the existing blob wins.
            Err(object_store::Error::AlreadyExists { .. }) => {
                self.delete_quietly(from).await;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_quietly(&self, path: &Path) {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(path = %path, error = %e, "could not delete staging object"),
        }
    }

    fn parts_stream(&self, upload: &str, parts: u32) -> ByteStream {
        let store = self.store.clone();
        let paths: Vec<Path> = (0..parts).map(|p| part_path(upload, p)).collect();
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

    async fn write_part(
        &self,
        upload: &str,
        part: u32,
        body: ByteStream,
        hasher: Option<&mut Sha256Hasher>,
    ) -> Result<u64, BlobError> {
        self.write_stream(&part_path(upload, part), body, hasher, None)
            .await
    }

    async fn commit_upload(
        &self,
        upload: &str,
        parts: u32,
        expected: &Digest,
        hasher: Option<Sha256Hasher>,
    ) -> Result<u64, BlobError> {
        let result = async {
            if let (1, Some(hasher)) = (parts, hasher) {
                // One part whose hash we already know: publish it in place.
                let size = hasher.len();
                let actual = hasher.finish();
                if &actual != expected {
                    return Err(BlobError::DigestMismatch {
                        expected: expected.clone(),
                        actual,
                    });
                }
                self.publish(&part_path(upload, 0), expected).await?;
                return Ok(size);
            }
            let staging = staging_path(upload);
            let mut hasher = Sha256Hasher::new();
            let size = self
                .write_stream(
                    &staging,
                    self.parts_stream(upload, parts),
                    Some(&mut hasher),
                    None,
                )
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
        let mut hasher = Sha256Hasher::new();
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
        self.delete_quietly(&blob_path(digest)).await;
        Ok(())
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
                std::fs::File::open(&src)?.sync_all()?;
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
        let reader = tokio::fs::File::open(file).await?;
        let body = tokio_util::io::ReaderStream::with_capacity(reader, READ_CHUNK as usize).boxed();
        self.put_blob(digest, body, None).await?;
        tokio::fs::remove_file(file).await?;
        Ok(())
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
        let paths: Vec<_> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        for path in &paths {
            self.delete_quietly(path).await;
        }
        Ok(paths.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(chunks: &[&'static [u8]]) -> ByteStream {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        futures::stream::iter(chunks).boxed()
    }

    async fn read_all(store: &ObjectBlobStore, d: &Digest, range: Option<ByteRange>) -> Vec<u8> {
        let chunks: Vec<Bytes> = store
            .read(d, range)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        chunks.concat()
    }

    #[tokio::test]
    async fn multi_part_upload_commits_verified_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectBlobStore::local(dir.path()).unwrap();
        store
            .write_part("u1", 0, body(&[b"hello "]), None)
            .await
            .unwrap();
        store
            .write_part("u1", 1, body(&[b"wor", b"ld"]), None)
            .await
            .unwrap();
        let d = Digest::of(b"hello world");
        assert_eq!(store.commit_upload("u1", 2, &d, None).await.unwrap(), 11);
        assert_eq!(store.stat(&d).await.unwrap(), Some(11));
        assert_eq!(read_all(&store, &d, None).await, b"hello world");
        assert_eq!(
            read_all(&store, &d, Some(ByteRange { start: 6, end: 10 })).await,
            b"world"
        );
        assert!(!dir.path().join("uploads/u1").exists());
    }

    #[tokio::test]
    async fn digest_mismatch_leaves_nothing_visible() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectBlobStore::local(dir.path()).unwrap();
        let wrong = Digest::of(b"something else");
        let err = store
            .put_blob(&wrong, body(&[b"data"]), None)
            .await
            .unwrap_err();
        assert!(matches!(err, BlobError::DigestMismatch { .. }));
        assert_eq!(store.stat(&wrong).await.unwrap(), None);
        assert_eq!(store.stat(&Digest::of(b"data")).await.unwrap(), None);
    }

    #[tokio::test]
    async fn reads_whole_blobs_and_ranges_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectBlobStore::local(dir.path()).unwrap();
        let data: Vec<u8> = (0..(READ_CHUNK * 5 / 2)).map(|i| (i % 251) as u8).collect();
        let d = Digest::of(&data);
        let body = futures::stream::iter(vec![Ok(Bytes::from(data.clone()))]).boxed();
        store.put_blob(&d, body, None).await.unwrap();
        assert!(read_all(&store, &d, None).await == data);
        let (start, end) = (READ_CHUNK - 10, 2 * READ_CHUNK + 10);
        let range = ByteRange { start, end };
        let got = read_all(&store, &d, Some(range)).await;
        assert!(got == data[start as usize..=end as usize]);
        assert!(matches!(
            store.read(&Digest::of(b"absent"), None).await,
            Err(BlobError::NotFound)
        ));
    }

    #[tokio::test]
    async fn remove_staging_clears_what_a_crash_left() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectBlobStore::local(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("staging")).unwrap();
        std::fs::write(dir.path().join("staging/a"), b"x").unwrap();
        std::fs::write(dir.path().join("staging/b#1"), b"y").unwrap();
        assert_eq!(store.remove_staging().await.unwrap(), 2);
        assert_eq!(store.remove_staging().await.unwrap(), 0);
        let d = Digest::of(b"kept");
        store.put_blob(&d, body(&[b"kept"]), None).await.unwrap();
        assert_eq!(store.remove_staging().await.unwrap(), 0);
        assert_eq!(store.stat(&d).await.unwrap(), Some(4));
    }

    #[tokio::test]
    async fn single_part_with_running_hash_is_published_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectBlobStore::local(dir.path()).unwrap();
        let mut h = Sha256Hasher::new();
        store
            .write_part("u2", 0, body(&[b"abc"]), Some(&mut h))
            .await
            .unwrap();
        let d = Digest::of(b"abc");
        store.commit_upload("u2", 1, &d, Some(h)).await.unwrap();
        assert_eq!(read_all(&store, &d, None).await, b"abc");
        // Committing the same content again is idempotent.
        store.put_blob(&d, body(&[b"abc"]), None).await.unwrap();
        assert_eq!(store.stat(&d).await.unwrap(), Some(3));
    }
}
