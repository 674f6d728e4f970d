//! The servers the mirrored conformance cases share, and the three places a
//! case runs against:
//!
//! - `Hosted`: a hosted repository of entrepot (`default/conf`), written and
//!   read through entrepot;
//! - `Remote`: a remote repository of entrepot (`default/mirror`) in front of
//!   Debian's `docker-registry`; the case's content is pushed to the
//!   upstream and read through entrepot;
//! - `RemoteEntrepot`: a remote repository (`default/mirror-e`) in front of a
//!   second entrepot's hosted repository, for what `docker-registry` 2.8
//!   lacks (referrers, manifests with foreign URLs).
//!
//! One set of servers is shared by the cases that run at the same time: each
//! case holds an `Arc` of it, and the last case to let go stops the servers
//! (so nothing outlives the test binary). Every case works on an image of its
//! own, named after the case, so sharing is safe.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256, Sha512};

use crate::support::*;

/// The hosted repository the cases push to.
pub const HOSTED: &str = "default/conf";
/// A second hosted repository, the suite's "cross-mount namespace".
pub const HOSTED_OTHER: &str = "default/conf-other";
/// Set to `docker-registry` to run the hosted cases against Debian's
/// docker-registry instead of entrepot (images `conf/...`), for comparison:
/// `ENTREPOT_CONFORMANCE_HOSTED=docker-registry cargo test --test
/// oci_conformance_mirror hosted`. The remote cases always read entrepot.
pub const HOSTED_SWITCH: &str = "ENTREPOT_CONFORMANCE_HOSTED";
/// The remote repository in front of `docker-registry`.
pub const REMOTE: &str = "default/mirror";
/// The remote repository in front of the second entrepot.
pub const REMOTE_ENTREPOT: &str = "default/mirror-e";

/// The servers of the cases.
pub struct Fixture {
    /// The entrepot under test.
    pub server: Entrepot,
    /// Debian's docker-registry, upstream of [`REMOTE`] (held to keep it running).
    #[allow(dead_code)]
    pub distribution: Distribution,
    /// A second entrepot, upstream of [`REMOTE_ENTREPOT`] (anonymous read;
    /// held to keep it running).
    #[allow(dead_code)]
    pub upstream: Entrepot,
    entrepot: Registry,
    docker_registry: Registry,
    /// The hosted cases' registry and name prefix ([`HOSTED_SWITCH`]).
    hosted_on_distribution: bool,
    upstream_registry: Registry,
}

static SHARED: Mutex<Weak<Fixture>> = Mutex::new(Weak::new());

/// The shared servers, started if no running case holds them.
pub fn fixture() -> Arc<Fixture> {
    let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(fixture) = slot.upgrade() {
        return fixture;
    }
    let fixture = Arc::new(Fixture::start());
    *slot = Arc::downgrade(&fixture);
    fixture
}

impl Fixture {
    fn start() -> Fixture {
        let distribution = Distribution::start();
        let upstream = Entrepot::start();
        upstream.create_repository("conf");
        upstream.grant(
            "projects/default/repositories/conf",
            "allUsers",
            "roles/artifactregistry.reader",
        );
        let server = Entrepot::start();
        server.create_repository("conf");
        server.create_repository("conf-other");
        // Fresh tags: a case that moves or deletes a tag upstream reads it
        // again at once.
        server.create_remote_docker(
            "mirror",
            &format!("http://{}", distribution.addr),
            json!({ "tagTtlSecs": 0, "negativeCacheSecs": 0 }),
        );
        server.create_remote_docker(
            "mirror-e",
            &upstream.base,
            json!({ "tagTtlSecs": 0, "negativeCacheSecs": 0 }),
        );
        let entrepot = Registry::new(&server.base, Some(server.admin_token.clone()));
        let docker_registry = Registry::new(&format!("http://{}", distribution.addr), None);
        let upstream_registry = Registry::new(&upstream.base, Some(upstream.admin_token.clone()));
        let hosted_on_distribution =
            std::env::var(HOSTED_SWITCH).is_ok_and(|v| v == "docker-registry");
        Fixture {
            hosted_on_distribution,
            server,
            distribution,
            upstream,
            entrepot,
            docker_registry,
            upstream_registry,
        }
    }
}

/// One registry spoken to by plain HTTP, as the suite does (no redirects
/// followed, a bearer token or none).
pub struct Registry {
    pub base: String,
    token: Option<String>,
    http: Client,
}

