//! Upstream registries for the remote-repository tests, all on loopback: Debian's
//! `docker-registry` (the CNCF distribution registry) and a small fixture
//! registry whose misbehaviour (wrong bytes, slow transfers) a test controls.

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::require_tool;

/// A free loopback port (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `docker-registry serve`, killed on drop.
pub struct Distribution {
    child: Option<Child>,
    pub addr: String,
    dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
}

impl Distribution {
    /// An anonymous registry.
    pub fn start() -> Distribution {
        Self::start_with_auth("")
    }

    /// A registry with an `auth:` section (YAML, indented by two spaces).
    pub fn start_with_auth(auth: &str) -> Distribution {
        require_tool("docker-registry", "docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("upstream-")
            .tempdir()
            .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = dir.path().join("registry.log");
        let mut d = Distribution {
            child: None,
            addr,
            dir,
            config,
            log,
        };
        d.spawn();
        d
    }

    /// A directory for fixtures (htpasswd files, certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("cannot start docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&self.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop the registry (the upstream "goes down").
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port and storage.
    pub fn resume(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many GET requests for `path` (e.g. `/v2/team/app/blobs/sha256:...`) the
    /// registry's access log shows.
    pub fn gets_of(&self, path: &str) -> usize {
        let needle = format!("\"GET {path} ");
        self.log_text()
            .lines()
            .filter(|l| l.contains(&needle))
            .count()
    }

    /// `skopeo copy` an OCI layout tag into this registry.
    pub fn push(&self, layout: &Path, tag: &str, image: &str, creds: Option<&str>) {
        let mut command = Command::new("skopeo");
        command.args([
            "--insecure-policy",
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ]);
        if let Some(c) = creds {
            command.arg(format!("--dest-creds={c}"));
        }
        let output = command
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{image}", self.addr))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pushing to the upstream failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How the fixture registry answers for one path.
#[derive(Clone)]
pub struct FixtureResponse {
    pub content_type: String,
    pub body: Vec<u8>,
    /// Pause between 64 KiB chunks, to make a transfer slow.
    pub chunk_delay: Option<Duration>,
}

/// A minimal registry that answers fixed responses by path, counting requests.
pub struct FixtureRegistry {
    pub addr: String,
    pub hits: Arc<Mutex<HashMap<String, usize>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FixtureRegistry {
    pub fn start(routes: HashMap<String, FixtureResponse>) -> FixtureRegistry {
        Self::start_with("127.0.0.1", routes, HashMap::new())
    }

    /// A fixture on another loopback address (e.g. `127.0.0.2`), answering
    /// `redirects` (path -> absolute URL) with 307 Temporary Redirect.
    pub fn start_with(
        host: &str,
        routes: HashMap<String, FixtureResponse>,
        redirects: HashMap<String, String>,
    ) -> FixtureRegistry {
        use axum::body::Body;
        use axum::http::{header, Request, StatusCode};
        use axum::response::Response;

        let listener = TcpListener::bind((host, 0)).unwrap();
        let redirects = Arc::new(redirects);
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let routes = Arc::new(routes);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let counter = hits.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(move |request: Request<Body>| {
                    let routes = routes.clone();
                    let redirects = redirects.clone();
                    let counter = counter.clone();
                    async move {
                        let path = request.uri().path().to_owned();
                        let key = format!("{} {path}", request.method());
                        *counter.lock().unwrap().entry(key).or_default() += 1;
                        if path == "/v2/" {
                            // Docker Hub's rate-limit headers, as entrepot should record them.
                            return Response::builder()
                                .header("ratelimit-limit", "100;w=21600")
                                .header("ratelimit-remaining", "99;w=21600")
                                .body(Body::from("{}"))
                                .unwrap();
                        }
                        if let Some(location) = redirects.get(&path) {
                            return Response::builder()
                                .status(StatusCode::TEMPORARY_REDIRECT)
                                .header(header::LOCATION, location)
                                .body(Body::empty())
                                .unwrap();
                        }
                        let Some(route) = routes.get(&path).cloned() else {
                            return Response::builder()
                                .status(StatusCode::NOT_FOUND)
                                .body(Body::from(r#"{"errors":[{"code":"NOT_FOUND"}]}"#))
                                .unwrap();
                        };
                        let len = route.body.len();
                        let body = if request.method() == axum::http::Method::HEAD {
                            Body::empty()
                        } else if let Some(delay) = route.chunk_delay {
                            let chunks: Vec<Vec<u8>> =
                                route.body.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
                            let stream = futures::stream::iter(chunks).then(move |c| async move {
                                tokio::time::sleep(delay).await;
                                Ok::<_, std::io::Error>(bytes::Bytes::from(c))
                            });
                            Body::from_stream(stream)
                        } else {
                            Body::from(route.body)
                        };
                        Response::builder()
                            .header(header::CONTENT_TYPE, route.content_type)
                            .header(header::CONTENT_LENGTH, len)
                            .body(body)
                            .unwrap()
                    }
                });
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        FixtureRegistry {
            addr,
            hits,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn hits_of(&self, key: &str) -> usize {
        self.hits.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

impl Drop for FixtureRegistry {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

use futures::StreamExt as _;

/// The Python interpreter for fixtures: `ENTREPOT_PYTHON`, the CI virtual
/// environment, or `python3`.
pub fn python() -> String {
    if let Ok(p) = std::env::var("ENTREPOT_PYTHON") {
        return p;
    }
    let ci = Path::new("/opt/entrepot-ci/bin/python3");
    if ci.exists() {
        return ci.display().to_string();
    }
    "python3".into()
}

/// A Docker token service (tests/fixtures/token_server.py) that checks Basic
/// credentials against a file the test can rewrite, killed on drop.
pub struct TokenService {
    child: Child,
    pub addr: String,
    pub credentials_file: PathBuf,
    pub cert: PathBuf,
    log: PathBuf,
}

impl TokenService {
    /// Start with `user:password` lines accepted; tokens live `ttl` seconds.
    pub fn start(dir: &Path, accepted: &str, ttl: u64) -> TokenService {
        Self::spawn(dir, "127.0.0.1", accepted, ttl, &[])
    }

    /// Start on another loopback address (e.g. `127.0.0.2`), also issuing
    /// tokens to requests without credentials, as public registries do.
    pub fn start_anonymous_on(dir: &Path, host: &str, ttl: u64) -> TokenService {
        Self::spawn(dir, host, "", ttl, &["--anonymous", "--host", host])
    }

    fn spawn(dir: &Path, host: &str, accepted: &str, ttl: u64, options: &[&str]) -> TokenService {
        let credentials_file = dir.join("token-credentials");
        fs::write(&credentials_file, accepted).unwrap();
        let port = free_port();
        let log = dir.join("token-server.log");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/token_server.py");
        let child = Command::new(python())
            .arg(script)
            .arg(dir)
            .arg(port.to_string())
            .arg(&credentials_file)
            .args(["upstream-test", "entrepot-test-issuer", &ttl.to_string()])
            .args(options)
            .stdout(Stdio::from(fs::File::create(&log).unwrap()))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start the token server (python3 with the cryptography package)");
        let addr = format!("{host}:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("ready")
        {
            assert!(Instant::now() < deadline, "the token server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        TokenService {
            child,
            addr,
            credentials_file,
            cert: dir.join("token-cert.pem"),
            log,
        }
    }

    /// The `auth:` section that makes docker-registry trust this service.
    pub fn registry_auth(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://{}/token\n    service: upstream-test\n    issuer: entrepot-test-issuer\n    rootcertbundle: {}\n",
            self.addr,
            self.cert.display()
        )
    }

    /// Accept only these `user:password` lines from now on.
    pub fn accept(&self, accepted: &str) {
        fs::write(&self.credentials_file, accepted).unwrap();
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TokenService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
