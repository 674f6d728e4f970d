//! Garbage collection of blobs that no repository links, online.
//!
//! Deleting a repository, an image or running a cleanup only unlinks; this
//! collector then, while pushes and pulls go on:
//!
//! 1. drops the links of OCI images that no manifest of the image names and
//!    that are older than the grace period (a push uploads its blobs before
//!    its manifest: the grace period is how long that may take);
//! 2. claims (dooms) blobs with no link left, in one transaction, after
//!    which the store refuses any new link to them;
//! 3. deletes their bytes, then their rows;
//! 4. removes abandoned upload sessions with their part files;
//! 5. sweeps blob files that no row knows (a crash between writing bytes
//!    and recording them) once older than the grace period, claiming each
//!    with a doomed row first, so the same protocol covers them.
//!
//! The protocol and its invariant are in `docs/lifecycle.md`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use entrepot_domain::clock::{Clock, SystemClock};
use entrepot_domain::iam::Permission;
use entrepot_storage::{
    AuditRecord, BlobStore, DoomedBlob, LifecycleStore, SecretStore, StoreError,
};
use futures::StreamExt as _;
use serde::Serialize;

use crate::access::{AccessControl, AuthError, DenyAll, Principal, Resource};
use crate::metrics::Metrics;
use crate::OciRepositories;

/// Links dropped or blobs claimed per statement: each is a short write, so
/// pushes interleave with a long collection.
const BATCH: u32 = 500;

/// The default grace period of an unreferenced link: 24 hours.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Errors of a collection.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The caller may not collect garbage.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The metadata store failed.
    #[error("garbage collection failed: {0}")]
    Store(#[from] StoreError),
    /// Removing abandoned upload sessions failed.
    #[error("garbage collection could not remove abandoned uploads: {0}")]
    Uploads(String),
    /// Listing the blob store for files no row knows failed.
    #[error("garbage collection could not list the blob store: {0}")]
    Orphans(String),
}

/// What one collection reclaimed (or, in a dry run, would reclaim).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Links no manifest names, dropped after the grace period.
    pub links_dropped: u64,
    /// Blobs deleted from the blob store.
    pub blobs_deleted: u64,
    /// Their bytes.
    pub bytes_reclaimed: u64,
    /// Blobs whose bytes could not be deleted this time (kept claimed; the
    /// next collection retries).
    pub blobs_failed: u64,
    /// Abandoned upload sessions removed, with their part files.
    pub uploads_removed: u64,
    /// Blob files no row knew, older than the grace period, deleted (also
    /// counted in `blobs_deleted` and `bytes_reclaimed`).
    pub orphan_files: u64,
    /// The grace period applied, in seconds.
    pub grace_seconds: u64,
    /// How long the collection took, in milliseconds.
    pub duration_ms: u64,
}

/// The garbage collector. One collection runs at a time; a second caller
/// waits for the first to finish.
pub struct GarbageCollector {
    store: Arc<dyn LifecycleStore>,
    blobs: Arc<dyn BlobStore>,
    registry: Option<Arc<OciRepositories>>,
    access: Arc<dyn AccessControl>,
    audit: Option<Arc<dyn SecretStore>>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    grace: Duration,
    upload_timeout_secs: i64,
    running: tokio::sync::Mutex<()>,
    /// Scheduled runs take turns with other servers through these.
    jobs: Option<crate::cluster::jobs::JobLeases>,
}

