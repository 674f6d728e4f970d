//! One upstream that can be made sick at run time: a loopback proxy in front
//! of a real upstream (docker-registry, pypiserver) that, switched with
//! [`SickUpstream::set`], passes requests through or fails them in one of the
//! classes of the sick-upstream contract (docs/remote.md): connections
//! refused, requests that hang (before the headers or mid-body), 5xx, 429 with
//! or without `Retry-After`, 401/403 from the registry or from its token
//! service, 404, corrupted bytes. A TLS error is this plain-HTTP server named
//! by an `https://` URL ([`SickUpstream::https_url`]); a DNS failure is a name
//! under `.invalid`, which never resolves. Its `/token` is a token service
//! that hands out tokens (the backend is anonymous) unless told to refuse.

use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use futures::StreamExt as _;

/// Every failure class the fixture can be switched into but corruption,
/// with the status a request for content that was never cached gets
/// (the same for a Docker and a Python remote repository).
pub const CLASSES: [(Sickness, u16); 11] = [
    (Sickness::Refuse, 503),
    (Sickness::Hang, 503),
    (Sickness::ServerError(500), 503),
    (Sickness::ServerError(503), 503),
    (Sickness::TooManyRequests(Some(9)), 429),
    (Sickness::TooManyRequests(None), 429),
    (Sickness::RegistryRefuses(401), 502),
    (Sickness::RegistryRefuses(403), 502),
    (Sickness::TokenServiceRefuses(401), 502),
    (Sickness::TokenServiceRefuses(403), 502),
    (Sickness::NotFound, 404),
];

/// Check the answer to a request for content the upstream sent corrupt:
/// the mismatch shows before the answer (502), or breaks the answer off —
/// after its head (a body that ends with an error) or before it (the
/// connection closes when the fill fails before its first byte was flushed).
/// Never the whole corrupt body.
pub fn assert_corrupt_answer_broken(answer: reqwest::Result<reqwest::blocking::Response>) {
    match answer {
        Ok(answer) if answer.status() == 200 => {
            assert!(answer.bytes().is_err(), "corrupt bytes were served whole")
        }
        Ok(answer) => assert_eq!(answer.status(), 502),
        Err(e) => assert!(e.is_request(), "not a broken-off answer: {e}"),
    }
}

/// What the upstream does with the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sickness {
    /// Pass every request to the real upstream.
    Healthy,
    /// Accept no connection (the port is closed).
    Refuse,
    /// Accept the request and never answer.
    Hang,
    /// Answer the headers and half of the body, then stall for ever.
    HangMidBody,
    /// Answer this 5xx status.
    ServerError(u16),
    /// `429 Too Many Requests`, with `Retry-After: N` when given.
    TooManyRequests(Option<u64>),
    /// The registry itself refuses: 401 with a Basic challenge, or 403.
    RegistryRefuses(u16),
    /// The registry asks for a Bearer token whose service (this server's
    /// `/token`) refuses with this status.
    TokenServiceRefuses(u16),
    /// `404` with the OCI `NAME_UNKNOWN` error (or a plain 404 for Python).
    NotFound,
    /// Pass through, but with every byte of the body flipped.
    Corrupt,
}

struct Shared {
    sickness: Mutex<Sickness>,
    backend: String,
    addr: String,
    http: reqwest::Client,
    requests: Mutex<Vec<String>>,
}

/// The switchable upstream; stopped on drop.
pub struct SickUpstream {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    serving: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl SickUpstream {
    /// A healthy proxy in front of `backend` (`host:port`, plain http).
    pub fn start(backend: &str) -> SickUpstream {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Shared {
            sickness: Mutex::new(Sickness::Healthy),
            backend: backend.to_owned(),
            addr,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            requests: Mutex::default(),
        });
        let mut upstream = SickUpstream {
            shared,
            runtime: Some(runtime),
            serving: None,
        };
        upstream.serve(listener);
        upstream
    }

    /// `host:port` of the proxy.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// `https://host:port` of this plain-HTTP server: every handshake fails.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.shared.addr)
    }

    /// Switch to `sickness` from the next request (or connection) on.
    pub fn set(&mut self, sickness: Sickness) {
        let before = std::mem::replace(&mut *self.shared.sickness.lock().unwrap(), sickness);
        if sickness == Sickness::Refuse && before != Sickness::Refuse {
            self.stop_serving();
        } else if before == Sickness::Refuse && sickness != Sickness::Refuse {
            let listener = StdListener::bind(&self.shared.addr).unwrap();
            self.serve(listener);
        }
    }

    /// `METHOD path` of every request that reached the proxy.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// How many requests for paths containing `part` reached the proxy.
    pub fn requests_for(&self, part: &str) -> usize {
        self.requests().iter().filter(|r| r.contains(part)).count()
    }

    /// Forget the requests seen so far.
    pub fn clear_requests(&self) {
        self.shared.requests.lock().unwrap().clear();
    }

    fn serve(&mut self, listener: StdListener) {
        listener.set_nonblocking(true).unwrap();
        let shared = self.shared.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = self.runtime.as_ref().unwrap();
        let task = runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().fallback(move |request: Request<Body>| {
                let shared = shared.clone();
                async move { answer(&shared, request).await }
            });
            // No graceful shutdown: hung requests must not keep the port.
            tokio::select! {
                _ = axum::serve(listener, app) => {}
                _ = rx => {}
            }
        });
        self.serving = Some((tx, task));
    }

    fn stop_serving(&mut self) {
        if let Some((tx, task)) = self.serving.take() {
            let _ = tx.send(());
            let runtime = self.runtime.as_ref().unwrap();
            let _ = runtime.block_on(task);
        }
    }
}

