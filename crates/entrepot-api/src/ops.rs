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
        state.metrics.render() + &state.iam.render_metrics() + &state.http_metrics.render(),
    )
}

/// Ready when the metadata store answers a query, the blob store accepts a
/// write (a probe object written and removed), and the blob store's
/// filesystem has the configured free space. Not ready: 503 with every
/// failing check on its own line, each logged at warn.
async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    let mut failures = Vec::new();
    if let Err(e) = state.projects.check_store().await {
        failures.push(format!("metadata store unavailable: {e}"));
    }
    if let Err(e) = state.registry.check_blob_store_writable().await {
        failures.push(format!("blob store not writable: {e}"));
    }
    if let Err(e) = state.registry.check_disk_space() {
        failures.push(format!("disk space: {e}"));
    }
    if failures.is_empty() {
        return (StatusCode::OK, "ready\n".into());
    }
    for reason in &failures {
        tracing::warn!(%reason, "not ready");
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready: {}\n", failures.join("\nnot ready: ")),
    )
}
