//! The secret manager: `projects/{p}/secrets/{s}` and their versions.
//!
//! Every operation is authorized here through [`AccessControl`], with the
//! permission users know from managed secret managers. Every access to a payload,
//! allowed or denied, by a user or by a project's service agent, is written to the
//! audit log before the payload is returned; if the audit entry cannot be written
//! the payload is not released.

pub mod crypto;

use std::sync::Arc;

use entrepot_domain::{
    Labels, ProjectId, Secret, SecretName, SecretNameError, SecretPayload, SecretVersion,
    SecretVersionName, VersionId, VersionState,
};
use entrepot_storage::{
    AuditRecord, MetadataStore, SecretRecord, SecretStore, StoreError, VersionRecord,
    WrappedKeyRecord,
};

use crate::access::{AccessControl, AuthError, Permission, Principal, Resource};
use crate::clock::now_rfc3339;
use crate::paging::{Page, PageRequest};
pub use crypto::{CryptoError, FileKeyRing, KeyRing, MemoryKeyRing};

/// The action recorded in the audit log for payload access.
pub const ACCESS_ACTION: &str = "secretmanager.versions.access";
/// The principal recorded for a caller that could not be authenticated.
pub const UNAUTHENTICATED: &str = "unauthenticated";
/// The action recorded when a repository is pointed at a secret version.
pub const ATTACH_ACTION: &str = "artifactregistry.repositories.attachSecret";

/// Most resources whose refused anonymous attempts are tracked in one minute.
const MAX_SAMPLED_RESOURCES: usize = 10_000;

/// Keeps refused anonymous and unauthenticated attempts from filling the audit
/// log: at most one row per resource and minute, which also counts the
/// attempts of the previous minute that got no row of their own.
#[derive(Default)]
struct AnonymousAuditSampler {
    slots: std::sync::Mutex<std::collections::HashMap<String, (i64, u64)>>,
}

impl AnonymousAuditSampler {
    /// `Some(n)`: write a row now, mentioning `n` attempts not written since
    /// the last row; `None`: only count this one.
    fn admit(&self, resource: &str) -> Option<u64> {
        let minute = time::OffsetDateTime::now_utc().unix_timestamp() / 60;
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((m, n)) = slots.get_mut(resource) {
            if *m == minute {
                *n += 1;
                return None;
            }
            let suppressed = *n;
            *m = minute;
            *n = 0;
            return Some(suppressed);
        }
        if slots.len() >= MAX_SAMPLED_RESOURCES {
            slots.retain(|_, (m, _)| *m == minute);
            if slots.len() >= MAX_SAMPLED_RESOURCES {
                return None;
            }
        }
        slots.insert(resource.to_owned(), (minute, 0));
        Some(0)
    }
}

fn with_suppressed(reason: String, suppressed: u64) -> String {
    if suppressed == 0 {
        reason
    } else {
        format!("{reason} [and {suppressed} more refused anonymous attempts on this secret in the previous minute, not recorded one by one]")
    }
}

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
}

fn secret_resource(name: &SecretName) -> Resource {
    Resource::Secret {
        project: name.project.to_string(),
        secret: name.secret.to_string(),
    }
}

