//! gcloud-like verbs over the admin API.

pub mod client;
pub mod repositories;
pub mod secrets;

pub use client::{AdminClient, ClientError};

/// Print a JSON value the way `describe` verbs do.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}
