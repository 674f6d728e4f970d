//! `entrepot repositories get-iam-policy | set-iam-policy | add-iam-policy-binding
//! | remove-iam-policy-binding`.

use std::path::PathBuf;

use clap::Subcommand;

use super::iam::{change_binding, print_policy, set_policy_from_file, BindingArgs};
use super::output::FormatArg;
use super::{AdminClient, ClientError};

/// IAM verbs of repositories.
#[derive(Debug, Subcommand)]
pub enum RepositoryIamCommand {
    /// Show the IAM policy of a repository.
    GetIamPolicy {
        /// Repository id.
        repository: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Replace the IAM policy of a repository with the one in FILE (JSON).
    SetIamPolicy {
        /// Repository id.
        repository: String,
        /// The policy, as printed by get-iam-policy --format=json (its etag must be current).
        file: PathBuf,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Grant a role on a repository to a member.
    AddIamPolicyBinding {
        /// Repository id.
        repository: String,
        #[command(flatten)]
        binding: BindingArgs,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Take a role on a repository away from a member.
    RemoveIamPolicyBinding {
        /// Repository id.
        repository: String,
        #[command(flatten)]
        binding: BindingArgs,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
}

/// Run a repository IAM verb.
pub async fn run(client: &AdminClient, command: RepositoryIamCommand) -> Result<(), ClientError> {
    let name =
        |project: &str, repository: &str| format!("projects/{project}/repositories/{repository}");
    match command {
        RepositoryIamCommand::GetIamPolicy {
            repository,
            project,
            format,
        } => print_policy(client, &name(&project, &repository), format.format).await,
        RepositoryIamCommand::SetIamPolicy {
            repository,
            file,
            project,
        } => set_policy_from_file(client, &name(&project, &repository), &file).await,
        RepositoryIamCommand::AddIamPolicyBinding {
            repository,
            binding,
            project,
        } => change_binding(client, &name(&project, &repository), &binding, true).await,
        RepositoryIamCommand::RemoveIamPolicyBinding {
            repository,
            binding,
            project,
        } => change_binding(client, &name(&project, &repository), &binding, false).await,
    }
}
