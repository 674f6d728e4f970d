//! `entrepot repositories refresh REPO IMAGE[:TAG] | PROJECT`: ask a remote
//! repository's upstream about cached tags (or a Python project's page) now,
//! and say what changed.

use reqwest::Method;
use serde_json::{json, Value};

use super::client::{AdminClient, ClientError};

/// Refresh `what` in `projects/{project}/repositories/{name}`; prints one
/// line per document (`app:1.0  UPDATED  sha256:old -> sha256:new`; for a
/// Python project, one per version and one per file), and fails when the
/// upstream could not confirm one of them.
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

/// One line per version of a Python project (`version 1.1  ADDED`), then
/// one per refreshed document: what, the outcome, the digest before and
/// after (or why it failed).
fn render(report: &Value) -> String {
    let items = report["refreshed"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return "Nothing cached matches; nothing to refresh.\n".into();
    }
    let versions = report["versions"].as_array().cloned().unwrap_or_default();
    let version_name = |v: &Value| format!("version {}", v["version"].as_str().unwrap_or(""));
    let width = items
        .iter()
        .map(|i| i["name"].as_str().unwrap_or("").len())
        .chain(versions.iter().map(|v| version_name(v).len()))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for version in &versions {
        let name = version_name(version);
        let outcome = version["outcome"].as_str().unwrap_or("");
        out.push_str(&format!("{name:<width$}  {outcome}\n"));
    }
    for item in &items {
        let name = item["name"].as_str().unwrap_or("");
        let outcome = item["outcome"].as_str().unwrap_or("");
        let digest = |key: &str| item[key].as_str().unwrap_or("(none)").to_owned();
        let detail = match outcome {
            "UPDATED" => format!("{} -> {}", digest("before"), digest("after")),
            "ADDED" => format!("(none) -> {}", digest("after")),
            "REMOVED" => format!("{} -> (none)", digest("before")),
            "FAILED" => {
                let error = item["error"].as_str().unwrap_or("");
                match item["before"].as_str() {
                    Some(before) => format!("kept {before}: {error}"),
                    None => error.to_owned(),
                }
            }
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

    #[test]
    fn a_python_project_gets_a_line_per_version_then_per_file() {
        let report = json!({
            "repository": "projects/default/repositories/pypi",
            "truncated": false,
            "versions": [
                { "version": "1.0", "outcome": "UNCHANGED" },
                { "version": "1.1", "outcome": "ADDED" },
                { "version": "0.9", "outcome": "REMOVED" },
            ],
            "refreshed": [
                { "name": "demo-1.0.tar.gz", "before": "sha256:10", "after": "sha256:10", "outcome": "UNCHANGED" },
                { "name": "demo-1.1.tar.gz", "before": null, "after": "sha256:11", "outcome": "ADDED" },
                { "name": "demo-0.9.tar.gz", "before": "sha256:09", "after": null, "outcome": "REMOVED" },
            ],
        });
        assert_eq!(
            render(&report),
            "version 1.0      UNCHANGED\n\
             version 1.1      ADDED\n\
             version 0.9      REMOVED\n\
             demo-1.0.tar.gz  UNCHANGED  sha256:10\n\
             demo-1.1.tar.gz  ADDED      (none) -> sha256:11\n\
             demo-0.9.tar.gz  REMOVED    sha256:09 -> (none)\n"
        );
        let failed = json!({
            "refreshed": [
                { "name": "demo", "before": null, "after": null, "outcome": "FAILED", "error": "the upstream is unreachable; the cached page (2 files) is kept" },
            ],
        });
        assert_eq!(
            render(&failed),
            "demo  FAILED     the upstream is unreachable; the cached page (2 files) is kept\n"
        );
    }
}
