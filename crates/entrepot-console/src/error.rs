//! What a console request can fail with, and the page each failure shows.
//! Service errors take the status the admin API gives them (the same
//! mapping, from [`ApiError`]), so a refused action is a 403 here too.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use entrepot_api::admin::ApiError;
use entrepot_services::access_policy::AccessPolicyServiceError;
use entrepot_services::inventory::InventoryError;
use entrepot_services::oci::RegistryError;
use entrepot_services::python::PythonError;
use entrepot_services::{AuthError, IamError, ProjectError, RepositoryError, SecretError};
use maud::html;

use crate::layout;

/// Why a console page could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No session (or an expired one): sign in first.
    #[error("sign in to use the console")]
    SignIn,
    /// A form without the session's CSRF token.
    #[error("the form was not sent from this console session (its CSRF token is missing or wrong); reload the page and try again")]
    Csrf,
    /// The service refused the caller.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// The request is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// Any other status a service error maps to.
    #[error("{1}")]
    Status(StatusCode, String),
    /// The server failed.
    #[error("{0}")]
    Internal(String),
}

impl ConsoleError {
    /// The HTTP status of the failure.
    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn => StatusCode::SEE_OTHER,
            ConsoleError::Csrf | ConsoleError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Status(s, _) => *s,
            ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the failure is the caller's mistake in a form, to be shown
    /// next to the field rather than as an error page.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self.status(),
            StatusCode::BAD_REQUEST | StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED
        )
    }
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        let message = e.message().to_owned();
        match e.status() {
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => ConsoleError::Forbidden(message),
            StatusCode::NOT_FOUND => ConsoleError::NotFound(message),
            StatusCode::BAD_REQUEST => ConsoleError::BadRequest(message),
            StatusCode::INTERNAL_SERVER_ERROR => ConsoleError::Internal(message),
            s => ConsoleError::Status(s, message),
        }
    }
}

macro_rules! through_api_error {
    ($($t:ty),*) => {$(
        impl From<$t> for ConsoleError {
            fn from(e: $t) -> Self {
                ApiError::from(e).into()
            }
        }
    )*};
}

through_api_error!(
    RepositoryError,
    SecretError,
    IamError,
    ProjectError,
    AccessPolicyServiceError,
    AuthError,
    InventoryError
);

impl From<RegistryError> for ConsoleError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Access(a) => a.into(),
            RegistryError::Denied(m) => ConsoleError::Forbidden(m),
            e @ (RegistryError::NameUnknown(_) | RegistryError::ManifestUnknown(_)) => {
                ConsoleError::NotFound(e.to_string())
            }
            e => ConsoleError::Internal(e.to_string()),
        }
    }
}

impl From<PythonError> for ConsoleError {
    fn from(e: PythonError) -> Self {
        match e {
            PythonError::Access(a) => a.into(),
            PythonError::NotFound(m) => ConsoleError::NotFound(m),
            PythonError::Invalid(m) => ConsoleError::BadRequest(m),
            e => ConsoleError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if let ConsoleError::SignIn = self {
            return (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, "/ui/signin")],
                "sign in first",
            )
                .into_response();
        }
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "console page failed");
        }
        let title = match status {
            StatusCode::FORBIDDEN => "Permission denied",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "Invalid request",
            s if s.is_server_error() => "Something went wrong",
            _ => "Request refused",
        };
        let body = html! {
            div.error-page {
                h1 { (title) }
                p.error-message { (self.to_string()) }
                p { a href="/ui/" { "Back to the console" } }
            }
        };
        (status, layout::bare(title, body)).into_response()
    }
}
