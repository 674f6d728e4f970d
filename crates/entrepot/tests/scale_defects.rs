//! Defects that appear only as the store grows: listings that stop short
//! without saying so, reads that wait behind large writes, a write-ahead log
//! that grows without bound.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::process::Command;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

const APP: &str = "default/images/app";

/// A server whose listings are served in pages of at most `size`.
fn server_with_page_size(size: u32) -> Entrepot {
    Entrepot::builder()
        .env("ENTREPOT_MAX_PAGE_SIZE", &size.to_string())
        .start()
}

/// Walk a listing from `first` by its `Link` headers; returns every entry
/// under `key` in order, and each page's length.
fn walk(server: &Entrepot, first: &str, key: &str) -> (Vec<String>, Vec<usize>) {
    let mut url = first.to_owned();
    let (mut seen, mut pages) = (Vec::new(), Vec::new());
    loop {
        let response = server.get(&url);
        assert_eq!(response.status(), 200, "GET {url}");
        let link = next_link(&response);
        let page: Value = response.json().unwrap();
        let names: Vec<String> = serde_json::from_value(page[key].clone()).unwrap();
        pages.push(names.len());
        seen.extend(names);
        match link {
            Some(next) => {
                assert_eq!(
                    query_of(&next).get("last"),
                    seen.last(),
                    "the next page starts after the last entry served"
                );
                url = next;
            }
            None => return (seen, pages),
        }
        assert!(pages.len() < 1000, "the Link headers never end");
    }
}

fn assert_each_once(seen: &[String], expected: &[String]) {
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an entry was served twice");
    assert_eq!(seen, expected);
}

/// `count` tags `t000`... on one image, all pointing at one small manifest.
fn tag_many(server: &Entrepot, image: &str, count: usize) -> Vec<String> {
    let img = SmallImage::random();
    server.push_image(image, "t000", &img);
    let tags: Vec<String> = (0..count).map(|i| format!("t{i:03}")).collect();
    for tag in &tags[1..] {
        let response = server.put_manifest(image, tag, OCI_MANIFEST, &img.manifest);
        assert_eq!(response.status(), 201);
    }
    tags
}

#[test]
fn tags_list_without_n_is_paged_with_a_link_instead_of_cut_short() {
    let server = server_with_page_size(7);
    server.create_repository("images");
    let tags = tag_many(&server, APP, 20);

    // No n: the default page, and a Link because more tags exist.
    let (seen, pages) = walk(&server, &format!("/v2/{APP}/tags/list"), "tags");
    assert_each_once(&seen, &tags);
    assert_eq!(pages, [7, 7, 6]);

    // An n above the maximum is served as the maximum, with a Link.
    let big = server.get(&format!("/v2/{APP}/tags/list?n=100000"));
    let link = next_link(&big).expect("a Link on a capped page");
    assert_eq!(query_of(&link).get("n").map(String::as_str), Some("7"));
    let big: Value = big.json().unwrap();
    assert_eq!(big["tags"].as_array().unwrap().len(), 7);

    // An exactly full last page has no Link: the extra row tells there is none.
    let (seen, pages) = walk(&server, &format!("/v2/{APP}/tags/list?n=5"), "tags");
    assert_each_once(&seen, &tags);
    assert_eq!(pages, [5, 5, 5, 5]);
    let last = server.get(&format!("/v2/{APP}/tags/list?n=3&last=t016"));
    assert!(next_link(&last).is_none(), "a Link after the last tag");
    let last: Value = last.json().unwrap();
    assert_eq!(last["tags"], json!(["t017", "t018", "t019"]));
}

#[test]
fn skopeo_list_tags_follows_the_link_headers() {
    let server = server_with_page_size(4);
    server.create_repository("images");
    let tags = tag_many(&server, APP, 11);
    require_tool("skopeo", "skopeo");
    let output = Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("--creds=admin:{}", server.admin_token.trim()))
        .arg(server.docker_ref(APP))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo list-tags: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let listed: Vec<String> = serde_json::from_value(listed["Tags"].clone()).unwrap();
    assert_each_once(&listed, &tags);
}

