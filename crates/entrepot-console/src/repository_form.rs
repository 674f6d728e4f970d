//! Create repository and Edit repository, with the **Remote repository
//! authentication mode** section: anonymous, or a user name and the secret
//! version holding the password, picked from the project's secrets (the
//! repository service checks that the caller may read that secret).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use entrepot_domain::repository::RemoteConfig;
use entrepot_domain::{Repository, RepositoryName};
use entrepot_services::{CreateRequest, PageRequest, Principal, RepositoryUpdate};
use maud::{html, Markup};

use crate::error::ConsoleError;
use crate::form::FormData;
use crate::layout::{self, csrf, Chrome, Section};
use crate::secrets::{last_segment, project_id};
use crate::session::Signed;
use crate::ConsoleState;

/// The upstream presets a remote repository offers, by format.
const DOCKER_PRESETS: &[(&str, &str)] = &[
    ("DOCKER-HUB", "Docker Hub"),
    ("GHCR", "GitHub Container Registry"),
    ("QUAY", "Quay.io"),
];
const PYTHON_PRESETS: &[(&str, &str)] = &[("PYPI", "PyPI")];

/// Secrets offered in the picker, and versions per secret.
const PICKER_SECRETS: u32 = 50;
const PICKER_VERSIONS: u32 = 20;

/// One option group of the secret-version picker: a secret and its versions.
struct SecretChoice {
    id: String,
    /// (full version name, label)
    versions: Vec<(String, String)>,
}

/// The project's secrets and versions the caller may list; `None` when the
/// caller may not list them (a text field is offered instead).
async fn secret_choices(
    state: &ConsoleState,
    principal: &Principal,
    project: &str,
) -> Option<Vec<SecretChoice>> {
    let pid = project_id(project).ok()?;
    let page = state
        .app
        .secrets
        .list(principal, &pid, &PageRequest::first(PICKER_SECRETS))
        .await
        .ok()?;
    let mut choices = Vec::new();
    for secret in page.items {
        let id = last_segment(&secret.name).to_owned();
        let mut versions = vec![(
            format!("{}/versions/latest", secret.name),
            format!("{id} · latest"),
        )];
        if let Ok(name) = secret.name.parse() {
            if let Ok(list) = state
                .app
                .secrets
                .list_versions(principal, &name, &PageRequest::first(PICKER_VERSIONS))
                .await
            {
                for v in list.items {
                    let n = last_segment(&v.name).to_owned();
                    versions.push((
                        v.name.clone(),
                        format!("{id} · version {n} ({})", v.state.as_str()),
                    ));
                }
            }
        }
        choices.push(SecretChoice { id, versions });
    }
    Some(choices)
}

/// What the form shows: the values and the errors next to their fields.
#[derive(Default)]
struct Values {
    id: String,
    format: String,
    mode: String,
    preset: String,
    url: String,
    description: String,
    auth: String,
    username: String,
    secret_version: String,
    id_error: Option<String>,
    upstream_error: Option<String>,
    auth_error: Option<String>,
    error: Option<String>,
}

impl Values {
    fn from_form(form: &FormData) -> Self {
        Self {
            id: form.get("repository").to_owned(),
            format: form.get("format").to_owned(),
            mode: form.get("mode").to_owned(),
            preset: form.get("preset").to_owned(),
            url: form.get("upstream_url").to_owned(),
            description: form.get("description").to_owned(),
            auth: form.get("auth").to_owned(),
            username: form.get("username").to_owned(),
            secret_version: form.get("secret_version").to_owned(),
            ..Self::default()
        }
    }

    /// The upstream the form names: a preset, or the URL.
    fn upstream(&self) -> Option<String> {
        match self.preset.as_str() {
            "" | "URL" => (!self.url.is_empty()).then(|| self.url.clone()),
            p => Some(p.to_owned()),
        }
    }

