//! Upstream registries for the remote-repository tests, all on loopback:
//! Debian's `docker-registry` (the CNCF distribution registry), a Docker
//! token service, and scripted servers whose answers (and misbehaviour: wrong
//! bytes, slow transfers, redirects, challenges) a test writes as a closure.

use std::collections::HashMap;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;

use super::skopeo::{assert_skopeo_ok, require_tool, skopeo};

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
    /// Holds the htpasswd file of `start_with_htpasswd` while the registry runs.
    htpasswd_dir: Option<tempfile::TempDir>,
}

impl Distribution {
    /// An anonymous registry.
    pub fn start() -> Distribution {
        Self::start_with_auth("")
    }

    /// A registry that accepts only `user` with `password` (htpasswd, bcrypt).
    pub fn start_with_htpasswd(user: &str, password: &str) -> Distribution {
        require_tool("htpasswd", "apache2-utils");
        let dir = tempfile::tempdir().unwrap();
        let htpasswd = dir.path().join("htpasswd");
        let status = Command::new("htpasswd")
            .args(["-Bbc"])
            .arg(&htpasswd)
            .args([user, password])
            .output()
            .unwrap();
        assert!(status.status.success(), "htpasswd failed: {status:?}");
        let mut registry = Self::start_with_auth(&format!(
            "auth:\n  htpasswd:\n    realm: upstream\n    path: {}\n",
            htpasswd.display()
        ));
        registry.htpasswd_dir = Some(dir);
        registry
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
            htpasswd_dir: None,
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
        self.requests_of("GET", path)
    }

    /// How many `method` requests for `path` the registry's access log shows.
    pub fn requests_of(&self, method: &str, path: &str) -> usize {
        let needle = format!("\"{method} {path} ");
        self.log_text()
            .lines()
            .filter(|l| l.contains(&needle))
            .count()
    }

    /// `skopeo copy` an OCI layout tag into this registry.
    pub fn push(&self, layout: &Path, tag: &str, image: &str, creds: Option<&str>) {
        self.copy(layout, tag, image, creds, false);
    }

    /// `skopeo copy --all` an OCI layout's index and every platform into this registry.
    pub fn push_index(&self, layout: &Path, tag: &str, image: &str) {
        self.copy(layout, tag, image, None, true);
    }

