//! What the registry access policy saw needed: hosts it blocked, or would
//! have blocked in dry-run mode, counted per repository that needed them,
//! for `entrepot access-policy suggest`.
//!
//! The repository is known where the remote cache sends a request; the
//! access policy is asked deeper, by the upstream client, for every hop
//! (redirects to a blob CDN included). A task-local carries the name down
//! ([`needed_by`]). Counts are kept in memory and written at most every
//! [`WRITE_EVERY_SECS`] per host and repository (a pull of a large image
//! is hundreds of hops); the store keeps a bounded number of rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use entrepot_domain::access_policy::AccessPolicy;
use entrepot_domain::clock::{Clock, SystemClock};
use entrepot_domain::upstream::docker_preset;
use entrepot_domain::{Format, Mode, Repository};
use entrepot_storage::{HostNeedStore, MetadataStore, StoreError};
use serde::Serialize;

tokio::task_local! {
    static NEEDING_REPOSITORY: String;
}

/// Run `f` with `repository` (a resource name) as the one that needs the
/// hosts it contacts.
pub async fn needed_by<F: Future>(repository: &str, f: F) -> F::Output {
    NEEDING_REPOSITORY.scope(repository.to_owned(), f).await
}

/// The repository the current task works for, if it says.
pub fn current_repository() -> String {
    NEEDING_REPOSITORY
        .try_with(Clone::clone)
        .unwrap_or_default()
}

/// Counts of one host and repository not yet written are written after
/// this many seconds.
pub const WRITE_EVERY_SECS: i64 = 5;

/// Host and repository pairs counted in memory at most; more are counted
/// only in the metrics until the next write.
const MAX_PENDING: usize = 1_000;

/// Repositories read for the preset hosts of a suggestion at most.
const MAX_REPOSITORIES_READ: usize = 5_000;

#[derive(Default)]
struct Pending {
    blocked: u64,
    would_block: u64,
    written_at: Option<i64>,
}

/// Counts hosts the policy blocked or would block, per repository.
pub struct HostNeeds {
    store: Arc<dyn HostNeedStore>,
    metadata: Arc<dyn MetadataStore>,
    clock: Arc<dyn Clock>,
    pending: Mutex<HashMap<(String, String), Pending>>,
}

impl HostNeeds {
    /// Counts written to `store`; the repositories (for their presets)
    /// read from `metadata`.
    pub fn new(store: Arc<dyn HostNeedStore>, metadata: Arc<dyn MetadataStore>) -> Self {
        Self {
            store,
            metadata,
            clock: Arc::new(SystemClock),
            pending: Mutex::default(),
        }
    }

