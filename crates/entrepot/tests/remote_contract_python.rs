//! The contract for a sick upstream (docs/remote.md) for a remote Python
//! repository, row by row, against the switchable upstream of
//! `remote_contract.rs` in front of a real pypiserver: what it serves for
//! cached files (immutable), cached project pages (mutable) and what it
//! never cached, in each failure class.

#![allow(clippy::unwrap_used)]

mod support;

use reqwest::blocking::Response;
use serde_json::{json, Value};
use support::sick_upstream::{assert_corrupt_answer_broken, SickUpstream, Sickness, CLASSES};
use support::*;

const JSON: &str = "application/vnd.pypi.simple.v1+json";

struct World {
    _work: tempfile::TempDir,
    _pypi: PyPiServer,
    sick: SickUpstream,
    server: Entrepot,
    /// The file of `tiny-lib` 1.0: its path on entrepot and its sha256,
    /// downloaded through the cache while the upstream was healthy.
    file: (String, String),
    /// The file of `other-lib` 1.0, whose page was read but which was
    /// never downloaded.
    uncached_file: String,
}

fn get(server: &Entrepot, path: &str) -> Response {
    server
        .request(reqwest::Method::GET, path)
        .header("accept", JSON)
        .send()
        .unwrap()
}

/// The path and sha256 of the one file of a project's page.
fn only_file(server: &Entrepot, project: &str) -> (String, String) {
    let page = get(server, &format!("/pypi/default/up/simple/{project}/"));
    assert_eq!(page.status(), 200, "{}", server.log_text());
    let page: Value = page.json().unwrap();
    let file = &page["files"][0];
    (
        file["url"].as_str().unwrap().to_owned(),
        file["hashes"]["sha256"].as_str().unwrap().to_owned(),
    )
}

/// A remote Python repository `up` in front of a sick upstream in front of
/// pypiserver, every page revalidated on each request (a zero freshness
/// window), with `extra` settings.
fn world(extra: Value) -> World {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    make_dist(&packages, "wheel", "tiny-lib", "1.0", &[]);
    make_dist(&packages, "wheel", "other-lib", "1.0", &[]);
    let pypi = PyPiServer::start(&packages);
    let sick = SickUpstream::start(&pypi.addr);
    let server = Entrepot::start();
    let mut config = json!({
        "pythonIndexTtlSecs": 0,
        "connectTimeoutSecs": 1,
        "firstByteTimeoutSecs": 1,
        "retryBudgetSecs": 2,
        "idleTimeoutSecs": 1,
    });
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    server.create_python("up", Some(&format!("{}/simple/", sick.url())), config);
    let file = only_file(&server, "tiny-lib");
    let downloaded = get(&server, &file.0);
    assert_eq!(downloaded.status(), 200, "{}", server.log_text());
    assert_eq!(
        sha256(&downloaded.bytes().unwrap()),
        format!("sha256:{}", file.1)
    );
    let uncached_file = only_file(&server, "other-lib").0;
    World {
        _work: work,
        _pypi: pypi,
        sick,
        server,
        file,
        uncached_file,
    }
}

#[test]
fn cached_files_never_ask_the_upstream() {
    let mut w = world(json!({}));
    for (sickness, _) in CLASSES.into_iter().chain([(Sickness::Corrupt, 0)]) {
        w.sick.set(sickness);
        w.sick.clear_requests();
        let file = get(&w.server, &w.file.0);
        assert_eq!(file.status(), 200, "{sickness:?}");
        assert_eq!(header(&file, "x-cache"), "HIT", "{sickness:?}");
        assert_eq!(
            sha256(&file.bytes().unwrap()),
            format!("sha256:{}", w.file.1),
            "{sickness:?}"
        );
        assert_eq!(w.sick.requests(), Vec::<String>::new(), "{sickness:?}");
    }
}

