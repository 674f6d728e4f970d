//! `/v2/{name}/blobs/{digest}`: pull (whole or a range) and delete blobs.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use entrepot_domain::range::parse_range_header;
use entrepot_domain::{Digest, ImagePath};
use entrepot_services::{Principal, RegistryError};

use super::{insert, OciError, CONTENT_DIGEST};
use crate::AppState;

/// `GET` (with `body`) or `HEAD` (without) of a blob, honouring `Range`. The
/// blob is located once: HEAD answers from its size, GET reads what was found
/// (by `sendfile` when the connection offers `zero_copy`).
pub(super) async fn get(
    state: &AppState,
    caller: &Principal,
    path: &ImagePath,
    digest: &Digest,
    headers: &HeaderMap,
    body: bool,
    zero_copy: Option<&std::sync::Arc<crate::zero_copy::ZeroCopy>>,
) -> Result<Response, OciError> {
    let blob = state.registry.locate_blob(caller, path, digest).await?;
    let size = blob.size();
    let cache = blob.cache();
    // RFC 9110: a range this server does not serve (several ranges,
    // another unit) is ignored, and the whole blob is sent.
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) => parse_range_header(r, size).map_err(|e| {
            OciError::range_invalid(e.to_string())
                .with_header(header::CONTENT_RANGE, format!("bytes */{size}"))
        })?,
        None => None,
    };
    let mut response = if body {
        let body = crate::zero_copy::blob_body(zero_copy, blob, range)
            .await
            .map_err(|e| RegistryError::unreadable_blob(e, digest))?;
        Response::new(body)
    } else {
        Response::new(Body::empty())
    };
    let len = range.map_or(size, |r| r.len());
    let h = response.headers_mut();
    insert(h, header::CONTENT_TYPE, "application/octet-stream");
    insert(h, header::CONTENT_LENGTH, &len.to_string());
    insert(h, CONTENT_DIGEST, &digest.to_string());
    insert(h, header::ACCEPT_RANGES, "bytes");
    insert(h, header::ETAG, &format!("\"{digest}\""));
    if let Some(cache) = cache {
        insert(h, super::X_CACHE, cache.as_str());
    }
    if let Some(r) = range {
        insert(h, header::CONTENT_RANGE, &r.content_range(size));
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(response)
}

/// `DELETE`: unlink the blob from the image.
pub(super) async fn delete(
    state: &AppState,
    caller: &Principal,
    path: &ImagePath,
    digest: &Digest,
) -> Result<Response, OciError> {
    state.registry.delete_blob(caller, path, digest).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
