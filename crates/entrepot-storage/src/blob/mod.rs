//! The content-addressed blob store.
//!
//! Bytes flow body → hasher → staging object → verify → create-only commit, so a
//! blob is visible at its digest path only once its bytes are known to match.
//! Upload parts and staging objects live under their own prefixes and are never
//! served.

use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use entrepot_domain::{ByteRange, Digest, DigestHasher};
use futures::stream::BoxStream;

mod object;
mod s3;
pub use object::{create_private_dir, ObjectBlobStore};
pub use s3::{S3Credentials, S3Location, S3LocationError};

/// A stream of body bytes.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// A part of an upload session, as written by [`BlobStore::write_part`].
#[derive(Debug)]
pub struct WrittenPart {
    /// Its file name inside the session, unique to the request that wrote it.
    pub name: String,
    /// Bytes written.
    pub size: u64,
    /// The running hash, extended with this part, when one was given.
    pub running: Option<RunningHash>,
}

/// The running hash (sha256, the usual algorithm) of an upload, bound to the
/// part files it was fed from; an upload closed under another algorithm is
/// read back instead.
///
/// Only [`BlobStore::write_part`] extends it, with the very bytes it writes to
/// a file no other request can write, so a commit can trust it for exactly
/// the parts it names and for nothing else.
#[derive(Clone, Default)]
pub struct RunningHash {
    parts: Vec<String>,
    hasher: DigestHasher,
}

impl RunningHash {
    /// The hash of no bytes, before the first part.
    pub fn new() -> Self {
        Self::default()
    }

    /// The part files it was fed from, in order.
    pub fn parts(&self) -> &[String] {
        &self.parts
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    /// Whether no bytes were hashed.
    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }
}

impl std::fmt::Debug for RunningHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningHash")
            .field("parts", &self.parts)
            .field("len", &self.hasher.len())
            .finish()
    }
}

/// A committed blob's local file and its length, from
/// [`BlobStore::open_local`].
#[derive(Debug)]
pub struct LocalBlobFile {
    /// The file, open for reading.
    pub file: std::fs::File,
    /// Its length in bytes when it was opened.
    pub len: u64,
}

/// What [`BlobStore::verify_blobs`] found.
#[derive(Debug, Default, Clone)]
pub struct VerifyReport {
    /// Blobs rehashed.
    pub checked: u64,
    /// Blobs whose bytes did not match their digest, now in quarantine.
    pub quarantined: Vec<Digest>,
    /// Where quarantined files were moved (local backend).
    pub quarantine_dir: Option<PathBuf>,
}

/// Space on the filesystem that holds the blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Bytes available to the server.
    pub available: u64,
    /// Size of the filesystem in bytes.
    pub total: u64,
}

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

/// A committed blob file as the blob store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// The digest its name promises.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, in unix seconds.
    pub modified_unix: i64,
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

    /// The committed blob's file, opened for reading, when the backend keeps
    /// blobs in local files: the server can then hand its bytes to the kernel
    /// (`sendfile`) instead of reading them itself. `None` on other backends
    /// and when the blob is absent.
    async fn open_local(&self, digest: &Digest) -> Result<Option<LocalBlobFile>, BlobError> {
        let _ = digest;
        Ok(None)
    }

    /// Store one part of upload session `upload` under a new file name that no
    /// other request can write, feeding its bytes to `running` when given (the
    /// running hash of the parts before it). The part belongs to the session
    /// only once the caller records [`WrittenPart::name`] in the session (and
    /// discards it with [`BlobStore::discard_part`] when it cannot).
    async fn write_part(
        &self,
        upload: &str,
        body: ByteStream,
        running: Option<RunningHash>,
    ) -> Result<WrittenPart, BlobError>;

    /// Remove one part a request wrote but could not record in its session.
    async fn discard_part(&self, upload: &str, part: &str) -> Result<(), BlobError>;

    /// Turn the parts `parts` (file names, in order) of an upload into the blob
    /// `expected`, verifying the digest. `running` spares re-reading a single
    /// part: it is used only if it was fed from exactly these part files. The
    /// parts are removed either way.
    async fn commit_upload(
        &self,
        upload: &str,
        parts: &[String],
        expected: &Digest,
        running: Option<RunningHash>,
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

    /// Delete a committed blob; no error if absent, an error if the backend
    /// could not delete it.
    async fn delete(&self, digest: &Digest) -> Result<(), BlobError>;

    /// Commit a local file whose bytes the caller has already verified to hash to
    /// `digest`. On the local backend this is a create-only link, no copy; the
    /// file is removed either way.
    async fn import_verified_file(
        &self,
        digest: &Digest,
        file: &std::path::Path,
    ) -> Result<(), BlobError>;

    /// Rehash every committed blob and move aside, into the quarantine area,
    /// each whose bytes do not hash to its name. Nothing is deleted: a
    /// quarantined file can be inspected or restored by hand.
    async fn verify_blobs(&self) -> Result<VerifyReport, BlobError>;

    /// Free and total space of the filesystem holding the blobs; `None` when
    /// the backend has no such notion (object storage).
    fn disk_space(&self) -> Result<Option<DiskSpace>, BlobError>;

    /// Whether new content can be written: a small probe object is written
    /// into the staging area and removed again. Fails with the backend's
    /// error (a read-only or full filesystem, a bucket refusing writes).
    async fn check_writable(&self) -> Result<(), BlobError>;

    /// Every committed blob file: digest, size and last modification time,
    /// in no particular order, listed lazily (for the collector's sweep of
    /// files that no row knows).
    fn list_blobs(&self) -> futures::stream::BoxStream<'_, Result<StoredBlob, BlobError>>;

    /// Remove what commits interrupted by a crash left in the staging area.
    /// Call it at start-up, before serving: staging objects are never visible,
    /// and no commit of this node can be in flight then (on a bucket shared
    /// by several nodes, only objects older than any commit are removed).
    /// Returns how many were removed.
    async fn remove_staging(&self) -> Result<usize, BlobError>;
}
