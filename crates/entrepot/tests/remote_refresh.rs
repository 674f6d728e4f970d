//! `entrepot repositories refresh REPO IMAGE[:TAG]`: a tag moved upstream is
//! seen by the next pull at once, without waiting for the freshness window,
//! and the command says what changed.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;

/// The digest a pull of `default/hub/app:TAG` through the server gets, and
/// its `X-Cache`.
fn pulled(server: &Entrepot, tag: &str) -> (String, String) {
    let response = server
        .request(
            reqwest::Method::GET,
            &format!("/v2/default/hub/app/manifests/{tag}"),
        )
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{}", server.log_text());
    (
        header(&response, "docker-content-digest"),
        header(&response, "x-cache"),
    )
}

#[test]
fn a_tag_moved_upstream_is_pulled_at_once_after_a_refresh() {
    let work = tempfile::tempdir().unwrap();
    let (one, two) = (work.path().join("one"), work.path().join("two"));
    let first = image_layout(&one, "1.0", &[1500]);
    let second = image_layout(&two, "1.0", &[2500]);
    let backend = Distribution::start();
    backend.push(&one, "1.0", "app:1.0", None);
    backend.push(&one, "1.0", "app:stable", None);
    let server = Entrepot::start();
    let upstream = format!("http://{}", backend.addr);
    server.create_remote_docker("hub", &upstream, json!({ "tagTtlSecs": 3600 }));
    assert_eq!(pulled(&server, "1.0"), (first.clone(), "MISS".into()));
    assert_eq!(pulled(&server, "stable").0, first);

    // The tag moves upstream; within the hour-long window the cache does
    // not know.
    backend.push(&two, "1.0", "app:1.0", None);
    assert_eq!(pulled(&server, "1.0"), (first.clone(), "HIT".into()));

    let out = server.cli_ok(&["repositories", "refresh", "hub", "app:1.0"]);
    assert!(
        out.contains(&format!("app:1.0  UPDATED    {first} -> {second}")),
        "{out}"
    );
    assert_eq!(pulled(&server, "1.0"), (second.clone(), "HIT".into()));

    // Every cached tag of the image: one moved already, one never did.
    let out = server.cli_ok(&["repositories", "refresh", "hub", "app"]);
    assert!(
        out.contains(&format!("app:1.0     UNCHANGED  {second}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("app:stable  UNCHANGED  {first}")),
        "{out}"
    );

    // The JSON report says the same.
    let report: serde_json::Value = serde_json::from_str(&server.cli_ok(&[
        "repositories",
        "refresh",
        "hub",
        "app:stable",
        "--json",
    ]))
    .unwrap();
    assert_eq!(report["refreshed"][0]["outcome"], "UNCHANGED");
    assert_eq!(report["refreshed"][0]["before"], first.as_str());
    assert_eq!(report["refreshed"][0]["after"], first.as_str());
}

#[test]
fn a_refresh_the_upstream_cannot_answer_keeps_the_cached_tag_and_says_why() {
    let work = tempfile::tempdir().unwrap();
    let one = work.path().join("one");
    let first = image_layout(&one, "1.0", &[1500]);
    let mut backend = Distribution::start();
    backend.push(&one, "1.0", "app:1.0", None);
    let server = Entrepot::start();
    let upstream = format!("http://{}", backend.addr);
    server.create_remote_docker(
        "hub",
        &upstream,
        json!({ "tagTtlSecs": 3600, "connectTimeoutSecs": 1, "retryBudgetSecs": 2 }),
    );
    assert_eq!(pulled(&server, "1.0").0, first);

    backend.stop();
    let out = server.cli(&["repositories", "refresh", "hub", "app:1.0"]);
    assert!(!ok(&out));
    let (stdout, err) = (text(&out), stderr(&out));
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(stdout.contains(&format!("kept {first}")), "{stdout}");
    assert!(stdout.contains(&backend.addr), "{stdout}");
    assert!(err.contains("could not confirm 1"), "{err}");
    assert_eq!(pulled(&server, "1.0").0, first);
}

#[test]
fn refreshing_is_a_write_a_reader_may_not_do() {
    let backend = Distribution::start();
    let server = Entrepot::start();
    let upstream = format!("http://{}", backend.addr);
    server.create_remote_docker("hub", &upstream, json!({}));
    server.create_repository("hosted");
    let reader = server.user_with_token("reader@example.com", false);
    server.grant(
        "projects/default/repositories/hub",
        "user:reader@example.com",
        "roles/artifactregistry.reader",
    );
    let refused = server
        .bare_request(
            reqwest::Method::POST,
            "/v1/projects/default/repositories/hub:refresh",
        )
        .bearer_auth(&reader)
        .json(&json!({ "name": "app:1.0" }))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 403, "{}", refused.text().unwrap());
    let anonymous = server
        .bare_request(
            reqwest::Method::POST,
            "/v1/projects/default/repositories/hub:refresh",
        )
        .body("not json")
        .send()
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    let err = server.cli_err(&["repositories", "refresh", "hosted", "app:1.0"]);
    assert!(err.contains("not a remote repository"), "{err}");
}
