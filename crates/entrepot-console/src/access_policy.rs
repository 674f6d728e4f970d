//! The organisation's registry access policy: the allowlist (add or remove
//! a host or `*.domain`; at most 100 entries), the enforce / dry-run switch,
//! and the hosts this node refused or, in dry run, would have refused.
//! Changes go through the access policy service, which checks
//! `entrepot.accessPolicy.update` before it reads what was sent.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use entrepot_domain::access_policy::{parse_entries, AccessPolicy, Enforcement, MAX_ENTRIES};
use entrepot_services::access_policy::PolicyChange;
use entrepot_services::{Permission, Resource};
use maud::html;

use crate::error::ConsoleError;
use crate::form::FormData;
use crate::iam_panel::held;
use crate::layout::{self, csrf, Chrome, Section};
use crate::session::Signed;
use crate::ConsoleState;

async fn render(
    state: &ConsoleState,
    signed: &Signed,
    notice: Option<&str>,
    host: &str,
    host_error: Option<&str>,
) -> Result<Response, ConsoleError> {
    let current = state.app.access_policy.describe(&signed.principal).await?;
    let can_update = held(
        state,
        &signed.principal,
        &Resource::Organization,
        &[Permission::AccessPolicyUpdate],
    )
    .await
    .contains(Permission::AccessPolicyUpdate.as_str());
    let recent = if can_update {
        state.app.access_policy.recent_hops()
    } else {
        Vec::new()
    };
    let policy = &current.policy;
    let entries = policy.entries();
    let dry_run = policy.enforcement == Enforcement::DryRun;
    let chrome = Chrome {
        signed,
        project: None,
        section: Section::AccessPolicy,
    };
    let body = html! {
        div.page-header { h1 { "Registry access policy" } }
        p.lead { "Remote repositories may contact only the upstream hosts listed here, redirects included. It applies to the whole organisation." }
        section.card {
            h2 { "Enforcement" }
            @if !policy.enabled {
                p { span.state.state-neutral { "Disabled" } " Every host is allowed." }
            } @else if dry_run {
                p #enforcement-state { span.state.state-disabled { "Dry run" } " Hosts outside the list are allowed but reported below." }
            } @else {
                p #enforcement-state { span.state.state-enabled { "Enforced" } " Hosts outside the list are refused." }
            }
            @if can_update {
                form.inline method="post" action="/ui/access-policy/enforcement" {
                    (csrf(signed))
                    @if dry_run {
                        input type="hidden" name="enforcement" value="enforce";
                        button.button.primary #switch-enforcement type="submit" { "Switch to enforce" }
                    } @else {
                        input type="hidden" name="enforcement" value="dry-run";
                        button.button #switch-enforcement type="submit" { "Switch to dry run" }
                    }
                }
            }
        }
        section.card {
            h2 { "Allowed hosts " span.muted { "(" (entries.len()) " of " (MAX_ENTRIES) ")" } }
            @if can_update {
                form.inline-form method="post" action="/ui/access-policy/add" {
                    (csrf(signed))
                    label for="allow-host" { "Host or *.domain" }
                    input #allow-host type="text" name="host" value=(host) placeholder="registry.example.com or *.example.com"
                        aria-invalid=[host_error.map(|_| "true")];
                    button.button.primary type="submit" disabled[entries.len() >= MAX_ENTRIES] { "Add host" }
                    (layout::field_error(host_error))
                }
            }
            @if entries.is_empty() {
                (layout::empty("No host is allowed: every upstream is refused.", None))
            } @else {
                table.data #allowed-hosts {
                    thead { tr { th { "Host" } th.actions-col { "" } } }
                    tbody {
                        @for e in entries {
                            tr {
                                td { code { (e.to_string()) } }
                                td.actions-col {
                                    @if can_update {
                                        form.inline method="post" action="/ui/access-policy/remove" {
                                            (csrf(signed))
                                            input type="hidden" name="host" value=(e.to_string());
                                            button.link-button.danger type="submit" aria-label={ "Remove " (e.to_string()) } { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if can_update {
            section.card {
                h2 { "Recently blocked hosts" }
                @if recent.is_empty() {
                    (layout::empty("No upstream host was refused or reported since this server started.", None))
                } @else {
                    table.data #recent-hosts {
                        thead { tr { th { "Host" } th { "Outcome" } th { "Time" } } }
                        tbody {
                            @for r in &recent {
                                tr {
                                    td { code { (r.host) } }
                                    td { @if r.blocked { span.state.state-destroyed { "Blocked" } } @else { span.state.state-disabled { "Would be blocked (dry run)" } } }
                                    td { (r.time) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let status = if host_error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((status, layout::page(&chrome, "Access policy", notice, body)).into_response())
}

/// `GET /ui/access-policy`.
pub async fn page(
    State(state): State<ConsoleState>,
    signed: Signed,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let query = FormData::from_pairs(query);
    render(&state, &signed, query.raw("notice"), "", None).await
}

async fn change(
    state: &ConsoleState,
    signed: &Signed,
    form: &FormData,
    add: bool,
) -> Result<Response, ConsoleError> {
    form.check_csrf(signed)?;
    let host = form.get("host").to_owned();
    let typed = host.clone();
    let result = state
        .app
        .access_policy
        .update(&signed.principal, move || {
            if typed.is_empty() {
                return Err(ConsoleError::BadRequest(
                    "Enter a host name or *.domain.".into(),
                ));
            }
            let entries = parse_entries(&[typed.as_str()])
                .map_err(|e| ConsoleError::BadRequest(e.to_string()))?;
            Ok(PolicyChange {
                etag: None,
                edit: Box::new(move |p: &mut AccessPolicy| {
                    if add {
                        p.allow(entries.clone())
                    } else {
                        p.disallow(&entries)
                    }
                }),
            })
        })
        .await;
    match result {
        Ok(_) => {
            let notice = if add { "host-added" } else { "host-removed" };
            Ok(Redirect::to(&format!("/ui/access-policy?notice={notice}")).into_response())
        }
        Err(e) if e.is_invalid_input() => {
            render(state, signed, None, &host, Some(&e.to_string())).await
        }
        Err(e) => Err(e),
    }
}

/// `POST /ui/access-policy/add`.
pub async fn add(
    State(state): State<ConsoleState>,
    signed: Signed,
    form: FormData,
) -> Result<Response, ConsoleError> {
    change(&state, &signed, &form, true).await
}

/// `POST /ui/access-policy/remove`.
pub async fn remove(
    State(state): State<ConsoleState>,
    signed: Signed,
    form: FormData,
) -> Result<Response, ConsoleError> {
    change(&state, &signed, &form, false).await
}

/// `POST /ui/access-policy/enforcement`.
pub async fn enforcement(
    State(state): State<ConsoleState>,
    signed: Signed,
    form: FormData,
) -> Result<Response, ConsoleError> {
    form.check_csrf(&signed)?;
    let wanted = form.get("enforcement").to_owned();
    state
        .app
        .access_policy
        .update(&signed.principal, move || {
            let mode = match wanted.as_str() {
                "enforce" => Enforcement::Enforce,
                "dry-run" => Enforcement::DryRun,
                other => {
                    return Err(ConsoleError::BadRequest(format!(
                        "enforcement {other:?} is not known; use enforce or dry-run"
                    )))
                }
            };
            Ok(PolicyChange {
                etag: None,
                edit: Box::new(move |p: &mut AccessPolicy| {
                    p.enforcement = mode;
                    Ok(())
                }),
            })
        })
        .await?;
    Ok(Redirect::to("/ui/access-policy?notice=enforcement-changed").into_response())
}
