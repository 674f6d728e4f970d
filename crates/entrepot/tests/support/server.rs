//! The `entrepot serve` process of a test: the real binary on a free loopback
//! port, a temporary data directory, its log in a file, its stdout collected,
//! and its bootstrap admin token kept for later starts on the same data.
//!
//! The server deletes `bootstrap-admin-token` once the token has been used, so
//! the harness keeps a copy beside the data directory
//! (`data_dir.with_extension("admin-token")`) for restarts.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;

/// The entrepot binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_entrepot");

/// The first stdout line, which tests and scripts wait for: then
/// `http://ADDR` or `https://ADDR`.
const LISTENING: &str = "entrepot listening on ";

/// How long a server may take to print a line the test waits for.
const STDOUT_BOUND: Duration = Duration::from_secs(60);

/// Stdout after the listening line, as the server prints it.
#[derive(Default)]
struct Stdout {
    lines: Vec<String>,
    closed: bool,
}

type SharedStdout = Arc<(Mutex<Stdout>, Condvar)>;

/// How to start a server: `Entrepot::builder().env(..).start()`.
pub struct EntrepotBuilder {
    dir: Option<tempfile::TempDir>,
    data_dir: Option<PathBuf>,
    log: Option<PathBuf>,
    log_level: String,
    env: Vec<(String, String)>,
    config: Option<String>,
    tls: Option<ClientTls>,
    database: Option<Arc<super::TestDatabase>>,
}

/// What the harness's HTTP client trusts and presents on an HTTPS server.
#[derive(Clone)]
pub struct ClientTls {
    /// PEM CA certificate that signed the server's certificate.
    pub ca_pem: String,
    /// PEM client certificate followed by its key, for mutual TLS.
    pub identity_pem: Option<String>,
}

impl EntrepotBuilder {
    /// Trust this CA (and present this client identity) when the server
    /// serves HTTPS; the server's own TLS settings are given with `env`.
    pub fn client_tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Set an environment variable of the server (e.g. `ENTREPOT_MAX_PAGE_SIZE`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Set several environment variables.
    pub fn envs(mut self, vars: &[(&str, &str)]) -> Self {
        for (key, value) in vars {
            self = self.env(key, value);
        }
        self
    }

    /// Forget the environment variables set so far.
    pub fn clear_env(mut self) -> Self {
        self.env.clear();
        self
    }

    /// Use this data directory (to start on existing state, or to inspect it)
    /// instead of one in the server's temporary directory.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// Append the server's stderr to this file instead of `DATA.log`.
    pub fn log_file(mut self, path: &Path) -> Self {
        self.log = Some(path.to_owned());
        self
    }

    /// `ENTREPOT_LOG` of the server (default `info,tower_http=debug`).
    pub fn log_level(mut self, filter: &str) -> Self {
        filter.clone_into(&mut self.log_level);
        self
    }

    /// Keep the metadata in this PostgreSQL database (`--database-url`)
    /// instead of the data directory's SQLite file; it lives as long as a
    /// server (or restart) of this builder does.
    pub fn postgres(mut self, database: Arc<super::TestDatabase>) -> Self {
        self.database = Some(database);
        self
    }

    /// A configuration file (TOML) given to `serve --config`.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_owned());
        self
    }

    /// Start the server and wait for its listening line; panics with the
    /// server's log when it does not start.
    pub fn start(mut self) -> Entrepot {
        let dir = self.dir.take().unwrap_or_else(|| {
            tempfile::Builder::new()
                .prefix("entrepot-test-")
                .tempdir()
                .unwrap()
        });
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        fs::create_dir_all(&data_dir).unwrap();
        let log = self
            .log
            .clone()
            .unwrap_or_else(|| data_dir.with_extension("log"));
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        if self.database.is_none() && super::every_server_on_postgres() {
            self.database = super::postgres_database();
        }
        let mut command = Command::new(BIN);
        if let Some(database) = &self.database {
            command.args(["serve", "--database-url", database.url()]);
        } else {
            command.arg("serve");
        }
        command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .env_remove("ENTREPOT_MASTER_KEY_FILE")
            .env_remove("ENTREPOT_DATA_DIR")
            .env_remove("ENTREPOT_LISTEN")
            .env_remove("ENTREPOT_DATABASE_URL")
            .env("ENTREPOT_LOG", &self.log_level)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        if let Some(toml) = &self.config {
            let file = dir.path().join("server-config.toml");
            fs::write(&file, toml).unwrap();
            command.arg("--config").arg(file);
        }
        let mut child = command.spawn().expect("cannot start the entrepot binary");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let Some((scheme, addr)) = first
            .strip_prefix(LISTENING)
            .and_then(|rest| rest.split_once("://"))
            .map(|(scheme, addr)| (scheme.to_owned(), addr.to_owned()))
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "entrepot did not start; first stdout line {first:?}\nlog:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        };
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        let stdout = collect(lines);
        let admin_token = keep_admin_token(&data_dir);
        let mut http = Client::builder();
        if let Some(tls) = &self.tls {
            http = http.add_root_certificate(
                reqwest::Certificate::from_pem(tls.ca_pem.as_bytes()).unwrap(),
            );
            if let Some(identity) = &tls.identity_pem {
                http = http.identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap());
            }
        }
        Entrepot {
            child: Some(child),
            base: format!("{scheme}://{addr}"),
            addr,
            data_dir,
            log,
            dir,
            admin_token,
            http: http
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(300))
                // Below the server's idle timeout (20 s): a pooled connection
                // is never reused at the moment the server closes it.
                .pool_idle_timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            stdout,
            settings: Settings {
                data_dir: self.data_dir,
                log: self.log,
                log_level: self.log_level,
                env: self.env,
                config: self.config,
                tls: self.tls,
                database: self.database,
            },
        }
    }
}

