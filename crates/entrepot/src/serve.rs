//! `entrepot serve`: wire storage, services and front-ends together and run.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use entrepot_api::AppState;
use entrepot_domain::repository::{RemoteConfig, DEFAULT_TAG_TTL_SECS};
use entrepot_domain::{Format, Mode, ProjectId, RepositoryName};
use entrepot_services::access_policy::StoredAuditLog;
use entrepot_services::metrics::Metrics;
use entrepot_services::python::{HostedPython, PythonRepositories, RemotePython};
use entrepot_services::remote::{Fills, RemoteDocker};
use entrepot_services::secrets::{FileKeyRing, KeyRing as _};
use entrepot_services::{
    AccessControl, AccessPolicyService, NewRepository, ProjectError, ProjectService, Registry,
    RepositoryService, SecretService,
};
use entrepot_storage::{
    BlobStore, CacheStore, MetadataStore, ObjectBlobStore, PythonStore, SqliteMetadataStore,
};
use entrepot_upstream::UpstreamClient;

use crate::config::Config;

/// The project every installation starts with.
pub const DEFAULT_PROJECT: &str = "default";

/// Run the server until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let sqlite = Arc::new(
        SqliteMetadataStore::open(&config.data_dir.join("metadata.db"))
            .await
            .context("cannot open the metadata database")?,
    );
    let meta: Arc<dyn MetadataStore> = sqlite.clone();
    let cache: Arc<dyn CacheStore> = sqlite.clone();
    let (iam, bootstrap_token) =
        crate::bootstrap::iam(&sqlite, meta.clone(), &config.data_dir).await?;
    let blobs: Arc<dyn BlobStore> = Arc::new(
        ObjectBlobStore::local(config.data_dir.join("blobs"))
            .context("cannot open the blob store")?,
    );
    // Nothing is being committed yet: whatever is in staging was cut short by a crash.
    match blobs.remove_staging().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            objects = n,
            "removed staging objects left by an interrupted commit"
        ),
        Err(e) => tracing::warn!(error = %e, "could not clear the blob staging area"),
    }

    let metrics = Arc::new(Metrics::default());
    // Every upstream hop, and every new remote repository's upstream, passes
    // the organisation's registry access policy.
    let access_policy = Arc::new(
        AccessPolicyService::new(sqlite.clone(), metrics.clone())
            .with_audit_log(Arc::new(StoredAuditLog(sqlite.clone()))),
    );
    let projects = ProjectService::new(meta.clone());
    let repositories =
        RepositoryService::new(meta.clone()).with_upstream_check(access_policy.clone());
    bootstrap(&projects, &repositories).await?;

    let access: Arc<dyn AccessControl> = iam.clone();
    let master_key_path = config.master_key_path();
    let keys = Arc::new(
        FileKeyRing::open_or_create(&master_key_path).with_context(|| {
            format!(
                "cannot load the master key from {}",
                master_key_path.display()
            )
        })?,
    );
    tracing::info!(path = %master_key_path.display(), key_id = %keys.primary_id(), "secret manager master key loaded; back this file up");
    let secrets = SecretService::new(sqlite.clone(), meta.clone(), keys, access.clone());

    let upstream = Arc::new(UpstreamClient::new(access_policy.clone())?);
    // The spool lives beside the blobs, so a finished download is committed by a link.
    let fills = Fills::new(
        config.data_dir.join("blobs").join("spool"),
        blobs.clone(),
        metrics.clone(),
    )
    .context("cannot prepare the cache spool directory")?;
    let remote = Arc::new(RemoteDocker::new(
        meta.clone(),
        cache,
        blobs.clone(),
        fills,
        upstream.clone(),
        metrics.clone(),
        Arc::new(secrets.clone()),
    ));
    let python = python_repositories(&config, &sqlite, &blobs, &upstream, &metrics, &secrets)?;
    let registry = Arc::new(Registry::new(meta.clone(), blobs).with_remote(remote));
    let state = AppState {
        registry: registry.clone(),
        repositories,
        projects,
        access,
        iam,
        metrics,
        python,
        access_policy,
        secrets: secrets.clone(),
        trusted_proxies: config.trusted_proxies()?,
    };

    spawn_upload_expiry(registry, config.upload_timeout_secs);
    start_audit_retention(secrets, config.audit_max_rows).await;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // The first line on stdout is machine-readable: tests and scripts wait for it.
    println!("entrepot listening on http://{addr}");
    println!(
        "  data directory: {}\n  pull through Docker Hub: skopeo copy --src-tls-verify=false docker://{addr}/default/docker-hub/alpine:latest oci:./alpine\n  create a hosted repository: entrepot repositories create images --repository-format=docker\n  push: skopeo copy --dest-tls-verify=false oci:./layout docker://{addr}/default/images/app:1.0\n  install through PyPI: pip install --index-url http://{addr}/pypi/default/pypi/simple/ PACKAGE",
        config.data_dir.display()
    );
    if let Some(b) = &bootstrap_token {
        println!(
            "  bootstrap admin token (shown once; also in {path}):\n    {token}\n  log in: entrepot login --server http://{addr} --token-file {path}\n  registry login: skopeo login --tls-verify=false -u admin --password-stdin {addr} < {path}\n  {path} is deleted once the token has been used or another owner exists: copy the token first",
            path = b.path.display(),
            token = b.token.expose(),
        );
    }
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "entrepot started");

    // Without TCP_NODELAY a small response on a reused connection waits for the
    // client's delayed ACK (about 40 ms): pip fetches files one after another.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let app =
        entrepot_api::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("entrepot stopped");
    Ok(())
}

