//! The project's audit log (reads of secrets, and who was refused), filtered
//! by principal, resource, outcome and time. The log is read through the
//! secret service, which asks for `getIamPolicy` on the project.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use entrepot_services::PageRequest;
use maud::html;

use crate::error::ConsoleError;
use crate::form::FormData;
use crate::layout::{self, Chrome, Section};
use crate::secrets::project_id;
use crate::session::Signed;
use crate::ConsoleState;

/// Entries read per page of the log, pages read at most, rows shown at most.
const READ_PAGE: u32 = 500;
const MAX_PAGES: usize = 4;
const SHOWN: usize = 200;

/// `GET /ui/projects/{p}/audit?principal=&resource=&outcome=&since=`.
pub async fn page(
    State(state): State<ConsoleState>,
    Path(project): Path<String>,
    signed: Signed,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let query = FormData::from_pairs(query);
    let pid = project_id(&project)?;
    let principal = query.get("principal").to_owned();
    let resource = query.get("resource").to_owned();
    let outcome = query.get("outcome").to_owned();
    let since = query.get("since").to_owned();
    let mut rows = Vec::new();
    let mut request = PageRequest::first(READ_PAGE);
    let mut more = false;
    for _ in 0..MAX_PAGES {
        let page = state
            .app
            .secrets
            .audit_log(
                &signed.principal,
                &pid,
                (!resource.is_empty()).then_some(resource.as_str()),
                &request,
            )
            .await?;
        rows.extend(page.items.into_iter().filter(|e| {
            (principal.is_empty() || e.principal.contains(principal.as_str()))
                && match outcome.as_str() {
                    "allowed" => e.allowed,
                    "denied" => !e.allowed,
                    _ => true,
                }
                // RFC 3339 times in UTC compare as text.
                && (since.is_empty() || e.time.as_str() >= since.as_str())
        }));
        match page.next {
            Some(next) if rows.len() < SHOWN => {
                request = PageRequest {
                    after: Some(next),
                    size: READ_PAGE,
                }
            }
            Some(_) => {
                more = true;
                break;
            }
            None => break,
        }
    }
    rows.truncate(SHOWN);
    let chrome = Chrome {
        signed: &signed,
        project: Some(&project),
        section: Section::Audit,
    };
    let body = html! {
        div.page-header { h1 { "Audit log" } }
        form.filters method="get" action={ "/ui/projects/" (project) "/audit" } {
            div.field { label for="f-principal" { "Principal" } input #f-principal type="text" name="principal" value=(principal) placeholder="serviceAccount:…"; }
            div.field { label for="f-resource" { "Resource" } input #f-resource type="text" name="resource" value=(resource) placeholder={ "projects/" (project) "/secrets/…" }; }
            div.field {
                label for="f-outcome" { "Outcome" }
                select #f-outcome name="outcome" {
                    option value="" selected[outcome.is_empty()] { "Any" }
                    option value="allowed" selected[outcome == "allowed"] { "Allowed" }
                    option value="denied" selected[outcome == "denied"] { "Denied" }
                }
            }
            div.field { label for="f-since" { "Since (UTC)" } input #f-since type="text" name="since" value=(since) placeholder="2026-12-01T00:00:00Z"; }
            div.field { button.button type="submit" { "Filter" } }
        }
        @if rows.is_empty() {
            (layout::empty("No entries match.", None))
        } @else {
            div.table-scroll {
                table.data #audit-log {
                    thead { tr { th { "Time" } th { "Outcome" } th { "Principal" } th { "Action" } th { "Resource" } th { "Version" } th { "Detail" } } }
                    tbody {
                        @for e in &rows {
                            tr {
                                td.nowrap { (e.time) }
                                td { @if e.allowed { span.state.state-enabled { "ALLOWED" } } @else { span.state.state-destroyed { "DENIED" } } }
                                td.wrap { (e.principal) }
                                td { code { (e.action) } }
                                td.wrap { (e.resource) }
                                td { (e.version.as_deref().unwrap_or("")) }
                                td.wrap { (e.reason) }
                            }
                        }
                    }
                }
            }
            @if more { p.muted { "Only the newest entries are shown; narrow the filter to see older ones." } }
        }
    };
    Ok(layout::page(&chrome, "Audit log", None, body).into_response())
}
