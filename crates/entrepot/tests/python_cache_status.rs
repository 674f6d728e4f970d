//! Freshness a user can see on remote Python repositories: every answer of
//! a remote repository (project pages in JSON and HTML, the project list,
//! files) says in `X-Cache` how the cache answered it, with the values remote
//! OCI answers use: `MISS` (fetched from the upstream now), `HIT` (from the
//! cache without asking), `REVALIDATED` (the upstream sent the page again,
//! unchanged), `STALE` (the upstream failed; with `Age` and `Warning: 110`).
//! pypiserver upstream, the real binary, reqwest and raw HTTP on loopback.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

const JSON: &str = "application/vnd.pypi.simple.v1+json";

fn get(server: &Entrepot, path: &str, accept: &str) -> reqwest::blocking::Response {
    server
        .request(Method::GET, path)
        .header("Accept", accept)
        .send()
        .unwrap()
}

fn x_cache(r: &reqwest::blocking::Response) -> String {
    assert_eq!(r.status(), 200, "{}", r.url());
    header(r, "x-cache")
}

#[test]
fn remote_python_answers_say_how_the_cache_answered_them() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    make_dist(&packages, "wheel", "tiny-lib", "1.0", &[]);
    let mut upstream = PyPiServer::start(&packages);
    let server = Entrepot::start();
    // Pages fresh for an hour in one repository, never in the other.
    server.create_python(
        "fresh",
        Some(&upstream.index_url()),
        json!({ "pythonIndexTtlSecs": 3600 }),
    );
    server.create_python(
        "always",
        Some(&upstream.index_url()),
        json!({ "pythonIndexTtlSecs": 0 }),
    );
    let page = |repo: &str, accept: &str| {
        get(
            &server,
            &format!("/pypi/default/{repo}/simple/tiny-lib/"),
            accept,
        )
    };
    let list = |repo: &str| get(&server, &format!("/pypi/default/{repo}/simple/"), JSON);

    // Within the freshness window: fetched once, then from the cache, in
    // either form (one record renders both).
    assert_eq!(x_cache(&page("fresh", JSON)), "MISS");
    assert_eq!(x_cache(&page("fresh", JSON)), "HIT");
    assert_eq!(x_cache(&page("fresh", "text/html")), "HIT");
    assert_eq!(x_cache(&list("fresh")), "MISS");
    assert_eq!(x_cache(&list("fresh")), "HIT");

    // Files: fetched once, then from the cache; a HEAD and a 304 say it too.
    let body: Value = page("fresh", JSON).json().unwrap();
    let url = body["files"][0]["url"].as_str().unwrap().to_owned();
    let r = server.get(&url);
    assert_eq!(x_cache(&r), "MISS");
    let etag = header(&r, "etag");
    r.bytes().unwrap();
    // Once its fill has linked it (a request that joins the fill while it
    // finishes is part of that fetch: MISS).
    assert!(eventually(Duration::from_secs(10), || {
        x_cache(&server.get(&url)) == "HIT"
    }));
    let r = server.request(Method::HEAD, &url).send().unwrap();
    assert_eq!(x_cache(&r), "HIT");
    let r = server
        .request(Method::GET, &url)
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(header(&r, "x-cache"), "HIT");
    // The page rebuilt after its file was cached is still the cached page.
    assert_eq!(x_cache(&page("fresh", JSON)), "HIT");

    // Outside the window: asked again each time; the upstream's page is
    // unchanged, so the cached copy is confirmed.
    assert_eq!(x_cache(&page("always", JSON)), "MISS");
    assert_eq!(x_cache(&page("always", JSON)), "REVALIDATED");
    assert_eq!(x_cache(&page("always", "text/html")), "REVALIDATED");
    assert_eq!(x_cache(&list("always")), "MISS");
    assert_eq!(x_cache(&list("always")), "REVALIDATED");
    for r in [page("always", JSON), list("always")] {
        assert!(r.headers().get("warning").is_none(), "{:?}", r.headers());
        assert!(r.headers().get("age").is_none(), "{:?}", r.headers());
    }

    // The upstream stops: the cached copies are served stale, saying how old.
    upstream.stop();
    std::thread::sleep(Duration::from_secs(2));
    for r in [
        page("always", JSON),
        page("always", "text/html"),
        list("always"),
    ] {
        assert_eq!(x_cache(&r), "STALE");
        assert!(
            header(&r, "warning").starts_with("110 "),
            "{:?}",
            r.headers()
        );
        let age: u64 = header(&r, "age").parse().unwrap();
        assert!((1..3600).contains(&age), "Age: {age}");
    }
    // The fresh repository does not ask, and the cached file needs no upstream.
    assert_eq!(x_cache(&page("fresh", JSON)), "HIT");
    assert_eq!(x_cache(&server.get(&url)), "HIT");

    // Raw HTTP, as a script or proxy sees it, a conditional request included.
    let path = "/pypi/default/always/simple/tiny-lib/";
    let auth = format!("Authorization: Bearer {}\r\n", server.admin_token);
    let head = raw_head(
        &server.addr,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {JSON}\r\n{auth}Connection: close\r\n\r\n"
        ),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        header_of(&head, "x-cache").as_deref(),
        Some("STALE"),
        "{head}"
    );
    let tag = header_of(&head, "etag").unwrap();
    let head = raw_head(
        &server.addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {JSON}\r\nIf-None-Match: {tag}\r\n{auth}Connection: close\r\n\r\n"),
    );
    assert!(head.starts_with("HTTP/1.1 304"), "{head}");
    assert_eq!(
        header_of(&head, "x-cache").as_deref(),
        Some("STALE"),
        "{head}"
    );
    assert!(header_of(&head, "age").is_some(), "{head}");

    // Back up: the next request fetches the page again, unchanged.
    upstream.resume();
    assert_eq!(x_cache(&page("always", JSON)), "REVALIDATED");
}

#[test]
fn hosted_python_answers_carry_no_cache_status() {
    let work = tempfile::tempdir().unwrap();
    let wheel = make_dist(work.path(), "wheel", "tiny-lib", "1.0", &[]);
    let server = Entrepot::start();
    server.create_python("uploads", None, json!({}));
    let out = twine_upload(
        &format!("http://{}/pypi/default/uploads/legacy/", server.addr),
        "__token__",
        &server.admin_token,
        &[&wheel],
    );
    assert!(out.status.success(), "{}", text(&out));
    let r = get(&server, "/pypi/default/uploads/simple/tiny-lib/", JSON);
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-cache").is_none(), "{:?}", r.headers());
}
