//! `/v1/projects/{p}/repositories[/{r}]` and `/v1/projects[/{p}]`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use entrepot_domain::repository::RemoteConfig;
use entrepot_domain::{Format, Mode, ProjectId, RepositoryId, RepositoryName};
use entrepot_services::{
    CreateOptions, NewRepository, Permission, ProjectRecord, RepositoryUpdate, Resource,
};
use serde::Deserialize;

use super::paging::Listing;
use super::{authorize, parse_id, ApiError};
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
    authorize(
        &state,
        &headers,
        Permission::RepositoriesList,
        &Resource::Organization,
    )
    .await?;
    let projects = state.projects.list(&page).await?;
    Ok(Json(PROJECTS.body(projects, |p| project_json(&p))))
}

async fn get_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id: ProjectId = parse_id(&project)?;
    authorize(
        &state,
        &headers,
        Permission::RepositoriesList,
        &Resource::Project(id.to_string()),
    )
    .await?;
    let p = state.projects.get(id.as_str()).await?;
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
    authorize(
        &state,
        &headers,
        Permission::RepositoriesList,
        &Resource::Project(id.to_string()),
    )
    .await?;
    let repositories = state.repositories.list(&id, &page).await?;
    Ok(Json(REPOSITORIES.body(repositories, |r| {
        serde_json::to_value(r).unwrap_or_default()
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    format: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    remote_repository_config: Option<RemoteConfig>,
    /// Store a remote repository even if the access policy blocks its upstream.
    #[serde(default)]
    force: bool,
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Result<Json<CreateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<entrepot_domain::Repository>), ApiError> {
    let project: ProjectId = parse_id(&project)?;
    let repository_id = query
        .get("repositoryId")
        .ok_or_else(|| ApiError::invalid("the repositoryId query parameter is required"))?;
    let repository: RepositoryId = parse_id(repository_id)?;
    let Json(body) = body
        .map_err(|e| ApiError::invalid(format!("request body is not a valid repository: {e}")))?;
    let principal = authorize(
        &state,
        &headers,
        Permission::RepositoriesCreate,
        &Resource::Project(project.to_string()),
    )
    .await?;
    let name = RepositoryName::new(project, repository);
    let secret = body
        .remote_repository_config
        .as_ref()
        .and_then(|c| c.password_secret_version.as_deref());
    if let Some(version) = secret {
        // The registry will send this secret to the caller's upstream: the
        // caller must be able to read it herself.
        state
            .secrets
            .authorize_attachment(&principal, version, &name.to_string())
            .await?;
    }
    let format: Format = body.format.parse().map_err(ApiError::invalid)?;
    let mode: Mode = body
        .mode
        .as_deref()
        .unwrap_or("standard-repository")
        .parse()
        .map_err(ApiError::invalid)?;
    let repo = state
        .repositories
        .create_with(
            &name,
            NewRepository {
                format,
                mode,
                description: body.description.unwrap_or_default(),
                remote: body.remote_repository_config,
            },
            CreateOptions { force: body.force },
        )
        .await?;
    Ok((StatusCode::OK, Json(repo)))
}

fn repository_name(project: &str, repository: &str) -> Result<RepositoryName, ApiError> {
    Ok(RepositoryName::new(
        parse_id(project)?,
        parse_id(repository)?,
    ))
}

fn resource(name: &RepositoryName) -> Resource {
    Resource::Repository {
        project: name.project.to_string(),
        repository: name.repository.to_string(),
    }
}

async fn describe(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, repository)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = repository_name(&project, &repository)?;
    authorize(
        &state,
        &headers,
        Permission::RepositoriesGet,
        &resource(&name),
    )
    .await?;
    let repo = state.repositories.get(&name).await?;
    let rate_limit = state
        .registry
        .remote()
        .and_then(|r| r.rate_limit(&repo.name));
    let mut value = serde_json::to_value(&repo)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
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
            authorize(
                &state,
                &headers,
                Permission::RepositoriesGet,
                &resource(&name),
            )
            .await?;
            let repo = state.repositories.get(&name).await?;
            if repo.format == entrepot_domain::Format::Python
                && repo.remote_repository_config.is_some()
            {
                let report = state.python.remote.test_upstream(&repo).await?;
                return Ok(Json(serde_json::to_value(report).unwrap_or_default()));
            }
            let remote = state.registry.remote().filter(|_| repo.remote_repository_config.is_some()).ok_or_else(|| {
                ApiError::invalid(format!("{name} is not a remote repository; only remote repositories have an upstream"))
            })?;
            let report = remote.test_upstream(&repo).await?;
            Ok(Json(serde_json::to_value(report).unwrap_or_default()))
        }
        other => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("repositories have no method {other:?}; known: testUpstream"),
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
    serve_stale: Option<bool>,
    #[serde(default)]
    allow_cached_from_blocked: Option<bool>,
    /// Set credentials even if the access policy blocks the upstream.
    #[serde(default)]
    force: bool,
}

async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, repository)): Path<(String, String)>,
    body: Result<Json<UpdateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<entrepot_domain::Repository>, ApiError> {
    let name = repository_name(&project, &repository)?;
    let Json(body) =
        body.map_err(|e| ApiError::invalid(format!("request body is not a valid update: {e}")))?;
    let principal = authorize(
        &state,
        &headers,
        Permission::RepositoriesUpdate,
        &resource(&name),
    )
    .await?;
    if let Some(version) = &body.remote_password_secret_version {
        state
            .secrets
            .authorize_attachment(&principal, version, &name.to_string())
            .await?;
    }
    let repo = state
        .repositories
        .update(
            &name,
            RepositoryUpdate {
                description: body.description,
                remote_username: body.remote_username,
                remote_password_secret_version: body.remote_password_secret_version,
                clear_remote_credentials: body.clear_remote_credentials,
                remote_tag_ttl_secs: body.remote_tag_ttl_secs,
                serve_stale: body.serve_stale,
                allow_cached_from_blocked: body.allow_cached_from_blocked,
                force: body.force,
            },
        )
        .await?;
    Ok(Json(repo))
}

async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, repository)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = repository_name(&project, &repository)?;
    authorize(
        &state,
        &headers,
        Permission::RepositoriesDelete,
        &resource(&name),
    )
    .await?;
    state.repositories.delete(&name).await?;
    state.iam.forget(&resource(&name)).await?;
    Ok(Json(serde_json::json!({})))
}
