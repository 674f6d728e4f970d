//! Blobs in an S3 bucket: the real server with `--blob-store s3://...` on a
//! real Garage node. skopeo pushes and pulls, chunked and monolithic blob
//! uploads, ranged reads, a blob deleted and collected out of the bucket, pip
//! installing from a hosted Python repository, and two commits of one digest
//! racing. Nothing lands in the local blob directory. Skipped, saying so,
//! when no garage binary is installed.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Barrier};

use entrepot_storage::{BlobStore, ObjectBlobStore, S3Credentials};
use reqwest::Method;
use serde_json::{json, Value};
use support::*;

const APP: &str = "default/images/app";

/// Garage and a server whose blobs live in its bucket; `None` when Garage
/// is not installed.
fn server_on_garage(extra_env: &[(&str, &str)]) -> Option<(Garage, Entrepot)> {
    let garage = Garage::start("entrepot-blobs")?;
    let mut builder = Entrepot::builder();
    for (k, v) in garage.server_env() {
        builder = builder.env(k, &v);
    }
    let server = builder.envs(extra_env).start();
    Some((garage, server))
}

/// The bucket as the server's own blob store sees it, for looking inside.
fn bucket(garage: &Garage) -> ObjectBlobStore {
    ObjectBlobStore::s3(
        &garage.blob_store_url().parse().unwrap(),
        Some(&S3Credentials {
            access_key_id: garage.access_key_id.clone(),
            secret_access_key: garage.secret_access_key.clone(),
        }),
    )
    .unwrap()
}

fn in_bucket(garage: &Garage, digest: &str) -> Option<u64> {
    let store = bucket(garage);
    let digest = digest.parse().unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(store.stat(&digest))
        .unwrap()
}

/// Keys in the bucket under `prefix` (`uploads/`, `staging/`, `blobs/`).
fn objects_under(garage: &Garage, prefix: &str) -> Vec<String> {
    use futures::TryStreamExt;
    use object_store::ObjectStore;
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&garage.bucket)
        .with_endpoint(&garage.endpoint)
        .with_allow_http(true)
        .with_region("garage")
        .with_access_key_id(&garage.access_key_id)
        .with_secret_access_key(&garage.secret_access_key)
        .build()
        .unwrap();
    let prefix = object_store::path::Path::from(prefix);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        s3.list(Some(&prefix))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap()
    })
}

/// No half-finished upload or commit left in the bucket.
fn assert_no_leftovers(garage: &Garage) {
    for prefix in ["uploads", "staging"] {
        let left = objects_under(garage, prefix);
        assert!(left.is_empty(), "left in the bucket: {left:?}");
    }
}

/// No committed blob file or upload part on local disk: the bucket holds
/// them all (the directories are not even created).
fn assert_no_local_blobs(server: &Entrepot) {
    for dir in ["blobs/blobs", "blobs/uploads", "blobs/staging"] {
        let dir = server.data_dir.join(dir);
        let local = if dir.exists() {
            files_under(&dir)
        } else {
            Vec::new()
        };
        assert!(local.is_empty(), "on local disk: {local:?}");
    }
}

fn start_upload(server: &Entrepot, image: &str) -> String {
    let response = server
        .request(Method::POST, &format!("/v2/{image}/blobs/uploads/"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().unwrap());
    header(&response, "location")
}

fn patch(server: &Entrepot, location: &str, start: usize, chunk: &[u8]) -> String {
    let response = server
        .request(Method::PATCH, location)
        .header("content-type", "application/octet-stream")
        .header(
            "content-range",
            format!("{start}-{}", start + chunk.len() - 1),
        )
        .body(chunk.to_vec())
        .send()
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().unwrap());
    header(&response, "location")
}

fn close(server: &Entrepot, location: &str, digest: &str) -> reqwest::blocking::Response {
    let sep = if location.contains('?') { '&' } else { '?' };
    server
        .request(Method::PUT, &format!("{location}{sep}digest={digest}"))
        .send()
        .unwrap()
}

#[test]
fn skopeo_pushes_and_pulls_an_image_whose_blobs_live_in_the_bucket() {
    let Some((garage, server)) = server_on_garage(&[]) else {
        return;
    };
    server.create_repository("images");
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("src"));
    // 12 MiB spans several 8 MiB multipart parts; the small one spans one.
    let image = layout.add_image(
        &[
            (12 * 1024 * 1024, LayerKind::Tar),
            (40 * 1024, LayerKind::Tar),
        ],
        "amd64",
    );
    layout.tag(&image, "1.0");
    server.skopeo_push(&layout.dir, "1.0", &format!("{APP}:1.0"), false);
    let pulled = work.path().join("pulled");
    server.skopeo_pull(&format!("{APP}:1.0"), &pulled, "1.0", false);
    assert_same_content(&layout.dir, &pulled, &image.digest);
    for blob in &layout_blobs(&layout.dir, &image.digest) {
        assert!(
            in_bucket(&garage, blob).is_some(),
            "{blob} not in the bucket"
        );
    }
    assert_no_local_blobs(&server);
    assert_no_leftovers(&garage);
}

