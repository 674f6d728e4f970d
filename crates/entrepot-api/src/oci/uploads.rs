//! `/v2/{name}/blobs/uploads/...`: push blobs, whole (`POST ?digest=`), by
//! mount from another image, or in a session of chunks.

use std::collections::HashMap;

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
    if let Some(digest) = query.get("digest") {
        let digest: Digest = digest
            .parse()
            .map_err(|e: entrepot_domain::DigestError| OciError::digest_invalid(e.to_string()))?;
        state
            .registry
            .put_blob(caller, path, &digest, body_stream(request.body))
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
    let range = chunk_range(&request.headers)?;
    let s = state
        .registry
        .append_chunk(caller, path, id, range, body_stream(request.body))
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
    let digest = digest_param(&request.query)?;
    let last = has_body(&request.headers).then(|| body_stream(request.body));
    let digest = state
        .registry
        .finish_upload(caller, path, id, &digest, last)
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

fn digest_param(query: &HashMap<String, String>) -> Result<Digest, OciError> {
    let raw = query.get("digest").ok_or_else(|| {
        OciError::digest_invalid("the digest query parameter is required to complete an upload")
    })?;
    raw.parse()
        .map_err(|e: entrepot_domain::DigestError| OciError::digest_invalid(e.to_string()))
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
/// Parse `Content-Range: start-end` of a chunk: its inclusive byte range. A
/// `Content-Length` that disagrees with the range is refused before any byte
/// is read.
fn chunk_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, OciError> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || OciError::range_invalid("Content-Range must be START-END in bytes, e.g. 0-1023");
    let text = value.to_str().map_err(|_| bad())?;
    let text = text
        .trim()
        .trim_start_matches("bytes ")
        .trim_start_matches("bytes=");
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let start: u64 = start.trim().parse().map_err(|_| bad())?;
    let end: u64 = end
        .split('/')
        .next()
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    let declared = end - start + 1;
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(length) = length.filter(|l| *l != declared) {
        return Err(OciError::range_invalid(format!(
            "Content-Range {start}-{end} covers {declared} bytes but Content-Length is {length}"
        )));
    }
    Ok(Some((start, end)))
}
