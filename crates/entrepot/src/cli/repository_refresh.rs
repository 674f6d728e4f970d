//! `entrepot repositories refresh REPO IMAGE[:TAG] | PROJECT`: ask a remote
//! repository's upstream about cached tags (or a Python project page) now,
//! and say what changed.

use reqwest::Method;
use serde_json::{json, Value};

use super::client::{AdminClient, ClientError};

/// Refresh `what` in `projects/{project}/repositories/{name}`; prints one
/// line per document (`app:1.0  UPDATED  sha256:old -> sha256:new`), and
/// fails when the upstream could not confirm one of them.
pub async fn run(
    client: &AdminClient,
    project: &str,
    name: &str,
    what: &str,
    json_output: bool,
) -> Result<(), ClientError> {
    let report = client
        .call(
            Method::POST,
            &format!("projects/{project}/repositories/{name}:refresh"),
            Some(&json!({ "name": what })),
        )
        .await?;
    if json_output {
        super::print_json(&report);
    } else {
        print!("{}", render(&report));
    }
    let failed = report["refreshed"]
        .as_array()
        .map(|items| items.iter().filter(|i| i["outcome"] == "FAILED").count())
        .unwrap_or(0);
    if failed > 0 {
        return Err(ClientError::Api {
            status: reqwest::StatusCode::BAD_GATEWAY,
            message: format!(
                "the upstream could not confirm {failed} of them; their cached copies are kept"
            ),
        });
    }
    Ok(())
}

/// One line per refreshed document: what, the outcome, the digest before
/// and after (or why it failed).
fn render(report: &Value) -> String {
    let items = report["refreshed"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return "Nothing cached matches; nothing to refresh.\n".into();
    }
    let width = items
        .iter()
        .map(|i| i["name"].as_str().unwrap_or("").len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for item in &items {
        let name = item["name"].as_str().unwrap_or("");
        let outcome = item["outcome"].as_str().unwrap_or("");
        let digest = |key: &str| item[key].as_str().unwrap_or("(none)").to_owned();
        let detail = match outcome {
            "UPDATED" => format!("{} -> {}", digest("before"), digest("after")),
            "ADDED" => format!("(none) -> {}", digest("after")),
            "FAILED" => format!(
                "kept {}: {}",
                digest("before"),
                item["error"].as_str().unwrap_or("")
            ),
            _ => digest("after"),
        };
        out.push_str(&format!("{name:<width$}  {outcome:<9}  {detail}\n"));
    }
    if report["truncated"] == true {
        out.push_str("(more cached tags than one refresh asks about; the rest keep their freshness window)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_document_gets_a_line_with_its_digests() {
        let report = json!({
            "repository": "projects/default/repositories/hub",
            "truncated": false,
            "refreshed": [
                { "name": "app:1.0", "before": "sha256:aa", "after": "sha256:bb", "outcome": "UPDATED" },
                { "name": "app:latest", "before": "sha256:cc", "after": "sha256:cc", "outcome": "UNCHANGED" },
                { "name": "app:2", "before": null, "after": "sha256:dd", "outcome": "ADDED" },
                { "name": "app:gone", "before": "sha256:ee", "after": "sha256:ee", "outcome": "FAILED", "error": "manifest app:gone is not in the upstream 127.0.0.1:5000" },
            ],
        });
        assert_eq!(
            render(&report),
            "app:1.0     UPDATED    sha256:aa -> sha256:bb\n\
             app:latest  UNCHANGED  sha256:cc\n\
             app:2       ADDED      (none) -> sha256:dd\n\
             app:gone    FAILED     kept sha256:ee: manifest app:gone is not in the upstream 127.0.0.1:5000\n"
        );
    }
}
