//! Remote Python repositories: a pull-through cache of a simple index.
//!
//! Index pages are mutable: kept as the upstream sent them, answered from the
//! cache within the freshness window, and served stale when the upstream fails.
//! Files are immutable: named by the sha256 the index gave, fetched once through
//! the fill engine, verified, kept.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use entrepot_domain::repository::RemoteConfig;
use entrepot_domain::upstream::{python_upstream, PythonUpstream};
use entrepot_domain::Repository;
use entrepot_storage::{BlobStore, CachedIndexPage, PythonRepo, PythonStore, RemoteFileRecord};
use entrepot_upstream::reqwest::header::{ACCEPT, CONTENT_TYPE};
use entrepot_upstream::reqwest::StatusCode;
use entrepot_upstream::{
    redact, CredentialSource, NoCredentials, UpstreamClient, UpstreamError, UpstreamRequest,
};
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt, TryStreamExt};
use url::Url;

use super::dist::{extract_metadata, normalize, DistKind};
use super::index::{self, ProjectPage, ServedPage};
use super::page_views::{PageView, PageViews};
use super::{file_path, repo_ids, sha256_digest, LocatedFile, PythonError};
use crate::clock::now_unix;
use crate::metrics::{ContentKind, Metrics};
use crate::remote::credentials::CredentialSources;
use crate::remote::fill::{Cached, FillError, Fills, UpstreamBody};
use crate::remote::{RepositoryCredentials, SecretReader, UpstreamReport};

/// What entrepot asks the upstream for: JSON first, HTML accepted.
const UPSTREAM_ACCEPT: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// Largest index page entrepot keeps (PyPI's full project list is ~30 MiB).
const MAX_PAGE_BYTES: usize = 128 * 1024 * 1024;

/// A page of more files than this is rendered off the async runtime.
const LARGE_PAGE_FILES: usize = 1_000;

/// Where an index page came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// Fetched from the upstream just now.
    Fetched,
    /// Fetched just now, byte for byte the page stored before: where its
    /// files come from is recorded already (unless that was cut short).
    Unchanged,
    /// From the cache, within the freshness window.
    Cached,
    /// From the cache, because the upstream failed.
    Stale,
}

/// An upstream page read when it was fetched, so it is parsed once per fetch.
enum Parsed {
    /// The project list, names normalised.
    List(Arc<Vec<String>>),
    /// A project's page.
    Project(ProjectPage),
}

/// The storing of a page just fetched, if one is under way.
struct Stored(Option<tokio::task::JoinHandle<Result<(), entrepot_storage::StoreError>>>);

impl Stored {
    /// Wait until the page is stored.
    async fn wait(self) -> Result<(), PythonError> {
        match self.0 {
            None => Ok(()),
            Some(task) => Ok(task.await.map_err(|e| {
                PythonError::Storage(format!("storing the index page failed: {e}"))
            })??),
        }
    }
}

/// The project list of a repository as parsed from one upstream fetch.
struct ListView {
    /// The index it was read from (a repository re-pointed under the same
    /// name must not be answered with another upstream's list).
    index_url: String,
    /// When the upstream list was fetched (unix seconds).
    fetched_at: i64,
    /// Normalised names.
    names: Arc<Vec<String>>,
}

struct Target {
    /// The repository's resource name: the scope of its fills.
    name: String,
    ids: PythonRepo,
    upstream: PythonUpstream,
    config: RemoteConfig,
    credentials: Arc<RepositoryCredentials>,
}

impl Target {
    /// Credentials go to the index's own origin and its declared file hosts only.
    fn credentials_for(&self, url: &Url) -> Arc<dyn CredentialSource> {
        let index = Url::parse(&self.upstream.index_url).ok();
        let same_origin = index.is_some_and(|i| i.origin() == url.origin());
        let host = url
            .host_str()
            .map(|h| url.port().map_or(h.to_owned(), |p| format!("{h}:{p}")));
        let file_host = host.is_some_and(|h| self.upstream.file_hosts.contains(&h));
        if same_origin || (file_host && url.scheme() == "https") {
            self.credentials.clone()
        } else {
            Arc::new(NoCredentials)
        }
    }
}

/// The remote Python cache.
pub struct RemotePython {
    store: Arc<dyn PythonStore>,
    blobs: Arc<dyn BlobStore>,
    fills: Fills,
    client: Arc<UpstreamClient>,
    metrics: Arc<Metrics>,
    scratch: PathBuf,
    credentials: CredentialSources,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    views: Arc<PageViews>,
    /// Project lists by `(project, repository)`: PyPI's is ~600,000 names,
    /// seconds of CPU to parse, so it is parsed once per upstream fetch.
    lists: Mutex<HashMap<(String, String), Arc<ListView>>>,
    /// Origins of pages being written in the background, by page.
    pending: Arc<Mutex<HashMap<PageKey, (u64, PendingWrite)>>>,
    next_write: AtomicU64,
    max_page_files: usize,
}

