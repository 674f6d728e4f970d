//! The Python front-end at `/pypi/{project}/{repository}/`: the simple
//! repository API (PEP 503 HTML and PEP 691 JSON by content negotiation, PEP
//! 592, 658/714 and 700 fields), file downloads with Range and HEAD, and twine's
//! legacy upload. Yanking is an admin verb under `/v1/`.
//!
//! The caller is authenticated here; the Python service authorizes every
//! operation itself (see `entrepot_services::python::operation`), so this
//! front-end holds no permission of its own.

mod cache_headers;
mod conditional;
mod endpoint;
mod error;
mod negotiate;

pub use endpoint::{parse, Endpoint, EndpointError};
pub use error::PypiError;
pub use negotiate::negotiate;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use entrepot_domain::range::parse_range_header;
use entrepot_domain::RepositoryName;
use entrepot_services::python::index::{entity_tag, render_project_list};
use entrepot_services::python::{PageFormat, PythonError, UploadForm, UploadTarget};
use entrepot_services::{Credentials, Principal};
use futures::TryStreamExt;

use crate::AppState;

/// Routes of the Python front-end and its admin verbs.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/pypi/{*rest}", any(dispatch))
        .route(
            "/v1/projects/{project}/repositories/{repository}/pythonPackages/{package}/versions/{version}",
            post(version_verb),
        )
        // Uploads stream to disk and are capped by the service, not buffered.
        .layer(DefaultBodyLimit::disable())
}

async fn dispatch(
    State(state): State<AppState>,
    Path(rest): Path<String>,
    request: Request,
) -> Response {
    handle(state, rest, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Who the caller is: the principal of its credentials, or anonymous
/// without any. Bad credentials are refused here.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, PypiError> {
    let credentials = crate::credentials::from_headers(headers)
        .map_err(|e| PypiError::new(StatusCode::UNAUTHORIZED, e.to_string()))?
        .map(token_credentials);
    Ok(crate::observe::authenticated(
        state.access.authenticate(credentials.as_ref()).await,
    )?)
}

/// Python tools send tokens as Basic credentials of the user `__token__`
/// (PyPI's convention): present them as the bearer tokens they are.
fn token_credentials(credentials: Credentials) -> Credentials {
    match credentials {
        Credentials::Basic { username, password } if username == "__token__" => {
            Credentials::Bearer(password)
        }
        other => other,
    }
}

fn redirect(location: &str) -> Response {
    let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// How long a client may reuse a page before it revalidates it (with the
/// page's `ETag`, answered 304 while the page is unchanged).
const PAGE_CACHE_CONTROL: &str = "max-age=60";

/// Files are named by their sha256: their bytes never change.
const FILE_CACHE_CONTROL: &str = "max-age=31536000, immutable";

/// An index page in `format` with its entity tag, or 304 Not Modified when
/// the request's `If-None-Match` names that tag. The page is negotiated on
/// `Accept`, so caches must key it on `Accept` too (`Vary`).
fn page_response(
    format: PageFormat,
    body: impl Into<Body>,
    etag: &str,
    request: &HeaderMap,
) -> Response {
    let mut r = if conditional::matches(request, etag) {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(body.into());
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        r
    };
    let h = r.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(PAGE_CACHE_CONTROL),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    r
}

fn format_for(headers: &HeaderMap) -> Result<PageFormat, PypiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    negotiate(accept).ok_or_else(|| {
        PypiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "none of the accepted media types is available; accept application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html or text/html",
        )
    })
}

