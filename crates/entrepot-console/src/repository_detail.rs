//! A repository's page: its settings, the health of a remote repository's
//! credentials (with Grant access), "Test upstream", its images and tags
//! (or Python projects and versions) with sizes and digests and the command
//! to pull or install each, and its Permissions panel.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use entrepot_domain::{Format, Mode, Repository, RepositoryName};
use entrepot_services::remote::UpstreamReport;
use entrepot_services::Permission;
use maud::{html, Markup};

use crate::error::ConsoleError;
use crate::form::FormData;
use crate::iam_panel::{self, held};
use crate::layout::{self, copyable, csrf, Chrome, Section};
use crate::repositories::{
    agent_of, credential_health, credential_warning, human_size, mode_label, repository_resource,
    secret_resource,
};
use crate::repository_content::{
    docker_images, pulled_cell, python_cached, python_projects, time_cell,
};
use crate::session::{over_tls, Signed};
use crate::ConsoleState;

fn repository_name(project: &str, repository: &str) -> Result<RepositoryName, ConsoleError> {
    format!("projects/{project}/repositories/{repository}")
        .parse()
        .map_err(|e: entrepot_domain::repository::RepositoryNameError| {
            ConsoleError::NotFound(e.to_string())
        })
}

/// The rows a manifest takes: one per tag, or one untagged.
fn tag_rows(tags: &[String]) -> Vec<Option<&str>> {
    if tags.is_empty() {
        vec![None]
    } else {
        tags.iter().map(|t| Some(t.as_str())).collect()
    }
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
    let listed = repo.mode != Mode::VirtualRepository;
    let docker = if listed && repo.format == Format::Docker {
        Some(docker_images(state, &signed.principal, &name).await)
    } else {
        None
    };
    let python = if hosted && repo.format == Format::Python {
        Some(python_projects(state, &signed.principal, &name).await)
    } else {
        None
    };
    let cached_python = if repo.mode == Mode::RemoteRepository && repo.format == Format::Python {
        Some(python_cached(state, &signed.principal, &name).await)
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
                p.muted { "A remote repository fetches from its upstream on the first pull and keeps what it fetched: this is what its cache holds now." }
            }
            @match &docker {
                Some(Ok((images, _))) if images.is_empty() && hosted => (layout::empty("No images yet. Push one with skopeo, docker or podman.", None)),
                Some(Ok((images, _))) if images.is_empty() => (layout::empty("Nothing cached yet. Pull an image through this repository and it is listed here.", None)),
                Some(Ok((images, more))) => {
                    @for group in images {
                        @let image = &group.image;
                        h3.image-name { (image) }
                        div.table-scroll {
                            table.data.tags data-image=(image) {
                                thead { tr { th { "Tag" } th { "Digest" } th.num { "Size" } th { "Uploaded" } th { "Last pull" } th { "Pull command" } } }
                                tbody {
                                    @for m in &group.manifests {
                                        @let r = &m.record;
                                        @let digest = r.digest.to_string();
                                        @for tag in tag_rows(&r.tags) {
                                            tr data-tag=(tag.unwrap_or("")) data-digest=(digest) {
                                                td { @if let Some(t) = tag { (t) } @else { span.muted { "untagged" } } }
                                                td { code.digest title=(digest) { (digest) } }
                                                td.num { (human_size(m.size_bytes())) }
                                                td { (time_cell(&r.create_time)) }
                                                td { (pulled_cell(r.last_pull_ms)) }
                                                td {
                                                    @match tag {
                                                        Some(t) => (copyable(&format!("docker pull {host}/{project}/{repository}/{image}:{t}"), "Copy the pull command")),
                                                        None => (copyable(&format!("docker pull {host}/{project}/{repository}/{image}@{digest}"), "Copy the pull command")),
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if *more {
                        p.muted { "Only the first manifests are shown; list them all with " code { "entrepot artifacts docker images list " (repository) " --include-tags" } "." }
                    }
                }
                Some(Err(e)) => p.muted { "Images cannot be listed: " (e.to_string()) },
                None => {}
            }
            @match &python {
                Some(Ok(projects)) if projects.is_empty() => (layout::empty("No packages yet. Upload one with twine.", None)),
                Some(Ok(projects)) => {
                    div.table-scroll {
                        table.data.packages {
                            thead { tr { th { "Project" } th { "Version" } th { "Files" } th.num { "Size" } th { "Uploaded" } th { "Last pull" } th { "Install" } } }
                            tbody {
                                @for (p, versions) in projects {
                                    @for v in versions {
                                        tr data-project=(p) data-version=(v.version) {
                                            td { (p) }
                                            td { (v.version) @if v.yanked() { " " span.chip { "yanked" } } }
                                            td { @for f in &v.files { div { (f.filename) " · " (human_size(f.size)) } } }
                                            td.num { (human_size(v.size_bytes())) }
                                            td { (time_cell(v.update_time())) }
                                            td { (pulled_cell(v.last_pull_ms())) }
                                            td { (copyable(&format!("pip install --index-url {scheme}://{host}/pypi/{project}/{repository}/simple/ {p}=={}", v.version), "Copy the install command")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                Some(Err(e)) => p.muted { "Packages cannot be listed: " (e.to_string()) },
                None => {}
            }
            @match &cached_python {
                Some(Ok((versions, _))) if versions.is_empty() => (layout::empty("Nothing cached yet. Install a package through this repository and its files are listed here.", None)),
                Some(Ok((versions, more))) => {
                    div.table-scroll {
                        table.data.packages.cached {
                            thead { tr { th { "Project" } th { "Version" } th { "Cached files" } th.num { "Size" } th { "Last pull" } th { "Install" } } }
                            tbody {
                                @for v in versions {
                                    tr data-project=(v.project) data-version=(v.version) {
                                        td { (v.project) }
                                        td { (v.version) }
                                        td {
                                            @for f in &v.files {
                                                div.cached-file data-filename=(f.record.filename) {
                                                    (f.record.filename) " · " (human_size(f.record.size)) " "
                                                    code.digest title={ "sha256:" (f.record.sha256) } { "sha256:" (f.record.sha256) }
                                                }
                                            }
                                        }
                                        td.num { (human_size(v.size_bytes())) }
                                        td { (pulled_cell(v.last_pull_ms())) }
                                        td { (copyable(&format!("pip install --index-url {scheme}://{host}/pypi/{project}/{repository}/simple/ {}=={}", v.project, v.version), "Copy the install command")) }
                                    }
                                }
                            }
                        }
                    }
                    @if *more {
                        p.muted { "Only the first cached files are shown." }
                    }
                }
                Some(Err(e)) => p.muted { "Cached packages cannot be listed: " (e.to_string()) },
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