/// Keep reading a server's stdout so it never blocks on a full pipe, and keep
/// the lines for [`Entrepot::stdout_until`].
fn collect(lines: std::io::Lines<BufReader<ChildStdout>>) -> SharedStdout {
    let shared: SharedStdout = Arc::default();
    let writer = shared.clone();
    std::thread::spawn(move || {
        let (state, changed) = &*writer;
        for line in lines {
            let Ok(line) = line else { break };
            state.lock().unwrap().lines.push(line);
            changed.notify_all();
        }
        state.lock().unwrap().closed = true;
        changed.notify_all();
    });
    shared
}

/// The bootstrap admin's token: from the server's file on first start, else
/// from the copy kept beside the data directory.
fn keep_admin_token(data_dir: &Path) -> String {
    let file = data_dir.join("bootstrap-admin-token");
    let kept = data_dir.with_extension("admin-token");
    let token = fs::read_to_string(&file)
        .or_else(|_| fs::read_to_string(&kept))
        .unwrap_or_else(|e| {
            panic!(
                "no bootstrap admin token in {} nor {}: {e}",
                file.display(),
                kept.display()
            )
        })
        .trim()
        .to_owned();
    fs::write(&kept, &token).unwrap();
    token
}

/// What a restart starts again with.
struct Settings {
    data_dir: Option<PathBuf>,
    log: Option<PathBuf>,
    log_level: String,
    env: Vec<(String, String)>,
    config: Option<String>,
    tls: Option<ClientTls>,
    database: Option<Arc<super::TestDatabase>>,
}

/// A running `entrepot serve`, killed on drop. The request, CLI, registry
/// and skopeo helpers act as the bootstrap admin.
pub struct Entrepot {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `http://127.0.0.1:PORT` (`https://` when the server serves TLS).
    pub base: String,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The server's log (its stderr).
    pub log: PathBuf,
    /// The test's own directory: the data directory (unless one was given),
    /// the CLI configuration, the skopeo auth file, scratch files.
    pub dir: tempfile::TempDir,
    /// The bootstrap admin's token.
    pub admin_token: String,
    pub(super) http: Client,
    stdout: SharedStdout,
    settings: Settings,
}

impl Entrepot {
    /// How to start a server; `.start()` it.
    pub fn builder() -> EntrepotBuilder {
        EntrepotBuilder {
            dir: None,
            data_dir: None,
            log: None,
            log_level: "info,tower_http=debug".to_owned(),
            env: Vec::new(),
            config: None,
            tls: None,
            database: None,
        }
    }

    /// The PostgreSQL database the server keeps its metadata in, if it
    /// does not use its data directory's SQLite file.
    pub fn database_url(&self) -> Option<&str> {
        self.settings.database.as_deref().map(|db| db.url())
    }

    /// A fresh server on a temporary data directory.
    pub fn start() -> Entrepot {
        Self::builder().start()
    }

    /// Kill the server and give back a builder that starts it again on the
    /// same data, directory and settings.
    pub fn into_builder(mut self) -> EntrepotBuilder {
        self.kill();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let settings = std::mem::replace(
            &mut self.settings,
            Settings {
                data_dir: None,
                log: None,
                log_level: String::new(),
                env: Vec::new(),
                config: None,
                tls: None,
                database: None,
            },
        );
        EntrepotBuilder {
            dir: Some(dir),
            data_dir: settings.data_dir,
            log: settings.log,
            log_level: settings.log_level,
            env: settings.env,
            config: settings.config,
            tls: settings.tls,
            database: settings.database,
        }
    }

    /// Kill the server and start it again on the same data directory.
    pub fn restart(self) -> Entrepot {
        self.into_builder().start()
    }

    /// Stop the server the way an operator does (SIGTERM) and wait for it to exit.
    pub fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        child.wait().unwrap();
    }

    /// Stop the server with SIGTERM, so that it finishes its shutdown, and
    /// start it again on the same data directory.
    pub fn restart_gracefully(mut self) -> Entrepot {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            child.wait().unwrap();
        }
        self.into_builder().start()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The server's log so far, for failure messages.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The stdout lines after the listening line, up to and including the
    /// first that `matches`; waits for it (bounded), panics if stdout ends first.
    pub fn stdout_until(&self, matches: impl Fn(&str) -> bool) -> Vec<String> {
        let (state, changed) = &*self.stdout;
        let deadline = Instant::now() + STDOUT_BOUND;
        let mut state = state.lock().unwrap();
        loop {
            if let Some(i) = state.lines.iter().position(|l| matches(l)) {
                return state.lines[..=i].to_vec();
            }
            let now = Instant::now();
            assert!(
                !state.closed && now < deadline,
                "the server never printed the line waited for; stdout: {:?}",
                state.lines
            );
            state = changed.wait_timeout(state, deadline - now).unwrap().0;
        }
    }
}

impl Drop for Entrepot {
    fn drop(&mut self) {
        self.kill();
    }
}