#[test]
fn the_catalog_is_paged_the_same_way() {
    let server = server_with_page_size(2);
    server.create_repository("images");
    let images: Vec<String> = (0..5).map(|i| format!("default/images/i{i}")).collect();
    for image in &images {
        server.push_small_image(image, "1");
    }
    let (seen, pages) = walk(&server, "/v2/_catalog", "repositories");
    assert_each_once(&seen, &images);
    assert_eq!(pages, [2, 2, 1]);
    let (seen, pages) = walk(&server, "/v2/_catalog?n=50", "repositories");
    assert_each_once(&seen, &images);
    assert_eq!(pages, [2, 2, 1]);
}

#[test]
fn a_remote_repositorys_tags_are_paged_the_same_way() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    image_layout(&layout, "1", &[1000]);
    let upstream = Distribution::start();
    let tags: Vec<String> = (0..9).map(|i| format!("v{i}")).collect();
    for tag in &tags {
        upstream.push(&layout, "1", &format!("app:{tag}"), None);
    }
    let server = server_with_page_size(4);
    server.create_remote_docker("up", &format!("http://{}", upstream.addr), json!({}));
    let (seen, pages) = walk(&server, "/v2/default/up/app/tags/list", "tags");
    assert_each_once(&seen, &tags);
    assert_eq!(pages, [4, 4, 1]);
    let (seen, pages) = walk(&server, "/v2/default/up/app/tags/list?n=3", "tags");
    assert_each_once(&seen, &tags);
    assert_eq!(pages, [3, 3, 3]);
}

/// Size of the metadata database's write-ahead log (0 when absent).
fn wal_bytes(server: &Entrepot) -> u64 {
    std::fs::metadata(server.data_dir.join("metadata.db-wal")).map_or(0, |m| m.len())
}

