//! Repositories: create, read, update and delete `projects/{p}/repositories/{r}`.

use std::sync::Arc;

use entrepot_domain::{Format, Mode, ProjectId, Repository, RepositoryId, RepositoryName};
use entrepot_storage::{MetadataStore, StoreError};

use crate::clock::now_rfc3339;

/// Errors of the repository service.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// No such repository.
    #[error("repository {0} not found")]
    NotFound(String),
    /// No such project.
    #[error("project {0:?} not found; create it first or use an existing project")]
    ProjectNotFound(String),
    /// The repository exists already.
    #[error("repository {0} already exists")]
    AlreadyExists(String),
    /// The request is not acceptable; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a client asks for when creating a repository.
#[derive(Debug, Clone)]
pub struct NewRepository {
    /// Package format.
    pub format: Format,
    /// Hosted, remote or virtual.
    pub mode: Mode,
    /// Free text.
    pub description: String,
}

/// The fields a client may change on an existing repository.
#[derive(Debug, Clone, Default)]
pub struct RepositoryUpdate {
    /// New description, if given.
    pub description: Option<String>,
}

/// Manages repository resources.
#[derive(Clone)]
pub struct RepositoryService {
    store: Arc<dyn MetadataStore>,
}

impl RepositoryService {
    /// A service over the given store.
    pub fn new(store: Arc<dyn MetadataStore>) -> Self {
        Self { store }
    }

    /// Create a repository in an existing project.
    pub async fn create(
        &self,
        name: &RepositoryName,
        new: NewRepository,
    ) -> Result<Repository, RepositoryError> {
        self.require_project(&name.project).await?;
        if new.mode != Mode::StandardRepository {
            return Err(RepositoryError::Invalid(format!(
                "mode {} is not available yet; create a standard-repository",
                new.mode.as_str()
            )));
        }
        if new.description.len() > 2048 {
            return Err(RepositoryError::Invalid(
                "description is longer than 2048 characters".into(),
            ));
        }
        let now = now_rfc3339();
        let repo = Repository {
            name: name.to_string(),
            format: new.format,
            mode: new.mode,
            description: new.description,
            remote_repository_config: None,
            create_time: now.clone(),
            update_time: now,
        };
        match self
            .store
            .create_repository(name.project.as_str(), name.repository.as_str(), &repo)
            .await
        {
            Ok(()) => Ok(repo),
            Err(StoreError::AlreadyExists) => Err(RepositoryError::AlreadyExists(name.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Look a repository up.
    pub async fn get(&self, name: &RepositoryName) -> Result<Repository, RepositoryError> {
        self.store
            .get_repository(name.project.as_str(), name.repository.as_str())
            .await?
            .ok_or_else(|| RepositoryError::NotFound(name.to_string()))
    }

    /// Repositories of a project.
    pub async fn list(&self, project: &ProjectId) -> Result<Vec<Repository>, RepositoryError> {
        self.require_project(project).await?;
        Ok(self.store.list_repositories(project.as_str()).await?)
    }

    /// Change a repository's mutable fields.
    pub async fn update(
        &self,
        name: &RepositoryName,
        update: RepositoryUpdate,
    ) -> Result<Repository, RepositoryError> {
        let mut repo = self.get(name).await?;
        if let Some(description) = update.description {
            repo.description = description;
        }
        repo.update_time = now_rfc3339();
        if !self
            .store
            .update_repository(name.project.as_str(), name.repository.as_str(), &repo)
            .await?
        {
            return Err(RepositoryError::NotFound(name.to_string()));
        }
        Ok(repo)
    }

    /// Delete a repository and everything in it.
    pub async fn delete(&self, name: &RepositoryName) -> Result<(), RepositoryError> {
        if self
            .store
            .delete_repository(name.project.as_str(), name.repository.as_str())
            .await?
        {
            Ok(())
        } else {
            Err(RepositoryError::NotFound(name.to_string()))
        }
    }

    async fn require_project(&self, project: &ProjectId) -> Result<(), RepositoryError> {
        match self.store.get_project(project.as_str()).await? {
            Some(_) => Ok(()),
            None => Err(RepositoryError::ProjectNotFound(project.to_string())),
        }
    }

    /// The id of a repository, for callers holding only strings.
    pub fn name(project: &ProjectId, repository: &RepositoryId) -> RepositoryName {
        RepositoryName::new(project.clone(), repository.clone())
    }
}
