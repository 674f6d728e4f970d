//! `entrepot access-policy suggest [--format=table|json]`: the hosts the
//! registry access policy saw needed (blocked, or let through by dry-run
//! mode) and those the presets of remote repositories need, with the ready
//! `entrepot access-policy allow ...` line
//! (`GET /v1/organization/accessPolicy:suggest`).

use clap::{Args, ValueEnum};
use reqwest::Method;
use serde_json::Value;

use super::{print_json, AdminClient, ClientError};

/// How to print the suggestions.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum SuggestFormat {
    /// Aligned rows and the command line, for people.
    #[default]
    Table,
    /// The API's JSON answer.
    Json,
}

/// Arguments of `entrepot access-policy suggest`.
#[derive(Debug, Clone, Args)]
pub struct SuggestArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = SuggestFormat::Table)]
    pub format: SuggestFormat,
}

/// Ask the server for its suggestions and print them.
pub async fn run(client: &AdminClient, args: SuggestArgs) -> Result<(), ClientError> {
    let report = client
        .call(Method::GET, "organization/accessPolicy:suggest", None)
        .await?;
    match args.format {
        SuggestFormat::Json => print_json(&report),
        SuggestFormat::Table => print!("{}", table(&report)),
    }
    Ok(())
}

fn table(report: &Value) -> String {
    let empty = Vec::new();
    let list = |v: &Value| -> String {
        v.as_array()
            .unwrap_or(&empty)
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out = String::new();
    let hosts = report["hosts"].as_array().unwrap_or(&empty);
    let presets = report["presetHosts"].as_array().unwrap_or(&empty);
    if hosts.is_empty() && presets.is_empty() {
        out.push_str("No host to suggest: the policy blocked nothing it does not allow now.\n");
        return out;
    }
    if !hosts.is_empty() {
        out.push_str(&format!(
            "{:<50} {:>8} {:>12} {:<21} REPOSITORIES\n",
            "HOST SEEN NEEDED", "BLOCKED", "WOULD BLOCK", "LAST SEEN"
        ));
        for h in hosts {
            out.push_str(&format!(
                "{:<50} {:>8} {:>12} {:<21} {}\n",
                h["host"].as_str().unwrap_or(""),
                h["blocked"].as_u64().unwrap_or(0),
                h["wouldBlock"].as_u64().unwrap_or(0),
                h["lastSeen"].as_str().unwrap_or(""),
                list(&h["repositories"]),
            ));
        }
    }
    if !presets.is_empty() {
        out.push_str(&format!(
            "{:<50} {:<12} REPOSITORIES\n",
            "HOST A PRESET NEEDS", "PRESET"
        ));
        for h in presets {
            out.push_str(&format!(
                "{:<50} {:<12} {}\n",
                h["host"].as_str().unwrap_or(""),
                h["preset"].as_str().unwrap_or(""),
                list(&h["repositories"]),
            ));
        }
    }
    if let Some(command) = report["command"].as_str() {
        out.push_str("\nTo allow them all:\n  ");
        out.push_str(command);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_ends_with_the_command() {
        let text = table(&json!({
            "hosts": [{"host": "cdn.example.com", "blocked": 0, "wouldBlock": 3,
                        "lastSeen": "2026-12-02T10:00:00Z",
                        "repositories": ["projects/default/repositories/hub"]}],
            "presetHosts": [],
            "command": "entrepot access-policy allow cdn.example.com"
        }));
        assert!(text.contains("cdn.example.com"));
        assert!(text.contains("projects/default/repositories/hub"));
        assert!(text.ends_with("entrepot access-policy allow cdn.example.com\n"));
    }
}
