//! A repository's page: its settings, the health of a remote repository's
//! credentials (with Grant access), "Test upstream", its images and tags
//! (or Python projects and versions) with sizes and digests and the command
//! to pull or install each, and its Permissions panel.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use entrepot_domain::{Format, ImagePath, Mode, Repository, RepositoryName};
use entrepot_services::remote::UpstreamReport;
use entrepot_services::{Permission, Principal};
use maud::{html, Markup};

use crate::error::ConsoleError;
use crate::form::FormData;
use crate::iam_panel::{self, held};
use crate::layout::{self, copyable, csrf, Chrome, Section};
use crate::repositories::{
    agent_of, credential_health, credential_warning, human_size, mode_label, repository_resource,
    secret_resource,
};
use crate::session::{over_tls, Signed};
use crate::ConsoleState;

/// Images, tags and Python projects shown per repository page.
const MAX_IMAGES: usize = 20;
const MAX_TAGS: &str = "50";

fn repository_name(project: &str, repository: &str) -> Result<RepositoryName, ConsoleError> {
    format!("projects/{project}/repositories/{repository}")
        .parse()
        .map_err(|e: entrepot_domain::repository::RepositoryNameError| {
            ConsoleError::NotFound(e.to_string())
        })
}

/// One tag of an image as the page lists it.
struct TagRow {
    tag: String,
    digest: Option<String>,
    size: Option<u64>,
}

/// The bytes an image manifest references (config and layers), or the sum
/// of an index's manifests.
fn manifest_size(content: &[u8]) -> Option<u64> {
    let doc: serde_json::Value = serde_json::from_slice(content).ok()?;
    let sizes = |key: &str| {
        doc.get(key).and_then(|v| v.as_array()).map(|a| {
            a.iter()
                .filter_map(|d| d.get("size")?.as_u64())
                .sum::<u64>()
        })
    };
    if let Some(m) = sizes("manifests") {
        return Some(m);
    }
    let config = doc
        .get("config")
        .and_then(|c| c.get("size"))
        .and_then(|s| s.as_u64())
        .unwrap_or(0);
    Some(config + sizes("layers").unwrap_or(0) + content.len() as u64)
}

/// The images of a hosted Docker repository with their tags.
async fn docker_content(
    state: &ConsoleState,
    principal: &Principal,
    name: &RepositoryName,
) -> Result<Vec<(String, Vec<TagRow>)>, ConsoleError> {
    let prefix = format!("{}/{}/", name.project, name.repository);
    let catalog = state
        .app
        .registry
        .catalog(principal, Some("1000"), Some(prefix.as_str()))
        .await?;
    let mut images = Vec::new();
    for entry in catalog
        .items
        .iter()
        .filter(|e| e.starts_with(&prefix))
        .take(MAX_IMAGES)
    {
        let Ok(path) = entry.parse::<ImagePath>() else {
            continue;
        };
        let tags = state
            .app
            .registry
            .list_tags(principal, &path, Some(MAX_TAGS), None)
            .await?;
        let mut rows = Vec::new();
        for tag in tags.items {
            let manifest = state
                .app
                .registry
                .get_manifest(principal, &path, &tag)
                .await
                .ok();
            rows.push(TagRow {
                digest: manifest.as_ref().map(|m| m.digest.to_string()),
                size: manifest.as_ref().and_then(|m| manifest_size(&m.content)),
                tag,
            });
        }
        images.push((entry[prefix.len()..].to_owned(), rows));
    }
    Ok(images)
}

/// A hosted Python repository's projects: name, versions, files and sizes.
async fn python_content(
    state: &ConsoleState,
    principal: &Principal,
    name: &RepositoryName,
) -> Result<Vec<(String, Vec<String>, Vec<(String, Option<u64>)>)>, ConsoleError> {
    let projects = state.app.python.project_list(principal, name).await?;
    let mut out = Vec::new();
    for project in projects.iter().take(MAX_IMAGES) {
        let page = state
            .app
            .python
            .project_page(principal, name, project)
            .await?;
        let page = page.page();
        let files = page
            .files
            .iter()
            .map(|f| (f.filename.clone(), f.size))
            .collect();
        out.push((project.clone(), page.versions.clone(), files));
    }
    Ok(out)
}

