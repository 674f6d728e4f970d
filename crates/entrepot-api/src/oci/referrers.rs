//! `GET /v2/{name}/referrers/{digest}`: the manifests whose subject is a
//! digest, as an OCI image index.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{header, HeaderName};
use axum::response::Response;
use entrepot_domain::manifest::OCI_INDEX;
use entrepot_domain::{Digest, ImagePath};
use entrepot_services::Principal;

use super::{insert, OciError};
use crate::AppState;

const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

/// The referrers index of `subject`, filtered by `?artifactType=` if given.
pub(super) async fn list(
    state: &AppState,
    caller: &Principal,
    path: &ImagePath,
    subject: &Digest,
    query: &HashMap<String, String>,
) -> Result<Response, OciError> {
    let artifact_type = query.get("artifactType").map(String::as_str);
    let index = state
        .registry
        .referrers(caller, path, subject, artifact_type)
        .await?;
    let stale = index.stale();
    let mut response = Response::new(Body::from(index.content));
    let h = response.headers_mut();
    insert(h, header::CONTENT_TYPE, OCI_INDEX);
    if artifact_type.is_some() {
        insert(h, OCI_FILTERS_APPLIED, "artifactType");
    }
    if stale {
        insert(h, header::WARNING, super::STALE_WARNING);
    }
    if let Some(age) = index.age_secs {
        insert(h, header::AGE, &age.to_string());
    }
    if let Some(cache) = index.cache {
        insert(h, super::X_CACHE, cache.as_str());
    }
    Ok(response)
}
