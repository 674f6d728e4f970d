//! Tokens: personal access tokens of users and service accounts, and the
//! registry tokens the token endpoint issues.

use entrepot_domain::iam::{self, Member};
use entrepot_domain::token_id::TokenId;
use entrepot_storage::{TokenKey, TokenRecord};

use super::authenticate::Authenticated;
use super::{member_of, now, rfc3339, IamError, IamService};
use crate::access::{AuthError, Permission, Principal, Resource};
use crate::authn::{self, AccessEntry, RegistryClaims, SecretString};
use crate::paging::{Page, PageRequest};

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

impl IamService {
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
            jti: authn::new_token_id().to_string(),
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
                Some(a) => Resource::Project(a.project.to_string()),
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

    pub(super) async fn insert_token(
        &self,
        owner: &Member,
        new: NewToken,
    ) -> Result<CreatedToken, IamError> {
        let token = authn::new_access_token();
        let created = now();
        let record = TokenRecord {
            id: authn::new_token_id(),
            principal: owner.clone(),
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
            .list_tokens(&owner, page.after.as_ref(), page.limit())
            .await?;
        Ok(Page::from_rows(rows, page, TokenRecord::key))
    }

    /// One of the caller's own tokens, by id.
    pub async fn get_token(
        &self,
        caller: &Principal,
        id: &TokenId,
    ) -> Result<TokenRecord, IamError> {
        let Some(me) = member_of(caller) else {
            return Err(
                AuthError::Unauthenticated("reading a token requires credentials".into()).into(),
            );
        };
        match self.store.get_token(id).await? {
            Some(token) if token.principal == me => Ok(token),
            _ => Err(IamError::NotFound(format!("token {id}"))),
        }
    }

    /// Revoke a token by id.
    pub async fn revoke_token(
        &self,
        caller: &Principal,
        id: &TokenId,
    ) -> Result<TokenRecord, IamError> {
        let not_found = || IamError::NotFound(format!("token {id}"));
        let record = self.store.get_token(id).await?.ok_or_else(not_found)?;
        let owner = record.principal.clone();
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{AccessControl, Credentials};
    use crate::iam::test_support::{service, user};

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
}
