//! The application in-process: [`TestApp`] builds the real router with
//! `entrepot::app::App` on a temporary data directory and sends requests to
//! it with `tower::ServiceExt::oneshot`, no socket and no child process. For
//! tests of the API's shape (status, headers, JSON bodies) that need no client
//! tool; a test that needs skopeo, pip or a restart starts
//! [`super::Entrepot`] instead.
//!
//! Tests using it are `#[tokio::test]`: building the application spawns its
//! background tasks on the test's runtime.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use entrepot::app::App;
use entrepot::config::{Config, VerifyOnStart};
use serde_json::Value;
use tower::ServiceExt as _;

/// The peer every in-process request comes from, as the accept loop would
/// record it for a loopback client.
const PEER: ([u8; 4], u16) = ([127, 0, 0, 1], 40_000);

/// Largest response body a test reads (the router's answers in these tests
/// are small; a blob test should use the real server).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// How to build a [`TestApp`]: `TestApp::builder().config(|c| ..).build().await`.
pub struct TestAppBuilder {
    dir: tempfile::TempDir,
    config: Config,
}

impl TestAppBuilder {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("entrepot-app-")
            .tempdir()
            .unwrap();
        let config = Config {
            data_dir: dir.path().join("data"),
            // Tests run on whatever disk the machine has; /readyz tests set it.
            min_free_disk_bytes: 0,
            // A new data directory has no blob to verify.
            verify_blobs_on_start: VerifyOnStart::Never,
            ..Config::default()
        };
        Self { dir, config }
    }

    /// Change the configuration before the application is built (e.g.
    /// `c.max_page_size = 2`). The data directory is set already.
    pub fn config(mut self, edit: impl FnOnce(&mut Config)) -> Self {
        edit(&mut self.config);
        self
    }

    /// Build the application on its new temporary data directory; panics
    /// with the build error.
    pub async fn build(self) -> TestApp {
        let Self { dir, config } = self;
        let app = match App::build(&config).await {
            Ok(app) => app,
            Err(e) => panic!(
                "the application does not build: {:#}",
                anyhow::Error::from(e)
            ),
        };
        let admin_token = app
            .bootstrap_token()
            .expect("a new data directory creates the bootstrap admin")
            .token
            .expose()
            .to_owned();
        TestApp {
            router: app.router(),
            app,
            admin_token,
            config,
            _dir: dir,
        }
    }
}

/// The real application in-process, on its own temporary data directory.
pub struct TestApp {
    router: Router,
    /// The application; its background tasks stop when the test drops it.
    pub app: App,
    /// The bootstrap admin's token (owner of the organisation).
    pub admin_token: String,
    /// The configuration it was built with.
    pub config: Config,
    _dir: tempfile::TempDir,
}

/// An answer of the router, body read in full.
pub struct TestResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl TestResponse {
    /// The status as a number.
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// A header as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics, showing the body, when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} answer is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }
}

impl TestApp {
    /// The default application: `TestApp::new().await`.
    pub async fn new() -> Self {
        Self::builder().build().await
    }

    /// An application with configuration changes.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::new()
    }

    /// Send one request to the router, from a loopback peer.
    pub async fn send(&self, mut request: Request<Body>) -> TestResponse {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(PEER)));
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|e| match e {});
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, MAX_BODY)
            .await
            .expect("the response body can be read")
            .to_vec();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// `method path` with `token` as a Bearer credential (none: anonymous)
    /// and `body` as JSON.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> TestResponse {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }

    /// GET `path` with extra headers and `token` as a Bearer credential
    /// (none: anonymous).
    pub async fn get_with(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut request = Request::builder().method(Method::GET).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    /// GET `path` as the admin.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.request(Method::GET, path, Some(&self.admin_token), None)
            .await
    }

    /// GET `path` without credentials.
    pub async fn get_anonymous(&self, path: &str) -> TestResponse {
        self.request(Method::GET, path, None, None).await
    }

    /// An admin API call as the admin that must succeed; its JSON body
    /// (`Null` when empty).
    pub async fn admin_api(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let response = self
            .request(method.clone(), path, Some(&self.admin_token), body)
            .await;
        assert!(
            response.status.is_success(),
            "{method} {path}: {} {}",
            response.status,
            response.text()
        );
        if response.body.is_empty() {
            Value::Null
        } else {
            response.json()
        }
    }

    /// Create a Docker repository in project `default`; asserts success.
    pub async fn create_repository(&self, id: &str) {
        self.create_repository_from(id, serde_json::json!({ "format": "docker" }))
            .await;
    }

    /// Create a repository in project `default` from a JSON body; asserts
    /// success.
    pub async fn create_repository_from(&self, id: &str, body: Value) {
        self.admin_api(
            Method::POST,
            &format!("/v1/projects/default/repositories?repositoryId={id}"),
            Some(body),
        )
        .await;
    }

    /// Create a user (no roles) and an access token for them; the token.
    pub async fn user_with_token(&self, email: &str) -> String {
        self.admin_api(
            Method::POST,
            "/v1/users",
            Some(serde_json::json!({ "email": email })),
        )
        .await;
        let token = self
            .admin_api(
                Method::POST,
                "/v1/tokens",
                Some(serde_json::json!({ "principal": format!("user:{email}") })),
            )
            .await;
        token["token"].as_str().unwrap().to_owned()
    }
}
