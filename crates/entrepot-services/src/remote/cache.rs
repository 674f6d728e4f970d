//! The remote cache engine: one per format, the same steps for every format.
//!
//! A request resolves the repository's [`Target`], passes the access-policy
//! [`Gate`], and then either asks for a mutable document (answered from the
//! cache within its freshness window, revalidated or fetched otherwise,
//! served stale when the upstream fails) or for immutable content (a
//! single-flight [fill](super::fill), verified by the digest the format names
//! it by). The format only says where its upstream is and how content is
//! named and checked (see [`RemoteFormat`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use entrepot_domain::repository::RemoteConfig;
use entrepot_domain::upstream::UpstreamSpecError;
use entrepot_domain::{ContentDigest, Repository};
use entrepot_upstream::http::header::HeaderMap;
use entrepot_upstream::http::StatusCode;
use entrepot_upstream::{
    CredentialSource, ReadError, UpstreamRequest, UpstreamResponse, UpstreamTransport,
};
use futures::{FutureExt, StreamExt, TryStreamExt};
use tokio::sync::OwnedMutexGuard;

use super::credentials::{CredentialSources, SecretReader};
use super::failure::{host_of, UpstreamFailure};
use super::fill::{AfterCommit, Cached, Committed, Fills, StoreBy, UpstreamBody};
use super::format::{FetchedDocument, RemoteFormat};
use super::freshness::{self, Plan};
use super::lease::{AfterFill, FillLeases, OpenFill};
use super::locks::KeyLocks;
use super::target::{Gate, Target};
use crate::clock::now_rfc3339;
use crate::keyed_cache::KeyedCache;
use crate::metrics::{ContentKind, Metrics};

/// Rate-limit headers (`RateLimit-Limit`, `RateLimit-Remaining`, as Docker
/// Hub sends them) last seen from a repository's upstream.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// `ratelimit-limit`.
    pub limit: Option<String>,
    /// `ratelimit-remaining`.
    pub remaining: Option<String>,
    /// When they were seen (RFC 3339).
    pub observed_at: String,
}

/// The result of `repositories test-upstream`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamReport {
    /// The upstream's URL.
    pub upstream: String,
    /// Whether the upstream answered at all.
    pub reachable: bool,
    /// Whether the credentials (or anonymous access) were accepted.
    pub authenticated: bool,
    /// HTTP status the upstream answered the check with.
    pub status: Option<u16>,
    /// What happened, for the user.
    pub message: String,
    /// Rate-limit headers, when the upstream sent them.
    pub rate_limit: Option<RateLimit>,
    /// The secret version whose payload the check presented, resolved
    /// (`.../versions/3`, not `latest`), when credentials are configured and
    /// could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_version: Option<String>,
}

/// A cached copy of a mutable document, as the format keeps it.
pub struct CachedCopy<C> {
    /// The copy.
    pub copy: C,
    /// When the upstream last confirmed it (unix seconds).
    pub checked_at: i64,
    /// Its digest, for formats that revalidate by an announced digest.
    pub digest: Option<ContentDigest>,
}

/// How a mutable document is answered.
pub enum Answer<C, V> {
    /// The cached copy: within its freshness window, or stale (the upstream
    /// is blocked or failed).
    Cached {
        /// The copy.
        copy: C,
        /// Older than the freshness window.
        stale: bool,
    },
    /// The cached copy, which the upstream just confirmed current.
    Confirmed(C),
    /// Fetched and validated just now.
    Fetched {
        /// The new document.
        valid: V,
        /// The copy it replaces, if there was one.
        previous: Option<C>,
    },
}

/// A failed refresh, and the cached copy to answer stale, if any.
type Failed<C> = (UpstreamFailure, Option<CachedCopy<C>>);

/// The remote cache of one format.
pub struct RemoteCache<F: RemoteFormat> {
    format: F,
    client: Arc<dyn UpstreamTransport>,
    metrics: Arc<Metrics>,
    credentials: CredentialSources,
    locks: KeyLocks,
    fills: Fills,
    rate_limits: Mutex<HashMap<String, RateLimit>>,
    upstreams: KeyedCache<UpstreamKey, Arc<F::Upstream>>,
    /// Documents the upstream answered 404 for, with when that answer expires
    /// (unix seconds) and the failure to repeat meanwhile.
    missing: KeyedCache<String, (i64, UpstreamFailure)>,
    /// Fills take turns with other servers through these, when several
    /// share the database.
    fill_leases: Option<Arc<FillLeases>>,
}