impl Drop for SickUpstream {
    fn drop(&mut self) {
        self.stop_serving();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn status(code: u16) -> axum::http::response::Builder {
    Response::builder().status(StatusCode::from_u16(code).unwrap())
}

fn oci_error(code: u16, oci: &str, message: &str) -> Response<Body> {
    status(code)
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::json!({"errors": [{"code": oci, "message": message}]}).to_string(),
        ))
        .unwrap()
}

async fn answer(shared: &Shared, request: Request<Body>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    shared
        .requests
        .lock()
        .unwrap()
        .push(format!("{} {path}", request.method()));
    let sickness = *shared.sickness.lock().unwrap();
    // The token service stays up unless told to refuse: a client that once
    // learned the Bearer challenge keeps asking it first.
    if path == "/token" && !matches!(sickness, Sickness::TokenServiceRefuses(_) | Sickness::Hang) {
        return status(200)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"token":"sick","expires_in":300}"#))
            .unwrap();
    }
    match sickness {
        Sickness::Healthy | Sickness::Corrupt | Sickness::HangMidBody => {}
        Sickness::Refuse => return status(503).body(Body::empty()).unwrap(),
        Sickness::Hang => std::future::pending().await,
        Sickness::ServerError(code) => {
            return oci_error(code, "UNAVAILABLE", "the fixture upstream is failing")
        }
        Sickness::TooManyRequests(after) => {
            let mut r = oci_error(429, "TOOMANYREQUESTS", "slow down");
            if let Some(after) = after {
                r.headers_mut()
                    .insert("retry-after", after.to_string().parse().unwrap());
            }
            return r;
        }
        Sickness::RegistryRefuses(code) => {
            let mut r = oci_error(code, "DENIED", "the fixture upstream refuses");
            if code == 401 {
                r.headers_mut()
                    .insert("www-authenticate", "Basic realm=\"sick\"".parse().unwrap());
            }
            return r;
        }
        Sickness::TokenServiceRefuses(code) => {
            if path == "/token" {
                return status(code).body(Body::from("no token for you")).unwrap();
            }
            let challenge = format!(
                "Bearer realm=\"http://{}/token\",service=\"sick\"",
                shared.addr
            );
            let mut r = oci_error(401, "UNAUTHORIZED", "authentication required");
            r.headers_mut()
                .insert("www-authenticate", challenge.parse().unwrap());
            return r;
        }
        Sickness::NotFound => {
            return oci_error(404, "NAME_UNKNOWN", "repository name not known to registry")
        }
    }
    proxy(shared, request, sickness).await
}

/// Pass `request` to the backend and its answer back, made sick as asked.
async fn proxy(shared: &Shared, request: Request<Body>, sickness: Sickness) -> Response<Body> {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let url = format!("http://{}{path_and_query}", shared.backend);
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes()).unwrap();
    let mut outgoing = shared.http.request(method, &url);
    for (name, value) in request.headers() {
        if name != "host" && name != "authorization" {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
    }
    let upstream = match outgoing.send().await {
        Ok(r) => r,
        Err(e) => return status(502).body(Body::from(e.to_string())).unwrap(),
    };
    let mut response = status(upstream.status().as_u16());
    for (name, value) in upstream.headers() {
        if name != "transfer-encoding" && name != "connection" {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    let body = match sickness {
        Sickness::Corrupt => {
            let bytes = upstream.bytes().await.unwrap_or_default();
            Body::from(bytes.iter().map(|b| !b).collect::<Vec<u8>>())
        }
        Sickness::HangMidBody => {
            let bytes = upstream.bytes().await.unwrap_or_default();
            let half = bytes.slice(..bytes.len() / 2);
            let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(half) }).chain(
                futures::stream::once(async {
                    std::future::pending::<Result<bytes::Bytes, std::io::Error>>().await
                }),
            );
            Body::from_stream(stream)
        }
        _ => Body::from_stream(upstream.bytes_stream()),
    };
    response.body(body).unwrap()
}

/// A remote Docker repository `up` in front of a [`SickUpstream`] with small
/// time limits (1 s to connect, to the first byte and idle, 2 s over all
/// retries) plus `settings`, and an image `app:1.0` at its healthy backend:
/// the working directory, the backend, the sick upstream and the server.
pub fn remote_behind_sick_upstream(
    settings: serde_json::Value,
) -> (
    tempfile::TempDir,
    super::Distribution,
    SickUpstream,
    super::Entrepot,
) {
    let work = tempfile::tempdir().unwrap();
    let original = work.path().join("original");
    super::image_layout(&original, "1.0", &[1000]);
    let backend = super::Distribution::start();
    backend.push(&original, "1.0", "app:1.0", None);
    let sick = SickUpstream::start(&backend.addr);
    let server = super::Entrepot::start();
    let mut config = serde_json::json!({
        "connectTimeoutSecs": 1,
        "firstByteTimeoutSecs": 1,
        "retryBudgetSecs": 2,
        "idleTimeoutSecs": 1,
    });
    if let (Some(config), serde_json::Value::Object(extra)) = (config.as_object_mut(), settings) {
        config.extend(extra);
    }
    server.create_remote_docker("up", &sick.url(), config);
    (work, backend, sick, server)
}
