//! Eviction of remote (pull-through) repositories over their size cap.
//!
//! A remote repository may have a cap of its own
//! (`remoteRepositoryConfig.cacheMaxSizeBytes`), and the store a cap on all
//! remote caches together (`cache_max_size`). When a cache is over its cap,
//! the least recently pulled manifests go first, with their tags and the
//! links that only they needed (in a Python cache: the least recently
//! downloaded files), until the cache is under the low-water mark
//! ([`LOW_WATER_PERCENT`] of the cap). Blobs that nothing links any more are
//! then claimed and deleted through the garbage collector's protocol, at
//! once. Content in the middle of a fill is left alone. An evicted blob is
//! fetched from the upstream again on its next pull.
//!
//! Pull times come from [`pulls::PullTracker`], which batches them in
//! memory. A pass runs after fills (the tracker wakes the evictor) and on a
//! schedule; each pass also refreshes the cache size gauges
//! ([`metrics::EvictionMetrics`]).

mod candidates;
pub mod metrics;
pub mod pulls;

use std::sync::Arc;
use std::time::Duration;

use entrepot_domain::{Mode, ProjectId, Repository, RepositoryId, RepositoryName};
use entrepot_storage::{
    CacheUsage, EvictionCandidate, EvictionScope, EvictionStore, FileCandidate, MetadataStore,
    StoreError,
};
use serde::Serialize;

use crate::gc::{GarbageCollector, GcError};
use crate::remote::FillsInFlight;
use candidates::{Candidate, Candidates};
use metrics::EvictionMetrics;
use pulls::PullTracker;

/// Once over its cap, a cache is emptied down to this share of it, so that
/// the next fill does not start another eviction at once.
pub const LOW_WATER_PERCENT: u64 = 90;

/// Repositories (and projects) read per page when a pass lists them.
const LIST_PAGE: u32 = 500;

/// Errors of an eviction pass.
#[derive(Debug, thiserror::Error)]
pub enum EvictionError {
    /// The metadata store failed.
    #[error("cache eviction failed: {0}")]
    Store(#[from] StoreError),
    /// Deleting the unlinked blobs failed.
    #[error("cache eviction could not reclaim blobs: {0}")]
    Reclaim(#[from] GcError),
}

/// What one pass evicted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvictionReport {
    /// Manifests evicted.
    pub manifests: u64,
    /// Cached Python files evicted.
    pub files: u64,
    /// Tags that pointed at them.
    pub tags: u64,
    /// Blobs deleted (unlinked everywhere by the eviction).
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Candidates left alone because a fill of one of their blobs was
    /// under way.
    pub skipped_filling: u64,
}

/// Which cap a cache is weighed against.
struct Capped {
    scope: EvictionScope,
    /// For logs and gauges: a repository's resource name, or `*`.
    name: String,
    cap: u64,
}

/// Keeps remote caches under their caps.
pub struct CacheEvictor {
    store: Arc<dyn EvictionStore>,
    meta: Arc<dyn MetadataStore>,
    gc: Arc<GarbageCollector>,
    pulls: Arc<PullTracker>,
    fills: Vec<FillsInFlight>,
    store_cap: Option<u64>,
    metrics: Arc<EvictionMetrics>,
    running: tokio::sync::Mutex<()>,
    /// Scheduled runs take turns with other servers through these.
    jobs: Option<crate::cluster::jobs::JobLeases>,
}

impl CacheEvictor {
    /// An evictor over `store` that lists repositories in `meta`, reads
    /// pull times from `pulls` and deletes unlinked blobs through `gc`.
    pub fn new(
        store: Arc<dyn EvictionStore>,
        meta: Arc<dyn MetadataStore>,
        gc: Arc<GarbageCollector>,
        pulls: Arc<PullTracker>,
    ) -> Self {
        Self {
            store,
            meta,
            gc,
            pulls,
            fills: Vec::new(),
            store_cap: None,
            metrics: Arc::default(),
            running: tokio::sync::Mutex::new(()),
            jobs: None,
        }
    }

    /// Leave alone manifests whose blobs `fills` is downloading.
    pub fn with_fills(mut self, fills: FillsInFlight) -> Self {
        self.fills.push(fills);
        self
    }

    /// Cap all remote caches together at `bytes` (`None`: no store-wide cap).
    pub fn with_store_cap(mut self, bytes: Option<u64>) -> Self {
        self.store_cap = bytes.filter(|b| *b > 0);
        self
    }

    /// Run scheduled passes only in this server's turn among the servers
    /// sharing the database (job `eviction` of `jobs`), so that they never run
    /// on two at once.
    pub fn with_job_leases(mut self, jobs: crate::cluster::jobs::JobLeases) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// The counters and gauges of eviction.
    pub fn metrics(&self) -> Arc<EvictionMetrics> {
        self.metrics.clone()
    }

