//! Errors of the Python front-end: plain text, the reason also in the status
//! line, which is what pip and twine show their users.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use entrepot_services::python::PythonError;
use entrepot_services::{AuthError, RepositoryError};

/// A plain HTTP error with a clear message.
#[derive(Debug)]
pub struct PypiError {
    status: StatusCode,
    message: String,
    challenge: bool,
    retry_after: Option<u64>,
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

impl From<PythonError> for PypiError {
    fn from(e: PythonError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(error = %e, "python request failed");
        }
        Self::new(status, e.to_string())
    }
}

impl From<RepositoryError> for PypiError {
    fn from(e: RepositoryError) -> Self {
        match e {
            RepositoryError::NotFound(_) | RepositoryError::ProjectNotFound(_) => {
                Self::not_found(e.to_string())
            }
            RepositoryError::Invalid(m) => Self::invalid(m),
            e => Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

impl From<AuthError> for PypiError {
    fn from(e: AuthError) -> Self {
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
                overloaded,
            } => Self {
                status: if overloaded {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::TOO_MANY_REQUESTS
                },
                message: message.clone(),
                challenge: false,
                retry_after: Some(retry_after_secs),
            },
        }
    }
}

/// The message as a status-line reason: one line of visible ASCII.
fn reason(message: &str) -> Option<hyper::ext::ReasonPhrase> {
    let line: String = message
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .take(300)
        .collect();
    hyper::ext::ReasonPhrase::try_from(line.trim().as_bytes().to_vec()).ok()
}

impl IntoResponse for PypiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.message)).into_response();
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
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(r) = reason(&self.message) {
            response.extensions_mut().insert(r);
        }
        response
    }
}
