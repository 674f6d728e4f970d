//! Garbage collection with the real server and skopeo: deleting a repository
//! frees the bytes only it held; pushes that race the collector either win or
//! fail cleanly and are retried, and every image pushed pulls back intact;
//! blobs no manifest names go once the grace period is over.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::Value;
use support::{assert_same_content, layout_blob, Entrepot, LayerKind, OciLayout};

/// The file of a committed blob under the server's data directory.
fn blob_file(data_dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    data_dir.join(format!("blobs/blobs/sha256/{}/{hex}", &hex[..2]))
}

/// Bytes of every committed blob under the data directory.
fn blob_bytes(data_dir: &Path) -> u64 {
    support::files_under(&data_dir.join("blobs/blobs"))
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// The config and layer digests of a manifest stored in a layout.
fn blobs_of(layout: &Path, manifest: &str) -> Vec<(String, u64)> {
    let m: Value =
        serde_json::from_slice(&std::fs::read(layout_blob(layout, manifest)).unwrap()).unwrap();
    std::iter::once(&m["config"])
        .chain(m["layers"].as_array().unwrap())
        .map(|d| {
            (
                d["digest"].as_str().unwrap().to_owned(),
                d["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn gc(server: &Entrepot, dry_run: bool) -> Value {
    let mut args = vec!["admin", "gc", "--format=json"];
    if dry_run {
        args.push("--dry-run");
    }
    serde_json::from_str(&server.cli_ok(&args)).unwrap()
}

#[test]
fn deleting_a_repository_frees_its_unique_blobs_and_keeps_those_shared_with_another() {
    let server = Entrepot::builder()
        .env("ENTREPOT_GC_INTERVAL_SECS", "0")
        .start();
    server.create_repository("a");
    server.create_repository("b");
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("src"));
    let shared = layout.add_image(&[(1024 * 1024, LayerKind::Tar)], "amd64");
    layout.tag(&shared, "shared");
    let unique = layout.add_image(
        &[
            (2 * 1024 * 1024, LayerKind::Tar),
            (300 * 1024, LayerKind::Tar),
        ],
        "amd64",
    );
    layout.tag(&unique, "unique");
    server.skopeo_push(&layout.dir, "shared", "default/a/app:shared", false);
    server.skopeo_push(&layout.dir, "unique", "default/a/app:unique", false);
    server.skopeo_push(&layout.dir, "shared", "default/b/app:shared", false);

    let unique_blobs = blobs_of(&layout.dir, &unique.digest);
    let unique_bytes: u64 = unique_blobs.iter().map(|(_, s)| s).sum();
    let before = blob_bytes(&server.data_dir);

    server.admin_api("DELETE", "/v1/projects/default/repositories/a", None);
    // Deleting only unlinked: the bytes are all still there.
    assert_eq!(blob_bytes(&server.data_dir), before);
    let dry = gc(&server, true);
    assert_eq!(dry["blobsDeleted"], unique_blobs.len() as u64, "{dry}");
    assert_eq!(
        blob_bytes(&server.data_dir),
        before,
        "a dry run deleted something"
    );

    let report = gc(&server, false);
    assert_eq!(
        report["blobsDeleted"],
        unique_blobs.len() as u64,
        "{report}"
    );
    assert_eq!(report["bytesReclaimed"], unique_bytes, "{report}");
    assert_eq!(blob_bytes(&server.data_dir), before - unique_bytes);
    for (digest, _) in &unique_blobs {
        assert!(
            !blob_file(&server.data_dir, digest).exists(),
            "{digest} is still on disk"
        );
    }
    for (digest, _) in blobs_of(&layout.dir, &shared.digest) {
        assert!(
            blob_file(&server.data_dir, &digest).exists(),
            "shared {digest} went"
        );
    }
    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/b/app:shared", &pulled, "shared", false);
    assert_same_content(&layout.dir, &pulled, &shared.digest);
    assert!(server.metric("entrepot_gc_bytes_reclaimed_total") >= unique_bytes);
}

/// `skopeo copy` into the server, retried like a CI job retries a push: a
/// push that met the collector fails cleanly and goes again.
fn push_with_retries(
    server: &Entrepot,
    layout: &Path,
    tag: &str,
    image: &str,
    failures: &AtomicU64,
) {
    let creds = format!("--dest-creds={}", server.creds());
    let src = format!("oci:{}:{tag}", layout.display());
    let dst = server.docker_ref(image);
    for _ in 0..8 {
        let out = server.skopeo(&[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--retry-times=3",
            &creds,
            &src,
            &dst,
        ]);
        if out.status.success() {
            return;
        }
        failures.fetch_add(1, Ordering::Relaxed);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // A clean refusal names the blob; anything else is a bug.
        assert!(
            stderr.contains("garbage-collected")
                || stderr.contains("MANIFEST_BLOB_UNKNOWN")
                || stderr.contains("blob unknown")
                || stderr.contains("503"),
            "push of {image} failed otherwise:\n{stderr}"
        );
    }
    panic!("push of {image} never got through the collector");
}

#[test]
fn pushes_racing_the_collector_pull_back_intact_and_strays_go_after_the_grace_period() {
    let server = Entrepot::builder()
        .env("ENTREPOT_GC_INTERVAL_SECS", "0")
        .start();
    server.create_repository("keep");
    let work = tempfile::tempdir().unwrap();
    let server = Arc::new(server);
    let done = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let collected = Arc::new(AtomicU64::new(0));

    // The collector runs over and over while the pushes go on.
    let collector = {
        let (server, done, collected) = (server.clone(), done.clone(), collected.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !done.load(Ordering::Relaxed) || runs == 0 {
                let r = server.admin_api("POST", "/v1/organization/storage:collectGarbage", None);
                collected.fetch_add(r["blobsDeleted"].as_u64().unwrap(), Ordering::Relaxed);
                runs += 1;
            }
            runs
        })
    };
    // Each pusher pushes a new image to its scratch repository, deletes that
    // repository (so its blobs become garbage at once), then pushes the very
    // same blobs to `keep`: the collector may be deleting them right then.
    let pushers: Vec<_> = (0..3)
        .map(|t| {
            let (server, failures) = (server.clone(), failures.clone());
            let dir = work.path().join(format!("src{t}"));
            std::thread::spawn(move || {
                let mut layout = OciLayout::create(&dir);
                let mut pushed = Vec::new();
                for k in 0..4 {
                    let image = layout.add_image(
                        &[(64 * 1024, LayerKind::Tar), (8 * 1024, LayerKind::Tar)],
                        "amd64",
                    );
                    let tag = format!("t{t}-{k}");
                    layout.tag(&image, &tag);
                    let scratch = format!("scratch{t}");
                    server.create_repository(&scratch);
                    push_with_retries(
                        &server,
                        &layout.dir,
                        &tag,
                        &format!("default/{scratch}/app:{tag}"),
                        &failures,
                    );
                    server.admin_api(
                        "DELETE",
                        &format!("/v1/projects/default/repositories/{scratch}"),
                        None,
                    );
                    push_with_retries(
                        &server,
                        &layout.dir,
                        &tag,
                        &format!("default/keep/app:{tag}"),
                        &failures,
                    );
                    pushed.push((tag, image.digest.clone()));
                }
                (layout.dir.clone(), pushed)
            })
        })
        .collect();
    let pushed: Vec<_> = pushers.into_iter().map(|p| p.join().unwrap()).collect();
    done.store(true, Ordering::Relaxed);
    let runs = collector.join().unwrap();
    assert!(runs > 0);
    eprintln!(
        "{runs} collections deleted {} blobs; {} pushes failed cleanly and were retried",
        collected.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed)
    );

    // One more collection with nothing racing it; then every image pulls
    // back byte for byte.
    gc(&server, false);
    for (i, (dir, images)) in pushed.iter().enumerate() {
        for (tag, digest) in images {
            let pulled = work.path().join(format!("pulled{i}-{tag}"));
            server.skopeo_pull(&format!("default/keep/app:{tag}"), &pulled, tag, false);
            assert_same_content(dir, &pulled, digest);
        }
    }

    // A blob uploaded but never named by a manifest, and the blobs of a
    // deleted image: protected for the grace period (24 hours by default).
    let stray = b"uploaded, never referenced".to_vec();
    let stray_digest = format!("sha256:{}", sha256_hex(&stray));
    let response = server
        .request(
            reqwest::Method::POST,
            &format!("/v2/default/keep/app/blobs/uploads/?digest={stray_digest}"),
        )
        .body(stray)
        .send()
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().unwrap_or_default()
    );
    let (dir0, images0) = &pushed[0];
    let (_, deleted) = &images0[0];
    let deleted_blobs = blobs_of(dir0, deleted);
    let response = server
        .request(
            reqwest::Method::DELETE,
            &format!("/v2/default/keep/app/manifests/{deleted}"),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    let report = gc(&server, false);
    assert_eq!(report["blobsDeleted"], 0, "{report}");
    assert!(blob_file(&server.data_dir, &stray_digest).exists());

    // With the grace period over (the server restarted with none), they go;
    // every other image still pulls back intact.
    let server = Arc::into_inner(server).unwrap();
    let server = server
        .into_builder()
        .env("ENTREPOT_GC_GRACE_SECS", "0")
        .start();
    let report = gc(&server, false);
    assert_eq!(
        report["blobsDeleted"],
        1 + deleted_blobs.len() as u64,
        "{report}"
    );
    assert!(!blob_file(&server.data_dir, &stray_digest).exists());
    for (digest, _) in &deleted_blobs {
        assert!(
            !blob_file(&server.data_dir, digest).exists(),
            "{digest} of the deleted image is still on disk"
        );
    }
    assert_eq!(gc(&server, true)["blobsDeleted"], 0);
    for (i, (dir, images)) in pushed.iter().enumerate() {
        for (tag, digest) in images.iter().filter(|(_, d)| d != deleted) {
            let pulled = work.path().join(format!("again{i}-{tag}"));
            server.skopeo_pull(&format!("default/keep/app:{tag}"), &pulled, tag, false);
            assert_same_content(dir, &pulled, digest);
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