    /// One pass over every remote repository: refresh the size gauges and
    /// evict from every cache over its cap, then against the store-wide cap.
    pub async fn run(&self) -> Result<EvictionReport, EvictionError> {
        let _one = self.running.lock().await;
        self.flush_pulls().await;
        let repositories = self.remote_repositories().await?;
        let mut report = EvictionReport::default();
        let mut sizes = Vec::new();
        for repo in &repositories {
            let Some(capped) = capped(repo) else { continue };
            let usage = self.weigh(&capped, &mut report).await?;
            sizes.push((capped.name, usage));
        }
        self.metrics.replace_sizes(sizes);
        self.enforce_store_cap(&mut report).await?;
        self.metrics.evicted(&report);
        Ok(report)
    }

    /// Check the caches of `repositories` (resource names: those that
    /// cached content since the last pass) and the store-wide cap.
    pub async fn run_for(&self, repositories: &[String]) -> Result<EvictionReport, EvictionError> {
        let _one = self.running.lock().await;
        self.flush_pulls().await;
        let mut report = EvictionReport::default();
        for name in repositories {
            let Ok(name) = name.parse::<RepositoryName>() else {
                continue;
            };
            let Some(repo) = self.meta.get_repository(&name).await? else {
                continue;
            };
            let Some(capped) = capped(&repo) else {
                continue;
            };
            let usage = self.weigh(&capped, &mut report).await?;
            self.metrics.set_size(&capped.name, usage);
        }
        self.enforce_store_cap(&mut report).await?;
        self.metrics.evicted(&report);
        Ok(report)
    }

    async fn flush_pulls(&self) {
        // Eviction orders by the latest pulls, so they are written first; if
        // that fails, the pass goes on with what the store has.
        if let Err(e) = self.pulls.flush().await {
            tracing::warn!(error = %e, "could not record the last pull times before evicting");
        }
    }

    async fn enforce_store_cap(&self, report: &mut EvictionReport) -> Result<(), EvictionError> {
        let usage = match self.store_cap {
            Some(cap) => {
                let all = Capped {
                    scope: EvictionScope::AllRemote,
                    name: "every remote repository".into(),
                    cap,
                };
                self.enforce(&all, report).await?
            }
            None => self.store.remote_cache_usage().await?,
        };
        self.metrics.set_total(usage);
        Ok(())
    }

    /// Measure a repository's cache, and enforce its cap if it has one.
    async fn weigh(
        &self,
        capped: &Capped,
        report: &mut EvictionReport,
    ) -> Result<CacheUsage, EvictionError> {
        if capped.cap == 0 {
            return Ok(self.usage(&capped.scope).await?);
        }
        self.enforce(capped, report).await
    }

    /// Evict from `capped` until it is under its low-water mark, if it is
    /// over its cap. Returns its usage afterwards.
    async fn enforce(
        &self,
        capped: &Capped,
        report: &mut EvictionReport,
    ) -> Result<CacheUsage, EvictionError> {
        let mut usage = self.usage(&capped.scope).await?;
        if usage.bytes <= capped.cap {
            return Ok(usage);
        }
        let low_water = low_water(capped.cap);
        let before = usage.bytes;
        let mut candidates = Candidates::new(self.store.as_ref(), &capped.scope);
        while usage.bytes > low_water {
            let Some(candidate) = candidates.next().await? else {
                tracing::warn!(
                    cache = %capped.name,
                    bytes = usage.bytes,
                    cap = capped.cap,
                    "a remote cache stays over its size cap: nothing more can be evicted now (content being filled, or not evictable)"
                );
                break;
            };
            if self.filling(&candidate).await {
                candidates.left_alone(&candidate);
                report.skipped_filling += 1;
                continue;
            }
            match &candidate {
                Candidate::Manifest(m) => self.evict(m, report).await?,
                Candidate::File(f) => self.evict_file(f, report).await?,
            }
            usage = self.usage(&capped.scope).await?;
        }
        tracing::info!(
            cache = %capped.name,
            cap = capped.cap,
            before,
            after = usage.bytes,
            "evicted least recently pulled images from a remote cache over its size cap"
        );
        Ok(usage)
    }

    async fn usage(&self, scope: &EvictionScope) -> Result<CacheUsage, StoreError> {
        match scope {
            EvictionScope::Repository {
                project,
                repository,
            } => self.store.cache_usage(project, repository).await,
            EvictionScope::AllRemote => self.store.remote_cache_usage().await,
        }
    }

