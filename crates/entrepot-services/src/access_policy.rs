//! The registry access policy service: reads and changes the organisation's
//! allowlist of upstream hosts, and checks every upstream hop against it.
//!
//! The upstream client calls [`AccessPolicyService`] (as its [`HopCheck`])
//! before every DNS lookup. The stored policy is read again after at most
//! [`CACHE_FOR`], so a change made on any node takes effect on every node
//! without a restart; the node that made the change sees it at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use entrepot_domain::access_policy::{display_host, AccessPolicy, AccessPolicyError, Verdict};
use entrepot_storage::{AccessPolicyStore, AuditRecord, SecretStore, StoreError};
use entrepot_upstream::{HopCheck, HopDenied};
use serde::Serialize;
use url::Url;

use crate::access::{AccessControl, AuthError, DenyAll, Permission, Principal, Resource};
use crate::clock::now_rfc3339;
use crate::metrics::Metrics;

/// How long a node trusts the policy it read last.
pub const CACHE_FOR: Duration = Duration::from_secs(1);

/// The etag of the built-in default policy, before anyone changed it.
pub const DEFAULT_POLICY_ETAG: &str = "default";

/// How many times a change without an etag is retried against concurrent writers.
const ATTEMPTS: usize = 5;

/// Why reading or changing the policy failed.
#[derive(Debug, thiserror::Error)]
pub enum AccessPolicyServiceError {
    /// The caller may not read or change the policy.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The requested policy is not acceptable; the message says why.
    #[error(transparent)]
    Invalid(#[from] AccessPolicyError),
    /// The policy changed since the caller read it.
    #[error("the registry access policy changed since it was read (etag {0:?} is stale); describe it again, reapply the change and retry")]
    StaleEtag(String),
    /// Other changes kept winning the race; nothing was changed.
    #[error("the registry access policy is being changed by others at the same time; retry")]
    Contended,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The policy in force, with its concurrency token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentAccessPolicy {
    /// The policy.
    #[serde(flatten)]
    pub policy: AccessPolicy,
    /// Send it back with a change to make the change conditional.
    pub etag: String,
    /// RFC 3339 time of the last change; `None` for the built-in default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
}

/// One change of the policy, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessPolicyChange {
    /// The member who changed it, e.g. `user:admin`.
    pub who: String,
    /// The policy before the change.
    pub before: AccessPolicy,
    /// The policy after the change.
    pub after: AccessPolicy,
    /// The new etag.
    pub etag: String,
    /// RFC 3339 time of the change.
    pub time: String,
}

/// A durable audit log that records policy changes (besides the `audit`
/// tracing target, which always does).
#[async_trait]
pub trait AccessPolicyAuditLog: Send + Sync + 'static {
    /// Record one change; an error is logged, the change stays made.
    async fn record(&self, change: &AccessPolicyChange) -> Result<(), String>;
}

/// For installations without an audit table: changes go to the `audit`
/// tracing target only.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingAuditOnly;

#[async_trait]
impl AccessPolicyAuditLog for TracingAuditOnly {
    async fn record(&self, _change: &AccessPolicyChange) -> Result<(), String> {
        Ok(())
    }
}

/// Records policy changes in the audit log table the secret manager keeps, as
/// organisation-level entries (no project): action
/// `entrepot.accessPolicy.update` on `organization/accessPolicy`, the policy
/// before and after in the reason.
pub struct StoredAuditLog(pub Arc<dyn SecretStore>);

#[async_trait]
impl AccessPolicyAuditLog for StoredAuditLog {
    async fn record(&self, change: &AccessPolicyChange) -> Result<(), String> {
        let json = |p: &AccessPolicy| serde_json::to_string(p).unwrap_or_default();
        self.0
            .append_audit(&AuditRecord {
                time: change.time.clone(),
                project: String::new(),
                principal: change.who.clone(),
                action: "entrepot.accessPolicy.update".into(),
                resource: "organization/accessPolicy".into(),
                version: Some(change.etag.clone()),
                allowed: true,
                reason: format!(
                    "before: {}; after: {}",
                    json(&change.before),
                    json(&change.after)
                ),
            })
            .await
            .map_err(|e| e.to_string())
    }
}

