//! Referrers through the cache: the referrers index of a subject, as the
//! upstream's referrers API answers it, or, from an upstream without that
//! API (it answers 404, as distribution 2.8 does), as the referrers tag
//! schema keeps it (an index tagged `sha256-<hex>`).
//!
//! The index is a mutable document: kept as received with when the upstream
//! last answered it, answered within the tag freshness window, fetched again
//! after it, and served stale when the upstream fails, by the same rules as
//! a tag ([`freshness`]). The `artifactType` filter is applied here, on the
//! kept index, so one cached copy answers every filter.

use entrepot_domain::manifest::{MANIFEST_MEDIA_TYPES, MAX_MANIFEST_BYTES, OCI_INDEX};
use entrepot_domain::{ContentDigest, Digest, ImagePath, Repository};
use entrepot_upstream::http::header::ACCEPT;
use entrepot_upstream::http::StatusCode;
use entrepot_upstream::{ReadError, UpstreamResponse};

use super::{DockerFormat, RemoteOci};
use crate::clock::now_unix;
use crate::metrics::ContentKind;
use crate::oci::content::{image_ref, CacheStatus};
use crate::oci::error::RegistryError;
use crate::oci::referrers::{self, ServedReferrers};
use crate::remote::format::RemoteFormat;
use crate::remote::freshness::{self, Plan};
use crate::remote::target::Target;
use crate::remote::UpstreamFailure;
use entrepot_domain::upstream::DockerUpstream;

