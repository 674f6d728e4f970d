//! `/v2/{name}/blobs/uploads/...`: push blobs, whole (`POST ?digest=`), by
//! mount from another image, or in a session of chunks.

use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use entrepot_domain::{Digest, ImagePath};
use entrepot_services::oci::UploadStart;
use entrepot_services::Principal;

use super::{body_stream, insert, OciError, Request, CONTENT_DIGEST};
use crate::AppState;

const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");

/// `POST`: push a whole blob (`?digest=`), mount one (`?mount=&from=`), or
/// open a session.
pub(super) async fn start(
    state: &AppState,
    caller: &Principal,
    path: &ImagePath,
    request: Request,
) -> Result<Response, OciError> {
    let query = &request.query;
    // Digests and ranges go to the service as sent: it parses them once it
    // has authorized the caller, so a refused caller never learns whether
    // they were well-formed.
    if let Some(digest) = query.get("digest") {
        let digest = state
            .registry
            .put_blob(caller, path, digest, body_stream(request.body))
            .await?;
        return Ok(blob_created(path, &digest));
    }
    // A mount the client names badly is an ordinary upload; one of a source
    // the caller may not pull is too (the service decides that).
    let mount = match (query.get("mount"), query.get("from")) {
        (Some(digest), Some(from)) => match (digest.parse::<Digest>(), from.parse::<ImagePath>()) {
            (Ok(d), Ok(f)) => Some((d, f)),
            _ => None,
        },
        _ => None,
    };
    match state
        .registry
        .start_upload(caller, path, mount.as_ref().map(|(d, f)| (d, f)))
        .await?
    {
        UploadStart::Mounted(digest) => Ok(blob_created(path, &digest)),
        UploadStart::Session(s) => Ok(upload_response(StatusCode::ACCEPTED, path, &s.id, s.size)),
    }
}

/// `GET`: where the session stands.
pub(super) async fn status(
    state: &AppState,
    caller: &Principal,
    path: &ImagePath,
    id: &str,
) -> Result<Response, OciError> {
    let s = state.registry.upload_status(caller, path, id).await?;
    Ok(upload_response(StatusCode::NO_CONTENT, path, &s.id, s.size))
}

/// `PATCH`: append a chunk, at the `Content-Range` if given.
pub(super) async fn append(
    state: &AppState,
    caller: &Principal,
    path: &ImagePath,
    id: &str,
    request: Request,
) -> Result<Response, OciError> {
    let range = request
        .headers
        .get(header::CONTENT_RANGE)
        // A value that is not text cannot be a range: the service refuses
        // it as malformed.
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let length = request
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let s = state
        .registry
        .append_chunk(
            caller,
            path,
            id,
            range.as_deref(),
            length,
            body_stream(request.body),
        )
        .await?;
    Ok(upload_response(StatusCode::ACCEPTED, path, &s.id, s.size))
}

/// `PUT ?digest=`: finish the session, with a last chunk if the request has
/// a body.
pub(super) async fn finish(
    state: &AppState,
    caller: &Principal,
    path: &ImagePath,
    id: &str,
    request: Request,
) -> Result<Response, OciError> {
    let digest = request.query.get("digest").map(String::as_str);
    let last = has_body(&request.headers).then(|| body_stream(request.body));
    let digest = state
        .registry
        .finish_upload(caller, path, id, digest, last)
        .await?;
    Ok(blob_created(path, &digest))
}

/// `DELETE`: abandon the session.
pub(super) async fn cancel(
    state: &AppState,
    caller: &Principal,
    path: &ImagePath,
    id: &str,
) -> Result<Response, OciError> {
    state.registry.cancel_upload(caller, path, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Whether the request carries a body worth writing as a chunk.
fn has_body(headers: &HeaderMap) -> bool {
    match headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
    {
        Some(len) => len.trim() != "0",
        None => headers.contains_key(header::TRANSFER_ENCODING),
    }
}

fn upload_location(path: &ImagePath, id: &str) -> String {
    format!("/v2/{path}/blobs/uploads/{id}")
}

fn upload_response(status: StatusCode, path: &ImagePath, id: &str, size: u64) -> Response {
    let range = if size == 0 {
        "0-0".to_owned()
    } else {
        format!("0-{}", size - 1)
    };
    let mut r = status.into_response();
    let h = r.headers_mut();
    insert(h, header::LOCATION, &upload_location(path, id));
    insert(h, header::RANGE, &range);
    insert(h, UPLOAD_UUID, id);
    insert(h, header::CONTENT_LENGTH, "0");
    r
}

fn blob_created(path: &ImagePath, digest: &Digest) -> Response {
    let mut r = StatusCode::CREATED.into_response();
    let h = r.headers_mut();
    insert(h, header::LOCATION, &format!("/v2/{path}/blobs/{digest}"));
    insert(h, CONTENT_DIGEST, &digest.to_string());
    insert(h, header::CONTENT_LENGTH, "0");
    r
}
