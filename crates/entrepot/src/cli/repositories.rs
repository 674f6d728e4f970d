//! `entrepot repositories ...`.

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::{print_json, AdminClient, ClientError};

/// Repository verbs.
#[derive(Debug, Subcommand)]
pub enum RepositoriesCommand {
    /// Create a repository.
    Create {
        /// Repository id, e.g. `images`.
        name: String,
        /// `docker` or `python`.
        #[arg(long = "repository-format")]
        format: String,
        /// `standard-repository` (default), `remote-repository` or `virtual-repository`.
        #[arg(long, default_value = "standard-repository")]
        mode: String,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// List the repositories of a project.
    List {
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Show one repository.
    Describe {
        /// Repository id.
        name: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Change a repository.
    Update {
        /// Repository id.
        name: String,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Delete a repository and everything in it.
    Delete {
        /// Repository id.
        name: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
}

/// Run a repository verb.
pub async fn run(client: &AdminClient, command: RepositoriesCommand) -> Result<(), ClientError> {
    match command {
        RepositoriesCommand::Create {
            name,
            format,
            mode,
            description,
            project,
        } => {
            let body = json!({ "format": format, "mode": mode, "description": description.unwrap_or_default() });
            let repo = client
                .call(
                    Method::POST,
                    &format!("projects/{project}/repositories?repositoryId={name}"),
                    Some(&body),
                )
                .await?;
            eprintln!("Created repository [{name}].");
            print_json(&repo);
        }
        RepositoriesCommand::List { project } => {
            let list = client
                .call(
                    Method::GET,
                    &format!("projects/{project}/repositories"),
                    None,
                )
                .await?;
            println!(
                "{:<30} {:<8} {:<20} DESCRIPTION",
                "REPOSITORY", "FORMAT", "MODE"
            );
            for repo in list["repositories"].as_array().into_iter().flatten() {
                let id = repo["name"]
                    .as_str()
                    .unwrap_or("")
                    .rsplit('/')
                    .next()
                    .unwrap_or("");
                println!(
                    "{:<30} {:<8} {:<20} {}",
                    id,
                    repo["format"].as_str().unwrap_or(""),
                    repo["mode"].as_str().unwrap_or(""),
                    repo["description"].as_str().unwrap_or("")
                );
            }
        }
        RepositoriesCommand::Describe { name, project } => {
            let repo = client
                .call(
                    Method::GET,
                    &format!("projects/{project}/repositories/{name}"),
                    None,
                )
                .await?;
            print_json(&repo);
        }
        RepositoriesCommand::Update {
            name,
            description,
            project,
        } => {
            let body = json!({ "description": description });
            let repo = client
                .call(
                    Method::PATCH,
                    &format!("projects/{project}/repositories/{name}"),
                    Some(&body),
                )
                .await?;
            eprintln!("Updated repository [{name}].");
            print_json(&repo);
        }
        RepositoriesCommand::Delete { name, project } => {
            client
                .call(
                    Method::DELETE,
                    &format!("projects/{project}/repositories/{name}"),
                    None,
                )
                .await?;
            eprintln!("Deleted repository [{name}].");
        }
    }
    Ok(())
}
