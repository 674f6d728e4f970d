//! `/v1/projects/{p}/secrets...` and `/v1/projects/{p}/auditLog`.
//!
//! Custom verbs follow a colon inside the last path segment
//! (`secrets/{s}:addVersion`, `versions/{v}:access`), which axum cannot route on,
//! so everything under `secrets/` goes to one handler that parses the rest of the
//! path into a [`SecretEndpoint`] first and then acts on it.
//!
//! Only `versions/{v}:access` answers with a payload. Request bodies that carry a
//! payload are never echoed in error messages.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::{any, get};
use axum::{Json, Router};
use base64::Engine as _;
use entrepot_domain::crc32c::crc32c;
use entrepot_domain::{
    ProjectId, SecretFilter, SecretId, SecretName, SecretNameError, SecretVersionName, VersionId,
};
use entrepot_services::{Principal, SecretError};
use serde_json::{json, Value};

use super::paging::Listing;
use super::secret_bodies::{
    decode_payload, encode_version_enums, parse_payload_body, wants_int_enums, AddVersionBody,
    SecretBody, VersionVerbBody,
};
use super::ApiError;
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/projects/{project}/secrets", get(list).post(create))
        .route("/v1/projects/{project}/secrets/{*rest}", any(dispatch))
        .route("/v1/projects/{project}/auditLog", get(audit_log))
}

/// A custom verb on a secret: `secrets/{s}:VERB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecretVerb {
    /// `:addVersion` (POST).
    AddVersion,
}

impl SecretVerb {
    fn parse(verb: &str) -> Option<Self> {
        match verb {
            "addVersion" => Some(Self::AddVersion),
            _ => None,
        }
    }
}

/// A custom verb on a secret version: `versions/{v}:VERB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionVerb {
    /// `:access` (GET): the payload.
    Access,
    /// `:enable` (POST).
    Enable,
    /// `:disable` (POST).
    Disable,
    /// `:destroy` (POST).
    Destroy,
}

impl VersionVerb {
    fn parse(verb: &str) -> Option<Self> {
        match verb {
            "access" => Some(Self::Access),
            "enable" => Some(Self::Enable),
            "disable" => Some(Self::Disable),
            "destroy" => Some(Self::Destroy),
            _ => None,
        }
    }
}

/// What a path under `/v1/projects/{p}/secrets/` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretEndpoint {
    /// `{s}` or `{s}:VERB`.
    Secret {
        /// The secret.
        secret: SecretId,
        /// The verb, if any.
        verb: Option<SecretVerb>,
    },
    /// `{s}/versions`.
    Versions {
        /// The secret.
        secret: SecretId,
    },
    /// `{s}/versions/{v}` or `{s}/versions/{v}:VERB`.
    Version {
        /// The secret.
        secret: SecretId,
        /// The version.
        version: VersionId,
        /// The verb, if any.
        verb: Option<VersionVerb>,
    },
}

/// Why a path under `secrets/` names nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndpointError {
    /// No such endpoint or verb.
    Unknown,
    /// A malformed secret id or version.
    Invalid(SecretNameError),
}

fn split_verb(segment: &str) -> (&str, Option<&str>) {
    match segment.split_once(':') {
        Some((name, verb)) => (name, Some(verb)),
        None => (segment, None),
    }
}

