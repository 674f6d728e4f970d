//! Projects: the top of every resource name.

use std::sync::Arc;

use entrepot_domain::ProjectId;
use entrepot_storage::{MetadataStore, ProjectRecord, StoreError};

use crate::paging::{Page, PageRequest};

/// Errors of the project service.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// No such project.
    #[error("project {0:?} not found")]
    NotFound(String),
    /// A project with that id exists.
    #[error("project {0:?} already exists")]
    AlreadyExists(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates and looks up projects.
#[derive(Clone)]
pub struct ProjectService {
    store: Arc<dyn MetadataStore>,
}

impl ProjectService {
    /// A service over the given store.
    pub fn new(store: Arc<dyn MetadataStore>) -> Self {
        Self { store }
    }

    /// Create a project.
    pub async fn create(&self, id: &ProjectId) -> Result<ProjectRecord, ProjectError> {
        match self.store.create_project(id.as_str()).await {
            Err(StoreError::AlreadyExists) => Err(ProjectError::AlreadyExists(id.to_string())),
            other => Ok(other?),
        }
    }

    /// Create the project unless it exists; returns it either way.
    pub async fn ensure(&self, id: &ProjectId) -> Result<ProjectRecord, ProjectError> {
        if let Some(p) = self.store.get_project(id.as_str()).await? {
            return Ok(p);
        }
        match self.store.create_project(id.as_str()).await {
            Ok(p) => Ok(p),
            Err(StoreError::AlreadyExists) => self.get(id.as_str()).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Look a project up.
    pub async fn get(&self, id: &str) -> Result<ProjectRecord, ProjectError> {
        self.store
            .get_project(id)
            .await?
            .ok_or_else(|| ProjectError::NotFound(id.to_owned()))
    }

    /// One page of the projects, by id.
    pub async fn list(
        &self,
        page: &PageRequest<String>,
    ) -> Result<Page<ProjectRecord, String>, ProjectError> {
        let rows = self
            .store
            .list_projects(page.after.as_deref(), page.limit())
            .await?;
        Ok(Page::from_rows(rows, page, |p| p.id.clone()))
    }

    /// Whether the metadata store answers, for readiness probes: reads one
    /// row, however many projects there are.
    pub async fn check_store(&self) -> Result<(), ProjectError> {
        self.store.list_projects(None, 1).await?;
        Ok(())
    }
}
