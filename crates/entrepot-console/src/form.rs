//! Posted forms: `application/x-www-form-urlencoded` pairs, repeated names
//! allowed, and the CSRF check every console form passes.

use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequest, Request};
use entrepot_services::console_sessions::same_token;

use crate::error::ConsoleError;
use crate::session::Signed;

/// The largest form the console reads (a secret version's payload, 64 KiB,
/// with its encoding and the other fields).
pub const MAX_FORM_BYTES: usize = 256 * 1024;

/// The name of the CSRF field in every form.
pub const CSRF_FIELD: &str = "csrf";

/// The fields of a posted form, in order.
#[derive(Default)]
pub struct FormData(Vec<(String, String)>);

impl FormData {
    /// From decoded pairs.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// The first value of `name`, untrimmed.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// Refuse the form unless it carries the session's CSRF token.
    pub fn check_csrf(&self, signed: &Signed) -> Result<(), ConsoleError> {
        match self.raw(CSRF_FIELD) {
            Some(t) if same_token(t, &signed.csrf_token) => Ok(()),
            _ => Err(ConsoleError::Csrf),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = ConsoleError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Form(pairs): axum::Form<Vec<(String, String)>> =
            axum::Form::from_request(req, state)
                .await
                .map_err(|e: FormRejection| ConsoleError::BadRequest(e.body_text()))?;
        Ok(Self(pairs))
    }
}
