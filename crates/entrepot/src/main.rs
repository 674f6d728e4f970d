//! The `entrepot` binary: the server (`entrepot serve`) and the CLI over its
//! admin API.

mod cli;

use entrepot::{admin, config, serve};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// entrepot: a self-hosted artifact registry with pull-through caches.
#[derive(Debug, Parser)]
#[command(name = "entrepot", version, about)]
struct Cli {
    /// The entrepot server the CLI talks to (default: from `entrepot login`, else
    /// http://127.0.0.1:8080).
    #[arg(long, global = true, env = "ENTREPOT_SERVER")]
    server: Option<String>,
    /// Access token for the admin API (default: from `entrepot login`).
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
        /// Estimated bytes the in-process read cache may hold (default
        /// 150994944, 144 MiB; 0: no cache, every lookup reads the database).
        #[arg(long)]
        read_cache_bytes: Option<u64>,
        /// Keep the metadata in this PostgreSQL database
        /// (postgres://user:password@host/db), shared by every server
        /// pointed at it; unset: the SQLite file of the data directory.
        #[arg(long)]
        database_url: Option<String>,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key;
        /// reloaded on SIGHUP and when the file changes).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Require client certificates signed by a CA in this PEM file (mutual TLS).
        #[arg(long)]
        tls_client_ca: Option<PathBuf>,
        /// Print the effective configuration (file, environment and flags
        /// applied) as TOML and exit.
        #[arg(long)]
        print_config: bool,
        /// `/readyz` fails below this many free bytes on the data
        /// directory's filesystem (default 1073741824; 0: no check).
        #[arg(long)]
        min_free_disk: Option<u64>,
        /// Seconds between garbage collections (default 3600; 0: only
        /// `entrepot admin gc`).
        #[arg(long)]
        gc_interval: Option<u64>,
        /// Most bytes all remote repositories together may cache (binary
        /// units: 500GiB); past it the least recently pulled images go.
        #[arg(long)]
        cache_max_size: Option<entrepot_domain::ByteSize>,
        /// Seconds between runs of the repositories' cleanup policies
        /// (default 3600; 0: only `entrepot repositories cleanup`).
        #[arg(long)]
        cleanup_interval: Option<u64>,
        /// Where blobs live (default <data-dir>/blobs): an S3-compatible
        /// bucket, s3://BUCKET?endpoint=http://127.0.0.1:3900&region=garage,
        /// with its key in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
        #[arg(long)]
        blob_store: Option<String>,
    },
    /// Manage repositories.
    #[command(subcommand)]
    Repositories(Box<cli::repositories::RepositoriesCommand>),
    /// What repositories hold: Docker images and tags, packages, versions.
    #[command(subcommand)]
    Artifacts(cli::artifacts::ArtifactsCommand),
    /// Manage Python packages (yank, unyank).
    #[command(subcommand)]
    Python(cli::python::PythonCommand),
    /// Manage projects.
    #[command(subcommand)]
    Projects(cli::projects::ProjectsCommand),
    /// IAM policy of the organisation (applies to every project).
    #[command(subcommand)]
    Organization(cli::organization::OrganizationCommand),
    /// Manage local users.
    #[command(subcommand)]
    Users(cli::users::UsersCommand),
    /// Manage service accounts.
    #[command(subcommand)]
    ServiceAccounts(cli::service_accounts::ServiceAccountsCommand),
    /// Manage personal access tokens.
    #[command(subcommand)]
    Tokens(cli::tokens::TokensCommand),
    /// The organisation's registry access policy: which upstream hosts may be contacted.
    #[command(subcommand)]
    AccessPolicy(cli::access_policy::AccessPolicyCommand),
    /// Check a token against the server and remember both for later commands.
    Login {
        /// File holding the token (`-`: standard input).
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// Manage secrets and their versions.
    #[command(subcommand)]
    Secrets(cli::secrets::SecretsCommand),
    /// Read the secret access audit log.
    #[command(subcommand)]
    Audit(cli::secrets::AuditCommand),
    /// Maintenance: on a data directory with the server stopped, or (`gc`) on
    /// a running server.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Delete the blobs no repository links any more, on the running server
    /// (over the admin API), and report what was reclaimed.
    Gc(cli::admin_gc::GcArgs),
    /// Create a new master key and rewrap every secret's data key with it; old keys are kept.
    RotateMasterKey {
        /// The server's data directory (default ./entrepot-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The server's TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Rehash every stored blob; move those whose bytes do not match their digest
    /// to the quarantine directory (exit status 1 if any).
    VerifyBlobs {
        /// The server's data directory (default ./entrepot-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The server's TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ENTREPOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into a file or a journal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
            read_cache_bytes,
            database_url,
            tls_cert,
            tls_key,
            tls_client_ca,
            print_config,
            min_free_disk,
            gc_interval,
            cache_max_size,
            cleanup_interval,
            blob_store,
        } => {
            let overrides = config::Overrides {
                file: config,
                listen,
                data_dir,
                read_cache_bytes,
                database_url,
                tls_cert,
                tls_key,
                tls_client_ca,
                min_free_disk_bytes: min_free_disk,
                gc_interval_secs: gc_interval,
                cache_max_size,
                cleanup_interval_secs: cleanup_interval,
                blob_store,
            };
            let config = match config::Config::load(&overrides) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("entrepot: {e}");
                    return ExitCode::from(2);
                }
            };
            if print_config {
                print!("{}", config.to_toml());
                return ExitCode::SUCCESS;
            }
            init_logging(config.log_format == "json");
            match serve::run(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("entrepot: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Admin(AdminCommand::RotateMasterKey { data_dir, config }) => {
            let overrides = config::Overrides {
                file: config,
                listen: None,
                data_dir,
                ..config::Overrides::default()
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
        Command::Admin(AdminCommand::VerifyBlobs { data_dir, config }) => {
            let overrides = config::Overrides {
                file: config,
                listen: None,
                data_dir,
                ..config::Overrides::default()
            };
            let result = match config::Config::load(&overrides) {
                Ok(config) => admin::verify_blobs(&config).await,
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(0) => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("ERROR: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        command => {
            let (server, token) = cli::login::resolve(cli.server, cli.token);
            let client = cli::AdminClient::new(&server, token.clone());
            let result = match command {
                Command::Serve { .. } => Ok(()),
                Command::Repositories(command) => cli::repositories::run(&client, *command).await,
                Command::Artifacts(command) => cli::artifacts::run(&client, command).await,
                Command::Python(command) => cli::python::run(&client, command).await,
                Command::Projects(command) => cli::projects::run(&client, command).await,
                Command::Organization(command) => cli::organization::run(&client, command).await,
                Command::Users(command) => cli::users::run(&client, command).await,
                Command::ServiceAccounts(command) => {
                    cli::service_accounts::run(&client, command).await
                }
                Command::Tokens(command) => cli::tokens::run(&client, command).await,
                Command::Secrets(command) => cli::secrets::run(&client, command).await,
                Command::Audit(command) => cli::secrets::run_audit(&client, command).await,
                Command::Admin(AdminCommand::Gc(args)) => cli::admin_gc::run(&client, args).await,
                Command::Admin(_) => Ok(()),
                Command::AccessPolicy(command) => cli::access_policy::run(&client, command).await,
                Command::Login { token_file } => {
                    cli::login::login(&server, token, token_file.as_deref()).await
                }
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ERROR: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
