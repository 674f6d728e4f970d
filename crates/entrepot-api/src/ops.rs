//! Operations endpoints: liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::AppState;

/// `/healthz` and `/readyz`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
}

/// Ready when the metadata store answers.
async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.projects.list().await {
        Ok(_) => (StatusCode::OK, "ready\n"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: metadata store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "metadata store unavailable\n",
            )
        }
    }
}
