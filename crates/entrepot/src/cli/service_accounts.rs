//! `entrepot service-accounts create | list | delete`.

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::output::{self, Column, FormatArg, QuietArg};
use super::{print_json, AdminClient, ClientError, PageArgs};

/// Service account verbs.
#[derive(Debug, Subcommand)]
pub enum ServiceAccountsCommand {
    /// Create a service account NAME@PROJECT.iam.entrepot.
    Create {
        /// Account id: 6-30 lower-case letters, digits and hyphens.
        name: String,
        /// Free text.
        #[arg(long)]
        display_name: Option<String>,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// List the service accounts of a project.
    List {
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Delete a service account; its tokens stop working.
    Delete {
        /// Account id or e-mail.
        name: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        quiet: QuietArg,
    },
}

/// Run a service account verb.
pub async fn run(client: &AdminClient, command: ServiceAccountsCommand) -> Result<(), ClientError> {
    match command {
        ServiceAccountsCommand::Create {
            name,
            display_name,
            project,
        } => {
            let body = json!({ "accountId": name, "displayName": display_name });
            let account = client
                .call(
                    Method::POST,
                    &format!("projects/{project}/serviceAccounts"),
                    Some(&body),
                )
                .await?;
            eprintln!(
                "Created service account [{}].",
                account["email"].as_str().unwrap_or(&name)
            );
            print_json(&account);
        }
        ServiceAccountsCommand::List {
            project,
            page,
            format,
        } => {
            let list = client
                .list(
                    &format!("projects/{project}/serviceAccounts"),
                    "accounts",
                    &page,
                    None,
                )
                .await?;
            output::print_list(
                format.format,
                &list,
                &[
                    Column::field("EMAIL", "/email"),
                    Column::field("DISPLAY_NAME", "/displayName"),
                ],
            );
        }
        ServiceAccountsCommand::Delete {
            name,
            project,
            quiet,
        } => {
            output::confirm(
                quiet,
                &format!("The service account [{name}] will be deleted; its tokens stop working."),
            )?;
            client
                .call(
                    Method::DELETE,
                    &format!("projects/{project}/serviceAccounts/{name}"),
                    None,
                )
                .await?;
            eprintln!("Deleted service account [{name}].");
        }
    }
    Ok(())
}
