//! How every front-end answers a remote repository's upstream failure: one
//! table from failure kind to HTTP status (and OCI error code), so OCI, the
//! Python API and the admin API agree.
//!
//! The choices, where formats used to differ:
//! - Credentials the upstream refused, or that could not be read from the
//!   secret manager, are `502 Bad Gateway`: the client's own credentials are
//!   fine (a 403 would send it checking its login), entrepot's request to the
//!   upstream failed. The message names the upstream or the secret version
//!   and how to fix it; it is also the status line's reason phrase, which is
//!   what skopeo, podman and docker show for a 5xx, and what pip shows.
//! - An upstream's `429` is passed on as `429` with its `Retry-After`, which
//!   pip (through urllib3) and containers/image honour before retrying.
//! - A blocked upstream is `403`: the organisation's policy refuses it.

use axum::http::StatusCode;
use entrepot_services::remote::failure::error_chain;
use entrepot_services::remote::UpstreamFailure;

/// How one failure is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The OCI error code (`errors[].code`).
    pub oci_code: &'static str,
}

/// The table.
pub(crate) fn answer(failure: &UpstreamFailure) -> Answer {
    use UpstreamFailure as F;
    let (status, oci_code) = match failure {
        F::NotConfigured { .. } => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
        F::Blocked { .. } => (StatusCode::FORBIDDEN, "DENIED"),
        F::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS"),
        F::NotFound { .. } => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
        F::Unreachable { .. } | F::ServerError { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
        }
        F::Misconfigured { .. }
        | F::CredentialsUnreadable { .. }
        | F::Refused { .. }
        | F::InvalidResponse { .. }
        | F::DigestMismatch { .. } => (StatusCode::BAD_GATEWAY, "UNKNOWN"),
        F::Storage { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN"),
    };
    Answer { status, oci_code }
}

/// The `Retry-After` to pass on.
pub(crate) fn retry_after(failure: &UpstreamFailure) -> Option<&str> {
    match failure {
        UpstreamFailure::RateLimited { retry_after, .. } => retry_after.as_deref(),
        _ => None,
    }
}

/// The message for the client: the failure's own, except for local storage,
/// whose details are the operator's (they are in the log).
pub(crate) fn message(failure: &UpstreamFailure) -> String {
    match failure {
        UpstreamFailure::Storage { .. } => {
            "the registry could not complete the request because of a storage error; retry later"
                .into()
        }
        f => f.to_string(),
    }
}

/// Log a failure answered with a server error, with its causes, once.
pub(crate) fn log(failure: &UpstreamFailure, status: StatusCode) {
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %error_chain(failure), "remote repository storage failure");
    } else if status.is_server_error() {
        tracing::warn!(error = %error_chain(failure), "remote repository upstream failure");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entrepot_services::remote::failure::{CredentialError, HopDenied, UpstreamError};
    use std::sync::Arc;

    fn status(f: UpstreamFailure) -> u16 {
        answer(&f).status.as_u16()
    }

    #[test]
    fn each_kind_has_its_status() {
        let host = || "upstream.example".to_owned();
        assert_eq!(
            status(UpstreamFailure::blocked(
                HopDenied {
                    host: host(),
                    message: "blocked".into()
                },
                false
            )),
            403
        );
        assert_eq!(
            status(UpstreamFailure::Refused {
                host: host(),
                detail: "HTTP 401".into()
            }),
            502
        );
        assert_eq!(
            status(UpstreamFailure::CredentialsUnreadable {
                secret_version: "projects/p/secrets/s/versions/1".into(),
                cause: CredentialError("denied".into())
            }),
            502
        );
        let limited = UpstreamFailure::RateLimited {
            host: host(),
            retry_after: Some("30".into()),
        };
        assert_eq!(answer(&limited).status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer(&limited).oci_code, "TOOMANYREQUESTS");
        assert_eq!(retry_after(&limited), Some("30"));
        assert_eq!(
            status(UpstreamFailure::NotFound {
                host: host(),
                what: "x".into()
            }),
            404
        );
        assert_eq!(
            status(UpstreamFailure::Unreachable {
                host: host(),
                cause: Arc::new(UpstreamError::Unreachable {
                    host: host(),
                    reason: "timed out".into()
                })
            }),
            503
        );
        assert_eq!(
            status(UpstreamFailure::ServerError {
                host: host(),
                status: 500,
                what: "x".into()
            }),
            503
        );
        assert_eq!(
            status(UpstreamFailure::InvalidResponse {
                host: host(),
                detail: "x".into()
            }),
            502
        );
        assert_eq!(
            status(UpstreamFailure::NotConfigured {
                repository: "projects/p/repositories/r".into()
            }),
            405
        );
        let storage = UpstreamFailure::storage(std::io::Error::other("/var/lib/secret/path"));
        assert_eq!(answer(&storage).status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!message(&storage).contains("/var/lib"));
    }
}
