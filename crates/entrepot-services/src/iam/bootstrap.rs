//! The bootstrap admin: the first owner, created on first start, and the
//! moment its token has served its purpose.

use entrepot_domain::iam::{Member, Policy, OWNER};
use entrepot_domain::token_id::TokenId;
use entrepot_storage::StoreError;

use super::tokens::NewToken;
use super::{IamError, IamService, BOOTSTRAP_ADMIN};
use crate::access::Resource;
use crate::authn::{self, SecretString};

/// Watches for the moment the bootstrap admin token has served its purpose:
/// its first successful use, or another owner of the organisation.
#[derive(Default)]
pub(super) struct BootstrapWatch {
    token_id: std::sync::Mutex<Option<TokenId>>,
    retired: tokio::sync::Notify,
}

impl BootstrapWatch {
    pub(super) fn watch(&self, id: TokenId) {
        *self.token_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
    }

    /// Signal once, whoever waits (a stored permit if nobody waits yet).
    pub(super) fn retire(&self) {
        let was = self
            .token_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if was.is_some() {
            self.retired.notify_one();
        }
    }

    pub(super) fn used(&self, id: &TokenId) {
        let watched = self
            .token_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            == Some(id);
        if watched {
            self.retire();
        }
    }
}

impl IamService {
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
        let org = self.store.get_policy(&Resource::Organization).await?;
        Ok(has_other_owner(&org))
    }

    /// On first start (no user and no organisation policy yet), create
    /// `user:admin` with `roles/owner` on the organisation and return a token for
    /// it; `None` on later starts.
    pub async fn bootstrap(&self) -> Result<Option<SecretString>, IamError> {
        let org = self.store.get_policy(&Resource::Organization).await?;
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
        self.write_policy(&Resource::Organization, policy, None)
            .await?;
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
}

/// Whether the organisation policy names an owner besides the bootstrap admin.
pub(super) fn has_other_owner(org: &Policy) -> bool {
    let admin = Member::User(BOOTSTRAP_ADMIN.into());
    org.bindings
        .iter()
        .any(|b| b.role == OWNER && b.members.iter().any(|m| *m != admin))
}

#[cfg(test)]
mod tests {
    use crate::access::{AccessControl, Credentials, Permission, Resource};
    use crate::iam::test_support::{secret, service, user};

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
}
