//! Cleanup policies and storage quotas:
//!
//! - `GET|PUT /v1/projects/{p}/repositories/{r}/cleanupPolicies`: the
//!   repository's `cleanupPolicies` (a gcloud policy file's list, or the
//!   REST map) and `cleanupPolicyDryRun`;
//! - `POST /v1/projects/{p}/repositories/{r}/cleanupPolicies:run`, body
//!   `{"dryRun": true}` optional: run them now, report what went (or would);
//! - `GET|PUT /v1/projects/{p}/repositories/{r}/storageQuota` and
//!   `GET|PUT /v1/projects/{p}/storageQuota`: `{"storageQuotaBytes": N}`
//!   (`null` or 0 removes it), answered with the quota and the usage.
//!
//! `repositories describe` shows the same fields ([`describe_fields`]).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use entrepot_domain::{ProjectId, RepositoryName};
use entrepot_services::cleanup::{CleanupError, CleanupReport};
use entrepot_services::quota::{ProjectQuota, QuotaError, QuotaUsage};
use entrepot_services::Principal;
use serde::Deserialize;
use serde_json::Value;

use super::{authenticate, parse_id, ApiError};
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/projects/{project}/repositories/{repository}/cleanupPolicies",
            get(get_policies).put(set_policies),
        )
        .route(
            "/v1/projects/{project}/repositories/{repository}/cleanupPolicies:run",
            post(run),
        )
        .route(
            "/v1/projects/{project}/repositories/{repository}/storageQuota",
            get(repository_quota).put(set_repository_quota),
        )
        .route(
            "/v1/projects/{project}/storageQuota",
            get(project_quota).put(set_project_quota),
        )
}

impl From<CleanupError> for ApiError {
    fn from(e: CleanupError) -> Self {
        match e {
            CleanupError::Auth(a) => a.into(),
            CleanupError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            CleanupError::Invalid(m) => ApiError::invalid(m),
            CleanupError::Store(_) => {
                tracing::error!(error = %e, "cleanup failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cleanup failed because of a storage error; what it deleted so far is gone, retry to finish",
                )
            }
        }
    }
}

impl From<QuotaError> for ApiError {
    fn from(e: QuotaError) -> Self {
        match e {
            QuotaError::Auth(a) => a.into(),
            QuotaError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            QuotaError::Invalid(m) => ApiError::invalid(m),
            QuotaError::Exceeded(_) => ApiError::new(StatusCode::FORBIDDEN, e.to_string()),
            QuotaError::Store(_) => {
                tracing::error!(error = %e, "storage quota request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the storage quota could not be read or written because of a storage error",
                )
            }
        }
    }
}

fn repository_name(project: &str, repository: &str) -> Result<RepositoryName, ApiError> {
    Ok(RepositoryName::new(
        parse_id(project)?,
        parse_id(repository)?,
    ))
}

/// The cleanup and quota fields of a repository, added to its description
/// for `caller` (who was allowed to describe it).
pub(super) async fn describe_fields(
    state: &AppState,
    caller: &Principal,
    name: &RepositoryName,
    into: &mut Value,
) -> Result<(), ApiError> {
    let settings = state.cleanup.settings(caller, name).await?;
    if let (Value::Object(into), Value::Object(fields)) = (&mut *into, settings.to_json()) {
        into.extend(fields);
    }
    let usage = state.quotas.usage(caller, name).await?;
    if let (Value::Object(into), Value::Object(fields)) = (into, usage_json(&usage)) {
        into.extend(fields);
    }
    Ok(())
}

/// Sizes as strings, as the REST resources write int64 fields.
fn usage_json(usage: &QuotaUsage) -> Value {
    let mut v = serde_json::json!({
        "storageUsageBytes": usage.storage_usage_bytes.to_string(),
        "projectStorageUsageBytes": usage.project_storage_usage_bytes.to_string(),
    });
    if let Some(q) = usage.storage_quota_bytes {
        v["storageQuotaBytes"] = q.to_string().into();
    }
    if let Some(q) = usage.project_storage_quota_bytes {
        v["projectStorageQuotaBytes"] = q.to_string().into();
    }
    v
}