/// How many upstream 404s [`RemoteCache`] remembers; past it the least used
/// are forgotten (and asked again).
const MAX_REMEMBERED_MISSING: usize = 10_000;

/// An upstream specification and whether it may use plain http.
type UpstreamKey = (String, bool);

/// How many resolved upstream specifications [`RemoteCache`] keeps; past it
/// the least used are forgotten (a spec is cheap to resolve again, and
/// repositories whose upstream changed leave unused entries behind).
const MAX_RESOLVED_UPSTREAMS: usize = 1024;

impl<F: RemoteFormat> RemoteCache<F> {
    /// The cache of `format`, downloading through `client` into `fills`, with
    /// credentials read through `secrets`.
    pub fn new(
        format: F,
        client: Arc<dyn UpstreamTransport>,
        fills: Fills,
        metrics: Arc<Metrics>,
        secrets: Arc<dyn SecretReader>,
    ) -> Self {
        Self {
            format,
            client,
            metrics,
            credentials: CredentialSources::new(secrets),
            locks: KeyLocks::default(),
            fills,
            rate_limits: Mutex::new(HashMap::new()),
            upstreams: KeyedCache::with_capacity(MAX_RESOLVED_UPSTREAMS),
            missing: KeyedCache::with_capacity(MAX_REMEMBERED_MISSING),
            fill_leases: None,
        }
    }

    /// Fill each content key once across the servers sharing `leases`'
    /// database (see [`super::lease`]).
    pub fn lease_fills(&mut self, leases: Arc<FillLeases>) {
        self.fill_leases = Some(leases);
    }

    /// Forget the upstream credentials read from secrets, so that the next
    /// request of each repository reads its secret again (see
    /// [`CredentialSources::forget_all`]).
    pub fn forget_credentials(&self) {
        self.credentials.forget_all();
    }

    /// The format.
    pub fn format(&self) -> &F {
        &self.format
    }

    /// The format, to change its settings before the cache is shared.
    pub fn format_mut(&mut self) -> &mut F {
        &mut self.format
    }

    /// The metrics the cache counts into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The upstream of a repository's remote configuration, resolved once per
    /// specification (preset or URL, and whether plain http is allowed).
    fn upstream(&self, config: &RemoteConfig) -> Result<Arc<F::Upstream>, UpstreamSpecError> {
        let key = (config.upstream.clone(), config.allow_insecure_upstream);
        if let Some(upstream) = self.upstreams.get_if(&key, |_| true) {
            return Ok(upstream);
        }
        let upstream = Arc::new(self.format.upstream(config)?);
        self.upstreams.insert(key, upstream.clone());
        Ok(upstream)
    }

    /// The upstream of a remote repository.
    pub fn target(&self, repo: &Repository) -> Result<Target<F::Upstream>, UpstreamFailure> {
        let misconfigured = |cause| UpstreamFailure::Misconfigured {
            repository: repo.name.clone(),
            cause,
        };
        let config = repo.remote_repository_config.clone().ok_or_else(|| {
            UpstreamFailure::NotConfigured {
                repository: repo.name.clone(),
            }
        })?;
        let upstream = self.upstream(&config).map_err(misconfigured)?;
        let origin = self.format.origin(&upstream).clone();
        let credential_hosts = self.format.credential_hosts(&upstream).to_vec();
        let credentials = self.credentials.for_repository(
            &repo.name,
            &config.username,
            &config.password_secret_version,
        );
        Ok(Target::new(
            repo.name.clone(),
            upstream,
            config,
            origin,
            credentials,
            credential_hosts,
        ))
    }

    /// The access policy's verdict on the target's upstream, asked on every
    /// request: content cached from a host the policy now blocks is not
    /// served either, unless the repository allows it.
    pub async fn gate(&self, target: &Target<F::Upstream>) -> Result<Gate, UpstreamFailure> {
        let checked = crate::host_needs::needed_by(
            &target.repository,
            self.client.check_origin(&target.origin),
        )
        .await;
        let gate = Gate::of(checked, &target.config)?;
        if let Gate::CachedOnly(denied) = &gate {
            tracing::info!(repository = %target.repository, host = %denied.host, "upstream blocked by the registry access policy; serving cached content only, as the repository allows");
        }
        Ok(gate)
    }

