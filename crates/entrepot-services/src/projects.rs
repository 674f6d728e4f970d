//! Projects: the top of every resource name.
//!
//! The methods callers reach take the caller's [`Principal`] and authorize
//! inside; [`ProjectService::create`] and [`ProjectService::ensure`] are for
//! the server itself.

use std::sync::Arc;

use entrepot_domain::iam::{Policy, OWNER};
use entrepot_domain::ProjectId;
use entrepot_storage::{MetadataStore, ProjectRecord, StoreError};

use crate::access::{AccessControl, AuthError, DenyAll, Permission, Principal, Resource};
use crate::iam::member_of;
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
    /// The caller may not do this.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates and looks up projects.
#[derive(Clone)]
pub struct ProjectService {
    store: Arc<dyn MetadataStore>,
    access: Arc<dyn AccessControl>,
}

impl ProjectService {
    /// A service over the given store; callers are refused until
    /// [`Self::with_access_control`] says how to authorize them.
    pub fn new(store: Arc<dyn MetadataStore>) -> Self {
        Self {
            store,
            access: Arc::new(DenyAll),
        }
    }

    /// Authorize callers through `access`.
    pub fn with_access_control(mut self, access: Arc<dyn AccessControl>) -> Self {
        self.access = access;
        self
    }

    /// Create a project for `caller`, who needs
    /// `resourcemanager.projects.create` on the organisation and becomes the
    /// project's owner: the project and its IAM policy are written in one
    /// store transaction, so there is never a project without its owner.
    pub async fn create_owned_by(
        &self,
        caller: &Principal,
        id: &ProjectId,
    ) -> Result<ProjectRecord, ProjectError> {
        self.access
            .authorize(caller, Permission::ProjectsCreate, &Resource::Organization)
            .await?;
        let Some(member) = member_of(caller) else {
            // Anonymous, yet allowed (a binding for allUsers): nobody to own it.
            return self.create(id).await;
        };
        let mut policy = Policy::default();
        policy
            .add_binding(OWNER, member)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut policy = policy.normalized();
        policy.etag = crate::iam::new_etag();
        match self.store.create_project_with_policy(id, &policy).await {
            Err(StoreError::AlreadyExists) => Err(ProjectError::AlreadyExists(id.to_string())),
            other => Ok(other?),
        }
    }

    /// A project, for a caller with `artifactregistry.repositories.list` on it.
    pub async fn get(
        &self,
        caller: &Principal,
        id: &ProjectId,
    ) -> Result<ProjectRecord, ProjectError> {
        self.access
            .authorize(
                caller,
                Permission::RepositoriesList,
                &Resource::Project(id.to_string()),
            )
            .await?;
        self.lookup(id).await
    }

    /// One page of the projects, by id, for a caller with
    /// `artifactregistry.repositories.list` on the organisation.
    pub async fn list(
        &self,
        caller: &Principal,
        page: &PageRequest<ProjectId>,
    ) -> Result<Page<ProjectRecord, ProjectId>, ProjectError> {
        self.access
            .authorize(
                caller,
                Permission::RepositoriesList,
                &Resource::Organization,
            )
            .await?;
        let rows = self
            .store
            .list_projects(page.after.as_ref(), page.limit())
            .await?;
        Ok(Page::from_rows(rows, page, |p| p.id.clone()))
    }

    /// Create a project, without a permission check and without an owner:
    /// for the server itself (the project made on first start).
    pub async fn create(&self, id: &ProjectId) -> Result<ProjectRecord, ProjectError> {
        match self.store.create_project(id).await {
            Err(StoreError::AlreadyExists) => Err(ProjectError::AlreadyExists(id.to_string())),
            other => Ok(other?),
        }
    }

    /// Create the project unless it exists; returns it either way.
    pub async fn ensure(&self, id: &ProjectId) -> Result<ProjectRecord, ProjectError> {
        if let Some(p) = self.store.get_project(id).await? {
            return Ok(p);
        }
        match self.store.create_project(id).await {
            Ok(p) => Ok(p),
            Err(StoreError::AlreadyExists) => self.lookup(id).await,
            Err(e) => Err(e.into()),
        }
    }

    async fn lookup(&self, id: &ProjectId) -> Result<ProjectRecord, ProjectError> {
        self.store
            .get_project(id)
            .await?
            .ok_or_else(|| ProjectError::NotFound(id.to_string()))
    }

    /// Whether the metadata store answers, for readiness probes: reads one
    /// row, however many projects there are.
    pub async fn check_store(&self) -> Result<(), ProjectError> {
        self.store.list_projects(None, 1).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use entrepot_domain::iam::Member;
    use entrepot_storage::testing::memory_stores;

    use super::*;
    use crate::iam::IamService;

    async fn service() -> (ProjectService, Arc<IamService>) {
        let stores = memory_stores().await.unwrap();
        let iam = Arc::new(IamService::new(
            stores.iam.clone(),
            stores.metadata.clone(),
            &[7u8; 32],
        ));
        iam.bootstrap().await.unwrap();
        let projects = ProjectService::new(stores.metadata).with_access_control(iam.clone());
        (projects, iam)
    }

    fn user(e: &str) -> Principal {
        Principal::User(e.into())
    }

    #[tokio::test]
    async fn the_service_itself_refuses_callers_without_the_permission() {
        let (projects, _) = service().await;
        let id: ProjectId = "demo".parse().unwrap();
        let bob = user("bob@example.com");
        assert!(matches!(
            projects.create_owned_by(&bob, &id).await,
            Err(ProjectError::Auth(AuthError::Denied { permission, .. }))
                if permission == "resourcemanager.projects.create"
        ));
        assert!(matches!(
            projects.create_owned_by(&Principal::Anonymous, &id).await,
            Err(ProjectError::Auth(AuthError::Unauthenticated(_)))
        ));
        assert!(matches!(
            projects.list(&bob, &PageRequest::first(10)).await,
            Err(ProjectError::Auth(_))
        ));
        // Nothing was created: the admin finds no such project.
        assert!(matches!(
            projects.get(&user("admin"), &"demo".parse().unwrap()).await,
            Err(ProjectError::NotFound(_))
        ));
        assert!(matches!(
            projects.get(&bob, &"demo".parse().unwrap()).await,
            Err(ProjectError::Auth(_))
        ));
    }

    #[tokio::test]
    async fn the_creator_owns_the_project_from_the_start() {
        let (projects, iam) = service().await;
        let id: ProjectId = "demo".parse().unwrap();
        let admin = user("admin");
        let created = projects.create_owned_by(&admin, &id).await.unwrap();
        assert_eq!(
            projects
                .get(&admin, &"demo".parse().unwrap())
                .await
                .unwrap(),
            created
        );
        let policy = iam
            .get_policy(&admin, &Resource::Project("demo".into()))
            .await
            .unwrap();
        assert_eq!(policy.bindings.len(), 1);
        assert_eq!(policy.bindings[0].role, OWNER);
        assert!(policy.bindings[0]
            .members
            .contains(&Member::User("admin".into())));
        assert!(!policy.etag.is_empty());
        // A second create is refused and leaves the policy as it was.
        assert!(matches!(
            projects.create_owned_by(&admin, &id).await,
            Err(ProjectError::AlreadyExists(_))
        ));
        let again = iam
            .get_policy(&admin, &Resource::Project("demo".into()))
            .await
            .unwrap();
        assert_eq!(again, policy);
    }
}
