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

/// The versions of `project` a remote Python repository's page lists, as
/// pip reads it (the JSON form).
fn listed_versions(server: &Entrepot, repo: &str, project: &str) -> Vec<String> {
    let response = server
        .request(
            reqwest::Method::GET,
            &format!("/pypi/default/{repo}/simple/{project}/"),
        )
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{}", server.log_text());
    let page: serde_json::Value = response.json().unwrap();
    let mut versions: Vec<String> = page["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    versions.sort();
    versions
}

#[test]
fn a_version_uploaded_upstream_is_installable_right_after_a_refresh() {
    let work = tempfile::tempdir().unwrap();
    let (packages, build) = (work.path().join("packages"), work.path().join("build"));
    let old = make_dist(&packages, "wheel", "fresh-lib", "1.0", &[]);
    let upstream = PyPiServer::start(&packages);
    let server = Entrepot::start();
    // An hour-long freshness window: without a refresh, the cache would not
    // ask the upstream about the page again for an hour.
    server.create_python(
        "up",
        Some(&upstream.index_url()),
        json!({ "pythonIndexTtlSecs": 3600 }),
    );
    let url = server.python_index("up");
    let out = pip_install(&url, &work.path().join("first"), &["fresh-lib==1.0"]);
    assert!(out.status.success(), "pip install 1.0: {}", text(&out));

    // 2.0 is uploaded upstream with twine; the cached page does not know.
    let new = make_dist(&build, "wheel", "fresh-lib", "2.0", &[]);
    let out = twine_upload(&format!("http://{}/", upstream.addr), "any", "any", &[&new]);
    assert!(
        out.status.success(),
        "twine upload upstream: {}",
        text(&out)
    );
    assert!(packages.join(new.file_name().unwrap()).exists());
    let out = pip_install(&url, &work.path().join("early"), &["fresh-lib==2.0"]);
    assert!(!out.status.success(), "2.0 installed before the refresh");

    let out = server.cli_ok(&["repositories", "refresh", "up", "fresh-lib"]);
    let (old_name, new_name) = (
        old.file_name().unwrap().to_string_lossy().into_owned(),
        new.file_name().unwrap().to_string_lossy().into_owned(),
    );
    assert!(out.contains("version 1.0"), "{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for {name} in {out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(line("version 1.0")[2], "UNCHANGED", "{out}");
    assert_eq!(line("version 2.0")[2], "ADDED", "{out}");
    assert_eq!(line(&old_name)[1], "UNCHANGED", "{out}");
    assert_eq!(line(&new_name)[1], "ADDED", "{out}");

    let out = pip_install(&url, &work.path().join("after"), &["fresh-lib==2.0"]);
    assert!(
        out.status.success(),
        "pip install 2.0 right after the refresh: {}",
        text(&out)
    );
    assert!(installed(&work.path().join("after"), "fresh_lib"));

    // 1.0 is removed upstream: the refresh says so, and the page no longer
    // lists it.
    std::fs::remove_file(packages.join(&old_name)).unwrap();
    let report: serde_json::Value = serde_json::from_str(&server.cli_ok(&[
        "repositories",
        "refresh",
        "up",
        "Fresh_Lib",
        "--json",
    ]))
    .unwrap();
    let versions = report["versions"].as_array().unwrap();
    let outcome = |version: &str| {
        versions
            .iter()
            .find(|v| v["version"] == version)
            .map(|v| v["outcome"].clone())
    };
    assert_eq!(outcome("2.0"), Some(json!("UNCHANGED")), "{report}");
    assert_eq!(outcome("1.0"), Some(json!("REMOVED")), "{report}");
    let removed = report["refreshed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == old_name.as_str())
        .cloned()
        .unwrap();
    assert_eq!(removed["outcome"], "REMOVED");
    assert!(removed["after"].is_null());
    assert_eq!(listed_versions(&server, "up", "fresh-lib"), ["2.0"]);
}

#[test]
fn a_python_refresh_the_upstream_cannot_answer_keeps_the_cached_page() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    make_dist(&packages, "wheel", "kept-lib", "1.0", &[]);
    let mut upstream = PyPiServer::start(&packages);
    let server = Entrepot::start();
    server.create_python(
        "up",
        Some(&upstream.index_url()),
        json!({ "pythonIndexTtlSecs": 3600, "connectTimeoutSecs": 1, "retryBudgetSecs": 2 }),
    );
    let url = server.python_index("up");
    let out = pip_install(&url, &work.path().join("first"), &["kept-lib"]);
    assert!(out.status.success(), "pip install: {}", text(&out));

    upstream.stop();
    let out = server.cli(&["repositories", "refresh", "up", "kept-lib"]);
    assert!(
        !ok(&out),
        "a refresh of a page the upstream cannot give succeeded"
    );
    let (stdout, err) = (text(&out), stderr(&out));
    assert!(stdout.contains("kept-lib  FAILED"), "{stdout}");
    assert!(stdout.contains(&upstream.addr), "{stdout}");
    assert!(
        stdout.contains("the cached page (1 files) is kept"),
        "{stdout}"
    );
    assert!(err.contains("could not confirm 1"), "{err}");

    // The cached page is still served, and installs.
    assert_eq!(listed_versions(&server, "up", "kept-lib"), ["1.0"]);
    let out = pip_install(&url, &work.path().join("again"), &["kept-lib"]);
    assert!(
        out.status.success(),
        "pip install from the kept page: {}",
        text(&out)
    );

    // A project never cached, the upstream down: nothing to keep, and said so.
    let out = server.cli(&["repositories", "refresh", "up", "never-seen", "--json"]);
    assert!(!ok(&out));
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(report["refreshed"][0]["outcome"], "FAILED");
    let error = report["refreshed"][0]["error"].as_str().unwrap();
    assert!(error.contains("nothing was cached"), "{error}");
}
