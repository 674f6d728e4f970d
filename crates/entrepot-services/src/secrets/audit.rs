//! The secret audit log: reading and pruning it, recording unauthenticated
//! attempts, and sampling refused anonymous ones.

use super::*;

/// Most resources whose refused anonymous attempts are tracked in one minute.
const MAX_SAMPLED_RESOURCES: usize = 10_000;

/// Keeps refused anonymous and unauthenticated attempts from filling the audit
/// log: at most one row per resource and minute, which also counts the
/// attempts of the previous minute that got no row of their own.
#[derive(Default)]
pub(super) struct AnonymousAuditSampler {
    slots: std::sync::Mutex<std::collections::HashMap<String, (i64, u64)>>,
}

impl AnonymousAuditSampler {
    /// `Some(n)`: write a row now, mentioning `n` attempts not written since
    /// the last row; `None`: only count this one.
    pub(super) fn admit(&self, resource: &str, now_unix: i64) -> Option<u64> {
        let minute = now_unix.div_euclid(60);
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

pub(super) fn with_suppressed(reason: String, suppressed: u64) -> String {
    if suppressed == 0 {
        reason
    } else {
        format!("{reason} [and {suppressed} more refused anonymous attempts on this secret in the previous minute, not recorded one by one]")
    }
}

impl SecretService {
    /// Remove the oldest audit entries beyond the newest `keep`.
    pub async fn prune_audit(&self, keep: u64) -> Result<u64, SecretError> {
        Ok(self.store.prune_audit(keep).await?)
    }

    /// Record an access attempt whose caller could not be authenticated, so that
    /// the audit log holds every attempt, not only those that reached
    /// authorization. `reason` must not contain the presented credentials.
    pub async fn audit_unauthenticated_access(
        &self,
        name: &SecretVersionName,
        reason: &str,
    ) -> Result<(), SecretError> {
        let Some(suppressed) = self
            .anonymous_audit
            .admit(&name.secret.to_string(), self.clock.now_unix())
        else {
            tracing::debug!(version = %name, "unauthenticated secret version access refused (counted)");
            return Ok(());
        };
        let record = AuditRecord {
            time: self.clock.now_rfc3339(),
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
}
