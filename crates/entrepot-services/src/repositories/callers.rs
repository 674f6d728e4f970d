//! What callers (the admin API, the console) ask of repositories: each
//! method takes the caller's [`Principal`] and checks the permission itself,
//! so no front-end repeats a check.

use entrepot_domain::cooldown::{ReleaseAgePolicy, ReleaseAgeUpdate};
use entrepot_domain::repository::RemoteConfig;
use entrepot_domain::virtual_repository::VirtualConfig;
use entrepot_domain::{Format, Mode, ProjectId, Repository, RepositoryId, RepositoryName};

use super::{CreateOptions, NewRepository, RepositoryError, RepositoryService, RepositoryUpdate};
use crate::access::{Permission, Principal, Resource};
use crate::paging::{Page, PageRequest};
use crate::remote::UpstreamReport;

/// A request to create a repository, as a client sends it. Format and mode
/// are read only once the caller is known to be allowed to create, so that
/// a caller who may not learns nothing from their validation.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Package format (`docker`, `python`).
    pub format: String,
    /// Hosted, remote or virtual (default `standard-repository`).
    pub mode: Option<String>,
    /// Free text.
    pub description: String,
    /// Upstream settings, required for remote repositories.
    pub remote: Option<RemoteConfig>,
    /// Members and rules, required for virtual repositories.
    pub virtual_config: Option<VirtualConfig>,
    /// Store a remote repository even if the registry access policy blocks
    /// its upstream.
    pub force: bool,
}

fn resource(name: &RepositoryName) -> Resource {
    Resource::Repository {
        project: name.project.to_string(),
        repository: name.repository.to_string(),
    }
}

impl RepositoryService {
    async fn authorize(
        &self,
        caller: &Principal,
        permission: Permission,
        resource: &Resource,
    ) -> Result<(), RepositoryError> {
        Ok(self.access.authorize(caller, permission, resource).await?)
    }

    /// The caller, pointing `repository` at the secret `version`, must be
    /// able to read that secret: the registry will send it upstream.
    async fn check_attachment(
        &self,
        caller: &Principal,
        version: &str,
        repository: &RepositoryName,
    ) -> Result<(), RepositoryError> {
        let secrets = self.secrets.as_ref().ok_or_else(|| {
            RepositoryError::Invalid(
                "this registry has no secret manager; remote repositories cannot use secrets"
                    .into(),
            )
        })?;
        secrets
            .authorize_attachment(caller, version, &repository.to_string())
            .await?;
        Ok(())
    }

    /// Create a repository for `caller`, who needs
    /// `artifactregistry.repositories.create` on the project and, for a
    /// remote repository with a password secret, read access to the secret.
    pub async fn create_with(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        request: CreateRequest,
    ) -> Result<Repository, RepositoryError> {
        self.authorize(
            caller,
            Permission::RepositoriesCreate,
            &Resource::Project(name.project.to_string()),
        )
        .await?;
        let secret = request
            .remote
            .as_ref()
            .and_then(|c| c.password_secret_version.as_deref());
        if let Some(version) = secret {
            self.check_attachment(caller, version, name).await?;
        }
        let format: Format = request.format.parse().map_err(RepositoryError::Invalid)?;
        let mode: Mode = request
            .mode
            .as_deref()
            .unwrap_or("standard-repository")
            .parse()
            .map_err(RepositoryError::Invalid)?;
        let release_age = request
            .remote
            .as_ref()
            .map(|c| c.release_age.clone())
            .or_else(|| {
                request
                    .virtual_config
                    .as_ref()
                    .map(|c| c.release_age.clone())
            });
        let repo = self
            .insert(
                name,
                NewRepository {
                    format,
                    mode,
                    description: request.description,
                    remote: request.remote,
                    virtual_config: request.virtual_config,
                },
                CreateOptions {
                    force: request.force,
                },
            )
            .await?;
        if let Some(policy) = release_age.filter(|p| !p.is_off()) {
            let update = ReleaseAgeUpdate::setting(&policy);
            self.audit_release_age(caller, name, &ReleaseAgePolicy::default(), &update)
                .await;
        }
        Ok(repo)
    }