    /// Count one hop of `host` that was blocked (`blocked`) or only would
    /// have been, for the repository of the current task.
    pub async fn count(&self, host: &str, blocked: bool) {
        let repository = current_repository();
        let now = self.clock.now_unix();
        let due = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let key = (host.to_owned(), repository.clone());
            if !pending.contains_key(&key) && pending.len() >= MAX_PENDING {
                return;
            }
            let entry = pending.entry(key).or_default();
            if blocked {
                entry.blocked += 1;
            } else {
                entry.would_block += 1;
            }
            let due = entry
                .written_at
                .is_none_or(|at| now - at >= WRITE_EVERY_SECS);
            if due {
                let counts = (entry.blocked, entry.would_block);
                entry.blocked = 0;
                entry.would_block = 0;
                entry.written_at = Some(now);
                Some(counts)
            } else {
                None
            }
        };
        if let Some((blocked, would_block)) = due {
            if let Err(e) = self
                .store
                .count_host_need(host, &repository, blocked, would_block, now)
                .await
            {
                tracing::warn!(error = %e, %host, "could not record a host the access policy saw needed");
            }
        }
    }

    /// Write every count not written yet.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let now = self.clock.now_unix();
        let counts: Vec<((String, String), (u64, u64))> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending
                .iter_mut()
                .filter(|(_, p)| p.blocked + p.would_block > 0)
                .map(|(k, p)| {
                    let counts = (p.blocked, p.would_block);
                    p.blocked = 0;
                    p.would_block = 0;
                    p.written_at = Some(now);
                    (k.clone(), counts)
                })
                .collect()
        };
        for ((host, repository), (blocked, would_block)) in counts {
            self.store
                .count_host_need(&host, &repository, blocked, would_block, now)
                .await?;
        }
        Ok(())
    }

    /// The hosts to allow: those seen needed and still outside `policy`,
    /// and those the presets of remote repositories need (at most
    /// [`MAX_REPOSITORIES_READ`] repositories are read).
    pub async fn suggest(&self, policy: &AccessPolicy) -> Result<Suggestions, StoreError> {
        self.flush().await?;
        let mut seen: BTreeMap<String, SeenHost> = BTreeMap::new();
        for row in self.store.host_needs().await? {
            if allowed(policy, &row.host) {
                continue;
            }
            let host = seen.entry(row.host.clone()).or_insert_with(|| SeenHost {
                host: row.host.clone(),
                blocked: 0,
                would_block: 0,
                repositories: Vec::new(),
                last_seen: String::new(),
                last_unix: i64::MIN,
            });
            host.blocked += row.blocked;
            host.would_block += row.would_block;
            if !row.repository.is_empty() && !host.repositories.contains(&row.repository) {
                host.repositories.push(row.repository.clone());
            }
            if row.last_time > host.last_unix {
                host.last_unix = row.last_time;
                host.last_seen = crate::clock::rfc3339(row.last_time);
            }
        }
        let mut presets: BTreeMap<String, PresetHost> = BTreeMap::new();
        for repo in remote_repositories(self.metadata.as_ref()).await? {
            let Some(config) = &repo.remote_repository_config else {
                continue;
            };
            let hosts: (&str, &[&str]) = match repo.format {
                Format::Docker => match docker_preset(&config.upstream) {
                    Some(p) => (p.name, p.hosts),
                    None => continue,
                },
                Format::Python if config.upstream.eq_ignore_ascii_case("PYPI") => {
                    ("PYPI", entrepot_domain::upstream::PYPI_HOSTS)
                }
                Format::Python => continue,
            };
            for host in hosts.1 {
                if policy_lists(policy, host) || seen.contains_key(*host) {
                    continue;
                }
                let entry = presets
                    .entry((*host).to_owned())
                    .or_insert_with(|| PresetHost {
                        host: (*host).to_owned(),
                        preset: hosts.0.to_owned(),
                        repositories: Vec::new(),
                    });
                entry.repositories.push(repo.name.clone());
            }
        }
        let mut hosts: Vec<SeenHost> = seen.into_values().collect();
        hosts.sort_by(|a, b| {
            (b.blocked + b.would_block)
                .cmp(&(a.blocked + a.would_block))
                .then_with(|| a.host.cmp(&b.host))
        });
        let preset_hosts: Vec<PresetHost> = presets.into_values().collect();
        let all: BTreeSet<&str> = hosts
            .iter()
            .map(|h| h.host.as_str())
            .chain(preset_hosts.iter().map(|h| h.host.as_str()))
            .collect();
        let command = (!all.is_empty()).then(|| {
            let mut line = String::from("entrepot access-policy allow");
            for host in &all {
                line.push(' ');
                line.push_str(&shell_word(host));
            }
            line
        });
        Ok(Suggestions {
            hosts,
            preset_hosts,
            command,
        })
    }
}

/// `*.domain` quoted so that a shell does not expand it.
fn shell_word(host: &str) -> String {
    if host.contains('*') {
        format!("'{host}'")
    } else {
        host.to_owned()
    }
}

/// Whether the policy's allowlist already lets `host[:port]` through.
fn allowed(policy: &AccessPolicy, host: &str) -> bool {
    let mut allowlist = policy.clone();
    allowlist.enabled = true;
    match url::Url::parse(&format!("https://{host}/")) {
        Ok(url) => allowlist.allows_url(&url) || allowlist.allows(host, None),
        Err(_) => false,
    }
}

