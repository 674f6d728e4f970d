//! `entrepot serve`: build the application, listen, serve until SIGINT or
//! SIGTERM, then finish the requests in flight.

use std::time::Duration;

use anyhow::Context as _;

use crate::app::App;
use crate::config::Config;

/// Run the server until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let app = App::build(&config).await?;

    // TLS files are read before the port is taken: a bad certificate stops
    // the start with the file named, and nothing listens half-configured.
    let tls = match config.tls_files() {
        Some(files) => Some(crate::tls::ReloadableTls::load(files)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // The first line on stdout is machine-readable: tests and scripts wait for it.
    println!("entrepot listening on {scheme}://{addr}");
    print!("{}", banner(&config, scheme, addr));
    if let Some(b) = app.bootstrap_token() {
        let insecure = if tls.is_some() {
            ""
        } else {
            "--tls-verify=false "
        };
        println!(
            "  bootstrap admin token (shown once; also in {path}):\n    {token}\n  log in: entrepot login --server {scheme}://{addr} --token-file {path}\n  registry login: skopeo login {insecure}-u admin --password-stdin {addr} < {path}\n  {path} is deleted once the token has been used or another owner exists: copy the token first",
            path = b.path.display(),
            token = b.token.expose(),
        );
    }
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "entrepot started");

    let limits = crate::connections::Limits {
        header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
        idle_timeout: Duration::from_secs(config.idle_timeout_secs),
        max_connections: crate::connections::fit_to_fd_limit(config.max_connections),
        sendfile: config.sendfile,
    };
    if let Some(tls) = &tls {
        tls.watch();
    }
    crate::connections::serve(listener, app.router(), limits, tls, shutdown_signal()).await?;
    app.shutdown().await;
    tracing::info!("entrepot stopped");
    Ok(())
}

/// The lines after the listening line: where data lives and how to use the
/// registry with the usual clients.
fn banner(config: &Config, scheme: &str, addr: std::net::SocketAddr) -> String {
    let (src, dest) = if scheme == "https" {
        // A certificate from a private CA: skopeo reads DIR/ca.crt.
        ("--src-cert-dir DIR ", "--dest-cert-dir DIR ")
    } else {
        ("--src-tls-verify=false ", "--dest-tls-verify=false ")
    };
    let mut text = format!(
        "  data directory: {data}\n  pull through Docker Hub: skopeo copy {src}docker://{addr}/default/docker-hub/alpine:latest oci:/tmp/alpine:latest\n  create a hosted repository: entrepot repositories create images --repository-format=docker\n  push: skopeo copy {dest}oci:/tmp/alpine:latest docker://{addr}/default/images/alpine:latest\n  install through PyPI: pip install --index-url {scheme}://__token__:TOKEN@{addr}/pypi/default/pypi/simple/ PACKAGE\n    (TOKEN: a personal access token, such as the bootstrap token below; the user name is __token__)\n",
        data = config.data_dir.display(),
    );
    if scheme == "https" {
        text.push_str(
            "  TLS: reload the certificate with SIGHUP (or replace the files; checked every 5 s)\n",
        );
    }
    text
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
