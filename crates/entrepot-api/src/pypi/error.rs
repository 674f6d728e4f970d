//! Errors of the Python front-end: plain text, the reason also in the status
//! line, which is what pip and twine show their users.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use entrepot_services::python::PythonError;
use entrepot_services::{AuthError, RepositoryError};

use crate::{status_line, upstream_failure};

/// A plain HTTP error with a clear message.
#[derive(Debug)]
pub struct PypiError {
    status: StatusCode,
    message: String,
    challenge: bool,
    retry_after: Option<String>,
}

impl PypiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            challenge: false,
            retry_after: None,
        }
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 400.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

/// The status of a Python service error.
pub(crate) fn status_of(e: &PythonError) -> StatusCode {
    match e {
        PythonError::NotFound(_) => StatusCode::NOT_FOUND,
        PythonError::Invalid(_) | PythonError::FileExists(_) => StatusCode::BAD_REQUEST,
        PythonError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        PythonError::QuotaExceeded(_) => StatusCode::FORBIDDEN,
        PythonError::NotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        PythonError::HeldBack(_) => StatusCode::FORBIDDEN,
        PythonError::Remote(f) => upstream_failure::answer(f).status,
        PythonError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        PythonError::Access(e) => auth_status(e),
        PythonError::Repository(e) => repository_status(e),
    }
}

/// The status of a refusal.
fn auth_status(e: &AuthError) -> StatusCode {
    match e {
        AuthError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AuthError::Denied { .. } => StatusCode::FORBIDDEN,
        AuthError::Throttled { overloaded, .. } => {
            if *overloaded {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::TOO_MANY_REQUESTS
            }
        }
    }
}

/// The status of a failed repository lookup: a repository that does not
/// exist is a plain 404.
fn repository_status(e: &RepositoryError) -> StatusCode {
    match e {
        RepositoryError::NotFound(_) | RepositoryError::ProjectNotFound(_) => StatusCode::NOT_FOUND,
        RepositoryError::Invalid(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<PythonError> for PypiError {
    fn from(e: PythonError) -> Self {
        let status = status_of(&e);
        match e {
            PythonError::Remote(f) => {
                upstream_failure::log(&f, status);
                Self {
                    retry_after: upstream_failure::retry_after(&f).map(str::to_owned),
                    ..Self::new(status, upstream_failure::message(&f))
                }
            }
            PythonError::Access(e) => e.into(),
            PythonError::Repository(e) => e.into(),
            e => {
                if status.is_server_error() {
                    tracing::warn!(error = %e, "python request failed");
                }
                Self::new(status, e.to_string())
            }
        }
    }
}

impl From<RepositoryError> for PypiError {
    fn from(e: RepositoryError) -> Self {
        let status = repository_status(&e);
        match e {
            RepositoryError::Invalid(m) => Self::new(status, m),
            e => Self::new(status, e.to_string()),
        }
    }
}

impl From<AuthError> for PypiError {
    fn from(e: AuthError) -> Self {
        crate::observe::auth_refused(&e);
        match e {
            AuthError::Unauthenticated(_) => Self {
                status: StatusCode::UNAUTHORIZED,
                message: e.to_string(),
                challenge: true,
                retry_after: None,
            },
            AuthError::Denied { .. } => Self::new(StatusCode::FORBIDDEN, e.to_string()),
            AuthError::Throttled {
                ref message,
                retry_after_secs,
                ..
            } => Self {
                status: auth_status(&e),
                message: message.clone(),
                challenge: false,
                retry_after: Some(retry_after_secs.to_string()),
            },
        }
    }
}

impl IntoResponse for PypiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.message)).into_response();
        response
            .extensions_mut()
            .insert(crate::observe::ErrorCause(self.message.clone()));
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if self.challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"entrepot\""),
            );
        }
        if let Some(v) = self
            .retry_after
            .and_then(|r| HeaderValue::from_str(&r).ok())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        if let Some(r) = status_line::reason(&self.message) {
            response.extensions_mut().insert(r);
        }
        response
    }
}