/// Whether the policy lists a preset's entry (a host, or a `*.domain`
/// pattern as written) or already allows the host.
fn policy_lists(policy: &AccessPolicy, entry: &str) -> bool {
    if policy.entries().iter().any(|e| e.to_string() == entry) {
        return true;
    }
    !entry.starts_with('*') && allowed(policy, entry)
}

/// Remote repositories of every project, at most [`MAX_REPOSITORIES_READ`].
async fn remote_repositories(metadata: &dyn MetadataStore) -> Result<Vec<Repository>, StoreError> {
    let mut out = Vec::new();
    let mut read = 0usize;
    let mut after_project = None;
    'projects: loop {
        let projects = metadata.list_projects(after_project.as_ref(), 100).await?;
        let Some(last) = projects.last().map(|p| p.id.clone()) else {
            break;
        };
        for project in &projects {
            let mut after = None;
            loop {
                let page = metadata
                    .list_repositories(&project.id, after.as_ref(), 200)
                    .await?;
                let Some(last) = page.last() else { break };
                after = last.repository_name().ok().map(|n| n.repository);
                read += page.len();
                let done = page.len() < 200 || after.is_none();
                out.extend(
                    page.into_iter()
                        .filter(|r| r.mode == Mode::RemoteRepository),
                );
                if read >= MAX_REPOSITORIES_READ {
                    break 'projects;
                }
                if done {
                    break;
                }
            }
        }
        if projects.len() < 100 {
            break;
        }
        after_project = Some(last);
    }
    Ok(out)
}

/// What `entrepot access-policy suggest` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestions {
    /// Hosts the policy blocked, or would have blocked in dry-run mode, that
    /// it still does not allow; most needed first.
    pub hosts: Vec<SeenHost>,
    /// Hosts the presets of remote repositories need that the policy does
    /// not list.
    pub preset_hosts: Vec<PresetHost>,
    /// The command that allows them all, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// A host seen needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeenHost {
    /// `host[:port]`.
    pub host: String,
    /// Hops refused.
    pub blocked: u64,
    /// Hops dry-run mode let through.
    pub would_block: u64,
    /// The repositories that needed it.
    pub repositories: Vec<String>,
    /// RFC 3339 time it was last needed.
    pub last_seen: String,
    #[serde(skip)]
    last_unix: i64,
}

/// A host a preset needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresetHost {
    /// The host or `*.domain` pattern.
    pub host: String,
    /// The preset that needs it.
    pub preset: String,
    /// The repositories using the preset.
    pub repositories: Vec<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use entrepot_storage::SqliteMetadataStore;

    #[tokio::test]
    async fn hosts_seen_needed_are_suggested_with_their_repositories_until_allowed() {
        let store = Arc::new(SqliteMetadataStore::in_memory().await.unwrap());
        let needs = HostNeeds::new(store.clone(), store.clone());
        needed_by("projects/p/repositories/hub", async {
            needs.count("cdn.example.com", false).await;
            needs.count("cdn.example.com", false).await;
        })
        .await;
        needs.count("other.example.com", true).await;
        let policy = AccessPolicy::default();
        let s = needs.suggest(&policy).await.unwrap();
        assert_eq!(s.hosts.len(), 2);
        assert_eq!(s.hosts[0].host, "cdn.example.com");
        assert_eq!(s.hosts[0].would_block, 2);
        assert_eq!(s.hosts[0].repositories, ["projects/p/repositories/hub"]);
        assert_eq!(s.hosts[1].blocked, 1);
        assert_eq!(
            s.command.as_deref(),
            Some("entrepot access-policy allow cdn.example.com other.example.com")
        );

        let mut policy = AccessPolicy::default();
        let entries = entrepot_domain::access_policy::parse_entries(&["*.example.com"]).unwrap();
        policy.allow(entries).unwrap();
        let s = needs.suggest(&policy).await.unwrap();
        assert!(s.hosts.is_empty(), "{s:?}");
        assert_eq!(s.command, None);
    }
}