impl Registry {
    fn new(base: &str, token: Option<String>) -> Registry {
        Registry {
            base: base.to_owned(),
            token,
            http: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(120))
                .pool_idle_timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    /// A request to a path (`/v2/...`) or to an absolute URL (a `Location`).
    pub fn request(&self, method: Method, path_or_url: &str) -> RequestBuilder {
        let request = self.http.request(method, self.url(path_or_url));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// An absolute URL for a path or a `Location` (relative or absolute).
    pub fn url(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}{location}", self.base)
        }
    }
}

/// Where a case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Hosted,
    Remote,
    RemoteEntrepot,
}

/// A case's image, where it is written and where it is read.
pub struct Target {
    fixture: Arc<Fixture>,
    pub kind: Kind,
    image: String,
}

impl Target {
    /// The target of the case whose module path is `path`: its image is
    /// named after the last two segments (`workflow/case`).
    pub fn new(kind: Kind, path: &str) -> Target {
        let mut segments: Vec<&str> = path.rsplit("::").take(2).collect();
        segments.reverse();
        Target {
            fixture: fixture(),
            kind,
            image: segments.join("/").replace('_', "-"),
        }
    }

    /// The shared servers.
    pub fn fixture(&self) -> &Fixture {
        &self.fixture
    }

    /// The registry the case's content is pushed to.
    pub fn writer(&self) -> &Registry {
        match self.kind {
            Kind::Hosted if self.fixture.hosted_on_distribution => &self.fixture.docker_registry,
            Kind::Hosted => &self.fixture.entrepot,
            Kind::Remote => &self.fixture.docker_registry,
            Kind::RemoteEntrepot => &self.fixture.upstream_registry,
        }
    }

    /// The registry under test (entrepot, unless [`HOSTED_SWITCH`] says
    /// otherwise for the hosted cases).
    pub fn reader(&self) -> &Registry {
        match self.kind {
            Kind::Hosted => self.writer(),
            _ => &self.fixture.entrepot,
        }
    }

    fn hosted_prefix(&self, name: &'static str) -> &'static str {
        if self.fixture.hosted_on_distribution {
            name.trim_start_matches("default/")
        } else {
            name
        }
    }

    /// The image's name where it is pushed.
    pub fn write_name(&self) -> String {
        match self.kind {
            Kind::Hosted => format!("{}/{}", self.hosted_prefix(HOSTED), self.image),
            Kind::Remote => self.image.clone(),
            Kind::RemoteEntrepot => format!("{HOSTED}/{}", self.image),
        }
    }

    /// The image's name where it is read.
    pub fn name(&self) -> String {
        match self.kind {
            Kind::Hosted => format!("{}/{}", self.hosted_prefix(HOSTED), self.image),
            Kind::Remote => format!("{REMOTE}/{}", self.image),
            Kind::RemoteEntrepot => format!("{REMOTE_ENTREPOT}/{HOSTED}/{}", self.image),
        }
    }

    /// Another image of the same case in the second hosted repository (the
    /// suite's `OCI_CROSSMOUNT_NAMESPACE`).
    pub fn other_name(&self) -> String {
        format!("{}/{}", self.hosted_prefix(HOSTED_OTHER), self.image)
    }

    /// A request to `/v2/<name>/<rest>` of the registry under test.
    pub fn read(&self, method: Method, rest: &str) -> RequestBuilder {
        self.reader()
            .request(method, &format!("/v2/{}/{rest}", self.name()))
    }

    /// A request to `/v2/<name>/<rest>` where the content is pushed.
    pub fn write(&self, method: Method, rest: &str) -> RequestBuilder {
        self.writer()
            .request(method, &format!("/v2/{}/{rest}", self.write_name()))
    }

    /// A request to a `Location` the writer answered.
    pub fn at(&self, method: Method, location: &str) -> RequestBuilder {
        self.writer().request(method, location)
    }

    /// `POST .../blobs/uploads/`, asserting `202`; the session's `Location`.
    pub fn start_upload(&self) -> String {
        let response = self.write(Method::POST, "blobs/uploads/").send().unwrap();
        assert_eq!(
            response.status(),
            202,
            "POST uploads: {}",
            body_text(response)
        );
        location(&response)
    }

    /// Push a blob the way the suite's setup does: `POST` a session, then
    /// `PUT ?digest=` with the bytes; asserts a 2xx answer.
    pub fn push_blob(&self, bytes: &[u8]) -> String {
        self.push_blob_as(&sha256(bytes), bytes)
    }

    /// [`Self::push_blob`] under a given digest (sha256 or sha512).
    pub fn push_blob_as(&self, digest: &str, bytes: &[u8]) -> String {
        let session = self.start_upload();
        let response = self
            .at(Method::PUT, &with_query(&session, "digest", digest))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "push blob {digest}: {} {}",
            response.status(),
            body_text(response)
        );
        digest.to_owned()
    }