struct Cached {
    read_at: Instant,
    current: Arc<CurrentAccessPolicy>,
}

/// Reads, changes and enforces the registry access policy.
pub struct AccessPolicyService {
    store: Arc<dyn AccessPolicyStore>,
    metrics: Arc<Metrics>,
    audit: Arc<dyn AccessPolicyAuditLog>,
    cache: Mutex<Option<Cached>>,
    access: Arc<dyn AccessControl>,
    needs: Option<Arc<crate::host_needs::HostNeeds>>,
    recent: Mutex<std::collections::VecDeque<RecentHop>>,
}

/// How many refused (or, in dry run, reported) hops this node remembers.
pub const RECENT_HOPS: usize = 50;

/// A hop the policy refused, or would have refused in dry run, on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentHop {
    /// The upstream host (with its port when not the default).
    pub host: String,
    /// Refused (enforce) rather than only reported (dry run).
    pub blocked: bool,
    /// RFC 3339 time of the hop.
    pub time: String,
}

/// An edit of the policy, applied to the current one.
pub type PolicyEdit = Box<dyn Fn(&mut AccessPolicy) -> Result<(), AccessPolicyError> + Send + Sync>;

/// A change a caller asks for: the etag it read (if any) and the edit to
/// apply to the current policy.
pub struct PolicyChange {
    /// The etag the caller read; a stale one refuses the change.
    pub etag: Option<String>,
    /// Applied to the current policy (again, on a race without an etag).
    pub edit: PolicyEdit,
}

impl PolicyChange {
    /// Replace the whole policy with `policy`.
    pub fn replace(policy: AccessPolicy, etag: Option<String>) -> Self {
        Self {
            etag,
            edit: Box::new(move |p| {
                *p = policy.clone();
                Ok(())
            }),
        }
    }
}

/// The message a client sees when a hop was refused.
pub fn blocked_message(host: &str) -> String {
    format!(
        "the upstream host {host} is blocked by the organization's registry access policy; an organization owner can allow it with `entrepot access-policy allow {host}`"
    )
}

