//! The secret manager: `projects/{p}/secrets/{s}` and their versions.
//!
//! Every operation is authorized here through [`AccessControl`], with the
//! permission users know from managed secret managers. Every access to a payload,
//! allowed or denied, by a user or by a project's service agent, is written to the
//! audit log before the payload is returned; if the audit entry cannot be written
//! the payload is not released.

mod access;
mod attachment;
mod audit;
mod crud;
pub mod crypto;
mod rotation;
pub mod settings;
mod versions;

use std::sync::Arc;

use entrepot_domain::{
    Labels, ProjectId, Replication, Rotation, Secret, SecretId, SecretName, SecretNameError,
    SecretPayload, SecretSettings, SecretVersion, SecretVersionName, VersionId, VersionState,
};
use entrepot_storage::{
    AuditRecord, MetadataStore, SecretRecord, SecretStore, StoreError, VersionRecord,
    WrappedKeyRecord,
};

use crate::access::{AccessControl, AuthError, Permission, Principal, Resource};
use crate::clock::{Clock, SystemClock};
use crate::metrics::Metrics;
use crate::paging::{Page, PageRequest};
use audit::AnonymousAuditSampler;
pub use crypto::{CryptoError, FileKeyRing, KeyRing, MemoryKeyRing};
pub use rotation::{rewrap_data_keys, RewrapReport};
use settings::secret_from_record;
pub use settings::{Expiry, NewSecret, SecretChanges};

/// The action recorded in the audit log for payload access.
pub const ACCESS_ACTION: &str = "secretmanager.versions.access";
/// The principal recorded for a caller that could not be authenticated.
pub const UNAUTHENTICATED: &str = "unauthenticated";
/// The action recorded when a repository is pointed at a secret version.
pub const ATTACH_ACTION: &str = "artifactregistry.repositories.attachSecret";

