//! Every `/v1` listing is paged: `pageSize` and `pageToken` in, `nextPageToken`
//! out (left out on the last page). Walks each listing over HTTP in small
//! pages against the real binary, adds items during a walk, and lists more
//! than one server page through the CLI. Bad parameters are checked
//! in-process, in `api_shape.rs`.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::process::Output;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};
use support::Server;

/// One page: the items and the token of the next page.
fn page(server: &Server, path: &str, field: &str, query: &str) -> (Vec<Value>, Option<String>) {
    let separator = if path.contains('?') { '&' } else { '?' };
    let response = server.get(&format!("{path}{separator}{query}"));
    let status = response.status();
    let body: Value = response.json().unwrap();
    assert_eq!(status, 200, "{path}?{query}: {body}");
    let items = body[field]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: no {field} array in {body}"))
        .clone();
    let next = body.get("nextPageToken").map(|t| {
        let t = t.as_str().unwrap().to_owned();
        assert!(
            !t.is_empty(),
            "{path}: an empty nextPageToken is sent as none"
        );
        t
    });
    (items, next)
}

/// Walk a listing in pages of `size`: every page but the last is full, and
/// only the last one has no token. The items in order.
fn walk(server: &Server, path: &str, field: &str, size: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let query = match &token {
            None => format!("pageSize={size}"),
            Some(t) => format!("pageSize={size}&pageToken={t}"),
        };
        let (page, next) = page(server, path, field, &query);
        assert!(
            page.len() <= size,
            "{path}: {} items on a page of {size}",
            page.len()
        );
        match next {
            Some(next) => {
                assert_eq!(page.len(), size, "{path}: a page before the last is full");
                items.extend(page);
                token = Some(next);
            }
            None => {
                items.extend(page);
                return items;
            }
        }
    }
}

/// Every item of a listing in one page (it must fit in the maximum).
fn all(server: &Server, path: &str, field: &str) -> Vec<Value> {
    let (items, next) = page(server, path, field, "pageSize=1000");
    assert!(next.is_none(), "{path} fits in one page");
    items
}

fn key(item: &Value, field: &str) -> String {
    item[field].as_str().unwrap().to_owned()
}

/// The keys of `items`, asserting none appears twice.
fn once(items: &[Value], field: &str) -> Vec<String> {
    let keys: Vec<String> = items.iter().map(|i| key(i, field)).collect();
    let distinct: HashSet<&String> = keys.iter().collect();
    assert_eq!(
        distinct.len(),
        keys.len(),
        "an item appears twice: {keys:?}"
    );
    keys
}

