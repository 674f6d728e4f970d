//! Reading credentials from the `Authorization` header.

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use entrepot_services::Credentials;

/// Why an Authorization header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// Not `Basic base64(user:password)` or `Bearer token`.
    #[error(
        "the Authorization header is malformed; send Basic base64(user:token) or Bearer TOKEN"
    )]
    Malformed,
}

/// Credentials presented on a request, if any.
pub fn from_headers(headers: &HeaderMap) -> Result<Option<Credentials>, CredentialsError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| CredentialsError::Malformed)?;
    let (scheme, rest) = value.split_once(' ').ok_or(CredentialsError::Malformed)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| CredentialsError::Malformed)?;
        let decoded = String::from_utf8(decoded).map_err(|_| CredentialsError::Malformed)?;
        let (username, password) = decoded.split_once(':').ok_or(CredentialsError::Malformed)?;
        Ok(Some(Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        }))
    } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        Ok(Some(Credentials::Bearer(rest.to_owned())))
    } else {
        Err(CredentialsError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_basic_and_bearer() {
        let mut h = HeaderMap::new();
        assert!(from_headers(&h).unwrap().is_none());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YWxpY2U6czNjcmV0"),
        );
        assert!(
            matches!(from_headers(&h), Ok(Some(Credentials::Basic { username, .. })) if username == "alice")
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert!(matches!(from_headers(&h), Ok(Some(Credentials::Bearer(t))) if t == "abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(from_headers(&h).unwrap_err(), CredentialsError::Malformed);
    }
}
