//! Principals: local users and service accounts, and the member string a
//! principal goes by in policies.

use entrepot_domain::iam::{self, Member};
use entrepot_domain::ProjectId;
use entrepot_storage::{ServiceAccountRecord, StoreError, UserRecord};

use super::{now, rfc3339, IamError, IamService};
use crate::access::{Permission, Principal, Resource};
use crate::authn;
use crate::paging::{Page, PageRequest};

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

impl IamService {
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
        project: &ProjectId,
        account_id: &str,
        display_name: &str,
    ) -> Result<ServiceAccountRecord, IamError> {
        let resource = Resource::Project(project.to_string());
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
        let email = iam::service_account_email(project.as_str(), account_id);
        if iam::is_service_agent(&email) {
            return Err(IamError::Invalid(format!(
                "{email} would look like a service agent; choose another project for service accounts"
            )));
        }
        let account = ServiceAccountRecord {
            email,
            project: project.clone(),
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
        project: &ProjectId,
        page: &PageRequest<String>,
    ) -> Result<Page<ServiceAccountRecord, String>, IamError> {
        let resource = Resource::Project(project.to_string());
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
        project: &ProjectId,
        account: &str,
    ) -> Result<ServiceAccountRecord, IamError> {
        let resource = Resource::Project(project.to_string());
        self.check(caller, Permission::PrincipalsManage, &resource)
            .await?;
        self.ensure_exists(&resource).await?;
        let email = if account.contains('@') {
            account.to_owned()
        } else {
            iam::service_account_email(project.as_str(), account)
        };
        match self.store.get_service_account(&email).await? {
            Some(a) if a.project == *project => Ok(a),
            _ => Err(IamError::NotFound(format!("serviceAccount:{account}"))),
        }
    }

    /// Delete a service account of a project; its tokens stop working.
    pub async fn delete_service_account(
        &self,
        caller: &Principal,
        project: &ProjectId,
        email: &str,
    ) -> Result<(), IamError> {
        let resource = Resource::Project(project.to_string());
        self.check(caller, Permission::PrincipalsManage, &resource)
            .await?;
        match self.store.get_service_account(email).await? {
            Some(a) if a.project == *project => {
                let deleted = self.store.delete_service_account(email).await;
                // Its tokens are revoked, its registry tokens die with it.
                self.verified.invalidate_all();
                deleted?;
                Ok(())
            }
            _ => Err(IamError::NotFound(format!("serviceAccount:{email}"))),
        }
    }
}
