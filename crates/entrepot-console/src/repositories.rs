//! Artifact Registry: the project's repositories, with their format, mode,
//! upstream, size and the health of their upstream credentials; and the
//! helpers the detail and form pages share.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use entrepot_domain::iam::SECRETMANAGER_SECRET_ACCESSOR;
use entrepot_domain::{Mode, Repository, RepositoryName, SecretName, SecretVersionName};
use entrepot_services::{service_agent, PageRequest, Permission, Principal, Resource};
use maud::{html, Markup};

use crate::error::ConsoleError;
use crate::form::FormData;
use crate::iam_panel::held;
use crate::layout::{self, Chrome, Section};
use crate::repository_content::pulled_cell;
use crate::secrets::{last_segment, project_id};
use crate::session::Signed;
use crate::ConsoleState;

/// Repositories listed on one page; sizes are read for this many at most.
const MAX_LISTED: u32 = 100;

/// Whether the project's service agent can read a remote repository's secret.
pub struct CredentialHealth {
    /// The secret the repository's password comes from.
    pub secret: SecretName,
    /// The version as configured (`latest` or a number).
    pub version: String,
    /// Whether the agent holds `secretmanager.versions.access` on it.
    pub agent_can_read: bool,
}

/// The project's service agent (its number is read through the project
/// service, which checks that the caller may see the project).
pub async fn agent_of(
    state: &ConsoleState,
    signed: &Signed,
    project: &str,
) -> Result<(i64, Principal), ConsoleError> {
    let record = state
        .app
        .projects
        .get(&signed.principal, &project_id(project)?)
        .await?;
    Ok((record.number, service_agent(record.number)))
}

/// The health of `repo`'s upstream credentials, `None` without a secret.
pub async fn credential_health(
    state: &ConsoleState,
    agent: &Principal,
    repo: &Repository,
) -> Option<CredentialHealth> {
    let version = repo
        .remote_repository_config
        .as_ref()?
        .password_secret_version
        .as_deref()?;
    let name: SecretVersionName = version.parse().ok()?;
    let resource = secret_resource(&name.secret);
    let agent_can_read = held(state, agent, &resource, &[Permission::VersionsAccess])
        .await
        .contains(Permission::VersionsAccess.as_str());
    Some(CredentialHealth {
        version: name.version.to_string(),
        secret: name.secret,
        agent_can_read,
    })
}

/// The IAM resource of a secret.
pub fn secret_resource(name: &SecretName) -> Resource {
    Resource::Secret {
        project: name.project.to_string(),
        secret: name.secret.to_string(),
    }
}

/// The IAM resource of a repository.
pub fn repository_resource(name: &RepositoryName) -> Resource {
    Resource::Repository {
        project: name.project.to_string(),
        repository: name.repository.to_string(),
    }
}

/// A repository's mode in words.
pub fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::StandardRepository => "Standard",
        Mode::RemoteRepository => "Remote",
        Mode::VirtualRepository => "Virtual",
    }
}

/// Bytes in binary units.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The warning a remote repository shows when its service agent cannot read
/// its secret, naming the secret and the role; with the Grant access button
/// when the caller may change the secret's policy.
pub fn credential_warning(
    signed: &Signed,
    health: &CredentialHealth,
    agent_email: &str,
    can_grant: bool,
    return_to: &str,
) -> Markup {
    let secret = health.secret.to_string();
    html! {
        div.alert.alert-warning role="alert" {
            p {
                strong { "The service agent cannot read this repository's secret." }
                " Pulls that need the upstream fail until "
                code { "serviceAccount:" (agent_email) }
                " holds " strong { "Secret Manager Secret Accessor" } " ("
                code { (SECRETMANAGER_SECRET_ACCESSOR) } ") on " code { (secret) } "; the repository uses its version "
                code { (health.version) } "."
            }
            @if can_grant {
                form.inline method="post" action="/ui/iam/add" {
                    (layout::csrf(signed))
                    input type="hidden" name="resource" value=(secret);
                    input type="hidden" name="principals" value={ "serviceAccount:" (agent_email) };
                    input type="hidden" name="role" value=(SECRETMANAGER_SECRET_ACCESSOR);
                    input type="hidden" name="grant" value="agent";
                    input type="hidden" name="return_to" value=(return_to);
                    button.button.primary type="submit" { "Grant access" }
                }
            } @else {
                p.muted { "Ask someone who may change the secret's permissions to grant the role." }
            }
        }
    }
}