/// `(project id, repository id, normalised project name)`.
type PageKey = (String, String, String);

/// A background write of a page's file origins; its error as text.
type PendingWrite = Shared<BoxFuture<'static, Result<(), String>>>;

/// File origins written per transaction.
const ORIGINS_PER_TRANSACTION: usize = 20_000;

fn upstream_error(e: UpstreamError, host: &str) -> PythonError {
    match e {
        UpstreamError::Unauthorized(m) => PythonError::UpstreamCredentials(format!(
            "the upstream index requires valid credentials: {m}"
        )),
        UpstreamError::Credentials(c) => PythonError::UpstreamCredentials(format!(
            "the upstream credentials of this repository could not be read: {}",
            c.0
        )),
        UpstreamError::Blocked(d) => PythonError::Blocked(d.message),
        e @ UpstreamError::Unreachable { .. } => PythonError::Upstream {
            status: 503,
            message: e.to_string(),
        },
        e => PythonError::Upstream {
            status: 502,
            message: format!("the upstream {host} failed: {e}"),
        },
    }
}

fn fill_error(e: FillError) -> PythonError {
    match e {
        FillError::NotFound(m) => PythonError::NotFound(m),
        FillError::Upstream {
            status: 401 | 403,
            message,
            ..
        } => PythonError::UpstreamCredentials(message),
        FillError::Upstream {
            status, message, ..
        } => PythonError::Upstream { status, message },
        e @ FillError::DigestMismatch { .. } => PythonError::Upstream {
            status: 502,
            message: e.to_string(),
        },
        FillError::Storage(m) => PythonError::Storage(m),
    }
}

impl RemotePython {
    /// A remote cache over the given stores, fills and upstream client;
    /// `scratch` (created, emptied) holds cached wheels while their metadata is
    /// extracted.
    pub fn new(
        store: Arc<dyn PythonStore>,
        blobs: Arc<dyn BlobStore>,
        fills: Fills,
        client: Arc<UpstreamClient>,
        metrics: Arc<Metrics>,
        secrets: Arc<dyn SecretReader>,
        scratch: PathBuf,
    ) -> std::io::Result<Self> {
        crate::workdir::fresh_dir(&scratch)?;
        Ok(Self {
            store,
            blobs,
            fills,
            client,
            metrics,
            scratch,
            credentials: CredentialSources::new(secrets),
            locks: Mutex::new(HashMap::new()),
            views: Arc::default(),
            lists: Mutex::new(HashMap::new()),
            pending: Arc::default(),
            next_write: AtomicU64::new(0),
            max_page_files: index::DEFAULT_MAX_PAGE_FILES,
        })
    }

    /// Refuse upstream project pages listing more than `max` files (default
    /// [`index::DEFAULT_MAX_PAGE_FILES`]).
    pub fn with_max_page_files(mut self, max: usize) -> Self {
        self.max_page_files = max;
        self
    }

    fn target(&self, repo: &Repository) -> Result<Target, PythonError> {
        let config = repo.remote_repository_config.clone().ok_or_else(|| {
            PythonError::NotAllowed(format!("{} has no upstream configured", repo.name))
        })?;
        let upstream =
            python_upstream(&config.upstream, config.allow_insecure_upstream).map_err(|e| {
                PythonError::Upstream {
                    status: 502,
                    message: e.to_string(),
                }
            })?;
        let ids = repo_ids(repo);
        let credentials = self.credentials.for_repository(
            &repo.name,
            &config.username,
            &config.password_secret_version,
        );
        Ok(Target {
            name: repo.name.clone(),
            ids,
            upstream,
            config,
            credentials,
        })
    }

    /// The registry access policy applies to the upstream's origin: content
    /// cached from a host it now blocks is not served either, unless the
    /// repository allows it. `Ok(true)`: blocked, cached content may be served.
    async fn origin_blocked(&self, target: &Target) -> Result<bool, PythonError> {
        let url = Url::parse(&target.upstream.index_url).map_err(|e| PythonError::Upstream {
            status: 502,
            message: format!("bad upstream URL: {e}"),
        })?;
        match self.client.check_origin(&url).await {
            Ok(()) => Ok(false),
            Err(denied) if target.config.allow_cached_from_blocked => {
                tracing::info!(host = %denied.host, "upstream blocked by the registry access policy; serving cached content only, as the repository allows");
                Ok(true)
            }
            Err(denied) => Err(PythonError::Blocked(denied.message)),
        }
    }

