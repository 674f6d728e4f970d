//! The session cookie: who is signed in, read from the `Cookie` header and
//! looked up in the session store; pages without a session send the
//! browser to the sign-in page.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use entrepot_services::Principal;

use crate::error::ConsoleError;
use crate::ConsoleState;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "entrepot_console";

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether the browser reached the server over HTTPS (directly, or through
/// a trusted proxy): then cookies are `Secure`.
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value for the console's cookies: host-only, `/ui/`,
/// `HttpOnly`, `SameSite=Strict`, `Secure` over TLS. `max_age` 0 deletes.
pub fn set_cookie(name: &str, value: &str, max_age: i64, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!("{name}={value}; Path=/ui/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// A signed-in caller of a console page.
pub struct Signed {
    /// Who the session acts as.
    pub principal: Principal,
    /// The CSRF token every form of the session posts back.
    pub csrf_token: String,
    /// The cookie's value, to end the session on sign-out.
    pub cookie: String,
}

impl Signed {
    /// How the principal is shown in the header.
    pub fn display_name(&self) -> String {
        match &self.principal {
            Principal::User(u) => u.clone(),
            Principal::ServiceAccount(s) => s.clone(),
            Principal::ReadOnly(p) => format!("{p} (read-only)"),
            p => p.to_string(),
        }
    }
}

impl FromRequestParts<ConsoleState> for Signed {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(ConsoleError::SignIn);
        };
        // A cookie value is 43 base64url characters; anything else is no session.
        if value.len() > 64 {
            return Err(ConsoleError::SignIn);
        }
        let session = state
            .sessions
            .session(value)
            .await
            .map_err(|e| ConsoleError::Internal(e.to_string()))?
            .ok_or(ConsoleError::SignIn)?;
        Ok(Signed {
            principal: session.principal,
            csrf_token: session.csrf_token,
            cookie: value.to_owned(),
        })
    }
}
