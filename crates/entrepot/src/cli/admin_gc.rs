//! `entrepot admin gc [--dry-run] [--format=json|table]`: run the garbage
//! collector of a running server, over the admin API
//! (`POST /v1/organization/storage:collectGarbage`).

use clap::{Args, ValueEnum};
use reqwest::Method;
use serde_json::{json, Value};

use super::{print_json, AdminClient, ClientError};

/// How to print the report.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum GcFormat {
    /// Aligned rows for people.
    #[default]
    Table,
    /// The API's JSON answer.
    Json,
}

/// Arguments of `entrepot admin gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only count what a collection would reclaim now; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GcFormat::Table)]
    pub format: GcFormat,
}

/// Ask the server for one collection and print its report.
pub async fn run(client: &AdminClient, args: GcArgs) -> Result<(), ClientError> {
    let report = client
        .call(
            Method::POST,
            "organization/storage:collectGarbage",
            Some(&json!({ "dryRun": args.dry_run })),
        )
        .await?;
    match args.format {
        GcFormat::Json => print_json(&report),
        GcFormat::Table => print!("{}", table(&report)),
    }
    Ok(())
}

fn table(report: &Value) -> String {
    let n = |key: &str| report[key].as_u64().unwrap_or(0);
    let verb = if report["dryRun"].as_bool().unwrap_or(false) {
        "WOULD RECLAIM"
    } else {
        "RECLAIMED"
    };
    let rows = [
        ("unreferenced links", n("linksDropped").to_string()),
        ("blobs", n("blobsDeleted").to_string()),
        (
            "bytes",
            format!("{} ({})", n("bytesReclaimed"), human(n("bytesReclaimed"))),
        ),
        ("blobs left for the next run", n("blobsFailed").to_string()),
        ("abandoned uploads", n("uploadsRemoved").to_string()),
        ("orphan blob files", n("orphanFiles").to_string()),
        ("grace period (s)", n("graceSeconds").to_string()),
        ("duration (ms)", n("durationMs").to_string()),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!("{:width$}  {verb}\n", "");
    for (key, value) in rows {
        out.push_str(&format!("{key:width$}  {value}\n"));
    }
    out
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_figure() {
        let shown = table(&json!({"dryRun": true, "blobsDeleted": 3, "bytesReclaimed": 3072}));
        assert!(shown.contains("WOULD RECLAIM"), "{shown}");
        assert!(shown.contains("3072 (3.0 KiB)"), "{shown}");
    }
}
