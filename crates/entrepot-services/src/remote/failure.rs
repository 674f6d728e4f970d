//! Why the remote cache could not answer from its upstream: one set of failure
//! kinds for every format. Each kind carries what the user needs to fix it (the
//! host, the secret version) and, where there is one, its cause as a
//! [`std::error::Error::source`]. Statuses and error bodies are chosen by the
//! protocol front-ends, from the kind alone.

use std::sync::Arc;

use entrepot_domain::upstream::UpstreamSpecError;
use entrepot_domain::ContentDigest;
use entrepot_upstream::http::header::{HeaderMap, RETRY_AFTER};
use entrepot_upstream::http::StatusCode;
use entrepot_upstream::UpstreamResponse;
pub use entrepot_upstream::{CredentialError, HopDenied, UpstreamError};

/// A failure of a remote repository to get content from its upstream. Cloned
/// to every request waiting on the same download.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamFailure {
    /// The repository has no upstream configured.
    #[error("{repository} has no upstream configured")]
    NotConfigured {
        /// The repository's resource name.
        repository: String,
    },
    /// The repository's upstream setting is not a usable preset or URL.
    #[error("the upstream of {repository} is misconfigured: {cause}")]
    Misconfigured {
        /// The repository's resource name.
        repository: String,
        /// What is wrong with it.
        #[source]
        cause: UpstreamSpecError,
    },
    /// The registry access policy does not allow the upstream host, so it was
    /// not contacted.
    #[error("{message}{}", if *.not_cached { "; only content cached before the block is served, and this is not cached" } else { "" })]
    Blocked {
        /// The host the policy refused.
        host: String,
        /// Which host, why, and how an admin allows it.
        message: String,
        /// The repository serves what it cached before the block, but this
        /// was not cached.
        not_cached: bool,
    },
    /// The upstream credentials could not be read from the secret manager
    /// (the service agent may lack access, the version may be disabled).
    #[error("the upstream credentials in {secret_version} could not be read: {cause}")]
    CredentialsUnreadable {
        /// The secret version the repository points at.
        secret_version: String,
        /// Why, naming who lacks what.
        #[source]
        cause: CredentialError,
    },
    /// The upstream refused the configured credentials, or anonymous access.
    #[error("the upstream requires valid credentials: {detail}")]
    Refused {
        /// The upstream host.
        host: String,
        /// What it said and what to configure.
        detail: String,
    },
    /// The upstream rate-limits entrepot.
    #[error("the upstream {host} rate-limits entrepot (HTTP 429){}; retry later, or configure upstream credentials for a higher limit", .retry_after.as_ref().map(|r| format!(" and asks to retry after {r}")).unwrap_or_default())]
    RateLimited {
        /// The upstream host.
        host: String,
        /// The upstream's `Retry-After` (delay seconds or an HTTP date), when
        /// it sent a well-formed one.
        retry_after: Option<String>,
    },
    /// The upstream does not have the content.
    #[error("{what} is not in the upstream {host}")]
    NotFound {
        /// The upstream host.
        host: String,
        /// What was asked for.
        what: String,
    },
    /// No connection, a timeout, or a transfer that broke before an answer.
    #[error("{cause}")]
    Unreachable {
        /// The upstream host.
        host: String,
        /// What the upstream client saw.
        #[source]
        cause: Arc<UpstreamError>,
    },
    /// The upstream answered with a server error.
    #[error("the upstream {host} answered HTTP {status} for {what}")]
    ServerError {
        /// The upstream host.
        host: String,
        /// The upstream's status.
        status: u16,
        /// What was asked for.
        what: String,
    },
    /// The upstream's answer cannot be used: an unexpected status, a broken
    /// or oversized body, a document that fails validation.
    #[error("{detail}")]
    InvalidResponse {
        /// The upstream host.
        host: String,
        /// What is wrong, without quoting what the upstream sent.
        detail: String,
    },
    /// The upstream sent bytes that do not hash to the digest the content is
    /// named by; nothing was cached.
    #[error(
        "the upstream sent content for {expected} that hashes to {actual}; nothing was cached"
    )]
    DigestMismatch {
        /// The digest the format named the content by.
        expected: ContentDigest,
        /// The digest of the bytes received.
        actual: ContentDigest,
    },
    /// Local storage failed.
    #[error("cache storage failed: {cause}")]
    Storage {
        /// What failed.
        #[source]
        cause: Arc<dyn std::error::Error + Send + Sync>,
    },
}

impl UpstreamFailure {
    /// A storage failure.
    pub fn storage(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Storage {
            cause: Arc::new(cause),
        }
    }

    /// A failure the upstream client reported for a request to `host`, from
    /// a repository whose credentials are in `secret_version`.
    pub fn from_client(e: UpstreamError, host: &str, secret_version: Option<&str>) -> Self {
        match e {
            UpstreamError::Blocked(d) => Self::blocked(d, false),
            UpstreamError::Credentials(cause) => Self::CredentialsUnreadable {
                secret_version: secret_version.unwrap_or("the secret").to_owned(),
                cause,
            },
            UpstreamError::Unauthorized(detail) => Self::Refused {
                host: host.to_owned(),
                detail,
            },
            UpstreamError::Unreachable { host, reason } => Self::Unreachable {
                host: host.clone(),
                cause: Arc::new(UpstreamError::Unreachable { host, reason }),
            },
            e @ (UpstreamError::Redirect(_) | UpstreamError::Protocol(_)) => {
                Self::InvalidResponse {
                    host: host.to_owned(),
                    detail: format!("the upstream {host} failed: {e}"),
                }
            }
        }
    }