fn project_json(quota: &ProjectQuota) -> Value {
    let mut v = serde_json::json!({
        "name": quota.name,
        "storageUsageBytes": quota.storage_usage_bytes.to_string(),
    });
    if let Some(q) = quota.storage_quota_bytes {
        v["storageQuotaBytes"] = q.to_string().into();
    }
    v
}

async fn get_policies(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, repository)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let name = repository_name(&project, &repository)?;
    let caller = authenticate(&state, &headers).await?;
    Ok(Json(
        state.cleanup.settings(&caller, &name).await?.to_json(),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PoliciesBody {
    cleanup_policies: Value,
    #[serde(default)]
    cleanup_policy_dry_run: bool,
}

async fn set_policies(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, repository)): Path<(String, String)>,
    body: Result<Json<PoliciesBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = repository_name(&project, &repository)?;
    let caller = authenticate(&state, &headers).await?;
    let Json(body) = body.map_err(|e| {
        ApiError::invalid(format!(
            "the body must be {{\"cleanupPolicies\": [...], \"cleanupPolicyDryRun\": false}}: {e}"
        ))
    })?;
    let settings = state
        .cleanup
        .set_policies(
            &caller,
            &name,
            body.cleanup_policies,
            body.cleanup_policy_dry_run,
        )
        .await?;
    Ok(Json(settings.to_json()))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RunBody {
    #[serde(default)]
    dry_run: bool,
}

async fn run(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, repository)): Path<(String, String)>,
    body: Option<Json<RunBody>>,
) -> Result<Json<CleanupReport>, ApiError> {
    let name = repository_name(&project, &repository)?;
    let caller = authenticate(&state, &headers).await?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    Ok(Json(
        state.cleanup.run_now(&caller, &name, body.dry_run).await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QuotaBody {
    storage_quota_bytes: Option<Value>,
}

/// A quota in bytes from a number or a decimal string; `null` removes it.
fn quota_bytes(body: QuotaBody) -> Result<Option<u64>, ApiError> {
    match body.storage_quota_bytes {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid("storageQuotaBytes must be a whole number of bytes")),
        Some(Value::String(s)) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::invalid("storageQuotaBytes must be a whole number of bytes")),
        Some(_) => Err(ApiError::invalid(
            "storageQuotaBytes must be a whole number of bytes",
        )),
    }
}

async fn repository_quota(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, repository)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let name = repository_name(&project, &repository)?;
    let caller = authenticate(&state, &headers).await?;
    Ok(Json(usage_json(&state.quotas.usage(&caller, &name).await?)))
}

async fn set_repository_quota(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, repository)): Path<(String, String)>,
    body: Result<Json<QuotaBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = repository_name(&project, &repository)?;
    let caller = authenticate(&state, &headers).await?;
    let Json(body) = body.map_err(|e| {
        ApiError::invalid(format!(
            "the body must be {{\"storageQuotaBytes\": N}}: {e}"
        ))
    })?;
    let bytes = quota_bytes(body)?;
    let usage = state
        .quotas
        .set_repository_quota(&caller, &name, bytes)
        .await?;
    Ok(Json(usage_json(&usage)))
}

async fn project_quota(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: ProjectId = parse_id(&project)?;
    let caller = authenticate(&state, &headers).await?;
    Ok(Json(project_json(
        &state.quotas.project_usage(&caller, &id).await?,
    )))
}

async fn set_project_quota(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    body: Result<Json<QuotaBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let id: ProjectId = parse_id(&project)?;
    let caller = authenticate(&state, &headers).await?;
    let Json(body) = body.map_err(|e| {
        ApiError::invalid(format!(
            "the body must be {{\"storageQuotaBytes\": N}}: {e}"
        ))
    })?;
    let bytes = quota_bytes(body)?;
    Ok(Json(project_json(
        &state.quotas.set_project_quota(&caller, &id, bytes).await?,
    )))
}
