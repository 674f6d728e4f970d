//! The Permissions panel of a project, a repository or a secret: the
//! principals by role, **Add principal** (one or more principals and a role
//! from a drop-down grouped by service), and removing a principal. Reading
//! and writing the policy go through IAM's own `get_policy`/`set_policy`,
//! which check `getIamPolicy`/`setIamPolicy` on the resource; a stale etag
//! (someone changed the policy meanwhile) is retried on the fresh policy.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use entrepot_domain::iam::{Member, Policy};
use entrepot_services::{IamError, Permission, Principal, Resource};
use maud::{html, Markup};

use crate::error::ConsoleError;
use crate::form::FormData;
use crate::layout::{self, csrf};
use crate::roles;
use crate::session::Signed;
use crate::ConsoleState;

/// The most principals one Add principal form takes.
const MAX_PRINCIPALS: usize = 20;

/// What the panel shows for one resource.
pub struct Panel {
    /// The resource whose policy it is.
    pub resource: Resource,
    /// The policy, when the caller may read it.
    pub policy: Option<Policy>,
    /// Whether the caller may change it (the controls are shown).
    pub can_set: bool,
}

/// The permission to read and to change the policy of `resource`.
pub fn policy_permissions(resource: &Resource) -> (Permission, Permission) {
    match resource {
        Resource::Organization | Resource::Project(_) => (
            Permission::ProjectsGetIamPolicy,
            Permission::ProjectsSetIamPolicy,
        ),
        Resource::Repository { .. } => (
            Permission::RepositoriesGetIamPolicy,
            Permission::RepositoriesSetIamPolicy,
        ),
        Resource::Secret { .. } => (
            Permission::SecretsGetIamPolicy,
            Permission::SecretsSetIamPolicy,
        ),
    }
}

/// Which of `candidates` the caller holds on `resource` (IAM's
/// testIamPermissions); an IAM failure holds nothing, so controls stay hidden.
pub async fn held(
    state: &ConsoleState,
    principal: &Principal,
    resource: &Resource,
    candidates: &[Permission],
) -> BTreeSet<&'static str> {
    state
        .app
        .iam
        .granted(principal, resource, candidates)
        .await
        .unwrap_or_default()
}

/// Load the panel of `resource` for the caller.
pub async fn load(state: &ConsoleState, signed: &Signed, resource: Resource) -> Panel {
    let (_, set) = policy_permissions(&resource);
    let can_set = held(state, &signed.principal, &resource, &[set])
        .await
        .contains(set.as_str());
    let policy = state
        .app
        .iam
        .get_policy(&signed.principal, &resource)
        .await
        .ok();
    Panel {
        resource,
        policy,
        can_set,
    }
}

