//! `POST /v1/organization/storage:collectGarbage`: run the garbage
//! collector now, `{"dryRun": true}` to only count. Organisation owners only
//! (`entrepot.storage.collectGarbage`): the blob store is shared.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use entrepot_services::gc::{GcError, GcReport};
use serde::Deserialize;

use super::{authenticate, ApiError};
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route(
        "/v1/organization/storage:collectGarbage",
        post(collect_garbage),
    )
}

impl From<GcError> for ApiError {
    fn from(e: GcError) -> Self {
        match e {
            GcError::Auth(a) => a.into(),
            GcError::Store(_) | GcError::Uploads(_) | GcError::Orphans(_) => {
                tracing::error!(error = %e, "garbage collection failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "garbage collection failed because of a storage error; what it reclaimed so far is gone, retry to finish",
                )
            }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CollectBody {
    #[serde(default)]
    dry_run: bool,
}

async fn collect_garbage(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Option<Json<CollectBody>>,
) -> Result<Json<GcReport>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    Ok(Json(state.gc.collect(&principal, body.dry_run).await?))
}
