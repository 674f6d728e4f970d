//! Conditional requests (RFC 9110 `If-None-Match`) for pages and files, so
//! that pip's and uv's HTTP caches revalidate with a 304 instead of
//! downloading a page again.

use axum::http::{header, HeaderMap};

/// Whether the request's `If-None-Match` names `etag` (a quoted entity tag)
/// or is `*`. Weak comparison, as RFC 9110 asks for `If-None-Match`: a
/// `W/` prefix on either side is ignored. Several header lines count.
pub fn matches(headers: &HeaderMap, etag: &str) -> bool {
    let ours = etag.trim_start_matches("W/");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn matches_listed_weak_and_star_tags_only() {
        assert!(matches(&with(&["\"a\""]), "\"a\""));
        assert!(matches(&with(&["\"x\", W/\"a\""]), "\"a\""));
        assert!(matches(&with(&["\"x\"", "\"a\""]), "\"a\""));
        assert!(matches(&with(&["*"]), "\"a\""));
        assert!(!matches(&with(&["\"b\""]), "\"a\""));
        assert!(!matches(&with(&["a"]), "\"a\""));
        assert!(!matches(&HeaderMap::new(), "\"a\""));
    }
}
