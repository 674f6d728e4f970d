//! `entrepot serve`: wire storage, services and front-ends together and run.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use entrepot_api::AppState;
use entrepot_domain::ProjectId;
use entrepot_services::secrets::{FileKeyRing, KeyRing as _};
use entrepot_services::{
    AccessControl, AllowAll, ProjectService, Registry, RepositoryService, SecretService,
};
use entrepot_storage::{BlobStore, MetadataStore, ObjectBlobStore, SqliteMetadataStore};

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
    let blobs = Arc::new(
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

    let projects = ProjectService::new(meta.clone());
    let default_project: ProjectId = DEFAULT_PROJECT.parse()?;
    projects.ensure(&default_project).await?;

    let access: Arc<dyn AccessControl> = Arc::new(AllowAll);
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

    let registry = Arc::new(Registry::new(meta.clone(), blobs));
    let state = AppState {
        registry: registry.clone(),
        repositories: RepositoryService::new(meta.clone()),
        projects,
        access,
        secrets,
    };

    spawn_upload_expiry(registry, config.upload_timeout_secs);

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // The first line on stdout is machine-readable: tests and scripts wait for it.
    println!("entrepot listening on http://{addr}");
    println!(
        "  data directory: {}\n  create a repository: entrepot repositories create images --repository-format=docker\n  push: skopeo copy --dest-tls-verify=false oci:./layout docker://{addr}/default/images/app:1.0\n  pull: skopeo copy --src-tls-verify=false docker://{addr}/default/images/app:1.0 oci:./copy",
        config.data_dir.display()
    );
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "entrepot started");

    axum::serve(listener, entrepot_api::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("entrepot stopped");
    Ok(())
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
