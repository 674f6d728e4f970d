//! IAM policies: reading and replacing the policy set on a resource (checked
//! against its etag), and the server's own grants and deletions.

use async_trait::async_trait;
use entrepot_domain::iam::{policy_etag, Member, Policy, EMPTY_POLICY_ETAG};
use entrepot_domain::{ProjectId, RepositoryName};
use entrepot_storage::StoreError;

use super::bootstrap::has_other_owner;
use super::{IamError, IamService};
use crate::access::{Permission, Principal, Resource};

/// Tells the IAM service whether a secret exists, so that IAM calls on a
/// missing secret answer "not found". Implemented by the secret manager.
#[async_trait]
pub trait SecretDirectory: Send + Sync + 'static {
    /// Whether `projects/{project}/secrets/{secret}` exists.
    async fn secret_exists(&self, project: &str, secret: &str) -> Result<bool, StoreError>;
}

impl IamService {
    /// Whether `resource` (and the project it lives in) exists.
    pub(super) async fn ensure_exists(&self, resource: &Resource) -> Result<(), IamError> {
        let project = match resource {
            Resource::Organization => return Ok(()),
            Resource::Project(p) => p,
            Resource::Repository {
                project,
                repository,
            } => {
                // An id that does not parse names no repository.
                let name = project
                    .parse()
                    .and_then(|p| Ok(RepositoryName::new(p, repository.parse()?)));
                let found = match name {
                    Ok(name) => self.meta.get_repository(&name).await?.is_some(),
                    Err(_) => false,
                };
                if !found {
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
        let found = match project.parse::<ProjectId>() {
            Ok(id) => self.meta.get_project(&id).await?.is_some(),
            Err(_) => false,
        };
        if !found {
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
        Ok(self.store.get_policy(resource).await?)
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
        self.write_policy(resource, policy, expected.as_deref())
            .await
    }

    pub(super) async fn write_policy(
        &self,
        resource: &Resource,
        policy: Policy,
        expected_etag: Option<&str>,
    ) -> Result<Policy, IamError> {
        let mut policy = policy.normalized();
        policy.etag = new_etag();
        if self
            .store
            .set_policy(resource, &policy, expected_etag)
            .await?
        {
            if *resource == Resource::Organization && has_other_owner(&policy) {
                self.bootstrap.retire();
            }
            Ok(policy)
        } else {
            Err(IamError::StaleEtag {
                resource: resource.to_string(),
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
        // Retry on a concurrent change: the grant is re-applied to the new policy.
        for _ in 0..5 {
            let mut policy = self.store.get_policy(resource).await?;
            if !policy.add_binding(role, member.clone())? {
                return Ok(());
            }
            let etag = policy.etag.clone();
            match self.write_policy(resource, policy, Some(&etag)).await {
                Err(IamError::StaleEtag { .. }) => continue,
                other => return other.map(|_| ()),
            }
        }
        Err(IamError::StaleEtag {
            resource: resource.to_string(),
            etag: String::new(),
        })
    }

    /// Forget the policy of a resource that was deleted, so that a new resource
    /// with the same name does not inherit its grants.
    pub async fn forget(&self, resource: &Resource) -> Result<(), IamError> {
        self.store.delete_policy(resource).await?;
        Ok(())
    }
}

/// A fresh etag for an IAM policy that is being written.
pub(crate) fn new_etag() -> String {
    let mut random = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
    policy_etag(random)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::iam::test_support::{secret, service, user};
    use entrepot_domain::iam::{ARTIFACTREGISTRY_READER, ARTIFACTREGISTRY_WRITER};

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
        store
            .create_project(&"demo".parse().unwrap())
            .await
            .unwrap();
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
        store
            .create_project(&"demo".parse().unwrap())
            .await
            .unwrap();
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