    /// Hold the document `document` of the target's repository (one decision
    /// about a mutable document at a time) until the guard is dropped. The
    /// key is scoped by the repository here, so two repositories never wait
    /// on each other, whatever a format names its documents.
    pub async fn lock<U>(&self, target: &Target<U>, document: &str) -> OwnedMutexGuard<()> {
        self.locks
            .lock(format!("{}\n{document}", target.repository))
            .await
    }

    /// Send a request to the target's upstream (or a host its documents
    /// link), with the credentials that may go there.
    pub async fn send(
        &self,
        target: &Target<F::Upstream>,
        request: &UpstreamRequest,
    ) -> Result<UpstreamResponse, UpstreamFailure> {
        let credentials = target.credentials_for(&request.url);
        let request = &request.clone().budget(target.budget());
        let response = crate::host_needs::needed_by(
            &target.repository,
            send(
                self.client.as_ref(),
                &self.metrics,
                request,
                credentials.as_ref(),
                target.secret_version(),
            ),
        )
        .await?;
        self.record_rate_limit(&target.repository, response.headers());
        Ok(response)
    }

    fn record_rate_limit(&self, repository: &str, headers: &HeaderMap) {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (limit, remaining) = (get("ratelimit-limit"), get("ratelimit-remaining"));
        if limit.is_some() || remaining.is_some() {
            self.rate_limits
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(
                    repository.to_owned(),
                    RateLimit {
                        limit,
                        remaining,
                        observed_at: now_rfc3339(),
                    },
                );
        }
    }

    /// Rate-limit headers last seen from the repository's upstream.
    pub fn rate_limit(&self, repository: &str) -> Option<RateLimit> {
        self.rate_limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(repository)
            .cloned()
    }

    /// Send a request; anything but `200 OK` is the failure it stands for.
    pub async fn send_ok(
        &self,
        target: &Target<F::Upstream>,
        request: &UpstreamRequest,
        what: &str,
    ) -> Result<UpstreamResponse, UpstreamFailure> {
        let response = self.send(target, request).await?;
        if response.status() != StatusCode::OK {
            return Err(UpstreamFailure::from_status(&response, what));
        }
        Ok(response)
    }

