//! `/v2/{name}/blobs/uploads/...`: push blobs, whole (`POST ?digest=`), by
//! mount from another image, or in a session of chunks.

use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use entrepot_domain::{Digest, ImagePath};
use entrepot_services::oci::{ChunkHeaders, UploadStart};
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
        let (_, length) = chunk_headers(&request.headers);
        let digest = state
            .registry
            .put_blob_sized(caller, path, digest, length, body_stream(request.body))
            .await?;
        return Ok(blob_created(path, &digest));
    }
    // A mount the client names badly is an ordinary upload; one of a source
    // the caller may not pull is too (the service decides that). Without
    // `from`, the service looks for a source the caller may pull.
    let mount = match (query.get("mount"), query.get("from")) {
        (Some(digest), Some(from)) => match (digest.parse::<Digest>(), from.parse::<ImagePath>()) {
            (Ok(d), Ok(f)) => Some((d, Some(f))),
            _ => None,
        },
        (Some(digest), None) => digest.parse::<Digest>().ok().map(|d| (d, None)),
        _ => None,
    };
    match state
        .registry
        .start_upload(caller, path, mount.as_ref().map(|(d, f)| (d, f.as_ref())))
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
    let (range, length) = chunk_headers(&request.headers);
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
        .await
        .map_err(|e| resumable(e.into(), path, id))?;
    Ok(upload_response(StatusCode::ACCEPTED, path, &s.id, s.size))
}

/// The chunk's `Content-Range` (as sent; a value that is not text cannot
/// be a range, and the service refuses it as malformed) and
/// `Content-Length`.
fn chunk_headers(headers: &HeaderMap) -> (Option<String>, Option<u64>) {
    let range = headers
        .get(header::CONTENT_RANGE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    (range, length)
}

/// A 416 of a chunk tells the client where to resume: the session's
/// `Location` (its `Range` is set from the error), as the spec's status
/// request would.
fn resumable(e: OciError, path: &ImagePath, id: &str) -> OciError {
    if e.status() == StatusCode::RANGE_NOT_SATISFIABLE {
        e.with_header(header::LOCATION, upload_location(path, id))
            .with_header(UPLOAD_UUID, id.to_owned())
    } else {
        e
    }
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
    let (range, length) = chunk_headers(&request.headers);
    let last = has_body(&request.headers).then(|| body_stream(request.body));
    let digest = state
        .registry
        .finish_upload(
            caller,
            path,
            id,
            digest,
            ChunkHeaders {
                content_range: range.as_deref(),
                content_length: length,
            },
            last,
        )
        .await
        .map_err(|e| resumable(e.into(), path, id))?;
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
