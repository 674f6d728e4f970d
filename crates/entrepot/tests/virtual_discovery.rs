//! Content discovery through a virtual Docker repository: the catalog lists
//! the images it serves under its own name, paged with `n`, `last` and
//! `Link` like every other entry.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{json, Value};
use support::{next_link, query_of, Entrepot};

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
