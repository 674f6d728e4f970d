//! The IAM store: users, service accounts, personal access tokens and IAM
//! policies. A backend keeps them in the same database as the rest of the
//! metadata: deleting a principal or a secret changes policies in the same
//! transaction.

use async_trait::async_trait;
use entrepot_domain::iam::{Member, Policy};
use entrepot_domain::resource::Resource;
use entrepot_domain::token_id::TokenId;
use entrepot_domain::ProjectId;

use crate::metadata::StoreError;

/// A local user.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// E-mail (or local name such as `admin`).
    pub email: String,
    /// argon2id PHC string, if the user has a password.
    pub password_hash: Option<String>,
    /// RFC 3339 creation time.
    pub create_time: String,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("email", &self.email)
            .field("has_password", &self.password_hash.is_some())
            .field("create_time", &self.create_time)
            .finish()
    }
}

/// A service account of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountRecord {
    /// `NAME@PROJECT.iam.entrepot`.
    pub email: String,
    /// Owning project.
    pub project: ProjectId,
    /// The `NAME` part.
    pub account_id: String,
    /// Free text.
    pub display_name: String,
    /// RFC 3339 creation time.
    pub create_time: String,
}

/// A personal access token, without the token: only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public id, used to list and revoke.
    pub id: TokenId,
    /// The owner: a user or a service account.
    pub principal: Member,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Free text.
    pub description: String,
    /// Unix seconds after which the token is refused; `None`: never expires.
    pub expire_time: Option<i64>,
    /// Only read permissions.
    pub read_only: bool,
    /// Revoked tokens are refused.
    pub revoked: bool,
    /// RFC 3339 creation time.
    pub create_time: String,
    /// RFC 3339 time of the last successful use.
    pub last_used_time: Option<String>,
}

/// Where a token sits in a listing of tokens (newest first, ties by id): the
/// keyset cursor of a page of tokens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenKey {
    /// RFC 3339 creation time, as stored.
    pub create_time: String,
    /// Token id.
    pub id: TokenId,
}

impl TokenRecord {
    /// This token's place in a listing.
    pub fn key(&self) -> TokenKey {
        TokenKey {
            create_time: self.create_time.clone(),
            id: self.id.clone(),
        }
    }
}

/// Storage of IAM state. Every method is one atomic step.
#[async_trait]
pub trait IamStore: Send + Sync + 'static {
    /// Create a user; `AlreadyExists` if it does.
    async fn create_user(
        &self,
        email: &str,
        password_hash: Option<&str>,
    ) -> Result<UserRecord, StoreError>;
    /// Look a user up.
    async fn get_user(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Users by e-mail, those after `after` (all with `None`), at most
    /// `limit`: one keyset page, read along the primary key.
    async fn list_users(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError>;
    /// Delete a user, revoke their tokens and remove them from every IAM
    /// policy; false if absent.
    async fn delete_user(&self, email: &str) -> Result<bool, StoreError>;

    /// Create a service account; `AlreadyExists` if it does.
    async fn create_service_account(
        &self,
        account: &ServiceAccountRecord,
    ) -> Result<(), StoreError>;
    /// Look a service account up by e-mail.
    async fn get_service_account(
        &self,
        email: &str,
    ) -> Result<Option<ServiceAccountRecord>, StoreError>;
    /// Service accounts of a project by e-mail, those after `after` (all with
    /// `None`), at most `limit`: one keyset page, read along an index on
    /// (project, e-mail).
    async fn list_service_accounts(
        &self,
        project: &ProjectId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ServiceAccountRecord>, StoreError>;
    /// Delete a service account, revoke its tokens and remove it from every
    /// IAM policy; false if absent.
    async fn delete_service_account(&self, email: &str) -> Result<bool, StoreError>;

    /// Store a new token.
    async fn create_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    /// The token whose hash is `token_hash`.
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// A token by id.
    async fn get_token(&self, id: &TokenId) -> Result<Option<TokenRecord>, StoreError>;
    /// Tokens of one principal, newest first (ties by id), those after `after`
    /// in that order (all with `None`), at most `limit`: one keyset page, read
    /// along an index on (principal, creation time, id).
    async fn list_tokens(
        &self,
        principal: &Member,
        after: Option<&TokenKey>,
        limit: u32,
    ) -> Result<Vec<TokenRecord>, StoreError>;
    /// Mark a token revoked; false if absent or already revoked.
    async fn revoke_token(&self, id: &TokenId) -> Result<bool, StoreError>;
    /// Record a successful use.
    async fn touch_token(&self, id: &TokenId) -> Result<(), StoreError>;

    /// The policy of a resource; the empty policy (etag `ACAB`) if none was set.
    async fn get_policy(&self, resource: &Resource) -> Result<Policy, StoreError>;
    /// Replace the policy of a resource with `policy` (its etag is the new one)
    /// if the stored etag is `expected_etag` (`None`: unconditionally). Compare and
    /// swap in one statement; false if the etag did not match.
    async fn set_policy(
        &self,
        resource: &Resource,
        policy: &Policy,
        expected_etag: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Drop the policy of a deleted resource; false if it had none.
    async fn delete_policy(&self, resource: &Resource) -> Result<bool, StoreError>;
}
