//! The application: configuration in, stores, services, the axum router and
//! its background tasks out. `entrepot serve` builds one and puts it behind a
//! listener; tests build one on a temporary data directory and send requests
//! to its router directly.

mod cluster;
mod database;
mod error;
mod first_start;
mod tasks;
mod test_clock;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use entrepot_api::AppState;
use entrepot_domain::Format;
use entrepot_services::access_policy::StoredAuditLog;
use entrepot_services::cleanup::CleanupService;
use entrepot_services::cluster::stale::StaleCaches;
use entrepot_services::console_sessions::ConsoleSessions;
use entrepot_services::eviction::pulls::PullTracker;
use entrepot_services::eviction::CacheEvictor;
use entrepot_services::gc::GarbageCollector;
use entrepot_services::host_needs::HostNeeds;
use entrepot_services::metrics::Metrics;
use entrepot_services::oci::cooldown::ReleaseAgeRecords;
use entrepot_services::oci::RemoteOci;
use entrepot_services::python::{HostedPython, PythonRepositories, RemotePython};
use entrepot_services::quota::StorageQuotas;
use entrepot_services::remote::{Fills, FillsInFlight};
use entrepot_services::secrets::{FileKeyRing, KeyRing as _};
use entrepot_services::upstream_metrics::MeteredTransport;
use entrepot_services::{
    AccessControl, AccessPolicyService, OciRepositories, ProjectService, RepositoryService,
    SecretService,
};
use entrepot_storage::{
    create_private_dir, BlobStore, CacheStore, LifecycleStore, MetadataBackend, MetadataStore,
    PythonStore,
};
use entrepot_upstream::{UpstreamClient, UpstreamTransport};

use crate::bootstrap::BootstrapToken;
use crate::config::Config;
use crate::data_dir_lock::DataDirLock;
use cluster::Cluster;
use database::Database;

pub use error::BuildError;
pub use first_start::DEFAULT_PROJECT;
pub use tasks::BackgroundTasks;

use error::Step as _;

/// A built application: the router over its state, the bootstrap admin's
/// token on first start, and the background tasks that run beside it until
/// the application is dropped.
pub struct App {
    router: Router,
    state: AppState,
    bootstrap_token: Option<BootstrapToken>,
    /// Stopped with the application (on drop, or awaited by `shutdown`).
    tasks: BackgroundTasks,
    /// The metadata database, closed by `shutdown`.
    database: Database,
    /// The SQLite data directory's lock, released when the application is.
    _lock: Option<DataDirLock>,
    /// Last pull times not yet written, flushed by `shutdown`.
    pulls: Arc<PullTracker>,
}

impl App {
    /// Open (or create) the data directory of `config` and build everything
    /// the server runs: stores, services, the first-start project and
    /// bootstrap admin, the router, and the background tasks (blob
    /// verification, upload expiry, audit retention). Needs a Tokio runtime.
    ///
    /// The metadata lives in the SQLite file of the data directory, which
    /// is locked for this server, unless `config.database_url` names a
    /// PostgreSQL database.
    ///
    /// Fails, naming the step, when the data directory, the metadata
    /// database, the blob store, the master key or a spool directory cannot be
    /// opened, when another server holds the SQLite data directory, or when a
    /// setting of `config` is invalid.
    pub async fn build(config: &Config) -> Result<Self, BuildError> {
        // Everything in the data directory is the server's alone: 0700, files 0600.
        create_private_dir(&config.data_dir)
            .step(|| format!("cannot create data directory {}", config.data_dir.display()))?;
        let (database, lock) = Database::open(config).await?;
        match database.clone() {
            Database::Sqlite(store) => Self::build_on(config, store, database, lock).await,
            Database::Postgres(store) => Self::build_on(config, store, database, lock).await,
        }
    }