    /// `PUT` a manifest where the content is pushed; the answer.
    pub fn put_manifest(&self, reference: &str, media_type: &str, bytes: &[u8]) -> Response {
        self.write(Method::PUT, &format!("manifests/{reference}"))
            .header("content-type", media_type)
            .body(bytes.to_vec())
            .send()
            .unwrap()
    }

    /// [`Self::put_manifest`], asserting a 2xx answer; the answer.
    pub fn put_manifest_ok(&self, reference: &str, media_type: &str, bytes: &[u8]) -> Response {
        let response = self.put_manifest(reference, media_type, bytes);
        if !response.status().is_success() {
            panic!(
                "put manifest {reference}: {} {}",
                response.status(),
                body_text(response)
            );
        }
        response
    }

    /// The tags listed by the registry under test (`?query` may be empty).
    pub fn tags(&self, query: &str) -> (u16, Vec<String>) {
        let response = self
            .read(Method::GET, &format!("tags/list{query}"))
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = serde_json::from_str(&body_text(response)).unwrap_or(Value::Null);
        let tags = body["tags"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        (status, tags)
    }
}

/// A response's body as text (empty if unreadable).
pub fn body_text(response: Response) -> String {
    response.text().unwrap_or_default()
}

/// The `Location` header (asserted present and not empty).
pub fn location(response: &Response) -> String {
    let value = header(response, "location");
    assert!(!value.is_empty(), "empty Location");
    value
}

/// A header or `None`.
pub fn header_opt(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `url` with `key=value` added to its query.
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{key}={value}")
}

/// `sha512:<hex>` of some bytes.
pub fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(bytes)))
}

/// The digest of `bytes` in `algorithm` (`sha256` or `sha512`).
pub fn digest_of(algorithm: &str, bytes: &[u8]) -> String {
    match algorithm {
        "sha512" => sha512(bytes),
        _ => format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
    }
}

/// `2xx`, or one of `others`.
pub fn assert_status_in(response: &Response, success: bool, others: &[u16], what: &str) {
    let status = response.status().as_u16();
    assert!(
        (success && (200..300).contains(&status)) || others.contains(&status),
        "{what}: got {status}, expected {}{others:?}",
        if success { "2xx or " } else { "" }
    );
}

/// The error codes of the distribution spec (`errorCodes` of the suite).
pub const ERROR_CODES: &[&str] = &[
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "MANIFEST_UNVERIFIED",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "TAG_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
];

/// The first error code of an OCI error body.
pub fn first_error_code(body: &str) -> String {
    let value: Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("error body is not JSON: {body}"));
    value["errors"][0]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no errors[0].code: {body}"))
        .to_owned()
}

/// A case run against the hosted repository only (a write).
macro_rules! hosted_case {
    ($(#[$meta:meta])* $name:ident, |$t:ident| $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            let $t = &$crate::fixture::Target::new(
                $crate::fixture::Kind::Hosted,
                concat!(module_path!(), "::", stringify!($name)),
            );
            $body
        }
    };
}

/// A read case: one test against the hosted repository, one against a
/// remote repository (`Remote`, or `RemoteEntrepot` where docker-registry
/// lacks the feature), optionally ignored with a reason.
macro_rules! read_case {
    ($(#[$meta:meta])* $name:ident $(, remote = $kind:ident)? $(, ignore_remote = $why:literal)?, |$t:ident| $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn case($t: &$crate::fixture::Target) $body

            #[test]
            fn hosted() {
                case(&$crate::fixture::Target::new(
                    $crate::fixture::Kind::Hosted,
                    module_path!(),
                ));
            }

            #[test]
            $(#[ignore = $why])?
            fn remote() {
                #[allow(unused_variables)]
                let kind = $crate::fixture::Kind::Remote;
                $(let kind = $crate::fixture::Kind::$kind;)?
                case(&$crate::fixture::Target::new(kind, module_path!()));
            }
        }
    };
}

pub(crate) use hosted_case;
pub(crate) use read_case;
