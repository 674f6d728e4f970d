//! IAM verbs on resource names: `POST /v1/{resource}:setIamPolicy`,
//! `GET|POST /v1/{resource}:getIamPolicy`, `POST /v1/{resource}:testIamPermissions`
//! for `organization`, `projects/{p}`, `projects/{p}/repositories/{r}` and
//! `projects/{p}/secrets/{s}`.
//!
//! The router cannot match a `:verb` suffix inside a path segment, and the
//! resource routes (`/v1/projects/{p}/repositories/{r}`) would swallow
//! `r:getIamPolicy` as an id. So these verbs are recognised by a middleware in
//! front of the router, which answers them itself and passes everything else
//! on.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use entrepot_domain::iam::Policy;
use entrepot_domain::{ProjectId, RepositoryId, SecretId};
use entrepot_services::{IamError, Principal, Resource};
use serde::Deserialize;

use super::ApiError;
use crate::AppState;

/// Largest accepted IAM request body.
const MAX_BODY: usize = 1 << 20;

/// The IAM verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IamVerb {
    /// `:getIamPolicy`.
    GetIamPolicy,
    /// `:setIamPolicy`.
    SetIamPolicy,
    /// `:testIamPermissions`.
    TestIamPermissions,
}

/// Split `/v1/{name}:{verb}` into a resource and an IAM verb; `None` when the
/// path is not an IAM verb call (it then goes to the router). A name that
/// matches no resource kind is an error.
pub fn parse_iam_path(path: &str) -> Option<Result<(Resource, IamVerb), ApiError>> {
    let rest = path.strip_prefix("/v1/")?;
    let rest = rest.replace("%3A", ":").replace("%3a", ":");
    let (name, verb) = rest.rsplit_once(':')?;
    let verb = match verb {
        "getIamPolicy" => IamVerb::GetIamPolicy,
        "setIamPolicy" => IamVerb::SetIamPolicy,
        "testIamPermissions" => IamVerb::TestIamPermissions,
        _ => return None,
    };
    Some(parse_resource(name).map(|r| (r, verb)))
}

/// Parse a resource name that can carry an IAM policy.
pub fn parse_resource(name: &str) -> Result<Resource, ApiError> {
    let segments: Vec<&str> = name.split('/').collect();
    let project =
        |s: &str| -> Result<String, ApiError> { Ok(super::parse_id::<ProjectId>(s)?.to_string()) };
    match segments.as_slice() {
        ["organization"] => Ok(Resource::Organization),
        ["projects", p] => Ok(Resource::Project(project(p)?)),
        ["projects", p, "repositories", r] | ["projects", p, "locations", _, "repositories", r] => Ok(Resource::Repository {
            project: project(p)?,
            repository: super::parse_id::<RepositoryId>(r)?.to_string(),
        }),
        ["projects", p, "secrets", s] => match s.parse::<SecretId>() {
            Ok(secret) => Ok(Resource::Secret {
                project: project(p)?,
                secret: secret.to_string(),
            }),
            Err(_) => Err(ApiError::invalid(format!(
                "secret id {s:?} is invalid: use up to 255 letters, digits, '-' and '_'"
            ))),
        },
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{name} has no IAM policy; IAM policies exist on organization, projects/P, projects/P[/locations/L]/repositories/R and projects/P/secrets/S"),
        )),
    }
}

impl From<IamError> for ApiError {
    fn from(e: IamError) -> Self {
        match e {
            IamError::Auth(a) => a.into(),
            IamError::Invalid(_) => ApiError::invalid(e.to_string()),
            IamError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            IamError::AlreadyExists(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            IamError::StaleEtag { .. } => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, e.to_string())
            }
            IamError::Authn(_) | IamError::Store(_) => {
                tracing::error!(error = %e, "IAM failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error while reading or writing IAM data; retry later",
                )
            }
        }
    }
}

/// Authenticate the caller (no permission check: the IAM service checks).
pub(crate) async fn caller(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Principal, ApiError> {
    Ok(super::authenticate(state, headers).await?)
}

/// The middleware: answer IAM verb calls, pass the rest on.
pub async fn iam_verbs(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match parse_iam_path(request.uri().path()) {
        None => next.run(request).await,
        Some(Err(e)) => e.into_response(),
        Some(Ok((resource, verb))) => match handle(&state, request, resource, verb).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        },
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetBody {
    policy: Policy,
    /// Accepted for compatibility; the whole policy is always replaced.
    #[serde(default)]
    #[allow(dead_code)]
    update_mask: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TestBody {
    permissions: Vec<String>,
}

async fn json_body<T: serde::de::DeserializeOwned>(body: Body, what: &str) -> Result<T, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::invalid(format!("the {what} request body is larger than 1 MiB")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("the {what} request body is invalid: {e}")))
}

async fn handle(
    state: &AppState,
    request: Request,
    resource: Resource,
    verb: IamVerb,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let allowed = match verb {
        IamVerb::GetIamPolicy => parts.method == Method::GET || parts.method == Method::POST,
        _ => parts.method == Method::POST,
    };
    if !allowed {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not allowed here; use POST", parts.method),
        ));
    }
    let principal = caller(state, &parts.headers).await?;
    match verb {
        IamVerb::GetIamPolicy => {
            let policy = state.iam.get_policy(&principal, &resource).await?;
            Ok(Json(policy).into_response())
        }
        IamVerb::SetIamPolicy => {
            let body: SetBody = json_body(body, "setIamPolicy").await?;
            let policy = state
                .iam
                .set_policy(&principal, &resource, body.policy)
                .await?;
            Ok(Json(policy).into_response())
        }
        IamVerb::TestIamPermissions => {
            let body: TestBody = json_body(body, "testIamPermissions").await?;
            let held = state
                .iam
                .test_permissions(&principal, &resource, &body.permissions)
                .await?;
            Ok(Json(serde_json::json!({ "permissions": held })).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_paths_parse() {
        let (r, v) = parse_iam_path("/v1/projects/default/repositories/images:getIamPolicy")
            .unwrap()
            .unwrap();
        assert_eq!(r.to_string(), "projects/default/repositories/images");
        assert_eq!(v, IamVerb::GetIamPolicy);
        let (r, v) = parse_iam_path("/v1/projects/demo/secrets/hub-token%3AsetIamPolicy")
            .unwrap()
            .unwrap();
        assert_eq!(r.to_string(), "projects/demo/secrets/hub-token");
        assert_eq!(v, IamVerb::SetIamPolicy);
        let (r, _) = parse_iam_path("/v1/projects/p/locations/europe/repositories/r:setIamPolicy")
            .unwrap()
            .unwrap();
        assert_eq!(r.to_string(), "projects/p/repositories/r");
        assert!(parse_iam_path("/v1/projects/demo:testIamPermissions")
            .unwrap()
            .is_ok());
        assert!(parse_iam_path("/v1/organization:getIamPolicy")
            .unwrap()
            .is_ok());
        assert!(parse_iam_path("/v1/projects/demo/secrets/s/versions/1:access").is_none());
        assert!(parse_iam_path("/v1/projects/demo/repositories/r").is_none());
        assert!(parse_iam_path("/v2/x:getIamPolicy").is_none());
        assert!(parse_iam_path("/v1/projects/Bad:getIamPolicy")
            .unwrap()
            .is_err());
        assert!(parse_iam_path("/v1/projects/p/things/x:getIamPolicy")
            .unwrap()
            .is_err());
    }
}