/// On first start: the `default` project with a Docker Hub pull-through cache.
async fn bootstrap(
    projects: &ProjectService,
    repositories: &RepositoryService,
) -> anyhow::Result<()> {
    let default_project: ProjectId = DEFAULT_PROJECT.parse()?;
    match projects.create(&default_project).await {
        Ok(_) => {}
        Err(ProjectError::AlreadyExists(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let name = RepositoryName::new(default_project, "docker-hub".parse()?);
    let docker_hub = NewRepository {
        format: Format::Docker,
        mode: Mode::RemoteRepository,
        description: "Pull-through cache of Docker Hub".into(),
        remote: Some(RemoteConfig {
            upstream: "DOCKER-HUB".into(),
            username: None,
            password_secret_version: None,
            tag_ttl_secs: DEFAULT_TAG_TTL_SECS,
            serve_stale: true,
            allow_insecure_upstream: false,
            allow_cached_from_blocked: false,
        }),
    };
    repositories.create(&name, docker_hub).await?;
    let name = RepositoryName::new(DEFAULT_PROJECT.parse()?, "pypi".parse()?);
    let pypi = NewRepository {
        format: Format::Python,
        mode: Mode::RemoteRepository,
        description: "Pull-through cache of PyPI".into(),
        remote: Some(RemoteConfig {
            upstream: "PYPI".into(),
            username: None,
            password_secret_version: None,
            tag_ttl_secs: PYTHON_INDEX_TTL_SECS,
            serve_stale: true,
            allow_insecure_upstream: false,
            allow_cached_from_blocked: false,
        }),
    };
    repositories.create(&name, pypi).await?;
    tracing::info!(
        "first start: created project default with remote repositories docker-hub and pypi"
    );
    Ok(())
}

/// Freshness window of the `pypi` repository's index pages: 10 minutes.
const PYTHON_INDEX_TTL_SECS: u64 = 600;

/// Python repositories: remote ones fill through their own spool directory
/// beside the blobs; uploads to hosted ones are staged there too.
fn python_repositories(
    config: &Config,
    sqlite: &Arc<SqliteMetadataStore>,
    blobs: &Arc<dyn BlobStore>,
    upstream: &Arc<UpstreamClient>,
    metrics: &Arc<Metrics>,
    secrets: &SecretService,
) -> anyhow::Result<Arc<PythonRepositories>> {
    let store: Arc<dyn PythonStore> = sqlite.clone();
    let spool = config.data_dir.join("blobs");
    let fills = Fills::new(spool.join("spool-python"), blobs.clone(), metrics.clone())
        .context("cannot prepare the Python cache spool directory")?;
    let remote = RemotePython::new(
        store.clone(),
        blobs.clone(),
        fills,
        upstream.clone(),
        metrics.clone(),
        Arc::new(secrets.clone()),
        spool.join("scratch-python"),
    )
    .context("cannot prepare the Python scratch directory")?;
    let hosted = HostedPython::new(
        store,
        blobs.clone(),
        spool.join("uploads-python"),
        config.python_max_upload_bytes,
    )
    .context("cannot prepare the Python upload directory")?;
    Ok(Arc::new(PythonRepositories {
        remote: Arc::new(remote),
        hosted: Arc::new(hosted),
    }))
}

fn spawn_upload_expiry(registry: Arc<Registry>, timeout_secs: u64) {
    let period = Duration::from_secs((timeout_secs / 4).clamp(1, 300));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            match registry.expire_uploads(timeout_secs as i64).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "removed abandoned upload sessions"),
                Err(e) => tracing::warn!(error = %e, "could not remove abandoned upload sessions"),
            }
        }
    });
}

/// Keep the audit log at most `max_rows` long, removing the oldest entries:
/// once before serving, then every minute.
async fn start_audit_retention(secrets: SecretService, max_rows: u64) {
    prune_audit(&secrets, max_rows).await;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        // The first tick is immediate: the start-up prune just ran.
        tick.tick().await;
        loop {
            tick.tick().await;
            prune_audit(&secrets, max_rows).await;
        }
    });
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