fn secret_from_record(name: &SecretName, record: SecretRecord) -> Result<Secret, SecretError> {
    Ok(Secret {
        name: name.to_string(),
        labels: Labels::new(record.labels).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        create_time: record.create_time,
    })
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

/// Whether the caller is anonymous (an anonymous registry token included).
fn member_less(principal: &Principal) -> bool {
    match principal {
        Principal::Anonymous => true,
        Principal::RegistryToken { principal, .. } | Principal::ReadOnly(principal) => {
            member_less(principal)
        }
        _ => false,
    }
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
        }
    }

    /// Check that `principal`, pointing `repository` at the secret `version`
    /// (`projects/P/secrets/S/versions/V`), may read that secret itself
    /// (`secretmanager.versions.access`): the registry will send the payload
    /// wherever the repository's upstream is. Allowed or not, the attempt is
    /// written to the audit log.
    pub async fn authorize_attachment(
        &self,
        principal: &Principal,
        version: &str,
        repository: &str,
    ) -> Result<(), SecretError> {
        let name: SecretVersionName = version.parse()?;
        let result = self
            .access
            .authorize(
                principal,
                Permission::VersionsAccess,
                &secret_resource(&name.secret),
            )
            .await;
        let reason = match &result {
            Ok(()) => format!("attached to {repository}"),
            Err(e) => format!("{e} (attaching it to {repository})"),
        };
        let record = AuditRecord {
            time: now_rfc3339(),
            project: name.secret.project.to_string(),
            principal: principal.to_string(),
            action: ATTACH_ACTION.to_owned(),
            resource: name.secret.to_string(),
            version: Some(name.version.to_string()),
            allowed: result.is_ok(),
            reason,
        };
        self.store.append_audit(&record).await?;
        tracing::info!(version = %name, %principal, %repository, allowed = result.is_ok(), "secret attachment to a repository");
        Ok(result?)
    }

    /// Remove the oldest audit entries beyond the newest `keep`.
    pub async fn prune_audit(&self, keep: u64) -> Result<u64, SecretError> {
        Ok(self.store.prune_audit(keep).await?)
    }

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
            create_time: now_rfc3339(),
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

    /// Add a version holding `payload`; it becomes the `latest`.
    pub async fn add_version(
        &self,
        principal: &Principal,
        name: &SecretName,
        payload: &SecretPayload,
    ) -> Result<SecretVersion, SecretError> {
        self.access
            .authorize(principal, Permission::VersionsAdd, &secret_resource(name))
            .await?;
        self.require_secret(name).await?;
        let version = self.insert_version(name, payload).await?;
        tracing::info!(version = %version.name, %principal, "secret version added");
        Ok(version)
    }

    /// A version's metadata; `latest` resolves to the newest enabled version.
    pub async fn get_version(
        &self,
        principal: &Principal,
        name: &SecretVersionName,
    ) -> Result<SecretVersion, SecretError> {
        self.access
            .authorize(
                principal,
                Permission::VersionsGet,
                &secret_resource(&name.secret),
            )
            .await?;
        let record = self.resolve(name).await?;
        version_from_record(&name.secret, record)
    }

    /// One page of the versions of a secret, newest first; the cursor is a
    /// version number (the page holds the versions below it).
    pub async fn list_versions(
        &self,
        principal: &Principal,
        name: &SecretName,
        page: &PageRequest<i64>,
    ) -> Result<Page<SecretVersion, i64>, SecretError> {
        self.access
            .authorize(principal, Permission::VersionsList, &secret_resource(name))
            .await?;
        self.require_secret(name).await?;
        let rows = self
            .store
            .list_versions(
                name.project.as_str(),
                name.secret.as_str(),
                page.after,
                page.limit(),
            )
            .await?;
        Page::from_rows(rows, page, |v| v.number)
            .try_map(|record| version_from_record(name, record))
    }

    /// Make a disabled version accessible again; fails on a destroyed version.
    pub async fn enable_version(
        &self,
        principal: &Principal,
        name: &SecretVersionName,
    ) -> Result<SecretVersion, SecretError> {
        self.set_state(principal, name, VersionState::Enabled).await
    }

    /// Keep a version but refuse access to it; fails on a destroyed version.
    pub async fn disable_version(
        &self,
        principal: &Principal,
        name: &SecretVersionName,
    ) -> Result<SecretVersion, SecretError> {
        self.set_state(principal, name, VersionState::Disabled)
            .await
    }

    /// Wipe a version's payload for good; the version stays listed as DESTROYED.
    pub async fn destroy_version(
        &self,
        principal: &Principal,
        name: &SecretVersionName,
    ) -> Result<SecretVersion, SecretError> {
        self.access
            .authorize(
                principal,
                Permission::VersionsManage,
                &secret_resource(&name.secret),
            )
            .await?;
        let record = self.resolve(name).await?;
        let secret = &name.secret;
        self.store
            .destroy_version(
                secret.project.as_str(),
                secret.secret.as_str(),
                record.number,
                &now_rfc3339(),
            )
            .await?;
        tracing::info!(version = %number_name(secret, record.number), %principal, "secret version destroyed");
        self.version_by_number(secret, record.number).await
    }

    /// Read a version's payload as `principal`. `latest` is the newest ENABLED
    /// version. The attempt is written to the audit log whatever its outcome.
    pub async fn access(
        &self,
        principal: &Principal,
        name: &SecretVersionName,
    ) -> Result<AccessedVersion, SecretError> {
        self.audited_access(principal, name, String::new()).await
    }

    /// [`SecretService::access_as_service_agent`] for callers holding strings:
    /// `project` is a project id, `version` a full version name
    /// (`projects/P/secrets/S/versions/V`), and `agent_of` names a project's
    /// service agent from its project number (IAM's `service_agent`).
    pub async fn access_as_project_service_agent(
        &self,
        project: &str,
        version: &str,
        agent_of: impl Fn(i64) -> Principal + Send,
    ) -> Result<AccessedVersion, SecretError> {
        let (project_id, name, agent) = self.project_agent(project, version, agent_of).await?;
        self.access_as_service_agent(&project_id, &name, &agent)
            .await
    }

    /// Parse `project` and `version`, and name the project's service agent.
    async fn project_agent(
        &self,
        project: &str,
        version: &str,
        agent_of: impl Fn(i64) -> Principal + Send,
    ) -> Result<(ProjectId, SecretVersionName, Principal), SecretError> {
        let project_id: ProjectId = project
            .parse()
            .map_err(|e: entrepot_domain::NameError| SecretError::Invalid(e.into()))?;
        let name: SecretVersionName = version.parse()?;
        let record = self
            .projects
            .get_project(project_id.as_str())
            .await?
            .ok_or_else(|| SecretError::ProjectNotFound(project.to_owned()))?;
        Ok((project_id, name, agent_of(record.number)))
    }

    /// [`SecretService::access_as_project_service_agent`] for a remote
    /// repository: the audit entry names `repository`, the one the read is for.
    pub async fn access_for_repository(
        &self,
        project: &str,
        repository: &str,
        version: &str,
        agent_of: impl Fn(i64) -> Principal + Send,
    ) -> Result<AccessedVersion, SecretError> {
        let (project_id, name, agent) = self.project_agent(project, version, agent_of).await?;
        self.agent_access(
            &project_id,
            &name,
            &agent,
            format!("as the service agent of projects/{project_id}, for {repository}"),
        )
        .await
    }

    /// Read a version's payload as `agent`, the service agent of `project`, on
    /// behalf of that project (a remote repository's upstream credentials). The
    /// same checks as [`SecretService::access`]; audited with the agent as the
    /// principal.
    pub async fn access_as_service_agent(
        &self,
        project: &ProjectId,
        name: &SecretVersionName,
        agent: &Principal,
    ) -> Result<AccessedVersion, SecretError> {
        self.agent_access(
            project,
            name,
            agent,
            format!("as the service agent of projects/{project}"),
        )
        .await
    }

    async fn agent_access(
        &self,
        project: &ProjectId,
        name: &SecretVersionName,
        agent: &Principal,
        context: String,
    ) -> Result<AccessedVersion, SecretError> {
        self.audited_access(agent, name, context)
            .await
            .map_err(|e| match e {
                SecretError::Auth(AuthError::Denied { .. }) => SecretError::ServiceAgentDenied {
                    agent: agent.to_string(),
                    project: project.to_string(),
                    secret: name.secret.to_string(),
                    secret_project: name.secret.project.to_string(),
                    secret_id: name.secret.secret.to_string(),
                },
                other => other,
            })
    }

    /// Record an access attempt whose caller could not be authenticated, so that
    /// the audit log holds every attempt, not only those that reached
    /// authorization. `reason` must not contain the presented credentials.
    pub async fn audit_unauthenticated_access(
        &self,
        name: &SecretVersionName,
        reason: &str,
    ) -> Result<(), SecretError> {
        let Some(suppressed) = self.anonymous_audit.admit(&name.secret.to_string()) else {
            tracing::debug!(version = %name, "unauthenticated secret version access refused (counted)");
            return Ok(());
        };
        let record = AuditRecord {
            time: now_rfc3339(),
            project: name.secret.project.to_string(),
            principal: UNAUTHENTICATED.to_owned(),
            action: ACCESS_ACTION.to_owned(),
            resource: name.secret.to_string(),
            version: Some(name.version.to_string()),
            allowed: false,
            reason: with_suppressed(reason.to_owned(), suppressed),
        };
        self.store.append_audit(&record).await?;
        tracing::info!(version = %name, reason, "unauthenticated secret version access refused");
        Ok(())
    }

    /// One page of the audit entries of a project, newest first; with
    /// `resource`, only that secret (or what is under the given name). The
    /// cursor is an entry's sequence number (the page holds older entries).
    ///
    /// With `resource`, a page reads the project's entries newest first until
    /// it has found enough that match: its cost grows with the entries it
    /// passes over, which the log's pruning bounds.
    pub async fn audit_log(
        &self,
        principal: &Principal,
        project: &ProjectId,
        resource: Option<&str>,
        page: &PageRequest<i64>,
    ) -> Result<Page<AuditRecord, i64>, SecretError> {
        // Who read which secret is as sensitive as who may: same permission as the policy.
        self.access
            .authorize(
                principal,
                Permission::ProjectsGetIamPolicy,
                &Resource::Project(project.to_string()),
            )
            .await?;
        self.require_project(project).await?;
        let rows = self
            .store
            .list_audit(project.as_str(), resource, page.after, page.limit())
            .await?;
        Ok(Page::from_rows(rows, page, |e| e.seq).map(|e| e.record))
    }

    async fn audited_access(
        &self,
        principal: &Principal,
        name: &SecretVersionName,
        context: String,
    ) -> Result<AccessedVersion, SecretError> {
        let mut version = name.version.to_string();
        let result = self.checked_access(principal, name, &mut version).await;
        let mut reason = match &result {
            Ok(_) => context,
            Err(e) if context.is_empty() => e.to_string(),
            Err(e) => format!("{e} ({context})"),
        };
        if result.is_err() && member_less(principal) {
            // Anyone can make these: bounded, like unauthenticated attempts.
            match self.anonymous_audit.admit(&name.secret.to_string()) {
                Some(suppressed) => reason = with_suppressed(reason, suppressed),
                None => return result,
            }
        }
        let record = AuditRecord {
            time: now_rfc3339(),
            project: name.secret.project.to_string(),
            principal: principal.to_string(),
            action: ACCESS_ACTION.to_owned(),
            resource: name.secret.to_string(),
            version: Some(version),
            allowed: result.is_ok(),
            reason,
        };
        // No audit entry, no payload.
        self.store.append_audit(&record).await?;
        match &result {
            Ok(accessed) => {
                tracing::info!(version = %accessed.name, %principal, "secret version accessed")
            }
            Err(e) => {
                tracing::info!(version = %name, %principal, error = %e, "secret version access refused")
            }
        }
        result
    }

    async fn checked_access(
        &self,
        principal: &Principal,
        name: &SecretVersionName,
        resolved: &mut String,
    ) -> Result<AccessedVersion, SecretError> {
        self.access
            .authorize(
                principal,
                Permission::VersionsAccess,
                &secret_resource(&name.secret),
            )
            .await?;
        let record = self.resolve(name).await?;
        *resolved = record.number.to_string();
        let exact = number_name(&name.secret, record.number);
        match record.state.parse().map_err(StoreError::Corrupt)? {
            VersionState::Enabled => {}
            VersionState::Disabled => return Err(SecretError::VersionDisabled(exact.to_string())),
            VersionState::Destroyed => {
                return Err(SecretError::VersionDestroyed(exact.to_string()))
            }
        }
        let secret = &name.secret;
        let sealed = self
            .store
            .sealed_payload(
                secret.project.as_str(),
                secret.secret.as_str(),
                record.number,
            )
            .await?
            // Destroyed between the two reads.
            .ok_or_else(|| SecretError::VersionDestroyed(exact.to_string()))?;
        let payload = crypto::open(self.keys.as_ref(), &exact.to_string(), &sealed)?;
        Ok(AccessedVersion {
            name: exact,
            payload,
        })
    }

    async fn set_state(
        &self,
        principal: &Principal,
        name: &SecretVersionName,
        state: VersionState,
    ) -> Result<SecretVersion, SecretError> {
        self.access
            .authorize(
                principal,
                Permission::VersionsManage,
                &secret_resource(&name.secret),
            )
            .await?;
        let record = self.resolve(name).await?;
        let secret = &name.secret;
        if !self
            .store
            .set_version_state(
                secret.project.as_str(),
                secret.secret.as_str(),
                record.number,
                state.as_str(),
            )
            .await?
        {
            return Err(SecretError::VersionDestroyed(
                number_name(secret, record.number).to_string(),
            ));
        }
        tracing::info!(version = %number_name(secret, record.number), %principal, %state, "secret version state changed");
        self.version_by_number(secret, record.number).await
    }

    async fn insert_version(
        &self,
        name: &SecretName,
        payload: &SecretPayload,
    ) -> Result<SecretVersion, SecretError> {
        let project = name.project.as_str();
        let secret = name.secret.as_str();
        // The number is part of the associated data, so it is chosen before sealing;
        // a concurrent add takes the number first and this one retries with the next.
        for _ in 0..16 {
            let number = self.store.next_version_number(project, secret).await?;
            let version_name = number_name(name, number).to_string();
            let sealed = crypto::seal(self.keys.as_ref(), &version_name, payload)?;
            let record = VersionRecord {
                project: project.to_owned(),
                secret: secret.to_owned(),
                number,
                state: VersionState::Enabled.as_str().to_owned(),
                create_time: now_rfc3339(),
                destroy_time: None,
            };
            match self.store.insert_version(&record, &sealed).await {
                Ok(()) => return version_from_record(name, record),
                Err(StoreError::AlreadyExists) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Corrupt(format!(
            "could not allocate a version number for {name} under contention"
        ))
        .into())
    }

    async fn resolve(&self, name: &SecretVersionName) -> Result<VersionRecord, SecretError> {
        let secret = &name.secret;
        self.require_secret(secret).await?;
        let (project, id) = (secret.project.as_str(), secret.secret.as_str());
        match name.version {
            VersionId::Latest => self
                .store
                .latest_enabled_version(project, id)
                .await?
                .ok_or_else(|| SecretError::NoEnabledVersion(secret.to_string())),
            VersionId::Number(n) => self
                .store
                .get_version(project, id, n as i64)
                .await?
                .ok_or_else(|| SecretError::VersionNotFound(name.to_string())),
        }
    }

    async fn version_by_number(
        &self,
        secret: &SecretName,
        number: i64,
    ) -> Result<SecretVersion, SecretError> {
        let record = self
            .store
            .get_version(secret.project.as_str(), secret.secret.as_str(), number)
            .await?
            .ok_or_else(|| SecretError::VersionNotFound(number_name(secret, number).to_string()))?;
        version_from_record(secret, record)
    }

    async fn require_secret(&self, name: &SecretName) -> Result<SecretRecord, SecretError> {
        self.store
            .get_secret(name.project.as_str(), name.secret.as_str())
            .await?
            .ok_or_else(|| SecretError::NotFound(name.to_string()))
    }

    async fn require_project(&self, project: &ProjectId) -> Result<(), SecretError> {
        match self.projects.get_project(project.as_str()).await? {
            Some(_) => Ok(()),
            None => Err(SecretError::ProjectNotFound(project.to_string())),
        }
    }
}