/// The id of a resource's panel elements.
fn dom_id(resource: &Resource) -> String {
    resource
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The panel's markup; `return_to` is the page forms come back to,
/// `first_service` the service whose roles the drop-down lists first.
pub fn render(
    signed: &Signed,
    panel: &Panel,
    return_to: &str,
    first_service: &str,
    error: Option<&str>,
) -> Markup {
    let id = dom_id(&panel.resource);
    let error = error.and_then(error_text);
    let resource = panel.resource.to_string();
    html! {
        section.iam-panel data-resource=(resource) {
            div.panel-head {
                h3 { "Permissions" }
                @if panel.can_set {
                    details.add-principal open[error.is_some()] {
                        summary.button.primary { "Add principal" }
                        form.stack method="post" action="/ui/iam/add" {
                            (csrf(signed))
                            input type="hidden" name="resource" value=(resource);
                            input type="hidden" name="return_to" value=(return_to);
                            label for={ "principals-" (id) } { "New principals" }
                            textarea id={ "principals-" (id) } name="principals" rows="2" required
                                placeholder="alice@example.com, serviceAccount:…, allUsers" {}
                            p.hint { "One or more: an e-mail address, serviceAccount:EMAIL, allUsers or allAuthenticatedUsers, separated by commas or new lines." }
                            label for={ "role-" (id) } { "Role" }
                            (roles::picker(&format!("role-{id}"), first_service))
                            (layout::field_error(error))
                            div.actions { button.button.primary type="submit" { "Save" } }
                        }
                    }
                }
            }
            @match &panel.policy {
                None => p.muted { "You cannot view the IAM policy of " code { (resource) } "." },
                Some(policy) if policy.bindings.is_empty() => {
                    (layout::empty("No principal has a role here yet; roles granted on the project apply.", None))
                }
                Some(policy) => {
                    @for binding in &policy.bindings {
                        div.binding {
                            h4 { (roles::title(&binding.role)) " " span.role-name { (binding.role) } }
                            ul.members {
                                @for member in &binding.members {
                                    li {
                                        span.member { (member.to_string()) }
                                        @if panel.can_set {
                                            form.inline method="post" action="/ui/iam/remove" {
                                                (csrf(signed))
                                                input type="hidden" name="resource" value=(resource);
                                                input type="hidden" name="return_to" value=(return_to);
                                                input type="hidden" name="role" value=(binding.role);
                                                input type="hidden" name="member" value=(member.to_string());
                                                button.link-button.danger type="submit"
                                                    aria-label={ "Remove " (member.to_string()) " from " (binding.role) } { "Remove" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A principal as typed: a member string, or a bare e-mail (a service
/// account when its domain is entrepot's, else a user).
pub fn parse_member(text: &str) -> Result<Member, String> {
    let text = text.trim();
    let member = if text.contains(':') || text.starts_with("all") {
        text.parse::<Member>()
    } else if text.ends_with(".iam.entrepot") {
        format!("serviceAccount:{text}").parse()
    } else {
        format!("user:{text}").parse()
    };
    member.map_err(|_| {
        format!("{text:?} is not a principal: use an e-mail address, serviceAccount:EMAIL, allUsers or allAuthenticatedUsers")
    })
}

/// Where a form goes back to: a console page, never another site.
pub fn safe_return(to: &str, fallback: &str) -> String {
    let ok = to.starts_with("/ui/")
        && !to.contains("//")
        && !to.contains('\\')
        && to.chars().all(|c| c.is_ascii_graphic());
    if ok {
        to.to_owned()
    } else {
        fallback.to_owned()
    }
}

/// `to` with `key=value` added to its query.
pub fn with_query(to: &str, key: &str, value: &str) -> String {
    let sep = if to.contains('?') { '&' } else { '?' };
    format!(
        "{to}{sep}{key}={}",
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>()
    )
}

/// Apply `edit` to the policy of `resource` and write it back with the
/// etag it was read with, re-reading on a concurrent change.
async fn edit_policy(
    state: &ConsoleState,
    principal: &Principal,
    resource: &Resource,
    edit: impl Fn(&mut Policy) -> Result<(), ConsoleError>,
) -> Result<(), ConsoleError> {
    for _ in 0..3 {
        let mut policy = state.app.iam.get_policy(principal, resource).await?;
        edit(&mut policy)?;
        match state.app.iam.set_policy(principal, resource, policy).await {
            Err(IamError::StaleEtag { .. }) => continue,
            other => return other.map(|_| ()).map_err(Into::into),
        }
    }
    Err(ConsoleError::Status(
        axum::http::StatusCode::CONFLICT,
        "the policy kept changing while it was being saved; reload and try again".into(),
    ))
}

fn resource_of(form: &FormData) -> Result<Resource, ConsoleError> {
    form.get("resource")
        .parse()
        .map_err(|e: entrepot_domain::resource::ResourceNameError| {
            ConsoleError::BadRequest(e.to_string())
        })
}

/// `POST /ui/iam/add`: grant `role` to each of `principals` on `resource`.
pub async fn add(
    State(state): State<ConsoleState>,
    signed: Signed,
    form: FormData,
) -> Result<Response, ConsoleError> {
    form.check_csrf(&signed)?;
    let resource = resource_of(&form)?;
    let back = safe_return(form.get("return_to"), "/ui/");
    let role = form.get("role").to_owned();
    let typed: Vec<&str> = form
        .get("principals")
        .split([',', '\n', '\r', ' ', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let fail = |key: &str| -> Result<Response, ConsoleError> {
        Ok(Redirect::to(&with_query(&back, "iam_error", key)).into_response())
    };
    if typed.is_empty() {
        return fail("no-principal");
    }
    if typed.len() > MAX_PRINCIPALS {
        return fail("too-many");
    }
    if entrepot_domain::iam::role(&role).is_err() {
        return fail("no-role");
    }
    let Ok(members) = typed
        .iter()
        .map(|t| parse_member(t))
        .collect::<Result<Vec<_>, _>>()
    else {
        return fail("bad-member");
    };
    edit_policy(&state, &signed.principal, &resource, |policy| {
        for m in &members {
            policy
                .add_binding(&role, m.clone())
                .map_err(|e| ConsoleError::BadRequest(e.to_string()))?;
        }
        Ok(())
    })
    .await?;
    let notice = if form.get("grant") == "agent" {
        "access-granted"
    } else {
        "principal-added"
    };
    Ok(Redirect::to(&with_query(&back, "notice", notice)).into_response())
}

/// `POST /ui/iam/remove`: take `role` from `member` on `resource`.
pub async fn remove(
    State(state): State<ConsoleState>,
    signed: Signed,
    form: FormData,
) -> Result<Response, ConsoleError> {
    form.check_csrf(&signed)?;
    let resource = resource_of(&form)?;
    let back = safe_return(form.get("return_to"), "/ui/");
    let role = form.get("role").to_owned();
    let member = parse_member(form.get("member")).map_err(ConsoleError::BadRequest)?;
    edit_policy(&state, &signed.principal, &resource, |policy| {
        policy.remove_binding(&role, &member);
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&with_query(&back, "notice", "principal-removed")).into_response())
}

/// The message of an `iam_error` key a redirect carries.
pub fn error_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "no-principal" => "Enter at least one principal.",
        "too-many" => "Add at most 20 principals at a time.",
        "no-role" => "Select a role.",
        "bad-member" => "A principal is not valid: use an e-mail address, serviceAccount:EMAIL, allUsers or allAuthenticatedUsers.",
        _ => return None,
    })
}