    /// The access policy refused `denied`; `not_cached`: the repository
    /// would serve cached content, but this is not cached.
    pub fn blocked(denied: HopDenied, not_cached: bool) -> Self {
        Self::Blocked {
            host: denied.host,
            message: denied.message,
            not_cached,
        }
    }

    /// An upstream answer that is not the content asked for (`what`).
    pub fn from_status(response: &UpstreamResponse, what: &str) -> Self {
        let host = host_of(response.url());
        let status = response.status();
        match status {
            StatusCode::NOT_FOUND | StatusCode::GONE => Self::NotFound {
                host,
                what: what.to_owned(),
            },
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited {
                host,
                retry_after: retry_after(response.headers()),
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Self::Refused {
                detail: format!(
                    "{host} answered HTTP {} for {what}; check the repository's upstream credentials (--remote-username, --remote-password-secret-version)",
                    status.as_u16()
                ),
                host,
            },
            s if s.is_server_error() => Self::ServerError {
                host,
                status: s.as_u16(),
                what: what.to_owned(),
            },
            s => Self::InvalidResponse {
                detail: format!("the upstream {host} answered HTTP {} for {what}", s.as_u16()),
                host,
            },
        }
    }

    /// Whether a cached copy of a mutable document may be served instead:
    /// when the upstream is down, overloaded, answering nonsense or refusing
    /// the credentials (an upstream auth outage must not break pulls; the
    /// stale answer's `Warning` and the log line say what failed). Not when
    /// the fix is the repository's configuration (blocked, misconfigured), nor
    /// for a 404, whose grace period [`crate::remote::freshness::serve_stale`]
    /// decides.
    pub fn allows_stale(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::ServerError { .. }
                | Self::RateLimited { .. }
                | Self::Refused { .. }
                | Self::CredentialsUnreadable { .. }
                | Self::InvalidResponse { .. }
                | Self::DigestMismatch { .. }
        )
    }
}

/// `host[:port]` of a URL, as messages and the access policy name it.
pub fn host_of(url: &url::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => "upstream".to_owned(),
    }
}

/// A `Retry-After` worth passing on: delay seconds or an HTTP date, nothing
/// else an upstream might put there.
pub fn retry_after(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let seconds =
        !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit());
    let date = value.len() <= 40
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b',' | b':'));
    (seconds || date).then(|| value.to_owned())
}

/// The message of an error followed by those of its sources, each once, for
/// the log line written where a request's failure is answered.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use entrepot_upstream::http::header::HeaderValue;

    fn headers(retry: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(retry).unwrap());
        h
    }

    #[test]
    fn retry_after_passes_seconds_and_dates_only() {
        assert_eq!(retry_after(&headers("120")).as_deref(), Some("120"));
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2026 07:28:00 GMT")).as_deref(),
            Some("Wed, 21 Oct 2026 07:28:00 GMT")
        );
        assert_eq!(retry_after(&headers("1; rm -rf")), None);
        assert_eq!(retry_after(&headers("<script>")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn client_failures_keep_their_kind_and_cause() {
        let refused = UpstreamFailure::from_client(
            UpstreamError::Unauthorized(
                "x.io refused the configured credentials (HTTP 401)".into(),
            ),
            "x.io",
            Some("projects/p/secrets/s/versions/latest"),
        );
        assert!(matches!(&refused, UpstreamFailure::Refused { host, .. } if host == "x.io"));
        // An upstream auth outage must not break cached tags: stale is allowed.
        assert!(refused.allows_stale());

        let unreadable = UpstreamFailure::from_client(
            UpstreamError::Credentials(CredentialError("the agent may not access s".into())),
            "x.io",
            Some("projects/p/secrets/s/versions/latest"),
        );
        let text = unreadable.to_string();
        assert!(
            text.contains("projects/p/secrets/s/versions/latest"),
            "{text}"
        );
        assert!(text.contains("the agent may not access s"), "{text}");
        assert!(std::error::Error::source(&unreadable).is_some());

        let down = UpstreamFailure::from_client(
            UpstreamError::Unreachable {
                host: "x.io".into(),
                reason: "timed out".into(),
            },
            "x.io",
            None,
        );
        assert!(down.allows_stale());
        // The log line names the cause once.
        let chain = error_chain(&down);
        assert_eq!(chain.matches("timed out").count(), 1, "{chain}");

        let blocked = UpstreamFailure::blocked(
            HopDenied {
                host: "x.io".into(),
                message: "the upstream host x.io is blocked".into(),
            },
            true,
        );
        assert!(blocked.to_string().contains("not cached"));
        assert!(!blocked.allows_stale());
    }

    #[test]
    fn an_answered_not_found_is_not_served_stale() {
        let gone = UpstreamFailure::NotFound {
            host: "x.io".into(),
            what: "tag 1".into(),
        };
        assert!(!gone.allows_stale());
        assert!(!UpstreamFailure::storage(std::io::Error::other("disk")).allows_stale());
        assert!(UpstreamFailure::RateLimited {
            host: "x.io".into(),
            retry_after: None
        }
        .allows_stale());
    }
}
