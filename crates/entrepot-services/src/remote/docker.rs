//! Remote Docker/OCI repositories: the OCI naming and checking rules on top of
//! the format-agnostic fill engine and the upstream client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use entrepot_domain::manifest::{MANIFEST_MEDIA_TYPES, MAX_MANIFEST_BYTES};
use entrepot_domain::repository::RemoteConfig;
use entrepot_domain::upstream::{docker_upstream, DockerUpstream};
use entrepot_domain::{ByteRange, Digest, ImagePath, Manifest, Reference, Repository};
use entrepot_storage::{BlobStore, CacheStore, ImageRef, ManifestRecord, MetadataStore};
use entrepot_upstream::reqwest::header::{HeaderMap, ACCEPT, LINK, RETRY_AFTER};
use entrepot_upstream::reqwest::StatusCode;
use entrepot_upstream::{
    HopDenied, UpstreamClient, UpstreamError, UpstreamRequest, UpstreamResponse,
};
use futures::{FutureExt, StreamExt, TryStreamExt};
use url::Url;

use super::credentials::{CredentialSources, RepositoryCredentials, SecretReader};
use super::fill::{Cached, FillError, Fills, UpstreamBody};
use crate::clock::{now_rfc3339, now_unix};
use crate::metrics::{ContentKind, Metrics};
use crate::registry::{Page, RegistryError, ServedBlob, ServedManifest};

/// Rate-limit headers last seen from a repository's upstream.
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
    /// The registry API base URL.
    pub upstream: String,
    /// Whether the upstream answered at all.
    pub reachable: bool,
    /// Whether the credentials (or anonymous access) were accepted.
    pub authenticated: bool,
    /// HTTP status of the API check.
    pub status: Option<u16>,
    /// What happened, for the user.
    pub message: String,
    /// Rate-limit headers, when the upstream sent them.
    pub rate_limit: Option<RateLimit>,
}

struct Target {
    repository: String,
    upstream: DockerUpstream,
    config: RemoteConfig,
    credentials: Arc<RepositoryCredentials>,
}

impl Target {
    fn url(&self, path: &str) -> Result<Url, RegistryError> {
        Url::parse(&format!("{}/v2/{}", self.upstream.base_url, path)).map_err(|e| {
            RegistryError::Upstream {
                status: 502,
                message: format!("bad upstream URL: {e}"),
            }
        })
    }
}

/// The remote Docker/OCI cache.
pub struct RemoteDocker {
    meta: Arc<dyn MetadataStore>,
    cache: Arc<dyn CacheStore>,
    blobs: Arc<dyn BlobStore>,
    fills: Fills,
    client: Arc<UpstreamClient>,
    metrics: Arc<Metrics>,
    credentials: CredentialSources,
    rate_limits: Mutex<HashMap<String, RateLimit>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn image_ref(path: &ImagePath) -> ImageRef {
    ImageRef {
        project: path.project.to_string(),
        repository: path.repository.to_string(),
        image: path.image.to_string(),
    }
}

fn upstream_error(e: UpstreamError) -> RegistryError {
    match e {
        UpstreamError::Blocked(d) => RegistryError::Denied(d.message),
        UpstreamError::Credentials(c) => RegistryError::Denied(c.0),
        UpstreamError::Unauthorized(m) => RegistryError::Denied(m),
        e @ UpstreamError::Unreachable { .. } => RegistryError::Upstream {
            status: 503,
            message: e.to_string(),
        },
        e => RegistryError::Upstream {
            status: 502,
            message: e.to_string(),
        },
    }
}

fn fill_error(e: FillError, what: &str) -> RegistryError {
    match e {
        FillError::Upstream {
            status: 403,
            message,
            ..
        } => RegistryError::Denied(message),
        FillError::NotFound(m) => RegistryError::UpstreamNotFound(format!("{what}: {m}")),
        FillError::Upstream {
            status: 429,
            message,
            retry_after,
        } => RegistryError::TooManyRequests {
            message,
            retry_after,
        },
        FillError::Upstream {
            status, message, ..
        } => RegistryError::Upstream { status, message },
        e @ FillError::DigestMismatch { .. } => RegistryError::Upstream {
            status: 502,
            message: e.to_string(),
        },
        FillError::Storage(m) => RegistryError::Upstream {
            status: 500,
            message: m,
        },
    }
}

/// An upstream answer that is not the content: the error the client sees.
fn status_error(response: &UpstreamResponse, what: &str) -> RegistryError {
    let status = response.status();
    let host = response.url().host_str().unwrap_or("upstream").to_owned();
    match status {
        StatusCode::NOT_FOUND => RegistryError::UpstreamNotFound(format!("{what} is not in the upstream {host}")),
        StatusCode::TOO_MANY_REQUESTS => RegistryError::TooManyRequests {
            message: format!("the upstream {host} rate-limits entrepot (HTTP 429); retry later, or configure upstream credentials for a higher limit"),
            retry_after: retry_after(response.headers()),
        },
        StatusCode::FORBIDDEN => RegistryError::Denied(format!(
            "the upstream {host} refused access to {what} (HTTP 403); check the repository's upstream credentials"
        )),
        s => RegistryError::Upstream {
            status: if s.is_server_error() { 503 } else { 502 },
            message: format!("the upstream {host} answered HTTP {} for {what}", s.as_u16()),
        },
    }
}

/// Failures after which cached content is served stale.
fn stale_allowed(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::Upstream { .. }
            | RegistryError::TooManyRequests { .. }
            | RegistryError::UpstreamNotFound(_)
    )
}