    fn key_lock(&self, key: String) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key).or_default().clone()
    }

    /// An index page (`name` normalised; `""` is the project list), from the
    /// cache when fresh, else from the upstream; stale when the upstream fails.
    /// With a page just fetched, also what it parsed to and its storing,
    /// under way while the caller builds its answer (see [`Stored`]).
    async fn page(
        &self,
        target: &Target,
        name: &str,
    ) -> Result<(Url, CachedIndexPage, Freshness, Option<Parsed>, Stored), PythonError> {
        let index_url =
            Url::parse(&target.upstream.index_url).map_err(|e| PythonError::Upstream {
                status: 502,
                message: format!("bad upstream URL: {e}"),
            })?;
        let url = if name.is_empty() {
            index_url.clone()
        } else {
            index_url
                .join(&format!("{name}/"))
                .map_err(|e| PythonError::Invalid(format!("bad project name: {e}")))?
        };
        let guard = self
            .key_lock(format!(
                "{}/{}/{name}",
                target.ids.project, target.ids.repository
            ))
            .lock_owned()
            .await;
        let blocked = self.origin_blocked(target).await?;
        let cached = self.store.index_page(&target.ids, name).await?;
        let now = now_unix();
        if let Some(page) = &cached {
            if now - page.fetched_at < target.config.tag_ttl_secs as i64 {
                self.metrics.hit(ContentKind::Tag);
                return Ok((url, page.clone(), Freshness::Cached, None, Stored(None)));
            }
            if blocked {
                self.metrics.stale_serve();
                return Ok((url, page.clone(), Freshness::Stale, None, Stored(None)));
            }
        }
        if blocked {
            return Err(PythonError::Blocked(format!(
                "the registry access policy blocks the upstream {} and this page is not cached",
                target.upstream.host()
            )));
        }
        self.metrics.miss(ContentKind::Tag);
        match self.fetch_page(target, &url, name).await {
            Ok(Some((content_type, content, parsed))) => {
                let unchanged = cached
                    .as_ref()
                    .is_some_and(|c| c.content_type == content_type && c.content == content);
                let page = CachedIndexPage {
                    content_type,
                    content,
                    fetched_at: now,
                };
                // Stored while the caller builds its answer (a page of 57 MB
                // takes a second to write); the page's lock is held until it
                // is stored, so no other request fetches it meanwhile.
                let stored = {
                    let (store, ids, name, page) = (
                        self.store.clone(),
                        target.ids.clone(),
                        name.to_owned(),
                        page.clone(),
                    );
                    tokio::spawn(async move {
                        let _guard = guard;
                        store.put_index_page(&ids, &name, &page).await
                    })
                };
                let freshness = if unchanged {
                    Freshness::Unchanged
                } else {
                    Freshness::Fetched
                };
                Ok((url, page, freshness, Some(parsed), Stored(Some(stored))))
            }
            Ok(None) => Err(PythonError::NotFound(if name.is_empty() {
                "the upstream has no project list".into()
            } else {
                format!("project {name:?} is not in the upstream index")
            })),
            Err(e @ PythonError::Upstream { .. }) if target.config.serve_stale => match cached {
                Some(page) => {
                    tracing::warn!(project = name, error = %e, "upstream failed; serving the cached index page");
                    self.metrics.stale_serve();
                    Ok((url, page, Freshness::Stale, None, Stored(None)))
                }
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// GET an index page (`name` as for [`Self::page`]) and parse it: `None`
    /// when the upstream has no such project.
    async fn fetch_page(
        &self,
        target: &Target,
        url: &Url,
        name: &str,
    ) -> Result<Option<(String, Vec<u8>, Parsed)>, PythonError> {
        let host = target.upstream.host();
        let request = UpstreamRequest::get(url.clone()).header(ACCEPT, UPSTREAM_ACCEPT);
        self.metrics.upstream_request();
        let response = send_refreshing(&self.client, &request, target.credentials.as_ref())
            .await
            .map_err(|e| upstream_error(e, &host))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(None),
            StatusCode::FORBIDDEN => {
                return Err(PythonError::UpstreamCredentials(format!(
                    "the upstream {host} refused access (HTTP 403); check the repository's upstream credentials (--remote-username, --remote-password-secret-version)"
                )))
            }
            s => {
                return Err(PythonError::Upstream {
                    status: if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS {
                        503
                    } else {
                        502
                    },
                    message: format!("the upstream {host} answered HTTP {} for {}", s.as_u16(), redact::url(url)),
                })
            }
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("text/html")
            .to_owned();
        let mut body = response.bytes_stream();
        let mut content = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| PythonError::Upstream {
                status: 502,
                message: format!("reading the index page from {host} failed: {e}"),
            })?;
            if content.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(PythonError::Upstream {
                    status: 502,
                    message: format!("the index page from {host} is larger than 128 MiB"),
                });
            }
            content.extend_from_slice(&chunk);
        }
        self.metrics.upstream_bytes(content.len() as u64);
        // Parsed now, so an unreadable page is never cached, and only once:
        // the parsed page is what the caller serves.
        let ct = content_type.to_ascii_lowercase();
        if !(ct.contains("json") || ct.contains("html")) {
            return Err(PythonError::Upstream {
                status: 502,
                message: format!(
                    "the upstream {host} answered with an unreadable index page for {}: its Content-Type is neither JSON nor HTML",
                    redact::url(url)
                ),
            });
        }
        let (content, parsed) = self
            .parse(content_type.clone(), content, url.clone(), name.to_owned())
            .await;
        let parsed = parsed.map_err(|e| PythonError::Upstream {
            status: 502,
            message: format!(
                "the upstream {host} answered with an unusable index page for {}: {e}",
                redact::url(url)
            ),
        })?;
        Ok(Some((content_type, content, parsed)))
    }

    /// Parse a stored page on the blocking pool (a large page is seconds of
    /// CPU that must not stall the async runtime); the content comes back.
    async fn parse(
        &self,
        content_type: String,
        content: Vec<u8>,
        url: Url,
        name: String,
    ) -> (Vec<u8>, Result<Parsed, index::PageError>) {
        let max_files = self.max_page_files;
        self.metrics.index_page_parse();
        let parsed = tokio::task::spawn_blocking(move || {
            let parsed = if name.is_empty() {
                index::parse_project_list(&content_type, &content).map(|names| {
                    Parsed::List(Arc::new(names.iter().map(|n| normalize(n)).collect()))
                })
            } else {
                index::parse_project_page(&content_type, &content, &url, &name, max_files)
                    .map(Parsed::Project)
            };
            (content, parsed)
        })
        .await;
        match parsed {
            Ok(done) => done,
            Err(e) => (
                Vec::new(),
                Err(index::PageError::Unreadable(format!(
                    "the parser failed: {e}"
                ))),
            ),
        }
    }

    /// Check reachability and credentials of a repository's upstream index
    /// (a HEAD of the index URL: PyPI's project list is tens of megabytes).
    pub async fn test_upstream(&self, repo: &Repository) -> Result<UpstreamReport, PythonError> {
        let target = self.target(repo)?;
        let mut report = UpstreamReport {
            upstream: target.upstream.index_url.clone(),
            reachable: false,
            authenticated: false,
            status: None,
            message: String::new(),
            rate_limit: None,
        };
        let url = Url::parse(&target.upstream.index_url).map_err(|e| PythonError::Upstream {
            status: 502,
            message: format!("bad upstream URL: {e}"),
        })?;
        self.metrics.upstream_request();
        match send_refreshing(
            &self.client,
            &UpstreamRequest::head(url),
            target.credentials.as_ref(),
        )
        .await
        {
            Ok(response) => {
                let status = response.status();
                report.reachable = true;
                report.status = Some(status.as_u16());
                report.authenticated = status.is_success();
                report.message = match status {
                    s if s.is_success() => {
                        "the upstream answered and accepted the credentials".into()
                    }
                    StatusCode::FORBIDDEN => {
                        "the upstream refused the credentials (HTTP 403)".into()
                    }
                    s => format!("the upstream answered HTTP {}", s.as_u16()),
                };
            }
            Err(e @ (UpstreamError::Unauthorized(_) | UpstreamError::Credentials(_))) => {
                report.reachable = matches!(e, UpstreamError::Unauthorized(_));
                report.message = e.to_string();
            }
            Err(e) => report.message = e.to_string(),
        }
        Ok(report)
    }

    /// The upstream's project list (normalised names), parsed once per
    /// upstream fetch.
    pub async fn project_list(&self, repo: &Repository) -> Result<Arc<Vec<String>>, PythonError> {
        let target = self.target(repo)?;
        // The access policy is asked on every request, before any list is served.
        self.origin_blocked(&target).await?;
        let key = (target.ids.project.clone(), target.ids.repository.clone());
        let kept = self
            .lists
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .filter(|v| v.index_url == target.upstream.index_url)
            .cloned();
        if let Some(view) = &kept {
            if now_unix() - view.fetched_at < target.config.tag_ttl_secs as i64 {
                self.metrics.hit(ContentKind::Tag);
                return Ok(view.names.clone());
            }
        }
        let (url, page, _, parsed, stored) = self.page(&target, "").await?;
        stored.wait().await?;
        let names = match (parsed, kept) {
            (Some(Parsed::List(names)), _) => names,
            // The stored list is the one already parsed (served stale).
            (_, Some(view)) if view.fetched_at == page.fetched_at => view.names.clone(),
            _ => {
                let (_, parsed) = self
                    .parse(page.content_type, page.content, url, String::new())
                    .await;
                match parsed {
                    Ok(Parsed::List(names)) => names,
                    Ok(Parsed::Project(_)) => Arc::default(),
                    Err(e) => {
                        return Err(PythonError::Upstream {
                            status: 502,
                            message: e.to_string(),
                        })
                    }
                }
            }
        };
        self.lists.lock().unwrap_or_else(|p| p.into_inner()).insert(
            key,
            Arc::new(ListView {
                index_url: target.upstream.index_url.clone(),
                fetched_at: page.fetched_at,
                names: names.clone(),
            }),
        );
        Ok(names)
    }

    /// A project's page, with file links pointing at entrepot. Files the
    /// upstream gives no sha256 for are left out: they could not be verified.
    pub async fn project_page(
        &self,
        repo: &Repository,
        name: &str,
    ) -> Result<Arc<ServedPage>, PythonError> {
        let target = self.target(repo)?;
        let name = normalize(name);
        // The access policy is asked on every request, before any view is served.
        self.origin_blocked(&target).await?;
        if let Some(view) = self.views.get(&target.ids, &name) {
            if view.index_url == target.upstream.index_url
                && now_unix() - view.fetched_at < target.config.tag_ttl_secs as i64
            {
                self.metrics.hit(ContentKind::Tag);
                return Ok(view.page.clone());
            }
        }
        let generation = self.views.generation();
        let (url, cached, freshness, parsed, stored) = self.page(&target, &name).await?;
        let (fetched_at, weight) = (cached.fetched_at, cached.content.len());
        let page = self
            .build_page(&target, &name, &url, cached, freshness, parsed)
            .await?;
        let page = if page.files.len() > LARGE_PAGE_FILES {
            // Rendered ahead, off the runtime, in the form most clients ask for.
            tokio::task::spawn_blocking(move || {
                let page = ServedPage::new(page);
                page.render(index::PageFormat::Json);
                Arc::new(page)
            })
            .await
            .map_err(|e| PythonError::Storage(format!("rendering the page failed: {e}")))?
        } else {
            Arc::new(ServedPage::new(page))
        };
        // Served once stored: a page the store refused is not answered.
        stored.wait().await?;
        if freshness != Freshness::Stale {
            let view = PageView {
                index_url: target.upstream.index_url.clone(),
                fetched_at,
                page: page.clone(),
                weight,
            };
            self.views
                .offer(generation, &target.ids, &name, Arc::new(view));
        }
        Ok(page)
    }

    /// Turn a stored upstream page (`parsed` if it was just fetched) into the
    /// page entrepot serves.
    async fn build_page(
        &self,
        target: &Target,
        name: &str,
        url: &Url,
        cached: CachedIndexPage,
        freshness: Freshness,
        parsed: Option<Parsed>,
    ) -> Result<ProjectPage, PythonError> {
        let parsed = match parsed {
            Some(parsed) => Ok(parsed),
            None => {
                self.parse(
                    cached.content_type,
                    cached.content,
                    url.clone(),
                    name.to_owned(),
                )
                .await
                .1
            }
        };
        let mut page = match parsed {
            Ok(Parsed::Project(page)) => page,
            Ok(Parsed::List(_)) => ProjectPage::default(),
            Err(e) => {
                return Err(PythonError::Upstream {
                    status: 502,
                    message: e.to_string(),
                })
            }
        };
        page.name = name.to_owned();
        page.files.retain(|f| {
            let ok = f
                .hashes
                .get("sha256")
                .is_some_and(|h| sha256_digest(h).is_ok());
            if !ok {
                tracing::warn!(file = %f.filename, "upstream file has no sha256; left out");
            }
            ok
        });
        for f in &mut page.files {
            // A metadata file can only be verified with its sha256.
            if f.core_metadata
                .as_ref()
                .is_some_and(|m| m.get("sha256").is_none_or(|h| sha256_digest(h).is_err()))
            {
                f.core_metadata = None;
            }
        }
        page.stale = freshness == Freshness::Stale;
        // Where each file comes from is written in the background, not before
        // the page is served: for a page of 300,000 files that is seconds of
        // database writes. A file asked for before its origin is written waits
        // for the write (see `source`).
        let key = (
            target.ids.project.clone(),
            target.ids.repository.clone(),
            name.to_owned(),
        );
        let remember = match (freshness, page.files.last()) {
            (_, None) => false,
            (Freshness::Fetched, _) => true,
            // Origins of a page read from the store (or fetched identical to
            // it) are written already, unless that write is still under way
            // or was cut short (by a failure or a restart): the last file
            // tells, as the rows are written in page order.
            (_, Some(f)) => {
                let pending = self.pending_origins().contains_key(&key);
                !pending
                    && self
                        .store
                        .remote_file(&target.ids, &f.hashes["sha256"], &f.filename)
                        .await?
                        .is_none()
            }
        };
        if remember {
            let records: Vec<RemoteFileRecord> = page
                .files
                .iter()
                .map(|f| RemoteFileRecord {
                    name: name.to_owned(),
                    sha256: f.hashes["sha256"].clone(),
                    filename: f.filename.clone(),
                    url: f.url.clone(),
                    metadata_sha256: f
                        .core_metadata
                        .as_ref()
                        .and_then(|m| m.get("sha256").cloned()),
                })
                .collect();
            self.remember_origins(target, key, records);
        }
        self.add_extracted_metadata(&target.ids, name, &mut page)
            .await?;
        // PEP 700 sizes the upstream did not give are known once this
        // repository has cached a file (only its own files: whether another
        // tenant stored some bytes is not this repository's to tell). One
        // query for the page: it may list hundreds of thousands of files.
        if page.files.iter().any(|f| f.size.is_none()) {
            let sizes = self.store.linked_file_sizes(&target.ids, name).await?;
            for f in page.files.iter_mut().filter(|f| f.size.is_none()) {
                f.size = sizes.get(&f.hashes["sha256"]).copied();
            }
        }
        for f in &mut page.files {
            f.url = file_path(&target.ids, &f.hashes["sha256"], &f.filename);
        }
        Ok(page)
    }

    fn pending_origins(&self) -> MutexGuard<'_, HashMap<PageKey, (u64, PendingWrite)>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write where a page's files come from, in the background, after any
    /// earlier write for the same page (the later page's origins win).
    fn remember_origins(&self, target: &Target, key: PageKey, records: Vec<RemoteFileRecord>) {
        let (store, views, pending) =
            (self.store.clone(), self.views.clone(), self.pending.clone());
        let ids = target.ids.clone();
        let mut map = self.pending_origins();
        let id = self.next_write.fetch_add(1, Ordering::Relaxed);
        let before = map.get(&key).map(|(_, w)| w.clone());
        let task_key = key.clone();
        let write = tokio::spawn(async move {
            if let Some(before) = before {
                // Its failure is its own callers' to see.
                let _ = before.await;
            }
            // In transactions of a bounded size, so that other writers are
            // not held up for the whole page.
            let mut result = Ok(());
            for chunk in records.chunks(ORIGINS_PER_TRANSACTION) {
                if let Err(e) = store.remember_remote_files(&ids, chunk).await {
                    result = Err(e.to_string());
                    break;
                }
            }
            if let Err(e) = &result {
                tracing::warn!(project = %task_key.2, error = %e, "recording where the files of an index page come from failed");
                // Rebuilt on the next request, which writes them again.
                views.invalidate(&ids, &task_key.2);
            }
            let mut map = pending.lock().unwrap_or_else(|p| p.into_inner());
            if map.get(&task_key).is_some_and(|(i, _)| *i == id) {
                map.remove(&task_key);
            }
            result
        })
        .map(|joined| joined.unwrap_or_else(|e| Err(e.to_string())))
        .boxed()
        .shared();
        map.insert(key, (id, write));
    }

    /// Wait for the origins of this repository's pages still being written.
    async fn origins_written(&self, ids: &PythonRepo) -> Result<(), PythonError> {
        let writes: Vec<PendingWrite> = self
            .pending_origins()
            .iter()
            .filter(|((project, repository, _), _)| {
                *project == ids.project && *repository == ids.repository
            })
            .map(|(_, (_, w))| w.clone())
            .collect();
        for write in writes {
            write.await.map_err(|e| {
                PythonError::Storage(format!("recording the page's files failed: {e}"))
            })?;
        }
        Ok(())
    }

    /// PEP 658 for upstreams without metadata files: advertise the metadata
    /// entrepot extracted from wheels it has cached.
    async fn add_extracted_metadata(
        &self,
        ids: &PythonRepo,
        name: &str,
        page: &mut ProjectPage,
    ) -> Result<(), PythonError> {
        if page.files.iter().all(|f| f.core_metadata.is_some()) {
            return Ok(());
        }
        // Only the files with a metadata file: a page may list 300,000.
        let known: HashMap<(String, String), String> = self
            .store
            .remote_files_with_metadata(ids, name)
            .await?
            .into_iter()
            .filter_map(|r| r.metadata_sha256.map(|m| ((r.sha256, r.filename), m)))
            .collect();
        for f in page.files.iter_mut().filter(|f| f.core_metadata.is_none()) {
            let key = (f.hashes["sha256"].clone(), f.filename.clone());
            let Some(hex) = known.get(&key) else { continue };
            if self
                .store
                .remote_blob_size(ids, &sha256_digest(hex)?)
                .await?
                .is_some()
            {
                f.core_metadata = Some(BTreeMap::from([("sha256".to_owned(), hex.clone())]));
            }
        }
        Ok(())
    }

    /// Where a file (or its `.metadata`) comes from, its digest, and the
    /// project whose page lists it.
    async fn source(
        &self,
        target: &Target,
        sha256: &str,
        filename: &str,
    ) -> Result<(Url, String, String), PythonError> {
        let unknown = || {
            PythonError::NotFound(format!(
                "{filename} with sha256 {sha256} is not on any index page of this repository; ask for the project's page first"
            ))
        };
        let (file, metadata) = match filename.strip_suffix(".metadata") {
            Some(f) => (f, true),
            None => (filename, false),
        };
        let record = match self.store.remote_file(&target.ids, sha256, file).await? {
            Some(record) => record,
            None => {
                // Its page may have been served before its origins were written.
                self.origins_written(&target.ids).await?;
                self.store
                    .remote_file(&target.ids, sha256, file)
                    .await?
                    .ok_or_else(unknown)?
            }
        };
        let url = if metadata {
            format!("{}.metadata", record.url)
        } else {
            record.url.clone()
        };
        let digest = if metadata {
            record.metadata_sha256.clone().ok_or_else(|| {
                PythonError::NotFound(format!("the upstream has no metadata file for {file}"))
            })?
        } else {
            record.sha256.clone()
        };
        let url = Url::parse(&url).map_err(|e| PythonError::Upstream {
            status: 502,
            message: format!(
                "the upstream file URL {:?} is invalid: {e}",
                redact::capped(&url)
            ),
        })?;
        Ok((url, digest, record.name))
    }

    async fn cached_or_fill(
        &self,
        repo: &Repository,
        sha256: &str,
        filename: &str,
    ) -> Result<(Cached, String), PythonError> {
        let target = self.target(repo)?;
        let blocked = self.origin_blocked(&target).await?;
        let (url, hex, project_name) = self.source(&target, sha256, filename).await?;
        let digest = sha256_digest(&hex)?;
        // Only what this repository fetched and verified itself: identical
        // bytes stored for another repository prove nothing about this one's
        // upstream (dedup of storage, never of authorization).
        if let Some(size) = self.store.remote_blob_size(&target.ids, &digest).await? {
            self.metrics.hit(ContentKind::Blob);
            return Ok((Cached::Committed(size), hex));
        }
        if blocked {
            return Err(PythonError::Blocked(format!(
                "the registry access policy blocks the upstream {} and {filename} is not cached",
                target.upstream.host()
            )));
        }
        if !matches!(url.scheme(), "http" | "https") {
            // Not a host for the access policy to allow: a broken page.
            return Err(PythonError::Upstream {
                status: 502,
                message: format!(
                    "the upstream page links {filename} with a non-http(s) URL (scheme {}); entrepot fetches files over http and https only",
                    url.scheme()
                ),
            });
        }
        let credentials = target.credentials_for(&url);
        let client = self.client.clone();
        let metrics = self.metrics.clone();
        let what = filename.to_owned();
        let open = move || {
            async move {
                metrics.upstream_request();
                let request = UpstreamRequest::get(url);
                let host = request.url.host_str().unwrap_or("upstream").to_owned();
                let response = send_refreshing(&client, &request, credentials.as_ref())
                    .await
                    .map_err(|e| FillError::Upstream {
                        status: match e {
                            UpstreamError::Unreachable { .. } => 503,
                            UpstreamError::Unauthorized(_) | UpstreamError::Credentials(_) => 401,
                            UpstreamError::Blocked(_) => 403,
                            _ => 502,
                        },
                        message: e.to_string(),
                        retry_after: None,
                    })?;
                match response.status() {
                    StatusCode::OK => Ok(UpstreamBody {
                        length: response.content_length(),
                        body: response.bytes_stream().map_err(std::io::Error::other).boxed(),
                    }),
                    StatusCode::NOT_FOUND | StatusCode::GONE => Err(FillError::NotFound(format!(
                        "{what} is not at the upstream {host}"
                    ))),
                    StatusCode::FORBIDDEN => Err(FillError::Upstream {
                        status: 403,
                        message: format!(
                            "the upstream {host} refused access to {what} (HTTP 403); check the repository's upstream credentials"
                        ),
                        retry_after: None,
                    }),
                    s => Err(FillError::Upstream {
                        status: if s.is_server_error() { 503 } else { 502 },
                        message: format!("the upstream {host} answered HTTP {} for {what}", s.as_u16()),
                        retry_after: None,
                    }),
                }
            }
            .boxed()
        };
        let after_commit = {
            let (store, blobs, scratch, views) = (
                self.store.clone(),
                self.blobs.clone(),
                self.scratch.clone(),
                self.views.clone(),
            );
            let (ids, sha256, filename) = (target.ids.clone(), hex.clone(), filename.to_owned());
            let digest = digest.clone();
            move || {
                async move {
                    // Verified from this repository's upstream: it may serve it.
                    let linked = match blobs.stat(&digest).await {
                        Ok(Some(size)) => store
                            .link_remote_blob(&ids, &digest, size)
                            .await
                            .map_err(|e| e.to_string()),
                        Ok(None) => Ok(()),
                        Err(e) => Err(e.to_string()),
                    };
                    if let Err(e) = linked {
                        tracing::warn!(file = %filename, error = %e, "could not link a cached file");
                    }
                    if filename.ends_with(".whl") {
                        if let Err(e) = extract_wheel_metadata(
                            store, blobs, &scratch, &ids, &sha256, &filename,
                        )
                        .await
                        {
                            tracing::warn!(file = %filename, error = %e, "could not extract the metadata of a cached wheel");
                        }
                    }
                    // The page now lists the file's size (and extracted metadata).
                    views.invalidate(&ids, &project_name);
                }
                .boxed()
            }
        };
        let linked = async {
            self.store
                .remote_blob_size(&target.ids, &digest)
                .await
                .map_err(|e| FillError::Storage(e.to_string()))
        };
        let cached = self
            .fills
            .get_or_start(&target.name, &digest, linked, open, after_commit)
            .await
            .map_err(fill_error)?;
        Ok((cached, hex))
    }

    /// A file, from the cache or from the download under way (started if
    /// none is).
    pub async fn file(
        &self,
        repo: &Repository,
        sha256: &str,
        filename: &str,
    ) -> Result<LocatedFile, PythonError> {
        match self.cached_or_fill(repo, sha256, filename).await? {
            (Cached::Committed(size), hex) => Ok(LocatedFile::stored(
                self.blobs.clone(),
                sha256_digest(&hex)?,
                size,
            )),
            (Cached::Filling(fill), _) => {
                fill.opened().await.map_err(fill_error)?;
                let size = fill.size().await.map_err(fill_error)?;
                Ok(LocatedFile::filling(fill, size))
            }
        }
    }
}