fn report_box(report: &UpstreamReport) -> Markup {
    let ok = report.reachable && report.authenticated;
    html! {
        div.alert.alert-success[ok].alert-error[!ok] #upstream-report role="status" {
            h3 { "Test upstream: " @if ok { "OK" } @else { "failed" } }
            dl.facts {
                dt { "Upstream" } dd { code { (report.upstream) } }
                dt { "Reachable" } dd { @if report.reachable { "yes" } @else { "no" } }
                dt { "Credentials accepted" } dd { @if report.authenticated { "yes" } @else { "no" } }
                @if let Some(s) = report.status { dt { "HTTP status" } dd { (s) } }
                @if let Some(v) = &report.secret_version { dt { "Secret version used" } dd { code { (v) } } }
            }
            p.report-message { (report.message) }
        }
    }
}

/// The host and scheme clients reach this registry at, from the request.
fn registry_host(headers: &HeaderMap) -> (String, &'static str) {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("REGISTRY")
        .to_owned();
    (host, if over_tls(headers) { "https" } else { "http" })
}

async fn render(
    state: &ConsoleState,
    signed: &Signed,
    headers: &HeaderMap,
    project: &str,
    repository: &str,
    query: &FormData,
    report: Option<UpstreamReport>,
) -> Result<Response, ConsoleError> {
    let name = repository_name(project, repository)?;
    let (repo, size): (Repository, u64) = state
        .app
        .repositories
        .describe_with_size(&signed.principal, &name)
        .await?;
    let resource = repository_resource(&name);
    let can_update = held(
        state,
        &signed.principal,
        &resource,
        &[Permission::RepositoriesUpdate],
    )
    .await
    .contains(Permission::RepositoriesUpdate.as_str());
    let agent = agent_of(state, signed, project).await.ok();
    let health = match &agent {
        Some((_, a)) => credential_health(state, a, &repo).await,
        None => None,
    };
    let can_grant = match &health {
        Some(h) => held(
            state,
            &signed.principal,
            &secret_resource(&h.secret),
            &[Permission::SecretsSetIamPolicy],
        )
        .await
        .contains(Permission::SecretsSetIamPolicy.as_str()),
        None => false,
    };
    let hosted = repo.mode == Mode::StandardRepository;
    let docker = if hosted && repo.format == Format::Docker {
        Some(docker_content(state, &signed.principal, &name).await)
    } else {
        None
    };
    let python = if hosted && repo.format == Format::Python {
        Some(python_content(state, &signed.principal, &name).await)
    } else {
        None
    };
    let panel = iam_panel::load(state, signed, resource).await;
    let (host, scheme) = registry_host(headers);
    let base = format!("/ui/projects/{project}/repositories/{repository}");
    let chrome = Chrome {
        signed,
        project: Some(project),
        section: Section::Repositories,
    };
    let body = html! {
        nav.breadcrumbs { a href={ "/ui/projects/" (project) "/repositories" } { "Repositories" } " / " (repository) }
        div.page-header {
            h1 { (repository) }
            span.chip { (repo.format.as_str()) }
            span.chip { (mode_label(repo.mode)) }
            span.spacer {}
            @if can_update {
                a.button #edit-repository href={ (base) "/edit" } { "Edit repository" }
            }
        }
        @if let (Some(h), Some((number, _))) = (&health, &agent) {
            @if !h.agent_can_read {
                (credential_warning(signed, h, &entrepot_domain::iam::service_agent_email(*number), can_grant, &base))
            }
        }
        @if let Some(r) = &report { (report_box(r)) }
        section.card {
            h2 { "Details" }
            dl.facts {
                dt { "Name" } dd { code { (repo.name) } }
                @if !repo.description.is_empty() { dt { "Description" } dd { (repo.description) } }
                dt { "Size" } dd { (human_size(size)) }
                dt { "Created" } dd { (repo.create_time) }
                dt { "Updated" } dd { (repo.update_time) }
                @if let Some(remote) = &repo.remote_repository_config {
                    dt { "Upstream" } dd { code { (remote.upstream) } }
                    dt { "Authentication" } dd {
                        @match (&remote.username, &remote.password_secret_version) {
                            (Some(u), Some(v)) => { "User name " code { (u) } ", password from " code { (v) } }
                            _ => "Anonymous",
                        }
                    }
                }
            }
            @if repo.remote_repository_config.is_some() {
                form.inline method="post" action={ (base) "/test-upstream" } {
                    (csrf(signed))
                    button.button #test-upstream type="submit" { "Test upstream" }
                }
            }
        }
        section.card {
            @match repo.format {
                Format::Docker => {
                    h2 { "Images" }
                    p { "Pull: " (copyable(&format!("docker pull {host}/{project}/{repository}/IMAGE:TAG"), "Copy the pull command")) }
                }
                Format::Python => {
                    h2 { "Python packages" }
                    p { "Install: " (copyable(&format!("pip install --index-url {scheme}://{host}/pypi/{project}/{repository}/simple/ PACKAGE"), "Copy the install command")) }
                }
            }
            @if !hosted {
                p.muted { "A remote repository fetches from its upstream on the first pull and keeps what it fetched." }
            }
            @match &docker {
                Some(Ok(images)) if images.is_empty() => (layout::empty("No images yet. Push one with skopeo, docker or podman.", None)),
                Some(Ok(images)) => {
                    @for (image, tags) in images {
                        h3.image-name { (image) }
                        div.table-scroll {
                            table.data.tags data-image=(image) {
                                thead { tr { th { "Tag" } th { "Digest" } th.num { "Size" } th { "Pull command" } } }
                                tbody {
                                    @for t in tags {
                                        tr data-tag=(t.tag) {
                                            td { (t.tag) }
                                            td { @if let Some(d) = &t.digest { code.digest title=(d) { (d) } } }
                                            td.num { @if let Some(s) = t.size { (human_size(s)) } }
                                            td { (copyable(&format!("docker pull {host}/{project}/{repository}/{image}:{}", t.tag), "Copy the pull command")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                Some(Err(e)) => p.muted { "Images cannot be listed: " (e.to_string()) },
                None => {}
            }
            @match &python {
                Some(Ok(projects)) if projects.is_empty() => (layout::empty("No packages yet. Upload one with twine.", None)),
                Some(Ok(projects)) => {
                    table.data.packages {
                        thead { tr { th { "Project" } th { "Versions" } th { "Files" } th { "Install" } } }
                        tbody {
                            @for (p, versions, files) in projects {
                                tr {
                                    td { (p) }
                                    td { (versions.join(", ")) }
                                    td { @for (f, s) in files { div { (f) @if let Some(s) = s { " · " (human_size(*s)) } } } }
                                    td { (copyable(&format!("pip install --index-url {scheme}://{host}/pypi/{project}/{repository}/simple/ {p}"), "Copy the install command")) }
                                }
                            }
                        }
                    }
                }
                Some(Err(e)) => p.muted { "Packages cannot be listed: " (e.to_string()) },
                None => {}
            }
        }
        section.card {
            (iam_panel::render(signed, &panel, &base, "Artifact Registry", query.raw("iam_error")))
        }
    };
    Ok(layout::page(&chrome, repository, query.raw("notice"), body).into_response())
}

/// `GET /ui/projects/{p}/repositories/{r}`.
pub async fn page(
    State(state): State<ConsoleState>,
    Path((project, repository)): Path<(String, String)>,
    headers: HeaderMap,
    signed: Signed,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let query = FormData::from_pairs(query);
    render(
        &state,
        &signed,
        &headers,
        &project,
        &repository,
        &query,
        None,
    )
    .await
}

/// `POST /ui/projects/{p}/repositories/{r}/test-upstream`: what
/// `entrepot repositories test-upstream` shows, on the repository's page.
pub async fn test_upstream(
    State(state): State<ConsoleState>,
    Path((project, repository)): Path<(String, String)>,
    headers: HeaderMap,
    signed: Signed,
    form: FormData,
) -> Result<Response, ConsoleError> {
    form.check_csrf(&signed)?;
    let name = repository_name(&project, &repository)?;
    let report = state
        .app
        .repositories
        .test_upstream(&signed.principal, &name)
        .await?;
    render(
        &state,
        &signed,
        &headers,
        &project,
        &repository,
        &FormData::default(),
        Some(report),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_of_an_image_and_an_index() {
        let image = br#"{"config":{"size":10},"layers":[{"size":100},{"size":1000}]}"#;
        assert_eq!(manifest_size(image), Some(1110 + image.len() as u64));
        let index = br#"{"manifests":[{"size":5},{"size":7}]}"#;
        assert_eq!(manifest_size(index), Some(12));
        assert_eq!(manifest_size(b"not json"), None);
    }
}
