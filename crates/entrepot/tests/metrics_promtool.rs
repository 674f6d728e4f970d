//! `/metrics` checked by Prometheus's own linter, `promtool check metrics`
//! (Debian's `prometheus` package): the exposition parses and every family
//! follows the naming conventions (`_total` counters, base units, `# HELP`).
//! The scrape comes after a push, a pull through a remote repository (cache
//! fills, upstream outcomes) and refused credentials, so the histogram and
//! labelled families are present.
//!
//! Skipped, with the reason printed, where promtool is not installed.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::json;
use support::*;

#[test]
fn promtool_finds_nothing_to_lint_in_the_metrics() {
    if Command::new("promtool").arg("--version").output().is_err() {
        println!("SKIPPED: promtool is not installed (apt-get install -y prometheus)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("image");
    image_layout(&layout, "1.0", &[10_000]);
    let upstream = Distribution::start();
    upstream.push(&layout, "1.0", "team/app:1.0", None);

    let server = Entrepot::start();
    server.create_repository("images");
    server.skopeo_push(&layout, "1.0", "default/images/app:1.0", false);
    server.create_remote_docker("hub", &format!("http://{}", upstream.addr), json!({}));
    server.skopeo_pull(
        "default/hub/team/app:1.0",
        &work.path().join("pulled"),
        "1.0",
        false,
    );
    let refused = server
        .bare_request(Method::GET, "/v2/")
        .basic_auth("admin", Some("not-the-token"))
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);

    let metrics = server
        .bare_request(Method::GET, "/metrics")
        .send()
        .unwrap()
        .text()
        .unwrap();
    for family in [
        "entrepot_http_request_duration_seconds_bucket",
        "entrepot_cache_fill_duration_seconds_bucket",
        "entrepot_upstream_outcomes_total{",
        "entrepot_auth_failures_total{",
    ] {
        assert!(metrics.contains(family), "no {family} in:\n{metrics}");
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}"
    );
}
