//! Artifact Registry v1 on `/v1/projects/{p}/locations/{l}/repositories[/{r}]`
//! and `/v1/projects/{p}/locations/{l}/operations/{o}`, as Google's client
//! libraries speak it (`transport="rest"`). Any location is accepted and
//! names entrepot's project `p`; it is echoed back in resource names.
//! Create and delete answer a finished `Operation`. Repositories are
//! rendered with Google's fields only; entrepot's own settings (tag TTL,
//! serving stale content) are read and set on `projects/{p}/repositories`. The IAM verbs on these
//! names are answered by [`super::iam`].

mod cleanup_fields;
mod operation;
pub(crate) mod resource;

use std::collections::HashMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use entrepot_domain::{ProjectId, Repository, RepositoryId, RepositoryName};
use serde_json::Value;

use self::operation::OperationId;
use self::resource::{EnumEncoding, RepositoryBody};
use super::paging::Listing;
use super::{authenticate, parse_id, ApiError};
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/projects/{project}/locations/{location}/repositories",
            get(list).post(create),
        )
        .route(
            "/v1/projects/{project}/locations/{location}/repositories/{repository}",
            get(describe).patch(update).delete(remove),
        )
        .route(
            "/v1/projects/{project}/locations/{location}/operations/{operation}",
            get(get_operation),
        )
}

const REPOSITORIES: Listing = Listing {
    field: "repositories",
};

/// A location id: lower-case letters, digits and '-', as Google's are
/// (`us-central1`, `europe`).
pub(crate) fn location(s: &str) -> Result<&str, ApiError> {
    let valid = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(s)
    } else {
        Err(ApiError::invalid(format!(
            "location {s:?} is invalid: use lower-case letters, digits and '-'"
        )))
    }
}

/// `projects/P/locations/L`.
fn parent(project: &ProjectId, location: &str) -> String {
    format!("projects/{project}/locations/{location}")
}

/// `repo`, named `{parent}/repositories/{id}`.
fn render(repo: &Repository, id: &RepositoryId, parent: &str, enums: EnumEncoding) -> Value {
    resource::render_google(repo, &format!("{parent}/repositories/{id}"), enums)
}

fn body(body: Result<Json<RepositoryBody>, JsonRejection>) -> Result<RepositoryBody, ApiError> {
    body.map(|Json(b)| b)
        .map_err(|e| ApiError::invalid(format!("request body is not a valid repository: {e}")))
}

/// `GET .../repositories`: one page of the project's repositories.
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, location_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let project: ProjectId = parse_id(&project)?;
    let parent = parent(&project, location(&location_id)?);
    let page = REPOSITORIES.request(&query)?;
    let enums = EnumEncoding::of_query(&query);
    let principal = authenticate(&state, &headers).await?;
    let repositories = state
        .repositories
        .list(&principal, &project, &page)
        .await?
        .try_map(|r| r.repository_name().map(|name| (name.repository, r)))
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(REPOSITORIES.body(repositories, |(id, r)| {
        render(&r, &id, &parent, enums)
    })))
}

/// `POST .../repositories?repositoryId=R`: a finished `Operation` whose
/// response is the repository.
async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, location_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    request: Result<Json<RepositoryBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let project: ProjectId = parse_id(&project)?;
    let parent = parent(&project, location(&location_id)?);
    let enums = EnumEncoding::of_query(&query);
    let repository = query
        .get("repositoryId")
        .ok_or_else(|| ApiError::invalid("the repositoryId query parameter is required"))?;
    let name = RepositoryName::new(project, parse_id(repository)?);
    let mut request = body(request)?;
    let cleanup = request.take_cleanup()?;
    let create = request.into_create_request()?;
    if create.virtual_config.is_some() && cleanup.as_ref().is_some_and(|c| c.sets_policies()) {
        return Err(ApiError::invalid(
            "a virtual repository holds no content and takes no cleanupPolicies; set them on its member repositories",
        ));
    }
    let principal = authenticate(&state, &headers).await?;
    let repo = state
        .repositories
        .create_with(&principal, &name, create)
        .await?;
    let mut rendered = render(&repo, &name.repository, &parent, enums);
    if let Some(cleanup) = cleanup {
        let settings = cleanup.apply(&state, &principal, &name).await?;
        cleanup_fields::add_fields(&mut rendered, &settings, enums);
    }
    Ok(Json(operation::done(
        &parent,
        &OperationId::Create(name.repository),
        Some(rendered),
    )))
}

