//! What callers (the admin API, the console) ask of repositories: each
//! method takes the caller's [`Principal`] and checks the permission itself,
//! so no front-end repeats a check.

use entrepot_domain::repository::RemoteConfig;
use entrepot_domain::{Format, Mode, ProjectId, Repository, RepositoryName};

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
        self.insert(
            name,
            NewRepository {
                format,
                mode,
                description: request.description,
                remote: request.remote,
            },
            CreateOptions {
                force: request.force,
            },
        )
        .await
    }

    /// One page of a project's repositories, for a caller with
    /// `artifactregistry.repositories.list` on the project.
    pub async fn list(
        &self,
        caller: &Principal,
        project: &ProjectId,
        page: &PageRequest<String>,
    ) -> Result<Page<Repository, String>, RepositoryError> {
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
        self.change(name, update).await
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
}
