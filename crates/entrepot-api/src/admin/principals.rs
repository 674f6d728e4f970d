//! Users, service accounts and personal access tokens:
//! `/v1/users`, `/v1/projects/{p}/serviceAccounts`, `/v1/tokens`.
//!
//! A token is shown once, in the answer that creates it; listings never carry
//! it.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use entrepot_domain::iam::Member;
use entrepot_domain::token_id::TokenId;
use entrepot_domain::ProjectId;
use entrepot_services::iam::{IamError, NewToken};
use entrepot_services::{ServiceAccountRecord, TokenRecord, UserRecord};
use serde::Deserialize;
use serde_json::{json, Value};

use super::iam::caller;
use super::paging::Listing;
use super::{parse_id, ApiError};
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/users", get(list_users).post(create_user))
        .route("/v1/users/{email}", get(get_user).delete(delete_user))
        .route(
            "/v1/projects/{project}/serviceAccounts",
            get(list_accounts).post(create_account),
        )
        .route(
            "/v1/projects/{project}/serviceAccounts/{email}",
            get(get_account).delete(delete_account),
        )
        .route("/v1/tokens", get(list_tokens).post(create_token))
        .route("/v1/tokens/{id}", get(get_token).delete(revoke_token))
}

const USERS: Listing = Listing { field: "users" };
const ACCOUNTS: Listing = Listing { field: "accounts" };
const TOKENS: Listing = Listing { field: "tokens" };

type JsonBody<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

fn body<T>(b: JsonBody<T>, what: &str) -> Result<T, ApiError> {
    b.map(|Json(t)| t)
        .map_err(|e| ApiError::invalid(format!("request body is not a valid {what}: {e}")))
}

fn user_json(u: &UserRecord) -> Value {
    json!({
        "name": format!("users/{}", u.email),
        "email": u.email,
        "member": format!("user:{}", u.email),
        "hasPassword": u.password_hash.is_some(),
        "createTime": u.create_time,
    })
}

fn account_json(a: &ServiceAccountRecord) -> Value {
    json!({
        "name": format!("projects/{}/serviceAccounts/{}", a.project, a.email),
        "email": a.email,
        "projectId": a.project,
        "accountId": a.account_id,
        "displayName": a.display_name,
        "member": format!("serviceAccount:{}", a.email),
        "createTime": a.create_time,
    })
}

fn rfc3339(unix: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// A token's metadata; never the token.
fn token_json(t: &TokenRecord) -> Value {
    json!({
        "name": format!("tokens/{}", t.id),
        "id": t.id,
        "principal": t.principal,
        "description": t.description,
        "readOnly": t.read_only,
        "revoked": t.revoked,
        "expireTime": t.expire_time.and_then(rfc3339),
        "createTime": t.create_time,
        "lastUsedTime": t.last_used_time,
    })
}

// ---- users ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateUser {
    email: String,
    #[serde(default)]
    password: Option<String>,
}

async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: JsonBody<CreateUser>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let principal = caller(&state, &headers).await?;
    let b = body(b, "user")?;
    let user = state
        .iam
        .create_user(&principal, &b.email, b.password.as_deref())
        .await?;
    Ok((StatusCode::OK, Json(user_json(&user))))
}

/// `GET /v1/users`: one page of the users, by e-mail (see [`super::paging`]).
async fn list_users(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let page = USERS.request(&query)?;
    let principal = caller(&state, &headers).await?;
    let users = state.iam.list_users(&principal, &page).await?;
    Ok(Json(USERS.body(users, |u| user_json(&u))))
}

async fn get_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let principal = caller(&state, &headers).await?;
    let user = state.iam.get_user(&principal, &email).await?;
    Ok(Json(user_json(&user)))
}

async fn delete_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let principal = caller(&state, &headers).await?;
    state.iam.delete_user(&principal, &email).await?;
    Ok(Json(json!({})))
}

// ---- service accounts ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateAccount {
    account_id: String,
    #[serde(default)]
    display_name: Option<String>,
}

async fn create_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    b: JsonBody<CreateAccount>,
) -> Result<Json<Value>, ApiError> {
    let project: ProjectId = parse_id(&project)?;
    let principal = caller(&state, &headers).await?;
    let b = body(b, "service account")?;
    let account = state
        .iam
        .create_service_account(
            &principal,
            &project,
            &b.account_id,
            b.display_name.as_deref().unwrap_or(""),
        )
        .await?;
    Ok(Json(account_json(&account)))
}

