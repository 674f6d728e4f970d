//! Upstream credentials and where they come from.

use std::fmt;

use async_trait::async_trait;

/// A username and password/token for an upstream. The password never appears in
/// `Debug` output.
#[derive(Clone)]
pub struct UpstreamCredentials {
    /// User name (`__token__` for PyPI tokens).
    pub username: String,
    /// Password or token.
    pub password: String,
    /// Identifies which secret version these came from, so cached tokens are
    /// keyed by it and a rotation is never served a token of the old version.
    pub version: String,
}

impl fmt::Debug for UpstreamCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("version", &self.version)
            .finish()
    }
}

/// Why credentials could not be obtained. The message is for the end user: it
/// names who lacks what and how to fix it, and never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(pub String);

/// Supplies the credentials of one upstream.
#[async_trait]
pub trait CredentialSource: Send + Sync {
    /// Current credentials, `None` for anonymous access. With `fresh`, bypass any
    /// cache (the upstream just refused what was cached).
    async fn credentials(
        &self,
        fresh: bool,
    ) -> Result<Option<UpstreamCredentials>, CredentialError>;
}

/// Anonymous access.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCredentials;

#[async_trait]
impl CredentialSource for NoCredentials {
    async fn credentials(
        &self,
        _fresh: bool,
    ) -> Result<Option<UpstreamCredentials>, CredentialError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let c = UpstreamCredentials {
            username: "alice".into(),
            password: "s3cr3t-token".into(),
            version: "projects/p/secrets/s/versions/1".into(),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t"));
        assert!(shown.contains("alice"));
    }
}
