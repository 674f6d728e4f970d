//! A blob found for a request, ready to be read: its size is known before
//! any byte is, so HEAD, ranges and `Content-Length` are answered from one
//! lookup, and a GET reads what that lookup found (the repository, its
//! upstream, the access policy and the link are resolved once).

use std::sync::Arc;

use entrepot_domain::{ByteRange, Digest};
use entrepot_storage::{BlobError, BlobStore, ByteStream, LocalBlobFile};

use crate::remote::fill::{Fill, SpoolSpans};

/// A blob ready to stream.
pub struct ServedBlob {
    /// Full size of the blob.
    pub size: u64,
    /// The range served, if one was asked for.
    pub range: Option<ByteRange>,
    /// The bytes (of the range, if any).
    pub body: ByteStream,
}

/// An OCI blob or a Python file of a repository, stored or being fetched
/// from the upstream.
pub struct LocatedBlob {
    size: u64,
    source: Source,
    cache: Option<crate::remote::CacheStatus>,
}

enum Source {
    /// In the blob store.
    Stored {
        blobs: Arc<dyn BlobStore>,
        digest: Digest,
    },
    /// Being downloaded; readers get bytes as they arrive.
    Filling(Arc<Fill>),
}

impl LocatedBlob {
    /// A blob in the blob store.
    pub fn stored(blobs: Arc<dyn BlobStore>, digest: Digest, size: u64) -> Self {
        Self {
            size,
            source: Source::Stored { blobs, digest },
            cache: None,
        }
    }

    /// A blob being downloaded, whose size the upstream has told.
    pub fn filling(fill: Arc<Fill>, size: u64) -> Self {
        Self {
            size,
            source: Source::Filling(fill),
            cache: None,
        }
    }

    /// Say how a remote repository's cache answered.
    pub fn with_cache(mut self, cache: crate::remote::CacheStatus) -> Self {
        self.cache = Some(cache);
        self
    }

    /// How a remote repository's cache answered (`None` for a hosted one).
    pub fn cache(&self) -> Option<crate::remote::CacheStatus> {
        self.cache
    }

    /// The whole blob's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The stored blob's local file, when it is a committed blob of a
    /// backend that keeps local files and the file still has the recorded
    /// size; `None` otherwise (a blob being downloaded, object storage), and
    /// the caller reads it with [`Self::open`].
    pub async fn open_local(&self) -> Result<Option<LocalBlobFile>, BlobError> {
        let Source::Stored { blobs, digest } = &self.source else {
            return Ok(None);
        };
        Ok(blobs
            .open_local(digest)
            .await?
            .filter(|local| local.len == self.size))
    }

    /// The spool file of a blob being downloaded, with the spans of it (of
    /// `range`) released to this reader as they arrive; `None` for a stored
    /// blob. See [`Fill::spool`].
    pub fn spool(&self, range: Option<ByteRange>) -> Option<SpoolSpans> {
        match &self.source {
            Source::Filling(fill) => Some(fill.spool(range)),
            Source::Stored { .. } => None,
        }
    }

    /// The blob's bytes, or those of `range` (resolved against
    /// [`Self::size`]). Fails if a stored blob went missing meanwhile.
    pub async fn open(self, range: Option<ByteRange>) -> Result<ServedBlob, BlobError> {
        let body = match self.source {
            Source::Stored { blobs, digest } => blobs.read(&digest, range).await?,
            Source::Filling(fill) => fill.stream(range),
        };
        Ok(ServedBlob {
            size: self.size,
            range,
            body,
        })
    }
}
