//! Creating, reading, listing, updating and deleting secrets.

use super::settings::{apply, new_etag, new_settings, settings_text};
use super::*;

/// How many stored secrets one filtered listing reads at most before it
/// answers with what it found (and a page token to go on from there).
const MAX_SCANNED_PER_PAGE: usize = 10_000;

impl SecretService {
    /// Create a secret with labels only, optionally with its first version.
    pub async fn create(
        &self,
        principal: &Principal,
        name: &SecretName,
        labels: Labels,
        first_version: Option<SecretPayload>,
    ) -> Result<(Secret, Option<SecretVersion>), SecretError> {
        let spec = NewSecret {
            labels,
            ..NewSecret::default()
        };
        self.create_secret(principal, name, &spec, first_version)
            .await
    }

    /// Create a secret as `spec` describes it, optionally with its first
    /// version. Fails on invalid settings before anything is stored.
    pub async fn create_secret(
        &self,
        principal: &Principal,
        name: &SecretName,
        spec: &NewSecret,
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
        let now = self.clock.now_unix();
        let settings = new_settings(spec, now)?;
        let record = SecretRecord {
            project: name.project.to_string(),
            id: name.secret.to_string(),
            labels: spec.labels.as_map().clone(),
            create_time: self.clock.now_rfc3339(),
            settings: settings_text(&settings)?,
            etag: new_etag(),
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
        Ok((secret_from_record(name, record, now)?, version))
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
        secret_from_record(name, record, self.clock.now_unix())
    }

    /// One page of the secrets of a project, by id; the cursor is a secret id.
    pub async fn list(
        &self,
        principal: &Principal,
        project: &ProjectId,
        page: &PageRequest<SecretId>,
    ) -> Result<Page<Secret, String>, SecretError> {
        self.list_matching(principal, project, page, |_| true).await
    }

    /// One page of the secrets of a project that `matches` accepts, by id.
    ///
    /// The store is read page after page until the page is full; after
    /// [`MAX_SCANNED_PER_PAGE`] secrets read the page is answered as it is,
    /// with a cursor to go on from, so that one request stays bounded.
    pub async fn list_matching(
        &self,
        principal: &Principal,
        project: &ProjectId,
        page: &PageRequest<SecretId>,
        matches: impl Fn(&Secret) -> bool + Send,
    ) -> Result<Page<Secret, String>, SecretError> {
        self.access
            .authorize(
                principal,
                Permission::SecretsList,
                &Resource::Project(project.to_string()),
            )
            .await?;
        self.require_project(project).await?;
        let size = page.size() as usize;
        let mut items = Vec::new();
        let mut after = page.after.clone();
        let mut scanned = 0;
        // The id of the last secret on the page: where the next page starts.
        let mut last_listed = None;
        loop {
            let rows = self
                .store
                .list_secrets(project, after.as_ref(), page.limit())
                .await?;
            let exhausted = rows.len() < page.limit() as usize;
            for record in rows {
                scanned += 1;
                let name = SecretName::new(
                    project.clone(),
                    record
                        .id
                        .parse()
                        .map_err(|e: SecretNameError| StoreError::Corrupt(e.to_string()))?,
                );
                after = Some(name.secret.clone());
                let Some(record) = self.observe(&name, record).await? else {
                    continue;
                };
                let secret = secret_from_record(&name, record, self.clock.now_unix())?;
                if matches(&secret) {
                    if items.len() == size {
                        // One more match exists: the page is full and has a next.
                        let next = last_listed.map(|id: SecretId| id.to_string());
                        return Ok(Page { items, next });
                    }
                    items.push(secret);
                    last_listed = Some(name.secret.clone());
                }
            }
            if exhausted {
                return Ok(Page { items, next: None });
            }
            if scanned >= MAX_SCANNED_PER_PAGE {
                return Ok(Page {
                    items,
                    next: after.map(|a| a.to_string()),
                });
            }
        }
    }

    /// Replace a secret's labels.
    pub async fn update_labels(
        &self,
        principal: &Principal,
        name: &SecretName,
        labels: Labels,
    ) -> Result<Secret, SecretError> {
        let changes = SecretChanges {
            labels: Some(labels),
            ..SecretChanges::default()
        };
        self.update(principal, name, &changes, None).await
    }

    /// Change the parts of a secret that `changes` names; with `etag`, only
    /// if the secret still has that etag.
    pub async fn update(
        &self,
        principal: &Principal,
        name: &SecretName,
        changes: &SecretChanges,
        etag: Option<&str>,
    ) -> Result<Secret, SecretError> {
        self.access
            .authorize(principal, Permission::SecretsUpdate, &secret_resource(name))
            .await?;
        let record = self.require_secret(name).await?;
        check_etag(name, &record, etag)?;
        let now = self.clock.now_unix();
        let updated = apply(&record, changes, now)?;
        if !self.store.update_secret(&updated, &record.etag).await? {
            let current = self.require_secret(name).await?;
            return Err(SecretError::StaleEtag {
                secret: name.to_string(),
                given: record.etag,
                current: current.etag,
            });
        }
        tracing::info!(secret = %name, %principal, "secret updated");
        secret_from_record(name, updated, now)
    }

    /// Delete a secret with all its versions; their payloads are wiped.
    pub async fn delete(
        &self,
        principal: &Principal,
        name: &SecretName,
    ) -> Result<(), SecretError> {
        self.delete_if(principal, name, None).await
    }

    /// [`Self::delete`], only if the secret has `etag` when one is given.
    pub async fn delete_if(
        &self,
        principal: &Principal,
        name: &SecretName,
        etag: Option<&str>,
    ) -> Result<(), SecretError> {
        self.access
            .authorize(principal, Permission::SecretsDelete, &secret_resource(name))
            .await?;
        let deleted = match etag.filter(|e| !e.is_empty()) {
            None => self.store.delete_secret(name).await?,
            Some(given) => {
                // One conditional step; on refusal, say why.
                if !self.store.delete_secret_if_etag(name, given).await? {
                    let record = self.require_secret(name).await?;
                    return Err(SecretError::StaleEtag {
                        secret: name.to_string(),
                        given: given.to_owned(),
                        current: record.etag,
                    });
                }
                true
            }
        };
        if deleted {
            tracing::info!(secret = %name, %principal, "secret deleted");
            Ok(())
        } else {
            Err(SecretError::NotFound(name.to_string()))
        }
    }
}

fn check_etag(
    name: &SecretName,
    record: &SecretRecord,
    etag: Option<&str>,
) -> Result<(), SecretError> {
    match etag {
        Some(given) if !given.is_empty() && given != record.etag => Err(SecretError::StaleEtag {
            secret: name.to_string(),
            given: given.to_owned(),
            current: record.etag.clone(),
        }),
        _ => Ok(()),
    }
}