/// `GET /ui/projects/{p}/repositories`.
pub async fn list(
    State(state): State<ConsoleState>,
    Path(project): Path<String>,
    signed: Signed,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let query = FormData::from_pairs(query);
    let pid = project_id(&project)?;
    let page = state
        .app
        .repositories
        .list(&signed.principal, &pid, &PageRequest::first(MAX_LISTED))
        .await?;
    let can_create = held(
        &state,
        &signed.principal,
        &Resource::Project(project.clone()),
        &[Permission::RepositoriesCreate],
    )
    .await
    .contains(Permission::RepositoriesCreate.as_str());
    let agent = agent_of(&state, &signed, &project).await.ok();
    let names: Vec<RepositoryName> = page
        .items
        .iter()
        .filter_map(|r| r.repository_name().ok())
        .collect();
    // One indexed probe per repository; a caller who may list the
    // repositories may see when they were pulled.
    let last_pulls: std::collections::HashMap<String, Option<i64>> = state
        .app
        .inventory
        .repository_last_pulls(&signed.principal, &pid, &names)
        .await
        .map(|pulls| {
            pulls
                .into_iter()
                .map(|p| (p.name, p.last_pull_ms))
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    for repo in &page.items {
        let size = match repo.repository_name() {
            Ok(name) => state
                .app
                .repositories
                .describe_with_size(&signed.principal, &name)
                .await
                .ok()
                .map(|(_, s)| s),
            Err(_) => None,
        };
        let health = match &agent {
            Some((_, a)) => credential_health(&state, a, repo).await,
            None => None,
        };
        let last_pull = last_pulls.get(&repo.name).copied().flatten();
        rows.push((repo, size, health, last_pull));
    }
    let chrome = Chrome {
        signed: &signed,
        project: Some(&project),
        section: Section::Repositories,
    };
    let body = html! {
        div.page-header {
            h1 { "Repositories" }
            @if can_create {
                a.button.primary href={ "/ui/projects/" (project) "/repositories/new" } { "Create repository" }
            }
        }
        @if rows.is_empty() {
            (layout::empty("No repositories yet. A standard repository holds what you push; a remote repository caches an upstream such as Docker Hub or PyPI.", can_create.then(|| html! {
                a.button.primary href={ "/ui/projects/" (project) "/repositories/new" } { "Create repository" }
            })))
        } @else {
            div.table-scroll {
                table.data #repositories {
                    thead { tr {
                        th { "Name" } th { "Format" } th { "Mode" } th { "Upstream" }
                        th.num { "Size" } th { "Last pull" } th { "Upstream credentials" }
                    } }
                    tbody {
                        @for (repo, size, health, last_pull) in &rows {
                            @let id = last_segment(&repo.name);
                            tr data-repository=(id) {
                                td { a href={ "/ui/projects/" (project) "/repositories/" (id) } { (id) } }
                                td { span.chip { (repo.format.as_str()) } }
                                td { (mode_label(repo.mode)) }
                                td.wrap {
                                    @if let Some(r) = &repo.remote_repository_config { (r.upstream) } @else { span.muted { "—" } }
                                }
                                td.num { @if let Some(s) = size { (human_size(*s)) } @else { span.muted { "—" } } }
                                td { @if repo.mode == Mode::VirtualRepository { span.muted { "—" } } @else { (pulled_cell(*last_pull)) } }
                                td {
                                    @match (&repo.remote_repository_config, health) {
                                        (None, _) => span.muted { "—" },
                                        (Some(_), None) => span.state.state-neutral { "Anonymous" },
                                        (Some(_), Some(h)) if h.agent_can_read => span.state.state-enabled { "OK" },
                                        (Some(_), Some(h)) => span.state.state-destroyed title={ "The service agent cannot read " (h.secret) } { "Agent cannot read secret" },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&chrome, "Repositories", query.raw("notice"), body).into_response())
}
