//! `/v1/projects/{p}/repositories[/{r}]` and `/v1/projects[/{p}]`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use entrepot_domain::repository::UpstreamTimeouts;
use entrepot_domain::virtual_repository::VirtualConfig;
use entrepot_domain::{ProjectId, RepositoryId, RepositoryName};
use entrepot_services::{ProjectRecord, RepositoryUpdate};
use serde::Deserialize;

use super::artifact_registry::resource::{self, RepositoryBody};
use super::paging::Listing;
use super::{authenticate, parse_id, ApiError};
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/projects", get(list_projects))
        .route("/v1/projects/{project}", get(get_project))
        .route(
            "/v1/projects/{project}/repositories",
            get(list).post(create),
        )
        .route(
            "/v1/projects/{project}/repositories/{repository}",
            get(describe).patch(update).delete(remove).post(verb),
        )
}

fn project_json(p: &ProjectRecord) -> serde_json::Value {
    serde_json::json!({
        "name": format!("projects/{}", p.id),
        "projectId": p.id,
        "projectNumber": p.number.to_string(),
        "serviceAgent": format!("serviceAccount:{}", entrepot_domain::iam::service_agent_email(p.number)),
        "createTime": p.create_time,
    })
}

const PROJECTS: Listing = Listing { field: "projects" };
const REPOSITORIES: Listing = Listing {
    field: "repositories",
};

/// `GET /v1/projects`: one page of the projects, by id (see [`super::paging`]).
async fn list_projects(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let page = PROJECTS.request(&query)?;
    let principal = authenticate(&state, &headers).await?;
    let projects = state.projects.list(&principal, &page).await?;
    Ok(Json(PROJECTS.body(projects, |p| project_json(&p))))
}

async fn get_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id: ProjectId = parse_id(&project)?;
    let principal = authenticate(&state, &headers).await?;
    let p = state.projects.get(&principal, &id).await?;
    Ok(Json(project_json(&p)))
}

/// `GET /v1/projects/{p}/repositories`: one page of a project's
/// repositories, by id (see [`super::paging`]).
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id: ProjectId = parse_id(&project)?;
    let page = REPOSITORIES.request(&query)?;
    let principal = authenticate(&state, &headers).await?;
    let repositories = state.repositories.list(&principal, &id, &page).await?;
    let names: Vec<RepositoryName> = repositories
        .items
        .iter()
        .filter_map(|r| r.name.parse().ok())
        .collect();
    let sizes: HashMap<String, u64> = state
        .inventory
        .repository_sizes(&principal, &id, &names)
        .await?
        .into_iter()
        .map(|s| (s.name, s.bytes))
        .collect();
    let mut body = REPOSITORIES.body(repositories, |r| {
        let mut value = shape(&r);
        if let Some(size) = sizes.get(&r.name) {
            value["sizeBytes"] = serde_json::Value::String(size.to_string());
        }
        value
    });
    if let Some(total) = state.inventory.store_size(&principal).await? {
        body["storeSizeBytes"] = serde_json::Value::String(total.to_string());
    }
    Ok(Json(body))
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Result<Json<RepositoryBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let project: ProjectId = parse_id(&project)?;
    let repository_id = query
        .get("repositoryId")
        .ok_or_else(|| ApiError::invalid("the repositoryId query parameter is required"))?;
    let repository: RepositoryId = parse_id(repository_id)?;
    let Json(body) = body
        .map_err(|e| ApiError::invalid(format!("request body is not a valid repository: {e}")))?;
    let principal = authenticate(&state, &headers).await?;
    let name = RepositoryName::new(project, repository);
    let repo = state
        .repositories
        .create_with(&principal, &name, body.into_create_request()?)
        .await?;
    Ok((StatusCode::OK, Json(shape(&repo))))
}

/// A repository in the one shape of the admin API (see
/// [`super::artifact_registry::resource`]), enums by name.
fn shape(repo: &entrepot_domain::Repository) -> serde_json::Value {
    resource::render(repo, &repo.name, resource::EnumEncoding::Names)
}

fn repository_name(project: &str, repository: &str) -> Result<RepositoryName, ApiError> {
    Ok(RepositoryName::new(
        parse_id(project)?,
        parse_id(repository)?,
    ))
}

async fn describe(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, repository)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = repository_name(&project, &repository)?;
    let principal = authenticate(&state, &headers).await?;
    let (repo, size) = state
        .repositories
        .describe_with_size(&principal, &name)
        .await?;
    let rate_limit = state
        .registry
        .remote()
        .and_then(|r| r.rate_limit(&repo.name));
    let mut value = shape(&repo);
    value["sizeBytes"] = serde_json::Value::String(size.to_string());
    super::cleanup::describe_fields(&state, &principal, &name, &mut value).await?;
    if let Some(total) = state.inventory.store_size(&principal).await? {
        value["storeSizeBytes"] = serde_json::Value::String(total.to_string());
    }
    if let Some(rate_limit) = rate_limit {
        value["upstreamRateLimit"] = serde_json::to_value(rate_limit).unwrap_or_default();
    }
    Ok(Json(value))
}