fn post(server: &Server, path: &str, body: Value) -> Value {
    let response = server
        .request(Method::POST, path)
        .json(&body)
        .send()
        .unwrap();
    let status = response.status();
    let text = response.text().unwrap();
    assert!(status.is_success(), "POST {path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// Check a walk in pages of `size` against the whole listing read in one
/// page: the same items, each once, in the same order. Returns the keys.
fn assert_walk(server: &Server, path: &str, field: &str, size: usize, id: &str) -> Vec<String> {
    let whole = once(&all(server, path, field), id);
    let walked = once(&walk(server, path, field, size), id);
    assert_eq!(walked, whole, "{path} in pages of {size}");
    walked
}

#[test]
fn every_admin_listing_walks_in_pages_each_item_once() {
    let server = Server::start();
    let n = 12;
    let b64 = base64::engine::general_purpose::STANDARD;
    for i in 0..n {
        server.create_repository(&format!("repo-{i:02}"));
        post(
            &server,
            &format!("/v1/projects?projectId=team-{i:02}"),
            json!({}),
        );
        post(
            &server,
            "/v1/users",
            json!({ "email": format!("user{i:02}@example.com") }),
        );
        post(
            &server,
            "/v1/projects/default/serviceAccounts",
            json!({ "accountId": format!("robot-{i:02}") }),
        );
        post(
            &server,
            "/v1/tokens",
            json!({ "principal": "user:user00@example.com", "description": format!("t{i}") }),
        );
        post(
            &server,
            &format!("/v1/projects/default/secrets?secretId=s{i:02}"),
            json!({}),
        );
        post(
            &server,
            "/v1/projects/default/secrets/s00:addVersion",
            json!({ "payload": { "data": b64.encode(format!("v{i}")) } }),
        );
    }
    // One audit entry per version, each naming its version.
    for v in 1..=n {
        let access = server.get(&format!(
            "/v1/projects/default/secrets/s00/versions/{v}:access"
        ));
        assert_eq!(access.status(), 200);
    }

    let repositories = assert_walk(
        &server,
        "/v1/projects/default/repositories",
        "repositories",
        5,
        "name",
    );
    for i in 0..n {
        let name = format!("projects/default/repositories/repo-{i:02}");
        assert!(repositories.contains(&name), "{name} in {repositories:?}");
    }
    let mut sorted = repositories.clone();
    sorted.sort();
    assert_eq!(repositories, sorted, "repositories are listed by id");

    let projects = assert_walk(&server, "/v1/projects", "projects", 5, "projectId");
    assert!(projects.len() > n && projects.contains(&"team-11".to_owned()));
    let users = assert_walk(&server, "/v1/users", "users", 5, "email");
    assert_eq!(users.len(), n + 1, "the created users and admin: {users:?}");
    let accounts = assert_walk(
        &server,
        "/v1/projects/default/serviceAccounts",
        "accounts",
        5,
        "email",
    );
    assert_eq!(accounts.len(), n);
    let tokens = assert_walk(
        &server,
        "/v1/tokens?principal=user:user00@example.com",
        "tokens",
        5,
        "id",
    );
    assert_eq!(tokens.len(), n);
    let secrets = assert_walk(
        &server,
        "/v1/projects/default/secrets",
        "secrets",
        5,
        "name",
    );
    assert_eq!(secrets.len(), n);
    let versions = assert_walk(
        &server,
        "/v1/projects/default/secrets/s00/versions",
        "versions",
        5,
        "name",
    );
    let expected: Vec<String> = (1..=n)
        .rev()
        .map(|v| format!("projects/default/secrets/s00/versions/{v}"))
        .collect();
    assert_eq!(versions, expected, "versions newest first");
    let audit = walk(
        &server,
        "/v1/projects/default/auditLog",
        "auditLogEntries",
        5,
    );
    let accessed: Vec<String> = audit
        .iter()
        .filter(|e| e["action"] == "secretmanager.versions.access")
        .map(|e| key(e, "version"))
        .collect();
    let expected: Vec<String> = (1..=n).rev().map(|v| v.to_string()).collect();
    assert_eq!(accessed, expected, "each access once, newest first");
    // The same filtered to the secret.
    let filtered = walk(
        &server,
        "/v1/projects/default/auditLog?resource=projects/default/secrets/s00",
        "auditLogEntries",
        5,
    );
    assert_eq!(filtered.len(), n);
}

#[test]
fn a_walk_sees_each_item_that_existed_throughout_exactly_once_while_others_are_added() {
    let server = Server::start();
    for i in 0..20 {
        server.create_repository(&format!("m-{:02}", i * 2));
    }
    let before = once(
        &all(&server, "/v1/projects/default/repositories", "repositories"),
        "name",
    );
    let path = "/v1/projects/default/repositories";
    let (mut seen, mut token) = page(&server, path, "repositories", "pageSize=4");
    let mut added = 0;
    while let Some(t) = token {
        // New repositories on both sides of the cursor, between every page.
        for id in [
            format!("a-{added:02}"),
            format!("m-{:02}", added * 2 + 1),
            format!("z-{added:02}"),
        ] {
            server.create_repository(&id);
        }
        added += 1;
        let (items, next) = page(
            &server,
            path,
            "repositories",
            &format!("pageSize=4&pageToken={t}"),
        );
        seen.extend(items);
        token = next;
    }
    assert!(added >= 5, "the walk took several pages");
    let seen = once(&seen, "name");
    for name in &before {
        assert!(
            seen.contains(name),
            "{name} existed for the whole walk but was skipped"
        );
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages follow one another in id order");
}

fn cli_ok(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "CLI failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_cli_lists_more_than_one_server_page() {
    let server = Server::start();
    // 1,005 repositories: more than the largest page, so every way of listing
    // them crosses a page boundary.
    let n = 1005;
    std::thread::scope(|s| {
        for part in 0..4 {
            let server = &server;
            s.spawn(move || {
                for i in (part..n).step_by(4) {
                    server.create_repository(&format!("bulk-{i:04}"));
                }
            });
        }
    });
    // A pageSize above the maximum is served as the maximum, with a token.
    let (items, next) = page(
        &server,
        "/v1/projects/default/repositories",
        "repositories",
        "pageSize=5000",
    );
    assert_eq!(items.len(), 1000);
    assert!(next.is_some());

    let expected: HashSet<String> = (0..n).map(|i| format!("bulk-{i:04}")).collect();
    for args in [
        vec!["repositories", "list"],
        vec!["repositories", "list", "--page-size", "333"],
    ] {
        let out = cli_ok(server.cli(&args));
        let listed: Vec<&str> = out
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .filter(|id| id.starts_with("bulk-"))
            .collect();
        let distinct: HashSet<String> = listed.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(listed.len(), n, "{args:?}: each repository on one line");
        assert_eq!(distinct, expected, "{args:?}");
    }

    // Small pages for the other verbs.
    for i in 0..9 {
        post(
            &server,
            "/v1/users",
            json!({ "email": format!("u{i}@example.com") }),
        );
        post(
            &server,
            &format!("/v1/projects/default/secrets?secretId=k{i}"),
            json!({}),
        );
    }
    let users = cli_ok(server.cli(&["users", "list", "--page-size", "2"]));
    for i in 0..9 {
        assert!(users.contains(&format!("u{i}@example.com")), "{users}");
    }
    let secrets = cli_ok(server.cli(&["secrets", "list", "--page-size", "2"]));
    let listed: Vec<&str> = secrets
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let expected: Vec<String> = (0..9).map(|i| format!("k{i}")).collect();
    assert_eq!(listed, expected, "{secrets}");
    let bad = server.cli(&["users", "list", "--page-size", "0"]);
    assert!(
        !bad.status.success(),
        "a page size of 0 is refused by the CLI"
    );
}