fn new_etag() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl AccessPolicyService {
    /// A service over the given store; hops refused or reported are counted in `metrics`.
    pub fn new(store: Arc<dyn AccessPolicyStore>, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            metrics,
            audit: Arc::new(TracingAuditOnly),
            cache: Mutex::new(None),
            access: Arc::new(DenyAll),
            recent: Mutex::default(),
            needs: None,
        }
    }

    /// Count the hosts blocked, or let through by dry-run mode, in `needs`
    /// (what [`Self::suggest`] lists).
    pub fn with_host_needs(mut self, needs: Arc<crate::host_needs::HostNeeds>) -> Self {
        self.needs = Some(needs);
        self
    }

    /// The hosts to allow, as `entrepot access-policy suggest` lists them,
    /// for a caller who may change the policy.
    pub async fn suggest(
        &self,
        caller: &Principal,
    ) -> Result<crate::host_needs::Suggestions, AccessPolicyServiceError> {
        self.access
            .authorize(
                caller,
                Permission::AccessPolicyUpdate,
                &Resource::Organization,
            )
            .await?;
        let current = self.get().await?;
        match &self.needs {
            Some(needs) => Ok(needs.suggest(&current.policy).await?),
            None => Ok(crate::host_needs::Suggestions {
                hosts: Vec::new(),
                preset_hosts: Vec::new(),
                command: None,
            }),
        }
    }

    /// Authorize callers of [`Self::describe`] and [`Self::update`] through
    /// `access` (until then they are refused).
    pub fn with_access_control(mut self, access: Arc<dyn AccessControl>) -> Self {
        self.access = access;
        self
    }

    /// The policy in force, for any authenticated caller.
    pub async fn describe(
        &self,
        caller: &Principal,
    ) -> Result<CurrentAccessPolicy, AccessPolicyServiceError> {
        if *caller == Principal::Anonymous {
            return Err(AuthError::Unauthenticated(
                "log in (entrepot login) to read the organization's registry access policy".into(),
            )
            .into());
        }
        self.get().await
    }

    /// Change the policy for `caller`, who needs `entrepot.accessPolicy.update`
    /// on the organisation. `request` is called only once the caller is
    /// allowed, so that a caller who may not change the policy learns nothing
    /// from the validation of what they sent; its error is returned as is.
    pub async fn update<E>(
        &self,
        caller: &Principal,
        request: impl FnOnce() -> Result<PolicyChange, E>,
    ) -> Result<CurrentAccessPolicy, E>
    where
        E: From<AccessPolicyServiceError>,
    {
        self.access
            .authorize(
                caller,
                Permission::AccessPolicyUpdate,
                &Resource::Organization,
            )
            .await
            .map_err(|e| E::from(e.into()))?;
        let change = request()?;
        Ok(self
            .change(caller, change.etag.as_deref(), change.edit)
            .await?)
    }

    /// Also record every change in `audit`.
    pub fn with_audit_log(mut self, audit: Arc<dyn AccessPolicyAuditLog>) -> Self {
        self.audit = audit;
        self
    }

    /// The hops refused or reported most recently on this node, newest
    /// first (at most [`RECENT_HOPS`]; kept in memory only).
    pub fn recent_hops(&self) -> Vec<RecentHop> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().rev().cloned().collect()
    }

    fn remember(&self, host: &str, blocked: bool) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT_HOPS {
            recent.pop_front();
        }
        recent.push_back(RecentHop {
            host: host.to_owned(),
            blocked,
            time: crate::clock::now_rfc3339(),
        });
    }

    /// Forget the policy read last: another server changed it, and the next
    /// hop check reads it again.
    pub fn forget_cached(&self) {
        *self.lock_cache() = None;
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The policy in force, read from storage now.
    pub async fn get(&self) -> Result<CurrentAccessPolicy, AccessPolicyServiceError> {
        Ok(self.read().await?)
    }

    async fn read(&self) -> Result<CurrentAccessPolicy, StoreError> {
        let current = match self.store.get_access_policy().await? {
            Some(stored) => CurrentAccessPolicy {
                policy: stored.policy,
                etag: stored.etag,
                update_time: Some(stored.update_time),
            },
            None => CurrentAccessPolicy {
                policy: AccessPolicy::default(),
                etag: DEFAULT_POLICY_ETAG.to_owned(),
                update_time: None,
            },
        };
        *self.lock_cache() = Some(Cached {
            read_at: Instant::now(),
            current: Arc::new(current.clone()),
        });
        Ok(current)
    }

    /// The policy for a hop check: the one read less than [`CACHE_FOR`] ago,
    /// else a fresh read; the last one read if storage fails.
    async fn for_check(&self) -> Result<Arc<CurrentAccessPolicy>, StoreError> {
        if let Some(c) = self.lock_cache().as_ref() {
            if c.read_at.elapsed() < CACHE_FOR {
                return Ok(c.current.clone());
            }
        }
        match self.read().await {
            Ok(current) => Ok(Arc::new(current)),
            Err(e) => {
                let last = self.lock_cache().as_ref().map(|c| c.current.clone());
                match last {
                    Some(last) => {
                        tracing::warn!(error = %e, "cannot read the registry access policy; applying the last one read");
                        Ok(last)
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// Replace the whole policy, without a permission check (`who` is what the
    /// audit log records): callers go through [`Self::update`]. A given
    /// `etag` must be the current one.
    pub async fn replace(
        &self,
        who: &Principal,
        policy: AccessPolicy,
        etag: Option<&str>,
    ) -> Result<CurrentAccessPolicy, AccessPolicyServiceError> {
        self.change(who, etag, move |p| {
            *p = policy.clone();
            Ok(())
        })
        .await
    }

    /// Apply `edit` to the current policy and store the result, without a
    /// permission check (callers go through [`Self::update`]). A given `etag`
    /// must be the current one; without one, a concurrent change is merged by
    /// applying `edit` again to the newer policy.
    pub async fn change(
        &self,
        who: &Principal,
        etag: Option<&str>,
        edit: impl Fn(&mut AccessPolicy) -> Result<(), AccessPolicyError>,
    ) -> Result<CurrentAccessPolicy, AccessPolicyServiceError> {
        for _ in 0..ATTEMPTS {
            let current = self.get().await?;
            if let Some(expected) = etag {
                if expected != current.etag {
                    return Err(AccessPolicyServiceError::StaleEtag(expected.to_owned()));
                }
            }
            let mut next = current.policy.clone();
            edit(&mut next)?;
            let new_etag = new_etag();
            let stored_etag = current.update_time.as_ref().map(|_| current.etag.as_str());
            if self
                .store
                .set_access_policy(&next, &new_etag, stored_etag)
                .await?
            {
                let changed = CurrentAccessPolicy {
                    policy: next,
                    etag: new_etag,
                    update_time: Some(now_rfc3339()),
                };
                *self.lock_cache() = Some(Cached {
                    read_at: Instant::now(),
                    current: Arc::new(changed.clone()),
                });
                self.audit_change(who, current.policy, &changed).await;
                return Ok(changed);
            }
            if let Some(expected) = etag {
                return Err(AccessPolicyServiceError::StaleEtag(expected.to_owned()));
            }
        }
        Err(AccessPolicyServiceError::Contended)
    }

    async fn audit_change(
        &self,
        who: &Principal,
        before: AccessPolicy,
        after: &CurrentAccessPolicy,
    ) {
        let change = AccessPolicyChange {
            who: who.to_string(),
            before,
            after: after.policy.clone(),
            etag: after.etag.clone(),
            time: after.update_time.clone().unwrap_or_default(),
        };
        let json = |p: &AccessPolicy| serde_json::to_string(p).unwrap_or_default();
        tracing::info!(
            target: "audit",
            who = %change.who,
            before = %json(&change.before),
            after = %json(&change.after),
            etag = %change.etag,
            "registry access policy changed"
        );
        if let Err(e) = self.audit.record(&change).await {
            tracing::error!(target: "audit", error = %e, who = %change.who, "the registry access policy change could not be written to the audit log");
        }
    }
}

#[async_trait]
impl HopCheck for AccessPolicyService {
    async fn check(&self, url: &Url) -> Result<(), HopDenied> {
        let host = display_host(url);
        let current = match self.for_check().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, %host, "cannot read the registry access policy; not contacting the upstream");
                return Err(HopDenied {
                    message: format!("the registry access policy could not be read, so the upstream host {host} was not contacted; retry later"),
                    host,
                });
            }
        };
        match current.policy.verdict(url) {
            Verdict::Allowed => Ok(()),
            Verdict::Blocked => {
                self.metrics.access_policy_block();
                if let Some(needs) = &self.needs {
                    needs.count(&host, true).await;
                }
                self.remember(&host, true);
                tracing::warn!(%host, "upstream host blocked by the registry access policy");
                Err(HopDenied {
                    message: blocked_message(&host),
                    host,
                })
            }
            Verdict::WouldBlock => {
                self.metrics.access_policy_dry_run_violation();
                if let Some(needs) = &self.needs {
                    needs.count(&host, false).await;
                }
                self.remember(&host, false);
                tracing::warn!(%host, "dry run: the registry access policy would block this upstream host; letting it through");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entrepot_domain::access_policy::{parse_entries, Enforcement};
    use entrepot_storage::testing::memory_stores;

    async fn service() -> (AccessPolicyService, Arc<Metrics>) {
        let stores = memory_stores().await.unwrap();
        let metrics = Arc::new(Metrics::default());
        (
            AccessPolicyService::new(stores.access_policy, metrics.clone()),
            metrics,
        )
    }

    fn admin() -> Principal {
        Principal::User("admin".into())
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[tokio::test]
    async fn the_default_allows_docker_hub_only_until_changed() {
        let (svc, metrics) = service().await;
        let current = svc.get().await.unwrap();
        assert_eq!(current.etag, DEFAULT_POLICY_ETAG);
        assert!(svc
            .check(&url("https://registry-1.docker.io/v2/"))
            .await
            .is_ok());
        let denied = svc
            .check(&url("http://127.0.0.1:5000/v2/"))
            .await
            .unwrap_err();
        assert_eq!(denied.host, "127.0.0.1:5000");
        assert!(denied
            .message
            .contains("entrepot access-policy allow 127.0.0.1:5000"));
        assert!(metrics
            .render()
            .contains("entrepot_access_policy_blocked_total 1"));

        let entries = parse_entries(&["127.0.0.1:5000"]).unwrap();
        svc.change(&admin(), None, |p| p.allow(entries.clone()))
            .await
            .unwrap();
        // The node that made the change applies it at once.
        assert!(svc.check(&url("http://127.0.0.1:5000/v2/")).await.is_ok());
    }

    #[tokio::test]
    async fn changes_are_recorded_in_the_audit_table() {
        let stores = memory_stores().await.unwrap();
        let store = stores.secrets.clone();
        let svc = AccessPolicyService::new(stores.access_policy, Arc::new(Metrics::default()))
            .with_audit_log(Arc::new(StoredAuditLog(stores.secrets)));
        let changed = svc
            .change(&admin(), None, |p| {
                p.enabled = false;
                Ok(())
            })
            .await
            .unwrap();
        let entries = store.list_audit("", None, None, 10).await.unwrap();
        assert_eq!(entries.len(), 1);
        let entry = &entries[0].record;
        assert_eq!(entry.principal, "user:admin");
        assert_eq!(entry.action, "entrepot.accessPolicy.update");
        assert_eq!(entry.resource, "organization/accessPolicy");
        assert_eq!(entry.version.as_deref(), Some(changed.etag.as_str()));
        assert!(
            entry.reason.contains("before: {\"enabled\":true")
                && entry.reason.contains("after: {\"enabled\":false"),
            "{}",
            entry.reason
        );
    }

    #[tokio::test]
    async fn concurrent_changes_without_an_etag_are_all_applied() {
        let (svc, _) = service().await;
        let svc = Arc::new(svc);
        let tasks: Vec<_> = (0..ATTEMPTS)
            .map(|i| {
                let svc = svc.clone();
                tokio::spawn(async move {
                    let entries = parse_entries(&[format!("r{i}.example.com")]).unwrap();
                    svc.change(&admin(), None, |p| p.allow(entries.clone()))
                        .await
                        .map(|_| ())
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let current = svc.get().await.unwrap();
        for i in 0..ATTEMPTS {
            assert!(
                current.policy.allows(&format!("r{i}.example.com"), None),
                "r{i}"
            );
        }
    }

    #[tokio::test]
    async fn stale_etags_are_refused() {
        let (svc, _) = service().await;
        let first = svc
            .replace(&admin(), AccessPolicy::default(), Some(DEFAULT_POLICY_ETAG))
            .await
            .unwrap();
        assert_ne!(first.etag, DEFAULT_POLICY_ETAG);
        let err = svc
            .replace(&admin(), AccessPolicy::default(), Some(DEFAULT_POLICY_ETAG))
            .await
            .unwrap_err();
        assert!(
            matches!(err, AccessPolicyServiceError::StaleEtag(_)),
            "{err}"
        );
        svc.replace(&admin(), AccessPolicy::default(), Some(&first.etag))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn dry_run_lets_everything_through_and_counts() {
        let (svc, metrics) = service().await;
        svc.change(&admin(), None, |p| {
            p.enforcement = Enforcement::DryRun;
            Ok(())
        })
        .await
        .unwrap();
        assert!(svc.check(&url("https://quay.io/v2/")).await.is_ok());
        assert!(metrics
            .render()
            .contains("entrepot_access_policy_dry_run_violations_total 1"));
    }

    #[tokio::test]
    async fn another_node_sees_a_change_within_the_cache_window() {
        let store = memory_stores().await.unwrap().access_policy;
        let metrics = Arc::new(Metrics::default());
        let a = AccessPolicyService::new(store.clone(), metrics.clone());
        let b = AccessPolicyService::new(store, metrics);
        assert!(b.check(&url("https://ghcr.io/v2/")).await.is_err());
        let entries = parse_entries(&["ghcr.io"]).unwrap();
        a.change(&admin(), None, |p| p.allow(entries.clone()))
            .await
            .unwrap();
        tokio::time::sleep(CACHE_FOR + Duration::from_millis(50)).await;
        assert!(b.check(&url("https://ghcr.io/v2/")).await.is_ok());
    }

    /// A service whose callers are authorized by IAM, where `admin` owns
    /// the organisation and nobody else holds anything.
    async fn authorizing_service() -> AccessPolicyService {
        let stores = memory_stores().await.unwrap();
        let iam = crate::iam::IamService::new(stores.iam, stores.metadata, &[7u8; 32]);
        iam.bootstrap().await.unwrap();
        AccessPolicyService::new(stores.access_policy, Arc::new(Metrics::default()))
            .with_access_control(Arc::new(iam))
    }

    #[tokio::test]
    async fn the_service_itself_refuses_callers_who_may_not_change_the_policy() {
        let svc = authorizing_service().await;
        let bob = Principal::User("bob@example.com".into());
        // Reading needs credentials only.
        assert!(matches!(
            svc.describe(&Principal::Anonymous).await,
            Err(AccessPolicyServiceError::Auth(AuthError::Unauthenticated(
                _
            )))
        ));
        assert_eq!(svc.describe(&bob).await.unwrap().etag, DEFAULT_POLICY_ETAG);

        let read = std::sync::atomic::AtomicBool::new(false);
        let entries = parse_entries(&["ghcr.io"]).unwrap();
        let change = || {
            read.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, AccessPolicyServiceError>(PolicyChange {
                etag: None,
                edit: Box::new({
                    let entries = entries.clone();
                    move |p| p.allow(entries.clone())
                }),
            })
        };
        let refused = svc.update(&bob, change).await.unwrap_err();
        assert!(
            matches!(
                refused,
                AccessPolicyServiceError::Auth(AuthError::Denied { permission, .. })
                    if permission == "entrepot.accessPolicy.update"
            ),
            "{refused}"
        );
        assert!(
            !read.load(std::sync::atomic::Ordering::SeqCst),
            "the request of a refused caller is not read"
        );
        assert_eq!(svc.get().await.unwrap().etag, DEFAULT_POLICY_ETAG);

        let changed = svc.update(&admin(), change).await.unwrap();
        assert!(changed.policy.entries().contains(&entries[0]));
    }

    #[tokio::test]
    async fn a_service_without_access_control_refuses_everyone() {
        let (svc, _) = service().await;
        let refused = svc
            .update(&admin(), || {
                Ok::<_, AccessPolicyServiceError>(PolicyChange::replace(
                    AccessPolicy::default(),
                    None,
                ))
            })
            .await;
        assert!(matches!(
            refused,
            Err(AccessPolicyServiceError::Auth(AuthError::Denied { .. }))
        ));
    }
}
