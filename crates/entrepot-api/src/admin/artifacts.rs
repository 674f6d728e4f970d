//! The inventory of a repository, in Artifact Registry's shapes, on both
//! `/v1/projects/{p}/repositories/{r}/...` and
//! `/v1/projects/{p}/locations/{l}/repositories/{r}/...`:
//!
//! | path under the repository | method | answer |
//! |---|---|---|
//! | `dockerImages` | GET | `{dockerImages: [DockerImage], nextPageToken}` |
//! | `packages` | GET | `{packages: [Package], nextPageToken}` (images, or Python projects: uploaded, or cached by a remote repository) |
//! | `packages/{p}/versions` | GET | `{versions: [Version], nextPageToken}` (manifests, or Python versions with their files) |
//! | `packages/{p}/versions/{digest}` | DELETE | deletes a Docker manifest; `force=true` also its tags, which otherwise refuse it (412 `FAILED_PRECONDITION`) |
//! | `packages/{p}/tags` | GET | `{tags: [Tag], nextPageToken}` |
//! | `packages/{p}/tags/{t}` | GET | one `Tag` |
//!
//! A package id is the image name with each `/` sent as `%2F`, as Google
//! names them (`team%2Fapp`). Sizes are int64, so decimal strings.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use entrepot_domain::{Reference, RepositoryName};
use entrepot_services::inventory::{
    DockerImage, DockerPackageRecord, DockerTagRecord, InventoryError, Package,
    PythonPackageRecord, PythonVersion, Version,
};
use serde_json::{json, Value};

use super::paging::Listing;
use super::{authenticate, parse_id, ApiError};
use crate::AppState;

const DOCKER_IMAGES: Listing = Listing {
    field: "dockerImages",
};
const PACKAGES: Listing = Listing { field: "packages" };
const VERSIONS: Listing = Listing { field: "versions" };
const TAGS: Listing = Listing { field: "tags" };

pub(super) fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for prefix in [
        "/v1/projects/{project}/repositories/{repository}",
        "/v1/projects/{project}/locations/{location}/repositories/{repository}",
    ] {
        router = router
            .route(&format!("{prefix}/dockerImages"), get(docker_images))
            .route(&format!("{prefix}/packages"), get(packages))
            .route(
                &format!("{prefix}/packages/{{package}}/versions"),
                get(versions),
            )
            .route(
                &format!("{prefix}/packages/{{package}}/versions/{{version}}"),
                axum::routing::delete(delete_version),
            )
            .route(&format!("{prefix}/packages/{{package}}/tags"), get(tags))
            .route(
                &format!("{prefix}/packages/{{package}}/tags/{{tag}}"),
                get(tag),
            );
    }
    router
}

impl From<InventoryError> for ApiError {
    fn from(e: InventoryError) -> Self {
        match e {
            InventoryError::Auth(a) => a.into(),
            InventoryError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, m),
            InventoryError::Invalid(m) => Self::invalid(m),
            InventoryError::FailedPrecondition(m) => Self::new(StatusCode::PRECONDITION_FAILED, m),
            InventoryError::Store(ref s) => Self::internal(s),
            InventoryError::Registry(ref r) => Self::internal(r),
        }
    }
}

/// The repository a request is about, and the prefix of the names in the
/// answer (`projects/P[/locations/L]/repositories/R`).
struct Target {
    name: RepositoryName,
    prefix: String,
}

fn target(params: &HashMap<String, String>) -> Result<Target, ApiError> {
    let param = |key: &str| params.get(key).map(String::as_str).unwrap_or("");
    let name = RepositoryName::new(parse_id(param("project"))?, parse_id(param("repository"))?);
    let prefix = match params.get("location") {
        Some(location) => format!(
            "projects/{}/locations/{}/repositories/{}",
            name.project,
            super::artifact_registry::location(location)?,
            name.repository
        ),
        None => name.to_string(),
    };
    Ok(Target { name, prefix })
}

/// Add `lastPullTime` (RFC 3339, milliseconds) to `value` when a pull was
/// recorded; absent otherwise, as Google omits unset fields.
fn with_last_pull(mut value: Value, last_pull_ms: Option<i64>) -> Value {
    if let (Some(ms), Some(object)) = (last_pull_ms, value.as_object_mut()) {
        object.insert(
            "lastPullTime".into(),
            Value::String(entrepot_domain::clock::rfc3339_ms(ms)),
        );
    }
    value
}

