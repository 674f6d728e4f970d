//! The authorization hook every front-end calls.
//!
//! A front-end turns the request's `Authorization` header into [`Credentials`],
//! asks [`AccessControl::authenticate`] who the caller is, then asks
//! [`AccessControl::authorize`] whether that principal holds a [`Permission`] on a
//! [`Resource`]. Handlers never decide access themselves, so enforcing IAM means
//! swapping the implementation, not touching handlers.

use std::fmt;

use async_trait::async_trait;

pub use entrepot_domain::iam::Permission;
pub use entrepot_domain::resource::Resource;

/// Who is calling.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Principal {
    /// No credentials were presented.
    Anonymous,
    /// A local user, `user:EMAIL`.
    User(String),
    /// A service account, `serviceAccount:EMAIL`.
    ServiceAccount(String),
    /// A principal acting through a read-only token: it holds only the read
    /// permissions of the principal inside.
    ReadOnly(Box<Principal>),
    /// A principal acting through a registry token (`/v2/token`): it holds
    /// only what both the token's `access` entries and the live IAM policies
    /// of the principal inside grant. Front-ends other than `/v2` refuse it.
    RegistryToken {
        /// Who the token was issued to (possibly read-only).
        principal: Box<Principal>,
        /// The token's `access` claim.
        access: Vec<crate::authn::AccessEntry>,
    },
}

impl Principal {
    /// Whether this caller presented a registry token.
    pub fn is_registry_token(&self) -> bool {
        matches!(self, Principal::RegistryToken { .. })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Anonymous => f.write_str("allUsers"),
            Principal::User(e) => write!(f, "user:{e}"),
            Principal::ServiceAccount(e) => write!(f, "serviceAccount:{e}"),
            Principal::ReadOnly(p) => p.fmt(f),
            Principal::RegistryToken { principal, .. } => principal.fmt(f),
        }
    }
}

/// Credentials as presented on a request. The secret parts redact themselves.
#[derive(Clone)]
pub enum Credentials {
    /// HTTP Basic: a user name and a password or token.
    Basic {
        /// The user name.
        username: String,
        /// The password or token.
        password: String,
    },
    /// HTTP Bearer: a token issued by entrepot.
    Bearer(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// Why a request may not proceed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No or bad credentials where credentials are needed.
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    /// Authenticated, but the principal lacks the permission.
    #[error("{principal} lacks {permission} on {resource}")]
    Denied {
        /// Who asked.
        principal: String,
        /// The missing permission.
        permission: &'static str,
        /// On what.
        resource: String,
    },
    /// Credentials were not checked now: too many recent failures, or too many
    /// checks in progress. The caller should retry after `retry_after_secs`.
    #[error("{message}")]
    Throttled {
        /// What happened and what to do.
        message: String,
        /// Seconds to wait before retrying.
        retry_after_secs: u64,
        /// Whether the server is overloaded (503) rather than the caller
        /// having failed too often (429).
        overloaded: bool,
    },
}

/// Authentication and authorization, the one hook every front-end goes through.
#[async_trait]
pub trait AccessControl: Send + Sync + 'static {
    /// Who presents these credentials (`None`: no Authorization header).
    async fn authenticate(&self, credentials: Option<&Credentials>)
        -> Result<Principal, AuthError>;

    /// Whether `principal` holds `permission` on `resource`.
    async fn authorize(
        &self,
        principal: &Principal,
        permission: Permission,
        resource: &Resource,
    ) -> Result<(), AuthError>;
}

/// Lets everyone do everything: the behaviour before IAM is configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

#[async_trait]
impl AccessControl for AllowAll {
    async fn authenticate(
        &self,
        _credentials: Option<&Credentials>,
    ) -> Result<Principal, AuthError> {
        Ok(Principal::Anonymous)
    }

    async fn authorize(
        &self,
        _principal: &Principal,
        _permission: Permission,
        _resource: &Resource,
    ) -> Result<(), AuthError> {
        Ok(())
    }
}

/// Refuses everyone: what a service that authorizes its callers uses until
/// it is given the registry's access control, so that forgetting to wire
/// one fails closed.
#[derive(Debug, Default, Clone, Copy)]
pub struct DenyAll;

#[async_trait]
impl AccessControl for DenyAll {
    async fn authenticate(
        &self,
        _credentials: Option<&Credentials>,
    ) -> Result<Principal, AuthError> {
        Ok(Principal::Anonymous)
    }

    async fn authorize(
        &self,
        principal: &Principal,
        permission: Permission,
        resource: &Resource,
    ) -> Result<(), AuthError> {
        Err(AuthError::Denied {
            principal: principal.to_string(),
            permission: permission.as_str(),
            resource: resource.to_string(),
        })
    }
}
