//! `POST /v1/projects`: create a project; its creator becomes its owner (the
//! project service writes both in one transaction).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use entrepot_domain::iam::service_agent_email;
use entrepot_domain::ProjectId;
use entrepot_services::ProjectRecord;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{authenticate, parse_id, ApiError};
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/projects", post(create))
}

/// A project as the admin API shows it, with its service agent.
pub fn project_json(p: &ProjectRecord) -> Value {
    json!({
        "name": format!("projects/{}", p.id),
        "projectId": p.id,
        "projectNumber": p.number.to_string(),
        "serviceAgent": format!("serviceAccount:{}", service_agent_email(p.number)),
        "createTime": p.create_time,
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    project_id: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Option<Json<CreateBody>>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let id = body
        .project_id
        .or_else(|| query.get("projectId").cloned())
        .ok_or_else(|| {
            ApiError::invalid("give the project id as projectId in the body or the query")
        })?;
    let id: ProjectId = parse_id(&id)?;
    let principal = authenticate(&state, &headers).await?;
    let project = state.projects.create_owned_by(&principal, &id).await?;
    Ok(Json(project_json(&project)))
}