/// A package id as Google writes it: the image name with `/` as `%2F`.
fn package_id(image: &str) -> String {
    image.replace('/', "%2F")
}

fn tag_json(prefix: &str, image: &str, tag: &DockerTagRecord) -> Value {
    let package = format!("{prefix}/packages/{}", package_id(image));
    let value = json!({
        "name": format!("{package}/tags/{}", tag.tag),
        "version": format!("{package}/versions/{}", tag.digest),
        "tag": tag.tag,
        "digest": tag.digest.to_string(),
        "updateTime": tag.update_time,
    });
    with_last_pull(value, tag.last_pull_ms)
}

fn docker_image_json(prefix: &str, image: &DockerImage) -> Value {
    let r = &image.record;
    let value = json!({
        "name": format!("{prefix}/dockerImages/{}@{}", package_id(&r.image), r.digest),
        "image": r.image,
        "digest": r.digest.to_string(),
        "tags": r.tags,
        "imageSizeBytes": image.size_bytes().to_string(),
        "mediaType": r.media_type,
        "uploadTime": r.create_time,
        "updateTime": r.create_time,
    });
    with_last_pull(value, r.last_pull_ms)
}

fn docker_version_json(prefix: &str, image: &DockerImage) -> Value {
    let r = &image.record;
    let package = format!("{prefix}/packages/{}", package_id(&r.image));
    let related: Vec<Value> = r
        .tags
        .iter()
        .map(|t| {
            json!({
                "name": format!("{package}/tags/{t}"),
                "version": format!("{package}/versions/{}", r.digest),
            })
        })
        .collect();
    let value = json!({
        "name": format!("{package}/versions/{}", r.digest),
        "createTime": r.create_time,
        "updateTime": r.create_time,
        "relatedTags": related,
        "metadata": {
            "imageSizeBytes": image.size_bytes().to_string(),
            "mediaType": r.media_type,
            "tags": r.tags,
        },
    });
    with_last_pull(value, r.last_pull_ms)
}

fn docker_package_json(prefix: &str, p: &DockerPackageRecord) -> Value {
    let value = json!({
        "name": format!("{prefix}/packages/{}", package_id(&p.image)),
        "displayName": p.image,
        "createTime": p.create_time,
        "updateTime": p.update_time,
    });
    with_last_pull(value, p.last_pull_ms)
}

/// Whether a Python listing shows a hosted repository's uploads or what a
/// remote repository cached.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PythonContent {
    Uploaded,
    Cached,
}

/// Add `field` to `value` unless `time` is empty (unknown).
fn with_time(mut value: Value, field: &str, time: &str) -> Value {
    if let (false, Some(object)) = (time.is_empty(), value.as_object_mut()) {
        object.insert(field.into(), Value::String(time.to_owned()));
    }
    value
}

/// A Python project: for a remote repository, its times are when its
/// files were first and last cached.
fn python_package_json(prefix: &str, p: &PythonPackageRecord) -> Value {
    let value = json!({
        "name": format!("{prefix}/packages/{}", p.name),
        "displayName": p.name,
        "versionCount": p.versions,
        "fileCount": p.files,
        "sizeBytes": p.size.to_string(),
    });
    let value = with_time(value, "createTime", &p.create_time);
    let value = with_time(value, "updateTime", &p.update_time);
    with_last_pull(value, p.last_pull_ms)
}

/// A Python version with its files, each with its last download; the
/// version's `lastPullTime` is its files' latest. A remote repository's
/// files carry when they were cached as `createTime`, and no `yanked`
/// (that is on the upstream's page, not in the cache).
fn python_version_json(
    prefix: &str,
    package: &str,
    v: &PythonVersion,
    content: PythonContent,
) -> Value {
    let uploaded = content == PythonContent::Uploaded;
    let files: Vec<Value> = v
        .files
        .iter()
        .map(|f| {
            let mut file = json!({
                "name": format!("{prefix}/files/{}", f.filename),
                "filename": f.filename,
                "sizeBytes": f.size.to_string(),
                "sha256": f.sha256,
            });
            if uploaded {
                file["yanked"] = json!(f.yanked);
                file["yankedReason"] = json!(f.yanked_reason);
            }
            let file = with_time(file, "createTime", &f.upload_time);
            with_last_pull(file, f.last_pull_ms)
        })
        .collect();
    let mut metadata = json!({ "sizeBytes": v.size_bytes().to_string() });
    if uploaded {
        metadata["yanked"] = json!(v.yanked());
    }
    let value = json!({
        "name": format!("{prefix}/packages/{package}/versions/{}", v.version),
        "version": v.version,
        "metadata": metadata,
        "files": files,
    });
    let value = with_time(value, "createTime", v.create_time());
    let value = with_time(value, "updateTime", v.update_time());
    with_last_pull(value, v.last_pull_ms())
}

