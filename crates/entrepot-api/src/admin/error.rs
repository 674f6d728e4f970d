//! Admin API errors: `{"error": {"code", "message", "status", "details"}}`, the
//! JSON form of `google.rpc.Status` that Google's client libraries read.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use entrepot_services::remote::UpstreamFailure;
use entrepot_services::{AuthError, ProjectError, RepositoryError};

use crate::upstream_failure;

/// An admin API error, ready to send.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with an HTTP status and a message for the user.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message shown to the client (the console shows it on its pages).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// 400 INVALID_ARGUMENT.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 500, for storage that failed or holds damaged data; the cause is
    /// logged, not answered.
    pub(crate) fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "admin API storage failure");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error while reading or writing metadata; retry later",
        )
    }
}

/// The canonical status name of an HTTP status, as in Google-style APIs.
fn status_name(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "INVALID_ARGUMENT",
        StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
        StatusCode::FORBIDDEN => "PERMISSION_DENIED",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::CONFLICT => "ALREADY_EXISTS",
        StatusCode::PRECONDITION_FAILED => "FAILED_PRECONDITION",
        StatusCode::TOO_MANY_REQUESTS => "RESOURCE_EXHAUSTED",
        StatusCode::NOT_IMPLEMENTED => "UNIMPLEMENTED",
        StatusCode::SERVICE_UNAVAILABLE => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": {
                "code": self.status.as_u16(),
                "message": self.message,
                "status": status_name(self.status),
                "details": [],
            }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        response
            .extensions_mut()
            .insert(crate::observe::ErrorCause(self.message.clone()));
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}

impl From<RepositoryError> for ApiError {
    fn from(e: RepositoryError) -> Self {
        match e {
            RepositoryError::NotFound(_) | RepositoryError::ProjectNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, e.to_string())
            }
            RepositoryError::AlreadyExists(_) => Self::new(StatusCode::CONFLICT, e.to_string()),
            RepositoryError::Invalid(_) => Self::invalid(e.to_string()),
            RepositoryError::Auth(a) => a.into(),
            RepositoryError::Secret(s) => s.into(),
            RepositoryError::Upstream(f) => f.into(),
            RepositoryError::Store(ref s) => Self::internal(s),
        }
    }
}

impl From<UpstreamFailure> for ApiError {
    fn from(f: UpstreamFailure) -> Self {
        let status = upstream_failure::answer(&f).status;
        upstream_failure::log(&f, status);
        Self {
            retry_after: upstream_failure::retry_after(&f).and_then(|r| r.parse().ok()),
            ..Self::new(status, upstream_failure::message(&f))
        }
    }
}

impl From<ProjectError> for ApiError {
    fn from(e: ProjectError) -> Self {
        match e {
            ProjectError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, e.to_string()),
            ProjectError::AlreadyExists(_) => Self::new(StatusCode::CONFLICT, e.to_string()),
            ProjectError::Auth(a) => a.into(),
            ProjectError::Store(ref s) => Self::internal(s),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        crate::observe::auth_refused(&e);
        match e {
            AuthError::Unauthenticated(_) => Self::new(StatusCode::UNAUTHORIZED, e.to_string()),
            AuthError::Denied { .. } => {
                Self::new(StatusCode::FORBIDDEN, format!("permission denied: {e}"))
            }
            AuthError::Throttled {
                message,
                retry_after_secs,
                overloaded,
            } => {
                let status = if overloaded {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::TOO_MANY_REQUESTS
                };
                Self {
                    retry_after: Some(retry_after_secs),
                    ..Self::new(status, message)
                }
            }
        }
    }
}