    fn copy(&self, layout: &Path, tag: &str, image: &str, creds: Option<&str>, all: bool) {
        let creds = creds.map(|c| format!("--dest-creds={c}"));
        let (src, dst) = (
            format!("oci:{}:{tag}", layout.display()),
            format!("docker://{}/{image}", self.addr),
        );
        let mut args = vec!["copy", "--preserve-digests", "--dest-tls-verify=false"];
        if all {
            args.push("--all");
        }
        args.extend(creds.as_deref());
        args.extend([src.as_str(), dst.as_str()]);
        assert_skopeo_ok(&skopeo(&args), "pushing to the upstream");
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One request a scripted server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

/// What a scripted server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Pause before each 64 KiB chunk of the body, to make a transfer slow.
    pub chunk_delay: Option<Duration>,
    /// Send this many bytes of the body, then wait until the test lets the
    /// rest go (see [`Reply::held_after`]).
    pub hold: Option<(usize, tokio::sync::watch::Receiver<bool>)>,
}

/// Lets the rest of a held body go; dropping it breaks the transfer off.
pub struct Release(tokio::sync::watch::Sender<bool>);

impl Release {
    /// Send the rest of the body, to this request and every later one.
    pub fn release(&self) {
        self.0.send_replace(true);
    }
}

impl Reply {
    /// `200 OK` with a body.
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            chunk_delay: None,
            hold: None,
        }
    }

    /// A status without a body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            chunk_delay: None,
            hold: None,
        }
    }

    /// One more header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Send the first `bytes` of the body at once and the rest only when the
    /// returned [`Release`] says so: a transfer is then under way for as long
    /// as the test needs, without any timing.
    pub fn held_after(mut self, bytes: usize) -> (Reply, Release) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        self.hold = Some((bytes, rx));
        (self, Release(tx))
    }

    /// Send the body in 64 KiB chunks, `delay` apart.
    pub fn slow(mut self, delay: Duration) -> Reply {
        self.chunk_delay = Some(delay);
        self
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A loopback HTTP server answering by a closure, recording every request;
/// stopped on drop.
pub struct ScriptedUpstream {
    pub addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ScriptedUpstream {
    /// Serve on `host` (a loopback address such as `127.0.0.2`), port chosen
    /// by the system.
    pub fn start(
        host: &str,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> ScriptedUpstream {
        Self::start_on(TcpListener::bind((host, 0)).unwrap(), Arc::new(handler))
    }

    fn start_on(listener: TcpListener, handler: Handler) -> ScriptedUpstream {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(
                    move |request: axum::http::Request<axum::body::Body>| {
                        let (handler, record) = (handler.clone(), record.clone());
                        async move { answer(&handler, &record, &request) }
                    },
                );
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        ScriptedUpstream {
            addr,
            seen,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests so far for `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    /// How many requests `METHOD PATH` (e.g. `GET /v2/app/blobs/...`) it received.
    pub fn hits_of(&self, key: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| format!("{} {}", s.method, s.path) == key)
            .count()
    }
}

/// Record a request and build the handler's reply (no body for HEAD; a
/// streamed one when the reply is slow).
fn answer(
    handler: &Handler,
    record: &Mutex<Vec<Seen>>,
    request: &axum::http::Request<axum::body::Body>,
) -> axum::response::Response {
    use axum::body::Body;
    let seen = Seen {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        authorization: request
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap_or("?").to_owned()),
    };
    record.lock().unwrap().push(seen.clone());
    let reply = handler(&seen);
    let mut response = axum::response::Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        response = response.header(k, v);
    }
    let len = reply.body.len();
    let body = if seen.method == "HEAD" {
        Body::empty()
    } else if let Some((first, mut released)) = reply.hold {
        let mut body = reply.body;
        let rest = body.split_off(first.min(body.len()));
        let stream = futures::stream::once(async move { Ok(bytes::Bytes::from(body)) }).chain(
            futures::stream::once(async move {
                match released.wait_for(|r| *r).await {
                    Ok(_) => Ok(bytes::Bytes::from(rest)),
                    Err(_) => Err(std::io::Error::other("the test dropped the release")),
                }
            }),
        );
        Body::from_stream(stream)
    } else if let Some(delay) = reply.chunk_delay {
        let chunks: Vec<Vec<u8>> = reply.body.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
        let stream = futures::stream::iter(chunks).then(move |c| async move {
            tokio::time::sleep(delay).await;
            Ok::<_, std::io::Error>(bytes::Bytes::from(c))
        });
        Body::from_stream(stream)
    } else {
        Body::from(reply.body)
    };
    response.header("content-length", len).body(body).unwrap()
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A minimal registry on a scripted server: fixed replies by path, some
/// paths redirected, `/v2/` with Docker Hub's rate-limit headers.
pub struct FixtureRegistry(ScriptedUpstream);

impl FixtureRegistry {
    /// Serve `routes` (path -> reply) on 127.0.0.1.
    pub fn start(routes: HashMap<String, Reply>) -> FixtureRegistry {
        Self::start_with("127.0.0.1", routes, HashMap::new())
    }

    /// Serve on another loopback address (e.g. `127.0.0.2`), answering
    /// `redirects` (path -> absolute URL) with 307 Temporary Redirect.
    pub fn start_with(
        host: &str,
        routes: HashMap<String, Reply>,
        redirects: HashMap<String, String>,
    ) -> FixtureRegistry {
        FixtureRegistry(ScriptedUpstream::start(host, move |seen| {
            if seen.path == "/v2/" {
                // Docker Hub's rate-limit headers, as entrepot should record them.
                return Reply {
                    body: b"{}".to_vec(),
                    ..Reply::status(200)
                }
                .header("ratelimit-limit", "100;w=21600")
                .header("ratelimit-remaining", "99;w=21600");
            }
            if let Some(location) = redirects.get(&seen.path) {
                return Reply::status(307).header("location", location);
            }
            routes.get(&seen.path).cloned().unwrap_or_else(|| Reply {
                body: br#"{"errors":[{"code":"NOT_FOUND"}]}"#.to_vec(),
                ..Reply::status(404)
            })
        }))
    }
}

impl std::ops::Deref for FixtureRegistry {
    type Target = ScriptedUpstream;

    fn deref(&self) -> &ScriptedUpstream {
        &self.0
    }
}

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
