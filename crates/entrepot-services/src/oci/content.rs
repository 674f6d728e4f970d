//! What OCI repositories serve and report, the same for hosted and remote
//! ones: manifests, upload states and pages of listings.

use entrepot_domain::{Digest, ImagePath, Tag};
use entrepot_storage::ImageRef;

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
    /// How a remote repository answered (`None` for a hosted one).
    pub cache: Option<CacheStatus>,
    /// Seconds since the upstream last confirmed a stale answer.
    pub age_secs: Option<u64>,
    /// A newer digest of the tag that the minimum release age holds back.
    pub held_back: Option<super::cooldown::HeldBack>,
}

pub use crate::remote::CacheStatus;

/// The result of storing a manifest.
#[derive(Debug, Clone)]
pub struct PushedManifest {
    /// Digest of the stored bytes.
    pub digest: Digest,
    /// The subject, when the manifest has one.
    pub subject: Option<Digest>,
    /// The tags that now point at it.
    pub tags: Vec<Tag>,
}

/// State of an upload session as the protocol reports it.
#[derive(Debug, Clone)]
pub struct UploadState {
    /// Session id.
    pub id: String,
    /// Bytes received so far.
    pub size: u64,
}

/// The headers that place a chunk in its upload, as the client sent them:
/// parsed by the service once the caller is authorized.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkHeaders<'a> {
    /// `Content-Range`, if any.
    pub content_range: Option<&'a str>,
    /// `Content-Length`, if any.
    pub content_length: Option<u64>,
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

/// The store's key of an image.
pub(crate) fn image_ref(path: &ImagePath) -> ImageRef {
    ImageRef {
        project: path.project.to_string(),
        repository: path.repository.to_string(),
        image: path.image.to_string(),
    }
}