    /// [`Self::build`] over the open metadata backend `sqlite`.
    async fn build_on<S: MetadataBackend>(
        config: &Config,
        sqlite: Arc<S>,
        database: Database,
        lock: Option<DataDirLock>,
    ) -> Result<Self, BuildError> {
        let meta: Arc<dyn MetadataStore> = sqlite.clone();
        let cache: Arc<dyn CacheStore> = sqlite.clone();
        let (iam, bootstrap_token) = crate::bootstrap::iam(&sqlite, meta.clone(), &config.data_dir)
            .await
            .map_err(BuildError::other)?;
        let blobs: Arc<dyn BlobStore> = Arc::new(
            config
                .open_blob_store()
                .step(|| "cannot open the blob store")?,
        );
        if config.blob_store.is_some() {
            // A wrong key or a missing bucket stops the start, not the first push.
            blobs
                .check_writable()
                .await
                .step(|| "the blob store's bucket refuses a test write")?;
        }
        // Nothing is being committed yet: whatever is in staging was cut short by a crash.
        match blobs.remove_staging().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                objects = n,
                "removed staging objects left by an interrupted commit"
            ),
            Err(e) => tracing::warn!(error = %e, "could not clear the blob staging area"),
        }
        let mut tasks = BackgroundTasks::default();
        tasks.verify_blobs(blobs.clone(), config);
        let cluster = database.shared().map(|store| Cluster::new(store, &blobs));

        let metrics = Arc::new(Metrics::default());
        {
            let database = database.clone();
            metrics.report_read_cache(move || database.read_cache_stats());
        }
        // Every upstream hop, and every new remote repository's upstream, passes
        // the organisation's registry access policy.
        let access_policy = Arc::new(
            AccessPolicyService::new(sqlite.clone(), metrics.clone())
                .with_audit_log(Arc::new(StoredAuditLog(sqlite.clone())))
                .with_access_control(iam.clone())
                .with_host_needs(Arc::new(HostNeeds::new(sqlite.clone(), meta.clone()))),
        );
        let access: Arc<dyn AccessControl> = iam.clone();
        let projects = ProjectService::new(meta.clone()).with_access_control(access.clone());
        let repositories = RepositoryService::new(meta.clone())
            .with_upstream_check(access_policy.clone())
            .with_audit_log(sqlite.clone());
        first_start::default_project(&projects, &repositories)
            .await
            .map_err(BuildError::other)?;

        let master_key_path = config.master_key_path();
        let keys = Arc::new(FileKeyRing::open_or_create(&master_key_path).step(|| {
            format!(
                "cannot load the master key from {}",
                master_key_path.display()
            )
        })?);
        tracing::info!(path = %master_key_path.display(), key_id = %keys.primary_id(), "secret manager master key loaded; back this file up");
        let secrets = SecretService::new(sqlite.clone(), meta.clone(), keys, access.clone())
            .with_metrics(metrics.clone());

        let client: Arc<dyn UpstreamTransport> =
            Arc::new(UpstreamClient::new(access_policy.clone()).map_err(BuildError::other)?);
        let upstream: Arc<dyn UpstreamTransport> =
            Arc::new(MeteredTransport::new(client, metrics.clone()));
        // The spool lives beside the blobs, so a finished download is committed by a link.
        let fills = Fills::new(
            config.data_dir.join("blobs").join("spool"),
            blobs.clone(),
            metrics.clone(),
        )
        .step(|| "cannot prepare the cache spool directory")?;
        let clock = test_clock::from_env();
        let fills_in_flight = fills.in_flight();
        let pulls = Arc::new(PullTracker::new(sqlite.clone()));
        let remote = RemoteOci::new(
            meta.clone(),
            cache,
            blobs.clone(),
            fills,
            upstream.clone(),
            metrics.clone(),
            Arc::new(secrets.clone()),
        )
        .with_release_age(ReleaseAgeRecords {
            store: sqlite.clone(),
            clock: clock.clone(),
        })
        .with_pull_tracker(pulls.clone());
        let remote = match &cluster {
            Some(cluster) => remote.with_fill_leases(cluster.fill_leases()),
            None => remote,
        };
        let remote = Arc::new(remote);
        let (hosted_python, remote_python, python_fills) =
            python_repositories(config, &sqlite, &blobs, &upstream, &metrics, &secrets)?;
        let hosted_python = hosted_python.with_pull_tracker(pulls.clone());
        let remote_python = remote_python
            .with_clock(clock)
            .with_pull_tracker(pulls.clone());
        let remote_python = Arc::new(match &cluster {
            Some(cluster) => remote_python.with_fill_leases(cluster.fill_leases()),
            None => remote_python,
        });
        // Callers of the repository service are authorized by it; testUpstream
        // goes to the remote engine of the repository's format.
        let repositories = repositories
            .with_access_control(access.clone())
            .with_secrets(secrets.clone())
            .with_upstream_tester(Format::Docker, remote.clone())
            .with_upstream_tester(Format::Python, remote_python.clone());
        let quotas = Arc::new(
            StorageQuotas::new(sqlite.clone(), meta.clone())
                .with_reservation_secs(
                    i64::try_from(config.upload_timeout_secs).unwrap_or(i64::MAX),
                )
                .with_access_control(access.clone())
                .with_metrics(metrics.clone()),
        );
        let python = Arc::new(
            PythonRepositories::new(
                access.clone(),
                repositories.clone(),
                Arc::new(hosted_python),
                remote_python,
            )
            .with_quotas(quotas.clone()),
        );
        let lifecycle: Arc<dyn LifecycleStore> = sqlite.clone();
        let cleanup = CleanupService::new(
            sqlite.clone(),
            meta.clone(),
            sqlite.clone(),
            metrics.clone(),
        )
        .with_access_control(access.clone())
        .with_audit_log(sqlite.clone());
        let cleanup = Arc::new(match &cluster {
            Some(cluster) => cleanup.with_job_leases(cluster.job_leases()),
            None => cleanup,
        });
        let registry = Arc::new(
            OciRepositories::new(meta.clone(), blobs.clone(), access.clone())
                .with_lifecycle(lifecycle.clone())
                .with_quotas(quotas.clone())
                .with_remote(remote.clone())
                .with_pull_tracker(pulls.clone())
                .with_min_free_disk_bytes(config.min_free_disk_bytes)
                .with_max_page_size(config.max_page_size),
        );
        let gc = GarbageCollector::new(lifecycle, blobs, metrics.clone())
            .with_access_control(access.clone())
            .with_audit_log(sqlite.clone())
            .with_grace(Duration::from_secs(config.gc_grace_secs))
            .with_uploads(registry.clone(), config.upload_timeout_secs);
        let gc = Arc::new(match &cluster {
            Some(cluster) => gc.with_job_leases(cluster.job_leases()),
            None => gc,
        });
        let evictor = CacheEvictor::new(sqlite.clone(), meta.clone(), gc.clone(), pulls.clone())
            .with_fills(fills_in_flight)
            .with_fills(python_fills)
            .with_store_cap(config.cache_max_size.map(|size| size.0));
        let evictor = Arc::new(match &cluster {
            Some(cluster) => evictor.with_job_leases(cluster.job_leases()),
            None => evictor,
        });
        {
            let eviction_metrics = evictor.metrics();
            metrics.add_families(move |out| eviction_metrics.render(out));
        }
        let inventory = entrepot_services::inventory::ArtifactInventory::new(
            sqlite.clone(),
            meta.clone(),
            access.clone(),
            registry.clone(),
        )
        .with_pull_tracker(pulls.clone());
        if let Some(cluster) = &cluster {
            let caches = StaleCaches::new(
                iam.clone(),
                access_policy.clone(),
                remote.clone(),
                python.remote.clone(),
            );
            tasks.follow_changes(caches, cluster.store.changes());
        }
        let state = AppState {
            inventory,
            gc: gc.clone(),
            cleanup: cleanup.clone(),
            quotas,
            registry: registry.clone(),
            repositories,
            projects,
            access,
            iam,
            metrics,
            python,
            access_policy,
            secrets: secrets.clone(),
            trusted_proxies: config.trusted_proxies().map_err(BuildError::other)?,
            mirrors: Arc::new(config.mirrors().map_err(BuildError::other)?),
            http_metrics: Arc::default(),
        };

        tasks.expire_uploads(registry, config.upload_timeout_secs);
        if config.gc_interval_secs > 0 {
            tasks.collect_garbage(gc, Duration::from_secs(config.gc_interval_secs));
        }
        if config.cleanup_interval_secs > 0 {
            tasks.run_cleanup_policies(cleanup, Duration::from_secs(config.cleanup_interval_secs));
        }
        tasks.retain_audit_log(secrets, config.audit_max_rows).await;
        tasks.track_pulls(pulls.clone());
        if config.cache_eviction_interval_secs > 0 {
            tasks.evict_caches(
                evictor,
                Duration::from_secs(config.cache_eviction_interval_secs),
            );
        }

        let console = entrepot_console::router(
            state.clone(),
            ConsoleSessions::new(
                sqlite.clone(),
                state.iam.clone(),
                entrepot_console::SESSION_TTL_SECS,
            ),
        );
        Ok(Self {
            router: entrepot_api::router_with(state.clone(), console),
            state,
            bootstrap_token,
            tasks,
            database,
            _lock: lock,
            pulls,
        })
    }

    /// The router of every surface (`/v2`, `/pypi`, `/v1`, `/ui`, operations),
    /// ready to serve; cheap to clone.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The services behind the router.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The bootstrap admin's token, when this build created the admin (the
    /// first start on a data directory).
    pub fn bootstrap_token(&self) -> Option<&BootstrapToken> {
        self.bootstrap_token.as_ref()
    }

    /// Stop the background tasks and wait until they have, then close the
    /// metadata store (which also ends its write-ahead-log checkpoints), so
    /// that nothing of this application touches the data directory once this
    /// returns. Clones of the router answer errors afterwards.
    pub async fn shutdown(mut self) {
        self.tasks.stop().await;
        // The last pull times still in memory, in one transaction.
        if let Err(e) = self.pulls.flush().await {
            tracing::warn!(error = %e, "could not record the last pull times at shutdown");
        }
        self.database.close().await;
    }
}

