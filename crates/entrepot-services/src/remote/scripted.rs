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
use tokio::sync::{mpsc, watch};
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

    /// An empty answer with `status`.
    pub fn status(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: Body::Fixed(Bytes::new()),
        }
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
pub struct ScriptedUpstream {
    script: Mutex<Script>,
    received: watch::Sender<usize>,
}

impl Default for ScriptedUpstream {
    fn default() -> Self {
        Self {
            script: Mutex::default(),
            received: watch::channel(0).0,
        }
    }
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

    /// Wait until `n` `METHOD /path` requests have arrived.
    pub async fn arrived(&self, request: &str, n: usize) {
        let mut rx = self.received.subscribe();
        let _ = rx.wait_for(|_| self.count(request) >= n).await;
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
        self.received.send_modify(|n| *n += 1);
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