    /// Place a service error next to the field it is about.
    fn place(&mut self, message: String) {
        let m = message.to_ascii_lowercase();
        if m.contains("secret") || m.contains("username") || m.contains("user name") {
            self.auth_error = Some(message);
        } else if m.contains("upstream") || m.contains("url") || m.contains("access policy") {
            self.upstream_error = Some(message);
        } else if m.contains("repository id") || m.contains("already exists") {
            self.id_error = Some(message);
        } else {
            self.error = Some(message);
        }
    }
}

fn auth_section(v: &Values, choices: &Option<Vec<SecretChoice>>) -> Markup {
    let password = v.auth == "password";
    html! {
        fieldset.card.auth-mode #remote-auth {
            legend { "Remote repository authentication mode" }
            label.radio { input type="radio" name="auth" value="anonymous" checked[!password]; " Anonymous" }
            label.radio { input type="radio" name="auth" value="password" checked[password]; " Username and password" }
            div.auth-fields {
                label for="remote-username" { "Username" }
                input #remote-username type="text" name="username" value=(v.username) autocomplete="off"
                    placeholder="the upstream user name (__token__ for a PyPI API token)";
                label for="secret-version" { "Secret version (the password or access token)" }
                @match choices {
                    Some(choices) => {
                        select #secret-version name="secret_version" {
                            option value="" selected[v.secret_version.is_empty()] { "Select a secret version" }
                            @for c in choices {
                                optgroup label=(c.id) {
                                    @for (value, label) in &c.versions {
                                        option value=(value) selected[*value == v.secret_version] { (label) }
                                    }
                                }
                            }
                        }
                        @if choices.is_empty() {
                            p.hint { "This project has no secrets yet: create one in Secret Manager first." }
                        }
                    }
                    None => {
                        input #secret-version type="text" name="secret_version" value=(v.secret_version)
                            placeholder="projects/PROJECT/secrets/SECRET/versions/latest";
                    }
                }
                p.hint { "The project's service agent reads it each time the upstream asks for credentials; grant it Secret Manager Secret Accessor on the secret." }
            }
            (layout::field_error(v.auth_error.as_deref()))
        }
    }
}

fn form_page(
    signed: &Signed,
    project: &str,
    editing: Option<&Repository>,
    v: &Values,
    choices: &Option<Vec<SecretChoice>>,
) -> Html<String> {
    let chrome = Chrome {
        signed,
        project: Some(project),
        section: Section::Repositories,
    };
    let title = if editing.is_some() {
        "Edit repository"
    } else {
        "Create repository"
    };
    let is_remote = editing.is_none_or(|r| r.remote_repository_config.is_some());
    let action = match editing {
        Some(r) => format!(
            "/ui/projects/{project}/repositories/{}/edit",
            last_segment(&r.name)
        ),
        None => format!("/ui/projects/{project}/repositories"),
    };
    let body = html! {
        div.page-header { h1 { (title) } }
        @if let Some(e) = &v.error { div.alert.alert-error role="alert" { (e) } }
        form.stack.repository-form method="post" action=(action) {
            (csrf(signed))
            section.card {
                @if let Some(r) = editing {
                    p { "Repository " code { (r.name) } " · " (r.format.as_str()) }
                } @else {
                    label for="repository-id" { "Name" }
                    input #repository-id type="text" name="repository" value=(v.id) required
                        pattern="[a-z0-9][a-z0-9\\-]*" maxlength="63";
                    p.hint { "Lower-case letters, digits and '-'." }
                    (layout::field_error(v.id_error.as_deref()))
                    fieldset {
                        legend { "Format" }
                        label.radio { input type="radio" name="format" value="docker" checked[v.format != "python"]; " Docker" }
                        label.radio { input type="radio" name="format" value="python" checked[v.format == "python"]; " Python" }
                    }
                    fieldset {
                        legend { "Mode" }
                        label.radio { input type="radio" name="mode" value="standard" checked[v.mode != "remote"]; " Standard (hosted: you push to it)" }
                        label.radio { input type="radio" name="mode" value="remote" checked[v.mode == "remote"]; " Remote (a pull-through cache of an upstream)" }
                    }
                }
                label for="description" { "Description" }
                input #description type="text" name="description" value=(v.description) maxlength="1000";
            }
            @if is_remote {
                @if editing.is_none() {
                    fieldset.card.remote-only #remote-upstream {
                        legend { "Remote repository upstream" }
                        label for="preset" { "Upstream" }
                        select #preset name="preset" {
                            optgroup label="Docker" {
                                @for (value, label) in DOCKER_PRESETS {
                                    option value=(value) selected[v.preset == *value] { (label) }
                                }
                            }
                            optgroup label="Python" {
                                @for (value, label) in PYTHON_PRESETS {
                                    option value=(value) selected[v.preset == *value] { (label) }
                                }
                            }
                            option value="URL" selected[v.preset == "URL" || v.preset.is_empty()] { "Custom URL" }
                        }
                        label for="upstream-url" { "Custom upstream URL" }
                        input #upstream-url type="url" name="upstream_url" value=(v.url)
                            placeholder="https://registry.example.com or https://pypi.example.com/simple/";
                        p.hint { "Only hosts the registry access policy allows can be used." }
                        (layout::field_error(v.upstream_error.as_deref()))
                    }
                }
                (auth_section(v, choices))
            }
            div.actions {
                button.button.primary type="submit" { @if editing.is_some() { "Save" } @else { "Create" } }
                a.button href={ "/ui/projects/" (project) "/repositories" } { "Cancel" }
            }
        }
    };
    layout::page(&chrome, title, None, body)
}

