//! Authorization: whether a principal holds a permission on a resource, by
//! walking the policies that apply to it, outermost first.

use std::collections::BTreeSet;

use entrepot_domain::iam::{permissions, Member};
use entrepot_storage::StoreError;

use super::{internal, member_of, IamError, IamService};
use crate::access::{AuthError, Permission, Principal, Resource};
use crate::authn;

/// Every member a binding may name to match this principal.
fn identities(principal: &Principal) -> Vec<Member> {
    match member_of(principal) {
        None => vec![Member::AllUsers],
        Some(m) => vec![m, Member::AllUsers, Member::AllAuthenticatedUsers],
    }
}

/// The policies that apply to a resource, outermost first.
fn policy_chain(resource: &Resource) -> Vec<Resource> {
    let mut chain = vec![Resource::Organization];
    match resource {
        Resource::Organization => {}
        Resource::Project(_) => chain.push(resource.clone()),
        Resource::Repository { project, .. } | Resource::Secret { project, .. } => {
            chain.push(Resource::Project(project.clone()));
            chain.push(resource.clone());
        }
    }
    chain
}

impl IamService {
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

    pub(super) async fn check(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::AccessControl;
    use crate::iam::service_agent;
    use crate::iam::test_support::{secret, service, user};
    use entrepot_domain::iam::{
        ARTIFACTREGISTRY_READER, ARTIFACTREGISTRY_WRITER, SECRETMANAGER_SECRET_ACCESSOR,
    };

    #[test]
    fn every_permission_name_is_in_the_domain_catalogue() {
        for p in Permission::ALL {
            assert!(permissions::is_known(p.as_str()), "{}", p.as_str());
            assert_eq!(p.as_str().parse::<Permission>(), Ok(*p));
        }
        assert_eq!(Permission::ALL.len(), 30);
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
}
