//! IAM: who may do what, and the principals and tokens behind it.
//!
//! [`IamService`] is the [`AccessControl`] of a running registry. It
//! authenticates users, service accounts and their tokens, and authorizes by
//! walking the policies that apply to a resource: the organisation's, the
//! project's, then the repository's or secret's own. A binding higher up applies
//! to everything below it.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use entrepot_domain::iam::{
    self, permissions, IamError as DomainIamError, Member, Policy, EMPTY_POLICY_ETAG, OWNER,
};
use entrepot_storage::{
    IamStore, MetadataStore, ServiceAccountRecord, StoreError, TokenKey, TokenRecord, UserRecord,
};

use crate::access::{AccessControl, AuthError, Credentials, Permission, Principal, Resource};
use crate::authn::{self, AccessEntry, RegistryClaims, SecretString, TokenSigner};
use crate::credential_cache::{touch_due, CredentialCache, CredentialKey, Verification, Verified};
use crate::paging::{Page, PageRequest};
use crate::password_checks::{PasswordChecks, PasswordLimits, Refusal};

/// The resource name of the organisation-wide policy, consulted for everything.
pub const ORGANIZATION: &str = "organization";

/// The user created on first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// User names that may stand in front of a token in HTTP Basic, as clients
/// such as `docker login` need some user name.
const TOKEN_USERNAMES: &[&str] = &["_token", "token", "oauth2accesstoken", "__token__"];

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

/// The principal a project's service agent acts as.
pub fn service_agent(project_number: i64) -> Principal {
    Principal::ServiceAccount(iam::service_agent_email(project_number))
}

/// The member string of a principal (`user:...`, `serviceAccount:...`), `None`
/// for anonymous callers.
pub fn member_of(principal: &Principal) -> Option<Member> {
    match principal {
        Principal::Anonymous => None,
        Principal::User(e) => Some(Member::User(e.clone())),
        Principal::ServiceAccount(e) => Some(Member::ServiceAccount(e.clone())),
        Principal::ReadOnly(p) => member_of(p),
        Principal::RegistryToken { principal, .. } => member_of(principal),
    }
}

/// The principal a member string names, if it names a single identity.
pub fn principal_of(member: &Member) -> Option<Principal> {
    match member {
        Member::User(e) => Some(Principal::User(e.clone())),
        Member::ServiceAccount(e) => Some(Principal::ServiceAccount(e.clone())),
        Member::AllUsers | Member::AllAuthenticatedUsers => None,
    }
}

/// Every member a binding may name to match this principal.
fn identities(principal: &Principal) -> Vec<Member> {
    match member_of(principal) {
        None => vec![Member::AllUsers],
        Some(m) => vec![m, Member::AllUsers, Member::AllAuthenticatedUsers],
    }
}

/// The policies that apply to a resource, outermost first.
fn policy_chain(resource: &Resource) -> Vec<String> {
    let mut chain = vec![ORGANIZATION.to_owned()];
    match resource {
        Resource::Organization => {}
        Resource::Project(p) => chain.push(format!("projects/{p}")),
        Resource::Repository { project, .. } | Resource::Secret { project, .. } => {
            chain.push(format!("projects/{project}"));
            chain.push(resource.to_string());
        }
    }
    chain
}

/// Who authenticated, and through which token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The principal (wrapped in `ReadOnly` for read-only tokens).
    pub principal: Principal,
    /// The personal access token used, if any.
    pub token_id: Option<String>,
    /// Creation time of the user or service account, carried into registry
    /// tokens so that they die with the principal.
    pub principal_created: Option<String>,
}

/// A token as returned by create: the only time the token itself is shown.
#[derive(Debug)]
pub struct CreatedToken {
    /// The stored record.
    pub record: TokenRecord,
    /// The token.
    pub token: SecretString,
}

/// What to create a token with.
#[derive(Debug, Default, Clone)]
pub struct NewToken {
    /// For whom (default: the caller).
    pub principal: Option<Member>,
    /// Free text.
    pub description: String,
    /// Lifetime in seconds (`None`: never expires).
    pub expires_in: Option<i64>,
    /// Only read permissions.
    pub read_only: bool,
}

/// A registry token issued by the token endpoint.
#[derive(Debug)]
pub struct RegistryToken {
    /// The JWT.
    pub token: SecretString,
    /// Seconds it is valid.
    pub expires_in: i64,
    /// RFC 3339 issue time.
    pub issued_at: String,
}

/// How a token is checked.
#[derive(Clone, Copy)]
enum TokenKind<'a> {
    /// A personal access token, with the Basic user name it came with.
    Access { username: Option<&'a str> },
    /// A registry token (JWT) from the token endpoint.
    Registry,
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
    touching: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Token checks that succeeded in the last second.
    verified: Arc<CredentialCache>,
}

/// Watches for the moment the bootstrap admin token has served its purpose:
/// its first successful use, or another owner of the organisation.
#[derive(Default)]
struct BootstrapWatch {
    token_id: std::sync::Mutex<Option<String>>,
    retired: tokio::sync::Notify,
}

impl BootstrapWatch {
    fn watch(&self, id: String) {
        *self.token_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
    }

    /// Signal once, whoever waits (a stored permit if nobody waits yet).
    fn retire(&self) {
        let was = self
            .token_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if was.is_some() {
            self.retired.notify_one();
        }
    }

    fn used(&self, id: &str) {
        let watched = self
            .token_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_deref()
            == Some(id);
        if watched {
            self.retire();
        }
    }
}

