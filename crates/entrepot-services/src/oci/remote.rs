//! Remote (pull-through) OCI repositories: how OCI content is named and
//! checked ([`DockerFormat`]), on top of the format-agnostic [`RemoteCache`].
//!
//! A tag's manifest is the mutable document, revalidated by a HEAD whose
//! `Docker-Content-Digest` says whether the tag moved; blobs are immutable,
//! named by their digest.

use std::sync::Arc;

use entrepot_domain::manifest::{ManifestError, MANIFEST_MEDIA_TYPES, MAX_MANIFEST_BYTES};
use entrepot_domain::repository::RemoteConfig;
use entrepot_domain::upstream::{docker_upstream, DockerUpstream, UpstreamSpecError};
use entrepot_domain::{ContentDigest, Digest, ImagePath, Manifest, Reference, Repository};
use entrepot_storage::{BlobStore, CacheStore, ManifestRecord, MetadataStore};
use entrepot_upstream::http::header::{HeaderMap, ACCEPT, LINK};
use entrepot_upstream::{UpstreamRequest, UpstreamTransport};
use futures::FutureExt;
use url::Url;

use super::content::{image_ref, CacheStatus, Page, ServedManifest};
use super::error::RegistryError;
use crate::clock::now_unix;
use crate::eviction::pulls::PullTracker;
use crate::located::LocatedBlob;
use crate::metrics::{ContentKind, Metrics};
use crate::remote::fill::{Cached, Committed, Fills};
use crate::remote::format::{ContentSource, FetchedDocument, RemoteFormat};
use crate::remote::freshness;
use crate::remote::target::{Gate, Target};
use crate::remote::{
    Answer, CachedCopy, RateLimit, RemoteCache, SecretReader, UpstreamFailure, UpstreamReport,
};

mod referrers;
mod refresh;

/// The largest tag list page accepted from an upstream.
const MAX_TAG_LIST_BYTES: usize = 16 * 1024 * 1024;

/// A manifest of an image, by tag or digest.
pub struct ManifestOf {
    /// The image.
    pub path: ImagePath,
    /// The tag or digest.
    pub reference: Reference,
}

/// A blob of an image.
pub struct BlobOf {
    /// The image.
    pub path: ImagePath,
    /// The blob's digest.
    pub digest: Digest,
}

/// The OCI naming and checking rules.
pub struct DockerFormat;

impl DockerFormat {
    /// A GET or HEAD of `{image}/{what}` at the upstream, scoped for pulling.
    fn pull_request(
        target: &Target<DockerUpstream>,
        path: &ImagePath,
        what: &str,
        head: bool,
    ) -> Result<UpstreamRequest, UpstreamFailure> {
        let name = target.upstream.image_name(path.image.as_str());
        let url = api_url(target, &format!("{name}/{what}"))?;
        let request = if head {
            UpstreamRequest::head(url)
        } else {
            UpstreamRequest::get(url)
        };
        Ok(request.scope(format!("repository:{name}:pull")))
    }
}

/// `{base}/v2/{path}` of the target's registry.
fn api_url(target: &Target<DockerUpstream>, path: &str) -> Result<Url, UpstreamFailure> {
    target
        .upstream
        .api_url(path)
        .map_err(|_| UpstreamFailure::Misconfigured {
            repository: target.repository.clone(),
            cause: UpstreamSpecError::Unknown(target.upstream.base_url().to_string()),
        })
}

impl RemoteFormat for DockerFormat {
    type Upstream = DockerUpstream;
    type Document = ManifestOf;
    type Valid = ManifestRecord;
    type Content = BlobOf;

    const MAX_DOCUMENT_BYTES: usize = MAX_MANIFEST_BYTES;
    const REVALIDATES_WITH_HEAD: bool = true;
    const STORES_BY_NAMED_DIGEST: bool = true;

    fn upstream(&self, config: &RemoteConfig) -> Result<DockerUpstream, UpstreamSpecError> {
        docker_upstream(&config.upstream, config.allow_insecure_upstream)
    }

