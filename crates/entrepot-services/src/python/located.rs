//! A file found in a Python repository, ready to be read: its size is known
//! before any byte is, so HEAD, ranges and `Content-Length` are answered from
//! one lookup.

use std::sync::Arc;

use entrepot_domain::{ByteRange, Digest};
use entrepot_storage::BlobStore;

use super::{PythonError, ServedFile};
use crate::remote::fill::Fill;

/// A file of a repository, cached or being fetched from the upstream.
pub struct LocatedFile {
    size: u64,
    source: Source,
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

impl LocatedFile {
    /// A file in the blob store.
    pub(super) fn stored(blobs: Arc<dyn BlobStore>, digest: Digest, size: u64) -> Self {
        Self {
            size,
            source: Source::Stored { blobs, digest },
        }
    }

    /// A file being downloaded, whose size the upstream has told.
    pub(super) fn filling(fill: Arc<Fill>, size: u64) -> Self {
        Self {
            size,
            source: Source::Filling(fill),
        }
    }

    /// The whole file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file's bytes, or those of `range`.
    pub async fn open(self, range: Option<ByteRange>) -> Result<ServedFile, PythonError> {
        let body = match self.source {
            Source::Stored { blobs, digest } => blobs.read(&digest, range).await?,
            Source::Filling(fill) => fill.stream(range),
        };
        Ok(ServedFile {
            size: self.size,
            range,
            body,
        })
    }
}