    /// A mutable document through the cache, given its cached copy (read by
    /// the caller under [`Self::lock`]). A document the upstream has, valid,
    /// comes back as [`Answer::Fetched`] for the caller to store.
    pub async fn document<C>(
        &self,
        target: &Target<F::Upstream>,
        gate: &Gate,
        document: &F::Document,
        cached: Option<CachedCopy<C>>,
        now: i64,
    ) -> Result<Answer<C, F::Valid>, UpstreamFailure> {
        let checked_at = cached.as_ref().map(|c| c.checked_at);
        let cached = match (
            freshness::plan(checked_at, now, &target.config, gate),
            cached,
        ) {
            (Plan::Cached { stale }, Some(c)) => {
                if stale {
                    self.metrics.stale_serve();
                } else {
                    self.metrics.hit(ContentKind::Tag);
                }
                return Ok(Answer::Cached {
                    copy: c.copy,
                    stale,
                });
            }
            (_, cached) => cached,
        };
        // Only a blocked upstream without a copy gets here blocked.
        gate.allows_fetch()?;
        // A name the upstream just said it does not have: the same answer,
        // without asking again (one request for a storm of pulls).
        let missing_key = format!("{}\n{}", target.repository, self.format.describe(document));
        if cached.is_none() {
            if let Some((_, failure)) = self.missing.get_if(&missing_key, |(until, _)| now < *until)
            {
                return Err(failure);
            }
        }
        match self.refresh(target, document, cached).await {
            Ok(answer) => Ok(answer),
            Err((failure @ UpstreamFailure::NotFound { .. }, None)) => {
                let secs = target.config.negative_cache_secs();
                if secs > 0 {
                    let until = now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX));
                    self.missing.insert(missing_key, (until, failure.clone()));
                }
                Err(failure)
            }
            Err((failure, Some(c)))
                if freshness::serve_stale(&failure, &target.config, Some(c.checked_at), now) =>
            {
                tracing::warn!(repository = %target.repository, document = %self.format.describe(document), error = %failure, "upstream failed; serving the cached copy");
                self.metrics.stale_serve();
                Ok(Answer::Cached {
                    copy: c.copy,
                    stale: true,
                })
            }
            Err((failure, _)) => Err(failure),
        }
    }

    /// Ask the upstream about a document now, whatever its freshness window
    /// (`repositories refresh`): the cached copy is revalidated (by HEAD,
    /// for formats that can) or the document fetched. A failure is the
    /// caller's to report: nothing is served stale.
    pub async fn revalidate<C>(
        &self,
        target: &Target<F::Upstream>,
        gate: &Gate,
        document: &F::Document,
        cached: Option<CachedCopy<C>>,
    ) -> Result<Answer<C, F::Valid>, UpstreamFailure> {
        gate.allows_fetch()?;
        self.refresh(target, document, cached)
            .await
            .map_err(|(failure, _)| failure)
    }

    /// Revalidate or fetch a document; on failure, the cached copy comes back
    /// with the failure.
    async fn refresh<C>(
        &self,
        target: &Target<F::Upstream>,
        document: &F::Document,
        cached: Option<CachedCopy<C>>,
    ) -> Result<Answer<C, F::Valid>, Failed<C>> {
        let cached = match cached {
            Some(c) if F::REVALIDATES_WITH_HEAD && c.digest.is_some() => {
                // HEAD does not count against Docker Hub's pull limit.
                let current = async {
                    let request = self.format.document_request(target, document, true)?;
                    let what = self.format.describe(document);
                    let response = self.send_ok(target, &request, &what).await?;
                    Ok(self.format.announced(response.headers()))
                };
                match current.await {
                    Ok(current) if current.is_some() && current == c.digest => {
                        self.metrics.hit(ContentKind::Tag);
                        return Ok(Answer::Confirmed(c.copy));
                    }
                    Ok(_) => Some(c),
                    Err(failure) => return Err((failure, Some(c))),
                }
            }
            other => other,
        };
        self.metrics.miss(ContentKind::Tag);
        match self.fetch_document(target, document).await {
            Ok(valid) => Ok(Answer::Fetched {
                valid,
                previous: cached.map(|c| c.copy),
            }),
            Err(failure) => Err((failure, cached)),
        }
    }

    /// GET a document from the upstream, bounded in size, and validate it.
    pub async fn fetch_document(
        &self,
        target: &Target<F::Upstream>,
        document: &F::Document,
    ) -> Result<F::Valid, UpstreamFailure> {
        let what = self.format.describe(document);
        let request = self.format.document_request(target, document, false)?;
        let host = host_of(&request.url);
        let too_large = || UpstreamFailure::InvalidResponse {
            host: host.clone(),
            detail: format!(
                "{what} from the upstream {host} is larger than {} MiB",
                F::MAX_DOCUMENT_BYTES / (1024 * 1024)
            ),
        };
        let response = self.send_ok(target, &request, &what).await?;
        let content_type = response
            .headers()
            .get(entrepot_upstream::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let announced = self.format.announced(response.headers());
        let content = match response.bytes(F::MAX_DOCUMENT_BYTES).await {
            Ok(content) => content,
            Err(ReadError::TooLarge { .. }) => return Err(too_large()),
            Err(ReadError::Body(e)) => {
                return Err(UpstreamFailure::InvalidResponse {
                    host: host.clone(),
                    detail: format!("reading {what} from the upstream {host} failed: {e}"),
                })
            }
        };
        self.metrics.upstream_bytes(content.len() as u64);
        let fetched = FetchedDocument {
            url: request.url.clone(),
            content_type,
            announced,
            content,
        };
        self.format.validate(target, document, fetched).await
    }

    /// Immutable content the caller found not linked to the repository:
    /// join or start its fill from the target's upstream. `linked` is asked
    /// again under the fills' lock (see [`Fills::get_or_start`]);
    /// `after_commit` links what the fill committed.
    pub async fn content(
        &self,
        target: &Target<F::Upstream>,
        gate: &Gate,
        content: &F::Content,
        linked: impl std::future::Future<Output = Result<Option<Committed>, UpstreamFailure>>,
        after_commit: impl FnOnce(Committed) -> AfterCommit + Send + 'static,
    ) -> Result<Cached, UpstreamFailure> {
        gate.allows_fetch()?;
        let source = self.format.content(target, content)?;
        let (client, metrics) = (self.client.clone(), self.metrics.clone());
        let credentials = target.credentials_for(&source.request.url);
        let secret_version = target.secret_version().map(str::to_owned);
        let (request, what) = (source.request.budget(target.budget()), source.what);
        let repository = target.repository.clone();
        let open = move || {
            async move {
                let response = crate::host_needs::needed_by(
                    &repository,
                    send(
                        client.as_ref(),
                        &metrics,
                        &request,
                        credentials.as_ref(),
                        secret_version.as_deref(),
                    ),
                )
                .await?;
                if response.status() != StatusCode::OK {
                    return Err(UpstreamFailure::from_status(&response, &what));
                }
                Ok(UpstreamBody {
                    host: host_of(&request.url),
                    length: response.content_length(),
                    body: response.into_body().map_err(std::io::Error::other).boxed(),
                })
            }
            .boxed()
        };
        let (open, after_commit): (OpenFill, AfterFill) = match &self.fill_leases {
            Some(leases) => leases.leased(&target.repository, &source.digest, open, after_commit),
            None => (Box::new(open), Box::new(after_commit)),
        };
        let store_by = if F::STORES_BY_NAMED_DIGEST {
            StoreBy::NamedDigest
        } else {
            StoreBy::Sha256
        };
        self.fills
            .get_or_start_as(
                &target.repository,
                &source.digest,
                store_by,
                linked,
                open,
                after_commit,
            )
            .await
    }

    /// Check reachability and credentials of a repository's upstream. A
    /// blocked upstream is not contacted at all, and the report says so.
    pub async fn test_upstream(
        &self,
        repo: &Repository,
    ) -> Result<UpstreamReport, UpstreamFailure> {
        let target = self.target(repo)?;
        let mut report = UpstreamReport {
            upstream: self.format.shown_origin(&target.upstream),
            reachable: false,
            authenticated: false,
            status: None,
            message: String::new(),
            rate_limit: None,
            secret_version: None,
        };
        if let Err(denied) = self.client.check_origin(&target.origin).await {
            report.message = denied.message;
            return Ok(report);
        }
        // Read the secret's current version and ask for a new token: a check
        // right after a rotation must test the new credentials, not a cache.
        let request = self.format.probe(&target)?.fresh_credentials();
        let credentials = target.credentials_for(&request.url);
        match credentials.credentials(true).await {
            Ok(Some(c)) => report.secret_version = Some(c.version.clone()),
            Ok(None) => {}
            Err(e) => {
                report.message =
                    UpstreamFailure::from_client(e.into(), &target.host(), target.secret_version())
                        .to_string();
                return Ok(report);
            }
        }
        match self.send(&target, &request).await {
            Ok(response) => {
                let status = response.status();
                report.reachable = true;
                report.status = Some(status.as_u16());
                report.authenticated = status.is_success();
                report.message = match status {
                    s if s.is_success() => match &report.secret_version {
                        Some(v) => {
                            format!("the upstream answered and accepted the credentials of {v}")
                        }
                        None => "the upstream answered and accepted the credentials".into(),
                    },
                    StatusCode::FORBIDDEN => {
                        "the upstream refused the credentials (HTTP 403)".into()
                    }
                    s => format!("the upstream answered HTTP {}", s.as_u16()),
                };
            }
            Err(e) => {
                // A refusal is an answer; everything else happened before one.
                report.reachable = matches!(e, UpstreamFailure::Refused { .. });
                report.message = e.to_string();
            }
        }
        report.rate_limit = self.rate_limit(&repo.name);
        Ok(report)
    }
}

/// Send a request; on a 403 to configured credentials, read them afresh and
/// try once more. Python indexes (pypiserver, PyPI) answer 403, not 401, to a
/// token that is no longer valid, so this is how a rotated token is picked up
/// at once rather than when the cached one expires.
async fn send(
    client: &dyn UpstreamTransport,
    metrics: &Metrics,
    request: &UpstreamRequest,
    credentials: &dyn CredentialSource,
    secret_version: Option<&str>,
) -> Result<UpstreamResponse, UpstreamFailure> {
    let host = host_of(&request.url);
    let failed = |e| UpstreamFailure::from_client(e, &host, secret_version);
    metrics.upstream_request();
    let response = client.send(request, credentials).await.map_err(failed)?;
    if response.status() == StatusCode::FORBIDDEN
        && credentials
            .credentials(false)
            .await
            .map_err(|e| failed(e.into()))?
            .is_some()
    {
        credentials
            .credentials(true)
            .await
            .map_err(|e| failed(e.into()))?;
        metrics.upstream_request();
        return client.send(request, credentials).await.map_err(failed);
    }
    Ok(response)
}
