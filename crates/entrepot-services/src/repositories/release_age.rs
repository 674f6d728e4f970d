//! Changes of a remote repository's minimum release age are audited: an
//! exemption is an emergency decision someone must answer for. Each change
//! goes to the `audit` tracing target and, when the service has one, to the
//! audit log table (action `entrepot.repositories.updateReleaseAge`).

use entrepot_domain::cooldown::{ReleaseAgePolicy, ReleaseAgeUpdate};
use entrepot_domain::RepositoryName;
use entrepot_storage::AuditRecord;

use super::RepositoryService;
use crate::access::Principal;
use crate::clock::now_rfc3339;

/// The audit action of a release-age change.
pub const AUDIT_ACTION: &str = "entrepot.repositories.updateReleaseAge";

impl RepositoryService {
    /// Record that `who` applied `update` to the repository `name`, whose
    /// policy was `before`.
    pub(super) async fn audit_release_age(
        &self,
        who: &Principal,
        name: &RepositoryName,
        before: &ReleaseAgePolicy,
        update: &ReleaseAgeUpdate,
    ) {
        let mut after = before.clone();
        let Ok(changes) = update.apply(&mut after) else {
            return;
        };
        if changes.is_empty() {
            return;
        }
        let reason = changes.join("; ");
        tracing::info!(target: "audit", who = %who, repository = %name, changes = %reason, "release-age settings changed");
        let Some(audit) = &self.audit else { return };
        let record = AuditRecord {
            time: now_rfc3339(),
            project: name.project.to_string(),
            principal: who.to_string(),
            action: AUDIT_ACTION.into(),
            resource: name.to_string(),
            version: None,
            allowed: true,
            reason,
        };
        if let Err(e) = audit.append_audit(&record).await {
            tracing::error!(target: "audit", error = %e, repository = %name, "a release-age change could not be written to the audit log");
        }
    }
}