/// `GET /ui/projects/{p}/repositories/new`.
pub async fn new_form(
    State(state): State<ConsoleState>,
    Path(project): Path<String>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    project_id(&project)?;
    let choices = secret_choices(&state, &signed.principal, &project).await;
    let v = Values {
        preset: "URL".into(),
        ..Values::default()
    };
    Ok(form_page(&signed, &project, None, &v, &choices).into_response())
}

/// The remote settings of a create form.
fn remote_config(v: &Values) -> Result<Option<RemoteConfig>, String> {
    if v.mode != "remote" {
        return Ok(None);
    }
    let upstream = v
        .upstream()
        .ok_or_else(|| "Pick an upstream or enter its URL.".to_owned())?;
    let mut json = serde_json::json!({ "upstream": upstream });
    if v.auth == "password" {
        if v.username.is_empty() || v.secret_version.is_empty() {
            return Err(
                "Enter the upstream user name and pick the secret version holding the password."
                    .into(),
            );
        }
        json["username"] = v.username.clone().into();
        json["passwordSecretVersion"] = v.secret_version.clone().into();
    }
    serde_json::from_value(json)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// `POST /ui/projects/{p}/repositories`: create.
pub async fn create(
    State(state): State<ConsoleState>,
    Path(project): Path<String>,
    signed: Signed,
    form: FormData,
) -> Result<Response, ConsoleError> {
    form.check_csrf(&signed)?;
    let mut v = Values::from_form(&form);
    let again = |state: ConsoleState, signed: Signed, project: String, v: Values| async move {
        let choices = secret_choices(&state, &signed.principal, &project).await;
        Ok::<Response, ConsoleError>(
            (
                StatusCode::BAD_REQUEST,
                form_page(&signed, &project, None, &v, &choices),
            )
                .into_response(),
        )
    };
    let name: RepositoryName = match format!("projects/{project}/repositories/{}", v.id).parse() {
        Ok(n) => n,
        Err(e) => {
            v.id_error = Some(if v.id.is_empty() {
                "Enter a name.".to_owned()
            } else {
                format!("{e}")
            });
            return again(state, signed, project, v).await;
        }
    };
    let remote = match remote_config(&v) {
        Ok(r) => r,
        Err(e) => {
            if v.upstream().is_none() {
                v.upstream_error = Some(e);
            } else {
                v.auth_error = Some(e);
            }
            return again(state, signed, project, v).await;
        }
    };
    let request = CreateRequest {
        format: if v.format == "python" {
            "python"
        } else {
            "docker"
        }
        .to_owned(),
        mode: Some(
            if remote.is_some() {
                "remote-repository"
            } else {
                "standard-repository"
            }
            .to_owned(),
        ),
        description: v.description.clone(),
        remote,
        virtual_config: None,
        force: false,
    };
    match state
        .app
        .repositories
        .create_with(&signed.principal, &name, request)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!(
            "/ui/projects/{project}/repositories/{}?notice=repository-created",
            v.id
        ))
        .into_response()),
        Err(e) => {
            let e = ConsoleError::from(e);
            if !e.is_invalid_input() {
                return Err(e);
            }
            v.place(e.to_string());
            again(state, signed, project, v).await
        }
    }
}

