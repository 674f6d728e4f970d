//! What an operator sees: the Prometheus exposition (checked by a parser),
//! one access-log line per request with `X-Request-Id` echoed and no colour
//! escapes in a log file, and `/readyz` naming each failing check.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use support::*;

/// The access lines of the server's log so far.
fn access_lines(server: &Entrepot) -> Vec<String> {
    server
        .log_text()
        .lines()
        .filter(|l| l.contains("entrepot::access"))
        .map(str::to_owned)
        .collect()
}

/// Wait (bounded) until `n` access lines mention `needle`: a line is written
/// once the response body has been sent, just after the client has it.
fn wait_for_lines(server: &Entrepot, needle: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines: Vec<String> = access_lines(server)
            .into_iter()
            .filter(|l| l.contains(needle))
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_request_gets_one_access_line_with_its_id_and_no_escapes() {
    let server = Entrepot::builder().log_level("info").start();
    server.create_repository("images");
    let ok = server
        .request(Method::GET, "/v2/default/images/app/tags/list")
        .header("x-request-id", "build-7.step:2")
        .send()
        .unwrap();
    assert_eq!(ok.headers()["x-request-id"], "build-7.step:2");
    let hostile = server
        .bare_request(Method::GET, "/v2/default/images/app/manifests/1.0")
        .header("x-request-id", "a b\"c")
        .send()
        .unwrap();
    let generated = hostile.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(generated, "a b\"c");
    assert_eq!(generated.len(), 36, "{generated}");

    let lines = wait_for_lines(&server, "build-7.step:2", 1);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    for field in [
        "request_id=build-7.step:2",
        "principal=user:",
        "method=\"GET\"",
        "path=/v2/default/images/app/tags/list",
        "repository=projects/default/repositories/images",
        "status=",
        "bytes=",
        "duration_ms=",
        "cache=",
    ] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
    // A refusal: logged with its repository and cause.
    let refused = wait_for_lines(&server, &generated, 1);
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert!(refused[0].contains("principal=allUsers"), "{}", refused[0]);
    assert!(refused[0].contains("status=401"), "{}", refused[0]);
    assert!(
        refused[0].contains("error=\"UNAUTHORIZED: "),
        "{}",
        refused[0]
    );
    assert!(
        !server.log_text().contains('\u{1b}'),
        "ANSI escapes in a log file"
    );
}

#[test]
fn the_metrics_exposition_parses_and_counts_requests_by_route_class() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("image");
    image_layout(&layout, "1.0", &[10_000]);
    let upstream = Distribution::start();
    upstream.push(&layout, "1.0", "app:1.0", None);
    let server = Entrepot::start();
    server.create_remote_docker("up", &format!("http://{}", upstream.addr), json!({}));
    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/up/app:1.0", &pulled, "1.0", false);
    let bad = server
        .bare_request(Method::GET, "/v2/default/up/app/manifests/1.0")
        .bearer_auth("not-a-token")
        .send()
        .unwrap();
    assert_eq!(bad.status(), 401);

    let text = server.get("/metrics").text().unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    // Every family has its # HELP and # TYPE.
    let mut families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    families.dedup();
    for family in &families {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} has no HELP"
        );
    }
    for family in [
        "entrepot_http_requests_total",
        "entrepot_http_request_duration_seconds",
        "entrepot_http_requests_in_flight",
        "entrepot_upstream_outcomes_total",
        "entrepot_cache_fill_duration_seconds",
        "entrepot_cache_fill_bytes_total",
        "entrepot_stale_serves_total",
        "entrepot_auth_failures_total",
        // Names kept from before.
        "entrepot_cache_hits_total",
        "entrepot_upstream_requests_total",
    ] {
        assert!(families.contains(&family), "{family} missing:\n{text}");
    }
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    assert!(
        value(
            "entrepot_http_requests_total",
            &[
                ("route", "oci_manifest"),
                ("method", "GET"),
                ("status", "200")
            ]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        value(
            "entrepot_http_requests_total",
            &[("route", "oci_blob"), ("status", "200")]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        value("entrepot_upstream_outcomes_total", &[("outcome", "ok")]) >= 1.0,
        "{text}"
    );
    assert!(
        value("entrepot_cache_fill_bytes_total", &[]) > 0.0,
        "{text}"
    );
    assert!(
        value(
            "entrepot_auth_failures_total",
            &[("kind", "invalid_credentials")]
        ) >= 1.0,
        "{text}"
    );
    let histogram = scrape
        .samples
        .iter()
        .find(|s| s.metric == "entrepot_http_request_duration_seconds")
        .unwrap();
    assert!(matches!(
        histogram.value,
        prometheus_parse::Value::Histogram(_)
    ));
}

#[test]
fn readyz_names_an_unwritable_blob_store_and_a_nearly_full_disk() {
    let server = Entrepot::start();
    assert_eq!(
        server
            .bare_request(Method::GET, "/readyz")
            .send()
            .unwrap()
            .status(),
        200
    );
    // The write probe goes through the staging area: a file in its place
    // makes the blob store refuse writes (whoever runs the test, root too).
    let staging = server.data_dir.join("blobs").join("staging");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::write(&staging, b"not a directory").unwrap();
    let response = server.bare_request(Method::GET, "/readyz").send().unwrap();
    assert_eq!(response.status(), 503);
    let reason = response.text().unwrap();
    assert!(reason.contains("blob store not writable"), "{reason}");
    std::fs::remove_file(&staging).unwrap();
    assert_eq!(
        server
            .bare_request(Method::GET, "/readyz")
            .send()
            .unwrap()
            .status(),
        200
    );

    let full = Entrepot::builder()
        .env("ENTREPOT_MIN_FREE_DISK_BYTES", &(1u64 << 60).to_string())
        .start();
    let response = full.bare_request(Method::GET, "/readyz").send().unwrap();
    assert_eq!(response.status(), 503);
    let reason = response.text().unwrap();
    assert!(reason.contains("disk space"), "{reason}");
}
