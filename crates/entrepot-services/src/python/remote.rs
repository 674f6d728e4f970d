//! Remote Python repositories: a pull-through cache of a simple index, on the
//! format-agnostic [`RemoteCache`] with the Python rules of [`PythonFormat`].
//!
//! Index pages are mutable: parsed when fetched (a project page is kept as
//! its typed record, see `page_record`; the project list as the
//! upstream sent it), answered from the cache within the freshness window,
//! and served stale when the upstream fails.
//! Files are immutable: named by the sha256 the index gave, fetched once through
//! the fill engine, verified, kept. What is Python's own here: parsed pages
//! kept in memory, and where each file of a page comes from.

use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use entrepot_domain::cooldown::{ReleaseAgePolicy, ReleaseAgeRules};
use entrepot_domain::upstream::PythonUpstream;
use entrepot_domain::{Repository, RepositoryName};
use entrepot_storage::{
    BlobStore, CachedIndexPage, ImageRef, PythonStore, RemoteFileRecord, PYTHON_FILES_IMAGE,
};
use entrepot_upstream::UpstreamTransport;
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt};
use url::Url;

use super::answered::CacheReport;
use super::cooldown;
use super::dist::{extract_metadata, normalize, parse_filename, DistKind};
use super::format::{page_url, FetchedPage, IndexedFile, Parsed, PythonFormat};
use super::index::{self, PageMeta, ProjectPage, ServedPage};
use super::page_record::{self, RECORD_CONTENT_TYPE};
use super::page_views::{PageView, PageViews};
use super::{file_path, sha256_digest, LocatedFile, PythonError};
use crate::clock::{Clock, SystemClock};
use crate::eviction::pulls::PullTracker;
use crate::keyed_cache::KeyedCache;
use crate::metrics::{ContentKind, Metrics};
use crate::remote::fill::{Cached, Committed, Fills};
use crate::remote::freshness::is_fresh;
use crate::remote::{
    Answer, CacheStatus, CachedCopy, RemoteCache, SecretReader, UpstreamFailure, UpstreamReport,
};

mod refresh;

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

impl Freshness {
    /// What `X-Cache` (and `Age`) say of a page of this freshness fetched
    /// at `fetched_at`. A page fetched again byte for byte the same is
    /// the cached copy confirmed current: revalidated.
    fn report(self, fetched_at: i64, now: i64) -> CacheReport {
        match self {
            Freshness::Fetched => CacheReport::fresh(CacheStatus::Miss),
            Freshness::Unchanged => CacheReport::fresh(CacheStatus::Revalidated),
            Freshness::Cached => CacheReport::fresh(CacheStatus::Hit),
            Freshness::Stale => CacheReport::stale(fetched_at, now),
        }
    }
}

/// How a page is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// To serve it: from the cache within its freshness window, stale when
    /// the upstream fails.
    Serve,
    /// `repositories refresh`: from the upstream now, whatever the window;
    /// a failure is the caller's to report, nothing is served stale.
    Upstream,
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

/// A remote repository's upstream, with the repository's store ids.
struct Target {
    remote: crate::remote::Target<PythonUpstream>,
    ids: RepositoryName,
}

impl Deref for Target {
    type Target = crate::remote::Target<PythonUpstream>;

    fn deref(&self) -> &Self::Target {
        &self.remote
    }
}

/// The remote Python cache.
pub struct RemotePython {
    store: Arc<dyn PythonStore>,
    blobs: Arc<dyn BlobStore>,
    remote: RemoteCache<PythonFormat>,
    scratch: PathBuf,
    views: Arc<PageViews>,
    /// Project lists by `(project, repository)`: PyPI's is ~600,000 names,
    /// seconds of CPU to parse, so it is parsed once per upstream fetch.
    lists: KeyedCache<RepositoryName, Arc<ListView>>,
    /// Origins of pages being written in the background, by page.
    pending: Arc<Mutex<HashMap<PageKey, (u64, PendingWrite)>>>,
    next_write: AtomicU64,
    clock: Arc<dyn Clock>,
    /// Project pages as served under a minimum release age, directly
    /// (`false`) or through a virtual repository (`true`).
    held_back: KeyedCache<(RepositoryName, String, bool), Arc<HeldBackView>>,
    /// Downloads of cached files, for eviction's order.
    pulls: Option<Arc<PullTracker>>,
}

/// The release-age rules of a remote repository's content: its own policy
/// and, read through a virtual repository, that one's (`through`).
fn release_rules(repo: &Repository, through: Option<&ReleaseAgePolicy>) -> ReleaseAgeRules {
    ReleaseAgeRules::new(
        repo.remote_repository_config
            .as_ref()
            .map(|c| &c.release_age)
            .into_iter()
            .chain(through),
    )
}

/// `(project id, repository id, normalised project name)`.
type PageKey = (RepositoryName, String);

