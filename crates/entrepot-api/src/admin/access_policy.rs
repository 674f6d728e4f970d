//! `/v1/organization/accessPolicy`: the registry access policy.
//!
//! `GET` answers every authenticated caller. `PUT` replaces the policy;
//! `PATCH` changes some of it (`enabled`, `enforcement`, `allowedHosts`, or
//! `addAllowedHosts` / `removeAllowedHosts`). Both take an optional `etag`: a
//! stale one is refused with 412, as `:setIamPolicy` does.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use entrepot_domain::access_policy::{parse_entries, AccessPolicy, Enforcement};
use entrepot_services::access_policy::{AccessPolicyServiceError, PolicyChange};
use entrepot_services::CurrentAccessPolicy;
use serde::Deserialize;

use super::{authenticate, ApiError};
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/organization/accessPolicy",
            get(describe).put(replace).patch(patch),
        )
        .route("/v1/organization/accessPolicy:suggest", get(suggest))
}

/// `GET /v1/organization/accessPolicy:suggest`: the hosts the policy saw
/// needed (blocked, or let through by dry-run mode) and those the presets
/// of remote repositories need, with the `allow` command line.
async fn suggest(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<entrepot_services::host_needs::Suggestions>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    Ok(Json(state.access_policy.suggest(&principal).await?))
}

impl From<AccessPolicyServiceError> for ApiError {
    fn from(e: AccessPolicyServiceError) -> Self {
        match e {
            AccessPolicyServiceError::Auth(a) => a.into(),
            AccessPolicyServiceError::Invalid(_) => ApiError::invalid(e.to_string()),
            AccessPolicyServiceError::StaleEtag(_) => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, e.to_string())
            }
            AccessPolicyServiceError::Contended => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            AccessPolicyServiceError::Store(s) => {
                tracing::error!(error = %s, "registry access policy storage failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error while reading or writing the registry access policy; retry later",
                )
            }
        }
    }
}

async fn describe(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<CurrentAccessPolicy>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    Ok(Json(state.access_policy.describe(&principal).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReplaceBody {
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    enforcement: Option<String>,
    #[serde(default, alias = "entries")]
    allowed_hosts: Vec<String>,
    /// Ignored: the server sets it.
    #[serde(default)]
    #[allow(dead_code)]
    update_time: Option<String>,
}

fn enforcement(text: Option<&str>) -> Result<Option<Enforcement>, ApiError> {
    text.map(str::parse).transpose().map_err(
        |e: entrepot_domain::access_policy::AccessPolicyError| ApiError::invalid(e.to_string()),
    )
}

async fn replace(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ReplaceBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<CurrentAccessPolicy>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    // Read only once the service found the caller may change the policy.
    let request = || {
        let Json(body) = body.map_err(|e| {
            ApiError::invalid(format!(
                "request body is not a registry access policy: {}",
                e.body_text()
            ))
        })?;
        let entries =
            parse_entries(&body.allowed_hosts).map_err(|e| ApiError::invalid(e.to_string()))?;
        let policy = AccessPolicy::new(
            body.enabled.unwrap_or(true),
            enforcement(body.enforcement.as_deref())?.unwrap_or_default(),
            entries,
        )
        .map_err(|e| ApiError::invalid(e.to_string()))?;
        Ok::<_, ApiError>(PolicyChange::replace(policy, body.etag))
    };
    Ok(Json(state.access_policy.update(&principal, request).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    enforcement: Option<String>,
    #[serde(default, alias = "entries")]
    allowed_hosts: Option<Vec<String>>,
    #[serde(default)]
    add_allowed_hosts: Vec<String>,
    #[serde(default)]
    remove_allowed_hosts: Vec<String>,
}

async fn patch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<PatchBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<CurrentAccessPolicy>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    // Read only once the service found the caller may change the policy.
    let request = || {
        let Json(body) = body.map_err(|e| {
            ApiError::invalid(format!(
                "request body is not a registry access policy change: {}",
                e.body_text()
            ))
        })?;
        let invalid =
            |e: entrepot_domain::access_policy::AccessPolicyError| ApiError::invalid(e.to_string());
        let replace_with = body
            .allowed_hosts
            .as_deref()
            .map(parse_entries)
            .transpose()
            .map_err(invalid)?;
        let add = parse_entries(&body.add_allowed_hosts).map_err(invalid)?;
        let remove = parse_entries(&body.remove_allowed_hosts).map_err(invalid)?;
        let enforcement = enforcement(body.enforcement.as_deref())?;
        let enabled = body.enabled;
        Ok::<_, ApiError>(PolicyChange {
            etag: body.etag,
            edit: Box::new(move |policy| {
                if let Some(enabled) = enabled {
                    policy.enabled = enabled;
                }
                if let Some(enforcement) = enforcement {
                    policy.enforcement = enforcement;
                }
                if let Some(entries) = &replace_with {
                    policy.set_entries(entries.clone())?;
                }
                policy.disallow(&remove)?;
                policy.allow(add.clone())
            }),
        })
    };
    Ok(Json(state.access_policy.update(&principal, request).await?))
}
