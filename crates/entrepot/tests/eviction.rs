//! Remote repositories over their size cap, against Debian's docker-registry
//! as the upstream: skopeo pulls fill a cache past its cap, the least
//! recently pulled image goes (its bytes leave the disk), a re-pull of it
//! works and fetches each of its blobs from the upstream exactly once more,
//! a recently pulled image stays, and `/metrics` shows the cache's size.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// Bound of the waits for a background eviction pass (it runs right after
/// a fill; the bound only stops a broken build from hanging).
const PASS: Duration = Duration::from_secs(60);

/// One image pushed to the upstream: its name there, its manifest digest,
/// and the digests of its config and layers.
struct Pushed {
    name: String,
    layout: std::path::PathBuf,
    digest: String,
    blobs: Vec<String>,
}

/// An image of one random gzipped layer of `layer_bytes`, pushed to the
/// upstream as `team/{name}:1.0`.
fn push(upstream: &Distribution, work: &Path, name: &str, layer_bytes: usize) -> Pushed {
    let layout = work.join(format!("original-{name}"));
    let digest = image_layout(&layout, "1.0", &[layer_bytes]);
    upstream.push(&layout, "1.0", &format!("team/{name}:1.0"), None);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(layout_blob(&layout, &digest)).unwrap()).unwrap();
    let mut blobs = vec![manifest["config"]["digest"].as_str().unwrap().to_owned()];
    for layer in manifest["layers"].as_array().unwrap() {
        blobs.push(layer["digest"].as_str().unwrap().to_owned());
    }
    Pushed {
        name: format!("team/{name}"),
        layout,
        digest,
        blobs,
    }
}

/// Bytes and number of the blob files in the server's blob directory.
fn stored(server: &Entrepot) -> (u64, u64) {
    let dir = server.data_dir.join("blobs/blobs/sha256");
    let files = files_under(&dir);
    let bytes = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    (bytes, files.len() as u64)
}

fn on_disk(server: &Entrepot, image: &Pushed) -> Vec<bool> {
    image
        .blobs
        .iter()
        .map(|d| server.blob_file(d).exists())
        .collect()
}

fn pull(server: &Entrepot, work: &Path, image: &Pushed, into: &str) {
    let dest = work.join(into);
    server.skopeo_pull(
        &format!("default/up/{}:1.0", image.name),
        &dest,
        "1.0",
        false,
    );
    assert_same_content(&image.layout, &dest, &image.digest);
}

fn upstream_blob_gets(upstream: &Distribution, image: &Pushed) -> Vec<usize> {
    image
        .blobs
        .iter()
        .map(|d| upstream.gets_of(&format!("/v2/{}/blobs/{d}", image.name)))
        .collect()
}

