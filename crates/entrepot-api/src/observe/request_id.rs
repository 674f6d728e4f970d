//! `X-Request-Id`: the client's, when it is a plain token, else a new one.

use axum::http::{HeaderMap, HeaderName};

/// The header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id accepted from a client.
const MAX_LEN: usize = 128;

/// The request's id: the client's `X-Request-Id` when it is 1 to 128
/// characters of letters, digits and `-_.:+=/@`, else a new UUID. A
/// client's id with anything else (spaces, quotes, control characters) is
/// replaced rather than echoed into logs and headers.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

fn well_formed(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.:+=/@".contains(&c))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_plain_client_id_is_kept_and_others_replaced() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("build-42.step:3"));
        assert_eq!(request_id(&h), "build-42.step:3");
        for bad in ["", "a b", "x\"y", &"a".repeat(129)] {
            h.insert(REQUEST_ID, HeaderValue::from_str(bad).unwrap());
            let id = request_id(&h);
            assert_ne!(id, bad);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        }
        assert!(uuid::Uuid::parse_str(&request_id(&HeaderMap::new())).is_ok());
    }
}
