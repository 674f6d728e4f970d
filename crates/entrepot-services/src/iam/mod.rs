//! IAM: who may do what, and the principals and tokens behind it.
//!
//! [`IamService`] is the [`AccessControl`] of a running registry. It
//! authenticates users, service accounts and their tokens, and authorizes by
//! walking the policies that apply to a resource: the organisation's, the
//! project's, then the repository's or secret's own. A binding higher up applies
//! to everything below it.
//!
//! | module | job |
//! |---|---|
//! | `authenticate` | credentials (password, access token, registry token) to a principal, through the credential cache |
//! | `authorize` | whether a principal holds a permission on a resource, walking the policy chain |
//! | `policies` | reading, replacing, granting and forgetting IAM policies |
//! | `principals` | users and service accounts, and the member a principal is |
//! | `tokens` | personal access tokens and the registry tokens issued for them |
//! | `bootstrap` | the first owner and the retirement of its token |

mod authenticate;
mod authorize;
mod bootstrap;
mod policies;
mod principals;
#[cfg(test)]
mod test_support;
mod tokens;

use std::sync::Arc;

use async_trait::async_trait;
use entrepot_domain::iam::IamError as DomainIamError;
use entrepot_domain::token_id::TokenId;
use entrepot_storage::{IamStore, MetadataStore, StoreError};

use crate::access::{AccessControl, AuthError, Credentials, Permission, Principal, Resource};
use crate::authn::{self, TokenSigner};
use crate::credential_cache::CredentialCache;
use crate::password_checks::{PasswordChecks, PasswordLimits};

pub use authenticate::Authenticated;
pub(crate) use policies::new_etag;
pub use policies::SecretDirectory;
pub use principals::{member_of, principal_of, service_agent};
pub use tokens::{CreatedToken, NewToken, RegistryToken};

use bootstrap::BootstrapWatch;

/// The user created on first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// Errors of IAM operations.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    /// Not authenticated, or not allowed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A bad member, role, policy or argument.
    #[error("{0}")]
    Invalid(String),
    /// The resource or principal does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The principal exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The policy changed since the caller read it.
    #[error("the IAM policy of {resource} changed since it was read (etag {etag:?} is stale); get the policy again, reapply the change and retry")]
    StaleEtag {
        /// The resource.
        resource: String,
        /// The etag the caller sent.
        etag: String,
    },
    /// A credential could not be produced.
    #[error(transparent)]
    Authn(#[from] authn::AuthnError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DomainIamError> for IamError {
    fn from(e: DomainIamError) -> Self {
        IamError::Invalid(e.to_string())
    }
}

/// Authentication, authorization and IAM administration.
#[derive(Clone)]
pub struct IamService {
    store: Arc<dyn IamStore>,
    meta: Arc<dyn MetadataStore>,
    signer: TokenSigner,
    secrets: Option<Arc<dyn SecretDirectory>>,
    passwords: Arc<PasswordChecks>,
    bootstrap: Arc<BootstrapWatch>,
    /// Tokens whose last use is being written, so that one write per token is
    /// in flight however many requests arrive while it waits for the writer.
    touching: Arc<std::sync::Mutex<std::collections::HashSet<TokenId>>>,
    /// Token checks that succeeded in the last second.
    verified: Arc<CredentialCache>,
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl IamService {
    /// A service over the IAM store, the metadata store (projects and
    /// repositories) and the registry token signing key.
    pub fn new(store: Arc<dyn IamStore>, meta: Arc<dyn MetadataStore>, signing_key: &[u8]) -> Self {
        Self {
            store,
            meta,
            signer: TokenSigner::new(signing_key),
            secrets: None,
            passwords: Arc::new(PasswordChecks::new(PasswordLimits::default())),
            bootstrap: Arc::default(),
            touching: Arc::default(),
            verified: Arc::default(),
        }
    }

    /// Remember token checks in `cache` instead of the default one (tests
    /// give entries a life that outlasts them).
    #[cfg(test)]
    fn with_credential_cache(mut self, cache: CredentialCache) -> Self {
        self.verified = Arc::new(cache);
        self
    }

    /// Forget every token check remembered: principals or tokens changed on
    /// another server sharing the database.
    pub fn forget_verified_credentials(&self) {
        self.verified.invalidate_all();
    }

    /// Check passwords within `limits` instead of the defaults.
    pub fn with_password_limits(mut self, limits: PasswordLimits) -> Self {
        self.passwords = Arc::new(PasswordChecks::new(limits));
        self
    }

    /// Counters of password checking and of the credential cache, in the
    /// Prometheus text format.
    pub fn render_metrics(&self) -> String {
        self.passwords.render() + &self.verified.render()
    }

    /// Check secrets exist (through the secret manager) before reading or
    /// writing their IAM policies. Without it only their project is checked.
    pub fn with_secret_directory(mut self, secrets: Arc<dyn SecretDirectory>) -> Self {
        self.secrets = Some(secrets);
        self
    }
}

fn internal(e: StoreError) -> AuthError {
    tracing::error!(error = %e, "IAM storage failure during authentication");
    AuthError::Unauthenticated(
        "credentials could not be checked because of a storage error; retry later".into(),
    )
}

#[async_trait]
impl AccessControl for IamService {
    async fn authenticate(
        &self,
        credentials: Option<&Credentials>,
    ) -> Result<Principal, AuthError> {
        self.authenticate_detailed(credentials)
            .await
            .map(|a| a.principal)
    }

    async fn authorize(
        &self,
        principal: &Principal,
        permission: Permission,
        resource: &Resource,
    ) -> Result<(), AuthError> {
        self.check(principal, permission, resource).await
    }
}