impl RemoteDocker {
    /// A remote cache over the given stores, fills and upstream client.
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        cache: Arc<dyn CacheStore>,
        blobs: Arc<dyn BlobStore>,
        fills: Fills,
        client: Arc<UpstreamClient>,
        metrics: Arc<Metrics>,
        secrets: Arc<dyn SecretReader>,
    ) -> Self {
        Self {
            meta,
            cache,
            blobs,
            fills,
            client,
            metrics,
            credentials: CredentialSources::new(secrets),
            rate_limits: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn target(&self, repo: &Repository) -> Result<Target, RegistryError> {
        let config = repo.remote_repository_config.clone().ok_or_else(|| {
            RegistryError::Unsupported(format!("{} has no upstream configured", repo.name))
        })?;
        let upstream =
            docker_upstream(&config.upstream, config.allow_insecure_upstream).map_err(|e| {
                RegistryError::Upstream {
                    status: 502,
                    message: e.to_string(),
                }
            })?;
        let credentials = self.credentials.for_repository(
            &repo.name,
            &config.username,
            &config.password_secret_version,
        );
        Ok(Target {
            repository: repo.name.clone(),
            upstream,
            config,
            credentials,
        })
    }

    /// The registry access policy applies to the origin, not the path: content
    /// cached from a host the policy now blocks is not served either, unless the
    /// repository allows it. `Ok(Some(_))`: blocked, but cached content may be
    /// served; `Ok(None)`: the upstream may be used.
    async fn origin_blocked(&self, target: &Target) -> Result<Option<HopDenied>, RegistryError> {
        let url = target.url("")?;
        match self.client.check_origin(&url).await {
            Ok(()) => Ok(None),
            Err(denied) if target.config.allow_cached_from_blocked => {
                tracing::info!(repository = %target.repository, host = %denied.host, "upstream blocked by the registry access policy; serving cached content only, as the repository allows");
                Ok(Some(denied))
            }
            Err(denied) => Err(RegistryError::Denied(denied.message)),
        }
    }

    fn key_lock(&self, key: String) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key).or_default().clone()
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

    async fn send(
        &self,
        target: &Target,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, RegistryError> {
        self.metrics.upstream_request();
        let response = self
            .client
            .send(&request, target.credentials.as_ref())
            .await
            .map_err(upstream_error)?;
        self.record_rate_limit(&target.repository, response.headers());
        Ok(response)
    }

    fn manifest_request(
        &self,
        target: &Target,
        path: &ImagePath,
        reference: &str,
        head: bool,
    ) -> Result<UpstreamRequest, RegistryError> {
        Ok(
            Self::pull_request(target, path, &format!("manifests/{reference}"), head)?
                .header(ACCEPT, &MANIFEST_MEDIA_TYPES.join(", ")),
        )
    }

    /// A GET or HEAD of `{image}/{what}` at the upstream, scoped for pulling.
    fn pull_request(
        target: &Target,
        path: &ImagePath,
        what: &str,
        head: bool,
    ) -> Result<UpstreamRequest, RegistryError> {
        let name = target.upstream.image_name(path.image.as_str());
        let url = target.url(&format!("{name}/{what}"))?;
        let request = if head {
            UpstreamRequest::head(url)
        } else {
            UpstreamRequest::get(url)
        };
        Ok(request.scope(format!("repository:{name}:pull")))
    }

    /// GET a manifest from the upstream, verify it, store it (under `tag` if given).
    async fn fetch_manifest(
        &self,
        target: &Target,
        path: &ImagePath,
        reference: &Reference,
    ) -> Result<ServedManifest, RegistryError> {
        let what = format!("manifest {}:{reference}", path.image);
        let response = self
            .send(
                target,
                self.manifest_request(target, path, &reference.to_string(), false)?,
            )
            .await?;
        if response.status() != StatusCode::OK {
            return Err(status_error(&response, &what));
        }
        let content_type = response
            .headers()
            .get(entrepot_upstream::reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let announced = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        if response
            .content_length()
            .is_some_and(|l| l > MAX_MANIFEST_BYTES as u64)
        {
            return Err(RegistryError::Upstream {
                status: 502,
                message: format!("{what} from the upstream is larger than 4 MiB"),
            });
        }
        let content = response
            .bytes()
            .await
            .map_err(|e| RegistryError::Upstream {
                status: 502,
                message: format!("reading {what} from the upstream failed: {e}"),
            })?
            .to_vec();
        self.metrics.upstream_bytes(content.len() as u64);
        let digest = Digest::of(&content);
        let expected = match reference {
            Reference::Digest(d) => Some(d.clone()),
            Reference::Tag(_) => announced,
        };
        if let Some(expected) = expected.filter(|e| *e != digest) {
            tracing::error!(%expected, actual = %digest, "upstream manifest failed verification; not cached");
            return Err(RegistryError::Upstream {
                status: 502,
                message: format!("the upstream sent {what} hashing to {digest}, not {expected}; nothing was cached"),
            });
        }
        let manifest = Manifest::parse(content_type.as_deref(), &content).map_err(|e| {
            RegistryError::Upstream {
                status: 502,
                message: format!(
                    "the upstream sent an invalid {what}: {}",
                    upstream_manifest_problem(&e)
                ),
            }
        })?;
        let record = ManifestRecord {
            digest: digest.clone(),
            media_type: manifest.media_type.clone(),
            artifact_type: manifest.artifact_type.clone(),
            subject: manifest.subject.as_ref().map(|s| s.digest.clone()),
            annotations: manifest
                .annotations
                .as_ref()
                .map(|a| serde_json::Value::Object(a.clone()).to_string()),
            content: content.clone(),
        };
        let tag = match reference {
            Reference::Tag(t) => Some(t.as_str()),
            Reference::Digest(_) => None,
        };
        self.meta
            .put_manifest(&image_ref(path), &record, tag)
            .await?;
        Ok(ServedManifest {
            digest,
            media_type: manifest.media_type,
            content,
            stale: false,
        })
    }

    /// A manifest by tag or digest, through the cache.
    pub async fn get_manifest(
        &self,
        repo: &Repository,
        path: &ImagePath,
        reference: &Reference,
    ) -> Result<ServedManifest, RegistryError> {
        let target = self.target(repo)?;
        let blocked = self.origin_blocked(&target).await?;
        let image = image_ref(path);
        let _guard = self
            .key_lock(format!("{path}:{reference}"))
            .lock_owned()
            .await;
        match reference {
            Reference::Digest(d) => {
                if let Some(m) = self.meta.manifest_by_digest(&image, d).await? {
                    self.metrics.hit(ContentKind::Manifest);
                    return Ok(served(m, false));
                }
                if let Some(denied) = blocked {
                    return Err(RegistryError::Denied(denied.message));
                }
                self.metrics.miss(ContentKind::Manifest);
                self.fetch_manifest(&target, path, reference)
                    .await
                    .map_err(|e| not_found_as_manifest(e, path, reference))
            }
            Reference::Tag(tag) => {
                let cached = self.meta.manifest_by_tag(&image, tag.as_str()).await?;
                let now = now_unix();
                if let Some(m) = &cached {
                    let checked = self
                        .cache
                        .tag_checked_at(&image, tag.as_str())
                        .await?
                        .unwrap_or(0);
                    let fresh = now - checked < target.config.tag_ttl_secs as i64;
                    if fresh || blocked.is_some() {
                        self.metrics.hit(ContentKind::Tag);
                        return Ok(served(m.clone(), !fresh));
                    }
                }
                if let Some(denied) = blocked {
                    return Err(RegistryError::Denied(denied.message));
                }
                match self
                    .revalidate(&target, path, reference, cached.as_ref())
                    .await
                {
                    Ok(m) => {
                        self.cache
                            .mark_tag_checked(&image, tag.as_str(), now)
                            .await?;
                        Ok(m)
                    }
                    Err(e)
                        if stale_allowed(&e) && target.config.serve_stale && cached.is_some() =>
                    {
                        tracing::warn!(image = %path, %tag, error = %e, "upstream failed; serving the cached tag");
                        self.metrics.stale_serve();
                        Ok(served(cached.unwrap_or_else(|| unreachable!()), true))
                    }
                    Err(e) => Err(not_found_as_manifest(e, path, reference)),
                }
            }
        }
    }

    /// Ask the upstream whether the tag moved (HEAD does not count against Docker
    /// Hub's pull limit); GET only when it did.
    async fn revalidate(
        &self,
        target: &Target,
        path: &ImagePath,
        reference: &Reference,
        cached: Option<&ManifestRecord>,
    ) -> Result<ServedManifest, RegistryError> {
        if let Some(cached) = cached {
            let response = self
                .send(
                    target,
                    self.manifest_request(target, path, &reference.to_string(), true)?,
                )
                .await?;
            if response.status() != StatusCode::OK {
                return Err(status_error(
                    &response,
                    &format!("manifest {}:{reference}", path.image),
                ));
            }
            let current = response
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<Digest>().ok());
            if current.as_ref() == Some(&cached.digest) {
                self.metrics.hit(ContentKind::Tag);
                return Ok(served(cached.clone(), false));
            }
        }
        self.metrics.miss(ContentKind::Tag);
        self.fetch_manifest(target, path, reference).await
    }

    fn blob_request(
        target: &Target,
        path: &ImagePath,
        digest: &Digest,
        head: bool,
    ) -> Result<UpstreamRequest, RegistryError> {
        Self::pull_request(target, path, &format!("blobs/{digest}"), head)
    }

    /// Size of a blob, starting its fill if it is not cached.
    pub async fn stat_blob(
        &self,
        repo: &Repository,
        path: &ImagePath,
        digest: &Digest,
    ) -> Result<u64, RegistryError> {
        self.stat_blob_inner(repo, path, digest)
            .await
            .map_err(|e| blob_not_found(e, digest))
    }

    async fn stat_blob_inner(
        &self,
        repo: &Repository,
        path: &ImagePath,
        digest: &Digest,
    ) -> Result<u64, RegistryError> {
        let image = image_ref(path);
        let target = self.target(repo)?;
        let blocked = self.origin_blocked(&target).await?;
        if let Some(size) = self.meta.linked_blob_size(&image, digest).await? {
            self.metrics.hit(ContentKind::Blob);
            return Ok(size);
        }
        if let Some(denied) = blocked {
            return Err(RegistryError::Denied(denied.message));
        }
        match self.cached_or_fill(&target, path, digest).await? {
            Cached::Committed(size) => Ok(size),
            Cached::Filling(fill) => fill
                .size()
                .await
                .map_err(|e| fill_error(e, &format!("blob {digest}"))),
        }
    }

    /// Stream a blob (or a range), from the cache or from the fill under way.
    pub async fn open_blob(
        &self,
        repo: &Repository,
        path: &ImagePath,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<ServedBlob, RegistryError> {
        self.open_blob_inner(repo, path, digest, range)
            .await
            .map_err(|e| blob_not_found(e, digest))
    }

    async fn open_blob_inner(
        &self,
        repo: &Repository,
        path: &ImagePath,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<ServedBlob, RegistryError> {
        let image = image_ref(path);
        let target = self.target(repo)?;
        let blocked = self.origin_blocked(&target).await?;
        if let Some(size) = self.meta.linked_blob_size(&image, digest).await? {
            return self.read_committed(digest, size, range).await;
        }
        if let Some(denied) = blocked {
            return Err(RegistryError::Denied(denied.message));
        }
        match self.cached_or_fill(&target, path, digest).await? {
            Cached::Committed(size) => self.read_committed(digest, size, range).await,
            Cached::Filling(fill) => {
                let what = format!("blob {digest}");
                fill.opened().await.map_err(|e| fill_error(e, &what))?;
                let size = fill.size().await.map_err(|e| fill_error(e, &what))?;
                Ok(ServedBlob {
                    size,
                    range,
                    body: fill.stream(range),
                })
            }
        }
    }

    async fn read_committed(
        &self,
        digest: &Digest,
        size: u64,
        range: Option<ByteRange>,
    ) -> Result<ServedBlob, RegistryError> {
        let body = self.blobs.read(digest, range).await?;
        Ok(ServedBlob { size, range, body })
    }

    /// A blob not linked to this image. Linked to another image of this
    /// repository, its upstream has already proven to have it: the upstream
    /// only has to confirm that this image may see it. Otherwise join or start
    /// a fill from this repository's upstream, even if the bytes are in the
    /// store for another repository (dedup of bytes, never of authorization).
    async fn cached_or_fill(
        &self,
        target: &Target,
        path: &ImagePath,
        digest: &Digest,
    ) -> Result<Cached, RegistryError> {
        let image = image_ref(path);
        if let Some(size) = self
            .meta
            .blob_size_in_repository(&image.project, &image.repository, digest)
            .await?
        {
            let response = self
                .send(target, Self::blob_request(target, path, digest, true)?)
                .await?;
            if response.status() != StatusCode::OK {
                return Err(status_error(&response, &format!("blob {digest}")));
            }
            self.meta.link_blob(&image, digest, size).await?;
            self.metrics.hit(ContentKind::Blob);
            return Ok(Cached::Committed(size));
        }
        let request = Self::blob_request(target, path, digest, false)?;
        let client = self.client.clone();
        let credentials = target.credentials.clone();
        let metrics = self.metrics.clone();
        let what = format!("blob {digest} of {}", path.image);
        let open = move || {
            async move {
                metrics.upstream_request();
                let response = client
                    .send(&request, credentials.as_ref())
                    .await
                    .map_err(|e| FillError::Upstream {
                        status: match e {
                            UpstreamError::Unreachable { .. } => 503,
                            UpstreamError::Blocked(_)
                            | UpstreamError::Credentials(_)
                            | UpstreamError::Unauthorized(_) => 403,
                            _ => 502,
                        },
                        message: e.to_string(),
                        retry_after: None,
                    })?;
                match response.status() {
                    StatusCode::OK => Ok(UpstreamBody {
                        length: response.content_length(),
                        body: response
                            .bytes_stream()
                            .map_err(std::io::Error::other)
                            .boxed(),
                    }),
                    StatusCode::NOT_FOUND => Err(FillError::NotFound(format!(
                        "{what} is not in the upstream"
                    ))),
                    StatusCode::TOO_MANY_REQUESTS => Err(FillError::Upstream {
                        status: 429,
                        message: format!(
                            "the upstream rate-limits entrepot (HTTP 429) for {what}; retry later"
                        ),
                        retry_after: retry_after(response.headers()),
                    }),
                    s => Err(FillError::Upstream {
                        status: if s.is_server_error() { 503 } else { 502 },
                        message: format!("the upstream answered HTTP {} for {what}", s.as_u16()),
                        retry_after: None,
                    }),
                }
            }
            .boxed()
        };
        let meta = self.meta.clone();
        let blobs = self.blobs.clone();
        let link_digest = digest.clone();
        let after_commit = move || {
            async move {
                if let Ok(Some(size)) = blobs.stat(&link_digest).await {
                    if let Err(e) = meta.link_blob(&image, &link_digest, size).await {
                        tracing::warn!(error = %e, "could not link a cached blob");
                    }
                }
            }
            .boxed()
        };
        let linked = async {
            self.meta
                .linked_blob_size(&image_ref(path), digest)
                .await
                .map_err(|e| FillError::Storage(e.to_string()))
        };
        self.fills
            .get_or_start(&target.repository, digest, linked, open, after_commit)
            .await
            .map_err(|e| fill_error(e, &format!("blob {digest}")))
    }

    /// One page of the upstream's tags of an image (at most `size`, after
    /// `last`); of the cached ones when the upstream fails. The page says
    /// whether more follow: the upstream's own `Link`, or the extra tag asked
    /// for beyond the page, tells.
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
        let target = self.target(repo)?;
        if self.origin_blocked(&target).await?.is_some() {
            return cached().await;
        }
        let name = target.upstream.image_name(path.image.as_str());
        let mut url = target.url(&format!("{name}/tags/list"))?;
        url.query_pairs_mut()
            .append_pair("n", &(u64::from(size) + 1).to_string());
        if let Some(last) = last {
            url.query_pairs_mut().append_pair("last", last);
        }
        let request = UpstreamRequest::get(url).scope(format!("repository:{name}:pull"));
        let upstream = async {
            let response = self.send(&target, request).await?;
            if response.status() != StatusCode::OK {
                return Err(status_error(&response, &format!("tags of {}", path.image)));
            }
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
            let list: TagList = response.json().await.map_err(|e| RegistryError::Upstream {
                status: 502,
                message: format!("the upstream's tag list is unreadable: {e}"),
            })?;
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
            Ok(page)
        };
        match upstream.await {
            Ok(page) => Ok(page),
            Err(e) if stale_allowed(&e) && target.config.serve_stale => {
                self.metrics.stale_serve();
                cached().await
            }
            Err(e) => Err(e),
        }
    }

    /// Check reachability and credentials of a repository's upstream.
    pub async fn test_upstream(&self, repo: &Repository) -> Result<UpstreamReport, RegistryError> {
        let target = self.target(repo)?;
        let url = target.url("")?;
        let mut report = UpstreamReport {
            upstream: target.upstream.base_url.clone(),
            reachable: false,
            authenticated: false,
            status: None,
            message: String::new(),
            rate_limit: None,
        };
        // A blocked upstream is not contacted at all: say so, not "unreachable".
        if let Err(denied) = self.client.check_origin(&url).await {
            report.message = denied.message;
            return Ok(report);
        }
        match self.send(&target, UpstreamRequest::get(url)).await {
            Ok(response) => {
                let status = response.status();
                report.reachable = true;
                report.status = Some(status.as_u16());
                report.authenticated = status.is_success();
                report.message = if status.is_success() {
                    "the upstream answered and accepted the credentials".into()
                } else {
                    format!("the upstream answered HTTP {}", status.as_u16())
                };
            }
            Err(RegistryError::Upstream { message, .. }) => report.message = message,
            Err(e @ RegistryError::Denied(_)) => {
                report.reachable = true;
                report.message = e.to_string();
            }
            Err(e) => return Err(e),
        }
        report.rate_limit = self.rate_limit(&repo.name);
        Ok(report)
    }
}

/// What is wrong with an upstream's manifest, without quoting what it sent
/// (its Content-Type header and fields are the upstream's to choose, and a
/// hostile one echoes credentials there).
fn upstream_manifest_problem(e: &entrepot_domain::manifest::ManifestError) -> String {
    use entrepot_domain::manifest::ManifestError;
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

/// A `Retry-After` worth passing on: delay seconds or an HTTP date, nothing
/// else an upstream might put there.
fn retry_after(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let seconds =
        !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit());
    let date = value.len() <= 40
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b',' | b':'));
    (seconds || date).then(|| value.to_owned())
}

fn served(m: ManifestRecord, stale: bool) -> ServedManifest {
    ServedManifest {
        digest: m.digest,
        media_type: m.media_type,
        content: m.content,
        stale,
    }
}

fn not_found_as_manifest(
    e: RegistryError,
    path: &ImagePath,
    reference: &Reference,
) -> RegistryError {
    match e {
        RegistryError::UpstreamNotFound(_) => RegistryError::ManifestUnknown(format!(
            "{path}:{reference} (not in the upstream either)"
        )),
        e => e,
    }
}

fn blob_not_found(e: RegistryError, digest: &Digest) -> RegistryError {
    match e {
        RegistryError::UpstreamNotFound(_) => RegistryError::BlobUnknown(digest.clone()),
        e => e,
    }
}
