//! `entrepot serve`: build the application, listen, serve until SIGINT or
//! SIGTERM, then finish the requests in flight.

use std::time::Duration;

use anyhow::Context as _;

use crate::app::App;
use crate::config::Config;

/// Run the server until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let app = App::build(&config).await?;

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
    if let Some(b) = app.bootstrap_token() {
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
    crate::connections::serve(listener, app.router(), limits, shutdown_signal()).await?;
    app.shutdown().await;
    tracing::info!("entrepot stopped");
    Ok(())
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
