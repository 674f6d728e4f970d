//! OCI error bodies: `{"errors":[{"code","message","detail"}]}` with the status
//! the distribution spec gives each code.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use entrepot_services::remote::UpstreamFailure;
use entrepot_services::StoreError;
use entrepot_services::{AuthError, RegistryError};

use super::{EndpointError, API_VERSION_HEADER};
use crate::{status_line, upstream_failure};

/// An OCI protocol error, ready to send.
#[derive(Debug)]
pub struct OciError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// `WWW-Authenticate` value for 401 answers.
    challenge: Option<String>,
    /// Extra headers (e.g. `Range` on 416 for uploads).
    headers: Vec<(header::HeaderName, String)>,
}

impl OciError {
    /// An error with a code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            challenge: None,
            headers: Vec::new(),
        }
    }

    /// `NAME_INVALID`.
    pub fn name_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "NAME_INVALID", message)
    }

    /// `DIGEST_INVALID`.
    pub fn digest_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", message)
    }

    /// A request that is no OCI operation: the path `/v2/{rest}` names no
    /// endpoint (404), holds a bad name or digest (400), or the endpoint
    /// does not take the method (405).
    pub fn endpoint(e: EndpointError, rest: &str) -> Self {
        match e {
            EndpointError::NotFound => Self::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("no OCI endpoint at /v2/{rest}"),
            ),
            EndpointError::Name(_) => Self::name_invalid(e.to_string()),
            EndpointError::Digest(_) => Self::digest_invalid(e.to_string()),
            EndpointError::MethodNotAllowed { .. } => Self::unsupported(e.to_string()),
        }
    }

    /// `UNSUPPORTED`.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", message)
    }

    /// 416 with the spec's code for ranges.
    pub fn range_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID", message)
    }

    /// Add a header to the error response.
    pub fn with_header(mut self, name: header::HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Add an authentication challenge.
    pub fn with_challenge(mut self, challenge: String) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// The error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<RegistryError> for OciError {
    fn from(e: RegistryError) -> Self {
        use RegistryError as E;
        let message = e.to_string();
        match e {
            E::NameUnknown(_) => Self::new(StatusCode::NOT_FOUND, "NAME_UNKNOWN", message),
            E::NameInvalid(_) => Self::name_invalid(message),
            E::TagInvalid(_) => Self::new(StatusCode::BAD_REQUEST, "TAG_INVALID", message),
            E::TooManyTags { .. } => Self::new(StatusCode::URI_TOO_LONG, "TAG_INVALID", message),
            E::ManifestUnknown(_) => Self::new(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", message),
            E::ManifestInvalid(_) => {
                Self::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message)
            }
            E::ManifestTooLarge(_) => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "MANIFEST_INVALID", message)
            }
            E::ManifestBlobUnknown { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN", message)
            }
            E::BlobUnknown(_) => Self::new(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", message),
            E::BlobUploadUnknown(_) => {
                Self::new(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN", message)
            }
            E::BlobUploadInvalid(_) => {
                Self::new(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", message)
            }
            E::RangeMismatch { expected, .. } => Self::range_invalid(message)
                .with_header(header::RANGE, format!("0-{}", expected.saturating_sub(1))),
            E::ChunkLengthMismatch { size, .. } => Self::range_invalid(message)
                .with_header(header::RANGE, format!("0-{}", size.saturating_sub(1))),
            E::BodyIncomplete(_) => {
                // The client went away or stalled: its failure, not an alarm.
                tracing::info!(error = %message, "request body ended early");
                Self::new(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", message)
            }
            E::DigestInvalid(_) => Self::digest_invalid(message),
            E::ChunkRangeInvalid(_) => Self::range_invalid(message),
            E::PageSizeInvalid(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                "n must be a non-negative integer",
            ),
            E::Unsupported(_) => Self::unsupported(message),
            E::Denied(_) => Self::new(StatusCode::FORBIDDEN, "DENIED", message),
            E::Access(e) => Self::from(e),
            E::Remote(f) => Self::from(f),
            E::LowDisk(_) => {
                tracing::warn!(error = %message, "registry storage is nearly full");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", message)
            }
            // The garbage collector is deleting this blob: the client
            // retries, and the blob is stored afresh once it is gone.
            E::Store(StoreError::BlobBeingCollected(_)) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", message)
                    .with_header(header::RETRY_AFTER, "1".to_owned())
            }
            E::Store(_) | E::Blob(_) => {
                tracing::error!(error = %message, "registry storage failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "the registry could not complete the request because of a storage error; retry later",
                )
            }
        }
    }
}

impl From<UpstreamFailure> for OciError {
    fn from(f: UpstreamFailure) -> Self {
        let answer = upstream_failure::answer(&f);
        upstream_failure::log(&f, answer.status);
        let err = Self::new(
            answer.status,
            answer.oci_code,
            upstream_failure::message(&f),
        );
        match upstream_failure::retry_after(&f) {
            Some(r) => err.with_header(header::RETRY_AFTER, r.to_owned()),
            None => err,
        }
    }
}

impl From<AuthError> for OciError {
    fn from(e: AuthError) -> Self {
        crate::observe::auth_refused(&e);
        match e {
            AuthError::Unauthenticated(_) => {
                Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", e.to_string())
            }
            AuthError::Denied { .. } => Self::new(StatusCode::FORBIDDEN, "DENIED", e.to_string()),
            AuthError::Throttled {
                ref message,
                retry_after_secs,
                overloaded,
            } => {
                let err = if overloaded {
                    Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "UNAVAILABLE",
                        message.clone(),
                    )
                } else {
                    Self::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "TOOMANYREQUESTS",
                        message.clone(),
                    )
                };
                err.with_header(header::RETRY_AFTER, retry_after_secs.to_string())
            }
        }
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "errors": [{ "code": self.code, "message": &self.message, "detail": null }]
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        response
            .extensions_mut()
            .insert(crate::observe::ErrorCause(format!(
                "{}: {}",
                self.code, self.message
            )));
        // For a 5xx, container clients show the status line only; for a 429
        // containerd's ctr does too (the others print the body's message).
        if self.status.is_server_error() || self.status == StatusCode::TOO_MANY_REQUESTS {
            if let Some(r) = status_line::reason(&self.message) {
                response.extensions_mut().insert(r);
            }
        }
        let headers = response.headers_mut();
        headers.insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}