fn values_of(repo: &Repository) -> Values {
    let remote = repo.remote_repository_config.as_ref();
    let username = remote.and_then(|r| r.username.clone()).unwrap_or_default();
    let secret_version = remote
        .and_then(|r| r.password_secret_version.clone())
        .unwrap_or_default();
    Values {
        description: repo.description.clone(),
        auth: if secret_version.is_empty() {
            "anonymous"
        } else {
            "password"
        }
        .to_owned(),
        username,
        secret_version,
        ..Values::default()
    }
}

/// `GET /ui/projects/{p}/repositories/{r}/edit`.
pub async fn edit_form(
    State(state): State<ConsoleState>,
    Path((project, repository)): Path<(String, String)>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let name: RepositoryName = format!("projects/{project}/repositories/{repository}")
        .parse()
        .map_err(|e: entrepot_domain::repository::RepositoryNameError| {
            ConsoleError::NotFound(e.to_string())
        })?;
    let repo = state
        .app
        .repositories
        .describe(&signed.principal, &name)
        .await?;
    let choices = secret_choices(&state, &signed.principal, &project).await;
    Ok(form_page(&signed, &project, Some(&repo), &values_of(&repo), &choices).into_response())
}

/// `POST /ui/projects/{p}/repositories/{r}/edit`.
pub async fn update(
    State(state): State<ConsoleState>,
    Path((project, repository)): Path<(String, String)>,
    signed: Signed,
    form: FormData,
) -> Result<Response, ConsoleError> {
    form.check_csrf(&signed)?;
    let name: RepositoryName = format!("projects/{project}/repositories/{repository}")
        .parse()
        .map_err(|e: entrepot_domain::repository::RepositoryNameError| {
            ConsoleError::NotFound(e.to_string())
        })?;
    let repo = state
        .app
        .repositories
        .describe(&signed.principal, &name)
        .await?;
    let mut v = Values::from_form(&form);
    let mut update = RepositoryUpdate {
        description: Some(v.description.clone()),
        ..RepositoryUpdate::default()
    };
    if repo.remote_repository_config.is_some() {
        if v.auth == "password" {
            if v.username.is_empty() || v.secret_version.is_empty() {
                v.auth_error = Some(
                    "Enter the upstream user name and pick the secret version holding the password."
                        .into(),
                );
            } else {
                update.remote_username = Some(v.username.clone());
                update.remote_password_secret_version = Some(v.secret_version.clone());
            }
        } else {
            update.clear_remote_credentials = true;
        }
    }
    let result = match v.auth_error {
        Some(_) => None,
        None => Some(
            state
                .app
                .repositories
                .update(&signed.principal, &name, update)
                .await,
        ),
    };
    match result {
        Some(Ok(_)) => Ok(Redirect::to(&format!(
            "/ui/projects/{project}/repositories/{repository}?notice=repository-updated"
        ))
        .into_response()),
        Some(Err(e)) => {
            let e = ConsoleError::from(e);
            if !e.is_invalid_input() {
                return Err(e);
            }
            v.place(e.to_string());
            let choices = secret_choices(&state, &signed.principal, &project).await;
            Ok((
                StatusCode::BAD_REQUEST,
                form_page(&signed, &project, Some(&repo), &v, &choices),
            )
                .into_response())
        }
        None => {
            let choices = secret_choices(&state, &signed.principal, &project).await;
            Ok((
                StatusCode::BAD_REQUEST,
                form_page(&signed, &project, Some(&repo), &v, &choices),
            )
                .into_response())
        }
    }
}