#[test]
fn chunked_and_monolithic_uploads_commit_into_the_bucket_and_ranges_read_back() {
    let Some((garage, server)) = server_on_garage(&[]) else {
        return;
    };
    server.create_repository("images");

    // Chunked: three PATCHes, none of them an S3-sized part, then the PUT.
    let blob = random_bytes(9 * 1024 * 1024 + 123);
    let digest = sha256(&blob);
    let mut location = start_upload(&server, APP);
    let cuts = [0, 1_000_000, 6_000_000, blob.len()];
    for w in cuts.windows(2) {
        location = patch(&server, &location, w[0], &blob[w[0]..w[1]]);
    }
    let response = close(&server, &location, &digest);
    assert_eq!(response.status(), 201, "{}", response.text().unwrap());
    assert_eq!(in_bucket(&garage, &digest), Some(blob.len() as u64));

    // Monolithic: one POST with the digest.
    let small = random_bytes(300_000);
    let small_digest = server.push_blob(APP, &small);
    assert_eq!(in_bucket(&garage, &small_digest), Some(300_000));

    // A wrong digest publishes nothing.
    let wrong = sha256(b"not these bytes");
    let location = start_upload(&server, APP);
    let location = patch(&server, &location, 0, &small[..1000]);
    assert_oci_error(close(&server, &location, &wrong), 400, "DIGEST_INVALID");
    assert_eq!(in_bucket(&garage, &wrong), None);

    // Whole and ranged reads, served by ranged GETs on the bucket.
    let got = server.get(&format!("/v2/{APP}/blobs/{digest}"));
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().unwrap().as_ref(), blob.as_slice());
    let part = server
        .request(Method::GET, &format!("/v2/{APP}/blobs/{digest}"))
        .header("range", "bytes=8388000-8389999")
        .send()
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes 8388000-8389999/{}", blob.len())
    );
    assert_eq!(part.bytes().unwrap().as_ref(), &blob[8_388_000..8_390_000]);
    assert_no_local_blobs(&server);
    assert_no_leftovers(&garage);
}