/// `POST /v1/projects/{p}/repositories/{r}:VERB`.
async fn verb(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, target)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (repository, verb) = target.split_once(':').ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no such method on repository {target}"),
        )
    })?;
    let name = repository_name(&project, repository)?;
    match verb {
        "testUpstream" => {
            let principal = authenticate(&state, &headers).await?;
            let report = state.repositories.test_upstream(&principal, &name).await?;
            Ok(Json(serde_json::to_value(report).unwrap_or_default()))
        }
        "refresh" => {
            let principal = authenticate(&state, &headers).await?;
            // `{"name": "IMAGE[:TAG]" | "PROJECT"}`, read leniently: the
            // service authorizes the caller before it says what is missing.
            let what = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned))
                .unwrap_or_default();
            let report = state.repositories.refresh(&principal, &name, &what).await?;
            Ok(Json(serde_json::to_value(report).unwrap_or_default()))
        }
        other => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("repositories have no method {other:?}; known: testUpstream, refresh"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    remote_username: Option<String>,
    #[serde(default)]
    remote_password_secret_version: Option<String>,
    #[serde(default)]
    clear_remote_credentials: bool,
    #[serde(default)]
    remote_tag_ttl_secs: Option<u64>,
    #[serde(default)]
    remote_python_index_ttl_secs: Option<u64>,
    #[serde(default)]
    serve_stale: Option<bool>,
    #[serde(default)]
    allow_cached_from_blocked: Option<bool>,
    #[serde(default)]
    remote_keep_deleted_secs: Option<u64>,
    #[serde(default)]
    remote_negative_cache_secs: Option<u64>,
    /// The cache's size cap in bytes (0 removes it).
    #[serde(default)]
    remote_cache_max_size_bytes: Option<u64>,
    #[serde(default)]
    remote_connect_timeout_secs: Option<u64>,
    #[serde(default)]
    remote_first_byte_timeout_secs: Option<u64>,
    #[serde(default)]
    remote_retry_budget_secs: Option<u64>,
    #[serde(default)]
    remote_idle_timeout_secs: Option<u64>,
    /// Set credentials even if the access policy blocks the upstream.
    #[serde(default)]
    force: bool,
    /// Changes of the minimum release age.
    #[serde(default)]
    release_age: entrepot_domain::cooldown::ReleaseAgeUpdate,
    /// New members and rules of a virtual repository (the whole list).
    #[serde(default)]
    virtual_repository_config: Option<VirtualConfig>,
}

async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, repository)): Path<(String, String)>,
    body: Result<Json<UpdateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = repository_name(&project, &repository)?;
    let Json(body) =
        body.map_err(|e| ApiError::invalid(format!("request body is not a valid update: {e}")))?;
    let principal = authenticate(&state, &headers).await?;
    let repo = state
        .repositories
        .update(
            &principal,
            &name,
            RepositoryUpdate {
                description: body.description,
                remote_username: body.remote_username,
                remote_password_secret_version: body.remote_password_secret_version,
                clear_remote_credentials: body.clear_remote_credentials,
                remote_tag_ttl_secs: body.remote_tag_ttl_secs,
                remote_python_index_ttl_secs: body.remote_python_index_ttl_secs,
                serve_stale: body.serve_stale,
                allow_cached_from_blocked: body.allow_cached_from_blocked,
                remote_keep_deleted_secs: body.remote_keep_deleted_secs,
                remote_negative_cache_secs: body.remote_negative_cache_secs,
                remote_cache_max_size_bytes: body.remote_cache_max_size_bytes,
                remote_timeouts: UpstreamTimeouts {
                    connect_timeout_secs: body.remote_connect_timeout_secs,
                    first_byte_timeout_secs: body.remote_first_byte_timeout_secs,
                    retry_budget_secs: body.remote_retry_budget_secs,
                    idle_timeout_secs: body.remote_idle_timeout_secs,
                },
                force: body.force,
                release_age: body.release_age,
                virtual_config: body.virtual_repository_config,
            },
        )
        .await?;
    Ok(Json(shape(&repo)))
}

async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, repository)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = repository_name(&project, &repository)?;
    let principal = authenticate(&state, &headers).await?;
    state.repositories.delete(&principal, &name).await?;
    Ok(Json(serde_json::json!({})))
}
