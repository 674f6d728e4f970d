//! The admin REST API at `/v1/`: JSON on resource names, custom verbs after a colon.

mod access_policy;
mod artifact_registry;
mod artifacts;
mod cleanup;
mod error;
pub mod iam;
mod paging;
mod principals;
mod projects;
mod repositories;
mod secret_bodies;
mod secrets;
mod storage;

pub use error::ApiError;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use axum::Router;
use entrepot_services::{AuthError, Principal};

use crate::AppState;

/// Routes of the admin API.
pub fn routes() -> Router<AppState> {
    repositories::routes()
        .merge(projects::routes())
        .merge(principals::routes())
        .merge(access_policy::routes())
        .merge(secrets::routes())
        .merge(artifact_registry::routes())
        .merge(storage::routes())
        .merge(cleanup::routes())
        .merge(artifacts::routes())
}

/// Authenticate an admin API caller: the one check a handler makes itself.
/// What the caller may do is decided by the service the handler calls, with
/// this principal. Registry tokens (from `/v2/token`) are
/// refused: they are short-lived, scoped to registry operations, and must not
/// manage principals, tokens, policies or secrets.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Principal, AuthError> {
    let credentials = crate::credentials::from_headers(headers)
        .map_err(|e| AuthError::Unauthenticated(e.to_string()))?;
    let principal =
        crate::observe::authenticated(state.access.authenticate(credentials.as_ref()).await)?;
    if principal.is_registry_token() {
        return Err(AuthError::Unauthenticated(
            "registry tokens from /v2/token are not accepted by the admin API; use a personal access token (entrepot tokens create) or a password".into(),
        ));
    }
    Ok(principal)
}

/// Give every `/v1` error the admin API's JSON shape, including the
/// framework's own rejections (a malformed JSON body, a bad path, an unknown
/// route or method), which are plain text otherwise.
pub async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    if path != "/v1" && !path.starts_with("/v1/") {
        return next.run(request).await;
    }
    let path = path.to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if !text.is_empty() {
        text
    } else if status == StatusCode::NOT_FOUND {
        format!("no such resource or method: {path}")
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        format!("this method is not supported on {path}")
    } else {
        status.canonical_reason().unwrap_or("error").to_owned()
    };
    let mut wrapped = ApiError::new(status, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            wrapped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    wrapped
}

/// Parse a path segment as a typed id, or answer 400 with the parser's reason.
pub(crate) fn parse_id<T>(s: &str) -> Result<T, ApiError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e: T::Err| ApiError::invalid(e.to_string()))
}
