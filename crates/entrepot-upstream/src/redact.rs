//! Upstream-sent values as error messages may show them.
//!
//! A client that pulls through a remote repository reads entrepot's error
//! messages; the upstream (or any hop it redirects to) chooses header values,
//! and a hostile one echoes what it received, credentials included. So a
//! message never quotes a header value as sent: URLs lose their user info,
//! query and fragment, and every shown value is capped in length.

use url::Url;

/// Characters of an upstream-chosen value an error message shows at most.
pub const MAX_SHOWN: usize = 200;

/// `text` cut to [`MAX_SHOWN`] characters (an ellipsis marks the cut), with
/// control characters dropped.
pub fn capped(text: &str) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SHOWN)
        .collect();
    if text.chars().filter(|c| !c.is_control()).count() > MAX_SHOWN {
        out.push('…');
    }
    out
}

/// A URL as an error message may show it: scheme, host, port and path; user
/// info, query and fragment removed (`?…` marks a removed query); capped.
pub fn url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    let mut text = shown.to_string();
    if had_query {
        text.push_str("?…");
    }
    capped(&text)
}

/// Decode `%XX` escapes (invalid ones are kept as written).
pub(crate) fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The secrets an `Authorization` header value carries: the credential after
/// the scheme and, for Basic, the decoded `user:password` and the password.
pub(crate) fn secrets_of(authorization: &str) -> Vec<String> {
    use base64::Engine as _;
    let mut secrets = Vec::new();
    let (scheme, credential) = authorization.split_once(' ').unwrap_or(("", authorization));
    let credential = credential.trim();
    secrets.push(credential.to_owned());
    if scheme.eq_ignore_ascii_case("basic") {
        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credential) {
            let pair = String::from_utf8_lossy(&decoded).into_owned();
            if let Some((_, password)) = pair.split_once(':') {
                secrets.push(password.to_owned());
            }
            secrets.push(pair);
        }
    }
    // Too short to be told from ordinary text; nothing worth hiding either.
    secrets.retain(|s| s.len() >= 4);
    secrets
}

/// Whether `text` (as sent, or percent-decoded; case ignored, since host
/// names are lower-cased) contains one of `secrets`.
pub(crate) fn mentions_any(text: &str, secrets: &[String]) -> bool {
    if secrets.is_empty() {
        return false;
    }
    let raw = text.to_lowercase();
    let decoded = percent_decoded(text).to_lowercase();
    secrets.iter().any(|s| {
        let s = s.to_lowercase();
        raw.contains(&s) || decoded.contains(&s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_user_info_query_and_fragment() {
        let u = Url::parse("https://alice:s3cret@cdn.example/blob?sig=abc&token=xyz#f").unwrap();
        let shown = url(&u);
        assert_eq!(shown, "https://cdn.example/blob?…");
        let long = Url::parse(&format!("https://h/{}", "a".repeat(500))).unwrap();
        assert!(url(&long).chars().count() <= MAX_SHOWN + 1);
    }

    #[test]
    fn echoed_credentials_are_recognised() {
        // "alice:s3cr3t-token"
        let auth = "Basic YWxpY2U6czNjcjN0LXRva2Vu";
        let secrets = secrets_of(auth);
        assert!(mentions_any(
            "http://evil/x?a=Basic%20YWxpY2U6czNjcjN0LXRva2Vu",
            &secrets
        ));
        assert!(mentions_any("http://evil/s3cr3t-token", &secrets));
        assert!(mentions_any("http://evil/S3CR3T%2DTOKEN", &secrets));
        assert!(!mentions_any("http://cdn/blob/sha256:abc", &secrets));
        assert!(mentions_any(
            "http://x/?t=abc.def.ghi",
            &secrets_of("Bearer abc.def.ghi")
        ));
        assert_eq!(percent_decoded("a%2Fb%zz%4"), "a/b%zz%4");
    }
}