async fn describe(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, location_id, repository)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let project: ProjectId = parse_id(&project)?;
    let parent = parent(&project, location(&location_id)?);
    let name = RepositoryName::new(project, parse_id(&repository)?);
    let principal = authenticate(&state, &headers).await?;
    let (repo, size) = state
        .repositories
        .describe_with_size(&principal, &name)
        .await?;
    let enums = EnumEncoding::of_query(&query);
    let mut value = render(&repo, &name.repository, &parent, enums);
    // int64 in proto3 JSON: a decimal string.
    value["sizeBytes"] = Value::String(size.to_string());
    cleanup_fields::describe(&state, &principal, &name, &mut value, enums).await?;
    Ok(Json(value))
}

/// `PATCH .../repositories/R?updateMask=...`: the repository as it is after.
async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, location_id, repository)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    request: Result<Json<RepositoryBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let project: ProjectId = parse_id(&project)?;
    let parent = parent(&project, location(&location_id)?);
    let name = RepositoryName::new(project, parse_id(&repository)?);
    let patch = body(request)?.into_update(query.get("updateMask").map(String::as_str))?;
    let principal = authenticate(&state, &headers).await?;
    let enums = EnumEncoding::of_query(&query);
    // The repository's own fields first: a refusal there leaves the
    // policies as they were (the policies were checked already).
    let repo = match (patch.repository, &patch.cleanup) {
        (Some(update), _) => state.repositories.update(&principal, &name, update).await?,
        (None, _) => state.repositories.describe(&principal, &name).await?,
    };
    let mut value = render(&repo, &name.repository, &parent, enums);
    match patch.cleanup {
        Some(cleanup) => {
            let settings = cleanup.apply(&state, &principal, &name).await?;
            cleanup_fields::add_fields(&mut value, &settings, enums);
        }
        None => cleanup_fields::describe(&state, &principal, &name, &mut value, enums).await?,
    }
    Ok(Json(value))
}

/// `DELETE .../repositories/R`: a finished `Operation` with an empty response.
async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, location_id, repository)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let project: ProjectId = parse_id(&project)?;
    let parent = parent(&project, location(&location_id)?);
    let name = RepositoryName::new(project, parse_id(&repository)?);
    let principal = authenticate(&state, &headers).await?;
    state.repositories.delete(&principal, &name).await?;
    Ok(Json(operation::done(
        &parent,
        &OperationId::Delete(name.repository),
        None,
    )))
}

/// `GET .../operations/O`. A create operation answers the repository as it
/// is now (NOT_FOUND once it is deleted); a delete operation answers once
/// the repository is gone. Both need the caller to be allowed to read the
/// repository or project.
async fn get_operation(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, location_id, operation_id)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let project: ProjectId = parse_id(&project)?;
    let parent = parent(&project, location(&location_id)?);
    let id = OperationId::parse(&operation_id)?;
    let principal = authenticate(&state, &headers).await?;
    let response = match &id {
        OperationId::Create(repository) => {
            let name = RepositoryName::new(project, repository.clone());
            let repo = state.repositories.describe(&principal, &name).await?;
            Some(render(
                &repo,
                repository,
                &parent,
                EnumEncoding::of_query(&query),
            ))
        }
        OperationId::Delete(repository) => {
            let name = RepositoryName::new(project.clone(), repository.clone());
            match state.repositories.describe(&principal, &name).await {
                Ok(_) => {
                    return Err(ApiError::new(
                        axum::http::StatusCode::NOT_FOUND,
                        format!("operation {operation_id:?} does not exist: {name} exists"),
                    ))
                }
                Err(entrepot_services::RepositoryError::NotFound(_)) => {
                    // The caller may read the project: the answer tells them
                    // nothing they could not list.
                    state.projects.get(&principal, &project).await?;
                    None
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    Ok(Json(operation::done(&parent, &id, response)))
}