    fn origin<'u>(&self, upstream: &'u DockerUpstream) -> &'u Url {
        upstream.base_url()
    }

    /// Without the trailing slash, as `https://registry-1.docker.io`.
    fn shown_origin(&self, upstream: &DockerUpstream) -> String {
        upstream
            .base_url()
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    fn probe(&self, target: &Target<DockerUpstream>) -> Result<UpstreamRequest, UpstreamFailure> {
        Ok(UpstreamRequest::get(api_url(target, "")?))
    }

    fn describe(&self, m: &ManifestOf) -> String {
        format!("manifest {}:{}", m.path.image, m.reference)
    }

    fn document_request(
        &self,
        target: &Target<DockerUpstream>,
        m: &ManifestOf,
        head: bool,
    ) -> Result<UpstreamRequest, UpstreamFailure> {
        Ok(
            Self::pull_request(target, &m.path, &format!("manifests/{}", m.reference), head)?
                .header(ACCEPT, &MANIFEST_MEDIA_TYPES.join(", ")),
        )
    }

    fn announced(&self, headers: &HeaderMap) -> Option<ContentDigest> {
        headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok())
            .map(ContentDigest::from)
    }

    /// The bytes must hash to the digest asked for (by digest) or announced
    /// (by tag), and be a manifest entrepot serves.
    async fn validate(
        &self,
        target: &Target<DockerUpstream>,
        m: &ManifestOf,
        fetched: FetchedDocument,
    ) -> Result<ManifestRecord, UpstreamFailure> {
        let expected = match &m.reference {
            Reference::Digest(d) => Some(ContentDigest::from(d)),
            Reference::Tag(_) => fetched.announced,
        };
        // Named by the algorithm it was asked (or announced) by: a manifest
        // pulled by `sha512:`, or a tag the upstream announces by one, is
        // kept, found and announced by that digest.
        let digest = Digest::naming(
            expected.as_ref().map(ContentDigest::algorithm),
            &fetched.content,
        );
        if let Some(expected) = expected.filter(|e| *e != ContentDigest::from(&digest)) {
            tracing::error!(%expected, actual = %digest, "upstream manifest failed verification; not cached");
            return Err(UpstreamFailure::DigestMismatch {
                expected,
                actual: digest.into(),
            });
        }
        let manifest =
            Manifest::parse(fetched.content_type.as_deref(), &fetched.content).map_err(|e| {
                UpstreamFailure::InvalidResponse {
                    host: target.host(),
                    detail: format!(
                        "the upstream sent an invalid {}: {}",
                        self.describe(m),
                        upstream_manifest_problem(&e)
                    ),
                }
            })?;
        Ok(ManifestRecord {
            digest,
            media_type: manifest.media_type.clone(),
            artifact_type: manifest.artifact_type.clone(),
            subject: manifest.subject.as_ref().map(|s| s.digest.clone()),
            annotations: manifest
                .annotations
                .as_ref()
                .map(|a| serde_json::Value::Object(a.clone()).to_string()),
            content: fetched.content,
        })
    }

    fn content(
        &self,
        target: &Target<DockerUpstream>,
        blob: &BlobOf,
    ) -> Result<ContentSource, UpstreamFailure> {
        Ok(ContentSource {
            request: Self::pull_request(
                target,
                &blob.path,
                &format!("blobs/{}", blob.digest),
                false,
            )?,
            digest: (&blob.digest).into(),
            what: format!("blob {} of {}", blob.digest, blob.path.image),
        })
    }
}

/// The remote Docker/OCI cache.
pub struct RemoteOci {
    meta: Arc<dyn MetadataStore>,
    cache: Arc<dyn CacheStore>,
    blobs: Arc<dyn BlobStore>,
    remote: RemoteCache<DockerFormat>,
    /// What the minimum release age needs; without it, a repository with
    /// one serves nothing (fails closed).
    pub(super) release_age: Option<super::cooldown::ReleaseAgeRecords>,
    /// Where pulls and fills are told, for eviction.
    pulls: Option<Arc<PullTracker>>,
}

