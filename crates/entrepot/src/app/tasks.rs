//! The background tasks that run beside the router: blob verification at
//! start, removal of abandoned upload sessions, audit log retention.

use std::sync::Arc;
use std::time::Duration;

use entrepot_services::cluster::stale::StaleCaches;
use entrepot_services::eviction::pulls::{PullTracker, FLUSH_INTERVAL};
use entrepot_services::eviction::CacheEvictor;
use entrepot_services::gc::GarbageCollector;
use entrepot_services::{OciRepositories, SecretService};
use entrepot_storage::BlobStore;
use tokio::task::JoinHandle;

use crate::config::{Config, VerifyOnStart};

/// The marker a completed blob verification leaves in the data directory.
const VERIFIED_MARKER: &str = "blobs-verified";

/// The running background tasks of an application; dropping it aborts them
/// all. A blob verification cut short runs again at the next start (its
/// marker is written only when it completes).
///
/// Not among them: the SQLite write-ahead-log checkpoints, which end when
/// the store is closed (`App::shutdown`), and the deletion of the bootstrap
/// token file, which its own module spawns and which ends with the runtime.
#[derive(Default)]
pub struct BackgroundTasks {
    handles: Vec<JoinHandle<()>>,
}

impl Drop for BackgroundTasks {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

impl BackgroundTasks {
    /// Abort every task and wait until each has stopped.
    pub(super) async fn stop(&mut self) {
        for handle in self.handles.drain(..) {
            handle.abort();
            // A cancelled task's join error is the expected outcome.
            let _ = handle.await;
        }
    }

    /// Rehash the blob store in the background (the server is already serving),
    /// quarantining blobs whose bytes do not match their digest: a blob poisoned
    /// before uploads were fixed, or damaged on disk, is then no longer served.
    pub(super) fn verify_blobs(&mut self, blobs: Arc<dyn BlobStore>, config: &Config) {
        let marker = config.data_dir.join(VERIFIED_MARKER);
        let run = match config.verify_blobs_on_start {
            VerifyOnStart::Never => false,
            VerifyOnStart::Always => true,
            VerifyOnStart::Once => !marker.exists(),
        };
        if !run {
            return;
        }
        self.handles.push(tokio::spawn(async move {
            tracing::info!("verifying stored blobs in the background");
            match blobs.verify_blobs().await {
                Ok(report) => {
                    if report.quarantined.is_empty() {
                        tracing::info!(
                            checked = report.checked,
                            "every stored blob matches its digest"
                        );
                    } else {
                        tracing::warn!(
                            checked = report.checked,
                            quarantined = report.quarantined.len(),
                            quarantine = %report.quarantine_dir.as_deref().map(|d| d.display().to_string()).unwrap_or_default(),
                            "blobs whose bytes did not match their digest were moved to quarantine; push them again"
                        );
                    }
                    if let Err(e) = write_marker(&marker, report.checked) {
                        tracing::warn!(error = %e, "could not record the completed blob verification");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "blob verification stopped; it runs again at the next start")
                }
            }
        }));
    }

    /// Remove upload sessions idle for longer than `timeout_secs`, checking a
    /// quarter of that often (between every second and every 5 minutes).
    pub(super) fn expire_uploads(&mut self, registry: Arc<OciRepositories>, timeout_secs: u64) {
        let period = Duration::from_secs((timeout_secs / 4).clamp(1, 300));
        self.handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                match registry.expire_uploads(timeout_secs as i64).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(sessions = n, "removed abandoned upload sessions"),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not remove abandoned upload sessions")
                    }
                }
            }
        }));
    }

    /// Collect garbage every `every` (the first run one interval after start).
    pub(super) fn collect_garbage(&mut self, gc: Arc<GarbageCollector>, every: Duration) {
        self.handles.push(gc.spawn_schedule(every));
    }

    /// Write the batched last pull times every [`FLUSH_INTERVAL`].
    pub(super) fn track_pulls(&mut self, pulls: Arc<PullTracker>) {
        self.handles.push(pulls.spawn_flushes(FLUSH_INTERVAL));
    }

    /// Measure remote caches and evict from those over their cap every
    /// `every`, and after fills.
    pub(super) fn evict_caches(&mut self, evictor: Arc<CacheEvictor>, every: Duration) {
        self.handles.push(evictor.spawn_schedule(every));
    }

    /// Run every repository's cleanup policies every `every` (the first run
    /// one interval after start).
    pub(super) fn run_cleanup_policies(
        &mut self,
        cleanup: Arc<entrepot_services::cleanup::CleanupService>,
        every: Duration,
    ) {
        self.handles.push(cleanup.spawn_schedule(every));
    }

    /// Drop the caches that changes committed by other servers make stale,
    /// as the database announces them.
    pub(super) fn follow_changes(
        &mut self,
        caches: StaleCaches,
        changes: tokio::sync::mpsc::Receiver<entrepot_storage::Change>,
    ) {
        self.handles.push(Arc::new(caches).spawn_follower(changes));
    }

    /// Keep the audit log at most `max_rows` long, removing the oldest entries:
    /// once now (before serving), then every minute.
    pub(super) async fn retain_audit_log(&mut self, secrets: SecretService, max_rows: u64) {
        prune_audit(&secrets, max_rows).await;
        self.handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            // The first tick is immediate: the start-up prune just ran.
            tick.tick().await;
            loop {
                tick.tick().await;
                prune_audit(&secrets, max_rows).await;
            }
        }));
    }
}

fn write_marker(path: &std::path::Path, checked: u64) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    writeln!(options.open(path)?, "{checked} blobs verified")
}

async fn prune_audit(secrets: &SecretService, max_rows: u64) {
    match secrets.prune_audit(max_rows).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            removed = n,
            kept = max_rows,
            "removed the oldest audit log entries (audit_max_rows)"
        ),
        Err(e) => tracing::warn!(error = %e, "could not prune the audit log"),
    }
}
