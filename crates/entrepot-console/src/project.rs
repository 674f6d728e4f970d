//! The project page: its number, its service agent (the identity remote
//! repositories read secrets as) with a copy button, and its IAM policy.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use entrepot_domain::iam::service_agent_email;
use entrepot_services::Resource;
use maud::html;

use crate::error::ConsoleError;
use crate::form::FormData;
use crate::iam_panel;
use crate::layout::{self, copyable, Chrome, Section};
use crate::secrets::project_id;
use crate::session::Signed;
use crate::ConsoleState;

/// `GET /ui/projects/{p}`.
pub async fn page(
    State(state): State<ConsoleState>,
    Path(project): Path<String>,
    signed: Signed,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let query = FormData::from_pairs(query);
    let record = state
        .app
        .projects
        .get(&signed.principal, &project_id(&project)?)
        .await?;
    let agent = service_agent_email(record.number);
    let panel = iam_panel::load(&state, &signed, Resource::Project(project.clone())).await;
    let chrome = Chrome {
        signed: &signed,
        project: Some(&project),
        section: Section::Project,
    };
    let body = html! {
        div.page-header { h1 { "Project " (project) } }
        section.card {
            h2 { "Project info" }
            dl.facts {
                dt { "Project ID" } dd { code { (record.id) } }
                dt { "Project number" } dd #project-number { (record.number) }
                dt { "Created" } dd { (record.create_time) }
                dt { "Service agent" } dd #service-agent { (copyable(&agent, "Copy the service agent's address")) }
            }
            p.hint {
                "Remote repositories of this project read their upstream credentials as the service agent. "
                "Grant it " strong { "Secret Manager Secret Accessor" } " on each secret they use."
            }
        }
        section.card {
            (iam_panel::render(&signed, &panel, &format!("/ui/projects/{project}"), "Artifact Registry", query.raw("iam_error")))
        }
    };
    Ok(layout::page(
        &chrome,
        &format!("Project {project}"),
        query.raw("notice"),
        body,
    )
    .into_response())
}
