//! Remote (pull-through) Docker repositories against real upstreams on loopback:
//! Debian's docker-registry, and a fixture registry that misbehaves on purpose.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use support::*;

#[test]
fn pulls_through_the_cache_and_serves_it_with_the_upstream_down() {
    let work = tempfile::tempdir().unwrap();
    let original = work.path().join("original");
    let digest = image_layout(&original, "1.0", &[300_000, 2_000_000]);
    let mut upstream = Distribution::start();
    upstream.push(&original, "1.0", "team/app:1.0", None);

    let server = Entrepot::start();
    server.create_remote_docker("up", &format!("http://{}", upstream.addr), json!({}));

    let cold = work.path().join("cold");
    server.skopeo_pull("default/up/team/app:1.0", &cold, "1.0", false);
    assert_same_content(&original, &cold, &digest);

    // Upstream down: the cached tag (inside its freshness window), the manifest
    // by digest and every blob are still served.
    upstream.stop();
    let warm = work.path().join("warm");
    server.skopeo_pull("default/up/team/app:1.0", &warm, "1.0", false);
    assert_same_content(&original, &warm, &digest);
    let by_digest = work.path().join("by-digest");
    server.skopeo_pull(
        &format!("default/up/team/app@{digest}"),
        &by_digest,
        "1.0",
        false,
    );
    assert_same_content(&original, &by_digest, &digest);

    let metrics = server.get("/metrics").text().unwrap();
    assert!(
        metrics.contains("entrepot_cache_hits_total{kind=\"blob\"}"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("entrepot_upstream_bytes_total 0\n"),
        "{metrics}"
    );
}

#[test]
fn stale_tags_are_served_with_a_warning_when_the_upstream_fails() {
    let work = tempfile::tempdir().unwrap();
    let original = work.path().join("original");
    let digest = image_layout(&original, "1.0", &[1000]);
    let mut upstream = Distribution::start();
    upstream.push(&original, "1.0", "app:1.0", None);

    let server = Entrepot::start();
    server.create_remote_docker(
        "up",
        &format!("http://{}", upstream.addr),
        json!({ "tagTtlSecs": 0 }),
    );
    let first = server.get("/v2/default/up/app/manifests/1.0");
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "docker-content-digest"), digest);
    assert!(
        first.headers().get("warning").is_none(),
        "a fresh answer carries a Warning"
    );

    upstream.stop();
    let stale = server.get("/v2/default/up/app/manifests/1.0");
    assert_eq!(stale.status(), 200, "{}", server.log_text());
    assert_eq!(header(&stale, "docker-content-digest"), digest);
    assert!(
        header(&stale, "warning").starts_with("110 "),
        "no Warning header on a stale answer"
    );

    // Uncached content cannot be served: a clear error, not a hang or a 500.
    let unknown = server.get("/v2/default/up/app/manifests/2.0");
    assert_oci_error(unknown, 503, "UNAVAILABLE");

    // The repository can be told not to serve stale content.
    let response = server
        .request(Method::PATCH, "/v1/projects/default/repositories/up")
        .json(&json!({ "serveStale": false }))
        .send()
        .unwrap();
    assert!(response.status().is_success());
    assert_oci_error(
        server.get("/v2/default/up/app/manifests/1.0"),
        503,
        "UNAVAILABLE",
    );
}

/// Wait until the upstream's request log has every request made before
/// this call: the log is written in order, so once a request made now shows,
/// those before it show too.
fn upstream_log_caught_up(upstream: &Distribution, marker: &str) {
    let path = format!("/v2/{marker}/tags/list");
    let _ = reqwest::blocking::get(format!("http://{}{path}", upstream.addr));
    assert!(
        eventually(Duration::from_secs(30), || upstream.gets_of(&path) > 0),
        "the upstream never logged {path}"
    );
}

