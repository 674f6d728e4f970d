//! `entrepot access-policy ...`: the organisation's allowlist of upstream registries.

use std::path::PathBuf;

use clap::Subcommand;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::output::{self, FormatArg};
use super::{print_json, AdminClient, ClientError};

const PATH: &str = "organization/accessPolicy";

/// Registry access policy verbs.
#[derive(Debug, Subcommand)]
pub enum AccessPolicyCommand {
    /// Show the policy: state, enforcement and allowed hosts.
    Describe {
        #[command(flatten)]
        format: FormatArg,
    },
    /// Allow upstream hosts: `ghcr.io`, `127.0.0.1:5000` or `*.azurecr.io`.
    Allow {
        /// Hosts to add.
        #[arg(required = true)]
        hosts: Vec<String>,
    },
    /// Remove hosts from the allowlist.
    Disallow {
        /// Hosts to remove (as the policy lists them).
        #[arg(required = true)]
        hosts: Vec<String>,
    },
    /// Replace the whole policy with the one in a JSON file
    /// (`{"enabled", "enforcement", "allowedHosts", "etag"}`; a given etag must be current).
    Set {
        /// The policy file.
        #[arg(long)]
        file: PathBuf,
    },
    /// Apply the policy (the default).
    Enable,
    /// Stop applying the policy: every upstream host may be contacted.
    Disable,
    /// Let every host through, but log and count those the policy would block.
    DryRun,
    /// Leave dry-run mode: block hosts outside the allowlist.
    Enforce,
    /// List the hosts the policy saw needed (blocked, or let through by
    /// dry-run mode) and those remote repositories' presets need, as a
    /// ready `allow` command.
    Suggest(super::access_policy_suggest::SuggestArgs),
}

fn print_policy(policy: &Value) {
    print_json(policy);
}

async fn patch(client: &AdminClient, body: Value) -> Result<Value, ClientError> {
    client.call(Method::PATCH, PATH, Some(&body)).await
}

/// Run an access policy verb.
pub async fn run(client: &AdminClient, command: AccessPolicyCommand) -> Result<(), ClientError> {
    let policy = match command {
        AccessPolicyCommand::Suggest(args) => {
            return super::access_policy_suggest::run(client, args).await
        }
        AccessPolicyCommand::Describe { format } => {
            let policy = client.call(Method::GET, PATH, None).await?;
            output::print_item(format.format, &policy);
            return Ok(());
        }
        AccessPolicyCommand::Allow { hosts } => {
            let policy = patch(client, json!({ "addAllowedHosts": hosts })).await?;
            eprintln!("Allowed {}.", hosts.join(", "));
            policy
        }
        AccessPolicyCommand::Disallow { hosts } => {
            let policy = patch(client, json!({ "removeAllowedHosts": hosts })).await?;
            eprintln!("Disallowed {}.", hosts.join(", "));
            policy
        }
        AccessPolicyCommand::Set { file } => {
            let text = std::fs::read_to_string(&file).map_err(|e| ClientError::Api {
                status: StatusCode::BAD_REQUEST,
                message: format!("cannot read {}: {e}", file.display()),
            })?;
            let body: Value = serde_json::from_str(&text).map_err(|e| ClientError::Api {
                status: StatusCode::BAD_REQUEST,
                message: format!("{} is not JSON: {e}", file.display()),
            })?;
            let policy = client.call(Method::PUT, PATH, Some(&body)).await?;
            eprintln!("Replaced the registry access policy.");
            policy
        }
        AccessPolicyCommand::Enable => {
            let policy = patch(client, json!({ "enabled": true })).await?;
            eprintln!("The registry access policy is enabled.");
            policy
        }
        AccessPolicyCommand::Disable => {
            let policy = patch(client, json!({ "enabled": false })).await?;
            eprintln!(
                "The registry access policy is disabled: every upstream host may be contacted."
            );
            policy
        }
        AccessPolicyCommand::DryRun => {
            let policy = patch(client, json!({ "enforcement": "dry-run" })).await?;
            eprintln!("The registry access policy is in dry-run mode: nothing is blocked; hosts it would block are logged and counted.");
            policy
        }
        AccessPolicyCommand::Enforce => {
            let policy = patch(client, json!({ "enforcement": "enforce" })).await?;
            eprintln!("The registry access policy is enforced.");
            policy
        }
    };
    print_policy(&policy);
    Ok(())
}
