//! What an operator sees of each request: its id (`X-Request-Id`, echoed),
//! one access-log line when its response has been sent (or abandoned), and
//! the HTTP metrics of `/metrics`.
//!
//! The front-ends tell what they learn on the way (the principal, the
//! repository, why a request failed) through the request's context, a task
//! local set up by [`observe`]: nothing has to be passed down or back up.
//!
//! The access line (target `entrepot::access`, level info; error for a 5xx)
//! has the fields `request_id`, `principal`, `method`, `path` (without the
//! query), `repository`, `status`, `bytes` (response body bytes sent),
//! `duration_ms` (to the last byte), `cache` (the `X-Cache` answer, `-`
//! without one) and, for a 4xx or 5xx, `error` (the message the client got).

mod body;
pub mod http_metrics;
pub mod request_id;

use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use entrepot_services::{AuthError, Principal};
use tracing::Instrument as _;

pub use http_metrics::HttpMetrics;
pub use request_id::REQUEST_ID;

/// The longest path written to the log; longer ones are cut.
const MAX_LOGGED_PATH: usize = 1024;

tokio::task_local! {
    static CONTEXT: Arc<Context>;
}

/// What the front-ends learned about the request.
#[derive(Default)]
struct Context {
    principal: Mutex<Option<String>>,
    repository: Mutex<Option<String>>,
    auth_failure: Mutex<Option<&'static str>>,
}

fn with_context(f: impl FnOnce(&Context)) {
    let _ = CONTEXT.try_with(|c| f(c));
}

fn set<T>(slot: &Mutex<Option<T>>, value: T, replace: bool) {
    let mut slot = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if replace || slot.is_none() {
        *slot = Some(value);
    }
}

fn get<T: Clone>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Record the repository the request is on
/// (`projects/P/repositories/R`).
pub fn record_repository(name: impl Display) {
    with_context(|c| set(&c.repository, name.to_string(), true));
}

/// Record the outcome of authenticating the caller: the principal, or why
/// its credentials were refused. Returns `result` unchanged.
pub fn authenticated(result: Result<Principal, AuthError>) -> Result<Principal, AuthError> {
    match &result {
        Ok(principal) => with_context(|c| set(&c.principal, principal.to_string(), true)),
        Err(AuthError::Throttled { .. }) => {
            with_context(|c| set(&c.auth_failure, "throttled", false));
        }
        Err(_) => with_context(|c| set(&c.auth_failure, "invalid_credentials", false)),
    }
    result
}

/// Record a refusal on the way to the client (the first one recorded wins:
/// refused credentials stay `invalid_credentials`).
pub fn auth_refused(error: &AuthError) {
    let kind = match error {
        AuthError::Unauthenticated(_) => "credentials_required",
        AuthError::Denied { .. } => "denied",
        AuthError::Throttled { .. } => "throttled",
    };
    with_context(|c| set(&c.auth_failure, kind, false));
}

/// Why a request failed, as its client was told: put in the response's
/// extensions by the front-ends' error mappers, written to the access log.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

/// The middleware: request id, context, access log and metrics for every
/// request.
pub async fn observe(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let id = request_id::request_id(request.headers());
    let method = request.method().clone();
    let path = request.uri().path();
    let path = match path.char_indices().nth(MAX_LOGGED_PATH) {
        Some((cut, _)) => format!("{}...", &path[..cut]),
        None => path.to_owned(),
    };
    let context = Arc::new(Context::default());
    let mut record = body::Record {
        route: http_metrics::route_class(&path),
        method: http_metrics::method_label(&method),
        id: id.clone(),
        path,
        started: Instant::now(),
        context: context.clone(),
        metrics: metrics.clone(),
        status: None,
        bytes: 0,
        cache: None,
        cause: None,
    };
    metrics.started();
    let span = tracing::info_span!("request", id = %id);
    let mut response = CONTEXT
        .scope(context, next.run(request))
        .instrument(span)
        .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    record.status = Some(response.status().as_u16());
    record.cache = response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    record.cause = response
        .extensions()
        .get::<ErrorCause>()
        .map(|c| c.0.clone());
    response.map(|inner| Body::new(body::Logged::new(inner, record)))
}

/// The repository a path names, for the requests whose front-end did not
/// record one: `/v1/projects/P/repositories/R...` and `/pypi/P/R/...`.
fn repository_of_path(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["v1", "projects", p, "repositories", r, ..] => {
            let r = r.split(':').next().unwrap_or(r);
            Some(format!("projects/{p}/repositories/{r}"))
        }
        ["pypi", p, r, ..] if !p.is_empty() && !r.is_empty() => {
            Some(format!("projects/{p}/repositories/{r}"))
        }
        _ => None,
    }
}

impl Context {
    fn principal(&self) -> String {
        get(&self.principal).unwrap_or_else(|| "-".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_read_from_admin_and_python_paths() {
        assert_eq!(
            repository_of_path("/v1/projects/p/repositories/r:testUpstream").as_deref(),
            Some("projects/p/repositories/r")
        );
        assert_eq!(
            repository_of_path("/pypi/p/r/simple/").as_deref(),
            Some("projects/p/repositories/r")
        );
        assert_eq!(repository_of_path("/v1/projects/p"), None);
        assert_eq!(repository_of_path("/healthz"), None);
    }
}