impl RemoteOci {
    /// The referrers index of `subject` in the image, through the cache,
    /// keeping the descriptors of `artifact_type` when given.
    pub async fn referrers(
        &self,
        repo: &Repository,
        path: &ImagePath,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<ServedReferrers, RegistryError> {
        let target = self.remote.target(repo)?;
        let gate = self.remote.gate(&target).await?;
        let image = image_ref(path);
        let _guard = self
            .remote
            .lock(&target, &format!("{path}@referrers/{subject}"))
            .await;
        let cached = self.cache.referrers_index(&image, subject).await?;
        let now = now_unix();
        let checked_at = cached.as_ref().map(|c| c.checked_at);
        let age = |at: i64| Some(u64::try_from(now - at).unwrap_or(0));
        let serve = |content: &[u8], cache: CacheStatus, age_secs: Option<u64>| {
            let found = referrers::descriptors(content).map_err(|e| {
                RegistryError::Remote(invalid(
                    &target,
                    &format!("the kept referrers index of {subject}: {e}"),
                ))
            })?;
            Ok::<_, RegistryError>(ServedReferrers {
                content: referrers::render(found, artifact_type),
                cache: Some(cache),
                age_secs,
            })
        };
        if let (Plan::Cached { stale }, Some(c)) = (
            freshness::plan(checked_at, now, &target.config, &gate),
            &cached,
        ) {
            if stale {
                self.metrics().stale_serve();
                return serve(&c.content, CacheStatus::Stale, age(c.checked_at));
            }
            self.metrics().hit(ContentKind::Tag);
            return serve(&c.content, CacheStatus::Hit, None);
        }
        gate.allows_fetch()?;
        self.metrics().miss(ContentKind::Tag);
        let fetched = match self.fetch_referrers(&target, path, subject).await {
            Ok(content) => Ok(content),
            // Neither the API nor the tag: no referrers, unless the tag was
            // there before and is kept for the grace period of a deleted tag.
            Err(failure @ UpstreamFailure::NotFound { .. }) => match &cached {
                Some(_) if freshness::serve_stale(&failure, &target.config, checked_at, now) => {
                    Err(failure)
                }
                _ => Ok(referrers::render(Vec::new(), None)),
            },
            Err(failure) => Err(failure),
        };
        match (fetched, cached) {
            (Ok(content), cached) => {
                // Kept when it lists something, replaces a kept index, or is
                // about a manifest the cache holds: callers asking about
                // random digests do not pile up rows of empty indexes.
                let lists_some = referrers::descriptors(&content).is_ok_and(|d| !d.is_empty());
                let keep = lists_some
                    || cached.is_some()
                    || self
                        .meta
                        .manifest_by_digest(&image, subject)
                        .await?
                        .is_some();
                if keep {
                    self.cache
                        .put_referrers_index(&image, subject, &content, now)
                        .await?;
                }
                let status = match cached {
                    Some(c) if c.content == content => CacheStatus::Revalidated,
                    _ => CacheStatus::Miss,
                };
                serve(&content, status, None)
            }
            (Err(failure), Some(c))
                if freshness::serve_stale(&failure, &target.config, checked_at, now) =>
            {
                tracing::warn!(image = %path, %subject, error = %failure, "upstream failed; serving the cached referrers");
                self.metrics().stale_serve();
                serve(&c.content, CacheStatus::Stale, age(c.checked_at))
            }
            (Err(failure), _) => Err(failure.into()),
        }
    }

    /// The upstream's referrers index of `subject`: its referrers API, or the
    /// index the referrers tag schema tags when the API answers 404.
    async fn fetch_referrers(
        &self,
        target: &Target<DockerUpstream>,
        path: &ImagePath,
        subject: &Digest,
    ) -> Result<Vec<u8>, UpstreamFailure> {
        let what = format!("the referrers of {subject} in {}", path.image);
        let request =
            DockerFormat::pull_request(target, path, &format!("referrers/{subject}"), false)?
                .header(ACCEPT, OCI_INDEX);
        let response = self.remote.send(target, &request).await?;
        match response.status() {
            StatusCode::OK => self.read_index(target, response, &what, None).await,
            StatusCode::NOT_FOUND => {
                let tag = referrers::fallback_tag(subject);
                let what = format!("the referrers tag {tag} of {}", path.image);
                let request =
                    DockerFormat::pull_request(target, path, &format!("manifests/{tag}"), false)?
                        .header(ACCEPT, &MANIFEST_MEDIA_TYPES.join(", "));
                let response = self.remote.send_ok(target, &request, &what).await?;
                let announced = DockerFormat.announced(response.headers());
                self.read_index(target, response, &what, announced).await
            }
            _ => Err(UpstreamFailure::from_status(&response, &what)),
        }
    }

    /// The body of an index answer, bounded, checked to be an index (and to
    /// hash to the digest the upstream announced for it, if any).
    async fn read_index(
        &self,
        target: &Target<DockerUpstream>,
        response: UpstreamResponse,
        what: &str,
        announced: Option<ContentDigest>,
    ) -> Result<Vec<u8>, UpstreamFailure> {
        let content = match response.bytes(MAX_MANIFEST_BYTES).await {
            Ok(content) => content,
            Err(ReadError::TooLarge { limit }) => {
                return Err(invalid(
                    target,
                    &format!("{what} is larger than {} MiB", limit / (1024 * 1024)),
                ))
            }
            Err(ReadError::Body(e)) => {
                return Err(invalid(target, &format!("reading {what} failed: {e}")))
            }
        };
        self.metrics().upstream_bytes(content.len() as u64);
        if let Some(expected) = announced {
            let actual = ContentDigest::from(Digest::of_algorithm(expected.algorithm(), &content));
            if actual != expected {
                return Err(UpstreamFailure::DigestMismatch { expected, actual });
            }
        }
        referrers::descriptors(&content)
            .map_err(|e| invalid(target, &format!("the upstream sent an invalid {what}: {e}")))?;
        Ok(content)
    }
}

/// An answer of the upstream that is not what the protocol says.
fn invalid(target: &Target<DockerUpstream>, detail: &str) -> UpstreamFailure {
    UpstreamFailure::InvalidResponse {
        host: target.host(),
        detail: detail.to_owned(),
    }
}