/// A background write of a page's file origins; its error as text.
type PendingWrite = Shared<BoxFuture<'static, Result<(), String>>>;

/// File origins written per transaction.
const ORIGINS_PER_TRANSACTION: usize = 20_000;

impl RemotePython {
    /// A remote cache over the given stores, fills and upstream client;
    /// `scratch` (created, emptied) holds cached wheels while their metadata is
    /// extracted.
    pub fn new(
        store: Arc<dyn PythonStore>,
        blobs: Arc<dyn BlobStore>,
        fills: Fills,
        client: Arc<dyn UpstreamTransport>,
        metrics: Arc<Metrics>,
        secrets: Arc<dyn SecretReader>,
        scratch: PathBuf,
    ) -> std::io::Result<Self> {
        crate::workdir::fresh_dir(&scratch)?;
        let format = PythonFormat::new(metrics.clone(), index::DEFAULT_MAX_PAGE_FILES);
        Ok(Self {
            store,
            blobs,
            remote: RemoteCache::new(format, client, fills, metrics, secrets),
            scratch,
            views: Arc::default(),
            lists: KeyedCache::new(),
            pending: Arc::default(),
            next_write: AtomicU64::new(0),
            clock: Arc::new(SystemClock),
            pulls: None,
            held_back: KeyedCache::new(),
        })
    }

    /// The same cache reading time from `clock`, which decides whether a
    /// cached page is still fresh.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
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

    /// Forget the served pages kept of `repo`'s projects (every
    /// repository's with `None`): another server cached files of it.
    pub fn forget_pages(&self, repo: Option<&RepositoryName>) {
        self.views.invalidate_repository(repo);
    }

    /// Record each download of a file in `pulls` (eviction removes the
    /// least recently downloaded first), and wake it when a file was cached.
    pub fn with_pull_tracker(mut self, pulls: Arc<PullTracker>) -> Self {
        self.pulls = Some(pulls);
        self
    }

    /// Refuse upstream project pages listing more than `max` files (default
    /// [`index::DEFAULT_MAX_PAGE_FILES`]).
    pub fn with_max_page_files(mut self, max: usize) -> Self {
        self.remote.format_mut().set_max_page_files(max);
        self
    }

    fn metrics(&self) -> &Metrics {
        self.remote.metrics()
    }

    fn target(&self, repo: &Repository) -> Result<Target, PythonError> {
        let mut remote = self.remote.target(repo)?;
        // Index pages are this format's mutable documents: the engine keeps
        // them fresh for the tag window, which for Python is its own setting.
        remote.config.tag_ttl_secs = remote.config.index_ttl_secs();
        Ok(Target {
            remote,
            ids: repo.repository_name()?,
        })
    }