    /// Whether a fill of one of the candidate's blobs (or of the file) is
    /// under way.
    async fn filling(&self, candidate: &Candidate) -> bool {
        let (project, repository, blobs) = match candidate {
            Candidate::Manifest(m) => (&m.image.project, &m.image.repository, m.blobs.as_slice()),
            Candidate::File(f) => (&f.project, &f.repository, std::slice::from_ref(&f.digest)),
        };
        let scope = format!("projects/{project}/repositories/{repository}");
        for fills in &self.fills {
            if fills.any_of(&scope, blobs).await {
                return true;
            }
        }
        false
    }

    async fn evict_file(
        &self,
        file: &FileCandidate,
        report: &mut EvictionReport,
    ) -> Result<(), EvictionError> {
        if !self.store.evict_file(file).await? {
            return Ok(());
        }
        let doomed = self
            .store
            .doom_unlinked_among(std::slice::from_ref(&file.digest))
            .await?;
        let (blobs, bytes) = self.gc.reclaim(&doomed).await?;
        report.files += 1;
        report.blobs += blobs;
        report.bytes += bytes;
        tracing::info!(
            repository = %format!("projects/{}/repositories/{}", file.project, file.repository),
            digest = %file.digest,
            last_pull_ms = file.last_pull_ms,
            blobs,
            bytes,
            "evicted a cached Python file"
        );
        Ok(())
    }

    async fn evict(
        &self,
        candidate: &EvictionCandidate,
        report: &mut EvictionReport,
    ) -> Result<(), EvictionError> {
        let image = &candidate.image;
        let evicted = self.store.evict_manifest(image, &candidate.digest).await?;
        if !evicted.removed {
            return Ok(());
        }
        let doomed = self.store.doom_unlinked_among(&evicted.unlinked).await?;
        let (blobs, bytes) = self.gc.reclaim(&doomed).await?;
        report.manifests += 1;
        report.tags += evicted.tags;
        report.blobs += blobs;
        report.bytes += bytes;
        tracing::info!(
            repository = %format!("projects/{}/repositories/{}", image.project, image.repository),
            image = %image.image,
            digest = %candidate.digest,
            last_pull_ms = candidate.last_pull_ms,
            tags = evicted.tags,
            blobs,
            bytes,
            "evicted a cached image"
        );
        Ok(())
    }

    /// Every remote repository, by project and id.
    async fn remote_repositories(&self) -> Result<Vec<Repository>, StoreError> {
        let mut remote = Vec::new();
        let mut after_project: Option<ProjectId> = None;
        loop {
            let projects = self
                .meta
                .list_projects(after_project.as_ref(), LIST_PAGE)
                .await?;
            for project in &projects {
                let mut after: Option<RepositoryId> = None;
                loop {
                    let page = self
                        .meta
                        .list_repositories(&project.id, after.as_ref(), LIST_PAGE)
                        .await?;
                    let full = page.len() == LIST_PAGE as usize;
                    after = page
                        .last()
                        .and_then(|r| r.repository_name().ok())
                        .map(|n| n.repository);
                    remote.extend(
                        page.into_iter()
                            .filter(|r| r.mode == Mode::RemoteRepository),
                    );
                    if !full || after.is_none() {
                        break;
                    }
                }
            }
            if projects.len() < LIST_PAGE as usize {
                break;
            }
            after_project = projects.last().map(|p| p.id.clone());
        }
        Ok(remote)
    }

    /// Run a pass every `every` (refreshing the gauges), and a quicker one
    /// over the repositories that cached content whenever the pull tracker
    /// says so, for as long as the returned task lives.
    pub fn spawn_schedule(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let jobs = self.jobs.as_ref();
                let outcome = tokio::select! {
                    _ = tick.tick() => {
                        // A full pass covers what was filled meanwhile.
                        self.pulls.take_filled();
                        crate::cluster::jobs::in_turn(jobs, "eviction", self.run()).await
                    }
                    _ = self.pulls.woken() => {
                        let filled = self.pulls.take_filled();
                        crate::cluster::jobs::in_turn(jobs, "eviction", self.run_for(&filled)).await
                    }
                };
                if let Some(Err(e)) = outcome {
                    tracing::warn!(error = %e, "cache eviction failed; the next pass retries");
                }
            }
        })
    }
}

/// The repository's cache and its cap (0: no cap of its own, only
/// measured), for a remote repository.
fn capped(repo: &Repository) -> Option<Capped> {
    let remote = repo.remote_repository_config.as_ref()?;
    let name = repo.repository_name().ok()?;
    Some(Capped {
        scope: EvictionScope::Repository {
            project: name.project.to_string(),
            repository: name.repository.to_string(),
        },
        name: repo.name.clone(),
        cap: remote.cache_max_size_bytes.unwrap_or(0),
    })
}

/// [`LOW_WATER_PERCENT`] of `cap`.
fn low_water(cap: u64) -> u64 {
    u64::try_from(u128::from(cap) * u128::from(LOW_WATER_PERCENT) / 100).unwrap_or(cap)
}

#[cfg(test)]
mod tests;
