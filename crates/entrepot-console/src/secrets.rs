//! Secret Manager pages: the list with a checkbox per row and the info
//! panel (its Permissions tab), creating a secret, a secret's versions, a
//! new version (pasted or uploaded, at most 64 KiB), enabling, disabling and
//! destroying a version after a confirmation, and viewing a value.
//!
//! A payload is on a page only in the answer to "View secret value", a POST
//! that goes through the secret service's `access` (checked against
//! `secretmanager.versions.access` and written to the audit log like any
//! other read).

use axum::extract::{Multipart, Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use entrepot_domain::secret::{Labels, SecretPayload, VersionState, MAX_PAYLOAD_BYTES};
use entrepot_domain::{ProjectId, SecretName, SecretVersionName};
use entrepot_services::{PageRequest, Permission, Resource};
use maud::{html, Markup};

use crate::error::ConsoleError;
use crate::form::{FormData, CSRF_FIELD};
use crate::iam_panel::{self, held, with_query};
use crate::layout::{self, csrf, Chrome, Section};
use crate::session::Signed;
use crate::ConsoleState;

/// The most secrets the list shows, and selects at once.
const MAX_LISTED: u32 = 200;
const MAX_SELECTED: usize = 10;

pub(crate) fn project_id(project: &str) -> Result<ProjectId, ConsoleError> {
    project
        .parse()
        .map_err(|e: entrepot_domain::NameError| ConsoleError::NotFound(e.to_string()))
}

fn secret_name(project: &str, secret: &str) -> Result<SecretName, ConsoleError> {
    format!("projects/{project}/secrets/{secret}")
        .parse()
        .map_err(|e: entrepot_domain::secret::SecretNameError| {
            ConsoleError::NotFound(e.to_string())
        })
}

fn version_name(
    project: &str,
    secret: &str,
    version: &str,
) -> Result<SecretVersionName, ConsoleError> {
    format!("projects/{project}/secrets/{secret}/versions/{version}")
        .parse()
        .map_err(|e: entrepot_domain::secret::SecretNameError| {
            ConsoleError::NotFound(e.to_string())
        })
}

fn secret_resource(name: &SecretName) -> Resource {
    Resource::Secret {
        project: name.project.to_string(),
        secret: name.secret.to_string(),
    }
}

/// The last segment of a resource name.
pub(crate) fn last_segment(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// `GET /ui/projects/{p}/secrets`: the list; with `selected` and `panel`,
/// the info panel of the selected secrets.
pub async fn list(
    State(state): State<ConsoleState>,
    Path(project): Path<String>,
    signed: Signed,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let query = FormData::from_pairs(query);
    let project_id = project_id(&project)?;
    let page = state
        .app
        .secrets
        .list(
            &signed.principal,
            &project_id,
            &PageRequest::first(MAX_LISTED),
        )
        .await?;
    let project_resource = Resource::Project(project.clone());
    let can_create = held(
        &state,
        &signed.principal,
        &project_resource,
        &[Permission::SecretsCreate],
    )
    .await
    .contains(Permission::SecretsCreate.as_str());
    let ids: Vec<&str> = page.items.iter().map(|s| last_segment(&s.name)).collect();
    let selected: Vec<&str> = query
        .all("selected")
        .into_iter()
        .filter(|s| ids.contains(s))
        .take(MAX_SELECTED)
        .collect();
    let show_panel = query.get("panel") == "1" && !selected.is_empty();
    let mut panels = Vec::new();
    if show_panel {
        for s in &selected {
            let name = secret_name(&project, s)?;
            panels.push((
                *s,
                iam_panel::load(&state, &signed, secret_resource(&name)).await,
            ));
        }
    }
    let mut return_to = format!("/ui/projects/{project}/secrets?panel=1");
    for s in &selected {
        return_to = with_query(&return_to, "selected", s);
    }
    let chrome = Chrome {
        signed: &signed,
        project: Some(&project),
        section: Section::Secrets,
    };
    let body = html! {
        div.page-header {
            h1 { "Secret Manager" }
            @if can_create {
                a.button.primary href={ "/ui/projects/" (project) "/secrets/new" } { "Create secret" }
            }
        }
        div.with-panel.open[show_panel] {
            div.main-column {
                @if page.items.is_empty() {
                    (layout::empty("No secrets yet. A secret holds a token or password, such as an upstream registry's access token, in versions.", can_create.then(|| html! {
                        a.button.primary href={ "/ui/projects/" (project) "/secrets/new" } { "Create secret" }
                    })))
                } @else {
                    form #secret-list method="get" action={ "/ui/projects/" (project) "/secrets" } {
                        div.toolbar {
                            button.button #show-info-panel type="submit" name="panel" value="1" { "Show info panel" }
                            span.muted.selection-count { (selected.len()) " selected" }
                        }
                        table.data.selectable {
                            thead { tr {
                                th.check { span.visually-hidden { "Select" } }
                                th { "Name" } th { "Created" } th { "Labels" }
                            } }
                            tbody {
                                @for secret in &page.items {
                                    @let id = last_segment(&secret.name);
                                    tr.selected[selected.contains(&id)] {
                                        td.check {
                                            input type="checkbox" name="selected" value=(id)
                                                aria-label={ "Select " (id) } checked[selected.contains(&id)];
                                        }
                                        td { a href={ "/ui/projects/" (project) "/secrets/" (id) } { (id) } }
                                        td { (secret.create_time) }
                                        td {
                                            @for (k, v) in secret.labels.as_map() {
                                                span.chip { (k) ": " (v) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if show_panel {
                aside.info-panel #info-panel aria-label="Info panel" {
                    div.info-panel-head {
                        h2 { @if selected.len() == 1 { (selected[0]) } @else { (selected.len()) " secrets" } }
                        a.close href={ "/ui/projects/" (project) "/secrets" } aria-label="Close the info panel" { "×" }
                    }
                    div.tabs role="tablist" {
                        button.tab.active type="button" role="tab" data-tab="permissions" aria-selected="true" { "Permissions" }
                        button.tab type="button" role="tab" data-tab="details" aria-selected="false" { "Details" }
                    }
                    div.tab-panel data-tab-panel="permissions" {
                        @for (s, panel) in &panels {
                            @if panels.len() > 1 { h3.panel-subject { (s) } }
                            (iam_panel::render(&signed, panel, &return_to, "Secret Manager", query.raw("iam_error")))
                        }
                    }
                    div.tab-panel data-tab-panel="details" hidden {
                        @for s in &selected {
                            p { "Resource name: " code { "projects/" (project) "/secrets/" (s) } }
                            p { "Reference it from a remote repository as " code { "projects/" (project) "/secrets/" (s) "/versions/latest" } "." }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&chrome, "Secret Manager", query.raw("notice"), body).into_response())
}

struct SecretForm<'a> {
    name: &'a str,
    name_error: Option<String>,
    value_error: Option<String>,
}

fn new_secret_page(signed: &Signed, project: &str, f: &SecretForm<'_>) -> Html<String> {
    let chrome = Chrome {
        signed,
        project: Some(project),
        section: Section::Secrets,
    };
    let body = html! {
        div.page-header { h1 { "Create secret" } }
        form.card.stack method="post" enctype="multipart/form-data" action={ "/ui/projects/" (project) "/secrets" } {
            (csrf(signed))
            label for="secret-name" { "Name" }
            input #secret-name type="text" name="name" value=(f.name) required maxlength="255"
                pattern="[A-Za-z0-9_\\-]+" aria-invalid=[f.name_error.as_ref().map(|_| "true")];
            p.hint { "Letters, digits, '_' and '-'; at most 255." }
            (layout::field_error(f.name_error.as_deref()))
            (payload_fields(f.value_error.as_deref()))
            div.actions {
                button.button.primary type="submit" { "Create secret" }
                a.button href={ "/ui/projects/" (project) "/secrets" } { "Cancel" }
            }
        }
    };
    layout::page(&chrome, "Create secret", None, body)
}

fn payload_fields(error: Option<&str>) -> Markup {
    html! {
        label for="secret-value" { "Secret value" }
        textarea #secret-value name="value" rows="4" autocomplete="off" spellcheck="false"
            aria-invalid=[error.map(|_| "true")] {}
        label for="secret-file" { "or upload a file" }
        input #secret-file type="file" name="file";
        p.hint { "At most 64 KiB (" (MAX_PAYLOAD_BYTES) " bytes). A file wins over pasted text; a final newline of pasted text is kept as typed." }
        (layout::field_error(error))
    }
}

/// `GET /ui/projects/{p}/secrets/new`.
pub async fn new_form(
    State(state): State<ConsoleState>,
    Path(project): Path<String>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let project_id = project_id(&project)?;
    // The page is offered to those who may create; others get the service's refusal.
    state
        .app
        .secrets
        .list(&signed.principal, &project_id, &PageRequest::first(1))
        .await?;
    Ok(new_secret_page(
        &signed,
        &project,
        &SecretForm {
            name: "",
            name_error: None,
            value_error: None,
        },
    )
    .into_response())
}

/// A multipart form: its text fields, and the bytes of its `file` field
/// (at most one byte over the payload limit is read, to tell the size).
async fn read_multipart(
    mut multipart: Multipart,
) -> Result<(FormData, Option<Vec<u8>>), ConsoleError> {
    let bad = |e: axum::extract::multipart::MultipartError| ConsoleError::BadRequest(e.body_text());
    let mut pairs = Vec::new();
    let mut file = None;
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_owned();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(bad)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_PAYLOAD_BYTES + 1 {
                bytes.truncate(MAX_PAYLOAD_BYTES + 1);
                break;
            }
        }
        if name == "file" {
            if !bytes.is_empty() {
                file = Some(bytes);
            }
        } else if name == "value" || name == CSRF_FIELD || name == "name" {
            pairs.push((name, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    Ok((FormData::from_pairs(pairs), file))
}

/// The payload of a form: the uploaded file, else the pasted text.
fn payload_of(form: &FormData, file: Option<Vec<u8>>) -> Result<SecretPayload, String> {
    let bytes = match file {
        Some(b) => b,
        None => form.raw("value").unwrap_or("").as_bytes().to_vec(),
    };
    SecretPayload::new(bytes).map_err(|e| e.to_string())
}

/// `POST /ui/projects/{p}/secrets`: create a secret with its first version.
pub async fn create(
    State(state): State<ConsoleState>,
    Path(project): Path<String>,
    signed: Signed,
    multipart: Multipart,
) -> Result<Response, ConsoleError> {
    let (form, file) = read_multipart(multipart).await?;
    form.check_csrf(&signed)?;
    let id = form.get("name").to_owned();
    let page_with = |name_error: Option<String>, value_error: Option<String>| {
        (
            axum::http::StatusCode::BAD_REQUEST,
            new_secret_page(
                &signed,
                &project,
                &SecretForm {
                    name: &id,
                    name_error,
                    value_error,
                },
            ),
        )
            .into_response()
    };
    let name = match secret_name(&project, &id) {
        Ok(n) => n,
        Err(_) if id.is_empty() => return Ok(page_with(Some("Enter a name.".into()), None)),
        Err(e) => return Ok(page_with(Some(e.to_string()), None)),
    };
    let payload = match payload_of(&form, file) {
        Ok(p) => p,
        Err(e) => return Ok(page_with(None, Some(e))),
    };
    match state
        .app
        .secrets
        .create(&signed.principal, &name, Labels::default(), Some(payload))
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!(
            "/ui/projects/{project}/secrets/{id}?notice=secret-created"
        ))
        .into_response()),
        Err(e) => {
            let e = ConsoleError::from(e);
            if e.is_invalid_input() {
                Ok(page_with(Some(e.to_string()), None))
            } else {
                Err(e)
            }
        }
    }
}

/// A value shown after "View secret value": the version and its text.
struct Revealed {
    version: String,
    text: String,
}

async fn detail_page(
    state: &ConsoleState,
    signed: &Signed,
    project: &str,
    secret: &str,
    query: &FormData,
    revealed: Option<Revealed>,
) -> Result<Response, ConsoleError> {
    let name = secret_name(project, secret)?;
    let meta = state.app.secrets.get(&signed.principal, &name).await?;
    let versions = state
        .app
        .secrets
        .list_versions(&signed.principal, &name, &PageRequest::first(100))
        .await?;
    let resource = secret_resource(&name);
    let can = held(
        state,
        &signed.principal,
        &resource,
        &[
            Permission::VersionsAccess,
            Permission::VersionsAdd,
            Permission::VersionsManage,
        ],
    )
    .await;
    let can_access = can.contains(Permission::VersionsAccess.as_str());
    let can_add = can.contains(Permission::VersionsAdd.as_str());
    let can_manage = can.contains(Permission::VersionsManage.as_str());
    let panel = iam_panel::load(state, signed, resource).await;
    let base = format!("/ui/projects/{project}/secrets/{secret}");
    let chrome = Chrome {
        signed,
        project: Some(project),
        section: Section::Secrets,
    };
    let body = html! {
        nav.breadcrumbs { a href={ "/ui/projects/" (project) "/secrets" } { "Secret Manager" } " / " (secret) }
        div.page-header {
            h1 { (secret) }
            span.muted { "Created " (meta.create_time) }
        }
        @if let Some(r) = &revealed {
            div.card.revealed role="region" aria-label="Secret value" {
                h3 { "Value of version " (r.version) }
                pre.secret-value { (r.text) }
                p.hint { "This read is in the audit log. Leave the page to hide the value." }
            }
        }
        section.card {
            h2 { "Versions" }
            @if versions.items.is_empty() {
                (layout::empty("This secret has no versions.", None))
            } @else {
                div.table-scroll { table.data.versions {
                    thead { tr { th { "Version" } th { "State" } th { "Created" } th.actions-col { "Actions" } } }
                    tbody {
                        @for v in &versions.items {
                            @let number = last_segment(&v.name);
                            tr data-version=(number) {
                                td { (number) }
                                td { span class={ "state state-" (v.state.as_str().to_ascii_lowercase()) } { (v.state.as_str()) } }
                                td { (v.create_time) }
                                td.actions-col {
                                    @if can_access && v.state == VersionState::Enabled {
                                        form.inline method="post" action={ (base) "/versions/" (number) "/view" } {
                                            (csrf(signed))
                                            button.link-button type="submit" { "View secret value" }
                                        }
                                    }
                                    @if can_manage {
                                        @match v.state {
                                            VersionState::Enabled => {
                                                a.link-button href={ (base) "/versions/" (number) "/disable" } { "Disable" }
                                                a.link-button.danger href={ (base) "/versions/" (number) "/destroy" } { "Destroy" }
                                            }
                                            VersionState::Disabled => {
                                                a.link-button href={ (base) "/versions/" (number) "/enable" } { "Enable" }
                                                a.link-button.danger href={ (base) "/versions/" (number) "/destroy" } { "Destroy" }
                                            }
                                            VersionState::Destroyed => {}
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
        @if can_add {
            section.card {
                h2 { "New version" }
                form.stack method="post" enctype="multipart/form-data" action={ (base) "/versions" } {
                    (csrf(signed))
                    (payload_fields(None))
                    div.actions { button.button.primary type="submit" { "Add new version" } }
                }
            }
        }
        section.card {
            (iam_panel::render(signed, &panel, &base, "Secret Manager", query.raw("iam_error")))
        }
    };
    Ok(layout::page(&chrome, secret, query.raw("notice"), body).into_response())
}

/// `GET /ui/projects/{p}/secrets/{s}`.
pub async fn detail(
    State(state): State<ConsoleState>,
    Path((project, secret)): Path<(String, String)>,
    signed: Signed,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    detail_page(
        &state,
        &signed,
        &project,
        &secret,
        &FormData::from_pairs(query),
        None,
    )
    .await
}

/// `POST /ui/projects/{p}/secrets/{s}/versions`: a new version.
pub async fn add_version(
    State(state): State<ConsoleState>,
    Path((project, secret)): Path<(String, String)>,
    signed: Signed,
    multipart: Multipart,
) -> Result<Response, ConsoleError> {
    let (form, file) = read_multipart(multipart).await?;
    form.check_csrf(&signed)?;
    let name = secret_name(&project, &secret)?;
    let payload = payload_of(&form, file).map_err(ConsoleError::BadRequest)?;
    state
        .app
        .secrets
        .add_version(&signed.principal, &name, &payload)
        .await?;
    Ok(Redirect::to(&format!(
        "/ui/projects/{project}/secrets/{secret}?notice=version-added"
    ))
    .into_response())
}

/// `POST .../versions/{v}/view`: the value, read through the audited access.
pub async fn view_value(
    State(state): State<ConsoleState>,
    Path((project, secret, version)): Path<(String, String, String)>,
    signed: Signed,
    form: FormData,
) -> Result<Response, ConsoleError> {
    form.check_csrf(&signed)?;
    let name = version_name(&project, &secret, &version)?;
    let accessed = state.app.secrets.access(&signed.principal, &name).await?;
    let bytes = accessed.payload.as_bytes();
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.to_owned(),
        Err(_) => format!(
            "(binary, {} bytes; read it with `entrepot secrets versions access`)",
            bytes.len()
        ),
    };
    let revealed = Revealed {
        version: last_segment(&accessed.name.to_string()).to_owned(),
        text,
    };
    detail_page(
        &state,
        &signed,
        &project,
        &secret,
        &FormData::default(),
        Some(revealed),
    )
    .await
}

/// The state changes a version offers, with the words of their confirmation.
fn action_words(action: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match action {
        "enable" => ("Enable", "The version can be read again, and is the latest if it is the newest enabled one.", "version-enabled"),
        "disable" => ("Disable", "Reads of this version are refused until it is enabled again; `latest` moves to the newest enabled version.", "version-disabled"),
        "destroy" => ("Destroy", "The value is wiped for good. This cannot be undone.", "version-destroyed"),
        _ => return None,
    })
}

/// `GET .../versions/{v}/{action}`: the confirmation.
pub async fn confirm_state(
    State(state): State<ConsoleState>,
    Path((project, secret, version, action)): Path<(String, String, String, String)>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let (verb, consequence, _) = action_words(&action)
        .ok_or_else(|| ConsoleError::NotFound(format!("no action {action:?}")))?;
    let name = version_name(&project, &secret, &version)?;
    state
        .app
        .secrets
        .get_version(&signed.principal, &name)
        .await?;
    // Not offered to who may not take it (posting it anyway is refused by
    // the secret service).
    let resource = secret_resource(&name.secret);
    let manage = Permission::VersionsManage.as_str();
    if !held(
        &state,
        &signed.principal,
        &resource,
        &[Permission::VersionsManage],
    )
    .await
    .contains(manage)
    {
        return Err(ConsoleError::Forbidden(format!(
            "{} does not hold {manage} on {}, which changing a version's state needs",
            signed.principal, name.secret
        )));
    }
    let chrome = Chrome {
        signed: &signed,
        project: Some(&project),
        section: Section::Secrets,
    };
    let back = format!("/ui/projects/{project}/secrets/{secret}");
    let body = html! {
        div.card.confirm {
            h1 { (verb) " version " (version) " of " (secret) "?" }
            p { (consequence) }
            form method="post" action={ (back) "/versions/" (version) "/" (action) } {
                (csrf(&signed))
                div.actions {
                    button.button.primary.danger[action == "destroy"] type="submit" { (verb) " version " (version) }
                    a.button href=(back) { "Cancel" }
                }
            }
        }
    };
    Ok(layout::page(&chrome, verb, None, body).into_response())
}

/// `POST .../versions/{v}/{action}`.
pub async fn change_state(
    State(state): State<ConsoleState>,
    Path((project, secret, version, action)): Path<(String, String, String, String)>,
    signed: Signed,
    form: FormData,
) -> Result<Response, ConsoleError> {
    form.check_csrf(&signed)?;
    let (_, _, notice) = action_words(&action)
        .ok_or_else(|| ConsoleError::NotFound(format!("no action {action:?}")))?;
    let name = version_name(&project, &secret, &version)?;
    let secrets = &state.app.secrets;
    match action.as_str() {
        "enable" => secrets.enable_version(&signed.principal, &name).await?,
        "disable" => secrets.disable_version(&signed.principal, &name).await?,
        _ => secrets.destroy_version(&signed.principal, &name).await?,
    };
    Ok(Redirect::to(&format!(
        "/ui/projects/{project}/secrets/{secret}?notice={notice}"
    ))
    .into_response())
}
