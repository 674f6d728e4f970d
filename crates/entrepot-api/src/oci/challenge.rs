//! `WWW-Authenticate: Bearer ...` challenges that send Docker clients to the
//! token endpoint.

use axum::http::{header, HeaderMap};

use super::OciError;

/// Where clients fetch registry tokens: `scheme://host/v2/token`, from the
/// request's `Host` (`X-Forwarded-Host` and `X-Forwarded-Proto` behind a
/// trusted proxy: the edge removes them from anyone else). A host that is not a
/// plain `name[:port]` or `[v6]:port` (quotes, spaces, commas, slashes...) is
/// not echoed: the challenge names `127.0.0.1` instead.
pub fn realm(headers: &HeaderMap) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or("").trim())
            .filter(|v| !v.is_empty())
    };
    let host = header("x-forwarded-host")
        .or_else(|| header(header::HOST.as_str()))
        .filter(|h| is_plain_host(h))
        .unwrap_or("127.0.0.1");
    let scheme = header("x-forwarded-proto")
        .filter(|s| *s == "https" || *s == "http")
        .unwrap_or("http");
    format!("{scheme}://{host}/v2/token")
}

/// Whether `host` is safe to quote in a header: letters, digits, `.-_:` and
/// the brackets of an IPv6 literal, at most 255 bytes.
fn is_plain_host(host: &str) -> bool {
    host.len() <= 255
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".-_:[]".contains(&c))
}

/// The `Bearer` challenge for a realm and an optional scope.
pub fn bearer(realm: &str, scope: Option<&str>) -> String {
    match scope {
        Some(scope) => format!(r#"Bearer realm="{realm}",service="entrepot",scope="{scope}""#),
        None => format!(r#"Bearer realm="{realm}",service="entrepot""#),
    }
}

/// Add the challenge to an `UNAUTHORIZED` error; other errors pass unchanged.
pub fn challenge_unauthorized(
    error: OciError,
    headers: &HeaderMap,
    scope: Option<&str>,
) -> OciError {
    if error.code() == "UNAUTHORIZED" {
        error.with_challenge(bearer(&realm(headers), scope))
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Endpoint;
    use axum::http::{HeaderValue, Method};

    #[test]
    fn challenges_name_the_realm_and_scope() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:5000"));
        let endpoint = Endpoint::parse(&Method::POST, "default/images/app/blobs/uploads/").unwrap();
        let scope = endpoint.scope();
        assert_eq!(
            bearer(&realm(&h), scope.as_deref()),
            r#"Bearer realm="http://127.0.0.1:5000/v2/token",service="entrepot",scope="repository:default/images/app:pull,push""#
        );
    }

    #[test]
    fn hostile_hosts_are_not_echoed() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("evil\",error=\"x"));
        assert_eq!(realm(&h), "http://127.0.0.1/v2/token");
        h.insert(header::HOST, HeaderValue::from_static("[::1]:8080"));
        assert_eq!(realm(&h), "http://[::1]:8080/v2/token");
    }
}
