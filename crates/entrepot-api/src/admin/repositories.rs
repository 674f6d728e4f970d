//! `/v1/projects/{p}/repositories[/{r}]` and `/v1/projects[/{p}]`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use entrepot_domain::{Format, Mode, ProjectId, RepositoryId, RepositoryName};
use entrepot_services::{NewRepository, Permission, ProjectRecord, RepositoryUpdate, Resource};
use serde::Deserialize;

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
            get(describe).patch(update).delete(remove),
        )
}

fn project_json(p: &ProjectRecord) -> serde_json::Value {
    serde_json::json!({
        "name": format!("projects/{}", p.id),
        "projectId": p.id,
        "projectNumber": p.number.to_string(),
        "createTime": p.create_time,
    })
}

async fn list_projects(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(
        &state,
        &headers,
        Permission::RepositoriesList,
        &Resource::Organization,
    )
    .await?;
    let projects: Vec<serde_json::Value> = state
        .projects
        .list()
        .await?
        .iter()
        .map(project_json)
        .collect();
    Ok(Json(serde_json::json!({ "projects": projects })))
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

async fn list(
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
    let repositories = state.repositories.list(&id).await?;
    Ok(Json(serde_json::json!({ "repositories": repositories })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    format: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    description: Option<String>,
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
    authorize(
        &state,
        &headers,
        Permission::RepositoriesCreate,
        &Resource::Project(project.to_string()),
    )
    .await?;
    let format: Format = body.format.parse().map_err(ApiError::invalid)?;
    let mode: Mode = body
        .mode
        .as_deref()
        .unwrap_or("standard-repository")
        .parse()
        .map_err(ApiError::invalid)?;
    let repo = state
        .repositories
        .create(
            &RepositoryName::new(project, repository),
            NewRepository {
                format,
                mode,
                description: body.description.unwrap_or_default(),
            },
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
) -> Result<Json<entrepot_domain::Repository>, ApiError> {
    let name = repository_name(&project, &repository)?;
    authorize(
        &state,
        &headers,
        Permission::RepositoriesGet,
        &resource(&name),
    )
    .await?;
    Ok(Json(state.repositories.get(&name).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    description: Option<String>,
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
    authorize(
        &state,
        &headers,
        Permission::RepositoriesUpdate,
        &resource(&name),
    )
    .await?;
    let repo = state
        .repositories
        .update(
            &name,
            RepositoryUpdate {
                description: body.description,
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
    Ok(Json(serde_json::json!({})))
}
