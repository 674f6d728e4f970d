//! The OCI distribution-spec 1.1 front-end at `/v2/`.

pub mod challenge;
mod endpoint;
mod error;
pub mod token;

pub use endpoint::{parse, Endpoint, EndpointError};
pub use error::OciError;

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use entrepot_domain::manifest::{MAX_MANIFEST_BYTES, OCI_INDEX};
use entrepot_domain::range::parse_range_header;
use entrepot_domain::{Digest, ImagePath};
use entrepot_services::oci::{Page, UploadStart};
use entrepot_services::ByteStream;
use entrepot_services::{Permission, Principal, RegistryError, Resource};
use futures::{StreamExt, TryStreamExt};

use crate::AppState;

/// `Docker-Distribution-API-Version`.
pub const API_VERSION_HEADER: HeaderName =
    HeaderName::from_static("docker-distribution-api-version");
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

/// Routes of the OCI front-end.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2", any(base))
        .route("/v2/", any(base))
        .route("/v2/{*rest}", any(dispatch))
        .merge(token::routes())
}

async fn base(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Response {
    let result = handle(
        state,
        method,
        headers.clone(),
        String::new(),
        None,
        Body::empty(),
    )
    .await;
    run(result.map_err(|e| challenge::challenge_unauthorized(e, &headers, None)))
}

async fn dispatch(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let scope = parse(&rest)
        .ok()
        .and_then(|e| challenge::scope(&method, &e));
    let result = handle(state, method, headers.clone(), rest, query, body).await;
    run(result.map_err(|e| challenge::challenge_unauthorized(e, &headers, scope.as_deref())))
}

fn run(result: Result<Response, OciError>) -> Response {
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response
        .headers_mut()
        .insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
    response
}

fn query_map(query: Option<String>) -> HashMap<String, String> {
    query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

fn body_stream(body: Body) -> ByteStream {
    body.into_data_stream()
        .map_err(std::io::Error::other)
        .boxed()
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

fn repository_of(path: &ImagePath) -> Resource {
    Resource::Repository {
        project: path.project.to_string(),
        repository: path.repository.to_string(),
    }
}

/// Authenticate the caller and check one permission.
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    permission: Option<(Permission, &Resource)>,
) -> Result<Principal, OciError> {
    let credentials = crate::credentials::from_headers(headers)
        .map_err(|e| OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", e.to_string()))?;
    let principal = state.access.authenticate(credentials.as_ref()).await?;
    if let Some((permission, resource)) = permission {
        state
            .access
            .authorize(&principal, permission, resource)
            .await?;
    }
    Ok(principal)
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

fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
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

fn page_size(query: &HashMap<String, String>) -> Result<Option<u32>, OciError> {
    query
        .get("n")
        .map(|n| {
            n.parse::<u32>().map_err(|_| {
                OciError::new(
                    StatusCode::BAD_REQUEST,
                    "PAGINATION_NUMBER_INVALID",
                    "n must be a non-negative integer",
                )
            })
        })
        .transpose()
}

/// The `Link` header pointing at the page after `page`, if there is one.
/// `base` is the listing's path; the next page keeps the served page size.
fn next_page_link(response: &mut Response, base: &str, page: &Page) {
    if let Some(last) = page.next_after() {
        let last: String = url::form_urlencoded::byte_serialize(last.as_bytes()).collect();
        insert(
            response.headers_mut(),
            header::LINK,
            &format!("<{base}?n={}&last={last}>; rel=\"next\"", page.size),
        );
    }
}

async fn handle(
    state: AppState,
    method: Method,
    headers: HeaderMap,
    rest: String,
    query: Option<String>,
    body: Body,
) -> Result<Response, OciError> {
    let endpoint = parse(&rest).map_err(|e| match e {
        EndpointError::NotFound => OciError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no OCI endpoint at /v2/{rest}"),
        ),
        EndpointError::Name(_) => OciError::name_invalid(e.to_string()),
        EndpointError::Digest(_) => OciError::digest_invalid(e.to_string()),
    })?;
    let query = query_map(query);
    let registry = state.registry.clone();
    use Endpoint as E;
    match (method, endpoint) {
        (Method::GET | Method::HEAD, E::Base) => {
            authorize(&state, &headers, None).await?;
            // Clients log in by meeting this challenge; valid credentials of any
            // principal (an anonymous registry token too) pass.
            if !headers.contains_key(header::AUTHORIZATION) {
                return Err(OciError::new(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "authentication required",
                ));
            }
            Ok(axum::Json(serde_json::json!({})).into_response())
        }
        (Method::GET, E::Catalog) => {
            authorize(
                &state,
                &headers,
                Some((Permission::RepositoriesList, &Resource::Organization)),
            )
            .await?;
            let n = page_size(&query)?;
            let last = query.get("last").map(String::as_str);
            let page = registry.catalog(n, last).await?;
            let mut response =
                axum::Json(serde_json::json!({ "repositories": page.items })).into_response();
            next_page_link(&mut response, "/v2/_catalog", &page);
            Ok(response)
        }
        (m @ (Method::GET | Method::HEAD), E::Manifest(path, reference)) => {
            authorize(
                &state,
                &headers,
                Some((Permission::DownloadArtifacts, &repository_of(&path))),
            )
            .await?;
            let manifest = registry.get_manifest(&path, &reference).await?;
            let len = manifest.content.len();
            let mut response = if m == Method::HEAD {
                Response::new(Body::empty())
            } else {
                Response::new(Body::from(manifest.content))
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
            Ok(response)
        }
        (Method::PUT, E::Manifest(path, reference)) => {
            authorize(
                &state,
                &headers,
                Some((Permission::UploadArtifacts, &repository_of(&path))),
            )
            .await?;
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = axum::body::to_bytes(body, MAX_MANIFEST_BYTES)
                .await
                .map_err(|_| {
                    OciError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "MANIFEST_INVALID",
                        "manifest is larger than the limit of 4 MiB (4194304 bytes)",
                    )
                })?;
            let pushed = registry
                .put_manifest(&path, &reference, content_type.as_deref(), bytes.to_vec())
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
        (Method::DELETE, E::Manifest(path, reference)) => {
            authorize(
                &state,
                &headers,
                Some((Permission::DeleteArtifacts, &repository_of(&path))),
            )
            .await?;
            registry.delete_manifest(&path, &reference).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (m @ (Method::GET | Method::HEAD), E::Blob(path, digest)) => {
            authorize(
                &state,
                &headers,
                Some((Permission::DownloadArtifacts, &repository_of(&path))),
            )
            .await?;
            let blob = registry.locate_blob(&path, &digest).await?;
            let size = blob.size();
            // RFC 9110: a range this server does not serve (several ranges,
            // another unit) is ignored, and the whole blob is sent.
            let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
                Some(r) => parse_range_header(r, size).map_err(|e| {
                    OciError::range_invalid(e.to_string())
                        .with_header(header::CONTENT_RANGE, format!("bytes */{size}"))
                })?,
                None => None,
            };
            let mut response = if m == Method::HEAD {
                Response::new(Body::empty())
            } else {
                let served = blob
                    .open(range)
                    .await
                    .map_err(|e| RegistryError::unreadable_blob(e, &digest))?;
                Response::new(Body::from_stream(served.body))
            };
            let len = range.map_or(size, |r| r.len());
            let h = response.headers_mut();
            insert(h, header::CONTENT_TYPE, "application/octet-stream");
            insert(h, header::CONTENT_LENGTH, &len.to_string());
            insert(h, CONTENT_DIGEST, &digest.to_string());
            insert(h, header::ACCEPT_RANGES, "bytes");
            insert(h, header::ETAG, &format!("\"{digest}\""));
            if let Some(r) = range {
                insert(h, header::CONTENT_RANGE, &r.content_range(size));
                *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            }
            Ok(response)
        }
        (Method::DELETE, E::Blob(path, digest)) => {
            authorize(
                &state,
                &headers,
                Some((Permission::DeleteArtifacts, &repository_of(&path))),
            )
            .await?;
            registry.delete_blob(&path, &digest).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Method::POST, E::Uploads(path)) => {
            authorize(
                &state,
                &headers,
                Some((Permission::UploadArtifacts, &repository_of(&path))),
            )
            .await?;
            if let Some(digest) = query.get("digest") {
                let digest: Digest =
                    digest.parse().map_err(|e: entrepot_domain::DigestError| {
                        OciError::digest_invalid(e.to_string())
                    })?;
                registry.put_blob(&path, &digest, body_stream(body)).await?;
                return Ok(blob_created(&path, &digest));
            }
            let mount = match (query.get("mount"), query.get("from")) {
                (Some(digest), Some(from)) => {
                    match (digest.parse::<Digest>(), from.parse::<ImagePath>()) {
                        (Ok(d), Ok(f)) => {
                            // Mounting reads the source: the caller must be allowed to pull it.
                            let readable = authorize(
                                &state,
                                &headers,
                                Some((Permission::DownloadArtifacts, &repository_of(&f))),
                            )
                            .await
                            .is_ok();
                            readable.then_some((d, f))
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            match registry
                .start_upload(&path, mount.as_ref().map(|(d, f)| (d, f)))
                .await?
            {
                UploadStart::Mounted(digest) => Ok(blob_created(&path, &digest)),
                UploadStart::Session(s) => {
                    Ok(upload_response(StatusCode::ACCEPTED, &path, &s.id, s.size))
                }
            }
        }
        (Method::PATCH, E::Upload(path, id)) => {
            authorize(
                &state,
                &headers,
                Some((Permission::UploadArtifacts, &repository_of(&path))),
            )
            .await?;
            let range = chunk_range(&headers)?;
            let s = registry
                .append_chunk(&path, &id, range, body_stream(body))
                .await?;
            Ok(upload_response(StatusCode::ACCEPTED, &path, &s.id, s.size))
        }
        (Method::PUT, E::Upload(path, id)) => {
            authorize(
                &state,
                &headers,
                Some((Permission::UploadArtifacts, &repository_of(&path))),
            )
            .await?;
            let digest = digest_param(&query)?;
            let last = has_body(&headers).then(|| body_stream(body));
            let digest = registry.finish_upload(&path, &id, &digest, last).await?;
            Ok(blob_created(&path, &digest))
        }
        (Method::GET, E::Upload(path, id)) => {
            authorize(
                &state,
                &headers,
                Some((Permission::UploadArtifacts, &repository_of(&path))),
            )
            .await?;
            let s = registry.upload_status(&path, &id).await?;
            Ok(upload_response(
                StatusCode::NO_CONTENT,
                &path,
                &s.id,
                s.size,
            ))
        }
        (Method::DELETE, E::Upload(path, id)) => {
            authorize(
                &state,
                &headers,
                Some((Permission::UploadArtifacts, &repository_of(&path))),
            )
            .await?;
            registry.cancel_upload(&path, &id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Method::GET, E::Tags(path)) => {
            authorize(
                &state,
                &headers,
                Some((Permission::DownloadArtifacts, &repository_of(&path))),
            )
            .await?;
            let n = page_size(&query)?;
            let last = query.get("last").map(String::as_str);
            let page = registry.list_tags(&path, n, last).await?;
            let mut response =
                axum::Json(serde_json::json!({ "name": path.to_string(), "tags": page.items }))
                    .into_response();
            next_page_link(&mut response, &format!("/v2/{path}/tags/list"), &page);
            Ok(response)
        }
        (Method::GET, E::Referrers(path, digest)) => {
            authorize(
                &state,
                &headers,
                Some((Permission::DownloadArtifacts, &repository_of(&path))),
            )
            .await?;
            let artifact_type = query.get("artifactType").map(String::as_str);
            let index = registry.referrers(&path, &digest, artifact_type).await?;
            let mut response = Response::new(Body::from(index));
            insert(response.headers_mut(), header::CONTENT_TYPE, OCI_INDEX);
            if artifact_type.is_some() {
                insert(response.headers_mut(), OCI_FILTERS_APPLIED, "artifactType");
            }
            Ok(response)
        }
        (method, endpoint) => Err(OciError::unsupported(format!(
            "{method} is not supported on {}",
            match endpoint {
                E::Base => "/v2/",
                E::Catalog => "the catalog",
                E::Manifest(..) => "manifests",
                E::Blob(..) => "blobs",
                E::Uploads(..) | E::Upload(..) => "blob uploads",
                E::Tags(..) => "tag lists",
                E::Referrers(..) => "referrers",
            }
        ))),
    }
}
