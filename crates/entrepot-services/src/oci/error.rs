//! What can go wrong in OCI repositories: one variant per OCI error code it
//! can lead to. The front-end chooses the status and the body.

use entrepot_domain::{ChunkRangeError, Digest};
use entrepot_storage::{BlobError, StoreError};

use crate::access::AuthError;
use crate::remote::UpstreamFailure;

/// Errors of the registry, one per OCI error code it can lead to.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The repository does not exist (or is not a Docker repository).
    #[error("{0}")]
    NameUnknown(String),
    /// A name in the request is invalid.
    #[error("{0}")]
    NameInvalid(String),
    /// A tag to push to breaks the tag grammar.
    #[error("{0}")]
    TagInvalid(String),
    /// A push names more tags than allowed.
    #[error("the push names {given} tags; at most {limit} may be pushed at once")]
    TooManyTags {
        /// Tags named.
        given: usize,
        /// The limit.
        limit: usize,
    },
    /// No such manifest.
    #[error("manifest {0} is not in this repository")]
    ManifestUnknown(String),
    /// The manifest was refused.
    #[error("{0}")]
    ManifestInvalid(String),
    /// The manifest's body is larger than the limit (in bytes), or could not
    /// be read to its end; nothing was stored.
    #[error("manifest is larger than the limit of {mib} MiB ({0} bytes)", mib = .0 / (1024 * 1024))]
    ManifestTooLarge(usize),
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
    /// A chunk's `Content-Range` is malformed or disagrees with its
    /// `Content-Length`; nothing was read.
    #[error(transparent)]
    ChunkRangeInvalid(#[from] ChunkRangeError),
    /// A listing's page size (`n`) is not a non-negative integer.
    #[error("n must be a non-negative integer, not {0:?}")]
    PageSizeInvalid(String),
    /// The digest is malformed or does not match the content.
    #[error("{0}")]
    DigestInvalid(String),
    /// The operation is not supported on this repository.
    #[error("{0}")]
    Unsupported(String),
    /// The operation is refused by the repository's nature (e.g. push to a cache).
    #[error("{0}")]
    Denied(String),
    /// The caller may not perform the operation: anonymous callers get
    /// [`AuthError::Unauthenticated`], authenticated ones [`AuthError::Denied`].
    #[error(transparent)]
    Access(#[from] AuthError),
    /// A remote repository could not get the content from its upstream.
    #[error(transparent)]
    Remote(#[from] UpstreamFailure),
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

impl RegistryError {
    /// A located blob that could not be read: gone meanwhile (unknown, so
    /// the client pushes or pulls it again), or a storage failure.
    pub fn unreadable_blob(e: BlobError, digest: &Digest) -> Self {
        match e {
            BlobError::NotFound => RegistryError::BlobUnknown(digest.clone()),
            e => e.into(),
        }
    }
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

/// The blob store's filesystem is nearly full.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{available} bytes free on the filesystem of the blob store, below the minimum of {minimum} (min_free_disk_bytes)")]
pub struct LowDisk {
    /// Bytes available.
    pub available: u64,
    /// The configured minimum.
    pub minimum: u64,
}
