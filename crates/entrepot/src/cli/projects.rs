//! `entrepot projects create | list | describe` and project IAM verbs.

use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::iam::{change_binding, print_policy, set_policy_from_file, BindingArgs};
use super::output::{self, Column, FormatArg};
use super::{print_json, AdminClient, ClientError, PageArgs};

/// Project verbs.
#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// Create a project; you become its owner.
    Create {
        /// Project id.
        project: String,
    },
    /// List projects.
    List {
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show a project, with its number and service agent.
    Describe {
        /// Project id.
        project: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show the IAM policy of a project.
    GetIamPolicy {
        /// Project id.
        project: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Replace the IAM policy of a project with the one in FILE (JSON).
    SetIamPolicy {
        /// Project id.
        project: String,
        /// The policy (its etag must be current).
        file: PathBuf,
    },
    /// Grant a role on a project (and everything in it) to a member.
    AddIamPolicyBinding {
        /// Project id.
        project: String,
        #[command(flatten)]
        binding: BindingArgs,
    },
    /// Take a role on a project away from a member.
    RemoveIamPolicyBinding {
        /// Project id.
        project: String,
        #[command(flatten)]
        binding: BindingArgs,
    },
    #[command(flatten)]
    Quota(super::cleanup::ProjectQuotaCommand),
}

/// Run a project verb.
pub async fn run(client: &AdminClient, command: ProjectsCommand) -> Result<(), ClientError> {
    match command {
        ProjectsCommand::Create { project } => {
            let p = client
                .call(
                    Method::POST,
                    "projects",
                    Some(&json!({ "projectId": project })),
                )
                .await?;
            eprintln!("Created project [{project}].");
            print_json(&p);
        }
        ProjectsCommand::List { page, format } => {
            let list = client.list("projects", "projects", &page, None).await?;
            output::print_list(
                format.format,
                &list,
                &[
                    Column::field("PROJECT", "/projectId"),
                    Column::field("NUMBER", "/projectNumber"),
                    Column::field("SERVICE_AGENT", "/serviceAgent"),
                    Column::field("CREATE_TIME", "/createTime"),
                ],
            );
        }
        ProjectsCommand::Describe { project, format } => {
            output::print_item(
                format.format,
                &client
                    .call(Method::GET, &format!("projects/{project}"), None)
                    .await?,
            );
        }
        ProjectsCommand::GetIamPolicy { project, format } => {
            print_policy(client, &format!("projects/{project}"), format.format).await?
        }
        ProjectsCommand::SetIamPolicy { project, file } => {
            set_policy_from_file(client, &format!("projects/{project}"), &file).await?
        }
        ProjectsCommand::AddIamPolicyBinding { project, binding } => {
            change_binding(client, &format!("projects/{project}"), &binding, true).await?
        }
        ProjectsCommand::RemoveIamPolicyBinding { project, binding } => {
            change_binding(client, &format!("projects/{project}"), &binding, false).await?
        }
        ProjectsCommand::Quota(command) => super::cleanup::run_project(client, command).await?,
    }
    Ok(())
}