    /// One page of a project's repositories, for a caller with
    /// `artifactregistry.repositories.list` on the project.
    pub async fn list(
        &self,
        caller: &Principal,
        project: &ProjectId,
        page: &PageRequest<RepositoryId>,
    ) -> Result<Page<Repository, RepositoryId>, RepositoryError> {
        self.authorize(
            caller,
            Permission::RepositoriesList,
            &Resource::Project(project.to_string()),
        )
        .await?;
        self.page(project, page).await
    }

    /// A repository, for a caller with `artifactregistry.repositories.get`.
    pub async fn describe(
        &self,
        caller: &Principal,
        name: &RepositoryName,
    ) -> Result<Repository, RepositoryError> {
        self.authorize(caller, Permission::RepositoriesGet, &resource(name))
            .await?;
        self.get(name).await
    }

    /// A repository and the bytes it holds (Google's `sizeBytes`), for a
    /// caller with `artifactregistry.repositories.get`. The size costs a scan
    /// of the repository's own content, so lists do not carry it.
    pub async fn describe_with_size(
        &self,
        caller: &Principal,
        name: &RepositoryName,
    ) -> Result<(Repository, u64), RepositoryError> {
        let repo = self.describe(caller, name).await?;
        let size = self.store.repository_size_bytes(name).await?;
        Ok((repo, size))
    }

    /// Change a repository, for a caller with
    /// `artifactregistry.repositories.update` who, when pointing it at a
    /// password secret, may read that secret.
    pub async fn update(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        update: RepositoryUpdate,
    ) -> Result<Repository, RepositoryError> {
        self.authorize(caller, Permission::RepositoriesUpdate, &resource(name))
            .await?;
        if let Some(version) = &update.remote_password_secret_version {
            self.check_attachment(caller, version, name).await?;
        }
        if update.release_age.is_empty() {
            return self.change(name, update).await;
        }
        let current = self.get(name).await?;
        let before = current
            .remote_repository_config
            .map(|c| c.release_age)
            .or_else(|| current.virtual_repository_config.map(|c| c.release_age))
            .unwrap_or_default();
        let release_age = update.release_age.clone();
        let repo = self.change(name, update).await?;
        self.audit_release_age(caller, name, &before, &release_age)
            .await;
        Ok(repo)
    }

    /// Delete a repository with its content and its IAM policy, for a caller
    /// with `artifactregistry.repositories.delete`.
    pub async fn delete(
        &self,
        caller: &Principal,
        name: &RepositoryName,
    ) -> Result<(), RepositoryError> {
        self.authorize(caller, Permission::RepositoriesDelete, &resource(name))
            .await?;
        self.remove(name).await
    }

    /// Check a remote repository's upstream with the engine of its format,
    /// for a caller with `artifactregistry.repositories.get`.
    pub async fn test_upstream(
        &self,
        caller: &Principal,
        name: &RepositoryName,
    ) -> Result<UpstreamReport, RepositoryError> {
        self.authorize(caller, Permission::RepositoriesGet, &resource(name))
            .await?;
        let repo = self.get(name).await?;
        let tester = self
            .upstream_testers
            .iter()
            .find(|(format, _)| *format == repo.format)
            .map(|(_, tester)| tester)
            .filter(|_| repo.remote_repository_config.is_some())
            .ok_or_else(|| {
                RepositoryError::Invalid(format!(
                    "{name} is not a remote repository; only remote repositories have an upstream"
                ))
            })?;
        Ok(tester.test_upstream(&repo).await?)
    }

