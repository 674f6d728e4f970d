//! `/v2/{name}/manifests/{reference}`: pull, push and delete manifests.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use entrepot_domain::ImagePath;
use entrepot_services::Principal;

use super::{body_stream, insert, OciError, Request, CONTENT_DIGEST};
use crate::AppState;

const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
const OCI_TAG: HeaderName = HeaderName::from_static("oci-tag");
/// A newer digest of the tag is held back by the minimum release age.
const ENTREPOT_HELD_BACK: HeaderName = HeaderName::from_static("entrepot-held-back");

/// `GET` (with `body`) or `HEAD` (without) of a manifest by tag or digest.
pub(super) async fn get(
    state: &AppState,
    caller: &Principal,
    path: &ImagePath,
    reference: &str,
    body: bool,
) -> Result<Response, OciError> {
    let manifest = state.registry.get_manifest(caller, path, reference).await?;
    let len = manifest.content.len();
    let mut response = if body {
        Response::new(Body::from(manifest.content))
    } else {
        Response::new(Body::empty())
    };
    let h = response.headers_mut();
    insert(h, header::CONTENT_TYPE, &manifest.media_type);
    insert(h, header::CONTENT_LENGTH, &len.to_string());
    insert(h, CONTENT_DIGEST, &manifest.digest.to_string());
    insert(h, header::ETAG, &format!("\"{}\"", manifest.digest));
    if manifest.stale {
        insert(h, header::WARNING, super::STALE_WARNING);
    }
    if let Some(age) = manifest.age_secs {
        insert(h, header::AGE, &age.to_string());
    }
    if let Some(cache) = manifest.cache {
        insert(h, super::X_CACHE, cache.as_str());
    }
    if let Some(held) = &manifest.held_back {
        insert(h, ENTREPOT_HELD_BACK, &held.header_value());
    }
    Ok(response)
}

/// `PUT`: store the body (at most 4 MiB, read by the service once the
/// caller is authorized) as the manifest of `reference`, and under each
/// `?tag=` (distribution-spec 1.1: several tags in one push by digest),
/// answering one `OCI-Tag` header per tag.
pub(super) async fn put(
    state: &AppState,
    caller: &Principal,
    path: &ImagePath,
    reference: &str,
    request: Request,
) -> Result<Response, OciError> {
    let content_type = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let pushed = state
        .registry
        .put_manifest(
            caller,
            path,
            reference,
            &request.tags,
            content_type.as_deref(),
            body_stream(request.body),
        )
        .await?;
    let mut response = StatusCode::CREATED.into_response();
    let h = response.headers_mut();
    insert(
        h,
        header::LOCATION,
        &format!("/v2/{path}/manifests/{}", pushed.digest),
    );
    insert(h, CONTENT_DIGEST, &pushed.digest.to_string());
    insert(h, header::CONTENT_LENGTH, "0");
    if let Some(subject) = pushed.subject {
        insert(h, OCI_SUBJECT, &subject.to_string());
    }
    for tag in &pushed.tags {
        if let Ok(v) = HeaderValue::from_str(tag.as_str()) {
            h.append(OCI_TAG, v);
        }
    }
    Ok(response)
}

/// `DELETE`: a manifest by digest (with its tags), or one tag. A manifest
/// an index references is kept unless `?force=true`.
pub(super) async fn delete(
    state: &AppState,
    caller: &Principal,
    path: &ImagePath,
    reference: &str,
    query: &HashMap<String, String>,
) -> Result<Response, OciError> {
    let force = query.get("force").is_some_and(|f| f == "true" || f == "1");
    state
        .registry
        .delete_manifest(caller, path, reference, force)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
