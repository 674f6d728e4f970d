//! The `entrepot` binary: the server (`entrepot serve`) and the CLI over its
//! admin API.

mod admin;
mod cli;
mod config;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// entrepot: a self-hosted artifact registry with pull-through caches.
#[derive(Debug, Parser)]
#[command(name = "entrepot", version, about)]
struct Cli {
    /// The entrepot server the CLI talks to.
    #[arg(
        long,
        global = true,
        env = "ENTREPOT_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// Access token for the admin API.
    #[arg(long, global = true, env = "ENTREPOT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the registry server.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Directory for all state (default ./entrepot-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Manage repositories.
    #[command(subcommand)]
    Repositories(cli::repositories::RepositoriesCommand),
    /// Manage secrets and their versions.
    #[command(subcommand)]
    Secrets(cli::secrets::SecretsCommand),
    /// Read the secret access audit log.
    #[command(subcommand)]
    Audit(cli::secrets::AuditCommand),
    /// Maintenance on a data directory (run with the server stopped).
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create a new master key and rewrap every secret's data key with it; old keys are kept.
    RotateMasterKey {
        /// The server's data directory (default ./entrepot-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The server's TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn report(result: Result<(), cli::ClientError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ERROR: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ENTREPOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            config,
        } => {
            let overrides = config::Overrides {
                file: config,
                listen,
                data_dir,
            };
            let config = match config::Config::load(&overrides) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("entrepot: {e}");
                    return ExitCode::from(2);
                }
            };
            init_logging(config.log_format == "json");
            match serve::run(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("entrepot: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Repositories(command) => {
            let client = cli::AdminClient::new(&cli.server, cli.token);
            match cli::repositories::run(&client, command).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ERROR: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Secrets(command) => {
            let client = cli::AdminClient::new(&cli.server, cli.token);
            report(cli::secrets::run(&client, command).await)
        }
        Command::Audit(command) => {
            let client = cli::AdminClient::new(&cli.server, cli.token);
            report(cli::secrets::run_audit(&client, command).await)
        }
        Command::Admin(AdminCommand::RotateMasterKey { data_dir, config }) => {
            let overrides = config::Overrides {
                file: config,
                listen: None,
                data_dir,
            };
            let result = match config::Config::load(&overrides) {
                Ok(config) => admin::rotate_master_key(&config).await,
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ERROR: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