#[test]
fn deleting_a_large_repository_neither_stalls_basic_pulls_nor_leaves_a_large_wal() {
    let server = Entrepot::start();
    server.create_repository("big");
    server.create_repository("small");
    let pulled = server.push_small_image("default/small/app", "1");

    // 20,000 tags over four connections.
    let img = SmallImage::random();
    server.push_image("default/big/app", "t0", &img);
    std::thread::scope(|s| {
        for worker in 0..4 {
            let (server, img) = (&server, &img);
            s.spawn(move || {
                for i in (worker..20_000).step_by(4) {
                    let response = server.put_manifest(
                        "default/big/app",
                        &format!("t{i}"),
                        OCI_MANIFEST,
                        &img.manifest,
                    );
                    assert_eq!(response.status(), 201);
                }
            });
        }
    });

    // A client with Basic credentials (an access token), as docker login leaves.
    let token = server.admin_token.clone();
    let basic = reqwest::blocking::Client::new();
    let pull = || {
        let manifest = basic
            .get(format!("{}/v2/default/small/app/manifests/1", server.base))
            .header("accept", OCI_MANIFEST)
            .basic_auth("admin", Some(token.trim()))
            .send()
            .unwrap();
        assert_eq!(manifest.status(), 200);
        assert_eq!(header(&manifest, "docker-content-digest"), pulled.digest);
        let layer = basic
            .get(format!(
                "{}/v2/default/small/app/blobs/{}",
                server.base,
                pulled.layer_digest()
            ))
            .basic_auth("admin", Some(token.trim()))
            .send()
            .unwrap();
        assert_eq!(layer.status(), 200);
        assert_eq!(layer.bytes().unwrap().as_ref(), &pulled.blobs[0][..]);
    };

    let deleted = std::sync::atomic::AtomicBool::new(false);
    let pulls = std::thread::scope(|s| {
        s.spawn(|| {
            let response = server
                .request(Method::DELETE, "/v1/projects/default/repositories/big")
                .send()
                .unwrap();
            assert!(
                response.status().is_success(),
                "{}",
                response.text().unwrap()
            );
            deleted.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut pulls = 0;
        while !deleted.load(std::sync::atomic::Ordering::SeqCst) {
            pull();
            pulls += 1;
        }
        pulls
    });
    pull();
    assert!(pulls > 0);
    assert_oci_error(
        server.get("/v2/default/big/app/tags/list"),
        404,
        "NAME_UNKNOWN",
    );

    // The log is checkpointed and cut back in the background, not at restart.
    assert!(
        eventually(std::time::Duration::from_secs(60), || wal_bytes(&server)
            < 1024 * 1024),
        "the write-ahead log stayed at {} bytes",
        wal_bytes(&server)
    );
}

#[test]
fn read_cache_hits_and_misses_are_in_metrics() {
    let server = Entrepot::start();
    server.create_repository("images");
    server.push_small_image(APP, "1");
    let hits = r#"entrepot_read_cache_hits_total{cache="tag"}"#;
    let before = server.metric(hits);
    for _ in 0..3 {
        assert_eq!(server.get(&format!("/v2/{APP}/manifests/1")).status(), 200);
    }
    assert!(server.metric(hits) >= before + 2);
    server.metric(r#"entrepot_read_cache_misses_total{cache="repository"}"#);
}

#[test]
fn with_no_read_cache_every_pull_reads_the_database_and_sees_each_write() {
    let server = Entrepot::builder()
        .env("ENTREPOT_READ_CACHE_BYTES", "0")
        .start();
    server.create_repository("images");
    let (first, second) = (SmallImage::random(), SmallImage::random());
    server.push_image(APP, "1", &first);
    server.push_image(APP, "2", &second);
    let hits = r#"entrepot_read_cache_hits_total{cache="tag"}"#;
    let misses = r#"entrepot_read_cache_misses_total{cache="tag"}"#;
    let before = server.metric(misses);
    for _ in 0..3 {
        let response = server.get(&format!("/v2/{APP}/manifests/1"));
        assert_eq!(response.status(), 200);
        assert_eq!(response.bytes().unwrap(), first.manifest);
    }
    // The tag moves: the next pull has it, as nothing was kept.
    let moved = server.put_manifest(APP, "1", OCI_MANIFEST, &second.manifest);
    assert_eq!(moved.status(), 201);
    let response = server.get(&format!("/v2/{APP}/manifests/1"));
    assert_eq!(response.bytes().unwrap(), second.manifest);
    assert_eq!(server.metric(hits), 0);
    assert!(server.metric(misses) >= before + 4);
    assert_eq!(
        server.metric(r#"entrepot_read_cache_hits_total{cache="policy"}"#),
        0
    );
}

#[test]
fn the_catalog_follows_manifests_as_they_come_and_go() {
    let server = server_with_page_size(2);
    server.create_repository("images");
    server.create_repository("other");
    let a = server.push_small_image("default/images/a", "1");
    server.push_small_image("default/images/a", "2");
    server.push_small_image("default/images/b", "1");
    server.push_small_image("default/other/c", "1");
    let (seen, _) = walk(&server, "/v2/_catalog", "repositories");
    assert_eq!(
        seen,
        ["default/images/a", "default/images/b", "default/other/c"]
    );
    // One of two manifests gone: the image stays; both gone: it leaves.
    let response = server
        .request(
            Method::DELETE,
            &format!("/v2/default/images/a/manifests/{}", a.digest),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    let (seen, _) = walk(&server, "/v2/_catalog", "repositories");
    assert_eq!(seen.len(), 3);
    let b = server.push_small_image("default/images/b", "1");
    let response = server
        .request(
            Method::DELETE,
            &format!("/v2/default/images/b/manifests/{}", b.digest),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    let response = server
        .request(Method::DELETE, "/v1/projects/default/repositories/other")
        .send()
        .unwrap();
    assert!(response.status().is_success());
    let (seen, _) = walk(&server, "/v2/_catalog", "repositories");
    assert_eq!(seen, ["default/images/a", "default/images/b"]);
}
