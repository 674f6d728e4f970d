//! `entrepot repositories set-cleanup-policies | list-cleanup-policies |
//! cleanup` and `entrepot projects set-storage-quota`, over the admin API
//! (`.../cleanupPolicies`, `.../cleanupPolicies:run`, `.../storageQuota`).

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use entrepot_domain::storage_quota::{format_bytes, parse_byte_size};
use reqwest::Method;
use serde_json::{json, Value};

use super::{print_json, AdminClient, ClientError};

/// How to print a cleanup report.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum CleanupFormat {
    /// Aligned rows for people.
    #[default]
    Table,
    /// The API's JSON answer.
    Json,
}

/// Cleanup-policy verbs of `entrepot repositories`.
#[derive(Debug, Subcommand)]
pub enum CleanupCommand {
    /// Replace a repository's cleanup policies with those in FILE (the JSON
    /// policy file of `gcloud artifacts repositories set-cleanup-policies`).
    SetCleanupPolicies {
        /// Repository id.
        name: String,
        /// The policy file: a JSON list of policies.
        #[arg(long)]
        policy: PathBuf,
        /// Only report what the policies would delete (`cleanupPolicyDryRun`);
        /// without it, scheduled runs delete.
        #[arg(long)]
        dry_run: bool,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Show a repository's cleanup policies.
    ListCleanupPolicies {
        /// Repository id.
        name: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Run a repository's cleanup policies now, and show what they deleted.
    Cleanup {
        /// Repository id.
        name: String,
        /// Only show what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CleanupFormat::Table)]
        format: CleanupFormat,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
}

/// Storage-quota verbs of `entrepot projects`.
#[derive(Debug, Subcommand)]
pub enum ProjectQuotaCommand {
    /// Set the storage quota over all standard repositories of a project
    /// (e.g. `--storage-quota=100GiB`; `none` removes it).
    SetStorageQuota {
        /// Project id.
        project: String,
        /// Bytes, with an optional unit (KiB, MiB, GiB, TiB, KB, MB, ...), or `none`.
        #[arg(long, value_parser = parse_quota)]
        storage_quota: QuotaSetting,
    },
}

/// A quota as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaSetting {
    /// This many bytes.
    Bytes(u64),
    /// No quota.
    Unlimited,
}

/// `10GiB`, `500MB`, `1048576`, or `none`/`0` for no quota.
pub fn parse_quota(text: &str) -> Result<QuotaSetting, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(QuotaSetting::Unlimited);
    }
    match parse_byte_size(text).map_err(|e| e.to_string())? {
        0 => Ok(QuotaSetting::Unlimited),
        n => Ok(QuotaSetting::Bytes(n)),
    }
}

impl QuotaSetting {
    fn body(self) -> Value {
        match self {
            QuotaSetting::Bytes(n) => json!({ "storageQuotaBytes": n.to_string() }),
            QuotaSetting::Unlimited => json!({ "storageQuotaBytes": null }),
        }
    }
}

/// Set the storage quota of repository `name` (after `create` or `update`).
pub async fn set_repository_quota(
    client: &AdminClient,
    project: &str,
    name: &str,
    quota: QuotaSetting,
) -> Result<(), ClientError> {
    client
        .call(
            Method::PUT,
            &format!("projects/{project}/repositories/{name}/storageQuota"),
            Some(&quota.body()),
        )
        .await?;
    Ok(())
}

