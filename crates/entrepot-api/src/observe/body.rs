//! The response body of an observed request: counts the bytes sent, and
//! writes the access line and the metrics when it is dropped (sent to the
//! end, or abandoned by a client that went away).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::{repository_of_path, Context, HttpMetrics};

/// Status logged for a request abandoned before its response was ready
/// (as nginx logs it: the client closed the request).
const CLIENT_CLOSED: u16 = 499;

/// What is known of a request so far.
pub(super) struct Record {
    pub route: &'static str,
    pub method: &'static str,
    pub id: String,
    pub path: String,
    pub started: Instant,
    pub context: Arc<Context>,
    pub metrics: Arc<HttpMetrics>,
    pub status: Option<u16>,
    pub bytes: u64,
    pub cache: Option<String>,
    pub cause: Option<String>,
}

impl Drop for Record {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let status = self.status.unwrap_or(CLIENT_CLOSED);
        self.metrics.finished(
            self.route,
            self.method,
            status,
            elapsed.as_secs_f64(),
            self.bytes,
        );
        let failure = super::get(&self.context.auth_failure)
            .or_else(|| (status == 401).then_some("credentials_required"));
        if let Some(kind) = failure.filter(|_| status == 401 || status == 403 || status == 429) {
            self.metrics.auth_failure(kind);
        }
        let principal = self.context.principal();
        let repository = super::get(&self.context.repository)
            .or_else(|| repository_of_path(&self.path))
            .unwrap_or_else(|| "-".into());
        let cache = self.cache.as_deref().unwrap_or("-");
        let duration_ms = format!("{:.3}", elapsed.as_secs_f64() * 1000.0);
        let error = self.cause.as_deref().unwrap_or("-");
        macro_rules! line {
            ($level:ident, $message:literal) => {
                tracing::$level!(
                    target: "entrepot::access",
                    request_id = %self.id,
                    principal = %principal,
                    method = self.method,
                    path = %self.path,
                    repository = %repository,
                    status,
                    bytes = self.bytes,
                    duration_ms = %duration_ms,
                    cache,
                    error,
                    $message
                )
            };
        }
        if status >= 500 {
            line!(error, "request failed");
        } else {
            line!(info, "request");
        }
    }
}

/// A response body that reports to its [`Record`].
pub(super) struct Logged {
    inner: Body,
    record: Record,
}

impl Logged {
    pub(super) fn new(inner: Body, record: Record) -> Self {
        Self { inner, record }
    }
}

impl HttpBody for Logged {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.record.bytes += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