#[test]
fn a_tag_moved_upstream_is_seen_after_the_freshness_window() {
    let work = tempfile::tempdir().unwrap();
    let v1 = work.path().join("v1");
    let v2 = work.path().join("v2");
    let d1 = image_layout(&v1, "latest", &[1000]);
    let d2 = image_layout(&v2, "latest", &[2000]);
    let upstream = Distribution::start();
    upstream.push(&v1, "latest", "app:latest", None);

    // Two repositories on the same upstream: one whose freshness window is
    // over at once (every request asks the upstream), one whose window (the
    // default five minutes) lasts the whole test. No test waits for a clock.
    let server = Entrepot::start();
    let upstream_url = format!("http://{}", upstream.addr);
    server.create_remote_docker("now", &upstream_url, json!({ "tagTtlSecs": 0 }));
    server.create_remote_docker("later", &upstream_url, json!({}));
    let digest_of = |repo: &str| {
        let response = server.get(&format!("/v2/default/{repo}/app/manifests/latest"));
        assert_eq!(response.status(), 200, "{}", server.log_text());
        header(&response, "docker-content-digest")
    };
    assert_eq!(digest_of("now"), d1);
    assert_eq!(digest_of("later"), d1);

    upstream.push(&v2, "latest", "app:latest", None);
    upstream_log_caught_up(&upstream, "after-push");
    let heads = upstream.requests_of("HEAD", "/v2/app/manifests/latest");
    let gets = upstream.gets_of("/v2/app/manifests/latest");
    // Within its window the cached tag is answered without asking the upstream.
    assert_eq!(digest_of("later"), d1);
    upstream_log_caught_up(&upstream, "after-later");
    assert_eq!(
        upstream.requests_of("HEAD", "/v2/app/manifests/latest"),
        heads,
        "a tag within its freshness window was revalidated"
    );
    // Past its window the tag is revalidated, and the move is seen at once.
    assert_eq!(digest_of("now"), d2);
    upstream_log_caught_up(&upstream, "after-move");
    let heads_after_move = upstream.requests_of("HEAD", "/v2/app/manifests/latest");
    assert_eq!(
        heads_after_move,
        heads + 1,
        "the move was not found by a HEAD"
    );
    assert_eq!(
        upstream.gets_of("/v2/app/manifests/latest"),
        gets + 1,
        "the moved tag was not fetched once"
    );
    // An unchanged tag is revalidated with HEAD, not fetched again.
    assert_eq!(digest_of("now"), d2);
    upstream_log_caught_up(&upstream, "after-unchanged");
    assert_eq!(
        upstream.requests_of("HEAD", "/v2/app/manifests/latest"),
        heads_after_move + 1
    );
    assert_eq!(upstream.gets_of("/v2/app/manifests/latest"), gets + 1);
}

#[test]
fn concurrent_cold_pulls_fetch_each_blob_from_the_upstream_once() {
    let work = tempfile::tempdir().unwrap();
    let original = work.path().join("original");
    let digest = image_layout(&original, "1.0", &[8_000_000, 3_000_000]);
    let upstream = Distribution::start();
    upstream.push(&original, "1.0", "team/big:1.0", None);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout_blob(&original, &digest)).unwrap()).unwrap();

    let server = Entrepot::start();
    server.create_remote_docker("up", &format!("http://{}", upstream.addr), json!({}));
    std::thread::scope(|scope| {
        let pulls: Vec<_> = (0..20)
            .map(|i| {
                let target = work.path().join(format!("pull-{i}"));
                let server = &server;
                scope.spawn(move || {
                    let output =
                        server.skopeo_pull_output("default/up/team/big:1.0", &target, "1.0");
                    assert!(
                        output.status.success(),
                        "{}",
                        String::from_utf8_lossy(&output.stderr)
                    );
                    target
                })
            })
            .collect();
        for pull in pulls {
            let target = pull.join().unwrap();
            assert_same_content(&original, &target, &digest);
        }
    });
    let mut blobs = vec![manifest["config"]["digest"].as_str().unwrap().to_owned()];
    for layer in manifest["layers"].as_array().unwrap() {
        blobs.push(layer["digest"].as_str().unwrap().to_owned());
    }
    for blob in blobs {
        assert_eq!(
            upstream.gets_of(&format!("/v2/team/big/blobs/{blob}")),
            1,
            "blob {blob} was fetched from the upstream more than once"
        );
    }
}

/// A fixture registry serving one image `app:1.0` whose layer is
/// `served_layer` (the manifest names `layer`); with `hold`, the layer's
/// body stops after that many bytes until the returned [`Release`] lets the
/// rest go.
fn fixture_image(
    layer: &[u8],
    served_layer: Vec<u8>,
    hold: Option<usize>,
) -> (FixtureRegistry, String, Option<Release>) {
    let layer_digest = sha256(layer);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = sha256(config);
    let manifest = serde_json::to_vec(&image_manifest(config, layer)).unwrap();
    let layer_reply = Reply::ok("application/octet-stream", served_layer);
    let (layer_reply, release) = match hold {
        Some(bytes) => {
            let (reply, release) = layer_reply.held_after(bytes);
            (reply, Some(release))
        }
        None => (layer_reply, None),
    };
    let routes = HashMap::from([
        (
            "/v2/app/manifests/1.0".to_owned(),
            Reply::ok(OCI_MANIFEST, manifest),
        ),
        (
            format!("/v2/app/blobs/{config_digest}"),
            Reply::ok("application/octet-stream", config.to_vec()),
        ),
        (format!("/v2/app/blobs/{layer_digest}"), layer_reply),
    ]);
    (FixtureRegistry::start(routes), layer_digest, release)
}

