//! `GET /v2/token`: the Docker token endpoint.
//!
//! A client that met a `Bearer` challenge asks here for a short-lived registry
//! token, authenticating with HTTP Basic (user and access token or password) or
//! not at all. The token grants the requested actions the caller is allowed,
//! and nothing else: a request for more is not an error, the token just lists
//! less (as the Docker token specification says); which actions the caller
//! is allowed is the OCI service's decision
//! ([`OciRepositories::granted_actions`](entrepot_services::OciRepositories::granted_actions)),
//! by the same table its operations are authorized by. A registry token is not
//! accepted as the credential: a token cannot be renewed past the life of the
//! password or access token it came from.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use entrepot_domain::ImagePath;
use entrepot_services::authn::AccessEntry;
use entrepot_services::AuthError;

use super::OciError;
use crate::AppState;

/// Routes of the token endpoint.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v2/token", get(issue))
}

/// One requested scope: `repository:default/images/app:pull,push`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `repository` or `registry`.
    pub kind: String,
    /// The resource name.
    pub name: String,
    /// Requested actions.
    pub actions: Vec<String>,
}

/// Parse one scope string; `None` if it has no `type:name:actions` shape.
pub fn parse_scope(s: &str) -> Option<Scope> {
    let (kind, rest) = s.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    if kind.is_empty() || name.is_empty() {
        return None;
    }
    Some(Scope {
        kind: kind.to_owned(),
        name: name.to_owned(),
        actions: actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

fn unauthorized(message: String) -> Response {
    let mut response =
        OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Basic realm="entrepot""#),
    );
    response
}

async fn issue(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params: Vec<(String, String)> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let credentials = match crate::credentials::from_headers(&headers) {
        Ok(c) => c,
        Err(e) => return unauthorized(e.to_string()),
    };
    let who = match state
        .iam
        .authenticate_for_exchange(credentials.as_ref())
        .await
    {
        Ok(who) => who,
        Err(e @ AuthError::Throttled { .. }) => return OciError::from(e).into_response(),
        Err(e) => return unauthorized(e.to_string()),
    };
    let mut access = Vec::new();
    let requested = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' '))
        .filter_map(parse_scope);
    for mut scope in requested {
        // Scopes of the mirror endpoint's names are its repository's.
        if scope.kind == "repository" {
            scope.name = state.mirrors.scope_name(&scope.name);
        }
        let granted = granted_actions(&state, &who.principal, &scope).await;
        access.push(AccessEntry {
            kind: scope.kind,
            name: scope.name,
            actions: granted,
        });
    }
    match state.iam.issue_registry_token(&who, access) {
        Ok(t) => {
            let body = serde_json::json!({
                "token": t.token.expose(),
                "access_token": t.token.expose(),
                "expires_in": t.expires_in,
                "issued_at": t.issued_at,
            });
            let mut response = axum::Json(body).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot issue a registry token");
            OciError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                "the registry token could not be issued; retry later",
            )
            .into_response()
        }
    }
}

/// The requested actions of `scope` the principal may perform.
async fn granted_actions(
    state: &AppState,
    principal: &entrepot_services::Principal,
    scope: &Scope,
) -> Vec<String> {
    match scope.kind.as_str() {
        "repository" => match scope.name.parse::<ImagePath>() {
            Ok(path) => {
                state
                    .registry
                    .granted_actions(principal, &path, &scope.actions)
                    .await
            }
            Err(_) => Vec::new(),
        },
        "registry" if scope.name == "catalog" => {
            state
                .registry
                .granted_catalog_actions(principal, &scope.actions)
                .await
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse() {
        assert_eq!(
            parse_scope("repository:default/images/app:pull,push"),
            Some(Scope {
                kind: "repository".into(),
                name: "default/images/app".into(),
                actions: vec!["pull".into(), "push".into()],
            })
        );
        assert_eq!(
            parse_scope("registry:catalog:*").unwrap().actions,
            vec!["*"]
        );
        assert_eq!(parse_scope("nonsense"), None);
        assert_eq!(parse_scope(":x:pull"), None);
    }
}