#[test]
fn cached_pages_are_served_stale_with_a_warning_in_every_class() {
    // (Corrupt bytes do not apply: a page has no digest to check them by,
    // and pages are read leniently, invalid UTF-8 included.)
    let mut w = world(json!({}));
    for (sickness, _) in CLASSES {
        w.sick.set(sickness);
        let page = get(&w.server, "/pypi/default/up/simple/tiny-lib/");
        assert_eq!(page.status(), 200, "{sickness:?}: {}", w.server.log_text());
        let warning = header(&page, "warning");
        assert!(warning.starts_with("110 "), "{sickness:?}: {warning}");
        assert_eq!(header(&page, "x-cache"), "STALE", "{sickness:?}");
        assert!(header(&page, "age").parse::<u64>().is_ok(), "{sickness:?}");
        let page: Value = page.json().unwrap();
        assert_eq!(
            page["files"][0]["hashes"]["sha256"], w.file.1,
            "{sickness:?}"
        );
    }
    // Healthy again: answered from the upstream, without the warning.
    w.sick.set(Sickness::Healthy);
    let page = get(&w.server, "/pypi/default/up/simple/tiny-lib/");
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("warning").is_none());
    assert_eq!(header(&page, "x-cache"), "REVALIDATED");
}

#[test]
fn uncached_pages_and_files_fail_with_the_class_status_and_its_reason() {
    let mut w = world(json!({}));
    for (sickness, status) in CLASSES {
        w.sick.set(sickness);
        let page = get(&w.server, "/pypi/default/up/simple/never-cached/");
        assert_eq!(page.status().as_u16(), status, "{sickness:?}");
        if let Sickness::TooManyRequests(Some(after)) = sickness {
            assert_eq!(header(&page, "retry-after"), after.to_string());
        }
        let body = page.text().unwrap();
        assert!(
            body.contains(w.sick.addr()) || status == 404,
            "{sickness:?}: {body}"
        );
        let file = get(&w.server, &w.uncached_file);
        assert_eq!(file.status().as_u16(), status, "{sickness:?}");
    }
}

#[test]
fn a_corrupt_file_is_never_cached_and_the_next_healthy_download_fills() {
    let mut w = world(json!({}));
    w.sick.set(Sickness::Corrupt);
    assert_corrupt_answer_broken(
        w.server
            .request(reqwest::Method::GET, &w.uncached_file)
            .header("accept", JSON)
            .send(),
    );
    w.sick.set(Sickness::Healthy);
    let file = get(&w.server, &w.uncached_file);
    assert_eq!(file.status(), 200);
    assert_eq!(header(&file, "x-cache"), "MISS");
}

#[test]
fn a_deleted_project_is_served_stale_within_the_grace_period_then_404() {
    let mut w = world(json!({}));
    w.sick.set(Sickness::NotFound);
    let page = get(&w.server, "/pypi/default/up/simple/tiny-lib/");
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "x-cache"), "STALE");

    // A grace period of 0: gone at once.
    w.server
        .cli_ok(&["repositories", "update", "up", "--remote-keep-deleted", "0"]);
    let page = get(&w.server, "/pypi/default/up/simple/tiny-lib/");
    assert_eq!(page.status(), 404);
}

#[test]
fn without_serve_stale_a_failing_upstream_fails_page_requests() {
    let mut w = world(json!({ "serveStale": false }));
    w.sick.set(Sickness::ServerError(502));
    let page = get(&w.server, "/pypi/default/up/simple/tiny-lib/");
    assert_eq!(page.status(), 503);
    // The cached file is still served.
    assert_eq!(get(&w.server, &w.file.0).status(), 200);
}

#[test]
fn a_storm_on_a_missing_project_asks_the_upstream_once() {
    let w = world(json!({}));
    w.sick.clear_requests();
    for _ in 0..20 {
        let page = get(&w.server, "/pypi/default/up/simple/missing-project/");
        assert_eq!(page.status(), 404);
    }
    assert_eq!(
        w.sick.requests_for("/simple/missing-project"),
        1,
        "{:?}",
        w.sick.requests()
    );
}