/// Errors of the secret manager. No variant ever carries payload bytes.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Not authenticated, or the principal lacks the permission.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A project's service agent lacks access to a secret; the message names the
    /// agent, the secret and the role to grant, with the command that grants it.
    #[error("the service agent {agent} of projects/{project} may not access {secret}: grant it roles/secretmanager.secretAccessor on the secret, e.g. `entrepot secrets add-iam-policy-binding {secret_id} --project={secret_project} --member={agent} --role=roles/secretmanager.secretAccessor`")]
    ServiceAgentDenied {
        /// The agent, as a member (`serviceAccount:...`).
        agent: String,
        /// The project the agent acts for.
        project: String,
        /// The secret's resource name.
        secret: String,
        /// The secret's project.
        secret_project: String,
        /// The secret's id.
        secret_id: String,
    },
    /// A name, label or payload was refused; the message says why.
    #[error(transparent)]
    Invalid(#[from] SecretNameError),
    /// No such project.
    #[error("project {0:?} not found")]
    ProjectNotFound(String),
    /// No such secret.
    #[error("secret {0} not found")]
    NotFound(String),
    /// The secret exists already.
    #[error("secret {0} already exists")]
    AlreadyExists(String),
    /// The secret changed since it was read: its etag is not the one given.
    #[error(
        "secret {secret} has changed: its etag is {current}, not {given}; read it again and retry"
    )]
    StaleEtag {
        /// The secret.
        secret: String,
        /// The etag the request gave.
        given: String,
        /// The etag it has now.
        current: String,
    },
    /// No such version.
    #[error("secret version {0} not found")]
    VersionNotFound(String),
    /// `latest` was asked for but no version is enabled.
    #[error("secret {0} has no ENABLED version; add a version or enable one")]
    NoEnabledVersion(String),
    /// The version is disabled.
    #[error("secret version {0} is DISABLED; enable it to access its payload")]
    VersionDisabled(String),
    /// The version is destroyed.
    #[error("secret version {0} is DESTROYED; its payload was wiped and cannot be recovered")]
    VersionDestroyed(String),
    /// The payload could not be sealed or opened.
    #[error("secret data cannot be encrypted or decrypted: {0}")]
    Crypto(#[from] CryptoError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A version name resolved to its number, with the payload it holds.
#[derive(Debug)]
pub struct AccessedVersion {
    /// The resolved name, `.../versions/{n}` (never `latest`).
    pub name: SecretVersionName,
    /// The plaintext.
    pub payload: SecretPayload,
}

/// Manages secrets and their versions, and reads payloads.
#[derive(Clone)]
pub struct SecretService {
    store: Arc<dyn SecretStore>,
    projects: Arc<dyn MetadataStore>,
    keys: Arc<dyn KeyRing>,
    access: Arc<dyn AccessControl>,
    anonymous_audit: Arc<AnonymousAuditSampler>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

fn secret_resource(name: &SecretName) -> Resource {
    Resource::Secret {
        project: name.project.to_string(),
        secret: name.secret.to_string(),
    }
}

fn version_from_record(
    secret: &SecretName,
    record: VersionRecord,
) -> Result<SecretVersion, SecretError> {
    Ok(SecretVersion {
        name: format!("{secret}/versions/{}", record.number),
        state: record.state.parse().map_err(StoreError::Corrupt)?,
        create_time: record.create_time,
        destroy_time: record.destroy_time,
    })
}

fn number_name(secret: &SecretName, number: i64) -> SecretVersionName {
    secret.version(VersionId::Number(number as u64))
}

impl SecretService {
    /// A service over the secret store, the project store, a key ring and the
    /// access-control hook shared with the front-ends.
    pub fn new(
        store: Arc<dyn SecretStore>,
        projects: Arc<dyn MetadataStore>,
        keys: Arc<dyn KeyRing>,
        access: Arc<dyn AccessControl>,
    ) -> Self {
        Self {
            store,
            projects,
            keys,
            access,
            anonymous_audit: Arc::default(),
            clock: Arc::new(SystemClock),
            metrics: Arc::default(),
        }
    }

    /// The same service counting what it sees (rotations that came due) in
    /// `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The same service reading time from `clock` (recorded times, audit
    /// sampling windows).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The secret's record, if it exists and has not expired (see
    /// [`Self::observe`]).
    async fn require_secret(&self, name: &SecretName) -> Result<SecretRecord, SecretError> {
        let record = self
            .store
            .get_secret(name)
            .await?
            .ok_or_else(|| SecretError::NotFound(name.to_string()))?;
        self.observe(name, record)
            .await?
            .ok_or_else(|| SecretError::NotFound(name.to_string()))
    }

    /// Act on what the clock says about a secret just read: an expired one
    /// is deleted (`None`); a rotation seen due for the first time is audited
    /// and counted.
    async fn observe(
        &self,
        name: &SecretName,
        record: SecretRecord,
    ) -> Result<Option<SecretRecord>, SecretError> {
        let now = self.clock.now_unix();
        let mut settings = settings::settings_of(&record)?;
        if settings::is_expired(&settings, now) {
            if self.store.delete_secret(name).await? {
                tracing::info!(secret = %name, "secret expired and was deleted");
            }
            return Ok(None);
        }
        let Some(due) = settings::due_rotation(&settings, now) else {
            return Ok(Some(record));
        };
        if settings.rotation_due_audited.as_deref() == Some(due.as_str()) {
            return Ok(Some(record));
        }
        settings.rotation_due_audited = Some(due.clone());
        // The marker is bookkeeping, not a change by a user: the etag stays.
        let marked = SecretRecord {
            settings: settings::settings_text(&settings)?,
            ..record.clone()
        };
        if self.store.update_secret(&marked, &record.etag).await? {
            self.store
                .append_audit(&AuditRecord {
                    time: self.clock.now_rfc3339(),
                    project: name.project.to_string(),
                    principal: "system".to_owned(),
                    action: settings::ROTATION_DUE_ACTION.to_owned(),
                    resource: name.to_string(),
                    version: None,
                    allowed: true,
                    reason: format!(
                        "rotation.nextRotationTime {due} has passed; add a version to rotate the secret"
                    ),
                })
                .await?;
            self.metrics.secret_rotation_due();
            tracing::info!(secret = %name, next_rotation_time = %due, "secret rotation is due");
            return Ok(Some(marked));
        }
        // Changed meanwhile: whoever changed it saw it (or rotated it).
        Ok(Some(record))
    }

    async fn require_project(&self, project: &ProjectId) -> Result<(), SecretError> {
        match self.projects.get_project(project).await? {
            Some(_) => Ok(()),
            None => Err(SecretError::ProjectNotFound(project.to_string())),
        }
    }
}

/// The secrets of a [`SecretStore`], as the IAM service asks after them.
pub struct StoredSecrets(pub Arc<dyn SecretStore>);

#[async_trait::async_trait]
impl crate::iam::SecretDirectory for StoredSecrets {
    async fn secret_exists(&self, project: &str, secret: &str) -> Result<bool, StoreError> {
        // An id that does not parse names no secret.
        let (Ok(project), Ok(secret)) = (project.parse(), secret.parse()) else {
            return Ok(false);
        };
        Ok(self
            .0
            .get_secret(&SecretName::new(project, secret))
            .await?
            .is_some())
    }
}

#[cfg(test)]
mod tests;
