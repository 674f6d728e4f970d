//! Reading a payload (`:access`), by a user or by a project's service agent;
//! every attempt is audited before a payload is released.

use super::audit::with_suppressed;
use super::*;

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

impl SecretService {
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
            .get_project(&project_id)
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
            match self
                .anonymous_audit
                .admit(&name.secret.to_string(), self.clock.now_unix())
            {
                Some(suppressed) => reason = with_suppressed(reason, suppressed),
                None => return result,
            }
        }
        let record = AuditRecord {
            time: self.clock.now_rfc3339(),
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
            .sealed_payload(secret, record.number)
            .await?
            // Destroyed between the two reads.
            .ok_or_else(|| SecretError::VersionDestroyed(exact.to_string()))?;
        let payload = crypto::open(self.keys.as_ref(), &exact.to_string(), &sealed)?;
        Ok(AccessedVersion {
            name: exact,
            payload,
        })
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