/// What a master-key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrapReport {
    /// The primary master key after the rotation.
    pub key_id: String,
    /// Data keys rewrapped with it.
    pub rewrapped: u64,
}

/// Rewrap every stored data key with the key ring's primary master key.
///
/// Run after adding a new primary key (`FileKeyRing::rotate`). Payloads are not
/// touched; each wrapped key is replaced only if it did not change meanwhile, all
/// in one transaction. Keys already wrapped by the primary are left alone, so the
/// call can be repeated after an interruption.
pub async fn rewrap_data_keys(
    store: &dyn SecretStore,
    keys: &dyn KeyRing,
) -> Result<RewrapReport, SecretError> {
    let primary = keys.primary_id();
    let mut replacements: Vec<(WrappedKeyRecord, WrappedKeyRecord)> = Vec::new();
    for old in store.wrapped_keys().await? {
        if old.key_id == primary {
            continue;
        }
        let version_name = format!(
            "projects/{}/secrets/{}/versions/{}",
            old.project, old.secret, old.number
        );
        let new = crypto::rewrap(
            keys,
            &version_name,
            &crypto::WrappedDataKey {
                key_id: old.key_id.clone(),
                bytes: old.wrapped_key.clone(),
            },
        )?;
        let replacement = WrappedKeyRecord {
            key_id: new.key_id,
            wrapped_key: new.bytes,
            ..old.clone()
        };
        replacements.push((old, replacement));
    }
    let rewrapped = store.replace_wrapped_keys(&replacements).await?;
    Ok(RewrapReport {
        key_id: primary,
        rewrapped,
    })
}