/// `GET .../dockerImages`: every manifest, with its tags and size.
async fn docker_images(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let target = target(&params)?;
    let principal = authenticate(&state, &headers).await?;
    let page = DOCKER_IMAGES.request(&query)?;
    let images = state
        .inventory
        .docker_images(&principal, &target.name, None, &page, true)
        .await?;
    Ok(Json(
        DOCKER_IMAGES.body(images, |i| docker_image_json(&target.prefix, &i)),
    ))
}

/// `GET .../packages`: the image names of a Docker repository, the
/// projects of a Python one.
async fn packages(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let target = target(&params)?;
    let principal = authenticate(&state, &headers).await?;
    let page = PACKAGES.request(&query)?;
    let page = state
        .inventory
        .packages(&principal, &target.name, &page)
        .await?;
    let body = PACKAGES.body(page, |p| match p {
        Package::Docker(p) => docker_package_json(&target.prefix, &p),
        Package::Python(p) | Package::PythonCached(p) => python_package_json(&target.prefix, &p),
    });
    Ok(Json(body))
}

/// `GET .../packages/{p}/versions`: an image's manifests, or a Python
/// project's versions with their files.
async fn versions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let target = target(&params)?;
    let principal = authenticate(&state, &headers).await?;
    let package = params.get("package").cloned().unwrap_or_default();
    let page = VERSIONS.request(&query)?;
    let page = state
        .inventory
        .versions(&principal, &target.name, &package, &page)
        .await?;
    let body = VERSIONS.body(page, |v| match v {
        Version::Docker(i) => docker_version_json(&target.prefix, &i),
        Version::Python(v) => {
            python_version_json(&target.prefix, &package, &v, PythonContent::Uploaded)
        }
        Version::PythonCached(v) => {
            python_version_json(&target.prefix, &package, &v, PythonContent::Cached)
        }
    });
    Ok(Json(body))
}

/// `DELETE .../packages/{p}/versions/{digest}[?force=true]`: delete a
/// Docker manifest; a tagged one only with `force` (its tags go too).
async fn delete_version(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let target = target(&params)?;
    let principal = authenticate(&state, &headers).await?;
    let package = params.get("package").cloned().unwrap_or_default();
    let version = params.get("version").cloned().unwrap_or_default();
    let digest = version.parse().map_err(|_| {
        ApiError::invalid(format!(
            "version {version:?} is not a digest (sha256:...); Docker versions are manifest digests"
        ))
    })?;
    let force = match query.get("force").map(String::as_str) {
        None | Some("false") => false,
        Some("true") | Some("") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "force must be true or false, not {other:?}"
            )))
        }
    };
    let deleted = state
        .inventory
        .delete_docker_image(
            &principal,
            &target.name,
            &package,
            &Reference::Digest(digest),
            force,
        )
        .await?;
    Ok(Json(json!({
        "name": format!("{}/packages/{}/versions/{}", target.prefix, package_id(&package), deleted.digest),
        "deletedTags": deleted.tags,
    })))
}

/// `GET .../packages/{p}/tags`.
async fn tags(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let target = target(&params)?;
    let principal = authenticate(&state, &headers).await?;
    let package = params.get("package").cloned().unwrap_or_default();
    let page = TAGS.request(&query)?;
    let page = state
        .inventory
        .docker_tags(&principal, &target.name, &package, &page)
        .await?;
    Ok(Json(
        TAGS.body(page, |t| tag_json(&target.prefix, &package, &t)),
    ))
}

/// `GET .../packages/{p}/tags/{t}`.
async fn tag(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let target = target(&params)?;
    let principal = authenticate(&state, &headers).await?;
    let package = params.get("package").cloned().unwrap_or_default();
    let tag = params.get("tag").cloned().unwrap_or_default();
    let found = state
        .inventory
        .docker_tag(&principal, &target.name, &package, &tag)
        .await?;
    Ok(Json(tag_json(&target.prefix, &package, &found)))
}