/// Send a request; on a 403 to configured credentials, read them afresh and
/// try once more. Python indexes (pypiserver, PyPI) answer 403, not 401, to a
/// token that is no longer valid, so this is how a rotated token is picked up
/// at once rather than when the cached one expires.
async fn send_refreshing(
    client: &UpstreamClient,
    request: &UpstreamRequest,
    credentials: &dyn CredentialSource,
) -> Result<entrepot_upstream::UpstreamResponse, UpstreamError> {
    let response = client.send(request, credentials).await?;
    if response.status() == StatusCode::FORBIDDEN && credentials.credentials(false).await?.is_some()
    {
        credentials.credentials(true).await?;
        return client.send(request, credentials).await;
    }
    Ok(response)
}

/// Copy a cached wheel aside, extract its `METADATA`, store it as a blob and
/// record it, so the simple API can offer it (PEP 658).
async fn extract_wheel_metadata(
    store: Arc<dyn PythonStore>,
    blobs: Arc<dyn BlobStore>,
    scratch: &Path,
    ids: &PythonRepo,
    sha256: &str,
    filename: &str,
) -> Result<(), PythonError> {
    let storage = |e: std::io::Error| PythonError::Storage(e.to_string());
    let path = scratch.join(uuid::Uuid::new_v4().to_string());
    let result = async {
        let mut body = blobs.read(&sha256_digest(sha256)?, None).await?;
        let mut file = tokio::fs::File::create(&path).await.map_err(storage)?;
        while let Some(chunk) = body.next().await {
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk.map_err(storage)?)
                .await
                .map_err(storage)?;
        }
        // tokio writes in the background: without a flush the last chunk may
        // not be in the file yet when the archive is opened.
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(storage)?;
        drop(file);
        let wheel = path.clone();
        let metadata =
            tokio::task::spawn_blocking(move || extract_metadata(&wheel, DistKind::Wheel))
                .await
                .map_err(|e| PythonError::Storage(e.to_string()))?
                .map_err(|e| PythonError::Invalid(e.to_string()))?;
        let digest = entrepot_domain::Digest::of(&metadata);
        let size = metadata.len() as u64;
        let body = futures::stream::once(async move { Ok(bytes::Bytes::from(metadata)) }).boxed();
        blobs.put_blob(&digest, body, None).await?;
        // Extracted from a file this repository verified: its to serve.
        store.link_remote_blob(ids, &digest, size).await?;
        store
            .set_remote_metadata(ids, sha256, filename, digest.hex())
            .await?;
        Ok(())
    }
    .await;
    let _ = tokio::fs::remove_file(&path).await;
    result
}
