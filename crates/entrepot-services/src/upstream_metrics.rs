//! Metrics of the upstream side: every request sent upstream by its outcome,
//! and every cache fill by its duration and size. [`MeteredTransport`] wraps
//! the upstream client, so each request is counted once where it is sent.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use entrepot_upstream::{
    CredentialSource, HopDenied, UpstreamError, UpstreamRequest, UpstreamResponse,
    UpstreamTransport,
};
use url::Url;

use crate::metrics::Metrics;
use crate::prometheus::{CounterFamily, HistogramFamily, LATENCY_BUCKETS};

/// Counters and histograms of upstream requests and fills.
pub struct UpstreamMetrics {
    outcomes: CounterFamily,
    fill_seconds: HistogramFamily,
    fill_bytes: CounterFamily,
}

impl Default for UpstreamMetrics {
    fn default() -> Self {
        Self {
            outcomes: CounterFamily::default(),
            fill_seconds: HistogramFamily::new(LATENCY_BUCKETS),
            fill_bytes: CounterFamily::default(),
        }
    }
}

/// How an upstream request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamOutcome {
    /// A 1xx, 2xx or 3xx answer.
    Ok,
    /// A 4xx answer, or credentials the upstream refused.
    ClientError,
    /// A 5xx answer.
    ServerError,
    /// No answer in time.
    Timeout,
    /// A hop the registry access policy refused; nothing was sent.
    Blocked,
    /// Credentials could not be read (e.g. the service agent lacks access).
    Credentials,
    /// No connection, a broken transfer, a bad redirect or protocol.
    Error,
    /// The request was abandoned before it ended (its caller went away).
    Cancelled,
}

impl UpstreamOutcome {
    /// The `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ClientError => "4xx",
            Self::ServerError => "5xx",
            Self::Timeout => "timeout",
            Self::Blocked => "blocked",
            Self::Credentials => "credentials",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
        }
    }

    /// The outcome of a request's result.
    pub fn of(result: &Result<UpstreamResponse, UpstreamError>) -> Self {
        match result {
            Ok(r) if r.status().is_client_error() => Self::ClientError,
            Ok(r) if r.status().is_server_error() => Self::ServerError,
            Ok(_) => Self::Ok,
            Err(UpstreamError::Blocked(_)) => Self::Blocked,
            Err(UpstreamError::Credentials(_)) => Self::Credentials,
            Err(UpstreamError::Unauthorized(_)) => Self::ClientError,
            Err(UpstreamError::Unreachable { reason, .. })
                if reason.contains("timed out") || reason.contains("timeout") =>
            {
                Self::Timeout
            }
            Err(_) => Self::Error,
        }
    }
}

impl UpstreamMetrics {
    /// One upstream request ended so.
    pub fn outcome(&self, outcome: UpstreamOutcome) {
        self.outcomes.add(&[outcome.label()], 1);
    }

    /// Requests that ended so, so far.
    pub fn outcomes(&self, outcome: UpstreamOutcome) -> u64 {
        self.outcomes.get(&[outcome.label()])
    }

    /// A fill ended after `elapsed`: committed with `size` bytes, or failed
    /// (`None`).
    pub fn fill(&self, elapsed: Duration, size: Option<u64>) {
        let result = if size.is_some() {
            "committed"
        } else {
            "failed"
        };
        self.fill_seconds.observe(&[result], elapsed.as_secs_f64());
        if let Some(size) = size {
            self.fill_bytes.add(&[], size);
        }
    }

    /// Append the exposition of these metrics to `out`.
    pub fn render(&self, out: &mut String) {
        self.outcomes.render(
            out,
            "entrepot_upstream_outcomes_total",
            "Requests sent to upstreams, by outcome (ok, 4xx, 5xx, timeout, blocked, credentials, error, cancelled).",
            &["outcome"],
        );
        self.fill_seconds.render(
            out,
            "entrepot_cache_fill_duration_seconds",
            "Time from the start of a cache fill (an upstream download of immutable content) to its commit or failure.",
            &["result"],
        );
        self.fill_bytes.render(
            out,
            "entrepot_cache_fill_bytes_total",
            "Bytes committed to the blob store by cache fills.",
            &[],
        );
    }
}

/// The upstream transport, counting every request by its outcome.
pub struct MeteredTransport {
    inner: Arc<dyn UpstreamTransport>,
    metrics: Arc<Metrics>,
}

impl MeteredTransport {
    /// Count the requests sent through `inner` in `metrics`.
    pub fn new(inner: Arc<dyn UpstreamTransport>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

/// Counts a request as cancelled unless it ended first.
struct Pending<'a> {
    metrics: &'a UpstreamMetrics,
    ended: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.metrics.outcome(UpstreamOutcome::Cancelled);
        }
    }
}

#[async_trait]
impl UpstreamTransport for MeteredTransport {
    async fn check_origin(&self, url: &Url) -> Result<(), HopDenied> {
        self.inner.check_origin(url).await
    }

    async fn send(
        &self,
        request: &UpstreamRequest,
        source: &dyn CredentialSource,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let upstream = self.metrics.upstream();
        let mut pending = Pending {
            metrics: upstream,
            ended: false,
        };
        let result = self.inner.send(request, source).await;
        pending.ended = true;
        upstream.outcome(UpstreamOutcome::of(&result));
        result
    }
}
