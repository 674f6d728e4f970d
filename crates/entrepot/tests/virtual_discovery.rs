//! Content discovery through a virtual Docker repository: the catalog lists
//! the images it serves under its own name, paged with `n`, `last` and
//! `Link` like every other entry, and the referrers of a subject come from
//! the member that holds the subject.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{json, Value};
use support::{header, next_link, query_of, sha256, Entrepot, SmallImage, OCI_INDEX};

/// Create the virtual Docker repository `id` over `members`
/// (`(repository, priority)`).
fn create_virtual(server: &Entrepot, id: &str, members: &[(&str, i64)]) {
    let dir = tempfile::tempdir().unwrap();
    let list: Vec<Value> = members
        .iter()
        .map(|(repo, priority)| {
            json!({ "id": repo, "repository": format!("projects/default/repositories/{repo}"), "priority": priority })
        })
        .collect();
    let file = dir.path().join("members.json");
    std::fs::write(&file, serde_json::to_vec(&list).unwrap()).unwrap();
    let out = server.cli(&[
        "repositories",
        "create",
        id,
        "--repository-format=docker",
        "--mode=virtual-repository",
        &format!("--upstream-policy-file={}", file.display()),
    ]);
    assert!(out.status.success(), "create {id}: {out:?}");
}

/// Walk the catalog in pages of `n`, following `Link`: every name, and the
/// number of pages.
fn walk_catalog(server: &Entrepot, n: usize) -> (Vec<String>, usize) {
    let (mut seen, mut pages) = (Vec::new(), 0);
    let mut url = format!("/v2/_catalog?n={n}");
    loop {
        let response = server.get(&url);
        assert_eq!(response.status(), 200);
        let link = next_link(&response);
        let page: Value = response.json().unwrap();
        let names: Vec<String> = serde_json::from_value(page["repositories"].clone()).unwrap();
        assert!(names.len() <= n, "page {pages}: {names:?}");
        seen.extend(names);
        pages += 1;
        match link {
            Some(next) => {
                assert_eq!(query_of(&next).get("last"), seen.last());
                url = next;
            }
            None => return (seen, pages),
        }
    }
}

#[test]
fn the_catalog_lists_what_a_virtual_repository_serves_once_and_in_order() {
    let server = Entrepot::start();
    server.create_repository("team-a");
    server.create_repository("team-b");
    server.push_small_image("default/team-a/app", "1.0");
    server.push_small_image("default/team-a/base", "1");
    server.push_small_image("default/team-b/app", "1.0");
    server.push_small_image("default/team-b/tools/cli", "1");
    create_virtual(&server, "images", &[("team-a", 20), ("team-b", 10)]);
    create_virtual(&server, "only-b", &[("team-b", 1)]);

    let want = [
        "default/images/app",
        "default/images/base",
        "default/images/tools/cli",
        "default/only-b/app",
        "default/only-b/tools/cli",
        "default/team-a/app",
        "default/team-a/base",
        "default/team-b/app",
        "default/team-b/tools/cli",
    ];
    let all: Value = server.get("/v2/_catalog").json().unwrap();
    assert_eq!(all["repositories"], json!(want));
    for n in [1, 2, 3, 4] {
        let (seen, pages) = walk_catalog(&server, n);
        assert_eq!(seen, want, "pages of {n}");
        assert_eq!(pages, want.len().div_ceil(n), "pages of {n}");
    }
    // A cursor inside the virtual repository's names, and one before them.
    let page: Value = server
        .get("/v2/_catalog?n=2&last=default/images/base")
        .json()
        .unwrap();
    assert_eq!(
        page["repositories"],
        json!(["default/images/tools/cli", "default/only-b/app"])
    );
    let page: Value = server
        .get("/v2/_catalog?n=1&last=default/im")
        .json()
        .unwrap();
    assert_eq!(page["repositories"], json!(["default/images/app"]));
}

/// Push to `image` an artifact of `artifact_type` whose subject is
/// `subject`; its digest.
fn artifact(server: &Entrepot, image: &str, subject: &SmallImage, artifact_type: &str) -> String {
    let payload = artifact_type.as_bytes();
    server
        .push_artifact(image, subject, artifact_type, payload)
        .0
}

#[test]
fn referrers_come_from_the_member_that_holds_the_subject() {
    let server = Entrepot::start();
    server.create_repository("team-a");
    server.create_repository("team-b");
    server.push_small_image("default/team-a/app", "other");
    let subject = server.push_small_image("default/team-b/app", "1.0");
    let sbom_type = "application/vnd.example.sbom.v1";
    let sig_type = "application/vnd.example.signature.v1";
    let sbom = artifact(&server, "default/team-b/app", &subject, sbom_type);
    let sig = artifact(&server, "default/team-b/app", &subject, sig_type);
    // The same artifact type in the higher-priority member, about a subject
    // it does not hold: not the answer.
    let elsewhere = SmallImage::random();
    artifact(&server, "default/team-a/app", &elsewhere, sbom_type);
    create_virtual(&server, "images", &[("team-a", 20), ("team-b", 10)]);

    let response = server.get(&format!(
        "/v2/default/images/app/referrers/{}",
        subject.digest
    ));
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), OCI_INDEX);
    let index: Value = response.json().unwrap();
    let mut digests: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    digests.sort_unstable();
    let mut want = vec![sbom.as_str(), sig.as_str()];
    want.sort_unstable();
    assert_eq!(digests, want);

    let filtered = server.get(&format!(
        "/v2/default/images/app/referrers/{}?artifactType={sig_type}",
        subject.digest
    ));
    assert_eq!(header(&filtered, "oci-filters-applied"), "artifactType");
    let filtered: Value = filtered.json().unwrap();
    assert_eq!(filtered["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["manifests"][0]["digest"], sig.as_str());
    // The referrer itself is pulled through the virtual repository.
    let got = server.get(&format!("/v2/default/images/app/manifests/{sig}"));
    assert_eq!(got.status(), 200);

    // Once the higher-priority member holds the subject too, its referrers
    // (none) are the answer: the first holder answers, not a union.
    server.push_image("default/team-a/app", "1.0", &subject);
    let first: Value = server
        .get(&format!(
            "/v2/default/images/app/referrers/{}",
            subject.digest
        ))
        .json()
        .unwrap();
    assert_eq!(first["manifests"], json!([]));

    // A subject no member holds: an empty index.
    let none: Value = server
        .get(&format!(
            "/v2/default/images/app/referrers/{}",
            sha256(b"nothing")
        ))
        .json()
        .unwrap();
    assert_eq!(none["manifests"], json!([]));
}
