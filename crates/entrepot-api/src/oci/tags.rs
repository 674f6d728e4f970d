//! `GET /v2/{name}/tags/list`: an image's tags, a page at a time.

use std::collections::HashMap;

use axum::response::{IntoResponse, Response};
use entrepot_domain::ImagePath;
use entrepot_services::Principal;

use super::{next_page_link, OciError};
use crate::AppState;

/// One page of the image's tags, with a `Link` to the next.
pub(super) async fn list(
    state: &AppState,
    caller: &Principal,
    path: &ImagePath,
    query: &HashMap<String, String>,
) -> Result<Response, OciError> {
    // The service parses `n` once it has authorized the caller.
    let n = query.get("n").map(String::as_str);
    let last = query.get("last").map(String::as_str);
    let page = state.registry.list_tags(caller, path, n, last).await?;
    let mut response =
        axum::Json(serde_json::json!({ "name": path.to_string(), "tags": page.items }))
            .into_response();
    next_page_link(&mut response, &format!("/v2/{path}/tags/list"), &page);
    Ok(response)
}
