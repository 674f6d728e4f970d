//! The page chrome every console page shares: the top bar with the signed-in
//! principal and sign-out, the navigation of the project, the success
//! message of the last action, and the helpers pages use for tables, empty
//! states and field errors.

use axum::response::Html;
use maud::{html, Markup, DOCTYPE};

use crate::form::CSRF_FIELD;
use crate::session::Signed;

/// The project the navigation links to on pages outside any project (the
/// access policy): the one every installation starts with.
const DEFAULT_PROJECT: &str = "default";

/// The part of the console a page belongs to, highlighted in the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Repositories of the project.
    Repositories,
    /// The secret manager.
    Secrets,
    /// The project: number, service agent, IAM.
    Project,
    /// The audit log.
    Audit,
    /// The organisation's registry access policy.
    AccessPolicy,
    /// No section (the project list).
    None,
}

/// What the chrome needs to know about a page.
pub struct Chrome<'a> {
    /// Who is signed in.
    pub signed: &'a Signed,
    /// The project the page is in.
    pub project: Option<&'a str>,
    /// The highlighted section.
    pub section: Section,
}

/// The text of a success message, from the `notice` key a redirect carries
/// (keys only, so that a link cannot put words on a page).
pub fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "signed-in" => "Signed in.",
        "secret-created" => "Secret created.",
        "version-added" => "New version added; it is now the latest.",
        "version-enabled" => "Version enabled.",
        "version-disabled" => "Version disabled.",
        "version-destroyed" => "Version destroyed; its value is gone for good.",
        "principal-added" => "Principal added.",
        "principal-removed" => "Principal removed.",
        "repository-created" => "Repository created.",
        "repository-updated" => "Repository updated.",
        "host-added" => "Host added to the allowlist.",
        "host-removed" => "Host removed from the allowlist.",
        "enforcement-changed" => "Enforcement changed.",
        "access-granted" => "Access granted to the service agent.",
        _ => return None,
    })
}

/// A hidden CSRF field for a form of this session.
pub fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(signed.csrf_token); }
}

/// An error shown under a form field.
pub fn field_error(error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error {
            p.field-error role="alert" { (e) }
        }
    }
}

/// An empty state: a message and, optionally, what to do about it.
pub fn empty(message: &str, action: Option<Markup>) -> Markup {
    html! {
        div.empty-state {
            p { (message) }
            @if let Some(a) = action { (a) }
        }
    }
}

/// A value with a button that copies it.
pub fn copyable(value: &str, label: &str) -> Markup {
    html! {
        span.copyable {
            code.copy-value { (value) }
            button.copy-button type="button" data-copy=(value) aria-label=(label) title=(label) { "Copy" }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · entrepot" }
            link rel="stylesheet" href="/ui/static/console.css";
            script src="/ui/static/console.js" defer {}
        }
    }
}

/// A page without navigation (sign-in, errors).
pub fn bare(title: &str, body: Markup) -> Html<String> {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare {
                header.topbar {
                    a.brand href="/ui/" { span.logo { "▣" } " entrepot" }
                }
                main.bare-main { (body) }
            }
        }
    };
    Html(page.into_string())
}

/// A console page with its chrome.
pub fn page(chrome: &Chrome<'_>, title: &str, notice: Option<&str>, body: Markup) -> Html<String> {
    let nav_link = |section: Section, href: String, label: &str| {
        html! {
            a.nav-link.active[chrome.section == section] href=(href) { (label) }
        }
    };
    let notice = notice.and_then(notice_text);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.topbar {
                    a.brand href="/ui/" { span.logo { "▣" } " entrepot" }
                    @if let Some(p) = chrome.project {
                        span.project-chip title="Project" { "Project: " strong { (p) } }
                    }
                    span.spacer {}
                    span.who { (chrome.signed.display_name()) }
                    form.signout method="post" action="/ui/signout" {
                        (csrf(chrome.signed))
                        button.link-button type="submit" { "Sign out" }
                    }
                }
                div.shell {
                    nav.sidenav aria-label="Sections" {
                        @let p = chrome.project.unwrap_or(DEFAULT_PROJECT);
                        {
                            (nav_link(Section::Repositories, format!("/ui/projects/{p}/repositories"), "Artifact Registry"))
                            (nav_link(Section::Secrets, format!("/ui/projects/{p}/secrets"), "Secret Manager"))
                            (nav_link(Section::Project, format!("/ui/projects/{p}"), "Project & IAM"))
                            (nav_link(Section::Audit, format!("/ui/projects/{p}/audit"), "Audit log"))
                        }
                        (nav_link(Section::AccessPolicy, "/ui/access-policy".to_owned(), "Access policy"))
                        (nav_link(Section::None, "/ui/".to_owned(), "All projects"))
                    }
                    main.content {
                        @if let Some(n) = notice {
                            div.notice role="status" { (n) }
                        }
                        (body)
                    }
                }
            }
        }
    };
    Html(page.into_string())
}
