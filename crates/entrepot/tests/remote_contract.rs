//! The contract for a sick upstream (docs/remote.md), row by row, against one
//! switchable upstream in front of a real docker-registry: what a remote
//! repository serves for cached immutable content, cached tags and uncached
//! content in each failure class.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{json, Value};
use support::sick_upstream::{assert_corrupt_answer_broken, SickUpstream, Sickness, CLASSES};
use support::*;

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json";

struct World {
    _work: tempfile::TempDir,
    _backend: Distribution,
    sick: SickUpstream,
    server: Entrepot,
    /// `app:1.0`, pulled through the cache while the upstream was healthy.
    digest: String,
    layers: Vec<String>,
    /// The manifest of `other:1.0`, never pulled.
    other_digest: String,
    other_layer: String,
}

fn manifest_of(backend: &Distribution, image: &str) -> (String, Value) {
    let response = reqwest::blocking::Client::new()
        .get(format!("http://{}/v2/{image}/manifests/1.0", backend.addr))
        .header("accept", MANIFEST_ACCEPT)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let digest = header(&response, "docker-content-digest");
    (digest, response.json().unwrap())
}

fn layers_of(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(std::iter::once(&manifest["config"]))
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

fn world(extra: Value) -> World {
    let work = tempfile::tempdir().unwrap();
    let (one, two) = (work.path().join("one"), work.path().join("two"));
    image_layout(&one, "1.0", &[3000]);
    image_layout(&two, "1.0", &[4000]);
    let backend = Distribution::start();
    backend.push(&one, "1.0", "app:1.0", None);
    backend.push(&two, "1.0", "other:1.0", None);
    let sick = SickUpstream::start(&backend.addr);
    let server = Entrepot::start();
    let mut config = json!({
        "tagTtlSecs": 0,
        "connectTimeoutSecs": 1,
        "firstByteTimeoutSecs": 1,
        "retryBudgetSecs": 2,
        "idleTimeoutSecs": 1,
    });
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    server.create_remote_docker("up", &sick.url(), config);
    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/up/app:1.0", &pulled, "1.0", false);
    let (digest, manifest) = manifest_of(&backend, "app");
    let (other_digest, other) = manifest_of(&backend, "other");
    World {
        layers: layers_of(&manifest),
        other_layer: layers_of(&other)[0].clone(),
        _work: work,
        _backend: backend,
        sick,
        server,
        digest,
        other_digest,
    }
}

fn get(server: &Entrepot, path: &str) -> reqwest::blocking::Response {
    server
        .request(reqwest::Method::GET, path)
        .header("accept", MANIFEST_ACCEPT)
        .send()
        .unwrap()
}

#[test]
fn cached_immutable_content_never_asks_the_upstream_or_its_token_service() {
    let mut w = world(json!({}));
    for (sickness, _) in CLASSES.into_iter().chain([(Sickness::Corrupt, 0)]) {
        w.sick.set(sickness);
        w.sick.clear_requests();
        let manifest = get(
            &w.server,
            &format!("/v2/default/up/app/manifests/{}", w.digest),
        );
        assert_eq!(manifest.status(), 200, "{sickness:?}");
        assert_eq!(header(&manifest, "x-cache"), "HIT");
        for layer in &w.layers {
            let blob = get(&w.server, &format!("/v2/default/up/app/blobs/{layer}"));
            assert_eq!(blob.status(), 200, "{sickness:?}");
            assert_eq!(header(&blob, "x-cache"), "HIT");
            assert_eq!(sha256(&blob.bytes().unwrap()), *layer, "{sickness:?}");
        }
        assert_eq!(w.sick.requests(), Vec::<String>::new(), "{sickness:?}");
    }
}

#[test]
fn cached_tags_are_served_stale_with_a_warning_in_every_class() {
    // (Corrupt bytes do not apply: the tag is revalidated by a HEAD, whose
    // digest header confirms the cached copy.)
    let mut w = world(json!({}));
    for (sickness, _) in CLASSES {
        w.sick.set(sickness);
        let tag = get(&w.server, "/v2/default/up/app/manifests/1.0");
        assert_eq!(tag.status(), 200, "{sickness:?}: {}", w.server.log_text());
        assert_eq!(
            header(&tag, "docker-content-digest"),
            w.digest,
            "{sickness:?}"
        );
        assert!(tag.headers().contains_key("warning"), "{sickness:?}");
        let warning = header(&tag, "warning");
        assert!(warning.starts_with("110 "), "{sickness:?}: {warning}");
        assert_eq!(header(&tag, "x-cache"), "STALE", "{sickness:?}");
        assert!(header(&tag, "age").parse::<u64>().is_ok(), "{sickness:?}");
    }
    // Healthy again: a fresh answer, without the warning.
    w.sick.set(Sickness::Healthy);
    let tag = get(&w.server, "/v2/default/up/app/manifests/1.0");
    assert_eq!(tag.status(), 200);
    assert!(tag.headers().get("warning").is_none());
    assert_eq!(header(&tag, "x-cache"), "REVALIDATED");
}

#[test]
fn a_cached_tag_is_served_when_the_upstream_stalls_mid_body() {
    let mut w = world(json!({}));
    w.sick.set(Sickness::HangMidBody);
    let tag = get(&w.server, "/v2/default/up/app/manifests/1.0");
    assert_eq!(tag.status(), 200, "{}", w.server.log_text());
    assert_eq!(header(&tag, "docker-content-digest"), w.digest);
    // A HEAD has no body to stall: it confirms the cached digest; a GET
    // that stalls is served stale.
    let cache = header(&tag, "x-cache");
    assert!(
        ["REVALIDATED", "STALE"].contains(&cache.as_str()),
        "{cache}"
    );
}

#[test]
fn uncached_content_fails_with_the_class_status_and_its_reason() {
    let mut w = world(json!({}));
    for (sickness, status) in CLASSES {
        w.sick.set(sickness);
        let tag = get(&w.server, "/v2/default/up/other/manifests/1.0");
        assert_eq!(tag.status().as_u16(), status, "{sickness:?}");
        if let Sickness::TooManyRequests(Some(after)) = sickness {
            assert_eq!(header(&tag, "retry-after"), after.to_string());
        }
        let body = tag.text().unwrap();
        assert!(
            body.contains(w.sick.addr()) || status == 404,
            "{sickness:?}: {body}"
        );
        let by_digest = get(
            &w.server,
            &format!("/v2/default/up/other/blobs/{}", w.other_layer),
        );
        assert_eq!(by_digest.status().as_u16(), status, "{sickness:?}");
    }
}

#[test]
fn corrupt_bytes_are_never_cached_and_the_next_healthy_pull_fills() {
    let mut w = world(json!({}));
    w.sick.set(Sickness::Corrupt);
    assert_corrupt_answer_broken(
        w.server
            .request(
                reqwest::Method::GET,
                &format!("/v2/default/up/other/blobs/{}", w.other_layer),
            )
            .header("accept", MANIFEST_ACCEPT)
            .send(),
    );
    let manifest = get(
        &w.server,
        &format!("/v2/default/up/other/manifests/{}", w.other_digest),
    );
    assert_eq!(manifest.status(), 502);

    w.sick.set(Sickness::Healthy);
    let blob = get(
        &w.server,
        &format!("/v2/default/up/other/blobs/{}", w.other_layer),
    );
    assert_eq!(blob.status(), 200);
    assert_eq!(sha256(&blob.bytes().unwrap()), w.other_layer);
}

#[test]
fn pull_by_digest_of_content_never_pulled_by_tag_fills_the_cache() {
    let mut w = world(json!({}));
    let path = format!("/v2/default/up/other/manifests/{}", w.other_digest);
    let first = get(&w.server, &path);
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-cache"), "MISS");
    let blob = format!("/v2/default/up/other/blobs/{}", w.other_layer);
    let first = get(&w.server, &blob);
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-cache"), "MISS");
    assert_eq!(sha256(&first.bytes().unwrap()), w.other_layer);
    w.sick.set(Sickness::Refuse);
    assert_eq!(header(&get(&w.server, &path), "x-cache"), "HIT");
    assert_eq!(header(&get(&w.server, &blob), "x-cache"), "HIT");
}

#[test]
fn a_deleted_tag_is_served_stale_within_the_grace_period_then_404() {
    let mut w = world(json!({}));
    w.sick.set(Sickness::NotFound);
    let tag = get(&w.server, "/v2/default/up/app/manifests/1.0");
    assert_eq!(tag.status(), 200);

    // A grace period of 0: gone at once.
    w.server
        .cli_ok(&["repositories", "update", "up", "--remote-keep-deleted", "0"]);
    let tag = get(&w.server, "/v2/default/up/app/manifests/1.0");
    assert_eq!(tag.status(), 404);
}

#[test]
fn without_serve_stale_a_failing_upstream_fails_tag_pulls() {
    let mut w = world(json!({ "serveStale": false }));
    w.sick.set(Sickness::ServerError(502));
    let tag = get(&w.server, "/v2/default/up/app/manifests/1.0");
    assert_eq!(tag.status(), 503);
    // The by-digest pull still works.
    let manifest = get(
        &w.server,
        &format!("/v2/default/up/app/manifests/{}", w.digest),
    );
    assert_eq!(manifest.status(), 200);
}

#[test]
fn a_tls_error_and_a_dns_failure_are_503_naming_the_upstream() {
    let w = world(json!({}));
    // The fixture's host is allowed already.
    w.server.create_repository_from(
        "default",
        "tls",
        json!({ "format": "docker", "mode": "remote-repository", "remoteRepositoryConfig": {
            "upstream": w.sick.https_url(), "connectTimeoutSecs": 1, "retryBudgetSecs": 2 } }),
    );
    // `.invalid` never resolves (RFC 6761).
    w.server.allow_upstream("nonexistent.invalid");
    w.server.create_repository_from(
        "default",
        "dns",
        json!({ "format": "docker", "mode": "remote-repository", "remoteRepositoryConfig": {
            "upstream": "https://nonexistent.invalid", "connectTimeoutSecs": 1, "retryBudgetSecs": 2 } }),
    );
    for repo in ["tls", "dns"] {
        let tag = get(&w.server, &format!("/v2/default/{repo}/app/manifests/1.0"));
        assert_eq!(tag.status(), 503, "{repo}");
        let body = tag.text().unwrap();
        assert!(body.contains("is unreachable"), "{repo}: {body}");
    }
}

#[test]
fn a_storm_on_a_missing_tag_asks_the_upstream_once() {
    let w = world(json!({}));
    w.sick.clear_requests();
    for _ in 0..20 {
        let tag = get(&w.server, "/v2/default/up/app/manifests/missing");
        assert_eq!(tag.status(), 404);
    }
    assert_eq!(
        w.sick.requests_for("/manifests/missing"),
        1,
        "{:?}",
        w.sick.requests()
    );
    // Turned off, every pull asks.
    w.server.cli_ok(&[
        "repositories",
        "update",
        "up",
        "--remote-negative-cache",
        "0",
    ]);
    w.sick.clear_requests();
    for _ in 0..3 {
        assert_eq!(
            get(&w.server, "/v2/default/up/app/manifests/gone").status(),
            404
        );
    }
    assert_eq!(w.sick.requests_for("/manifests/gone"), 3);
}