async fn handle(state: AppState, rest: String, request: Request) -> Result<Response, PypiError> {
    let endpoint = parse(&rest).map_err(|e| match e {
        EndpointError::Unknown(_) => PypiError::not_found(e.to_string()),
        EndpointError::Invalid(m) => PypiError::invalid(m),
    })?;
    let method = request.method().clone();
    let headers = request.headers().clone();
    let read = method == Method::GET || method == Method::HEAD;
    match endpoint {
        Endpoint::Redirect(location) if read => Ok(redirect(&location)),
        Endpoint::Index(name) if read => {
            let format = format_for(&headers)?;
            let caller = authenticate(&state, &headers).await?;
            let answered = state.python.project_list_answered(&caller, &name).await?;
            let (names, cache) = (answered.value, answered.cache);
            let base = format!("/pypi/{}/{}/simple", name.project, name.repository);
            let render = move || render_project_list(&names, format, |n| format!("{base}/{n}/"));
            // PyPI's list is ~600,000 names: written off the async runtime.
            let (body, etag) = tokio::task::spawn_blocking(move || {
                let body = render();
                let etag = entity_tag(&body);
                (body, etag)
            })
            .await
            .map_err(|e| PypiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            let mut response = page_response(format, body, &etag, &headers);
            cache_headers::page(response.headers_mut(), cache, false);
            Ok(response)
        }
        Endpoint::Project(name, project) if read => {
            let format = format_for(&headers)?;
            let caller = authenticate(&state, &headers).await?;
            let answered = state
                .python
                .project_page_answered(&caller, &name, &project)
                .await?;
            let (page, cache) = (answered.value, answered.cache);
            // A large page is written off the async runtime (once per form:
            // later requests get the kept bytes).
            let (body, etag) = if page.page().files.len() > 1_000 {
                let rendered = page.clone();
                tokio::task::spawn_blocking(move || {
                    (rendered.render(format), rendered.etag(format))
                })
                .await
                .map_err(|e| PypiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            } else {
                (page.render(format), page.etag(format))
            };
            let mut response = page_response(format, body, &etag, &headers);
            cache_headers::page(response.headers_mut(), cache, page.page().stale);
            Ok(response)
        }
        Endpoint::File {
            repo: name,
            sha256,
            filename,
        } if read => {
            let caller = authenticate(&state, &headers).await?;
            let file = state
                .python
                .file(&caller, &name, &sha256, &filename)
                .await?;
            let zero_copy = request
                .extensions()
                .get::<std::sync::Arc<crate::zero_copy::ZeroCopy>>()
                .cloned();
            serve_file(file, &sha256, &filename, &method, &headers, zero_copy).await
        }
        Endpoint::Upload(name) if method == Method::POST => {
            let caller = authenticate(&state, &headers).await?;
            let target = state.python.upload_target(&caller, &name).await?;
            let length = headers
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            state.python.check_upload_quota(&target, length).await?;
            upload(&state, &target, request).await
        }
        _ => Err(PypiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on /pypi/{rest}"),
        )),
    }
}

async fn serve_file(
    file: entrepot_services::python::LocatedFile,
    sha256: &str,
    filename: &str,
    method: &Method,
    headers: &HeaderMap,
    zero_copy: Option<std::sync::Arc<crate::zero_copy::ZeroCopy>>,
) -> Result<Response, PypiError> {
    // Named by the sha256 in its URL; a metadata file shares the URL's
    // sha256 with its distribution, so its tag says which of the two it is.
    let etag = if filename.ends_with(".metadata") {
        format!("\"sha256:{sha256}.metadata\"")
    } else {
        format!("\"sha256:{sha256}\"")
    };
    if conditional::matches(headers, &etag) {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        let h = r.headers_mut();
        cache_headers::file(h, file.cache());
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(FILE_CACHE_CONTROL),
        );
        return Ok(r);
    }
    let size = file.size();
    let cache = file.cache();
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        // RFC 9110: several ranges or another unit are ignored (whole file).
        Some(r) => parse_range_header(r, size)
            .map_err(|e| PypiError::new(StatusCode::RANGE_NOT_SATISFIABLE, e.to_string()))?,
        None => None,
    };
    let len = range.map_or(size, |r| r.len());
    let mut response = if *method == Method::HEAD {
        Response::new(Body::empty())
    } else {
        let body = crate::zero_copy::blob_body(zero_copy.as_ref(), file, range)
            .await
            .map_err(PythonError::from)?;
        Response::new(body)
    };
    let h = response.headers_mut();
    let insert = |h: &mut HeaderMap, name, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    insert(h, header::CONTENT_LENGTH, len.to_string());
    insert(h, header::ACCEPT_RANGES, "bytes".into());
    insert(
        h,
        header::CONTENT_TYPE,
        if filename.ends_with(".metadata") {
            "text/plain; charset=utf-8".into()
        } else {
            "application/octet-stream".into()
        },
    );
    insert(h, header::ETAG, etag);
    insert(h, header::CACHE_CONTROL, FILE_CACHE_CONTROL.into());
    cache_headers::file(h, cache);
    if let Some(r) = range {
        insert(h, header::CONTENT_RANGE, r.content_range(size));
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(response)
}