    /// An index page (`name` normalised; `""` is the project list), from the
    /// cache when fresh, else from the upstream; stale when the upstream fails.
    /// With a page just fetched, also what it parsed to and its storing,
    /// under way while the caller builds its answer (see [`Stored`]).
    async fn page(
        &self,
        target: &Target,
        name: &str,
        ask: Ask,
    ) -> Result<(Url, CachedIndexPage, Freshness, Option<Parsed>, Stored), PythonError> {
        let url = page_url(target, name)?;
        let guard = self.remote.lock(&target.remote, name).await;
        let gate = self.remote.gate(target).await?;
        let cached = self
            .store
            .index_page(&target.ids, name)
            .await?
            .map(|page| CachedCopy {
                checked_at: page.fetched_at,
                digest: None,
                copy: page,
            });
        let now = self.clock.now_unix();
        let document = name.to_owned();
        let answer = match ask {
            Ask::Serve => {
                self.remote
                    .document(target, &gate, &document, cached, now)
                    .await?
            }
            Ask::Upstream => {
                self.remote
                    .revalidate(target, &gate, &document, cached)
                    .await?
            }
        };
        let (fetched, previous) = match answer {
            Answer::Cached { copy, stale } => {
                let freshness = if stale {
                    Freshness::Stale
                } else {
                    Freshness::Cached
                };
                // Under the page's lock: no fetch replaces the row meanwhile.
                let (copy, parsed) = self.upgrade_stored(target, &url, name, copy).await?;
                return Ok((url, copy, freshness, parsed, Stored(None)));
            }
            // Pages are not revalidated by HEAD.
            Answer::Confirmed(copy) => {
                return Ok((url, copy, Freshness::Unchanged, None, Stored(None)));
            }
            Answer::Fetched { valid, previous } => (valid, previous),
        };
        let FetchedPage {
            content_type,
            content,
            parsed,
        } = fetched;
        // A project page is stored as its typed record, not as the bytes
        // the upstream sent: serving it never parses them again.
        let (content_type, content, parsed) = match parsed {
            Parsed::Project(page, meta) => {
                let (record, parsed) = encode_record(page, meta).await?;
                (RECORD_CONTENT_TYPE.to_owned(), record, parsed)
            }
            list => (content_type, content, list),
        };
        let unchanged = previous
            .as_ref()
            .is_some_and(|c| c.content_type == content_type && c.content == content);
        let page = CachedIndexPage {
            content_type,
            content,
            fetched_at: now,
        };
        // Stored while the caller builds its answer (a page of 57 MB takes a
        // second to write); the page's lock is held until it is stored, so no
        // other request fetches it meanwhile.
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

    /// A stored project page as a record: a row written by an older version
    /// holds the upstream's bytes, which are parsed once here and rewritten
    /// as the record (with the same fetch time, so its freshness is the
    /// same). What the old row parsed to comes back, so it is not read again.
    async fn upgrade_stored(
        &self,
        target: &Target,
        url: &Url,
        name: &str,
        copy: CachedIndexPage,
    ) -> Result<(CachedIndexPage, Option<Parsed>), PythonError> {
        if name.is_empty() || page_record::is_record(&copy.content_type) {
            return Ok((copy, None));
        }
        let CachedIndexPage {
            content_type,
            content,
            fetched_at,
        } = copy;
        let (content, parsed) = self
            .remote
            .format()
            .parse(content_type.clone(), content, url.clone(), name.to_owned())
            .await;
        let (record, parsed) = match parsed {
            Ok(Parsed::Project(page, meta)) => encode_record(page, meta).await?,
            // Not a project page's parse: left as it is.
            Ok(list @ Parsed::List(_)) => {
                let copy = CachedIndexPage {
                    content_type,
                    content,
                    fetched_at,
                };
                return Ok((copy, Some(list)));
            }
            Err(e) => return Err(unusable(target, e)),
        };
        let upgraded = CachedIndexPage {
            content_type: RECORD_CONTENT_TYPE.to_owned(),
            content: record,
            fetched_at,
        };
        if let Err(e) = self
            .store
            .put_index_page(&target.ids, name, &upgraded)
            .await
        {
            // Served all the same; parsed again next time.
            tracing::warn!(project = %name, error = %e, "rewriting a stored index page as a record failed");
        }
        Ok((upgraded, Some(parsed)))
    }

    /// Check reachability and credentials of a repository's upstream index
    /// (a HEAD of the index URL: PyPI's project list is tens of megabytes).
    pub async fn test_upstream(
        &self,
        repo: &Repository,
    ) -> Result<UpstreamReport, UpstreamFailure> {
        self.remote.test_upstream(repo).await
    }

    /// The upstream's project list (normalised names), parsed once per
    /// upstream fetch.
    pub async fn project_list(&self, repo: &Repository) -> Result<Arc<Vec<String>>, PythonError> {
        Ok(self.project_list_answered(repo).await?.0)
    }

    /// [`Self::project_list`], and how the cache answered.
    pub async fn project_list_answered(
        &self,
        repo: &Repository,
    ) -> Result<(Arc<Vec<String>>, CacheReport), PythonError> {
        let target = self.target(repo)?;
        // The access policy is asked on every request, before any list is served.
        self.remote.gate(&target).await?;
        let key = target.ids.clone();
        let kept = self.lists.get_if(&key, |v| {
            v.index_url == target.upstream.index_url().as_str()
        });
        if let Some(view) = &kept {
            if is_fresh(
                view.fetched_at,
                self.clock.now_unix(),
                target.config.tag_ttl_secs,
            ) {
                self.metrics().hit(ContentKind::Tag);
                return Ok((view.names.clone(), CacheReport::fresh(CacheStatus::Hit)));
            }
        }
        let (url, page, freshness, parsed, stored) = self.page(&target, "", Ask::Serve).await?;
        let report = freshness.report(page.fetched_at, self.clock.now_unix());
        stored.wait().await?;
        let names = match (parsed, kept) {
            (Some(Parsed::List(names)), _) => names,
            // The stored list is the one already parsed (served stale).
            (_, Some(view)) if view.fetched_at == page.fetched_at => view.names.clone(),
            _ => {
                let (_, parsed) = self
                    .remote
                    .format()
                    .parse(page.content_type, page.content, url, String::new())
                    .await;
                match parsed {
                    Ok(Parsed::List(names)) => names,
                    Ok(Parsed::Project(..)) => Arc::default(),
                    Err(e) => return Err(unusable(&target, e)),
                }
            }
        };
        self.lists.insert(
            key,
            Arc::new(ListView {
                index_url: target.upstream.index_url().to_string(),
                fetched_at: page.fetched_at,
                names: names.clone(),
            }),
        );
        Ok((names, report))
    }

    /// A project's page, with file links pointing at entrepot, without the
    /// files the repository's minimum release age holds back (see
    /// [`super::cooldown`]). Files the upstream gives no sha256 for are left
    /// out (see `build_page`).
    pub async fn project_page(
        &self,
        repo: &Repository,
        name: &str,
    ) -> Result<Arc<ServedPage>, PythonError> {
        Ok(self.project_page_answered(repo, name).await?.0)
    }

    /// [`Self::project_page`], and how the cache answered.
    pub async fn project_page_answered(
        &self,
        repo: &Repository,
        name: &str,
    ) -> Result<(Arc<ServedPage>, CacheReport), PythonError> {
        self.project_page_answered_through(repo, name, None).await
    }

    /// A project's page as [`Self::project_page`] serves it, read through a
    /// virtual repository whose own release-age policy is `through`: held
    /// back by both policies (the stricter rule wins).
    pub async fn project_page_through(
        &self,
        repo: &Repository,
        name: &str,
        through: Option<&ReleaseAgePolicy>,
    ) -> Result<Arc<ServedPage>, PythonError> {
        Ok(self
            .project_page_answered_through(repo, name, through)
            .await?
            .0)
    }

    /// [`Self::project_page_through`], and how the cache answered.
    pub async fn project_page_answered_through(
        &self,
        repo: &Repository,
        name: &str,
        through: Option<&ReleaseAgePolicy>,
    ) -> Result<(Arc<ServedPage>, CacheReport), PythonError> {
        let (page, report) = self.upstream_page_answered(repo, name, Ask::Serve).await?;
        let policy = release_rules(repo, through);
        if !policy.is_active() {
            return Ok((page, report));
        }
        let now = self.clock.now_unix();
        let key = (repo.repository_name()?, normalize(name), through.is_some());
        let kept = self.held_back.get_if(&key, |v| {
            Arc::ptr_eq(&v.source, &page)
                && v.policy == policy
                && v.changes_at.is_none_or(|at| now < at)
        });
        if let Some(view) = kept {
            return Ok((view.page.clone(), report));
        }
        let held = cooldown::hold_back(&policy, page.page(), now);
        let served = match held.page {
            Some(p) => Arc::new(ServedPage::new(p)),
            None => page.clone(),
        };
        self.held_back.insert(
            key,
            Arc::new(HeldBackView {
                source: page,
                policy,
                changes_at: held.changes_at,
                page: served.clone(),
            }),
        );
        Ok((served, report))
    }

    /// A project's page as the upstream lists it, with file links pointing
    /// at entrepot; the minimum release age is not applied.
    pub async fn upstream_page(
        &self,
        repo: &Repository,
        name: &str,
    ) -> Result<Arc<ServedPage>, PythonError> {
        Ok(self.upstream_page_answered(repo, name, Ask::Serve).await?.0)
    }

    /// [`Self::upstream_page`], and how the cache answered.
    async fn upstream_page_answered(
        &self,
        repo: &Repository,
        name: &str,
        ask: Ask,
    ) -> Result<(Arc<ServedPage>, CacheReport), PythonError> {
        let target = self.target(repo)?;
        let name = normalize(name);
        // The access policy is asked on every request, before any view is served.
        self.remote.gate(&target).await?;
        if let Some(view) = self
            .views
            .get(&target.ids, &name)
            .filter(|_| ask == Ask::Serve)
        {
            if view.index_url == target.upstream.index_url().as_str()
                && is_fresh(
                    view.fetched_at,
                    self.clock.now_unix(),
                    target.config.tag_ttl_secs,
                )
            {
                self.metrics().hit(ContentKind::Tag);
                return Ok((view.page.clone(), CacheReport::fresh(CacheStatus::Hit)));
            }
        }
        let generation = self.views.generation();
        let (url, cached, freshness, parsed, stored) = self.page(&target, &name, ask).await?;
        let (fetched_at, weight) = (cached.fetched_at, cached.content.len());
        let report = freshness.report(fetched_at, self.clock.now_unix());
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
                index_url: target.upstream.index_url().to_string(),
                fetched_at,
                page: page.clone(),
                weight,
            };
            self.views
                .offer(generation, &target.ids, &name, Arc::new(view));
        }
        Ok((page, report))
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
            Some(parsed) => parsed,
            None => self.parse_stored(target, name, url, cached).await?,
        };
        let mut page = match parsed {
            Parsed::Project(page, _) => page,
            Parsed::List(_) => ProjectPage::default(),
        };
        page.name = name.to_owned();
        // Files are served at `files/{sha256}/...` and recorded by it, so a
        // file without one (no hash, or only a sha512) cannot be named, and is
        // left out rather than served unverified. The fill engine could check
        // a sha512; naming such files is what is missing.
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
            // A metadata file is named by its sha256 too.
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
        let key = (target.ids.clone(), name.to_owned());
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

    /// What a stored page holds: its record decoded, or (a row written by
    /// an older version) the upstream's bytes parsed.
    async fn parse_stored(
        &self,
        target: &Target,
        name: &str,
        url: &Url,
        cached: CachedIndexPage,
    ) -> Result<Parsed, PythonError> {
        if page_record::is_record(&cached.content_type) {
            let record = cached.content;
            let decoded = tokio::task::spawn_blocking(move || page_record::decode(&record))
                .await
                .map_err(|e| PythonError::Storage(format!("reading the page failed: {e}")))?;
            return match decoded {
                Ok((page, meta)) => Ok(Parsed::Project(page, meta)),
                Err(e) => Err(UpstreamFailure::InvalidResponse {
                    host: target.host(),
                    detail: e.to_string(),
                }
                .into()),
            };
        }
        self.remote
            .format()
            .parse(
                cached.content_type,
                cached.content,
                url.clone(),
                name.to_owned(),
            )
            .await
            .1
            .map_err(|e| unusable(target, e))
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
                tracing::warn!(project = %task_key.1, error = %e, "recording where the files of an index page come from failed");
                // Rebuilt on the next request, which writes them again.
                views.invalidate(&ids, &task_key.1);
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
    async fn origins_written(&self, ids: &RepositoryName) -> Result<(), PythonError> {
        let writes: Vec<PendingWrite> = self
            .pending_origins()
            .iter()
            .filter(|((repository, _), _)| repository == ids)
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
    /// entrepot extracted from wheels and sdists it has cached.
    async fn add_extracted_metadata(
        &self,
        ids: &RepositoryName,
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

    /// Where a file (or its `.metadata`) comes from and its sha256, and the
    /// project whose page lists it.
    async fn source(
        &self,
        target: &Target,
        sha256: &str,
        filename: &str,
    ) -> Result<(IndexedFile, String), PythonError> {
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
        let indexed = if metadata {
            IndexedFile {
                url: format!("{}.metadata", record.url),
                sha256: record.metadata_sha256.clone().ok_or_else(|| {
                    PythonError::NotFound(format!("the upstream has no metadata file for {file}"))
                })?,
                filename: filename.to_owned(),
            }
        } else {
            IndexedFile {
                url: record.url.clone(),
                sha256: record.sha256.clone(),
                filename: filename.to_owned(),
            }
        };
        Ok((indexed, record.name))
    }

    /// A file, from the cache or from the download under way (started if
    /// none is).
    pub async fn file(
        &self,
        repo: &Repository,
        sha256: &str,
        filename: &str,
    ) -> Result<LocatedFile, PythonError> {
        self.file_through(repo, sha256, filename, None).await
    }

    /// A file as [`Self::file`] serves it, read through a virtual
    /// repository whose own release-age policy is `through`: refused if
    /// either policy holds it back.
    pub async fn file_through(
        &self,
        repo: &Repository,
        sha256: &str,
        filename: &str,
        through: Option<&ReleaseAgePolicy>,
    ) -> Result<LocatedFile, PythonError> {
        let target = self.target(repo)?;
        let gate = self.remote.gate(&target).await?;
        let (file, project_name) = self.source(&target, sha256, filename).await?;
        self.refuse_held_back(repo, through, &project_name, sha256, filename)
            .await?;
        let digest = sha256_digest(&file.sha256)?;
        if let Some(pulls) = &self.pulls {
            let image = ImageRef {
                project: target.ids.project.to_string(),
                repository: target.ids.repository.to_string(),
                image: PYTHON_FILES_IMAGE.to_owned(),
            };
            pulls.record(&image, &digest);
        }
        // Only what this repository fetched and verified itself: identical
        // bytes stored for another repository prove nothing about this one's
        // upstream (dedup of storage, never of authorization).
        if let Some(size) = self.store.remote_blob_size(&target.ids, &digest).await? {
            self.metrics().hit(ContentKind::Blob);
            return Ok(
                LocatedFile::stored(self.blobs.clone(), digest, size).with_cache(CacheStatus::Hit)
            );
        }
        let after_commit = {
            let (store, blobs, scratch, views, pulls) = (
                self.store.clone(),
                self.blobs.clone(),
                self.scratch.clone(),
                self.views.clone(),
                self.pulls.clone(),
            );
            let repository = target.repository.clone();
            let (ids, sha256, filename) =
                (target.ids.clone(), file.sha256.clone(), filename.to_owned());
            move |committed: Committed| {
                async move {
                    // Verified from this repository's upstream: it may serve it.
                    if let Err(e) = store
                        .link_remote_blob(&ids, &committed.digest, committed.size)
                        .await
                    {
                        tracing::warn!(file = %filename, error = %e, "could not link a cached file");
                    }
                    // Wheels and sdists alike (PKG-INFO is the sdist's core
                    // metadata), so installers resolve without downloading either.
                    if let Ok(dist) = parse_filename(&filename) {
                        if let Err(e) = extract_cached_metadata(
                            store, blobs, &scratch, &ids, &sha256, &filename, dist.kind,
                        )
                        .await
                        {
                            tracing::warn!(file = %filename, error = %e, "could not extract the metadata of a cached distribution");
                        }
                    }
                    // The page now lists the file's size (and extracted metadata).
                    views.invalidate(&ids, &project_name);
                    // The cache grew: weigh it against its cap.
                    if let Some(pulls) = pulls {
                        pulls.filled(&repository);
                    }
                }
                .boxed()
            }
        };
        let linked = async {
            let size = self
                .store
                .remote_blob_size(&target.ids, &digest)
                .await
                .map_err(UpstreamFailure::storage)?;
            Ok(size.map(|size| Committed {
                digest: digest.clone(),
                size,
            }))
        };
        match self
            .remote
            .content(&target, &gate, &file, linked, after_commit)
            .await?
        {
            // Committed by a fill that ran for this request, or by one that
            // finished meanwhile: fetched, as OCI blobs say it.
            Cached::Committed(c) => Ok(LocatedFile::stored(self.blobs.clone(), c.digest, c.size)
                .with_cache(CacheStatus::Miss)),
            Cached::Filling(fill) => {
                fill.opened().await?;
                let size = fill.size().await?;
                Ok(LocatedFile::filling(fill, size).with_cache(CacheStatus::Miss))
            }
        }
    }
}

impl RemotePython {
    /// Refuse a file (or its `.metadata`) the repository's minimum release
    /// age holds back, saying when it becomes available. Its upload time is
    /// read from the project's current page.
    async fn refuse_held_back(
        &self,
        repo: &Repository,
        through: Option<&ReleaseAgePolicy>,
        project: &str,
        sha256: &str,
        filename: &str,
    ) -> Result<(), PythonError> {
        let policy = release_rules(repo, through);
        if !policy.is_active() {
            return Ok(());
        }
        let policy = &policy;
        let dist = filename.strip_suffix(".metadata").unwrap_or(filename);
        let page = self.upstream_page(repo, project).await?;
        let now = self.clock.now_unix();
        let verdict = match page
            .page()
            .files
            .iter()
            .find(|f| f.filename == dist && f.hashes.get("sha256").is_some_and(|h| h == sha256))
        {
            Some(f) => cooldown::file_verdict(policy, project, f, now),
            // No longer on the upstream's page: its upload time is unknown.
            None => policy.verdict(project, super::dist::version_of(dist), None, now),
        };
        match verdict.reason(dist) {
            None => Ok(()),
            Some(reason) => Err(PythonError::HeldBack(reason)),
        }
    }
}

/// A project page as served under a minimum release age, and what it was
/// built from: valid while the upstream page and the policy are the same,
/// until the first held-back file becomes available.
struct HeldBackView {
    source: Arc<ServedPage>,
    policy: ReleaseAgeRules,
    changes_at: Option<i64>,
    page: Arc<ServedPage>,
}

/// The stored record of a project page, encoded off the async runtime (a
/// page may list hundreds of thousands of files), and the page back.
async fn encode_record(
    page: ProjectPage,
    meta: PageMeta,
) -> Result<(Vec<u8>, Parsed), PythonError> {
    tokio::task::spawn_blocking(move || {
        let record = page_record::encode(&page, &meta);
        (record, Parsed::Project(page, meta))
    })
    .await
    .map_err(|e| PythonError::Storage(format!("recording the page failed: {e}")))
}

/// A stored page that no longer parses (a parser change): the upstream's page
/// is unusable until it is fetched again.
fn unusable(target: &Target, e: index::PageError) -> PythonError {
    UpstreamFailure::InvalidResponse {
        host: target.host(),
        detail: e.to_string(),
    }
    .into()
}

/// Copy a cached distribution aside, extract its core metadata (a wheel's
/// `METADATA`, an sdist's `PKG-INFO`), store it as a blob and record it, so
/// the simple API can offer it (PEP 658).
async fn extract_cached_metadata(
    store: Arc<dyn PythonStore>,
    blobs: Arc<dyn BlobStore>,
    scratch: &Path,
    ids: &RepositoryName,
    sha256: &str,
    filename: &str,
    kind: DistKind,
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
        let dist = path.clone();
        let metadata = tokio::task::spawn_blocking(move || extract_metadata(&dist, kind))
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

#[cfg(test)]
mod tests {
    //! The races of a cold file, against a scripted upstream index: each
    //! step of a download happens when the test says so.

    use super::*;
    use crate::remote::scripted::{
        content, read_at_least, read_rest, Fixture, Reply, ScriptedUpstream,
    };
    use crate::remote::NoSecretReader;
    use entrepot_domain::{ByteRange, Digest, Format};
    use entrepot_storage::ByteStream;

    const FILE: &str = "pkg-1.0.tar.gz";
    const FETCH: &str = "GET /files/pkg-1.0.tar.gz";

    struct Setup {
        remote: RemotePython,
        upstream: Arc<ScriptedUpstream>,
        fixture: Fixture,
        sha256: String,
    }

    /// A remote repository whose upstream page of `pkg` lists one file,
    /// named by the sha256 of [`content`]; the page has been served.
    async fn setup() -> Setup {
        let mut fixture = Fixture::new(Format::Python, "http://127.0.0.1:5000/simple/").await;
        let upstream = Arc::new(ScriptedUpstream::default());
        let remote = RemotePython::new(
            fixture.stores.python.clone(),
            fixture.blobs.clone(),
            fixture.fills.take().unwrap(),
            upstream.clone(),
            fixture.metrics.clone(),
            Arc::new(NoSecretReader),
            fixture.dir.path().join("scratch"),
        )
        .unwrap();
        let sha256 = Digest::of(&content()).hex().to_owned();
        let page = serde_json::json!({
            "meta": { "api-version": "1.0" },
            "name": "pkg",
            "files": [{
                "filename": FILE,
                "url": format!("http://127.0.0.1:5000/files/{FILE}"),
                "hashes": { "sha256": sha256 },
            }],
        });
        upstream.answer(
            "GET /simple/pkg/",
            Reply::ok(page.to_string())
                .header("content-type", "application/vnd.pypi.simple.v1+json"),
        );
        remote.project_page(&fixture.repo, "pkg").await.unwrap();
        Setup {
            remote,
            upstream,
            fixture,
            sha256,
        }
    }

    impl Setup {
        async fn body(&self, range: Option<ByteRange>) -> ByteStream {
            self.remote
                .file(&self.fixture.repo, &self.sha256, FILE)
                .await
                .unwrap()
                .open(range)
                .await
                .unwrap()
                .body
        }

        async fn linked(&self) -> Option<u64> {
            let digest = sha256_digest(&self.sha256).unwrap();
            self.fixture
                .stores
                .python
                .remote_blob_size(&self.fixture.repo.repository_name().unwrap(), &digest)
                .await
                .unwrap()
        }
    }

    /// A cache over the same stores and upstream, with nothing in memory
    /// (as another process, or this one after a restart).
    fn another_process(s: &Setup, tag: &str) -> RemotePython {
        let dir = s.fixture.dir.path();
        let fills = crate::remote::fill::Fills::new(
            dir.join(format!("spool-{tag}")),
            s.fixture.blobs.clone(),
            s.fixture.metrics.clone(),
        )
        .unwrap();
        RemotePython::new(
            s.fixture.stores.python.clone(),
            s.fixture.blobs.clone(),
            fills,
            s.upstream.clone(),
            s.fixture.metrics.clone(),
            Arc::new(NoSecretReader),
            dir.join(format!("scratch-{tag}")),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_page_stored_as_the_upstream_sent_it_is_parsed_once_and_rewritten_as_a_record() {
        let s = setup().await;
        let ids = s.fixture.repo.repository_name().unwrap();
        let python = &s.fixture.stores.python;
        // What the upstream's page became, as this version stores it.
        let record = python.index_page(&ids, "pkg").await.unwrap().unwrap();
        assert_eq!(record.content_type, RECORD_CONTENT_TYPE);
        let first = s.remote.project_page(&s.fixture.repo, "pkg").await.unwrap();

        // A row of an older version: the upstream's bytes, fetched just now.
        let html = format!(
            "<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"></head><body><a href=\"../../files/{FILE}#sha256={}\" data-requires-python=\"&gt;=3.9\">{FILE}</a></body></html>",
            s.sha256
        );
        let legacy = CachedIndexPage {
            content_type: "text/html".into(),
            content: html.into_bytes(),
            fetched_at: SystemClock.now_unix(),
        };
        python
            .put_index_page(&ids, "legacy", &legacy)
            .await
            .unwrap();
        let remote = another_process(&s, "2");
        let page = remote
            .project_page(&s.fixture.repo, "legacy")
            .await
            .unwrap();
        let f = &page.page().files[0];
        assert_eq!(f.filename, FILE);
        assert_eq!(f.requires_python.as_deref(), Some(">=3.9"));
        assert_eq!(s.upstream.count("GET /simple/legacy/"), 0);
        let upgraded = python.index_page(&ids, "legacy").await.unwrap().unwrap();
        assert_eq!(upgraded.content_type, RECORD_CONTENT_TYPE);
        assert_eq!(upgraded.fetched_at, legacy.fetched_at);
        let (stored, meta) = page_record::decode(&upgraded.content).unwrap();
        assert_eq!(
            stored.files[0].url,
            format!("http://127.0.0.1:5000/files/{FILE}")
        );
        assert_eq!(meta.api_version.as_deref(), Some("1.0"));

        // Read back by a process that has not served it: the same bytes, the
        // same entity tag, without asking the upstream.
        let again = another_process(&s, "3");
        for (before, name) in [(&page, "legacy"), (&first, "pkg")] {
            let after = again.project_page(&s.fixture.repo, name).await.unwrap();
            for format in [index::PageFormat::Json, index::PageFormat::HtmlV1] {
                assert_eq!(after.render(format), before.render(format), "{name}");
                assert_eq!(after.etag(format), before.etag(format), "{name}");
            }
        }
        assert_eq!(s.upstream.count("GET /simple/pkg/"), 1);
        assert_eq!(s.upstream.count("GET /simple/legacy/"), 0);
    }

    #[tokio::test]
    async fn two_downloads_of_a_cold_file_make_one_upstream_fetch_and_both_get_it_whole() {
        let s = setup().await;
        let good = content();
        let (reply, feed) = Reply::streamed(Some(3000));
        s.upstream.answer(FETCH, reply);

        let (mut a, mut b) = tokio::join!(s.body(None), s.body(None));
        assert_eq!(s.upstream.count(FETCH), 1);
        feed.send(&good[..1000]);
        let early = (
            read_at_least(&mut a, 999).await,
            read_at_least(&mut b, 999).await,
        );
        feed.send(&good[1000..]);
        drop(feed);
        assert_eq!([early.0, read_rest(a).await.unwrap()].concat(), good);
        assert_eq!([early.1, read_rest(b).await.unwrap()].concat(), good);
        assert_eq!(read_rest(s.body(None).await).await.unwrap(), good);
        assert_eq!(s.upstream.count(FETCH), 1);
    }

    #[tokio::test]
    async fn a_transfer_broken_mid_file_leaves_nothing_and_the_next_download_fetches_again() {
        let s = setup().await;
        let good = content();
        let (reply, feed) = Reply::streamed(Some(3000));
        s.upstream.answer(FETCH, reply);
        s.upstream.answer(FETCH, Reply::ok(good.clone()));

        let mut body = s.body(None).await;
        feed.send(&good[..1000]);
        assert_eq!(read_at_least(&mut body, 999).await, &good[..999]);
        feed.fail();
        assert!(
            read_rest(body).await.is_err(),
            "a broken file ended as if whole"
        );
        assert_eq!(s.linked().await, None);
        assert!(s.fixture.spool_is_empty());

        assert_eq!(read_rest(s.body(None).await).await.unwrap(), good);
        assert_eq!(s.upstream.count(FETCH), 2);
    }

    #[tokio::test]
    async fn a_range_of_a_file_being_filled_gets_exactly_its_bytes() {
        let s = setup().await;
        let good = content();
        let (reply, feed) = Reply::streamed(Some(3000));
        s.upstream.answer(FETCH, reply);

        let mut whole = s.body(None).await;
        feed.send(&good[..1000]);
        read_at_least(&mut whole, 999).await;
        let range = ByteRange {
            start: 999,
            end: 2999,
        };
        let ranged = tokio::spawn(read_rest(s.body(Some(range)).await));
        feed.send(&good[1000..]);
        drop(feed);
        assert_eq!(ranged.await.unwrap().unwrap(), &good[999..]);
        assert_eq!(s.upstream.count(FETCH), 1);
    }

    #[tokio::test]
    async fn a_client_that_disconnects_mid_file_does_not_stop_the_fill_for_the_others() {
        let s = setup().await;
        let good = content();
        let (reply, feed) = Reply::streamed(Some(3000));
        s.upstream.answer(FETCH, reply);

        let (mut leaving, staying) = tokio::join!(s.body(None), s.body(None));
        feed.send(&good[..1000]);
        read_at_least(&mut leaving, 999).await;
        drop(leaving);
        feed.send(&good[1000..]);
        drop(feed);
        assert_eq!(read_rest(staying).await.unwrap(), good);
        assert_eq!(s.upstream.count(FETCH), 1);
    }

    #[tokio::test]
    async fn a_file_that_fails_verification_is_discarded_and_fetched_again() {
        let s = setup().await;
        let good = content();
        let mut bad = good.clone();
        bad[0] ^= 0xff;
        s.upstream.answer(FETCH, Reply::ok(bad));
        s.upstream.answer(FETCH, Reply::ok(good.clone()));

        // Refused when the download starts, or mid-body: never served whole.
        let served = match s.remote.file(&s.fixture.repo, &s.sha256, FILE).await {
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        PythonError::Remote(UpstreamFailure::DigestMismatch { .. })
                    ),
                    "{e}"
                );
                None
            }
            Ok(located) => read_rest(located.open(None).await.unwrap().body).await.ok(),
        };
        assert!(served.is_none(), "unverified content was served whole");
        assert_eq!(s.linked().await, None);

        assert_eq!(read_rest(s.body(None).await).await.unwrap(), good);
        assert_eq!(s.upstream.count(FETCH), 2);
    }
}