impl SecretEndpoint {
    /// Parse the part of the path after `secrets/`.
    pub(crate) fn parse(rest: &str) -> Result<Self, EndpointError> {
        let segments: Vec<&str> = rest.split('/').collect();
        let invalid = EndpointError::Invalid;
        match segments.as_slice() {
            [last] => {
                let (secret, verb) = split_verb(last);
                let verb = verb
                    .map(|v| SecretVerb::parse(v).ok_or(EndpointError::Unknown))
                    .transpose()?;
                Ok(Self::Secret {
                    secret: secret.parse().map_err(invalid)?,
                    verb,
                })
            }
            [secret, "versions"] => Ok(Self::Versions {
                secret: secret.parse().map_err(invalid)?,
            }),
            [secret, "versions", last] => {
                let (version, verb) = split_verb(last);
                let verb = verb
                    .map(|v| VersionVerb::parse(v).ok_or(EndpointError::Unknown))
                    .transpose()?;
                Ok(Self::Version {
                    secret: secret.parse().map_err(invalid)?,
                    version: version.parse().map_err(invalid)?,
                    verb,
                })
            }
            _ => Err(EndpointError::Unknown),
        }
    }
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::Auth(a) => a.into(),
            SecretError::ServiceAgentDenied { .. } => {
                Self::new(StatusCode::FORBIDDEN, e.to_string())
            }
            SecretError::Invalid(_) => Self::invalid(e.to_string()),
            SecretError::ProjectNotFound(_)
            | SecretError::NotFound(_)
            | SecretError::VersionNotFound(_)
            | SecretError::NoEnabledVersion(_) => Self::new(StatusCode::NOT_FOUND, e.to_string()),
            SecretError::AlreadyExists(_) => Self::new(StatusCode::CONFLICT, e.to_string()),
            SecretError::StaleEtag { .. } => {
                Self::new(StatusCode::PRECONDITION_FAILED, e.to_string())
            }
            SecretError::VersionDisabled(_) | SecretError::VersionDestroyed(_) => {
                Self::new(StatusCode::PRECONDITION_FAILED, e.to_string())
            }
            SecretError::Crypto(ref c) => {
                tracing::error!(error = %c, "secret manager encryption failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error while encrypting or decrypting secret data; check the master key file",
                )
            }
            SecretError::Store(ref s) => {
                tracing::error!(error = %s, "secret manager storage failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error while reading or writing metadata; retry later",
                )
            }
        }
    }
}

/// Who is calling; the service authorizes each operation itself.
async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    caller_or_reason(state, headers).await.map_err(|(e, _)| e)
}

/// Who is calling, or the error to send with the reason to write to the audit log.
async fn caller_or_reason(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Principal, (ApiError, String)> {
    super::authenticate(state, headers)
        .await
        .map_err(|e| (ApiError::from(e.clone()), e.to_string()))
}

fn project_id(s: &str) -> Result<ProjectId, ApiError> {
    s.parse()
        .map_err(|e: entrepot_domain::NameError| ApiError::invalid(e.to_string()))
}

/// The shape of a create body, for error messages.
const CREATE_SHAPE: &str = r#"{"replication": {"automatic": {}}, "labels": {"KEY": "VALUE"}, "annotations": {"KEY": "VALUE"}, "expireTime": "RFC3339" or "ttl": "86400s", "rotation": {"nextRotationTime": "RFC3339", "rotationPeriod": "86400s"}, "payload": {"data": "BASE64"}}"#;

const SECRETS: Listing = Listing { field: "secrets" };
const VERSIONS: Listing = Listing { field: "versions" };
const AUDIT_ENTRIES: Listing = Listing {
    field: "auditLogEntries",
};

/// `GET /v1/projects/{p}/secrets`: one page of a project's secrets, by id
/// (see [`super::paging`]).
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let project = project_id(&project)?;
    let page = SECRETS.request(&query)?;
    let filter = SecretFilter::parse(query.get("filter").map_or("", String::as_str))
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let principal = caller(&state, &headers).await?;
    let secrets = state
        .secrets
        .list_matching(&principal, &project, &page, |s| filter.matches(s))
        .await?;
    Ok(Json(SECRETS.body(secrets, |s| json!(s))))
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let project = project_id(&project)?;
    let secret_id = query
        .get("secretId")
        .ok_or_else(|| ApiError::invalid("the secretId query parameter is required"))?;
    let secret: SecretId = secret_id
        .parse()
        .map_err(|e: SecretNameError| ApiError::invalid(e.to_string()))?;
    let body: SecretBody = parse_payload_body(&body, CREATE_SHAPE)?;
    let (spec, payload) = body.into_new_secret()?;
    let principal = caller(&state, &headers).await?;
    let (secret, _) = state
        .secrets
        .create_secret(
            &principal,
            &SecretName::new(project, secret),
            &spec,
            payload,
        )
        .await?;
    Ok(Json(json!(secret)))
}