/// The hosted and remote sides of the Python repositories: remote ones fill
/// through their own spool directory beside the blobs; uploads to hosted
/// ones are staged there too.
fn python_repositories<S: MetadataBackend>(
    config: &Config,
    sqlite: &Arc<S>,
    blobs: &Arc<dyn BlobStore>,
    upstream: &Arc<dyn UpstreamTransport>,
    metrics: &Arc<Metrics>,
    secrets: &SecretService,
) -> Result<(HostedPython, RemotePython, FillsInFlight), BuildError> {
    let store: Arc<dyn PythonStore> = sqlite.clone();
    let spool = config.data_dir.join("blobs");
    let fills = Fills::new(spool.join("spool-python"), blobs.clone(), metrics.clone())
        .step(|| "cannot prepare the Python cache spool directory")?;
    let in_flight = fills.in_flight();
    let remote = RemotePython::new(
        store.clone(),
        blobs.clone(),
        fills,
        upstream.clone(),
        metrics.clone(),
        Arc::new(secrets.clone()),
        spool.join("scratch-python"),
    )
    .step(|| "cannot prepare the Python scratch directory")?
    .with_max_page_files(config.python_max_page_files);
    let hosted = HostedPython::new(
        store,
        blobs.clone(),
        spool.join("uploads-python"),
        config.python_max_upload_bytes,
    )
    .step(|| "cannot prepare the Python upload directory")?;
    Ok((hosted, remote, in_flight))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_step_is_named_with_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-directory");
        std::fs::write(&file, b"").unwrap();
        let config = Config {
            data_dir: file.clone(),
            ..Config::default()
        };
        let Err(error) = App::build(&config).await else {
            panic!("a file as the data directory builds");
        };
        let shown = format!("{:#}", anyhow::Error::from(error));
        assert!(
            shown.starts_with(&format!(
                "cannot create data directory {}: ",
                file.display()
            )),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn a_new_data_directory_gets_the_admin_and_a_second_build_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("data"),
            min_free_disk_bytes: 0,
            verify_blobs_on_start: crate::config::VerifyOnStart::Never,
            ..Config::default()
        };
        let first = App::build(&config).await.unwrap();
        let token = first.bootstrap_token().unwrap();
        assert!(token.path.starts_with(&config.data_dir));
        assert!(!token.token.expose().is_empty());
        first.shutdown().await;
        let second = App::build(&config).await.unwrap();
        assert!(
            second.bootstrap_token().is_none(),
            "the admin exists already"
        );
    }
}