#[test]
fn content_that_fails_verification_is_refused_and_never_cached() {
    let layer = random_bytes(100_000);
    let mut corrupted = layer.clone();
    corrupted[500] ^= 0xff;
    let (fixture, layer_digest, _) = fixture_image(&layer, corrupted, None);
    let server = Entrepot::start();
    server.create_remote_docker("bad", &format!("http://{}", fixture.addr), json!({}));

    let work = tempfile::tempdir().unwrap();
    let output = server.skopeo_pull_output("default/bad/app:1.0", &work.path().join("pull"), "1.0");
    assert!(
        !output.status.success(),
        "a pull of corrupted content succeeded"
    );

    // However the transfer ends (an error status, or a connection cut before
    // the last byte), the client never holds the whole corrupted body.
    let response = server
        .request(
            Method::GET,
            &format!("/v2/default/bad/app/blobs/{layer_digest}"),
        )
        .send()
        .expect("the server did not answer");
    let served_whole =
        response.status() == 200 && response.bytes().is_ok_and(|b| b.len() == layer.len());
    assert!(!served_whole, "corrupted content was served whole");
    assert!(
        !server.blob_file(&layer_digest).exists(),
        "corrupted content was cached"
    );
    assert!(
        server.log_text().contains("failed verification"),
        "the event was not logged"
    );
}

#[test]
fn a_server_killed_mid_download_leaves_no_partial_blob() {
    let layer = random_bytes(4 * 1024 * 1024);
    // The upstream sends the first MiB, then holds the rest until the test
    // lets it go: the download is under way for as long as the test needs.
    let (fixture, layer_digest, release) = fixture_image(&layer, layer.clone(), Some(1 << 20));
    let release = release.unwrap();
    let server = Entrepot::start();
    server.create_remote_docker("slow", &format!("http://{}", fixture.addr), json!({}));

    let request = server.request(
        Method::GET,
        &format!("/v2/default/slow/app/blobs/{layer_digest}"),
    );
    let (first_bytes, started) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut response = request.send().unwrap();
        assert_eq!(response.status(), 200);
        let mut first = [0u8; 1024];
        let _ = first_bytes.send(response.read_exact(&mut first).is_ok());
        // Keep reading until the server dies under us.
        let mut rest = Vec::new();
        let _ = response.read_to_end(&mut rest);
        rest.len()
    });
    // Kill the server only once the download is under way: the client holds
    // the first bytes of the body while the upstream is still sending.
    let received = started
        .recv_timeout(Duration::from_secs(60))
        .expect("the download never started");
    assert!(received, "the download never started");
    assert!(
        !server.blob_file(&layer_digest).exists(),
        "the blob was visible before it was verified"
    );
    let server = server.restart();
    let rest = reader.join().unwrap();
    assert!(
        1024 + rest < layer.len(),
        "the client got the whole blob from a download that never finished"
    );
    assert!(
        !server.blob_file(&layer_digest).exists(),
        "a partial blob survived the crash"
    );
    let spool = server.data_dir.join("blobs/spool");
    assert_eq!(
        std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0),
        0,
        "spool files survived"
    );

    release.release();
    let response = server.get(&format!("/v2/default/slow/app/blobs/{layer_digest}"));
    assert_eq!(response.status(), 200);
    let body = response.bytes().unwrap();
    assert_eq!(sha256(&body), layer_digest);
    assert!(server.blob_file(&layer_digest).exists());
}