/// `GET /v1/projects/{p}/auditLog[?resource=NAME]`: one page of a project's
/// audit log, newest first (see [`super::paging`]).
async fn audit_log(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let project = project_id(&project)?;
    let page = AUDIT_ENTRIES.request(&query)?;
    let principal = caller(&state, &headers).await?;
    let entries = state
        .secrets
        .audit_log(
            &principal,
            &project,
            query.get("resource").map(String::as_str),
            &page,
        )
        .await?;
    Ok(Json(AUDIT_ENTRIES.body(entries, |r| {
        json!({
            "time": r.time,
            "principal": r.principal,
            "action": r.action,
            "resource": r.resource,
            "version": r.version,
            "allowed": r.allowed,
            "reason": r.reason,
        })
    })))
}

fn wrong_method(method: &Method, path: &str, allowed: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("{method} is not supported on {path}; use {allowed}"),
    )
}

async fn dispatch(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((project, rest)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let project = project_id(&project)?;
    let path = format!("/v1/projects/{project}/secrets/{rest}");
    let endpoint = match SecretEndpoint::parse(&rest) {
        Ok(endpoint) => endpoint,
        Err(EndpointError::Invalid(e)) => return Err(ApiError::invalid(e.to_string())),
        Err(EndpointError::Unknown) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no such resource or method: {path}"),
            ))
        }
    };
    let secrets = &state.secrets;
    let int_enums = wants_int_enums(&query);
    let principal = match caller_or_reason(&state, &headers).await {
        Ok(principal) => principal,
        Err((error, reason)) => {
            // Failed authentication is an access attempt too: audit it.
            if let SecretEndpoint::Version {
                secret,
                version,
                verb: Some(VersionVerb::Access),
            } = &endpoint
            {
                let name = SecretName::new(project.clone(), secret.clone()).version(*version);
                secrets.audit_unauthenticated_access(&name, &reason).await?;
            }
            return Err(error);
        }
    };
    match endpoint {
        SecretEndpoint::Secret { secret, verb: None } => {
            let name = SecretName::new(project, secret);
            match method {
                Method::GET => Ok(Json(json!(secrets.get(&principal, &name).await?))),
                Method::PATCH => {
                    let body: SecretBody = parse_payload_body(&body, CREATE_SHAPE)?;
                    let mask = query
                        .get("updateMask")
                        .or_else(|| query.get("update_mask"))
                        .map(String::as_str);
                    let (changes, etag) = body.into_changes(mask)?;
                    Ok(Json(json!(
                        secrets
                            .update(&principal, &name, &changes, etag.as_deref())
                            .await?
                    )))
                }
                Method::DELETE => {
                    let etag = query.get("etag").map(String::as_str);
                    secrets.delete_if(&principal, &name, etag).await?;
                    Ok(Json(json!({})))
                }
                _ => Err(wrong_method(&method, &path, "GET, PATCH or DELETE")),
            }
        }
        SecretEndpoint::Secret {
            secret,
            verb: Some(SecretVerb::AddVersion),
        } => {
            if method != Method::POST {
                return Err(wrong_method(&method, &path, "POST"));
            }
            let body: AddVersionBody = parse_payload_body(
                &body,
                r#"{"payload": {"data": "BASE64", "dataCrc32c": "CRC32C"}}"#,
            )?;
            let name = SecretName::new(project, secret);
            if let Some(parent) = &body.parent {
                if *parent != name.to_string() {
                    return Err(ApiError::invalid(format!(
                        "parent {parent:?} in the body does not match {name} in the path"
                    )));
                }
            }
            let payload = decode_payload(body.payload)?;
            let version = secrets.add_version(&principal, &name, &payload).await?;
            Ok(Json(encode_version_enums(json!(version), int_enums)))
        }
        SecretEndpoint::Versions { secret } => {
            if method != Method::GET {
                return Err(wrong_method(&method, &path, "GET"));
            }
            let page = VERSIONS.request(&query)?;
            let name = SecretName::new(project, secret);
            let versions = secrets.list_versions(&principal, &name, &page).await?;
            Ok(Json(encode_version_enums(
                VERSIONS.body(versions, |v| json!(v)),
                int_enums,
            )))
        }
        SecretEndpoint::Version {
            secret,
            version,
            verb,
        } => {
            let name = SecretVersionName {
                secret: SecretName::new(project, secret),
                version,
            };
            let (expected, result) = match verb {
                None => (Method::GET, None),
                Some(VersionVerb::Access) => (Method::GET, Some(VersionVerb::Access)),
                Some(v) => (Method::POST, Some(v)),
            };
            if method != expected {
                return Err(wrong_method(&method, &path, expected.as_str()));
            }
            if method == Method::POST {
                let _: VersionVerbBody = parse_payload_body(&body, r#"{"etag": "ETAG"}"#)?;
            }
            let version = match result {
                None => secrets.get_version(&principal, &name).await?,
                Some(VersionVerb::Access) => {
                    let accessed = secrets.access(&principal, &name).await?;
                    let bytes = accessed.payload.as_bytes();
                    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
                    // The one response that carries a payload. The checksum is
                    // a string, as protobuf's JSON mapping writes int64.
                    return Ok(Json(json!({
                        "name": accessed.name.to_string(),
                        "payload": {
                            "data": data,
                            "dataCrc32c": crc32c(bytes).to_string(),
                        },
                    })));
                }
                Some(VersionVerb::Enable) => secrets.enable_version(&principal, &name).await?,
                Some(VersionVerb::Disable) => secrets.disable_version(&principal, &name).await?,
                Some(VersionVerb::Destroy) => secrets.destroy_version(&principal, &name).await?,
            };
            Ok(Json(encode_version_enums(json!(version), int_enums)))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_secret_paths_and_verbs() {
        assert_eq!(
            SecretEndpoint::parse("tok").unwrap(),
            SecretEndpoint::Secret {
                secret: "tok".parse().unwrap(),
                verb: None
            }
        );
        assert_eq!(
            SecretEndpoint::parse("tok:addVersion").unwrap(),
            SecretEndpoint::Secret {
                secret: "tok".parse().unwrap(),
                verb: Some(SecretVerb::AddVersion)
            }
        );
        assert_eq!(
            SecretEndpoint::parse("tok/versions").unwrap(),
            SecretEndpoint::Versions {
                secret: "tok".parse().unwrap()
            }
        );
        assert_eq!(
            SecretEndpoint::parse("tok/versions/latest:access").unwrap(),
            SecretEndpoint::Version {
                secret: "tok".parse().unwrap(),
                version: VersionId::Latest,
                verb: Some(VersionVerb::Access)
            }
        );
        assert_eq!(
            SecretEndpoint::parse("tok/versions/3:destroy").unwrap(),
            SecretEndpoint::Version {
                secret: "tok".parse().unwrap(),
                version: VersionId::Number(3),
                verb: Some(VersionVerb::Destroy)
            }
        );
    }

    #[test]
    fn unknown_verbs_and_shapes_are_not_found_and_bad_names_invalid() {
        for path in [
            "tok:getIamPolicy",
            "tok/versions/1:explode",
            "tok/other",
            "tok/versions/1/x",
            "",
        ] {
            let parsed = SecretEndpoint::parse(path);
            assert!(
                matches!(
                    parsed,
                    Err(EndpointError::Unknown) | Err(EndpointError::Invalid(_))
                ),
                "{path}"
            );
        }
        assert_eq!(
            SecretEndpoint::parse("tok:getIamPolicy"),
            Err(EndpointError::Unknown)
        );
        assert!(matches!(
            SecretEndpoint::parse("to.k"),
            Err(EndpointError::Invalid(_))
        ));
        assert!(matches!(
            SecretEndpoint::parse("tok/versions/0"),
            Err(EndpointError::Invalid(_))
        ));
    }
}