/// Run a cleanup verb.
pub async fn run(client: &AdminClient, command: CleanupCommand) -> Result<(), ClientError> {
    match command {
        CleanupCommand::SetCleanupPolicies {
            name,
            policy,
            dry_run,
            project,
        } => {
            let text = std::fs::read(&policy).map_err(|e| {
                invalid(format!(
                    "cannot read the policy file {}: {e}",
                    policy.display()
                ))
            })?;
            let policies: Value = serde_json::from_slice(&text)
                .map_err(|e| invalid(format!("{} is not JSON: {e}", policy.display())))?;
            let settings = client
                .call(
                    Method::PUT,
                    &format!("projects/{project}/repositories/{name}/cleanupPolicies"),
                    Some(&json!({ "cleanupPolicies": policies, "cleanupPolicyDryRun": dry_run })),
                )
                .await?;
            eprintln!("Set the cleanup policies of repository [{name}].");
            print_json(&settings);
        }
        CleanupCommand::ListCleanupPolicies { name, project } => {
            let settings = client
                .call(
                    Method::GET,
                    &format!("projects/{project}/repositories/{name}/cleanupPolicies"),
                    None,
                )
                .await?;
            print_json(&settings);
        }
        CleanupCommand::Cleanup {
            name,
            dry_run,
            format,
            project,
        } => {
            let report = client
                .call(
                    Method::POST,
                    &format!("projects/{project}/repositories/{name}/cleanupPolicies:run"),
                    Some(&json!({ "dryRun": dry_run })),
                )
                .await?;
            match format {
                CleanupFormat::Json => print_json(&report),
                CleanupFormat::Table => print!("{}", table(&report)),
            }
        }
    }
    Ok(())
}

/// Run a project quota verb.
pub async fn run_project(
    client: &AdminClient,
    command: ProjectQuotaCommand,
) -> Result<(), ClientError> {
    match command {
        ProjectQuotaCommand::SetStorageQuota {
            project,
            storage_quota,
        } => {
            let answer = client
                .call(
                    Method::PUT,
                    &format!("projects/{project}/storageQuota"),
                    Some(&storage_quota.body()),
                )
                .await?;
            let usage = number(&answer["storageUsageBytes"]);
            match number(&answer["storageQuotaBytes"]) {
                0 => eprintln!(
                    "Removed the storage quota of project [{project}] (it holds {}).",
                    format_bytes(usage)
                ),
                quota => eprintln!(
                    "Set the storage quota of project [{project}] to {} (it holds {}).",
                    format_bytes(quota),
                    format_bytes(usage)
                ),
            }
            print_json(&answer);
        }
    }
    Ok(())
}

/// A refusal of the command's own input, before anything is sent.
fn invalid(message: String) -> ClientError {
    ClientError::Api {
        status: reqwest::StatusCode::BAD_REQUEST,
        message,
    }
}

fn number(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

/// The report for people: one row per version deleted (or that would be).
fn table(report: &Value) -> String {
    let dry = report["dryRun"].as_bool().unwrap_or(false);
    let empty = Vec::new();
    let deleted = report["deleted"].as_array().unwrap_or(&empty);
    let skipped = report["skipped"].as_array().unwrap_or(&empty);
    let mut rows = vec![[
        "PACKAGE".to_owned(),
        "VERSION".to_owned(),
        "TAGS".to_owned(),
        "UPLOADED".to_owned(),
        "POLICY".to_owned(),
    ]];
    for item in deleted {
        let tags: Vec<&str> = item["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        rows.push([
            item["package"].as_str().unwrap_or("").to_owned(),
            item["version"].as_str().unwrap_or("").to_owned(),
            tags.join(","),
            item["uploadTime"].as_str().unwrap_or("").to_owned(),
            item["policy"].as_str().unwrap_or("").to_owned(),
        ]);
    }
    let mut widths = [0; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    if deleted.is_empty() {
        out.push_str(if dry {
            "Nothing would be deleted.\n"
        } else {
            "Nothing was deleted.\n"
        });
    } else {
        for row in &rows {
            let line: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell:w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
    }
    let verb = if dry { "would be deleted" } else { "deleted" };
    out.push_str(&format!(
        "{} of {} versions {verb} in {}{}\n",
        deleted.len(),
        number(&report["versionsExamined"]),
        report["repository"].as_str().unwrap_or(""),
        if dry {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    ));
    if !skipped.is_empty() {
        out.push_str(&format!(
            "{} selected versions were kept: an index pushed meanwhile references them, or they were already gone\n",
            skipped.len()
        ));
    }
    out
}