impl GarbageCollector {
    /// A collector over `store` and `blobs` with the default grace period,
    /// refusing every caller until [`Self::with_access_control`].
    pub fn new(
        store: Arc<dyn LifecycleStore>,
        blobs: Arc<dyn BlobStore>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            blobs,
            registry: None,
            access: Arc::new(DenyAll),
            audit: None,
            metrics,
            clock: Arc::new(SystemClock),
            grace: DEFAULT_GRACE,
            upload_timeout_secs: 24 * 3600,
            running: tokio::sync::Mutex::new(()),
            jobs: None,
        }
    }

    /// Authorize callers of [`Self::collect`] through `access`.
    pub fn with_access_control(mut self, access: Arc<dyn AccessControl>) -> Self {
        self.access = access;
        self
    }

    /// Run scheduled passes only in this server's turn among the servers
    /// sharing the database (job `gc` of `jobs`), so that they never run
    /// on two at once.
    pub fn with_job_leases(mut self, jobs: crate::cluster::jobs::JobLeases) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// Protect unreferenced links for `grace` after they were made.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Tell time by `clock` (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Also remove upload sessions of `registry` idle for `timeout_secs`.
    pub fn with_uploads(mut self, registry: Arc<OciRepositories>, timeout_secs: u64) -> Self {
        self.registry = Some(registry);
        self.upload_timeout_secs = i64::try_from(timeout_secs).unwrap_or(i64::MAX);
        self
    }

    /// Record every collection asked for by a caller in `audit`.
    pub fn with_audit_log(mut self, audit: Arc<dyn SecretStore>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// The grace period in force.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Collect for `caller`, who needs `entrepot.storage.collectGarbage` on
    /// the organisation (organisation owners): the store is shared by every
    /// project. A dry run only counts. The run is written to the audit log.
    pub async fn collect(&self, caller: &Principal, dry_run: bool) -> Result<GcReport, GcError> {
        self.access
            .authorize(
                caller,
                Permission::StorageCollectGarbage,
                &Resource::Organization,
            )
            .await?;
        let report = self.run(dry_run).await?;
        if let Some(audit) = &self.audit {
            let record = AuditRecord {
                time: self.clock.now_rfc3339(),
                project: String::new(),
                principal: caller.to_string(),
                action: Permission::StorageCollectGarbage.as_str().into(),
                resource: "organization/storage".into(),
                version: None,
                allowed: true,
                reason: serde_json::to_string(&report).unwrap_or_default(),
            };
            if let Err(e) = audit.append_audit(&record).await {
                tracing::warn!(error = %e, "could not write the garbage collection to the audit log");
            }
        }
        Ok(report)
    }

    /// One collection, without a permission check (the periodic schedule;
    /// callers go through [`Self::collect`]).
    pub async fn run(&self, dry_run: bool) -> Result<GcReport, GcError> {
        let _one_at_a_time = self.running.lock().await;
        let started = Instant::now();
        let grace_secs = i64::try_from(self.grace.as_secs()).unwrap_or(i64::MAX);
        let cutoff = self.clock.now_unix().saturating_sub(grace_secs);
        let mut report = GcReport {
            dry_run,
            grace_seconds: self.grace.as_secs(),
            ..GcReport::default()
        };
        if dry_run {
            let count = self.store.count_collectable(cutoff).await?;
            report.links_dropped = count.links;
            report.blobs_deleted = count.blobs;
            report.bytes_reclaimed = count.bytes;
            self.sweep_orphans(cutoff, true, &mut report).await?;
        } else {
            loop {
                let n = self.store.drop_unreferenced_links(cutoff, BATCH).await?;
                report.links_dropped += n;
                if n < u64::from(BATCH) {
                    break;
                }
            }
            // Claimed by an earlier run that did not finish.
            let mut after = None;
            loop {
                let page = self.store.doomed_blobs(after.as_ref(), BATCH).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.digest.clone());
                let full = page.len() == BATCH as usize;
                self.delete_all(&page, &mut report).await?;
                if !full {
                    break;
                }
            }
            loop {
                let page = self.store.doom_unlinked_blobs(BATCH).await?;
                if page.is_empty() {
                    break;
                }
                // A blob whose bytes could not go stays claimed, so it is
                // not claimed again here: the loop ends.
                self.delete_all(&page, &mut report).await?;
            }
            if let Some(registry) = &self.registry {
                let n = registry
                    .expire_uploads(self.upload_timeout_secs)
                    .await
                    .map_err(|e| GcError::Uploads(e.to_string()))?;
                report.uploads_removed = n as u64;
            }
            self.sweep_orphans(cutoff, false, &mut report).await?;
            self.metrics.garbage_collected(
                report.blobs_deleted,
                report.bytes_reclaimed,
                report.uploads_removed,
            );
        }
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            dry_run,
            links = report.links_dropped,
            blobs = report.blobs_deleted,
            bytes = report.bytes_reclaimed,
            failed = report.blobs_failed,
            uploads = report.uploads_removed,
            orphans = report.orphan_files,
            ms = report.duration_ms,
            "garbage collection"
        );
        Ok(report)
    }

    /// Delete the bytes, then the rows, of blobs claimed outside a
    /// collection (those an eviction unlinked and claimed), counted into
    /// the collector's metrics. Runs beside a collection: a blob both
    /// delete is counted once (only one removes its row). Returns the blobs
    /// deleted and their bytes; a blob whose bytes could not go stays
    /// claimed, and the next collection retries it.
    pub async fn reclaim(&self, doomed: &[DoomedBlob]) -> Result<(u64, u64), GcError> {
        let mut report = GcReport::default();
        self.delete_all(doomed, &mut report).await?;
        self.metrics
            .blobs_reclaimed(report.blobs_deleted, report.bytes_reclaimed);
        Ok((report.blobs_deleted, report.bytes_reclaimed))
    }

    /// Delete the bytes of claimed blobs, then their rows: never the other
    /// way round, or a push could store the blob afresh under a new row and
    /// lose its bytes to this deletion.
    /// The rows go in one statement per page (those whose bytes went).
    async fn delete_all(&self, page: &[DoomedBlob], report: &mut GcReport) -> Result<(), GcError> {
        let mut gone = Vec::with_capacity(page.len());
        for blob in page {
            match self.blobs.delete(&blob.digest).await {
                Ok(()) => gone.push(blob.digest.clone()),
                Err(e) => {
                    tracing::warn!(digest = %blob.digest, error = %e, "could not delete a collected blob; the next collection retries");
                    report.blobs_failed += 1;
                }
            }
        }
        let forgotten: std::collections::HashSet<_> = self
            .store
            .forget_doomed_blobs(&gone)
            .await?
            .into_iter()
            .collect();
        for blob in page.iter().filter(|b| forgotten.contains(&b.digest)) {
            report.blobs_deleted += 1;
            report.bytes_reclaimed += blob.size;
        }
        Ok(())
    }

    /// Delete blob files that no row knows, last written at or before
    /// `cutoff`: each is claimed with a doomed row first (a push of the
    /// same bytes meanwhile then fails to link it, and retries), then goes
    /// as any claimed blob. A dry run only counts them. The listing is
    /// read lazily, a page at a time.
    async fn sweep_orphans(
        &self,
        cutoff: i64,
        dry_run: bool,
        report: &mut GcReport,
    ) -> Result<(), GcError> {
        let mut listing = self.blobs.list_blobs();
        let mut page = Vec::with_capacity(BATCH as usize);
        loop {
            let next = listing.next().await;
            let end = next.is_none();
            match next {
                Some(Ok(file)) if file.modified_unix <= cutoff => page.push(DoomedBlob {
                    digest: file.digest,
                    size: file.size,
                }),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(GcError::Orphans(e.to_string())),
                None => {}
            }
            if page.len() == BATCH as usize || (end && !page.is_empty()) {
                let orphans = self.store.orphans_among(&page).await?;
                page.clear();
                if dry_run {
                    report.orphan_files += orphans.len() as u64;
                    report.blobs_deleted += orphans.len() as u64;
                    report.bytes_reclaimed += orphans.iter().map(|o| o.size).sum::<u64>();
                } else if !orphans.is_empty() {
                    let claimed = self.store.claim_orphans(&orphans).await?;
                    let before = report.blobs_deleted;
                    self.delete_all(&claimed, report).await?;
                    report.orphan_files += report.blobs_deleted - before;
                    tracing::info!(files = claimed.len(), "deleted blob files that no row knew");
                }
            }
            if end {
                return Ok(());
            }
        }
    }

    /// Run a collection every `every`, for as long as the returned task
    /// lives (abort it to stop).
    pub fn spawn_schedule(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let run = self.run(false);
                let ran = crate::cluster::jobs::in_turn(self.jobs.as_ref(), "gc", run).await;
                if let Some(Err(e)) = ran {
                    tracing::warn!(error = %e, "scheduled garbage collection failed");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
