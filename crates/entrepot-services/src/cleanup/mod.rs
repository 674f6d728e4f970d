//! Cleanup policies of repositories: setting them, and running them on
//! demand and on a schedule.
//!
//! A run lists the repository's versions (Docker: every manifest of every
//! image, with its tags and upload time; Python: every version of every
//! project, uploaded at its first file), asks [`evaluate`] which to delete,
//! and deletes them through the calls the registry's own deletions use
//! ([`MetadataStore::delete_manifest`], as the manifest `DELETE` does; the
//! files of a Python version). Deleting only unlinks: the garbage collector
//! reclaims the bytes. A dry run (asked for, or the repository's
//! `cleanupPolicyDryRun`) reports the same list and deletes nothing.

pub mod evaluate;
mod versions;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use entrepot_domain::cleanup::{parse_policies_value, policies_json, CleanupPolicy};
use entrepot_domain::clock::{Clock, SystemClock};
use entrepot_domain::iam::Permission;
use entrepot_domain::{Format, Manifest, Mode, RepositoryName};
use entrepot_storage::{
    AuditRecord, CleanupStore, ImageRef, MetadataStore, PythonStore, SecretStore, StoreError,
    StoredCleanupPolicies,
};
use serde::Serialize;

use crate::access::{AccessControl, AuthError, DenyAll, Principal, Resource};
use crate::metrics::Metrics;
pub use evaluate::{evaluate, Candidate, Selected};

/// The audit log's action for a cleanup run.
pub const CLEANUP_ACTION: &str = "artifactregistry.repositories.cleanup";

/// Who the audit log names for a scheduled run.
pub const SCHEDULE_PRINCIPAL: &str = "entrepot:cleanup-schedule";

/// Repositories read per page by a scheduled run.
const PAGE: u32 = 100;

/// How many indexes mentioning a manifest are read, just before it is
/// deleted, to find one that references it.
const INDEX_CANDIDATES: u32 = 50;

/// Errors of cleanup.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// The caller may not do this.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// No such repository.
    #[error("repository {0} not found")]
    NotFound(String),
    /// The policies or the request are not acceptable; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The metadata store failed.
    #[error("cleanup failed: {0}")]
    Store(#[from] StoreError),
}

/// A repository's cleanup settings as the resource shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupSettings {
    /// The policies, in the order given.
    pub policies: Vec<CleanupPolicy>,
    /// Runs only report.
    pub dry_run: bool,
}

impl CleanupSettings {
    /// The REST fields: `cleanupPolicies` (a map of id to policy) and
    /// `cleanupPolicyDryRun`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "cleanupPolicies": policies_json(&self.policies),
            "cleanupPolicyDryRun": self.dry_run,
        })
    }
}

/// One version a run deleted (or, in a dry run, would delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupItem {
    /// The image or Python project.
    pub package: String,
    /// The manifest digest or Python version.
    pub version: String,
    /// Its tags, which go with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// When it was uploaded (RFC 3339).
    pub upload_time: String,
    /// The `DELETE` policy that selected it.
    pub policy: String,
}

/// What one run of a repository's policies did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupReport {
    /// `projects/{p}/repositories/{r}`.
    pub repository: String,
    /// Nothing was deleted: `deleted` is what a real run would delete.
    pub dry_run: bool,
    /// Versions the policies were evaluated over.
    pub versions_examined: u64,
    /// Versions deleted (would be, in a dry run), in the order of deletion.
    pub deleted: Vec<CleanupItem>,
    /// Versions selected but not deleted: an index pushed meanwhile
    /// references them, or they were deleted meanwhile.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<CleanupItem>,
    /// How long the run took, in milliseconds.
    pub duration_ms: u64,
}

/// Cleanup policies: their storage, and runs.
pub struct CleanupService {
    store: Arc<dyn CleanupStore>,
    meta: Arc<dyn MetadataStore>,
    python: Arc<dyn PythonStore>,
    access: Arc<dyn AccessControl>,
    audit: Option<Arc<dyn SecretStore>>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    running: tokio::sync::Mutex<()>,
    /// Scheduled runs take turns with other servers through these.
    jobs: Option<crate::cluster::jobs::JobLeases>,
}

