//! Pages of `/v1` listings, as Google's APIs shape them: query parameters
//! `pageSize` and `pageToken`, response field `nextPageToken`, left out on
//! the last page.
//!
//! - `pageSize`: absent or 0 means [`DEFAULT_PAGE_SIZE`] (100); above
//!   [`MAX_PAGE_SIZE`] (1000) it is served as 1000; negative or not a whole
//!   number is a 400 INVALID_ARGUMENT.
//! - `pageToken`: the `nextPageToken` of the previous page, unchanged. It is
//!   opaque to clients: URL-safe base64 (no padding) of a JSON array holding
//!   the listing's name and the key of the last item served, e.g.
//!   `["repositories","images"]`. A token that does not decode, or belongs
//!   to another listing, is a 400 INVALID_ARGUMENT.
//!
//! The next page starts strictly after that key, so an item that exists for
//! the whole walk is listed exactly once, whatever is added or removed
//! meanwhile.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use entrepot_services::{Page, PageRequest, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::ApiError;

/// Longest accepted `pageToken`: every token entrepot issues is far shorter,
/// and a longer one is refused before it is decoded.
const MAX_TOKEN_LEN: usize = 2048;

/// A listing that can be paged, named by its response field; the name goes
/// into its page tokens, so that a token is only accepted by its own listing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listing {
    /// The response field that holds the items (`repositories`).
    pub field: &'static str,
}

impl Listing {
    /// The page the query asks for (`pageSize`, `pageToken`).
    pub fn request<K: DeserializeOwned>(
        self,
        query: &HashMap<String, String>,
    ) -> Result<PageRequest<K>, ApiError> {
        let size = page_size(query.get("pageSize").map(String::as_str))?;
        let after = match query.get("pageToken").map(String::as_str) {
            None | Some("") => None,
            Some(token) => Some(self.decode(token)?),
        };
        Ok(PageRequest { after, size })
    }

    /// The response body: `{FIELD: items, "nextPageToken": ...}`, the token
    /// left out on the last page.
    pub fn body<T, K: Serialize>(self, page: Page<T, K>, item: impl FnMut(T) -> Value) -> Value {
        let items: Vec<Value> = page.items.into_iter().map(item).collect();
        let mut body = json!({ self.field: items });
        if let Some(next) = page.next.and_then(|key| self.encode(&key)) {
            body["nextPageToken"] = Value::String(next);
        }
        body
    }

    fn encode<K: Serialize>(self, key: &K) -> Option<String> {
        let bytes = serde_json::to_vec(&(self.field, key)).ok()?;
        Some(URL_SAFE_NO_PAD.encode(bytes))
    }

    fn decode<K: DeserializeOwned>(self, token: &str) -> Result<K, ApiError> {
        let invalid = || {
            ApiError::invalid(format!(
                "pageToken is invalid: pass the nextPageToken of the previous page of this \
                 listing ({}) unchanged, or no pageToken for the first page",
                self.field
            ))
        };
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|_| invalid())?;
        let (field, key): (String, K) = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if field != self.field {
            return Err(invalid());
        }
        Ok(key)
    }
}

/// Parse `pageSize`: absent or 0 is the default, above the maximum the
/// maximum.
fn page_size(value: Option<&str>) -> Result<u32, ApiError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_PAGE_SIZE);
    };
    let digits = value.strip_prefix('+').unwrap_or(value);
    if let Some(negative) = digits.strip_prefix('-') {
        if !negative.is_empty() && negative.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(format!(
                "pageSize must not be negative (got {value}): give 1 to {MAX_PAGE_SIZE}, or 0 or nothing for {DEFAULT_PAGE_SIZE}"
            )));
        }
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(format!(
            "pageSize must be a whole number (got {value:?}): give 1 to {MAX_PAGE_SIZE}, or 0 or nothing for {DEFAULT_PAGE_SIZE}"
        )));
    }
    // All digits: only too many of them fail to parse, and that is above the
    // maximum anyway.
    let size = digits.parse::<u64>().unwrap_or(u64::MAX);
    Ok(match size {
        0 => DEFAULT_PAGE_SIZE,
        n => u32::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const REPOSITORIES: Listing = Listing {
        field: "repositories",
    };

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn page_sizes_default_clamp_and_refuse() {
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some("0")).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some("")).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some("7")).unwrap(), 7);
        assert_eq!(page_size(Some("1000")).unwrap(), 1000);
        assert_eq!(page_size(Some("1001")).unwrap(), MAX_PAGE_SIZE);
        assert_eq!(
            page_size(Some("99999999999999999999999")).unwrap(),
            MAX_PAGE_SIZE
        );
        for bad in ["-1", "abc", "1.5", "1e3", "-", "0x10", " 5 6"] {
            let e = page_size(Some(bad)).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
        }
    }

    #[test]
    fn tokens_round_trip_and_belong_to_their_listing() {
        let page = Page {
            items: vec![1],
            next: Some("images".to_owned()),
        };
        let body = REPOSITORIES.body(page, |n| json!(n));
        let token = body["nextPageToken"].as_str().unwrap().to_owned();
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let request: PageRequest<String> = REPOSITORIES
            .request(&query(&[("pageToken", &token), ("pageSize", "5")]))
            .unwrap();
        assert_eq!(request.after.as_deref(), Some("images"));
        assert_eq!(request.size, 5);

        let secrets = Listing { field: "secrets" };
        assert!(secrets
            .request::<String>(&query(&[("pageToken", &token)]))
            .is_err());
        // A token for a number-keyed listing does not decode as a string key.
        let versions = Listing { field: "versions" };
        let numeric = versions.encode(&7_i64).unwrap();
        assert_eq!(
            versions
                .request::<i64>(&query(&[("pageToken", &numeric)]))
                .unwrap()
                .after,
            Some(7)
        );
        assert!(versions
            .request::<String>(&query(&[("pageToken", &numeric)]))
            .is_err());
        for bad in ["not base64!", "AAAA", &"A".repeat(MAX_TOKEN_LEN + 1)] {
            assert!(REPOSITORIES
                .request::<String>(&query(&[("pageToken", bad)]))
                .is_err());
        }
    }

    #[test]
    fn the_last_page_has_no_token() {
        let page: Page<i32, String> = Page {
            items: vec![1, 2],
            next: None,
        };
        let body = REPOSITORIES.body(page, |n| json!(n));
        assert_eq!(body, json!({ "repositories": [1, 2] }));
    }
}