impl RemoteOci {
    /// A remote cache over the given stores, fills and upstream client.
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        cache: Arc<dyn CacheStore>,
        blobs: Arc<dyn BlobStore>,
        fills: Fills,
        client: Arc<dyn UpstreamTransport>,
        metrics: Arc<Metrics>,
        secrets: Arc<dyn SecretReader>,
    ) -> Self {
        Self {
            meta,
            cache,
            blobs,
            remote: RemoteCache::new(DockerFormat, client, fills, metrics, secrets),
            release_age: None,
            pulls: None,
        }
    }

    /// Fill each content key once across the servers sharing `leases`'
    /// database.
    pub fn with_fill_leases(mut self, leases: Arc<crate::remote::FillLeases>) -> Self {
        self.remote.lease_fills(leases);
        self
    }

    /// Forget the upstream credentials read from secrets: the next upstream
    /// request of each repository reads its secret again.
    pub fn forget_credentials(&self) {
        self.remote.forget_credentials();
    }

    /// Tell `pulls` of every manifest served and every blob cached, so that
    /// eviction knows what was pulled last and when a cache grew.
    pub fn with_pull_tracker(mut self, pulls: Arc<PullTracker>) -> Self {
        self.pulls = Some(pulls);
        self
    }

    /// Apply minimum release ages with these first-seen records and clock.
    pub fn with_release_age(mut self, records: super::cooldown::ReleaseAgeRecords) -> Self {
        self.release_age = Some(records);
        self
    }

    fn metrics(&self) -> &Metrics {
        self.remote.metrics()
    }

    /// Rate-limit headers last seen from the repository's upstream.
    pub fn rate_limit(&self, repository: &str) -> Option<RateLimit> {
        self.remote.rate_limit(repository)
    }

    /// A manifest by tag or digest, through the cache, as the repository's
    /// minimum release age allows (see [`super::cooldown`]).
    pub async fn get_manifest(
        &self,
        repo: &Repository,
        path: &ImagePath,
        reference: &Reference,
    ) -> Result<ServedManifest, RegistryError> {
        self.get_manifest_through(repo, path, reference, None).await
    }

    /// A manifest as [`Self::get_manifest`] serves it, read through a
    /// virtual repository whose own release-age policy is `through`: held
    /// back by both policies (the stricter rule wins).
    pub async fn get_manifest_through(
        &self,
        repo: &Repository,
        path: &ImagePath,
        reference: &Reference,
        through: Option<&entrepot_domain::cooldown::ReleaseAgePolicy>,
    ) -> Result<ServedManifest, RegistryError> {
        let Some(policy) = super::cooldown::active_rules(repo, through) else {
            return self.resolve_manifest(repo, path, reference).await;
        };
        match reference {
            Reference::Tag(tag) => {
                let resolved = self.resolve_manifest(repo, path, reference).await?;
                self.hold_back_tag(repo, path, tag, &policy, resolved).await
            }
            Reference::Digest(digest) => {
                self.hold_back_digest(path, digest, &policy).await?;
                self.resolve_manifest(repo, path, reference).await
            }
        }
    }

    /// A manifest by digest, through the cache, without the release-age
    /// rules (for the digest a held-back tag falls back to).
    pub(super) async fn manifest_by_digest(
        &self,
        repo: &Repository,
        path: &ImagePath,
        digest: &Digest,
    ) -> Result<ServedManifest, RegistryError> {
        self.resolve_manifest(repo, path, &Reference::Digest(digest.clone()))
            .await
    }

    /// A manifest by tag or digest, through the cache.
    async fn resolve_manifest(
        &self,
        repo: &Repository,
        path: &ImagePath,
        reference: &Reference,
    ) -> Result<ServedManifest, RegistryError> {
        let target = self.remote.target(repo)?;
        let gate = self.remote.gate(&target).await?;
        let image = image_ref(path);
        let manifest = ManifestOf {
            path: path.clone(),
            reference: reference.clone(),
        };
        let _guard = self
            .remote
            .lock(&target, &format!("{path}:{reference}"))
            .await;
        let served = async {
            let tag = match reference {
                Reference::Tag(tag) => tag,
                Reference::Digest(d) => return self.by_digest(&target, &gate, &manifest, d).await,
            };
            let cached = match self.meta.manifest_by_tag(&image, tag.as_str()).await? {
                Some(m) => Some(CachedCopy {
                    checked_at: self.cache.tag_checked_at(&image, tag).await?.unwrap_or(0),
                    digest: Some(ContentDigest::from(&m.digest)),
                    copy: m,
                }),
                None => None,
            };
            let now = now_unix();
            let checked_at = cached.as_ref().map(|c| c.checked_at);
            let answer = self
                .remote
                .document(&target, &gate, &manifest, cached, now)
                .await?;
            let record = match answer {
                Answer::Cached { copy, stale: false } => return Ok(served(copy, CacheStatus::Hit)),
                Answer::Cached { copy, stale: true } => {
                    let mut m = served(copy, CacheStatus::Stale);
                    m.age_secs = checked_at.map(|at| u64::try_from(now - at).unwrap_or(0));
                    return Ok(m);
                }
                Answer::Confirmed(copy) => (copy, CacheStatus::Revalidated),
                Answer::Fetched { valid, .. } => {
                    self.meta
                        .put_manifest(&image, &valid, Some(tag.as_str()))
                        .await?;
                    (valid, CacheStatus::Miss)
                }
            };
            self.cache.mark_tag_checked(&image, tag, now).await?;
            Ok(served(record.0, record.1))
        };
        let served = served.await.map_err(|e| match e {
            RegistryError::Remote(UpstreamFailure::NotFound { .. }) => {
                RegistryError::ManifestUnknown(format!(
                    "{path}:{reference} (not in the upstream either)"
                ))
            }
            e => e,
        })?;
        if let Some(pulls) = &self.pulls {
            pulls.record(&image, &served.digest);
            if served.cache == Some(CacheStatus::Miss) {
                pulls.filled(&target.repository);
            }
        }
        Ok(served)
    }

    /// A manifest by digest: immutable, fetched once.
    async fn by_digest(
        &self,
        target: &Target<DockerUpstream>,
        gate: &Gate,
        manifest: &ManifestOf,
        digest: &Digest,
    ) -> Result<ServedManifest, RegistryError> {
        let image = image_ref(&manifest.path);
        if let Some(m) = self.meta.manifest_by_digest(&image, digest).await? {
            self.metrics().hit(ContentKind::Manifest);
            return Ok(served(m, CacheStatus::Hit));
        }
        gate.allows_fetch()?;
        self.metrics().miss(ContentKind::Manifest);
        let record = self.remote.fetch_document(target, manifest).await?;
        self.meta.put_manifest(&image, &record, None).await?;
        Ok(served(record, CacheStatus::Miss))
    }

    /// A blob of the image, ready to be read: linked to it already, or in
    /// the fill from the upstream that this starts or joins.
    pub async fn locate_blob(
        &self,
        repo: &Repository,
        path: &ImagePath,
        digest: &Digest,
    ) -> Result<LocatedBlob, RegistryError> {
        self.locate(repo, path, digest).await.map_err(|e| match e {
            RegistryError::Remote(UpstreamFailure::NotFound { .. }) => {
                RegistryError::BlobUnknown(digest.clone())
            }
            e => e,
        })
    }

    async fn locate(
        &self,
        repo: &Repository,
        path: &ImagePath,
        digest: &Digest,
    ) -> Result<LocatedBlob, RegistryError> {
        let image = image_ref(path);
        let target = self.remote.target(repo)?;
        let gate = self.remote.gate(&target).await?;
        let stored = |size| LocatedBlob::stored(self.blobs.clone(), digest.clone(), size);
        if let Some(size) = self.meta.linked_blob_size(&image, digest).await? {
            self.metrics().hit(ContentKind::Blob);
            return Ok(stored(size).with_cache(CacheStatus::Hit));
        }
        gate.allows_fetch()?;
        // Linked to another image of this repository, its upstream has
        // already proven to have it: the upstream only has to confirm that
        // this image may see it. Otherwise join or start a fill from this
        // repository's upstream, even if the bytes are in the store for
        // another repository (dedup of bytes, never of authorization).
        if let Some(size) = self
            .meta
            .blob_size_in_repository(&image.project, &image.repository, digest)
            .await?
        {
            let request =
                DockerFormat::pull_request(&target, path, &format!("blobs/{digest}"), true)?;
            self.remote
                .send_ok(&target, &request, &format!("blob {digest}"))
                .await?;
            self.meta.link_blob(&image, digest, size).await?;
            self.metrics().hit(ContentKind::Blob);
            return Ok(stored(size).with_cache(CacheStatus::Revalidated));
        }
        let linked = async {
            let size = self
                .meta
                .linked_blob_size(&image, digest)
                .await
                .map_err(UpstreamFailure::storage)?;
            Ok(size.map(|size| Committed {
                digest: digest.clone(),
                size,
            }))
        };
        let after_commit = {
            let (meta, image) = (self.meta.clone(), image.clone());
            let (pulls, repository) = (self.pulls.clone(), target.repository.clone());
            move |c: Committed| {
                async move {
                    if let Err(e) = meta.link_blob(&image, &c.digest, c.size).await {
                        tracing::warn!(error = %e, "could not link a cached blob");
                    }
                    if let Some(pulls) = pulls {
                        pulls.filled(&repository);
                    }
                }
                .boxed()
            }
        };
        let blob = BlobOf {
            path: path.clone(),
            digest: digest.clone(),
        };
        match self
            .remote
            .content(&target, &gate, &blob, linked, after_commit)
            .await?
        {
            Cached::Committed(c) => Ok(LocatedBlob::stored(self.blobs.clone(), c.digest, c.size)
                .with_cache(CacheStatus::Miss)),
            Cached::Filling(fill) => {
                fill.opened().await?;
                let size = fill.size().await?;
                Ok(LocatedBlob::filling(fill, size).with_cache(CacheStatus::Miss))
            }
        }
    }

    /// One page of the upstream's tags of an image (at most `size`, after
    /// `last`); of the cached ones when the upstream is blocked (and the
    /// repository serves cached content) or fails. The page says whether
    /// more follow: the upstream's own `Link`, or the extra tag asked for
    /// beyond the page, tells.
    pub async fn list_tags(
        &self,
        repo: &Repository,
        path: &ImagePath,
        size: u32,
        last: Option<&str>,
    ) -> Result<Page, RegistryError> {
        let cached = || async move {
            let rows = self
                .meta
                .list_tags(&image_ref(path), last, size + 1)
                .await?;
            Ok::<_, RegistryError>(Page::from_rows(rows, size))
        };
        let target = self.remote.target(repo)?;
        if self.remote.gate(&target).await? != Gate::Open {
            return cached().await;
        }
        let name = target.upstream.image_name(path.image.as_str());
        let mut url = api_url(&target, &format!("{name}/tags/list"))?;
        url.query_pairs_mut()
            .append_pair("n", &(u64::from(size) + 1).to_string());
        if let Some(last) = last {
            url.query_pairs_mut().append_pair("last", last);
        }
        let request = UpstreamRequest::get(url).scope(format!("repository:{name}:pull"));
        let upstream = async {
            let what = format!("tags of {}", path.image);
            let response = self.remote.send_ok(&target, &request, &what).await?;
            // An upstream that caps pages below our size says so with a Link;
            // its page is then partial even though it holds fewer than `size`.
            let upstream_has_next = response
                .headers()
                .get_all(LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("rel=\"next\""));
            #[derive(serde::Deserialize)]
            struct TagList {
                tags: Option<Vec<String>>,
            }
            let unreadable = |detail: String| UpstreamFailure::InvalidResponse {
                host: target.host(),
                detail: format!("the upstream's tag list is unreadable: {detail}"),
            };
            let body = response
                .bytes(MAX_TAG_LIST_BYTES)
                .await
                .map_err(|e| unreadable(e.to_string()))?;
            let list: TagList =
                serde_json::from_slice(&body).map_err(|e| unreadable(e.to_string()))?;
            // Some upstreams (distribution before 2.8) ignore `n` and `last`
            // and answer every tag: keep the page to what follows `last`, in
            // order, so that following our Link never serves a tag twice.
            let mut tags = list.tags.unwrap_or_default();
            if let Some(last) = last {
                tags.retain(|t| t.as_str() > last);
            }
            tags.sort_unstable();
            tags.dedup();
            let mut page = Page::from_rows(tags, size);
            page.more |= upstream_has_next && !page.items.is_empty();
            Ok::<_, UpstreamFailure>(page)
        };
        match upstream.await {
            Ok(page) => Ok(page),
            // The listing's last confirmation is not kept: no grace after a 404.
            Err(e) if freshness::serve_stale(&e, &target.config, None, 0) => {
                tracing::warn!(image = %path, error = %e, "upstream failed; serving the cached tags");
                self.metrics().stale_serve();
                cached().await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Check reachability and credentials of a repository's upstream.
    pub async fn test_upstream(
        &self,
        repo: &Repository,
    ) -> Result<UpstreamReport, UpstreamFailure> {
        let mut report = self.remote.test_upstream(repo).await?;
        report.rate_limit = self.rate_limit(&repo.name);
        Ok(report)
    }
}

/// What is wrong with an upstream's manifest, without quoting what it sent
/// (its Content-Type header and fields are the upstream's to choose, and a
/// hostile one echoes credentials there).
fn upstream_manifest_problem(e: &ManifestError) -> String {
    match e {
        ManifestError::TooLarge(_) => e.to_string(),
        ManifestError::UnsupportedMediaType(_) => format!(
            "its media type is not one entrepot serves ({})",
            MANIFEST_MEDIA_TYPES.join(", ")
        ),
        ManifestError::MediaTypeMismatch { .. } => {
            "its Content-Type does not match its mediaType".into()
        }
        _ => "it is not a valid manifest document".into(),
    }
}

fn served(m: ManifestRecord, cache: CacheStatus) -> ServedManifest {
    ServedManifest {
        digest: m.digest,
        media_type: m.media_type,
        content: m.content,
        stale: cache == CacheStatus::Stale,
        cache: Some(cache),
        age_secs: None,
        held_back: None,
    }
}

#[cfg(test)]
mod tests {
    //! The races of a cold blob, against a scripted upstream: each step of a
    //! download happens when the test says so.

    use super::*;
    use crate::remote::scripted::{
        content, read_at_least, read_rest, Fixture, Reply, ScriptedUpstream,
    };
    use crate::remote::NoSecretReader;
    use entrepot_domain::{ByteRange, Format};

    struct Setup {
        remote: RemoteOci,
        upstream: Arc<ScriptedUpstream>,
        fixture: Fixture,
        path: ImagePath,
    }

    async fn setup() -> Setup {
        let mut fixture = Fixture::new(Format::Docker, "http://127.0.0.1:5000").await;
        let upstream = Arc::new(ScriptedUpstream::default());
        let remote = RemoteOci::new(
            fixture.stores.metadata.clone(),
            fixture.stores.cache.clone(),
            fixture.blobs.clone(),
            fixture.fills.take().unwrap(),
            upstream.clone(),
            fixture.metrics.clone(),
            Arc::new(NoSecretReader),
        );
        Setup {
            remote,
            upstream,
            fixture,
            path: "default/up/app".parse().unwrap(),
        }
    }

    fn blob_request(digest: &Digest) -> String {
        format!("GET /v2/app/blobs/{digest}")
    }

    impl Setup {
        async fn body(&self, digest: &Digest, range: Option<ByteRange>) -> ByteStream {
            self.remote
                .locate_blob(&self.fixture.repo, &self.path, digest)
                .await
                .unwrap()
                .open(range)
                .await
                .unwrap()
                .body
        }

        async fn linked(&self, digest: &Digest) -> Option<u64> {
            self.fixture
                .stores
                .metadata
                .linked_blob_size(&image_ref(&self.path), digest)
                .await
                .unwrap()
        }
    }

    use entrepot_storage::ByteStream;

    #[tokio::test]
    async fn two_pulls_of_a_cold_blob_make_one_upstream_fetch_and_both_get_it_whole() {
        let s = setup().await;
        let good = content();
        let digest = Digest::of(&good);
        let (reply, feed) = Reply::streamed(Some(3000));
        s.upstream.answer(&blob_request(&digest), reply);

        let (mut a, mut b) = tokio::join!(s.body(&digest, None), s.body(&digest, None));
        assert_eq!(s.upstream.count(&blob_request(&digest)), 1);
        feed.send(&good[..1000]);
        let early = (
            read_at_least(&mut a, 999).await,
            read_at_least(&mut b, 999).await,
        );
        feed.send(&good[1000..]);
        drop(feed);
        assert_eq!([early.0, read_rest(a).await.unwrap()].concat(), good);
        assert_eq!([early.1, read_rest(b).await.unwrap()].concat(), good);

        // Later pulls are served from the cache (or join the fill while it
        // links the blob): the upstream is not asked again.
        let again = read_rest(s.body(&digest, None).await).await.unwrap();
        assert_eq!(again, good);
        assert_eq!(s.upstream.count(&blob_request(&digest)), 1);
    }

    #[tokio::test]
    async fn a_transfer_broken_mid_blob_leaves_nothing_and_the_next_pull_fetches_again() {
        let s = setup().await;
        let good = content();
        let digest = Digest::of(&good);
        let (reply, feed) = Reply::streamed(Some(3000));
        s.upstream.answer(&blob_request(&digest), reply);
        s.upstream
            .answer(&blob_request(&digest), Reply::ok(good.clone()));

        let mut body = s.body(&digest, None).await;
        feed.send(&good[..1000]);
        assert_eq!(read_at_least(&mut body, 999).await, &good[..999]);
        feed.fail();
        assert!(
            read_rest(body).await.is_err(),
            "a broken blob ended as if whole"
        );
        assert_eq!(s.linked(&digest).await, None);
        assert_eq!(s.fixture.blobs.stat(&digest).await.unwrap(), None);
        assert!(s.fixture.spool_is_empty());

        let retried = read_rest(s.body(&digest, None).await).await.unwrap();
        assert_eq!(retried, good);
        assert_eq!(s.upstream.count(&blob_request(&digest)), 2);
    }

    #[tokio::test]
    async fn a_range_of_a_blob_being_filled_gets_exactly_its_bytes() {
        let s = setup().await;
        let good = content();
        let digest = Digest::of(&good);
        let (reply, feed) = Reply::streamed(Some(3000));
        s.upstream.answer(&blob_request(&digest), reply);

        let mut whole = s.body(&digest, None).await;
        feed.send(&good[..1000]);
        read_at_least(&mut whole, 999).await;
        let range = ByteRange {
            start: 700,
            end: 2199,
        };
        let ranged = tokio::spawn(read_rest(s.body(&digest, Some(range)).await));
        feed.send(&good[1000..2000]);
        feed.send(&good[2000..]);
        drop(feed);
        assert_eq!(ranged.await.unwrap().unwrap(), &good[700..2200]);
        assert_eq!(s.upstream.count(&blob_request(&digest)), 1);
    }

    #[tokio::test]
    async fn a_client_that_disconnects_mid_blob_does_not_stop_the_fill_for_the_others() {
        let s = setup().await;
        let good = content();
        let digest = Digest::of(&good);
        let (reply, feed) = Reply::streamed(Some(3000));
        s.upstream.answer(&blob_request(&digest), reply);

        let (mut leaving, staying) = tokio::join!(s.body(&digest, None), s.body(&digest, None));
        feed.send(&good[..1000]);
        read_at_least(&mut leaving, 999).await;
        drop(leaving);
        feed.send(&good[1000..]);
        drop(feed);
        assert_eq!(read_rest(staying).await.unwrap(), good);
        assert_eq!(s.fixture.blobs.stat(&digest).await.unwrap(), Some(3000));
        assert_eq!(s.upstream.count(&blob_request(&digest)), 1);
    }

    #[tokio::test]
    async fn a_blob_that_fails_verification_is_discarded_and_fetched_again() {
        let s = setup().await;
        let good = content();
        let mut bad = good.clone();
        bad[2900] ^= 0xff;
        let digest = Digest::of(&good);
        s.upstream
            .answer(&blob_request(&digest), Reply::ok(bad.clone()));
        s.upstream
            .answer(&blob_request(&digest), Reply::ok(good.clone()));

        // Refused when the pull starts, or mid-body: never served whole.
        let served = match s
            .remote
            .locate_blob(&s.fixture.repo, &s.path, &digest)
            .await
        {
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        RegistryError::Remote(UpstreamFailure::DigestMismatch { .. })
                    ),
                    "{e}"
                );
                None
            }
            Ok(located) => read_rest(located.open(None).await.unwrap().body).await.ok(),
        };
        assert_eq!(served, None, "unverified content was served whole");
        assert_eq!(s.linked(&digest).await, None);
        assert_eq!(s.fixture.blobs.stat(&Digest::of(&bad)).await.unwrap(), None);
        assert_eq!(s.fixture.blobs.stat(&digest).await.unwrap(), None);

        let retried = read_rest(s.body(&digest, None).await).await.unwrap();
        assert_eq!(retried, good);
        assert_eq!(s.upstream.count(&blob_request(&digest)), 2);
    }
}