impl CleanupService {
    /// Cleanup over the given stores; callers are refused until
    /// [`Self::with_access_control`].
    pub fn new(
        store: Arc<dyn CleanupStore>,
        meta: Arc<dyn MetadataStore>,
        python: Arc<dyn PythonStore>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            meta,
            python,
            access: Arc::new(DenyAll),
            audit: None,
            metrics,
            clock: Arc::new(SystemClock),
            running: tokio::sync::Mutex::new(()),
            jobs: None,
        }
    }

    /// Authorize callers through `access`.
    pub fn with_access_control(mut self, access: Arc<dyn AccessControl>) -> Self {
        self.access = access;
        self
    }

    /// Record every run that deletes, and every run a caller asks for, in
    /// `audit`.
    pub fn with_audit_log(mut self, audit: Arc<dyn SecretStore>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Run scheduled passes only in this server's turn among the servers
    /// sharing the database (job `cleanup` of `jobs`), so that they never run
    /// on two at once.
    pub fn with_job_leases(mut self, jobs: crate::cluster::jobs::JobLeases) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// Tell time by `clock` (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The cleanup settings of `repo`, for a caller who may read it.
    pub async fn settings(
        &self,
        caller: &Principal,
        repo: &RepositoryName,
    ) -> Result<CleanupSettings, CleanupError> {
        self.authorize(caller, Permission::RepositoriesGet, repo)
            .await?;
        self.stored(repo).await
    }

    /// Replace the policies of `repo` with `document` (a gcloud policy
    /// file, or the REST form) and set its dry-run flag; the caller needs
    /// `artifactregistry.repositories.update`. Virtual repositories hold no
    /// content and take no policies.
    pub async fn set_policies(
        &self,
        caller: &Principal,
        repo: &RepositoryName,
        document: serde_json::Value,
        dry_run: bool,
    ) -> Result<CleanupSettings, CleanupError> {
        self.authorize(caller, Permission::RepositoriesUpdate, repo)
            .await?;
        let policies =
            parse_policies_value(document).map_err(|e| CleanupError::Invalid(e.to_string()))?;
        let found = self.repository(repo).await?;
        if found.mode == Mode::VirtualRepository {
            return Err(CleanupError::Invalid(format!(
                "{repo} is a virtual repository and holds no content; set cleanup policies on its member repositories"
            )));
        }
        let stored = StoredCleanupPolicies {
            policies: serde_json::to_string(&policies).unwrap_or_else(|_| "[]".into()),
            dry_run,
            update_time: self.clock.now_rfc3339(),
        };
        self.store.set_cleanup_policies(repo, &stored).await?;
        tracing::info!(repository = %repo, policies = policies.len(), dry_run, principal = %caller, "cleanup policies set");
        Ok(CleanupSettings { policies, dry_run })
    }

    /// Run the policies of `repo` now for `caller`. A dry run (asked for,
    /// or the repository's `cleanupPolicyDryRun`) needs
    /// `artifactregistry.repositories.get`; a real one also
    /// `artifactregistry.repositories.update` and `deleteArtifacts`. The run
    /// is written to the audit log.
    pub async fn run_now(
        &self,
        caller: &Principal,
        repo: &RepositoryName,
        dry_run: bool,
    ) -> Result<CleanupReport, CleanupError> {
        self.authorize(caller, Permission::RepositoriesGet, repo)
            .await?;
        let settings = self.stored(repo).await?;
        let dry_run = dry_run || settings.dry_run;
        if !dry_run {
            self.authorize(caller, Permission::RepositoriesUpdate, repo)
                .await?;
            self.authorize(caller, Permission::DeleteArtifacts, repo)
                .await?;
        }
        let report = self.run(repo, &settings.policies, dry_run).await?;
        self.audit(&caller.to_string(), &report).await;
        Ok(report)
    }

    /// Run the policies of every repository that has some (the schedule);
    /// a repository in dry-run mode only logs. Failures of one repository
    /// are logged and the others still run.
    pub async fn run_all(&self) -> Result<Vec<CleanupReport>, CleanupError> {
        let mut reports = Vec::new();
        let mut after: Option<RepositoryName> = None;
        loop {
            let page = self
                .store
                .repositories_with_cleanup_policies(after.as_ref(), PAGE)
                .await?;
            let full = page.len() == PAGE as usize;
            for repo in &page {
                let settings = match self.stored(repo).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(repository = %repo, error = %e, "cleanup policies could not be read");
                        continue;
                    }
                };
                if settings.policies.is_empty() {
                    continue;
                }
                match self.run(repo, &settings.policies, settings.dry_run).await {
                    Ok(report) => {
                        if !report.dry_run && !report.deleted.is_empty() {
                            self.audit(SCHEDULE_PRINCIPAL, &report).await;
                        }
                        reports.push(report);
                    }
                    Err(e) => {
                        tracing::warn!(repository = %repo, error = %e, "scheduled cleanup failed")
                    }
                }
            }
            match page.last() {
                Some(last) if full => after = Some(last.clone()),
                _ => break,
            }
        }
        Ok(reports)
    }

    /// Run [`Self::run_all`] every `every`, for as long as the returned task
    /// lives (abort it to stop).
    pub fn spawn_schedule(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let run = self.run_all();
                let ran = crate::cluster::jobs::in_turn(self.jobs.as_ref(), "cleanup", run).await;
                if let Some(Err(e)) = ran {
                    tracing::warn!(error = %e, "scheduled cleanup failed");
                }
            }
        })
    }

    /// One run over `repo`: evaluate, then (unless `dry_run`) delete.
    async fn run(
        &self,
        repo: &RepositoryName,
        policies: &[CleanupPolicy],
        dry_run: bool,
    ) -> Result<CleanupReport, CleanupError> {
        // One run at a time: two would race to delete the same versions.
        let _one_at_a_time = self.running.lock().await;
        let started = Instant::now();
        let found = self.repository(repo).await?;
        let now = self.clock.now_unix();
        let listed = match found.format {
            Format::Docker => versions::docker(self.store.as_ref(), repo, now).await?,
            Format::Python if found.mode == Mode::StandardRepository => {
                versions::python(self.python.as_ref(), repo, now).await?
            }
            // A remote Python repository's cache holds files, not versions.
            Format::Python => Vec::new(),
        };
        let candidates: Vec<Candidate> = listed.iter().map(|l| l.candidate.clone()).collect();
        let selected = evaluate(policies, &candidates, now);
        let mut report = CleanupReport {
            repository: repo.to_string(),
            dry_run,
            versions_examined: candidates.len() as u64,
            ..CleanupReport::default()
        };
        for s in selected {
            let listed = &listed[s.index];
            let item = CleanupItem {
                package: listed.candidate.package.clone(),
                version: listed.candidate.version.clone(),
                tags: listed.candidate.tags.clone(),
                upload_time: listed.upload_time.clone(),
                policy: s.policy,
            };
            if dry_run || self.delete(repo, found.format, &item).await? {
                report.deleted.push(item);
            } else {
                report.skipped.push(item);
            }
        }
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if !dry_run {
            self.metrics.cleaned_up(report.deleted.len() as u64);
        }
        tracing::info!(
            repository = %repo,
            dry_run,
            examined = report.versions_examined,
            deleted = report.deleted.len(),
            skipped = report.skipped.len(),
            ms = report.duration_ms,
            "cleanup policies ran"
        );
        for item in &report.deleted {
            tracing::debug!(repository = %repo, dry_run, package = %item.package, version = %item.version, policy = %item.policy, "cleanup deleted a version");
        }
        Ok(report)
    }

    /// Delete one selected version; false if it is no longer there, or (a
    /// manifest) an index pushed since the evaluation references it.
    async fn delete(
        &self,
        repo: &RepositoryName,
        format: Format,
        item: &CleanupItem,
    ) -> Result<bool, CleanupError> {
        match format {
            Format::Python => Ok(self
                .store
                .delete_python_version(repo, &item.package, &item.version)
                .await?
                > 0),
            Format::Docker => {
                let Ok(digest) = item.version.parse() else {
                    return Ok(false);
                };
                let image = ImageRef {
                    project: repo.project.to_string(),
                    repository: repo.repository.to_string(),
                    image: item.package.clone(),
                };
                // The same check as the manifest DELETE: the indexes
                // selected with it went before it (parents first).
                let referenced = self
                    .meta
                    .indexes_mentioning(&image, &digest, INDEX_CANDIDATES)
                    .await?
                    .into_iter()
                    .any(|m| {
                        m.digest != digest
                            && Manifest::parse(Some(&m.media_type), &m.content)
                                .is_ok_and(|p| p.manifests.iter().any(|c| c.digest == digest))
                    });
                if referenced {
                    return Ok(false);
                }
                Ok(self.meta.delete_manifest(&image, &digest).await?)
            }
        }
    }

    async fn stored(&self, repo: &RepositoryName) -> Result<CleanupSettings, CleanupError> {
        let Some(stored) = self.store.cleanup_policies(repo).await? else {
            return Ok(CleanupSettings::default());
        };
        let value: serde_json::Value = serde_json::from_str(&stored.policies)
            .map_err(|e| StoreError::Corrupt(format!("cleanup policies of {repo}: {e}")))?;
        let policies = parse_policies_value(value)
            .map_err(|e| StoreError::Corrupt(format!("cleanup policies of {repo}: {e}")))?;
        Ok(CleanupSettings {
            policies,
            dry_run: stored.dry_run,
        })
    }

    async fn repository(
        &self,
        repo: &RepositoryName,
    ) -> Result<entrepot_domain::Repository, CleanupError> {
        self.meta
            .get_repository(repo)
            .await?
            .ok_or_else(|| CleanupError::NotFound(repo.to_string()))
    }

    async fn authorize(
        &self,
        caller: &Principal,
        permission: Permission,
        repo: &RepositoryName,
    ) -> Result<(), CleanupError> {
        let resource = Resource::Repository {
            project: repo.project.to_string(),
            repository: repo.repository.to_string(),
        };
        Ok(self.access.authorize(caller, permission, &resource).await?)
    }

    async fn audit(&self, principal: &str, report: &CleanupReport) {
        let Some(audit) = &self.audit else { return };
        let summary = serde_json::json!({
            "dryRun": report.dry_run,
            "versionsExamined": report.versions_examined,
            "deleted": report.deleted.len(),
            "skipped": report.skipped.len(),
        });
        let record = AuditRecord {
            time: self.clock.now_rfc3339(),
            project: report
                .repository
                .split('/')
                .nth(1)
                .unwrap_or_default()
                .to_owned(),
            principal: principal.to_owned(),
            action: CLEANUP_ACTION.into(),
            resource: report.repository.clone(),
            version: None,
            allowed: true,
            reason: summary.to_string(),
        };
        if let Err(e) = audit.append_audit(&record).await {
            tracing::warn!(error = %e, "could not write the cleanup run to the audit log");
        }
    }
}