#[test]
fn a_remote_cache_over_its_cap_evicts_the_least_recently_pulled_image() {
    let work = tempfile::tempdir().unwrap();
    let upstream = Distribution::start();
    const LAYER: usize = 1024 * 1024;
    let a = push(&upstream, work.path(), "a", LAYER);
    let b = push(&upstream, work.path(), "b", LAYER);
    let c = push(&upstream, work.path(), "c", LAYER);

    let server = Entrepot::start();
    server.allow_upstream(&upstream.addr);
    // Room for two of the images, not three.
    let created = server.cli_ok(&[
        "repositories",
        "create",
        "up",
        "--repository-format=docker",
        "--mode=remote-repository",
        &format!("--remote-docker-repo=http://{}", upstream.addr),
        "--cache-max-size=2560KiB",
    ]);
    let created: Value = serde_json::from_str(&created).unwrap();
    let cap = 2560 * 1024;
    assert_eq!(
        created["remoteRepositoryConfig"]["cacheMaxSizeBytes"], cap,
        "{created}"
    );

    pull(&server, work.path(), &a, "a1");
    pull(&server, work.path(), &b, "b1");
    // `a` again, from the cache: `b` is now the least recently pulled. The
    // pull time is only in memory: a graceful restart writes it down.
    pull(&server, work.path(), &a, "a2");
    assert_eq!(upstream_blob_gets(&upstream, &a), vec![1, 1]);
    assert_eq!(server.metric("entrepot_cache_evictions_total"), 0);
    let server = server.restart_gracefully();

    // `c` takes the cache past its cap: `b` goes, down to 90% of the cap.
    pull(&server, work.path(), &c, "c1");
    assert!(
        eventually(PASS, || on_disk(&server, &b) == vec![false, false]),
        "the least recently pulled image was not evicted:\n{}",
        server.log_text()
    );
    assert_eq!(on_disk(&server, &a), vec![true, true], "a was evicted");
    assert_eq!(on_disk(&server, &c), vec![true, true], "c was evicted");
    let (bytes, files) = stored(&server);
    assert!(
        bytes <= cap * 9 / 10,
        "{bytes} bytes stored over the low-water mark"
    );
    assert_eq!(files, 4);
    assert_eq!(server.metric("entrepot_cache_evictions_total"), 1);
    println!("after pulling c: {bytes} bytes in {files} blobs on disk, cap {cap}");

    // The evicted image pulls again, each of its blobs fetched once more.
    let before = upstream_blob_gets(&upstream, &b);
    assert_eq!(before, vec![1, 1]);
    pull(&server, work.path(), &b, "b2");
    assert_eq!(upstream_blob_gets(&upstream, &b), vec![2, 2]);
    // Now `a` is the least recently pulled; `c`, pulled more recently, stays.
    assert!(
        eventually(PASS, || on_disk(&server, &a) == vec![false, false]),
        "the next least recently pulled image was not evicted:\n{}",
        server.log_text()
    );
    assert_eq!(on_disk(&server, &c), vec![true, true], "c was evicted");
    assert_eq!(on_disk(&server, &b), vec![true, true]);
    // `c` is still served from the cache: no new upstream fetch.
    pull(&server, work.path(), &c, "c2");
    assert_eq!(upstream_blob_gets(&upstream, &c), vec![1, 1]);

    // The gauges show what is on disk.
    let repository = "{repository=\"projects/default/repositories/up\"}";
    let (bytes, files) = stored(&server);
    assert!(
        eventually(PASS, || server
            .metric(&format!("entrepot_cache_size_bytes{repository}"))
            == bytes),
        "the size gauge does not show the {bytes} bytes stored:\n{}",
        server.get("/metrics").text().unwrap()
    );
    assert_eq!(
        server.metric(&format!("entrepot_cache_blobs{repository}")),
        files
    );
    assert_eq!(server.metric("entrepot_cache_evictions_total"), 2);
    assert!(server.metric("entrepot_cache_evicted_bytes_total") >= 2 * LAYER as u64);
    let metrics = server.get("/metrics").text().unwrap();
    for family in [
        "entrepot_cache_size_bytes",
        "entrepot_cache_blobs",
        "entrepot_cache_evictions_total",
    ] {
        assert!(
            metrics.contains(&format!("# HELP {family} ")),
            "{family} has no HELP line"
        );
    }
    println!("after re-pulling b: {bytes} bytes in {files} blobs on disk, cap {cap}");
}

#[test]
fn the_store_wide_cap_weighs_every_remote_cache_together() {
    let work = tempfile::tempdir().unwrap();
    let upstream = Distribution::start();
    const LAYER: usize = 512 * 1024;
    let old = push(&upstream, work.path(), "old", LAYER);
    let new = push(&upstream, work.path(), "new", LAYER);
    let server = Entrepot::builder()
        .env("ENTREPOT_CACHE_MAX_SIZE", "768KiB")
        .start();
    // Two remote repositories without a cap of their own.
    for id in ["up", "other"] {
        server.create_remote_docker(
            id,
            &format!("http://{}", upstream.addr),
            serde_json::json!({}),
        );
    }
    pull(&server, work.path(), &old, "old");
    let dest = work.path().join("new");
    server.skopeo_pull(
        &format!("default/other/{}:1.0", new.name),
        &dest,
        "1.0",
        false,
    );
    assert_same_content(&new.layout, &dest, &new.digest);
    assert!(
        eventually(PASS, || on_disk(&server, &old) == vec![false, false]),
        "the store-wide cap evicted nothing:\n{}",
        server.log_text()
    );
    assert_eq!(on_disk(&server, &new), vec![true, true]);
    assert!(stored(&server).0 <= 768 * 1024);
}
