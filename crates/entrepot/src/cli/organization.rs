//! `entrepot organization get-iam-policy | set-iam-policy | add-iam-policy-binding
//! | remove-iam-policy-binding`: the policy that applies to everything.

use std::path::PathBuf;

use clap::Subcommand;

use super::iam::{change_binding, print_policy, set_policy_from_file, BindingArgs};
use super::output::FormatArg;
use super::{AdminClient, ClientError};

const ORGANIZATION: &str = "organization";

/// IAM verbs of the organisation.
#[derive(Debug, Subcommand)]
pub enum OrganizationCommand {
    /// Show the organisation's IAM policy.
    GetIamPolicy {
        #[command(flatten)]
        format: FormatArg,
    },
    /// Replace the organisation's IAM policy with the one in FILE (JSON).
    SetIamPolicy {
        /// The policy (its etag must be current).
        file: PathBuf,
    },
    /// Grant a role on everything to a member.
    AddIamPolicyBinding {
        #[command(flatten)]
        binding: BindingArgs,
    },
    /// Take an organisation-wide role away from a member.
    RemoveIamPolicyBinding {
        #[command(flatten)]
        binding: BindingArgs,
    },
}

/// Run an organisation IAM verb.
pub async fn run(client: &AdminClient, command: OrganizationCommand) -> Result<(), ClientError> {
    match command {
        OrganizationCommand::GetIamPolicy { format } => {
            print_policy(client, ORGANIZATION, format.format).await
        }
        OrganizationCommand::SetIamPolicy { file } => {
            set_policy_from_file(client, ORGANIZATION, &file).await
        }
        OrganizationCommand::AddIamPolicyBinding { binding } => {
            change_binding(client, ORGANIZATION, &binding, true).await
        }
        OrganizationCommand::RemoveIamPolicyBinding { binding } => {
            change_binding(client, ORGANIZATION, &binding, false).await
        }
    }
}
