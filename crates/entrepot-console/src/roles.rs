//! How roles are shown: by service, with the titles users know from the
//! managed registries' consoles ("Secret Manager" → "Secret Manager Secret
//! Accessor"). Which role grants what stays in the domain's role table.

use entrepot_domain::iam::{self, ROLES};
use maud::{html, Markup};

/// A role as the console shows it.
pub struct RoleView {
    /// `roles/...`.
    pub name: &'static str,
    /// The service it belongs to.
    pub service: &'static str,
    /// Its title.
    pub title: &'static str,
    /// What it allows, in one line.
    pub description: &'static str,
}

/// The service and title of a predefined role.
fn labels(name: &str) -> (&'static str, &'static str) {
    match name {
        iam::OWNER => ("Basic", "Owner"),
        iam::ARTIFACTREGISTRY_READER => ("Artifact Registry", "Artifact Registry Reader"),
        iam::ARTIFACTREGISTRY_WRITER => ("Artifact Registry", "Artifact Registry Writer"),
        iam::ARTIFACTREGISTRY_REPO_ADMIN => (
            "Artifact Registry",
            "Artifact Registry Repository Administrator",
        ),
        iam::ARTIFACTREGISTRY_ADMIN => ("Artifact Registry", "Artifact Registry Administrator"),
        iam::SECRETMANAGER_SECRET_ACCESSOR => ("Secret Manager", "Secret Manager Secret Accessor"),
        iam::SECRETMANAGER_VIEWER => ("Secret Manager", "Secret Manager Viewer"),
        iam::SECRETMANAGER_ADMIN => ("Secret Manager", "Secret Manager Admin"),
        _ => ("Other", "Custom role"),
    }
}

/// Every predefined role, in the domain's order.
pub fn all() -> Vec<RoleView> {
    ROLES
        .iter()
        .map(|r| {
            let (service, title) = labels(r.name);
            RoleView {
                name: r.name,
                service,
                title,
                description: r.title,
            }
        })
        .collect()
}

/// The title of `name`, or the name itself for a role the table lacks.
pub fn title(name: &str) -> String {
    match labels(name) {
        ("Other", _) => name.to_owned(),
        (_, t) => t.to_owned(),
    }
}

/// A `<select>` of the roles, grouped by service, the ones of `first`
/// service on top (Secret Manager on a secret's panel).
pub fn picker(id: &str, first: &str) -> Markup {
    let roles = all();
    let mut services: Vec<&str> = Vec::new();
    for r in &roles {
        if !services.contains(&r.service) {
            services.push(r.service);
        }
    }
    services.sort_by_key(|s| (*s != first, *s == "Basic"));
    html! {
        select id=(id) name="role" required {
            option value="" { "Select a role" }
            @for service in &services {
                optgroup label=(service) {
                    @for r in roles.iter().filter(|r| r.service == *service) {
                        option value=(r.name) title=(r.description) { (r.title) }
                    }
                }
            }
        }
    }
}
