//! gcloud-like verbs over the admin API.

pub mod access_policy;
pub mod access_policy_suggest;
pub mod admin_gc;
pub mod artifacts;
pub mod cleanup;
pub mod client;
pub mod iam;
pub mod login;
pub mod organization;
pub mod output;
pub mod projects;
pub mod python;
pub mod release_age;
pub mod repositories;
pub mod repository_iam;
pub mod repository_refresh;
pub mod secret_iam;
pub mod secrets;
pub mod service_accounts;
pub mod tokens;
pub mod users;

pub use client::{AdminClient, ClientError, PageArgs};

/// Print a JSON value the way `describe` verbs do.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}
