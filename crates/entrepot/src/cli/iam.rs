//! IAM verbs shared by every resource kind: get, set, add and remove bindings,
//! through the resource's `:getIamPolicy` and `:setIamPolicy` calls.

use std::path::Path;

use entrepot_domain::iam::{Member, Policy};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::output::{self, Column, OutputFormat};
use super::{print_json, AdminClient, ClientError};

/// Arguments of `add-iam-policy-binding` and `remove-iam-policy-binding`.
#[derive(Debug, Clone, clap::Args)]
pub struct BindingArgs {
    /// `user:EMAIL`, `serviceAccount:EMAIL`, `allUsers` or `allAuthenticatedUsers`.
    #[arg(long)]
    pub member: String,
    /// A predefined role, e.g. `roles/artifactregistry.reader`.
    #[arg(long)]
    pub role: String,
}

fn invalid(message: String) -> ClientError {
    ClientError::Api {
        status: StatusCode::BAD_REQUEST,
        message,
    }
}

fn decode(value: Value) -> Result<Policy, ClientError> {
    serde_json::from_value(value).map_err(|e| ClientError::Decode(e.to_string()))
}

/// The policy of `resource` (e.g. `projects/p/repositories/r`).
pub async fn get_policy(client: &AdminClient, resource: &str) -> Result<Policy, ClientError> {
    decode(
        client
            .call(Method::GET, &format!("{resource}:getIamPolicy"), None)
            .await?,
    )
}

async fn set_policy(
    client: &AdminClient,
    resource: &str,
    policy: &Policy,
) -> Result<Policy, ClientError> {
    let body = json!({ "policy": policy });
    decode(
        client
            .call(
                Method::POST,
                &format!("{resource}:setIamPolicy"),
                Some(&body),
            )
            .await?,
    )
}

/// Print the policy of `resource`: as a table, one row per role with its
/// members, then the etag; or as JSON or YAML.
pub async fn print_policy(
    client: &AdminClient,
    resource: &str,
    format: OutputFormat,
) -> Result<(), ClientError> {
    let policy = json!(get_policy(client, resource).await?);
    if format != OutputFormat::Table {
        output::print_item(format, &policy);
        return Ok(());
    }
    let bindings = policy["bindings"].as_array().cloned().unwrap_or_default();
    output::print_list(
        format,
        &bindings,
        &[
            Column::field("ROLE", "/role"),
            Column::field("MEMBERS", "/members"),
        ],
    );
    println!("\netag: {}", policy["etag"].as_str().unwrap_or_default());
    Ok(())
}

/// Replace the policy of `resource` with the one in `file` (a policy, or
/// `{"policy": ...}`). Its etag, if any, must be current.
pub async fn set_policy_from_file(
    client: &AdminClient,
    resource: &str,
    file: &Path,
) -> Result<(), ClientError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| invalid(format!("cannot read {}: {e}", file.display())))?;
    let mut value: Value = serde_json::from_str(&text)
        .map_err(|e| invalid(format!("{} is not JSON: {e}", file.display())))?;
    if let Some(inner) = value.get("policy") {
        value = inner.clone();
    }
    let policy: Policy = serde_json::from_value(value)
        .map_err(|e| invalid(format!("{} is not an IAM policy: {e}", file.display())))?;
    let written = set_policy(client, resource, &policy).await?;
    eprintln!("Updated IAM policy for [{resource}].");
    print_json(&json!(written));
    Ok(())
}

/// Add or remove one binding: read, change, write with the etag read, and
/// start over if someone else wrote in between.
pub async fn change_binding(
    client: &AdminClient,
    resource: &str,
    args: &BindingArgs,
    add: bool,
) -> Result<(), ClientError> {
    let member: Member = args
        .member
        .parse()
        .map_err(|e: entrepot_domain::iam::IamError| invalid(e.to_string()))?;
    for _ in 0..5 {
        let mut policy = get_policy(client, resource).await?;
        let changed = if add {
            policy
                .add_binding(&args.role, member.clone())
                .map_err(|e| invalid(e.to_string()))?
        } else {
            policy.remove_binding(&args.role, &member)
        };
        if !changed {
            eprintln!(
                "{member} {} {} on [{resource}]; nothing to do.",
                if add { "already has" } else { "does not have" },
                args.role
            );
            print_json(&json!(policy));
            return Ok(());
        }
        match set_policy(client, resource, &policy).await {
            Ok(written) => {
                eprintln!("Updated IAM policy for [{resource}].");
                print_json(&json!(written));
                return Ok(());
            }
            Err(ClientError::Api { status, .. }) if status == StatusCode::PRECONDITION_FAILED => {
                continue
            }
            Err(e) => return Err(e),
        }
    }
    Err(invalid(format!(
        "the IAM policy of {resource} kept changing while it was being updated; retry"
    )))
}
