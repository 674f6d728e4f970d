//! What a package format tells the remote cache engine: where its upstream
//! is, how to ask for a mutable document and check what came back, and how
//! immutable content is named and verified. Everything else (the access
//! policy, credentials, freshness, stale answers, single-flight downloads,
//! failure kinds) is the engine's, the same for every format.

use std::future::Future;

use entrepot_domain::repository::RemoteConfig;
use entrepot_domain::upstream::UpstreamSpecError;
use entrepot_domain::ContentDigest;
use entrepot_upstream::http::header::HeaderMap;
use entrepot_upstream::UpstreamRequest;
use url::Url;

use super::failure::UpstreamFailure;
use super::target::Target;

/// A document as the upstream sent it, before the format has checked it.
pub struct FetchedDocument {
    /// The URL it was asked for.
    pub url: Url,
    /// `Content-Type`, if the upstream sent a readable one.
    pub content_type: Option<String>,
    /// The digest the upstream announced for it (see [`RemoteFormat::announced`]).
    pub announced: Option<ContentDigest>,
    /// Its exact bytes.
    pub content: Vec<u8>,
}

/// Where immutable content comes from and what it must hash to.
pub struct ContentSource {
    /// The GET that downloads it.
    pub request: UpstreamRequest,
    /// The digest its bytes must have; the engine hashes them as they arrive.
    pub digest: ContentDigest,
    /// What it is called in messages.
    pub what: String,
}

/// A package format's part of a remote repository.
pub trait RemoteFormat: Send + Sync + 'static {
    /// The upstream, resolved from a repository's remote configuration.
    type Upstream: Send + Sync + 'static;
    /// Names a mutable document: a tag's manifest, a project's index page.
    type Document: Send + Sync;
    /// A fetched document that passed [`RemoteFormat::validate`].
    type Valid: Send + 'static;
    /// Names immutable content: a blob of an image, a file of a project.
    type Content: Send + Sync;

    /// The largest document accepted from the upstream, in bytes.
    const MAX_DOCUMENT_BYTES: usize;

    /// Whether a cached document is revalidated with a HEAD whose announced
    /// digest says whether it changed (else it is fetched again).
    const REVALIDATES_WITH_HEAD: bool = false;

    /// Whether immutable content is kept in the blob store under the digest
    /// it is named by (OCI: a `sha512:` blob is asked for, linked and served
    /// by that name, as a hosted repository keeps it) rather than under its
    /// sha256 (Python: files are keyed by sha256 whatever the index names).
    const STORES_BY_NAMED_DIGEST: bool = false;

    /// Resolve the upstream of a repository's remote configuration (a preset
    /// or a URL).
    fn upstream(&self, config: &RemoteConfig) -> Result<Self::Upstream, UpstreamSpecError>;

    /// The upstream's URL: the access policy judges its origin, and the
    /// repository's credentials go there.
    fn origin<'u>(&self, upstream: &'u Self::Upstream) -> &'u Url;

    /// The upstream's URL as reports show it.
    fn shown_origin(&self, upstream: &Self::Upstream) -> String {
        self.origin(upstream).to_string()
    }

    /// Hosts (`host[:port]`) besides the origin that serve the upstream's
    /// content and may receive its credentials over https.
    fn credential_hosts<'u>(&self, _upstream: &'u Self::Upstream) -> &'u [String] {
        &[]
    }

    /// The request `test-upstream` sends to check reachability and credentials.
    fn probe(&self, target: &Target<Self::Upstream>) -> Result<UpstreamRequest, UpstreamFailure>;

    /// What a document is called in messages.
    fn describe(&self, document: &Self::Document) -> String;

    /// The request for a document; with `head`, for its headers only (to
    /// revalidate a cached copy, see [`RemoteFormat::REVALIDATES_WITH_HEAD`]).
    fn document_request(
        &self,
        target: &Target<Self::Upstream>,
        document: &Self::Document,
        head: bool,
    ) -> Result<UpstreamRequest, UpstreamFailure>;

    /// The digest an answer's headers announce for a document, if the format
    /// has such a header.
    fn announced(&self, _headers: &HeaderMap) -> Option<ContentDigest> {
        None
    }

    /// Check a fetched document; only a valid one is kept. Errors are
    /// [`UpstreamFailure::InvalidResponse`] or [`UpstreamFailure::DigestMismatch`].
    fn validate(
        &self,
        target: &Target<Self::Upstream>,
        document: &Self::Document,
        fetched: FetchedDocument,
    ) -> impl Future<Output = Result<Self::Valid, UpstreamFailure>> + Send;

    /// Where immutable content comes from and the digest that names it.
    fn content(
        &self,
        target: &Target<Self::Upstream>,
        content: &Self::Content,
    ) -> Result<ContentSource, UpstreamFailure>;
}
