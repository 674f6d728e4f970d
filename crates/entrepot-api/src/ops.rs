//! Operations endpoints: liveness, readiness and Prometheus metrics.

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
        .route("/metrics", get(metrics))
}

/// Counters in the Prometheus text format.
async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render() + &state.iam.render_metrics(),
    )
}

/// Ready when the metadata store answers and the blob store's filesystem has
/// the configured free space.
async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    if let Err(e) = state.projects.check_store().await {
        tracing::warn!(error = %e, "not ready: metadata store does not answer");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metadata store unavailable\n".into(),
        );
    }
    match state.registry.check_disk_space() {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: disk space");
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n"))
        }
    }
}