/// Tells the IAM service whether a secret exists, so that IAM calls on a
/// missing secret answer "not found". Implemented by the secret manager.
#[async_trait]
pub trait SecretDirectory: Send + Sync + 'static {
    /// Whether `projects/{project}/secrets/{secret}` exists.
    async fn secret_exists(&self, project: &str, secret: &str) -> Result<bool, StoreError>;
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn unauthenticated() -> AuthError {
    AuthError::Unauthenticated(
        "the user name, password or token is not valid, has expired or was revoked".into(),
    )
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

    /// Record a token's use without making the request wait: the write queues
    /// for SQLite's single writer, which a large delete may hold, and a read
    /// must never wait behind it. At most one write per token is in flight.
    fn touch_in_background(&self, id: &str) {
        let lock = || self.touching.lock().unwrap_or_else(|p| p.into_inner());
        if !lock().insert(id.to_owned()) {
            return;
        }
        let (store, touching, id) = (self.store.clone(), self.touching.clone(), id.to_owned());
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(&id).await {
                tracing::warn!(error = %e, "could not record the last use of a token");
            }
            touching
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
    }

    /// Resolves once the bootstrap admin token has served its purpose (its
    /// first successful use, or another owner of the organisation), so that
    /// the copy kept on disk can go. Only meaningful after [`Self::bootstrap`]
    /// or [`Self::adopt_bootstrap_token`] named the token.
    pub async fn bootstrap_token_retired(&self) {
        self.bootstrap.retired.notified().await;
    }

    /// On a later start, with the bootstrap token still on disk: whether it
    /// has served its purpose already (used, revoked, gone, or another owner
    /// exists); if not, watch it as [`Self::bootstrap`] does.
    pub async fn adopt_bootstrap_token(&self, token: &SecretString) -> Result<bool, IamError> {
        let record = self
            .store
            .token_by_hash(&authn::token_hash(token.expose()))
            .await?;
        let Some(record) = record else {
            return Ok(true);
        };
        if record.revoked || record.last_used_time.is_some() || self.other_owner().await? {
            return Ok(true);
        }
        self.bootstrap.watch(record.id);
        Ok(false)
    }

    /// Whether the organisation has an owner besides the bootstrap admin.
    async fn other_owner(&self) -> Result<bool, IamError> {
        let org = self.store.get_policy(ORGANIZATION).await?;
        Ok(has_other_owner(&org))
    }

    /// Check secrets exist (through the secret manager) before reading or
    /// writing their IAM policies. Without it only their project is checked.
    pub fn with_secret_directory(mut self, secrets: Arc<dyn SecretDirectory>) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// On first start (no user and no organisation policy yet), create
    /// `user:admin` with `roles/owner` on the organisation and return a token for
    /// it; `None` on later starts.
    pub async fn bootstrap(&self) -> Result<Option<SecretString>, IamError> {
        let org = self.store.get_policy(ORGANIZATION).await?;
        if !org.bindings.is_empty() || !self.store.list_users(None, 1).await?.is_empty() {
            return Ok(None);
        }
        match self.store.create_user(BOOTSTRAP_ADMIN, None).await {
            Ok(_) | Err(StoreError::AlreadyExists) => {}
            Err(e) => return Err(e.into()),
        }
        let admin = Member::User(BOOTSTRAP_ADMIN.into());
        let mut policy = org;
        policy.add_binding(OWNER, admin.clone())?;
        self.write_policy(ORGANIZATION, policy, None).await?;
        let created = self
            .insert_token(
                &admin,
                NewToken {
                    principal: None,
                    description: "bootstrap admin token".into(),
                    expires_in: None,
                    read_only: false,
                },
            )
            .await?;
        self.bootstrap.watch(created.record.id.clone());
        Ok(Some(created.token))
    }

    // ---- authentication ----

    /// Authenticate, also telling which personal access token was used.
    pub async fn authenticate_detailed(
        &self,
        credentials: Option<&Credentials>,
    ) -> Result<Authenticated, AuthError> {
        match credentials {
            None => Ok(Authenticated {
                principal: Principal::Anonymous,
                token_id: None,
                principal_created: None,
            }),
            Some(Credentials::Bearer(token)) => {
                let kind = if authn::looks_like_jwt(token) {
                    TokenKind::Registry
                } else {
                    TokenKind::Access { username: None }
                };
                self.by_token(CredentialKey::bearer(token), kind, token)
                    .await
            }
            Some(Credentials::Basic { username, password }) => {
                let kind = if password.starts_with(authn::ACCESS_TOKEN_PREFIX) {
                    TokenKind::Access {
                        username: Some(username),
                    }
                } else if authn::looks_like_jwt(password) {
                    TokenKind::Registry
                } else {
                    // Passwords are never cached: every login pays the check.
                    return self.by_password(username, password).await;
                };
                self.by_token(CredentialKey::basic(username, password), kind, password)
                    .await
            }
        }
    }

    /// Check a token, from the credential cache if it was checked within the
    /// last second, else against the database (then remember the success).
    async fn by_token(
        &self,
        key: CredentialKey,
        kind: TokenKind<'_>,
        token: &str,
    ) -> Result<Authenticated, AuthError> {
        if let Some(hit) = self.verified.get(&key, std::time::Instant::now()) {
            self.record_use(&hit);
            return Ok(hit.who().clone());
        }
        // Read before the database, so that a revocation landing meanwhile
        // keeps this result out of the cache.
        let generation = self.verified.generation();
        let verification = match kind {
            TokenKind::Access { username } => self.by_access_token(username, token).await?,
            TokenKind::Registry => self.by_registry_token(token).await?,
        };
        let who = verification.who.clone();
        self.verified.offer(
            generation,
            key,
            verification,
            std::time::Instant::now(),
            now().unix_timestamp_nanos(),
        );
        Ok(who)
    }

    /// What a check of a personal access token does besides answering, for a
    /// check answered from the cache: record the use (at most once a minute)
    /// and note the bootstrap token's first use.
    fn record_use(&self, hit: &Verified) {
        if !hit.is_access_token() {
            return;
        }
        if let Some(id) = &hit.who().token_id {
            if hit.claim_use(now().unix_timestamp()) {
                self.touch_in_background(id);
            }
            self.bootstrap.used(id);
        }
    }

    async fn by_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Authenticated, AuthError> {
        let user = self.store.get_user(username).await.map_err(internal)?;
        let created = user.as_ref().map(|u| u.create_time.clone());
        // No user, or no password: the same check against a dummy hash, so
        // neither the answer nor its timing tells which users exist.
        let hash = user.and_then(|u| u.password_hash);
        let client = crate::origin::current_client();
        match self
            .passwords
            .verify(username, client, hash, password)
            .await
        {
            Ok(true) => Ok(Authenticated {
                principal: Principal::User(username.to_owned()),
                token_id: None,
                principal_created: created,
            }),
            Ok(false) => Err(unauthenticated()),
            Err(Refusal::Backoff { retry_after_secs }) => Err(AuthError::Throttled {
                message: format!(
                    "too many failed logins for this user or from this address; retry in {retry_after_secs} s or use a token"
                ),
                retry_after_secs,
                overloaded: false,
            }),
            Err(Refusal::Busy { retry_after_secs }) => Err(AuthError::Throttled {
                message: "too many password checks in progress; retry shortly or use a token"
                    .into(),
                retry_after_secs,
                overloaded: true,
            }),
        }
    }

    /// Authenticate credentials offered in exchange for a registry token
    /// (`/v2/token`): a registry token itself is refused, so that a token
    /// cannot be renewed past the life of the credential it came from.
    pub async fn authenticate_for_exchange(
        &self,
        credentials: Option<&Credentials>,
    ) -> Result<Authenticated, AuthError> {
        let who = self.authenticate_detailed(credentials).await?;
        if who.principal.is_registry_token() {
            return Err(AuthError::Unauthenticated(
                "a registry token cannot be exchanged for another; authenticate with a password or a personal access token".into(),
            ));
        }
        Ok(who)
    }

    async fn by_access_token(
        &self,
        username: Option<&str>,
        token: &str,
    ) -> Result<Verification, AuthError> {
        let record = self
            .store
            .token_by_hash(&authn::token_hash(token))
            .await
            .map_err(internal)?
            .ok_or_else(unauthenticated)?;
        let (principal, created) = self.live_token_principal(&record).await?;
        if let Some(username) = username {
            let email = match &principal {
                Principal::User(e) | Principal::ServiceAccount(e) => e.as_str(),
                _ => "",
            };
            if username != email && !TOKEN_USERNAMES.contains(&username) {
                return Err(unauthenticated());
            }
        }
        let mut last_use = last_use_unix(record.last_used_time.as_deref());
        let now_unix = now().unix_timestamp();
        if touch_due(last_use, now_unix) {
            self.touch_in_background(&record.id);
            last_use = now_unix;
        }
        self.bootstrap.used(&record.id);
        Ok(Verification {
            who: Authenticated {
                principal: if record.read_only {
                    Principal::ReadOnly(Box::new(principal))
                } else {
                    principal
                },
                token_id: Some(record.id),
                principal_created: Some(created),
            },
            expires_at: record.expire_time,
            last_use: Some(last_use),
        })
    }

    /// The principal of a token that is neither revoked, expired, nor owned by
    /// a principal that no longer exists, with the principal's creation time.
    async fn live_token_principal(
        &self,
        record: &TokenRecord,
    ) -> Result<(Principal, String), AuthError> {
        if record.revoked
            || record
                .expire_time
                .is_some_and(|t| t <= now().unix_timestamp())
        {
            return Err(unauthenticated());
        }
        let member: Member = record.principal.parse().map_err(|_| unauthenticated())?;
        let created = self
            .principal_created(&member)
            .await?
            .ok_or_else(unauthenticated)?;
        let principal = principal_of(&member).ok_or_else(unauthenticated)?;
        Ok((principal, created))
    }

    /// The creation time of a user or service account; `None` if it does not
    /// exist (or the member names no single identity).
    async fn principal_created(&self, member: &Member) -> Result<Option<String>, AuthError> {
        Ok(match member {
            Member::User(e) => self
                .store
                .get_user(e)
                .await
                .map_err(internal)?
                .map(|u| u.create_time),
            Member::ServiceAccount(e) => self
                .store
                .get_service_account(e)
                .await
                .map_err(internal)?
                .map(|a| a.create_time),
            _ => None,
        })
    }

    async fn by_registry_token(&self, token: &str) -> Result<Verification, AuthError> {
        let claims = self.signer.verify(token).ok_or_else(|| {
            AuthError::Unauthenticated("the registry token is not valid or has expired".into())
        })?;
        let dead = || {
            AuthError::Unauthenticated(
                "the registry token's principal or access token no longer exists or was revoked"
                    .into(),
            )
        };
        let (principal, created) = if claims.sub.is_empty() {
            (Principal::Anonymous, None)
        } else {
            // A registry token dies with its principal: it must still exist,
            // and be the same one (not re-created under the same name).
            let member: Member = claims.sub.parse().map_err(|_| unauthenticated())?;
            let created = self.principal_created(&member).await?.ok_or_else(dead)?;
            if claims.uct.as_ref().is_some_and(|u| *u != created) {
                return Err(dead());
            }
            let principal = principal_of(&member).ok_or_else(unauthenticated)?;
            (principal, Some(created))
        };
        // ... and with the access token it was exchanged for.
        let mut expires_at = claims.exp;
        if let Some(id) = &claims.tid {
            let record = self
                .store
                .get_token(id)
                .await
                .map_err(internal)?
                .ok_or_else(dead)?;
            let (owner, _) = self
                .live_token_principal(&record)
                .await
                .map_err(|_| dead())?;
            if owner != principal {
                return Err(dead());
            }
            if let Some(t) = record.expire_time {
                expires_at = expires_at.min(t);
            }
        }
        let principal = if claims.ro {
            Principal::ReadOnly(Box::new(principal))
        } else {
            principal
        };
        Ok(Verification {
            who: Authenticated {
                principal: Principal::RegistryToken {
                    principal: Box::new(principal),
                    access: claims.access,
                },
                token_id: claims.tid,
                principal_created: created,
            },
            expires_at: Some(expires_at),
            last_use: None,
        })
    }

    /// Issue a registry token (Docker token spec) for `who`, granting the
    /// `access` entries given (already filtered to what `who` may do).
    pub fn issue_registry_token(
        &self,
        who: &Authenticated,
        access: Vec<AccessEntry>,
    ) -> Result<RegistryToken, IamError> {
        let issued = now();
        let iat = issued.unix_timestamp();
        let (inner, ro) = match &who.principal {
            Principal::ReadOnly(p) => (p.as_ref(), true),
            Principal::RegistryToken { .. } => {
                return Err(IamError::Invalid(
                    "a registry token cannot be exchanged for another".into(),
                ))
            }
            p => (p, false),
        };
        let claims = RegistryClaims {
            iss: authn::TOKEN_SERVICE.into(),
            sub: member_of(inner).map(|m| m.to_string()).unwrap_or_default(),
            aud: authn::TOKEN_SERVICE.into(),
            exp: iat + authn::REGISTRY_TOKEN_SECONDS,
            nbf: iat,
            iat,
            jti: authn::new_token_id(),
            access,
            tid: who.token_id.clone(),
            ro,
            uct: who.principal_created.clone(),
        };
        Ok(RegistryToken {
            token: SecretString::new(self.signer.sign(&claims)?),
            expires_in: authn::REGISTRY_TOKEN_SECONDS,
            issued_at: rfc3339(issued),
        })
    }

    // ---- authorization ----

    /// Whether `principal` holds `permission` (by name) on `resource`.
    async fn holds(
        &self,
        principal: &Principal,
        permission: &str,
        resource: &Resource,
    ) -> Result<bool, StoreError> {
        // A registry token holds what its access entries name, and of that
        // only what its principal holds now.
        let principal = match principal {
            Principal::RegistryToken { principal, access } => {
                let repository = match resource {
                    Resource::Repository {
                        project,
                        repository,
                    } => Some((project.as_str(), repository.as_str())),
                    Resource::Organization => None,
                    _ => return Ok(false),
                };
                if !authn::access_covers(access, permission, repository) {
                    return Ok(false);
                }
                principal.as_ref()
            }
            p => p,
        };
        let principal = match principal {
            Principal::ReadOnly(inner) if permissions::is_read_only(permission) => inner.as_ref(),
            Principal::ReadOnly(_) => return Ok(false),
            Principal::RegistryToken { .. } => return Ok(false),
            p => p,
        };
        let ids = identities(principal);
        for name in policy_chain(resource) {
            if self.store.get_policy(&name).await?.allows(&ids, permission) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn check(
        &self,
        principal: &Principal,
        permission: Permission,
        resource: &Resource,
    ) -> Result<(), AuthError> {
        if self
            .holds(principal, permission.as_str(), resource)
            .await
            .map_err(internal)?
        {
            return Ok(());
        }
        Err(match principal {
            Principal::Anonymous => AuthError::Unauthenticated(format!(
                "{} on {resource} requires credentials",
                permission.as_str()
            )),
            Principal::ReadOnly(inner) if !permissions::is_read_only(permission.as_str()) => {
                AuthError::Denied {
                    principal: format!("{inner} (read-only token)"),
                    permission: permission.as_str(),
                    resource: resource.to_string(),
                }
            }
            Principal::RegistryToken { principal, .. } if **principal == Principal::Anonymous => {
                AuthError::Unauthenticated(format!(
                    "{} on {resource} requires credentials",
                    permission.as_str()
                ))
            }
            Principal::RegistryToken { principal, .. } => AuthError::Denied {
                principal: format!(
                    "{principal} (registry token; it grants only the scopes it was issued for, intersected with current IAM policies)"
                ),
                permission: permission.as_str(),
                resource: resource.to_string(),
            },
            p => AuthError::Denied {
                principal: p.to_string(),
                permission: permission.as_str(),
                resource: resource.to_string(),
            },
        })
    }

    // ---- policies ----

    async fn ensure_exists(&self, resource: &Resource) -> Result<(), IamError> {
        let project = match resource {
            Resource::Organization => return Ok(()),
            Resource::Project(p) => p,
            Resource::Repository {
                project,
                repository,
            } => {
                if self
                    .meta
                    .get_repository(project, repository)
                    .await?
                    .is_none()
                {
                    return Err(IamError::NotFound(format!("repository {resource}")));
                }
                project
            }
            Resource::Secret { project, secret } => {
                if let Some(secrets) = &self.secrets {
                    if !secrets.secret_exists(project, secret).await? {
                        return Err(IamError::NotFound(format!("secret {resource}")));
                    }
                }
                project
            }
        };
        if self.meta.get_project(project).await?.is_none() {
            return Err(IamError::NotFound(format!("project projects/{project}")));
        }
        Ok(())
    }

    fn policy_permissions(resource: &Resource) -> (Permission, Permission) {
        match resource {
            Resource::Organization | Resource::Project(_) => (
                Permission::ProjectsGetIamPolicy,
                Permission::ProjectsSetIamPolicy,
            ),
            Resource::Repository { .. } => (
                Permission::RepositoriesGetIamPolicy,
                Permission::RepositoriesSetIamPolicy,
            ),
            Resource::Secret { .. } => (
                Permission::SecretsGetIamPolicy,
                Permission::SecretsSetIamPolicy,
            ),
        }
    }

    /// The IAM policy set on `resource` itself (not the inherited ones).
    pub async fn get_policy(
        &self,
        caller: &Principal,
        resource: &Resource,
    ) -> Result<Policy, IamError> {
        let (get, _) = Self::policy_permissions(resource);
        self.check(caller, get, resource).await?;
        self.ensure_exists(resource).await?;
        Ok(self.store.get_policy(&resource.to_string()).await?)
    }

    /// Replace the IAM policy of `resource`. A non-empty `policy.etag` must be
    /// the current one, or the write is refused with [`IamError::StaleEtag`].
    pub async fn set_policy(
        &self,
        caller: &Principal,
        resource: &Resource,
        policy: Policy,
    ) -> Result<Policy, IamError> {
        let (_, set) = Self::policy_permissions(resource);
        self.check(caller, set, resource).await?;
        self.ensure_exists(resource).await?;
        policy.validate()?;
        let expected = (!policy.etag.is_empty()).then(|| policy.etag.clone());
        self.write_policy(&resource.to_string(), policy, expected.as_deref())
            .await
    }

    async fn write_policy(
        &self,
        name: &str,
        policy: Policy,
        expected_etag: Option<&str>,
    ) -> Result<Policy, IamError> {
        let mut policy = policy.normalized();
        policy.etag = new_etag();
        if self.store.set_policy(name, &policy, expected_etag).await? {
            if name == ORGANIZATION && has_other_owner(&policy) {
                self.bootstrap.retire();
            }
            Ok(policy)
        } else {
            Err(IamError::StaleEtag {
                resource: name.to_owned(),
                etag: expected_etag.unwrap_or(EMPTY_POLICY_ETAG).to_owned(),
            })
        }
    }

    /// Grant `role` on `resource` to `member` without a permission check: for
    /// the server itself (e.g. the creator of a project becomes its owner).
    pub async fn grant(
        &self,
        resource: &Resource,
        role: &str,
        member: Member,
    ) -> Result<(), IamError> {
        let name = resource.to_string();
        // Retry on a concurrent change: the grant is re-applied to the new policy.
        for _ in 0..5 {
            let mut policy = self.store.get_policy(&name).await?;
            if !policy.add_binding(role, member.clone())? {
                return Ok(());
            }
            let etag = policy.etag.clone();
            match self.write_policy(&name, policy, Some(&etag)).await {
                Err(IamError::StaleEtag { .. }) => continue,
                other => return other.map(|_| ()),
            }
        }
        Err(IamError::StaleEtag {
            resource: name,
            etag: String::new(),
        })
    }

    /// Forget the policy of a resource that was deleted, so that a new resource
    /// with the same name does not inherit its grants.
    pub async fn forget(&self, resource: &Resource) -> Result<(), IamError> {
        self.store.delete_policy(&resource.to_string()).await?;
        Ok(())
    }

    /// Which of `requested` permissions the caller holds on `resource`.
    /// Unknown permission names are refused.
    pub async fn test_permissions(
        &self,
        caller: &Principal,
        resource: &Resource,
        requested: &[String],
    ) -> Result<Vec<String>, IamError> {
        if let Some(bad) = requested.iter().find(|p| !permissions::is_known(p)) {
            return Err(IamError::Invalid(format!(
                "permission {bad:?} does not exist"
            )));
        }
        let mut held = Vec::new();
        for p in requested {
            if self.holds(caller, p, resource).await? {
                held.push(p.clone());
            }
        }
        Ok(held)
    }

    // ---- users ----

    /// Create a local user, with a password if given.
    pub async fn create_user(
        &self,
        caller: &Principal,
        email: &str,
        password: Option<&str>,
    ) -> Result<UserRecord, IamError> {
        self.check(
            caller,
            Permission::PrincipalsManage,
            &Resource::Organization,
        )
        .await?;
        if !iam::valid_email(email, false) {
            return Err(IamError::Invalid(format!(
                "user name {email:?} is invalid: use an e-mail address such as alice@example.com"
            )));
        }
        let hash = match password {
            Some(p) if p.len() < 8 => {
                return Err(IamError::Invalid(
                    "the password must have at least 8 characters".into(),
                ))
            }
            Some(p) => {
                let p = p.to_owned();
                Some(
                    tokio::task::spawn_blocking(move || authn::hash_password(&p))
                        .await
                        .map_err(|e| authn::AuthnError::Hash(e.to_string()))??,
                )
            }
            None => None,
        };
        match self.store.create_user(email, hash.as_deref()).await {
            Err(StoreError::AlreadyExists) => Err(IamError::AlreadyExists(format!("user:{email}"))),
            other => Ok(other?),
        }
    }

    /// One page of the users, by e-mail; the cursor is an e-mail.
    pub async fn list_users(
        &self,
        caller: &Principal,
        page: &PageRequest<String>,
    ) -> Result<Page<UserRecord, String>, IamError> {
        self.check(
            caller,
            Permission::PrincipalsManage,
            &Resource::Organization,
        )
        .await?;
        let rows = self
            .store
            .list_users(page.after.as_deref(), page.limit())
            .await?;
        Ok(Page::from_rows(rows, page, |u| u.email.clone()))
    }

    /// One user, by e-mail.
    pub async fn get_user(&self, caller: &Principal, email: &str) -> Result<UserRecord, IamError> {
        self.check(
            caller,
            Permission::PrincipalsManage,
            &Resource::Organization,
        )
        .await?;
        self.store
            .get_user(email)
            .await?
            .ok_or_else(|| IamError::NotFound(format!("user:{email}")))
    }

    /// Delete a user; their tokens stop working.
    pub async fn delete_user(&self, caller: &Principal, email: &str) -> Result<(), IamError> {
        self.check(
            caller,
            Permission::PrincipalsManage,
            &Resource::Organization,
        )
        .await?;
        let deleted = self.store.delete_user(email).await;
        // The user's tokens are revoked (and registry tokens die with the
        // user) even if the call failed after committing.
        self.verified.invalidate_all();
        if !deleted? {
            return Err(IamError::NotFound(format!("user:{email}")));
        }
        Ok(())
    }

    // ---- service accounts ----

    /// Create a service account `account_id@project.iam.entrepot`.
    pub async fn create_service_account(
        &self,
        caller: &Principal,
        project: &str,
        account_id: &str,
        display_name: &str,
    ) -> Result<ServiceAccountRecord, IamError> {
        let resource = Resource::Project(project.to_owned());
        self.check(caller, Permission::PrincipalsManage, &resource)
            .await?;
        self.ensure_exists(&resource).await?;
        let valid = (6..=30).contains(&account_id.len())
            && account_id.starts_with(|c: char| c.is_ascii_lowercase())
            && !account_id.ends_with('-')
            && account_id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(IamError::Invalid(format!(
                "service account id {account_id:?} is invalid: use 6-30 lower-case letters, digits and hyphens, starting with a letter"
            )));
        }
        let email = iam::service_account_email(project, account_id);
        if iam::is_service_agent(&email) {
            return Err(IamError::Invalid(format!(
                "{email} would look like a service agent; choose another project for service accounts"
            )));
        }
        let account = ServiceAccountRecord {
            email,
            project: project.to_owned(),
            account_id: account_id.to_owned(),
            display_name: display_name.to_owned(),
            create_time: rfc3339(now()),
        };
        match self.store.create_service_account(&account).await {
            Err(StoreError::AlreadyExists) => Err(IamError::AlreadyExists(format!(
                "serviceAccount:{}",
                account.email
            ))),
            other => other.map(|()| account).map_err(Into::into),
        }
    }

    /// One page of the service accounts of a project, by e-mail; the cursor
    /// is an e-mail.
    pub async fn list_service_accounts(
        &self,
        caller: &Principal,
        project: &str,
        page: &PageRequest<String>,
    ) -> Result<Page<ServiceAccountRecord, String>, IamError> {
        let resource = Resource::Project(project.to_owned());
        self.check(caller, Permission::PrincipalsManage, &resource)
            .await?;
        self.ensure_exists(&resource).await?;
        let rows = self
            .store
            .list_service_accounts(project, page.after.as_deref(), page.limit())
            .await?;
        Ok(Page::from_rows(rows, page, |a| a.email.clone()))
    }

    /// One service account of a project, by e-mail or account id.
    pub async fn get_service_account(
        &self,
        caller: &Principal,
        project: &str,
        account: &str,
    ) -> Result<ServiceAccountRecord, IamError> {
        let resource = Resource::Project(project.to_owned());
        self.check(caller, Permission::PrincipalsManage, &resource)
            .await?;
        self.ensure_exists(&resource).await?;
        let email = if account.contains('@') {
            account.to_owned()
        } else {
            iam::service_account_email(project, account)
        };
        match self.store.get_service_account(&email).await? {
            Some(a) if a.project == project => Ok(a),
            _ => Err(IamError::NotFound(format!("serviceAccount:{account}"))),
        }
    }

    /// Delete a service account of a project; its tokens stop working.
    pub async fn delete_service_account(
        &self,
        caller: &Principal,
        project: &str,
        email: &str,
    ) -> Result<(), IamError> {
        let resource = Resource::Project(project.to_owned());
        self.check(caller, Permission::PrincipalsManage, &resource)
            .await?;
        match self.store.get_service_account(email).await? {
            Some(a) if a.project == project => {
                let deleted = self.store.delete_service_account(email).await;
                // Its tokens are revoked, its registry tokens die with it.
                self.verified.invalidate_all();
                deleted?;
                Ok(())
            }
            _ => Err(IamError::NotFound(format!("serviceAccount:{email}"))),
        }
    }

    // ---- tokens ----

    /// May `caller` manage the credentials of `member`? Yes for oneself (unless
    /// through a read-only token), else with `entrepot.principals.manage` on the
    /// organisation (users) or the service account's project.
    async fn check_manage(&self, caller: &Principal, member: &Member) -> Result<(), IamError> {
        if let Principal::RegistryToken { principal, .. } = caller {
            return Err(AuthError::Denied {
                principal: format!("{principal} (registry token)"),
                permission: Permission::PrincipalsManage.as_str(),
                resource: member.to_string(),
            }
            .into());
        }
        if let Principal::ReadOnly(inner) = caller {
            return Err(AuthError::Denied {
                principal: format!("{inner} (read-only token)"),
                permission: Permission::PrincipalsManage.as_str(),
                resource: member.to_string(),
            }
            .into());
        }
        if member_of(caller).as_ref() == Some(member) {
            return Ok(());
        }
        let resource = match member {
            Member::ServiceAccount(e) => match self.store.get_service_account(e).await? {
                Some(a) => Resource::Project(a.project),
                None => Resource::Organization,
            },
            _ => Resource::Organization,
        };
        self.check(caller, Permission::PrincipalsManage, &resource)
            .await?;
        Ok(())
    }

    /// Create a personal access token for the caller or, with the right to
    /// manage principals, for another user or service account.
    pub async fn create_token(
        &self,
        caller: &Principal,
        new: NewToken,
    ) -> Result<CreatedToken, IamError> {
        let Some(me) = member_of(caller) else {
            return Err(
                AuthError::Unauthenticated("creating a token requires credentials".into()).into(),
            );
        };
        let owner = new.principal.clone().unwrap_or(me);
        self.check_manage(caller, &owner).await?;
        let exists = match &owner {
            Member::User(e) => self.store.get_user(e).await?.is_some(),
            Member::ServiceAccount(e) if iam::is_service_agent(e) => {
                return Err(IamError::Invalid(format!(
                    "{owner} is a service agent: entrepot acts as it itself, it has no tokens; grant it roles instead"
                )))
            }
            Member::ServiceAccount(e) => self.store.get_service_account(e).await?.is_some(),
            _ => {
                return Err(IamError::Invalid(format!(
                    "tokens belong to one user or service account, not {owner}"
                )))
            }
        };
        if !exists {
            return Err(IamError::NotFound(owner.to_string()));
        }
        if let Some(secs) = new.expires_in {
            if secs <= 0 {
                return Err(IamError::Invalid(
                    "the token lifetime must be positive".into(),
                ));
            }
        }
        self.insert_token(&owner, new).await
    }

    async fn insert_token(&self, owner: &Member, new: NewToken) -> Result<CreatedToken, IamError> {
        let token = authn::new_access_token();
        let created = now();
        let record = TokenRecord {
            id: authn::new_token_id(),
            principal: owner.to_string(),
            token_hash: authn::token_hash(token.expose()),
            description: new.description,
            expire_time: new
                .expires_in
                .map(|s| created.unix_timestamp().saturating_add(s)),
            read_only: new.read_only,
            revoked: false,
            create_time: rfc3339(created),
            last_used_time: None,
        };
        self.store.create_token(&record).await?;
        Ok(CreatedToken { record, token })
    }

    /// One page of the tokens of `of` (default: the caller's own), newest
    /// first; the cursor is a token's [`TokenKey`].
    pub async fn list_tokens(
        &self,
        caller: &Principal,
        of: Option<Member>,
        page: &PageRequest<TokenKey>,
    ) -> Result<Page<TokenRecord, TokenKey>, IamError> {
        let Some(me) = member_of(caller) else {
            return Err(
                AuthError::Unauthenticated("listing tokens requires credentials".into()).into(),
            );
        };
        let owner = of.unwrap_or(me);
        if member_of(caller).as_ref() != Some(&owner) {
            self.check_manage(caller, &owner).await?;
        }
        let rows = self
            .store
            .list_tokens(&owner.to_string(), page.after.as_ref(), page.limit())
            .await?;
        Ok(Page::from_rows(rows, page, TokenRecord::key))
    }

    /// One of the caller's own tokens, by id.
    pub async fn get_token(&self, caller: &Principal, id: &str) -> Result<TokenRecord, IamError> {
        let Some(me) = member_of(caller) else {
            return Err(
                AuthError::Unauthenticated("reading a token requires credentials".into()).into(),
            );
        };
        match self.store.get_token(id).await? {
            Some(token) if token.principal == me.to_string() => Ok(token),
            _ => Err(IamError::NotFound(format!("token {id}"))),
        }
    }

    /// Revoke a token by id.
    pub async fn revoke_token(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<TokenRecord, IamError> {
        let not_found = || IamError::NotFound(format!("token {id}"));
        let record = self.store.get_token(id).await?.ok_or_else(not_found)?;
        let owner: Member = record
            .principal
            .parse()
            .map_err(|e: DomainIamError| StoreError::Corrupt(e.to_string()))?;
        if member_of(caller).is_none() {
            return Err(
                AuthError::Unauthenticated("revoking a token requires credentials".into()).into(),
            );
        }
        // Someone who may not manage the owner learns nothing about the token.
        self.check_manage(caller, &owner)
            .await
            .map_err(|e| match e {
                IamError::Auth(AuthError::Denied { .. }) => not_found(),
                e => e,
            })?;
        let revoked = self.store.revoke_token(id).await;
        // The token, and the registry tokens exchanged for it, stop now.
        self.verified.invalidate_all();
        revoked?;
        Ok(TokenRecord {
            revoked: true,
            ..record
        })
    }

    /// The permissions `principal` holds on `resource`, among `candidates`.
    pub async fn granted(
        &self,
        principal: &Principal,
        resource: &Resource,
        candidates: &[Permission],
    ) -> Result<BTreeSet<&'static str>, IamError> {
        let mut held = BTreeSet::new();
        for p in candidates {
            if self.holds(principal, p.as_str(), resource).await? {
                held.insert(p.as_str());
            }
        }
        Ok(held)
    }
}

/// Whether the organisation policy names an owner besides the bootstrap admin.
fn has_other_owner(org: &Policy) -> bool {
    let admin = Member::User(BOOTSTRAP_ADMIN.into());
    org.bindings
        .iter()
        .any(|b| b.role == OWNER && b.members.iter().any(|m| *m != admin))
}

/// A token's last use (RFC 3339) in unix seconds; `i64::MIN` if never or
/// unreadable, so that the next use is recorded.
fn last_use_unix(last: Option<&str>) -> i64 {
    last.and_then(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    })
    .map_or(i64::MIN, |t| t.unix_timestamp())
}