/// Fields a field longer than this is refused (only `content` is large).
const MAX_FIELD_BYTES: usize = 1024 * 1024;

async fn upload(
    state: &AppState,
    target: &UploadTarget,
    request: Request,
) -> Result<Response, PypiError> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| PypiError::invalid(format!("the upload is not a multipart form: {e}")))?;
    let mut form = UploadForm::default();
    let mut staged = None;
    let broken = |e: axum::extract::multipart::MultipartError| {
        PypiError::invalid(format!("the upload form is malformed: {e}"))
    };
    while let Some(field) = multipart.next_field().await.map_err(broken)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "content" {
            form.filename = field.file_name().unwrap_or_default().to_owned();
            let body = field.map_err(|e| e.to_string());
            staged = Some(state.python.stage(target, body).await?);
            continue;
        }
        let mut value = Vec::new();
        let mut field = field;
        while let Some(chunk) = field.chunk().await.map_err(broken)? {
            if value.len() + chunk.len() > MAX_FIELD_BYTES {
                return Err(PypiError::invalid(format!(
                    "the form field {name:?} is too large"
                )));
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8_lossy(&value).into_owned();
        match name.as_str() {
            ":action" => form.action = value,
            "name" => form.name = value,
            "version" => form.version = value,
            "filetype" => form.filetype = value,
            "sha256_digest" => form.sha256_digest = Some(value).filter(|v| !v.is_empty()),
            "requires_python" => form.requires_python = Some(value),
            _ => {}
        }
    }
    let staged =
        staged.ok_or_else(|| PypiError::invalid("Upload payload does not have a file."))?;
    if form.name.is_empty() || form.version.is_empty() {
        return Err(PypiError::invalid(
            "The form must name the project (name) and its version (version).",
        ));
    }
    state.python.upload(target, &form, staged).await?;
    Ok((StatusCode::OK, "OK\n").into_response())
}

/// `POST .../pythonPackages/{package}/versions/{version}:yank` (or `:unyank`).
async fn version_verb(
    State(state): State<AppState>,
    Path((project, repository, package, version)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, crate::admin::ApiError> {
    use crate::admin::ApiError;
    let name: RepositoryName = format!("projects/{project}/repositories/{repository}")
        .parse()
        .map_err(|e: entrepot_domain::repository::RepositoryNameError| {
            ApiError::invalid(e.to_string())
        })?;
    let (version, verb) = version
        .rsplit_once(':')
        .ok_or_else(|| ApiError::invalid("use .../versions/VERSION:yank or :unyank"))?;
    let yank = match verb {
        "yank" => true,
        "unyank" => false,
        other => {
            return Err(ApiError::invalid(format!(
                "unknown verb :{other}; use :yank or :unyank"
            )))
        }
    };
    let caller = crate::admin::authenticate(&state, &headers).await?;
    // The service reads the body once it has authorized the caller.
    let n = state
        .python
        .set_yanked(&caller, &name, &package, version, yank, &body)
        .await
        .map_err(|e| match e {
            // The admin API's own answers for a refusal and a missing
            // repository, as for every other `/v1` route.
            PythonError::Access(e) => ApiError::from(e),
            PythonError::Repository(e) => ApiError::from(e),
            e => ApiError::new(error::status_of(&e), e.to_string()),
        })?;
    Ok(Json(serde_json::json!({
        "name": format!("{name}/pythonPackages/{package}/versions/{version}"),
        "yanked": yank,
        "files": n,
    }))
    .into_response())
}