    /// Revalidate cached documents of a remote repository with its upstream
    /// now (`what`: `IMAGE:TAG` or `IMAGE` for Docker, a project for
    /// Python), for a caller with `artifactregistry.repositories.update`,
    /// as other writes to a repository.
    pub async fn refresh(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        what: &str,
    ) -> Result<crate::remote::RefreshReport, RepositoryError> {
        self.authorize(caller, Permission::RepositoriesUpdate, &resource(name))
            .await?;
        let repo = self.get(name).await?;
        let engine = self
            .upstream_testers
            .iter()
            .find(|(format, _)| *format == repo.format)
            .map(|(_, engine)| engine)
            .filter(|_| repo.remote_repository_config.is_some())
            .ok_or_else(|| {
                RepositoryError::Invalid(format!(
                    "{name} is not a remote repository; only a remote repository's cache can be refreshed"
                ))
            })?;
        if what.is_empty() {
            return Err(RepositoryError::Invalid(
                "name what to refresh: IMAGE:TAG or IMAGE (every cached tag of it) for a Docker repository, a project for a Python one".into(),
            ));
        }
        engine.refresh(&repo, what).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use entrepot_domain::iam::{Member, ARTIFACTREGISTRY_READER};
    use entrepot_storage::testing::memory_stores;
    use entrepot_storage::Stores;

    use super::*;
    use crate::access::AuthError;
    use crate::iam::IamService;

    /// A repository service authorized by IAM, where `user:admin` owns the
    /// organisation, with a project `p` holding a standard repository `r`.
    async fn service() -> (RepositoryService, Arc<IamService>, Stores) {
        let stores = memory_stores().await.unwrap();
        let iam = Arc::new(IamService::new(
            stores.iam.clone(),
            stores.metadata.clone(),
            &[7u8; 32],
        ));
        iam.bootstrap().await.unwrap();
        stores
            .metadata
            .create_project(&"p".parse().unwrap())
            .await
            .unwrap();
        let repositories =
            RepositoryService::new(stores.metadata.clone()).with_access_control(iam.clone());
        repositories
            .create_with(&admin(), &name("r"), docker())
            .await
            .unwrap();
        (repositories, iam, stores)
    }

    fn admin() -> Principal {
        Principal::User("admin".into())
    }

    fn bob() -> Principal {
        Principal::User("bob@example.com".into())
    }

    fn name(r: &str) -> RepositoryName {
        format!("projects/p/repositories/{r}").parse().unwrap()
    }

    fn docker() -> CreateRequest {
        CreateRequest {
            format: "docker".into(),
            ..CreateRequest::default()
        }
    }

    fn denied<T: std::fmt::Debug>(result: Result<T, RepositoryError>, permission: &str) {
        match result {
            Err(RepositoryError::Auth(AuthError::Denied { permission: p, .. })) => {
                assert_eq!(p, permission)
            }
            other => panic!("expected {permission} to be refused, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_listing_pages_on_by_the_last_repository_id() {
        let (repositories, _, _) = service().await;
        for r in ["s", "t"] {
            repositories
                .create_with(&admin(), &name(r), docker())
                .await
                .unwrap();
        }
        let project: ProjectId = "p".parse().unwrap();
        let first = repositories
            .list(&admin(), &project, &PageRequest::first(2))
            .await
            .unwrap();
        let ids: Vec<&str> = first.items.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            ids,
            ["projects/p/repositories/r", "projects/p/repositories/s"]
        );
        assert_eq!(first.next, Some("s".parse().unwrap()));
        let second = repositories
            .list(
                &admin(),
                &project,
                &PageRequest {
                    after: first.next,
                    size: 2,
                },
            )
            .await
            .unwrap();
        assert_eq!(second.items.len(), 1);
        assert_eq!(second.items[0].name, "projects/p/repositories/t");
        assert_eq!(second.next, None);
    }

    #[tokio::test]
    async fn the_service_itself_refuses_callers_without_the_permission() {
        let (repositories, _, stores) = service().await;
        let project: ProjectId = "p".parse().unwrap();
        let page = PageRequest::first(10);
        denied(
            repositories
                .create_with(&bob(), &name("new"), docker())
                .await,
            "artifactregistry.repositories.create",
        );
        denied(
            repositories.list(&bob(), &project, &page).await,
            "artifactregistry.repositories.list",
        );
        denied(
            repositories.describe(&bob(), &name("r")).await,
            "artifactregistry.repositories.get",
        );
        denied(
            repositories
                .update(
                    &bob(),
                    &name("r"),
                    RepositoryUpdate {
                        description: Some("changed".into()),
                        ..RepositoryUpdate::default()
                    },
                )
                .await,
            "artifactregistry.repositories.update",
        );
        denied(
            repositories.delete(&bob(), &name("r")).await,
            "artifactregistry.repositories.delete",
        );
        denied(
            repositories.test_upstream(&bob(), &name("r")).await,
            "artifactregistry.repositories.get",
        );
        // Refused before anything was read or written, and before the
        // request was validated: a bad format is not even looked at.
        denied(
            repositories
                .create_with(
                    &bob(),
                    &name("bad"),
                    CreateRequest {
                        format: "nonsense".into(),
                        ..CreateRequest::default()
                    },
                )
                .await,
            "artifactregistry.repositories.create",
        );
        let kept = stores
            .metadata
            .get_repository(&"projects/p/repositories/r".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(kept.map(|r| r.description), Some(String::new()));
        assert!(stores
            .metadata
            .get_repository(&"projects/p/repositories/new".parse().unwrap())
            .await
            .unwrap()
            .is_none());
        // The admin may.
        assert_eq!(
            repositories
                .list(&admin(), &project, &page)
                .await
                .unwrap()
                .items
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn a_service_without_access_control_refuses_everyone() {
        let stores = memory_stores().await.unwrap();
        stores
            .metadata
            .create_project(&"p".parse().unwrap())
            .await
            .unwrap();
        let repositories = RepositoryService::new(stores.metadata.clone());
        denied(
            repositories
                .create_with(&admin(), &name("r"), docker())
                .await,
            "artifactregistry.repositories.create",
        );
    }

    #[tokio::test]
    async fn deleting_a_repository_forgets_its_grants() {
        let (repositories, iam, _) = service().await;
        let resource = resource(&name("r"));
        iam.grant(&resource, ARTIFACTREGISTRY_READER, Member::AllUsers)
            .await
            .unwrap();
        assert!(iam
            .granted(
                &Principal::Anonymous,
                &resource,
                &[Permission::DownloadArtifacts]
            )
            .await
            .unwrap()
            .contains("artifactregistry.repositories.downloadArtifacts"));
        repositories.delete(&admin(), &name("r")).await.unwrap();
        assert!(matches!(
            repositories.delete(&admin(), &name("r")).await,
            Err(RepositoryError::NotFound(_))
        ));
        // A new repository of the same name starts without the old grants.
        repositories
            .create_with(&admin(), &name("r"), docker())
            .await
            .unwrap();
        assert!(iam
            .get_policy(&admin(), &resource)
            .await
            .unwrap()
            .bindings
            .is_empty());
        assert!(iam
            .granted(
                &Principal::Anonymous,
                &resource,
                &[Permission::DownloadArtifacts]
            )
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn only_remote_repositories_have_an_upstream_to_test() {
        let (repositories, _, _) = service().await;
        let refused = repositories
            .test_upstream(&admin(), &name("r"))
            .await
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "projects/p/repositories/r is not a remote repository; only remote repositories have an upstream"
        );
    }

    #[tokio::test]
    async fn pointing_a_repository_at_a_secret_needs_a_secret_manager() {
        let (repositories, _, _) = service().await;
        let refused = repositories
            .update(
                &admin(),
                &name("r"),
                RepositoryUpdate {
                    remote_password_secret_version: Some(
                        "projects/p/secrets/s/versions/latest".into(),
                    ),
                    ..RepositoryUpdate::default()
                },
            )
            .await;
        assert!(
            matches!(refused, Err(RepositoryError::Invalid(_))),
            "{refused:?}"
        );
    }
}