fn new_etag() -> String {
    format!("BwY{}", authn::new_token_id())
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

#[cfg(test)]
mod tests {
    use super::*;
    use entrepot_domain::iam::{
        ARTIFACTREGISTRY_READER, ARTIFACTREGISTRY_WRITER, SECRETMANAGER_SECRET_ACCESSOR,
    };
    use entrepot_storage::testing::memory_stores;

    async fn service() -> (IamService, Arc<dyn MetadataStore>) {
        let store = memory_stores().await.unwrap();
        let iam = IamService::new(store.iam, store.metadata.clone(), &[7u8; 32]);
        (iam, store.metadata)
    }

    fn secret(s: &str) -> Resource {
        Resource::Secret {
            project: "demo".into(),
            secret: s.into(),
        }
    }

    fn user(e: &str) -> Principal {
        Principal::User(e.into())
    }

    #[test]
    fn every_permission_name_is_in_the_domain_catalogue() {
        for p in Permission::ALL {
            assert!(permissions::is_known(p.as_str()), "{}", p.as_str());
            assert_eq!(p.as_str().parse::<Permission>(), Ok(*p));
        }
        assert_eq!(Permission::ALL.len(), 29);
    }

    #[tokio::test]
    async fn bootstrap_makes_an_owner_once_and_its_token_works() {
        let (iam, _) = service().await;
        let token = iam
            .bootstrap()
            .await
            .unwrap()
            .expect("first start creates a token");
        assert!(iam.bootstrap().await.unwrap().is_none());
        let who = iam
            .authenticate(Some(&Credentials::Bearer(token.expose().into())))
            .await
            .unwrap();
        assert_eq!(who, user("admin"));
        let basic = Credentials::Basic {
            username: "admin".into(),
            password: token.expose().into(),
        };
        assert_eq!(iam.authenticate(Some(&basic)).await.unwrap(), user("admin"));
        let wrong_user = Credentials::Basic {
            username: "mallory".into(),
            password: token.expose().into(),
        };
        assert!(iam.authenticate(Some(&wrong_user)).await.is_err());
        iam.authorize(&who, Permission::PrincipalsManage, &Resource::Organization)
            .await
            .unwrap();
        iam.authorize(&who, Permission::VersionsAccess, &secret("s"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn anonymous_is_unauthenticated_and_others_are_denied() {
        let (iam, _) = service().await;
        let repo = Resource::Repository {
            project: "demo".into(),
            repository: "r".into(),
        };
        assert!(matches!(
            iam.authorize(&Principal::Anonymous, Permission::DownloadArtifacts, &repo)
                .await,
            Err(AuthError::Unauthenticated(_))
        ));
        assert!(matches!(
            iam.authorize(&user("bob"), Permission::DownloadArtifacts, &repo)
                .await,
            Err(AuthError::Denied { .. })
        ));
        iam.grant(&repo, ARTIFACTREGISTRY_READER, Member::AllUsers)
            .await
            .unwrap();
        iam.authorize(&Principal::Anonymous, Permission::DownloadArtifacts, &repo)
            .await
            .unwrap();
        assert!(iam
            .authorize(&Principal::Anonymous, Permission::UploadArtifacts, &repo)
            .await
            .is_err());
        let project = Resource::Project("demo".into());
        iam.grant(
            &project,
            ARTIFACTREGISTRY_WRITER,
            Member::AllAuthenticatedUsers,
        )
        .await
        .unwrap();
        iam.authorize(&user("bob"), Permission::UploadArtifacts, &repo)
            .await
            .unwrap();
        assert!(iam
            .authorize(&Principal::Anonymous, Permission::UploadArtifacts, &repo)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn secrets_inherit_project_bindings_and_have_their_own() {
        let (iam, _) = service().await;
        let agent = service_agent(100000000001);
        assert_eq!(
            agent.to_string(),
            "serviceAccount:service-100000000001@entrepot-agent.iam.entrepot"
        );
        assert!(iam
            .authorize(&agent, Permission::VersionsAccess, &secret("hub"))
            .await
            .is_err());
        iam.grant(
            &secret("hub"),
            SECRETMANAGER_SECRET_ACCESSOR,
            member_of(&agent).unwrap(),
        )
        .await
        .unwrap();
        iam.authorize(&agent, Permission::VersionsAccess, &secret("hub"))
            .await
            .unwrap();
        assert!(iam
            .authorize(&agent, Permission::VersionsAccess, &secret("other"))
            .await
            .is_err());
        iam.grant(
            &Resource::Project("demo".into()),
            SECRETMANAGER_SECRET_ACCESSOR,
            Member::User("carol".into()),
        )
        .await
        .unwrap();
        iam.authorize(&user("carol"), Permission::VersionsAccess, &secret("other"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn read_only_tokens_only_read_and_revoked_tokens_stop() {
        let (iam, _) = service().await;
        iam.bootstrap().await.unwrap();
        let admin = user("admin");
        let created = iam
            .create_token(
                &admin,
                NewToken {
                    read_only: true,
                    ..NewToken::default()
                },
            )
            .await
            .unwrap();
        let bearer = Credentials::Bearer(created.token.expose().into());
        let ro = iam.authenticate(Some(&bearer)).await.unwrap();
        assert_eq!(ro, Principal::ReadOnly(Box::new(admin.clone())));
        let repo = Resource::Repository {
            project: "demo".into(),
            repository: "r".into(),
        };
        iam.authorize(&ro, Permission::DownloadArtifacts, &repo)
            .await
            .unwrap();
        let denied = iam
            .authorize(&ro, Permission::UploadArtifacts, &repo)
            .await
            .unwrap_err();
        assert!(denied.to_string().contains("read-only"), "{denied}");
        assert!(iam.create_token(&ro, NewToken::default()).await.is_err());

        // A registry token exchanged for it dies with it.
        let who = iam.authenticate_detailed(Some(&bearer)).await.unwrap();
        let jwt = iam.issue_registry_token(&who, Vec::new()).unwrap();
        let jwt = Credentials::Bearer(jwt.token.expose().into());
        assert_eq!(
            iam.authenticate(Some(&jwt)).await.unwrap(),
            Principal::RegistryToken {
                principal: Box::new(ro),
                access: Vec::new()
            }
        );
        iam.revoke_token(&admin, &created.record.id).await.unwrap();
        assert!(iam.authenticate(Some(&bearer)).await.is_err());
        assert!(iam.authenticate(Some(&jwt)).await.is_err());
    }

    #[tokio::test]
    async fn passwords_authenticate_users() {
        let (iam, _) = service().await;
        iam.bootstrap().await.unwrap();
        iam.create_user(&user("admin"), "dev@example.com", Some("s3cret-pass"))
            .await
            .unwrap();
        let ok = Credentials::Basic {
            username: "dev@example.com".into(),
            password: "s3cret-pass".into(),
        };
        assert_eq!(
            iam.authenticate(Some(&ok)).await.unwrap(),
            user("dev@example.com")
        );
        let bad = Credentials::Basic {
            username: "dev@example.com".into(),
            password: "nope-nope".into(),
        };
        assert!(matches!(
            iam.authenticate(Some(&bad)).await,
            Err(AuthError::Unauthenticated(_))
        ));
    }

    /// A service whose credential cache keeps entries for an hour: what
    /// expires them in these tests is invalidation, never the clock.
    async fn service_with_lasting_cache() -> (IamService, entrepot_storage::Stores) {
        let store = memory_stores().await.unwrap();
        let iam = IamService::new(store.iam.clone(), store.metadata.clone(), &[7u8; 32]);
        let cache = CredentialCache::new(1024, std::time::Duration::from_secs(3600));
        (iam.with_credential_cache(cache), store)
    }

    fn counter(iam: &IamService, name: &str) -> u64 {
        let text = iam.render_metrics();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    }

    fn hits(iam: &IamService) -> u64 {
        counter(iam, "entrepot_credential_cache_hits_total")
    }

    #[tokio::test]
    async fn a_checked_token_is_answered_from_memory_with_the_same_result() {
        let (iam, store) = service_with_lasting_cache().await;
        iam.bootstrap().await.unwrap();
        let admin = user("admin");
        let created = iam
            .create_token(
                &admin,
                NewToken {
                    read_only: true,
                    ..NewToken::default()
                },
            )
            .await
            .unwrap();
        let bearer = Credentials::Bearer(created.token.expose().into());
        let first = iam.authenticate_detailed(Some(&bearer)).await.unwrap();
        assert_eq!(hits(&iam), 0);
        let jwt = iam.issue_registry_token(&first, Vec::new()).unwrap();
        let jwt = Credentials::Bearer(jwt.token.expose().into());
        let jwt_first = iam.authenticate_detailed(Some(&jwt)).await.unwrap();
        // Revoked behind the service's back (as another node would): the
        // cached checks still answer, which shows they do not read the store.
        store.iam.revoke_token(&created.record.id).await.unwrap();
        assert_eq!(
            iam.authenticate_detailed(Some(&bearer)).await.unwrap(),
            first
        );
        assert_eq!(
            iam.authenticate_detailed(Some(&jwt)).await.unwrap(),
            jwt_first
        );
        assert_eq!(hits(&iam), 2);
        assert_eq!(
            first.principal,
            Principal::ReadOnly(Box::new(admin.clone()))
        );
        assert!(matches!(
            jwt_first.principal,
            Principal::RegistryToken { ref principal, .. } if **principal == first.principal
        ));
        // The same token under Basic is another entry (the user name is part
        // of what is checked), so it is checked against the store: revoked.
        let basic = Credentials::Basic {
            username: "_token".into(),
            password: created.token.expose().into(),
        };
        assert!(iam.authenticate(Some(&basic)).await.is_err());
    }

    #[tokio::test]
    async fn revoking_or_deleting_on_this_node_stops_a_cached_token_at_once() {
        let (iam, store) = service_with_lasting_cache().await;
        iam.bootstrap().await.unwrap();
        store.metadata.create_project("demo").await.unwrap();
        let admin = user("admin");
        iam.create_user(&admin, "dev@example.com", None)
            .await
            .unwrap();
        iam.create_service_account(&admin, "demo", "ci-robot", "")
            .await
            .unwrap();
        let token_of = |member: &str| {
            let iam = iam.clone();
            let member: Member = member.parse().unwrap();
            async move {
                let t = iam
                    .create_token(
                        &user("admin"),
                        NewToken {
                            principal: Some(member),
                            ..NewToken::default()
                        },
                    )
                    .await
                    .unwrap();
                (Credentials::Bearer(t.token.expose().into()), t.record.id)
            }
        };
        let (pat, pat_id) = token_of("user:admin").await;
        let (dev, _) = token_of("user:dev@example.com").await;
        let (robot, _) = token_of("serviceAccount:ci-robot@demo.iam.entrepot").await;
        let (base, _) = token_of("user:admin").await;
        let who = iam.authenticate_detailed(Some(&base)).await.unwrap();
        let jwt = iam.issue_registry_token(&who, Vec::new()).unwrap();
        let jwt = Credentials::Bearer(jwt.token.expose().into());
        let base_id = who.token_id.clone().unwrap();
        // Each is used twice: checked, then answered from the cache.
        for c in [&pat, &dev, &robot, &jwt] {
            iam.authenticate(Some(c)).await.unwrap();
            iam.authenticate(Some(c)).await.unwrap();
        }
        assert_eq!(hits(&iam), 4);

        iam.revoke_token(&admin, &pat_id).await.unwrap();
        assert!(iam.authenticate(Some(&pat)).await.is_err());
        iam.delete_user(&admin, "dev@example.com").await.unwrap();
        assert!(iam.authenticate(Some(&dev)).await.is_err());
        iam.delete_service_account(&admin, "demo", "ci-robot@demo.iam.entrepot")
            .await
            .unwrap();
        assert!(iam.authenticate(Some(&robot)).await.is_err());
        iam.authenticate(Some(&jwt)).await.unwrap();
        iam.revoke_token(&admin, &base_id).await.unwrap();
        assert!(iam.authenticate(Some(&jwt)).await.is_err());
        assert_eq!(
            counter(&iam, "entrepot_credential_cache_invalidations_total"),
            4
        );
    }

    #[tokio::test]
    async fn password_logins_are_never_cached() {
        let (iam, _) = service_with_lasting_cache().await;
        iam.bootstrap().await.unwrap();
        iam.create_user(&user("admin"), "dev@example.com", Some("s3cret-pass"))
            .await
            .unwrap();
        let ok = Credentials::Basic {
            username: "dev@example.com".into(),
            password: "s3cret-pass".into(),
        };
        let checks = || counter(&iam, "entrepot_password_verifications_total");
        let before = checks();
        for _ in 0..2 {
            iam.authenticate(Some(&ok)).await.unwrap();
        }
        assert_eq!(checks() - before, 2, "each login pays the password check");
        assert_eq!(hits(&iam), 0);
        assert_eq!(counter(&iam, "entrepot_credential_cache_entries"), 0);
    }

    struct OneSecret;

    #[async_trait]
    impl SecretDirectory for OneSecret {
        async fn secret_exists(&self, project: &str, secret: &str) -> Result<bool, StoreError> {
            Ok(project == "demo" && secret == "hub")
        }
    }

    #[tokio::test]
    async fn policies_of_missing_secrets_are_not_found() {
        let (iam, store) = service().await;
        let iam = iam.with_secret_directory(Arc::new(OneSecret));
        iam.bootstrap().await.unwrap();
        store.create_project("demo").await.unwrap();
        let admin = user("admin");
        iam.get_policy(&admin, &secret("hub")).await.unwrap();
        assert!(matches!(
            iam.get_policy(&admin, &secret("gone")).await,
            Err(IamError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn stale_etags_are_refused() {
        let (iam, store) = service().await;
        iam.bootstrap().await.unwrap();
        store.create_project("demo").await.unwrap();
        let admin = user("admin");
        let project = Resource::Project("demo".into());
        let read = iam.get_policy(&admin, &project).await.unwrap();
        let mut first = read.clone();
        first
            .add_binding(ARTIFACTREGISTRY_READER, Member::AllUsers)
            .unwrap();
        let written = iam.set_policy(&admin, &project, first).await.unwrap();
        assert_ne!(written.etag, read.etag);
        let mut second = read;
        second
            .add_binding(ARTIFACTREGISTRY_WRITER, Member::AllUsers)
            .unwrap();
        let err = iam.set_policy(&admin, &project, second).await.unwrap_err();
        assert!(matches!(err, IamError::StaleEtag { .. }), "{err}");
        let mut bad = written;
        bad.bindings[0].role = "roles/superuser".into();
        assert!(matches!(
            iam.set_policy(&admin, &project, bad).await,
            Err(IamError::Invalid(_))
        ));
    }
}
