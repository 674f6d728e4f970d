//! The OCI distribution-spec 1.1 front-end at `/v2/`.
//!
//! A request is parsed once into an [`Endpoint`] (method and path), which
//! decides the permission it needs ([`Endpoint::permission`]); the caller is
//! authorized here, in one place, and the operation's module does the rest:
//! [`manifests`], [`blobs`], [`uploads`], [`tags`], [`referrers`],
//! [`catalog`]. Service errors become OCI error bodies in [`error`].

mod blobs;
mod catalog;
pub mod challenge;
mod endpoint;
mod error;
mod manifests;
mod referrers;
mod tags;
pub mod token;
mod uploads;

pub use endpoint::{Endpoint, EndpointError, Requirement};
pub use error::OciError;

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use entrepot_services::oci::Page;
use entrepot_services::ByteStream;
use entrepot_services::Principal;
use futures::{StreamExt, TryStreamExt};

use crate::AppState;

/// `Docker-Distribution-API-Version`.
pub const API_VERSION_HEADER: HeaderName =
    HeaderName::from_static("docker-distribution-api-version");
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");

/// Routes of the OCI front-end.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2", any(base))
        .route("/v2/", any(base))
        .route("/v2/{*rest}", any(dispatch))
        .merge(token::routes())
}

/// The parts of a request an operation reads besides its endpoint.
struct Request {
    headers: HeaderMap,
    query: HashMap<String, String>,
    body: Body,
}

async fn base(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Response {
    serve(state, &method, String::new(), headers, None, Body::empty()).await
}

async fn dispatch(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    serve(state, &method, rest, headers, query, body).await
}

/// Parse the request once, authorize it, run it; a 401 carries the
/// challenge for the endpoint's token scope.
async fn serve(
    state: AppState,
    method: &Method,
    rest: String,
    headers: HeaderMap,
    query: Option<String>,
    body: Body,
) -> Response {
    let endpoint = match Endpoint::parse(method, &rest) {
        Ok(endpoint) => endpoint,
        Err(e) => return run(Err(OciError::endpoint(e, &rest))),
    };
    let scope = endpoint.scope();
    let request = Request {
        headers: headers.clone(),
        query: query_map(query),
        body,
    };
    let result = handle(&state, endpoint, request).await;
    run(result.map_err(|e| challenge::challenge_unauthorized(e, &headers, scope.as_deref())))
}

fn run(result: Result<Response, OciError>) -> Response {
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response
        .headers_mut()
        .insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
    response
}

/// Authorize the caller for the endpoint, then run its operation.
async fn handle(
    state: &AppState,
    endpoint: Endpoint,
    request: Request,
) -> Result<Response, OciError> {
    authorize(state, &request.headers, endpoint.permission()).await?;
    use Endpoint as E;
    match endpoint {
        E::Base => version_check(&request.headers),
        E::Catalog => catalog::list(state, &request.query).await,
        E::GetManifest(path, reference) => manifests::get(state, &path, &reference, true).await,
        E::HeadManifest(path, reference) => manifests::get(state, &path, &reference, false).await,
        E::PutManifest(path, reference) => manifests::put(state, &path, &reference, request).await,
        E::DeleteManifest(path, reference) => manifests::delete(state, &path, &reference).await,
        E::GetBlob(path, digest) => blobs::get(state, &path, &digest, &request.headers, true).await,
        E::HeadBlob(path, digest) => {
            blobs::get(state, &path, &digest, &request.headers, false).await
        }
        E::DeleteBlob(path, digest) => blobs::delete(state, &path, &digest).await,
        E::StartUpload(path) => uploads::start(state, &path, request).await,
        E::UploadStatus(path, id) => uploads::status(state, &path, &id).await,
        E::AppendChunk(path, id) => uploads::append(state, &path, &id, request).await,
        E::FinishUpload(path, id) => uploads::finish(state, &path, &id, request).await,
        E::CancelUpload(path, id) => uploads::cancel(state, &path, &id).await,
        E::ListTags(path) => tags::list(state, &path, &request.query).await,
        E::Referrers(path, digest) => referrers::list(state, &path, &digest, &request.query).await,
    }
}

/// Authenticate the caller and check what the operation requires.
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    requirement: Requirement,
) -> Result<Principal, OciError> {
    let credentials = crate::credentials::from_headers(headers)
        .map_err(|e| OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", e.to_string()))?;
    let principal = state.access.authenticate(credentials.as_ref()).await?;
    if let Requirement::Permission(permission, resource) = requirement {
        state
            .access
            .authorize(&principal, permission, &resource)
            .await?;
    }
    Ok(principal)
}

/// `GET /v2/`. Clients log in by meeting this challenge; valid credentials
/// of any principal (an anonymous registry token too) pass.
fn version_check(headers: &HeaderMap) -> Result<Response, OciError> {
    if !headers.contains_key(header::AUTHORIZATION) {
        return Err(OciError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        ));
    }
    Ok(axum::Json(serde_json::json!({})).into_response())
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

fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// The client's `n` of a listing, if any.
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
