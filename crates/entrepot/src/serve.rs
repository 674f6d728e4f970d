//! `entrepot serve`: wire storage, services and front-ends together and run.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use entrepot_api::AppState;
use entrepot_domain::repository::{RemoteConfig, DEFAULT_TAG_TTL_SECS};
use entrepot_domain::{Format, Mode, ProjectId, RepositoryName};
use entrepot_services::access_policy::StoredAuditLog;
use entrepot_services::metrics::Metrics;
use entrepot_services::oci::RemoteOci;
use entrepot_services::python::{HostedPython, PythonRepositories, RemotePython};
use entrepot_services::remote::Fills;
use entrepot_services::secrets::{FileKeyRing, KeyRing as _};
use entrepot_services::{
    AccessControl, AccessPolicyService, NewRepository, OciRepositories, ProjectError,
    ProjectService, RepositoryService, SecretService,
};
use entrepot_storage::{
    create_private_dir, BlobStore, CacheStore, MetadataStore, ObjectBlobStore, PythonStore,
    SqliteMetadataStore,
};
use entrepot_upstream::{UpstreamClient, UpstreamTransport};

use crate::config::{Config, VerifyOnStart};

/// The project every installation starts with.
pub const DEFAULT_PROJECT: &str = "default";

/// Run the server until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    // Everything in the data directory is the server's alone: 0700, files 0600.
    create_private_dir(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let db_path = config.data_dir.join("metadata.db");
    private_database_file(&db_path)
        .with_context(|| format!("cannot create {}", db_path.display()))?;
    let sqlite = Arc::new(
        SqliteMetadataStore::open(&db_path)
            .await
            .context("cannot open the metadata database")?,
    );
    sqlite.spawn_wal_checkpoints();
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
    spawn_blob_verification(blobs.clone(), &config);

    let metrics = Arc::new(Metrics::default());
    {
        let sqlite = sqlite.clone();
        metrics.report_read_cache(move || sqlite.read_cache_stats());
    }
    // Every upstream hop, and every new remote repository's upstream, passes
    // the organisation's registry access policy.
    let access_policy = Arc::new(
        AccessPolicyService::new(sqlite.clone(), metrics.clone())
            .with_audit_log(Arc::new(StoredAuditLog(sqlite.clone())))
            .with_access_control(iam.clone()),
    );
    let access: Arc<dyn AccessControl> = iam.clone();
    let projects = ProjectService::new(meta.clone()).with_access_control(access.clone());
    let repositories =
        RepositoryService::new(meta.clone()).with_upstream_check(access_policy.clone());
    bootstrap(&projects, &repositories).await?;

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
    let secrets = SecretService::new(sqlite.clone(), meta.clone(), keys, access.clone())
        .with_metrics(metrics.clone());

    let upstream: Arc<dyn UpstreamTransport> =
        Arc::new(UpstreamClient::new(access_policy.clone())?);
    // The spool lives beside the blobs, so a finished download is committed by a link.
    let fills = Fills::new(
        config.data_dir.join("blobs").join("spool"),
        blobs.clone(),
        metrics.clone(),
    )
    .context("cannot prepare the cache spool directory")?;
    let remote = Arc::new(RemoteOci::new(
        meta.clone(),
        cache,
        blobs.clone(),
        fills,
        upstream.clone(),
        metrics.clone(),
        Arc::new(secrets.clone()),
    ));
    let (hosted_python, remote_python) =
        python_repositories(&config, &sqlite, &blobs, &upstream, &metrics, &secrets)?;
    let remote_python = Arc::new(remote_python);
    // Callers of the repository service are authorized by it; testUpstream
    // goes to the remote engine of the repository's format.
    let repositories = repositories
        .with_access_control(access.clone())
        .with_secrets(secrets.clone())
        .with_upstream_tester(Format::Docker, remote.clone())
        .with_upstream_tester(Format::Python, remote_python.clone());
    let python = Arc::new(PythonRepositories::new(
        access.clone(),
        repositories.clone(),
        Arc::new(hosted_python),
        remote_python,
    ));
    let registry = Arc::new(
        OciRepositories::new(meta.clone(), blobs, access.clone())
            .with_remote(remote)
            .with_min_free_disk_bytes(config.min_free_disk_bytes)
            .with_max_page_size(config.max_page_size),
    );
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

    let limits = crate::connections::Limits {
        header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
        idle_timeout: Duration::from_secs(config.idle_timeout_secs),
        max_connections: crate::connections::fit_to_fd_limit(config.max_connections),
    };
    crate::connections::serve(
        listener,
        entrepot_api::router(state),
        limits,
        shutdown_signal(),
    )
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

/// The hosted and remote sides of the Python repositories: remote ones fill
/// through their own spool directory beside the blobs; uploads to hosted
/// ones are staged there too.
fn python_repositories(
    config: &Config,
    sqlite: &Arc<SqliteMetadataStore>,
    blobs: &Arc<dyn BlobStore>,
    upstream: &Arc<dyn UpstreamTransport>,
    metrics: &Arc<Metrics>,
    secrets: &SecretService,
) -> anyhow::Result<(HostedPython, RemotePython)> {
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
    .context("cannot prepare the Python scratch directory")?
    .with_max_page_files(config.python_max_page_files);
    let hosted = HostedPython::new(
        store,
        blobs.clone(),
        spool.join("uploads-python"),
        config.python_max_upload_bytes,
    )
    .context("cannot prepare the Python upload directory")?;
    Ok((hosted, remote))
}

/// Create the metadata database file with mode 0600 before SQLite does (it
/// would use 0644), or tighten an existing one: SQLite gives its `-wal` and
/// `-shm` files the mode of the database file.
fn private_database_file(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            match std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

/// The marker a completed blob verification leaves in the data directory.
const VERIFIED_MARKER: &str = "blobs-verified";

/// Rehash the blob store in the background (the server is already serving),
/// quarantining blobs whose bytes do not match their digest: a blob poisoned
/// before uploads were fixed, or damaged on disk, is then no longer served.
fn spawn_blob_verification(blobs: Arc<dyn BlobStore>, config: &Config) {
    let marker = config.data_dir.join(VERIFIED_MARKER);
    let run = match config.verify_blobs_on_start {
        VerifyOnStart::Never => false,
        VerifyOnStart::Always => true,
        VerifyOnStart::Once => !marker.exists(),
    };
    if !run {
        return;
    }
    tokio::spawn(async move {
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
    });
}

fn write_marker(path: &std::path::Path, checked: u64) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    writeln!(options.open(path)?, "{checked} blobs verified")
}

fn spawn_upload_expiry(registry: Arc<OciRepositories>, timeout_secs: u64) {
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
