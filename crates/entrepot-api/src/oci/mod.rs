//! The OCI distribution-spec 1.1 front-end at `/v2/`.
//!
//! A request is parsed once into an [`Endpoint`] (method and path), the
//! caller is authenticated here, in one place, and the operation's module
//! calls [`OciRepositories`](entrepot_services::OciRepositories) with the
//! caller's principal: the service authorizes (the permission of each
//! operation is defined there, [`Endpoint::operation`] maps onto it). The
//! modules are [`manifests`], [`blobs`], [`uploads`], [`tags`],
//! [`referrers`], [`catalog`]. Service errors become OCI error bodies in
//! [`error`], a refusal of an anonymous caller the 401 challenge for the
//! endpoint's scope.

mod blobs;
mod catalog;
pub mod challenge;
mod endpoint;
mod error;
mod manifests;
pub mod mirror;
mod referrers;
mod tags;
pub mod token;
mod uploads;

pub use endpoint::{Endpoint, EndpointError, Requirement};
pub use error::OciError;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};
use entrepot_services::oci::Page;
use entrepot_services::ByteStream;
use entrepot_services::Principal;
use futures::{StreamExt, TryStreamExt};

use crate::AppState;

/// `Docker-Distribution-API-Version`.
pub const API_VERSION_HEADER: HeaderName =
    HeaderName::from_static("docker-distribution-api-version");
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
/// How a remote repository's cache answered: `HIT`, `MISS`, `STALE`, `REVALIDATED`.
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
/// The `Warning` of an answer served stale because the upstream failed.
const STALE_WARNING: &str = "110 entrepot \"Response is Stale: the upstream could not be reached\"";

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
    /// The query's parameters, the last value of each.
    query: HashMap<String, String>,
    /// Every value of the repeated `tag` parameter, in order.
    tags: Vec<String>,
    body: Body,
    /// The connection's zero-copy writer, on plain HTTP/1.1 connections.
    zero_copy: Option<Arc<crate::zero_copy::ZeroCopy>>,
}

async fn base(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Response {
    serve(
        state,
        &method,
        String::new(),
        headers,
        None,
        Body::empty(),
        None,
    )
    .await
}

async fn dispatch(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    zero_copy: Option<Extension<Arc<crate::zero_copy::ZeroCopy>>>,
    body: Body,
) -> Response {
    let ns = query_pairs(query.clone())
        .into_iter()
        .rev()
        .find_map(|(k, v)| (k == "ns").then_some(v));
    let rest = match state.mirrors.route(&method, &rest, ns.as_deref()) {
        Ok(mirror::MirrorRoute::Direct) => rest,
        Ok(mirror::MirrorRoute::Mirrored { rest, .. }) => rest,
        Err(e) => return run(Err(e)),
    };
    let zero_copy = zero_copy.map(|Extension(z)| z);
    serve(state, &method, rest, headers, query, body, zero_copy).await
}

/// Parse the request once, authenticate the caller, run it; a 401 carries
/// the challenge for the endpoint's token scope.
async fn serve(
    state: AppState,
    method: &Method,
    rest: String,
    headers: HeaderMap,
    query: Option<String>,
    body: Body,
    zero_copy: Option<Arc<crate::zero_copy::ZeroCopy>>,
) -> Response {
    let endpoint = match Endpoint::parse(method, &rest) {
        Ok(endpoint) => endpoint,
        Err(e) => return run(Err(OciError::endpoint(e, &rest))),
    };
    if let Some(image) = endpoint.image() {
        crate::observe::record_repository(format_args!(
            "projects/{}/repositories/{}",
            image.project, image.repository
        ));
    }
    let scope = endpoint.scope();
    let pairs = query_pairs(query);
    let request = Request {
        headers: headers.clone(),
        tags: pairs
            .iter()
            .filter(|(k, _)| k == "tag")
            .map(|(_, v)| v.clone())
            .collect(),
        query: pairs.into_iter().collect(),
        body,
        zero_copy,
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

/// Authenticate the caller, then run the endpoint's operation as that
/// principal (the service authorizes it).
async fn handle(
    state: &AppState,
    endpoint: Endpoint,
    request: Request,
) -> Result<Response, OciError> {
    let caller = &authenticate(state, &request.headers).await?;
    use Endpoint as E;
    match endpoint {
        E::Base => version_check(&request.headers),
        E::Catalog => catalog::list(state, caller, &request.query).await,
        E::GetManifest(path, reference) => {
            manifests::get(state, caller, &path, &reference, true).await
        }
        E::HeadManifest(path, reference) => {
            manifests::get(state, caller, &path, &reference, false).await
        }
        E::PutManifest(path, reference) => {
            manifests::put(state, caller, &path, &reference, request).await
        }
        E::DeleteManifest(path, reference) => {
            manifests::delete(state, caller, &path, &reference, &request.query).await
        }
        E::GetBlob(path, digest) => {
            blobs::get(
                state,
                caller,
                &path,
                &digest,
                &request.headers,
                true,
                request.zero_copy.as_ref(),
            )
            .await
        }
        E::HeadBlob(path, digest) => {
            blobs::get(state, caller, &path, &digest, &request.headers, false, None).await
        }
        E::DeleteBlob(path, digest) => blobs::delete(state, caller, &path, &digest).await,
        E::StartUpload(path) => uploads::start(state, caller, &path, request).await,
        E::UploadStatus(path, id) => uploads::status(state, caller, &path, &id).await,
        E::AppendChunk(path, id) => uploads::append(state, caller, &path, &id, request).await,
        E::FinishUpload(path, id) => uploads::finish(state, caller, &path, &id, request).await,
        E::CancelUpload(path, id) => uploads::cancel(state, caller, &path, &id).await,
        E::ListTags(path) => tags::list(state, caller, &path, &request.query).await,
        E::Referrers(path, digest) => {
            referrers::list(state, caller, &path, &digest, &request.query).await
        }
    }
}

/// Who the caller is: the principal of its credentials, or anonymous
/// without any. Bad credentials are refused here, whatever the endpoint.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, OciError> {
    let credentials = crate::credentials::from_headers(headers)
        .map_err(|e| OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", e.to_string()))?;
    let principal =
        crate::observe::authenticated(state.access.authenticate(credentials.as_ref()).await)?;
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

fn query_pairs(query: Option<String>) -> Vec<(String, String)> {
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
