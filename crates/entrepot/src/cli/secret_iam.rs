//! `entrepot secrets get-iam-policy | set-iam-policy | add-iam-policy-binding
//! | remove-iam-policy-binding`.

use std::path::PathBuf;

use clap::Subcommand;

use super::iam::{change_binding, print_policy, set_policy_from_file, BindingArgs};
use super::output::FormatArg;
use super::{AdminClient, ClientError};

/// IAM verbs of secrets, to be flattened into the `secrets` command.
#[derive(Debug, Subcommand)]
pub enum SecretIamCommand {
    /// Show the IAM policy of a secret.
    GetIamPolicy {
        /// Secret id.
        secret: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Replace the IAM policy of a secret with the one in FILE (JSON).
    SetIamPolicy {
        /// Secret id.
        secret: String,
        /// The policy, as printed by get-iam-policy --format=json (its etag must be current).
        file: PathBuf,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Grant a role on a secret to a member.
    AddIamPolicyBinding {
        /// Secret id.
        secret: String,
        #[command(flatten)]
        binding: BindingArgs,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Take a role on a secret away from a member.
    RemoveIamPolicyBinding {
        /// Secret id.
        secret: String,
        #[command(flatten)]
        binding: BindingArgs,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
}

/// Run a secret IAM verb.
pub async fn run(client: &AdminClient, command: SecretIamCommand) -> Result<(), ClientError> {
    let name = |project: &str, secret: &str| format!("projects/{project}/secrets/{secret}");
    match command {
        SecretIamCommand::GetIamPolicy {
            secret,
            project,
            format,
        } => print_policy(client, &name(&project, &secret), format.format).await,
        SecretIamCommand::SetIamPolicy {
            secret,
            file,
            project,
        } => set_policy_from_file(client, &name(&project, &secret), &file).await,
        SecretIamCommand::AddIamPolicyBinding {
            secret,
            binding,
            project,
        } => change_binding(client, &name(&project, &secret), &binding, true).await,
        SecretIamCommand::RemoveIamPolicyBinding {
            secret,
            binding,
            project,
        } => change_binding(client, &name(&project, &secret), &binding, false).await,
    }
}