#[test]
fn a_deleted_blob_is_collected_out_of_the_bucket() {
    let Some((garage, server)) = server_on_garage(&[
        ("ENTREPOT_GC_INTERVAL_SECS", "0"),
        ("ENTREPOT_GC_GRACE_SECS", "0"),
    ]) else {
        return;
    };
    server.create_repository("images");
    let kept = server.push_small_image(APP, "1.0");
    let stray = random_bytes(200_000);
    let stray_digest = server.push_blob(APP, &stray);
    assert!(in_bucket(&garage, &stray_digest).is_some());
    let response = server
        .request(Method::DELETE, &format!("/v2/{APP}/blobs/{stray_digest}"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);

    let report: Value =
        serde_json::from_str(&server.cli_ok(&["admin", "gc", "--format=json"])).unwrap();
    assert!(report["blobsDeleted"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(in_bucket(&garage, &stray_digest), None);
    // What a manifest names stays, and still reads back.
    let layer = kept.layer_digest();
    assert!(in_bucket(&garage, &layer).is_some());
    let got = server.get(&format!("/v2/{APP}/blobs/{layer}"));
    assert_eq!(got.bytes().unwrap().as_ref(), kept.blobs[0].as_slice());
}

#[test]
fn pip_installs_from_a_hosted_python_repository_on_the_bucket() {
    let Some((_garage, server)) = server_on_garage(&[]) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let dists = work.path().join("dists");
    let lib = make_dist(&dists, "wheel", "tiny-lib", "1.0", &[]);
    let app = make_dist(&dists, "wheel", "tiny-app", "1.0", &["tiny-lib>=1.0"]);
    server.create_python("hosted", None, json!({}));
    let legacy = format!("{}/pypi/default/hosted/legacy/", server.base);
    let out = twine_upload(&legacy, "__token__", &server.admin_token, &[&lib, &app]);
    assert!(out.status.success(), "twine upload: {}", text(&out));
    let target = work.path().join("t");
    let out = pip_install(&server.python_index("hosted"), &target, &["tiny-app"]);
    assert!(out.status.success(), "pip install: {}", text(&out));
    assert!(installed(&target, "tiny_app") && installed(&target, "tiny_lib"));
    assert_no_local_blobs(&server);
}

#[test]
fn two_commits_of_one_digest_race_and_the_blob_stays_intact() {
    let Some((garage, server)) = server_on_garage(&[]) else {
        return;
    };
    server.create_repository("images");
    let blob = random_bytes(10 * 1024 * 1024);
    let digest = sha256(&blob);
    // Two sessions holding the same bytes, in two chunks each: each commit
    // streams its own staging object and publishes it create-only.
    let sessions: Vec<String> = (0..2)
        .map(|_| {
            let location = start_upload(&server, APP);
            let location = patch(&server, &location, 0, &blob[..4_000_000]);
            patch(&server, &location, 4_000_000, &blob[4_000_000..])
        })
        .collect();
    let server = Arc::new(server);
    let barrier = Arc::new(Barrier::new(2));
    let commits: Vec<_> = sessions
        .into_iter()
        .map(|location| {
            let (server, barrier, digest) = (server.clone(), barrier.clone(), digest.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let response = close(&server, &location, &digest);
                (response.status().as_u16(), response.text().unwrap())
            })
        })
        .collect();
    for commit in commits {
        let (status, body) = commit.join().unwrap();
        // Same digest, same bytes: the one that lost sees the winner's blob.
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(in_bucket(&garage, &digest), Some(blob.len() as u64));
    let got = server.get(&format!("/v2/{APP}/blobs/{digest}"));
    assert_eq!(got.bytes().unwrap().as_ref(), blob.as_slice());
    // Neither commit left its staging object or its parts behind, and
    // one object holds the blob.
    assert_no_leftovers(&garage);
    let hex = digest.trim_start_matches("sha256:");
    assert_eq!(
        objects_under(&garage, "blobs"),
        vec![format!("blobs/sha256/{}/{hex}", &hex[..2])]
    );
}

#[test]
fn a_wrong_key_stops_the_start_with_a_message_and_no_secret() {
    let Some(garage) = Garage::start("entrepot-blobs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_entrepot"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--blob-store", &garage.blob_store_url()])
        .env("AWS_ACCESS_KEY_ID", &garage.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret-never-printed")
        .env_remove("ENTREPOT_BLOB_STORE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("blob store"), "{err}");
    assert!(!err.contains("wrong-secret-never-printed"), "{err}");

    // --print-config shows where blobs live, never the key.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_entrepot"))
        .args([
            "serve",
            "--print-config",
            "--blob-store",
            &garage.blob_store_url(),
        ])
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret-never-printed")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!("blob_store = \"{}\"", garage.blob_store_url())),
        "{printed}"
    );
    assert!(!printed.contains("wrong-secret"), "{printed}");
}

/// Every blob (config and layers) an image manifest in a layout names.
fn layout_blobs(layout: &std::path::Path, manifest: &str) -> Vec<String> {
    let m: Value =
        serde_json::from_slice(&std::fs::read(layout_blob(layout, manifest)).unwrap()).unwrap();
    std::iter::once(&m["config"])
        .chain(m["layers"].as_array().unwrap())
        .map(|d| d["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// Push and pull one image of a `ENTREPOT_S3_BENCH_MIB` (200) MiB layer with
/// skopeo, blobs in the local directory, then in Garage; prints the times.
/// Run with `--ignored --nocapture`.
#[test]
#[ignore]
fn figures_push_and_pull_of_a_large_layer_local_and_s3() {
    let Some(garage) = Garage::start("entrepot-bench") else {
        return;
    };
    let mib: usize = std::env::var("ENTREPOT_S3_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("src"));
    let image = layout.add_image(&[(mib * 1024 * 1024, LayerKind::Tar)], "amd64");
    layout.tag(&image, "1.0");
    let local = Entrepot::start();
    let mut s3 = Entrepot::builder();
    for (k, v) in garage.server_env() {
        s3 = s3.env(k, &v);
    }
    let s3 = s3.start();
    for (name, server) in [("local", &local), ("s3", &s3)] {
        server.create_repository("images");
        let t = std::time::Instant::now();
        server.skopeo_push(&layout.dir, "1.0", &format!("{APP}:1.0"), false);
        let push = t.elapsed();
        let pulled = work.path().join(format!("pulled-{name}"));
        let t = std::time::Instant::now();
        server.skopeo_pull(&format!("{APP}:1.0"), &pulled, "1.0", false);
        let pull = t.elapsed();
        assert_same_content(&layout.dir, &pulled, &image.digest);
        // The server's peak resident memory: bounded whatever the layer's size.
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
        let peak = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .unwrap_or("VmHWM: ?")
            .split_whitespace()
            .nth(1)
            .unwrap_or("?")
            .to_owned();
        println!(
            "{name}: {mib} MiB layer, skopeo push {:.2}s ({:.0} MiB/s), pull {:.2}s ({:.0} MiB/s), server peak RSS {peak} kB",
            push.as_secs_f64(),
            mib as f64 / push.as_secs_f64(),
            pull.as_secs_f64(),
            mib as f64 / pull.as_secs_f64()
        );
    }
}
