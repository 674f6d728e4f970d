//! `/v2/{name}/manifests/{reference}`: pull, push and delete manifests.

use axum::body::Body;
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use entrepot_domain::{ImagePath, Reference};
use entrepot_services::Principal;

use super::{body_stream, insert, OciError, Request, CONTENT_DIGEST};
use crate::AppState;

const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");

/// `GET` (with `body`) or `HEAD` (without) of a manifest by tag or digest.
pub(super) async fn get(
    state: &AppState,
    caller: &Principal,
    path: &ImagePath,
    reference: &Reference,
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
        insert(
            h,
            header::WARNING,
            "110 entrepot \"Response is Stale: the upstream could not be reached\"",
        );
    }
    if let Some(age) = manifest.age_secs {
        insert(h, header::AGE, &age.to_string());
    }
    if let Some(cache) = manifest.cache {
        insert(h, super::X_CACHE, cache.as_str());
    }
    Ok(response)
}

/// `PUT`: store the body (at most 4 MiB, read by the service once the
/// caller is authorized) as the manifest of `reference`.
pub(super) async fn put(
    state: &AppState,
    caller: &Principal,
    path: &ImagePath,
    reference: &Reference,
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
    Ok(response)
}

/// `DELETE`: a manifest by digest (with its tags), or one tag.
pub(super) async fn delete(
    state: &AppState,
    caller: &Principal,
    path: &ImagePath,
    reference: &Reference,
) -> Result<Response, OciError> {
    state
        .registry
        .delete_manifest(caller, path, reference)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