#[test]
fn ranges_on_cold_and_warm_blobs() {
    let layer = random_bytes(1_000_000);
    // The upstream holds the layer after 800,000 bytes: the range is asked
    // for while the fill is under way.
    let (fixture, layer_digest, release) = fixture_image(&layer, layer.clone(), Some(800_000));
    let release = release.unwrap();
    let server = Entrepot::start();
    server.create_remote_docker("up", &format!("http://{}", fixture.addr), json!({}));
    let path = format!("/v2/default/up/app/blobs/{layer_digest}");
    let range = |server: &Entrepot| {
        server
            .request(Method::GET, &path)
            .header("range", "bytes=700000-700099")
            .send()
            .unwrap()
    };

    // Cold: the range's bytes arrive while the upstream still holds the
    // rest, all but its last byte, which waits for the digest check.
    let mut cold = range(&server);
    assert_eq!(cold.status(), 206);
    assert_eq!(
        header(&cold, "content-range"),
        "bytes 700000-700099/1000000"
    );
    let mut early = vec![0u8; 99];
    cold.read_exact(&mut early).unwrap();
    assert_eq!(early, &layer[700_000..700_099]);
    release.release();
    let mut last = Vec::new();
    cold.read_to_end(&mut last).unwrap();
    assert_eq!(last, &layer[700_099..700_100]);

    // Warm: once the blob is committed, from the cache.
    assert!(
        eventually(Duration::from_secs(30), || server
            .blob_file(&layer_digest)
            .exists()),
        "the blob was never committed"
    );
    let warm = range(&server);
    assert_eq!(warm.status(), 206);
    assert_eq!(
        header(&warm, "content-range"),
        "bytes 700000-700099/1000000"
    );
    assert_eq!(warm.bytes().unwrap().as_ref(), &layer[700_000..700_100]);
    assert_eq!(
        fixture.hits_of(&format!("GET {}", path.replace("/default/up", ""))),
        1
    );
    // `test-upstream` reports the upstream's rate-limit headers, and describe keeps them.
    let report = server.cli(&["repositories", "test-upstream", "up"]);
    assert!(String::from_utf8_lossy(&report.stdout)
        .contains("rate limit:    100;w=21600 (remaining 99;w=21600)"));
    let described: serde_json::Value = server
        .get("/v1/projects/default/repositories/up")
        .json()
        .unwrap();
    assert_eq!(described["upstreamRateLimit"]["remaining"], "99;w=21600");
}

#[test]
fn remote_repositories_are_read_only_and_report_missing_content() {
    let upstream = Distribution::start();
    let server = Entrepot::start();
    server.create_remote_docker("up", &format!("http://{}", upstream.addr), json!({}));

    let push = server
        .request(Method::POST, "/v2/default/up/app/blobs/uploads/")
        .send()
        .unwrap();
    let body = assert_oci_error(push, 403, "DENIED");
    assert!(body.to_string().contains("read-only cache"), "{body}");

    assert_oci_error(
        server.get("/v2/default/up/app/manifests/nope"),
        404,
        "MANIFEST_UNKNOWN",
    );
    let missing = sha256(b"missing");
    assert_oci_error(
        server.get(&format!("/v2/default/up/app/blobs/{missing}")),
        404,
        "BLOB_UNKNOWN",
    );

    let bad = server
        .request(
            Method::POST,
            "/v1/projects/default/repositories?repositoryId=insecure",
        )
        .json(&json!({ "format": "docker", "mode": "remote-repository",
                       "remoteRepositoryConfig": { "upstream": "http://registry.example.com" } }))
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().unwrap().contains("--allow-insecure-upstream"));

    let test = server.cli(&["repositories", "test-upstream", "up"]);
    assert!(
        test.status.success(),
        "{}",
        String::from_utf8_lossy(&test.stderr)
    );
    assert!(String::from_utf8_lossy(&test.stdout).contains("reachable:     true"));
}

#[test]
fn a_multi_arch_index_pulls_through_the_cache() {
    let work = tempfile::tempdir().unwrap();
    let original = work.path().join("original");
    let mut layout = OciLayout::create(&original);
    let amd64 = layout.add_image(&[(200_000, LayerKind::Gzip)], "amd64");
    let arm64 = layout.add_image(&[(150_000, LayerKind::Gzip)], "arm64");
    let index = layout.add_index(&[(&amd64, "amd64"), (&arm64, "arm64")]);
    layout.tag(&index, "multi");
    let upstream = Distribution::start();
    let output = std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:multi", original.display()))
        .arg(format!("docker://{}/tools/multi:1", upstream.addr))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let server = Entrepot::start();
    server.create_remote_docker("up", &format!("http://{}", upstream.addr), json!({}));
    // The tag names the index; the platform manifests and their blobs follow by digest.
    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/up/tools/multi:1", &pulled, "multi", true);
    assert_eq!(assert_same_content(&original, &pulled, &index.digest), 7);
    let child = server.get(&format!(
        "/v2/default/up/tools/multi/manifests/{}",
        arm64.digest
    ));
    assert_eq!(child.status(), 200);
    assert_eq!(header(&child, "docker-content-digest"), arm64.digest);
    let tags = server.get("/v2/default/up/tools/multi/tags/list");
    assert_eq!(tags.status(), 200);
    let tags: serde_json::Value = tags.json().unwrap();
    assert!(
        tags["tags"].as_array().unwrap().contains(&"1".into()),
        "{tags}"
    );
}
