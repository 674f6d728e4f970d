//! `entrepot python ...`: verbs on Python packages of standard repositories.

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::{print_json, AdminClient, ClientError};

/// Python package verbs.
#[derive(Debug, Subcommand)]
pub enum PythonCommand {
    /// Yank every file of a version (PEP 592): installers skip it unless pinned.
    Yank {
        /// Project name, e.g. `tiny-lib`.
        package: String,
        /// Version, e.g. `1.0`.
        version: String,
        /// Standard repository id.
        #[arg(long)]
        repository: String,
        /// Why it was yanked, shown to users.
        #[arg(long)]
        reason: Option<String>,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Undo a yank.
    Unyank {
        /// Project name.
        package: String,
        /// Version.
        version: String,
        /// Standard repository id.
        #[arg(long)]
        repository: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
}

/// Run a Python verb.
pub async fn run(client: &AdminClient, command: PythonCommand) -> Result<(), ClientError> {
    let (project, repository, package, version, verb, reason) = match command {
        PythonCommand::Yank {
            package,
            version,
            repository,
            reason,
            project,
        } => (project, repository, package, version, "yank", reason),
        PythonCommand::Unyank {
            package,
            version,
            repository,
            project,
        } => (project, repository, package, version, "unyank", None),
    };
    let body = json!({ "reason": reason });
    let result = client
        .call(
            Method::POST,
            &format!(
                "projects/{project}/repositories/{repository}/pythonPackages/{package}/versions/{version}:{verb}"
            ),
            Some(&body),
        )
        .await?;
    eprintln!(
        "{} {package} {version} in [{repository}].",
        if verb == "yank" { "Yanked" } else { "Unyanked" }
    );
    print_json(&result);
    Ok(())
}
