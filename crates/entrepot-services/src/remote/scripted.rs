//! An upstream that answers from a script, in process, for the unit tests of
//! the remote cache: a test decides what each request gets and when each
//! chunk of a body arrives, so the steps of a download happen in the order
//! the test names, without sleeps. (The HTTP itself is tested against real
//! servers: `entrepot-upstream` and the integration tests.)

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use entrepot_upstream::http::header::{HeaderName, HeaderValue, CONTENT_LENGTH};
use entrepot_upstream::http::{HeaderMap, StatusCode};
use entrepot_upstream::{
    BodyError, CredentialSource, HopDenied, UpstreamError, UpstreamRequest, UpstreamResponse,
    UpstreamTransport,
};
use futures::StreamExt;
use tokio::sync::mpsc;
use url::Url;

/// One scripted answer.
pub struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
}

enum Body {
    /// The same bytes every time the reply is given.
    Fixed(Bytes),
    /// Chunks fed by the test through a [`BodyFeed`]; given once.
    Fed(mpsc::UnboundedReceiver<Result<Bytes, BodyError>>),
}

/// Feeds the body of a streamed [`Reply`]; dropping it ends the body.
pub struct BodyFeed(mpsc::UnboundedSender<Result<Bytes, BodyError>>);

impl BodyFeed {
    /// The next chunk.
    pub fn send(&self, chunk: &[u8]) {
        let _ = self.0.send(Ok(Bytes::copy_from_slice(chunk)));
    }

    /// Break the transfer off.
    pub fn fail(self) {
        let _ = self.0.send(Err(BodyError::new("connection reset")));
    }
}

impl Reply {
    /// `200 OK` with `body` and its length.
    pub fn ok(body: impl Into<Bytes>) -> Self {
        let body = body.into();
        Self {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Body::Fixed(body.clone()),
        }
        .header(CONTENT_LENGTH.as_str(), &body.len().to_string())
    }

    /// `200 OK` announcing `length` (if any), whose body the returned feed
    /// sends.
    pub fn streamed(length: Option<u64>) -> (Self, BodyFeed) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut reply = Self {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Body::Fed(rx),
        };
        if let Some(length) = length {
            reply = reply.header(CONTENT_LENGTH.as_str(), &length.to_string());
        }
        (reply, BodyFeed(tx))
    }

    /// With the header `name: value`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        #[allow(clippy::unwrap_used)]
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }
}

#[derive(Default)]
struct Script {
    /// Answers by `"METHOD /path"`, in the order they are given.
    replies: HashMap<String, VecDeque<Reply>>,
    /// Requests received, as `"METHOD /path"`.
    seen: Vec<String>,
}

/// The scripted upstream. A request with no answer left gets `404`.
#[derive(Default)]
pub struct ScriptedUpstream {
    script: Mutex<Script>,
}

impl ScriptedUpstream {
    /// Answer the next `METHOD /path` request (e.g. `"GET /v2/app/blobs/…"`)
    /// with `reply`; a [`Reply::ok`] that is the last one left answers every
    /// request after it too.
    pub fn answer(&self, request: &str, reply: Reply) {
        self.lock()
            .replies
            .entry(request.to_owned())
            .or_default()
            .push_back(reply);
    }

    /// How many `METHOD /path` requests arrived.
    pub fn count(&self, request: &str) -> usize {
        self.lock().seen.iter().filter(|s| *s == request).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl UpstreamTransport for ScriptedUpstream {
    async fn check_origin(&self, _url: &Url) -> Result<(), HopDenied> {
        Ok(())
    }

    async fn send(
        &self,
        request: &UpstreamRequest,
        _source: &dyn CredentialSource,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let key = format!("{} {}", request.method, request.url.path());
        let reply = {
            let mut script = self.lock();
            script.seen.push(key.clone());
            let queue = script.replies.entry(key).or_default();
            match queue.front() {
                Some(Reply {
                    status,
                    headers,
                    body: Body::Fixed(bytes),
                }) if queue.len() == 1 => {
                    Some((*status, headers.clone(), Body::Fixed(bytes.clone())))
                }
                _ => queue.pop_front().map(|r| (r.status, r.headers, r.body)),
            }
        };
        let (status, headers, body) = reply.unwrap_or((
            StatusCode::NOT_FOUND,
            HeaderMap::new(),
            Body::Fixed(Bytes::new()),
        ));
        let body = match body {
            Body::Fixed(bytes) => futures::stream::iter([Ok(bytes)]).boxed(),
            Body::Fed(rx) => futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|chunk| (chunk, rx))
            })
            .boxed(),
        };
        Ok(UpstreamResponse::new(
            status,
            headers,
            request.url.clone(),
            body,
        ))
    }
}

/// A remote repository `projects/default/repositories/up` of `format` whose
/// upstream is `upstream` (a URL), in fresh stores, with fills spooling
/// under a temporary directory.
pub struct Fixture {
    /// Every store, over one in-memory database.
    pub stores: entrepot_storage::Stores,
    /// The blob store, in the temporary directory.
    pub blobs: std::sync::Arc<dyn entrepot_storage::BlobStore>,
    /// Fills over `blobs`.
    pub fills: Option<super::Fills>,
    /// The metrics the fills count into.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// The repository.
    pub repo: entrepot_domain::Repository,
    /// The temporary directory (removed on drop).
    pub dir: tempfile::TempDir,
}

#[allow(clippy::unwrap_used)]
impl Fixture {
    /// The fixture.
    pub async fn new(format: entrepot_domain::Format, upstream: &str) -> Self {
        use crate::repositories::{NewRepository, RepositoryService};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let stores = entrepot_storage::testing::memory_stores().await.unwrap();
        stores
            .metadata
            .create_project(&"default".parse().unwrap())
            .await
            .unwrap();
        let remote = serde_json::from_value(serde_json::json!({ "upstream": upstream })).unwrap();
        RepositoryService::new(stores.metadata.clone())
            .create(
                &"projects/default/repositories/up".parse().unwrap(),
                NewRepository {
                    format,
                    mode: entrepot_domain::Mode::RemoteRepository,
                    description: String::new(),
                    remote: Some(remote),
                    virtual_config: None,
                },
            )
            .await
            .unwrap();
        let repo = stores
            .metadata
            .get_repository(&"projects/default/repositories/up".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let blobs: Arc<dyn entrepot_storage::BlobStore> =
            Arc::new(entrepot_storage::ObjectBlobStore::local(dir.path().join("blobs")).unwrap());
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let fills =
            super::Fills::new(dir.path().join("spool"), blobs.clone(), metrics.clone()).unwrap();
        Self {
            stores,
            blobs,
            fills: Some(fills),
            metrics,
            repo,
            dir,
        }
    }

    /// Whether the spool directory is empty (no download left a file).
    pub fn spool_is_empty(&self) -> bool {
        std::fs::read_dir(self.dir.path().join("spool"))
            .map(|d| d.count() == 0)
            .unwrap_or(true)
    }
}

/// Read from `stream` until at least `n` bytes came (fewer if it ends).
#[allow(clippy::unwrap_used)]
pub async fn read_at_least(stream: &mut entrepot_storage::ByteStream, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < n {
        match stream.next().await {
            Some(chunk) => out.extend_from_slice(&chunk.unwrap()),
            None => break,
        }
    }
    out
}

/// The rest of `stream`, or the error it ended with.
pub async fn read_rest(mut stream: entrepot_storage::ByteStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// 3000 bytes that are not all alike.
pub fn content() -> Vec<u8> {
    (0..3000u32).map(|i| (i % 251) as u8).collect()
}