/// `GET /v1/projects/{p}/serviceAccounts`: one page of a project's service
/// accounts, by e-mail (see [`super::paging`]).
async fn list_accounts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let project: ProjectId = parse_id(&project)?;
    let page = ACCOUNTS.request(&query)?;
    let principal = caller(&state, &headers).await?;
    let accounts = state
        .iam
        .list_service_accounts(&principal, &project, &page)
        .await?;
    Ok(Json(ACCOUNTS.body(accounts, |a| account_json(&a))))
}

async fn get_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, email)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let project: ProjectId = parse_id(&project)?;
    let principal = caller(&state, &headers).await?;
    let account = state
        .iam
        .get_service_account(&principal, &project, &email)
        .await?;
    Ok(Json(account_json(&account)))
}

async fn delete_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, email)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let project: ProjectId = parse_id(&project)?;
    let principal = caller(&state, &headers).await?;
    // Accept the bare account id as well as the e-mail.
    let email = if email.contains('@') {
        email
    } else {
        entrepot_domain::iam::service_account_email(project.as_str(), &email)
    };
    state
        .iam
        .delete_service_account(&principal, &project, &email)
        .await?;
    Ok(Json(json!({})))
}

// ---- tokens ----

/// Parse a lifetime: whole seconds, or a number with `s`, `m`, `h`, `d` or `w`.
pub fn parse_lifetime(s: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::invalid(format!(
            "lifetime {s:?} is invalid: use a number of seconds or e.g. 3600s, 90m, 12h, 30d, 2w"
        ))
    };
    let s = s.trim();
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).filter(|v| *v > 0).ok_or_else(bad)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Lifetime {
    Seconds(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateToken {
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    expires_in: Option<Lifetime>,
    #[serde(default)]
    read_only: bool,
}

async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: JsonBody<CreateToken>,
) -> Result<Json<Value>, ApiError> {
    let principal = caller(&state, &headers).await?;
    let b = body(b, "token request")?;
    let owner = b
        .principal
        .as_deref()
        .map(str::parse::<Member>)
        .transpose()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let expires_in = match b.expires_in {
        None => None,
        Some(Lifetime::Seconds(s)) if s > 0 => Some(s),
        Some(Lifetime::Seconds(_)) => return Err(ApiError::invalid("expiresIn must be positive")),
        Some(Lifetime::Text(t)) => Some(parse_lifetime(&t)?),
    };
    let created = state
        .iam
        .create_token(
            &principal,
            NewToken {
                principal: owner,
                description: b.description.unwrap_or_default(),
                expires_in,
                read_only: b.read_only,
            },
        )
        .await?;
    let mut value = token_json(&created.record);
    value["token"] = Value::String(created.token.expose().to_owned());
    Ok(Json(value))
}

/// `GET /v1/tokens[?principal=MEMBER]`: one page of the tokens of the caller
/// (or of MEMBER), newest first (see [`super::paging`]).
async fn list_tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let page = TOKENS.request(&query)?;
    let principal = caller(&state, &headers).await?;
    let of = query
        .get("principal")
        .map(|p| p.parse::<Member>())
        .transpose()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let tokens = state.iam.list_tokens(&principal, of, &page).await?;
    Ok(Json(TOKENS.body(tokens, |t| token_json(&t))))
}

async fn get_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let principal = caller(&state, &headers).await?;
    let token = state.iam.get_token(&principal, &token_id(&id)?).await?;
    Ok(Json(token_json(&token)))
}

async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let principal = caller(&state, &headers).await?;
    let token = state.iam.revoke_token(&principal, &token_id(&id)?).await?;
    Ok(Json(token_json(&token)))
}

/// The token id in a path; one that cannot be an id names no token.
fn token_id(id: &str) -> Result<TokenId, ApiError> {
    id.parse()
        .map_err(|_| IamError::NotFound(format!("token {id}")).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse() {
        assert_eq!(parse_lifetime("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_lifetime("90m").unwrap(), 5400);
        assert_eq!(parse_lifetime("3600").unwrap(), 3600);
        assert!(parse_lifetime("0d").is_err());
        assert!(parse_lifetime("soon").is_err());
        assert!(parse_lifetime("5y").is_err());
    }
}
