//! Creating, reading, listing, relabelling and deleting secrets.

use super::*;

impl SecretService {
    /// Create a secret, optionally with its first version.
    pub async fn create(
        &self,
        principal: &Principal,
        name: &SecretName,
        labels: Labels,
        first_version: Option<SecretPayload>,
    ) -> Result<(Secret, Option<SecretVersion>), SecretError> {
        let project = Resource::Project(name.project.to_string());
        self.access
            .authorize(principal, Permission::SecretsCreate, &project)
            .await?;
        if first_version.is_some() {
            self.access
                .authorize(principal, Permission::VersionsAdd, &secret_resource(name))
                .await?;
        }
        self.require_project(&name.project).await?;
        let record = SecretRecord {
            project: name.project.to_string(),
            id: name.secret.to_string(),
            labels: labels.as_map().clone(),
            create_time: self.clock.now_rfc3339(),
        };
        match self.store.create_secret(&record).await {
            Ok(()) => {}
            Err(StoreError::AlreadyExists) => {
                return Err(SecretError::AlreadyExists(name.to_string()))
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(secret = %name, %principal, "secret created");
        let version = match first_version {
            Some(payload) => Some(self.insert_version(name, &payload).await?),
            None => None,
        };
        Ok((secret_from_record(name, record)?, version))
    }

    /// Look a secret up.
    pub async fn get(
        &self,
        principal: &Principal,
        name: &SecretName,
    ) -> Result<Secret, SecretError> {
        self.access
            .authorize(principal, Permission::SecretsGet, &secret_resource(name))
            .await?;
        let record = self.require_secret(name).await?;
        secret_from_record(name, record)
    }

    /// One page of the secrets of a project, by id; the cursor is a secret id.
    pub async fn list(
        &self,
        principal: &Principal,
        project: &ProjectId,
        page: &PageRequest<String>,
    ) -> Result<Page<Secret, String>, SecretError> {
        self.access
            .authorize(
                principal,
                Permission::SecretsList,
                &Resource::Project(project.to_string()),
            )
            .await?;
        self.require_project(project).await?;
        let rows = self
            .store
            .list_secrets(project.as_str(), page.after.as_deref(), page.limit())
            .await?;
        Page::from_rows(rows, page, |r| r.id.clone()).try_map(|record| {
            let name = SecretName::new(
                project.clone(),
                record
                    .id
                    .parse()
                    .map_err(|e: SecretNameError| StoreError::Corrupt(e.to_string()))?,
            );
            secret_from_record(&name, record)
        })
    }

    /// Replace a secret's labels.
    pub async fn update_labels(
        &self,
        principal: &Principal,
        name: &SecretName,
        labels: Labels,
    ) -> Result<Secret, SecretError> {
        self.access
            .authorize(principal, Permission::SecretsUpdate, &secret_resource(name))
            .await?;
        if !self
            .store
            .update_secret_labels(name.project.as_str(), name.secret.as_str(), labels.as_map())
            .await?
        {
            return Err(SecretError::NotFound(name.to_string()));
        }
        tracing::info!(secret = %name, %principal, "secret labels updated");
        let record = self.require_secret(name).await?;
        secret_from_record(name, record)
    }

    /// Delete a secret with all its versions; their payloads are wiped.
    pub async fn delete(
        &self,
        principal: &Principal,
        name: &SecretName,
    ) -> Result<(), SecretError> {
        self.access
            .authorize(principal, Permission::SecretsDelete, &secret_resource(name))
            .await?;
        if self
            .store
            .delete_secret(name.project.as_str(), name.secret.as_str())
            .await?
        {
            tracing::info!(secret = %name, %principal, "secret deleted");
            Ok(())
        } else {
            Err(SecretError::NotFound(name.to_string()))
        }
    }
}
