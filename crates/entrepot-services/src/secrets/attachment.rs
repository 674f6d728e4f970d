//! Authorizing a repository to be pointed at a secret version.

use super::*;

impl SecretService {
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
            time: self.clock.now_rfc3339(),
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
}
