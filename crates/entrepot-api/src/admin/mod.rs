//! The admin REST API at `/v1/`: JSON on resource names, custom verbs after a colon.

mod access_policy;
mod error;
pub mod iam;
mod principals;
mod projects;
mod repositories;
mod secrets;

pub use error::ApiError;

use axum::http::HeaderMap;
use axum::Router;
use entrepot_services::{Permission, Principal, Resource};

use crate::AppState;

/// Routes of the admin API.
pub fn routes() -> Router<AppState> {
    repositories::routes()
        .merge(projects::routes())
        .merge(principals::routes())
        .merge(access_policy::routes())
        .merge(secrets::routes())
}

/// Authenticate the caller and check one permission.
pub(crate) async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    permission: Permission,
    resource: &Resource,
) -> Result<Principal, ApiError> {
    let credentials = crate::credentials::from_headers(headers)
        .map_err(|e| ApiError::new(axum::http::StatusCode::UNAUTHORIZED, e.to_string()))?;
    let principal = state.access.authenticate(credentials.as_ref()).await?;
    state
        .access
        .authorize(&principal, permission, resource)
        .await?;
    Ok(principal)
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