/// The secrets of a [`SecretStore`], as the IAM service asks after them.
pub struct StoredSecrets(pub Arc<dyn SecretStore>);

#[async_trait::async_trait]
impl crate::iam::SecretDirectory for StoredSecrets {
    async fn secret_exists(&self, project: &str, secret: &str) -> Result<bool, StoreError> {
        Ok(self.0.get_secret(project, secret).await?.is_some())
    }
}

/// The remote cache reads upstream credentials through the secret manager, as
/// the project's service agent: IAM-checked and audited like any access.
#[async_trait::async_trait]
impl crate::remote::SecretReader for SecretService {
    async fn read_as_service_agent(
        &self,
        repository: &str,
        version: &str,
    ) -> Result<crate::remote::SecretPayload, entrepot_upstream::CredentialError> {
        let project = repository
            .strip_prefix("projects/")
            .and_then(|r| r.split('/').next())
            .unwrap_or(repository);
        let accessed = self
            .access_for_repository(project, repository, version, crate::iam::service_agent)
            .await
            .map_err(|e| entrepot_upstream::CredentialError(e.to_string()))?;
        Ok(crate::remote::SecretPayload {
            version_name: accessed.name.to_string(),
            data: accessed.payload.as_bytes().to_vec(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::access::{AllowAll, Credentials};
    use async_trait::async_trait;
    use entrepot_storage::testing::{file_stores, memory_stores};

    /// Allows everything except payload access by `user:mallory@example.com`.
    struct DenyMallory;

    #[async_trait]
    impl AccessControl for DenyMallory {
        async fn authenticate(&self, _c: Option<&Credentials>) -> Result<Principal, AuthError> {
            Ok(Principal::Anonymous)
        }
        async fn authorize(
            &self,
            p: &Principal,
            perm: Permission,
            r: &Resource,
        ) -> Result<(), AuthError> {
            if *p == Principal::User("mallory@example.com".into())
                && perm == Permission::VersionsAccess
            {
                return Err(AuthError::Denied {
                    principal: p.to_string(),
                    permission: perm.as_str(),
                    resource: r.to_string(),
                });
            }
            Ok(())
        }
    }

    async fn service(access: Arc<dyn AccessControl>) -> SecretService {
        let stores = memory_stores().await.unwrap();
        stores.metadata.create_project("demo").await.unwrap();
        SecretService::new(
            stores.secrets,
            stores.metadata,
            Arc::new(MemoryKeyRing::generate()),
            access,
        )
    }

    fn payload(s: &str) -> SecretPayload {
        SecretPayload::new(s.as_bytes().to_vec()).unwrap()
    }

    fn vname(s: &str) -> SecretVersionName {
        format!("projects/demo/secrets/tok/versions/{s}")
            .parse()
            .unwrap()
    }

    #[tokio::test]
    async fn latest_follows_enabled_versions_and_destroy_is_final() {
        let svc = service(Arc::new(AllowAll)).await;
        let alice = Principal::User("alice@example.com".into());
        let name: SecretName = "projects/demo/secrets/tok".parse().unwrap();
        let (_, v1) = svc
            .create(&alice, &name, Labels::default(), Some(payload("one")))
            .await
            .unwrap();
        assert_eq!(v1.unwrap().name, "projects/demo/secrets/tok/versions/1");
        svc.add_version(&alice, &name, &payload("two"))
            .await
            .unwrap();
        let latest = svc.access(&alice, &vname("latest")).await.unwrap();
        assert_eq!(
            (latest.name.to_string().as_str(), latest.payload.as_bytes()),
            (vname("2").to_string().as_str(), &b"two"[..])
        );
        svc.disable_version(&alice, &vname("2")).await.unwrap();
        assert_eq!(
            svc.access(&alice, &vname("latest"))
                .await
                .unwrap()
                .payload
                .as_bytes(),
            b"one"
        );
        assert!(matches!(
            svc.access(&alice, &vname("2")).await,
            Err(SecretError::VersionDisabled(_))
        ));
        let destroyed = svc.destroy_version(&alice, &vname("1")).await.unwrap();
        assert_eq!(destroyed.state, VersionState::Destroyed);
        let err = svc.access(&alice, &vname("1")).await.unwrap_err();
        assert!(err.to_string().contains("DESTROYED"), "{err}");
        assert!(matches!(
            svc.access(&alice, &vname("latest")).await,
            Err(SecretError::NoEnabledVersion(_))
        ));
        assert!(matches!(
            svc.enable_version(&alice, &vname("1")).await,
            Err(SecretError::VersionDestroyed(_))
        ));
        svc.enable_version(&alice, &vname("2")).await.unwrap();
        assert_eq!(
            svc.access(&alice, &vname("latest"))
                .await
                .unwrap()
                .payload
                .as_bytes(),
            b"two"
        );
    }

    #[tokio::test]
    async fn every_access_attempt_is_audited() {
        let svc = service(Arc::new(DenyMallory)).await;
        let alice = Principal::User("alice@example.com".into());
        let mallory = Principal::User("mallory@example.com".into());
        let agent = Principal::ServiceAccount("service-1@entrepot.local".into());
        let name: SecretName = "projects/demo/secrets/tok".parse().unwrap();
        svc.create(&alice, &name, Labels::default(), Some(payload("one")))
            .await
            .unwrap();
        svc.access(&alice, &vname("latest")).await.unwrap();
        let denied = svc.access(&mallory, &vname("1")).await.unwrap_err();
        assert!(matches!(
            denied,
            SecretError::Auth(AuthError::Denied { .. })
        ));
        let project: ProjectId = "demo".parse().unwrap();
        svc.access_as_service_agent(&project, &vname("latest"), &agent)
            .await
            .unwrap();
        let log = svc
            .audit_log(
                &alice,
                &project,
                Some("projects/demo/secrets/tok"),
                &PageRequest::first(100),
            )
            .await
            .unwrap()
            .items;
        let entries: Vec<(String, Option<String>, bool)> = log
            .iter()
            .map(|r| (r.principal.clone(), r.version.clone(), r.allowed))
            .collect();
        assert_eq!(
            entries,
            [
                (
                    "serviceAccount:service-1@entrepot.local".to_owned(),
                    Some("1".to_owned()),
                    true
                ),
                (
                    "user:mallory@example.com".to_owned(),
                    Some("1".to_owned()),
                    false
                ),
                (
                    "user:alice@example.com".to_owned(),
                    Some("1".to_owned()),
                    true
                ),
            ]
        );
        assert!(log[0].reason.contains("service agent of projects/demo"));
        assert!(
            log[1].reason.contains("secretmanager.versions.access"),
            "{}",
            log[1].reason
        );

        let by_name = svc
            .access_as_project_service_agent("demo", "projects/demo/secrets/tok/versions/1", |n| {
                Principal::ServiceAccount(format!("service-{n}@entrepot.local"))
            })
            .await
            .unwrap();
        assert_eq!(by_name.payload.as_bytes(), b"one");
        let log = svc
            .audit_log(&alice, &project, None, &PageRequest::first(1))
            .await
            .unwrap()
            .items;
        assert!(log[0].allowed && log[0].principal.starts_with("serviceAccount:service-"));
        assert!(matches!(
            svc.access_as_project_service_agent(
                "ghost",
                "projects/demo/secrets/tok/versions/1",
                |_| Principal::Anonymous
            )
            .await,
            Err(SecretError::ProjectNotFound(_))
        ));
        assert!(matches!(
            svc.access_as_project_service_agent("demo", "tok", |_| Principal::Anonymous)
                .await,
            Err(SecretError::Invalid(_))
        ));

        // An agent without access is told which role to grant to whom on what.
        let err = svc
            .access_as_service_agent(&project, &vname("1"), &mallory)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("user:mallory@example.com")
                && err.contains("projects/demo/secrets/tok")
                && err.contains("roles/secretmanager.secretAccessor"),
            "{err}"
        );
        let log = svc
            .audit_log(&alice, &project, None, &PageRequest::first(1))
            .await
            .unwrap()
            .items;
        assert!(!log[0].allowed && log[0].principal == "user:mallory@example.com");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_adds_get_distinct_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let stores = file_stores(dir.path()).await.unwrap();
        stores.metadata.create_project("demo").await.unwrap();
        let svc = SecretService::new(
            stores.secrets,
            stores.metadata,
            Arc::new(MemoryKeyRing::generate()),
            Arc::new(AllowAll),
        );
        let name: SecretName = "projects/demo/secrets/tok".parse().unwrap();
        svc.create(&Principal::Anonymous, &name, Labels::default(), None)
            .await
            .unwrap();
        let adds: Vec<_> = (0..8)
            .map(|i| {
                let (svc, name) = (svc.clone(), name.clone());
                tokio::spawn(async move {
                    svc.add_version(&Principal::Anonymous, &name, &payload(&format!("p{i}")))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut numbers = Vec::new();
        for add in adds {
            numbers.push(add.await.unwrap().name);
        }
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), 8);
        // Each version opens under its own name: the number used in the associated
        // data is the number stored.
        for n in 1..=8 {
            svc.access(&Principal::Anonymous, &vname(&n.to_string()))
                .await
                .unwrap();
        }
    }

    #[test]
    fn secret_bearing_types_redact_themselves_in_debug() {
        let basic = Credentials::Basic {
            username: "alice".into(),
            password: "hunter2-password".into(),
        };
        let bearer = Credentials::Bearer("entp_bearer_token_value".into());
        let accessed = AccessedVersion {
            name: vname("1"),
            payload: payload("the-payload-text"),
        };
        let sealed =
            crypto::seal(&MemoryKeyRing::generate(), "n", &payload("sealed-text")).unwrap();
        let shown = format!("{basic:?} {bearer:?} {accessed:?} {sealed:?}");
        for secret in ["hunter2", "entp_bearer", "the-payload", "sealed-text"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(
            shown.contains("alice") && shown.contains("Number(1)"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn rewrap_moves_every_data_key_to_the_new_primary() {
        let stores = memory_stores().await.unwrap();
        stores.metadata.create_project("demo").await.unwrap();
        let store = stores.secrets.clone();
        let dir = tempfile::tempdir().unwrap();
        let ring = Arc::new(FileKeyRing::open_or_create(&dir.path().join("master.key")).unwrap());
        let svc = SecretService::new(
            stores.secrets,
            stores.metadata,
            ring.clone(),
            Arc::new(AllowAll),
        );
        let p = Principal::Anonymous;
        let name: SecretName = "projects/demo/secrets/tok".parse().unwrap();
        svc.create(&p, &name, Labels::default(), Some(payload("one")))
            .await
            .unwrap();
        svc.add_version(&p, &name, &payload("two")).await.unwrap();
        let new_id = ring.rotate().unwrap();
        let report = rewrap_data_keys(store.as_ref(), ring.as_ref())
            .await
            .unwrap();
        assert_eq!(
            report,
            RewrapReport {
                key_id: new_id.clone(),
                rewrapped: 2
            }
        );
        assert!(store
            .wrapped_keys()
            .await
            .unwrap()
            .iter()
            .all(|k| k.key_id == new_id));
        assert_eq!(
            rewrap_data_keys(store.as_ref(), ring.as_ref())
                .await
                .unwrap()
                .rewrapped,
            0
        );
        assert_eq!(
            svc.access(&p, &vname("1"))
                .await
                .unwrap()
                .payload
                .as_bytes(),
            b"one"
        );
        assert_eq!(
            svc.access(&p, &vname("2"))
                .await
                .unwrap()
                .payload
                .as_bytes(),
            b"two"
        );
    }

    #[tokio::test]
    async fn errors_name_the_resource_and_never_the_payload() {
        let svc = service(Arc::new(AllowAll)).await;
        let p = Principal::Anonymous;
        let name: SecretName = "projects/demo/secrets/tok".parse().unwrap();
        svc.create(&p, &name, Labels::default(), Some(payload("pa55word")))
            .await
            .unwrap();
        let labelled = svc
            .update_labels(&p, &name, Labels::parse_list("env=prod").unwrap())
            .await
            .unwrap();
        assert_eq!(labelled.labels, Labels::parse_list("env=prod").unwrap());
        assert_eq!(svc.get(&p, &name).await.unwrap().labels, labelled.labels);
        let again = svc
            .create(&p, &name, Labels::default(), None)
            .await
            .unwrap_err();
        assert!(matches!(again, SecretError::AlreadyExists(_)));
        let missing: SecretName = "projects/demo/secrets/nope".parse().unwrap();
        assert!(matches!(
            svc.get(&p, &missing).await,
            Err(SecretError::NotFound(_))
        ));
        let other: SecretName = "projects/ghost/secrets/tok".parse().unwrap();
        assert!(matches!(
            svc.create(&p, &other, Labels::default(), None).await,
            Err(SecretError::ProjectNotFound(_))
        ));
        svc.disable_version(&p, &vname("1")).await.unwrap();
        let err = svc.access(&p, &vname("1")).await.unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("pa55word"), "{shown}");
        let accessed = {
            svc.enable_version(&p, &vname("1")).await.unwrap();
            svc.access(&p, &vname("1")).await.unwrap()
        };
        assert!(!format!("{accessed:?}").contains("pa55word"));
    }
}
