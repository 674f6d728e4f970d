//! `GET /v2/_catalog`: the images with manifests, a page at a time.

use std::collections::HashMap;

use axum::response::{IntoResponse, Response};
use entrepot_services::Principal;

use super::{next_page_link, OciError};
use crate::AppState;

/// One page of the catalog, with a `Link` to the next.
pub(super) async fn list(
    state: &AppState,
    caller: &Principal,
    query: &HashMap<String, String>,
) -> Result<Response, OciError> {
    // The service parses `n` once it has authorized the caller.
    let n = query.get("n").map(String::as_str);
    let last = query.get("last").map(String::as_str);
    let page = state.registry.catalog(caller, n, last).await?;
    let mut response =
        axum::Json(serde_json::json!({ "repositories": page.items })).into_response();
    next_page_link(&mut response, "/v2/_catalog", &page);
    Ok(response)
}
