//! Storage quotas with the real server, skopeo and twine: a push that would
//! exceed a repository's or a project's quota is refused with a message
//! naming the quota and the usage, as the client prints it, and nothing of
//! it is stored; raising the quota lets the same push through.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::{make_dist, twine_upload, Entrepot, LayerKind, OciLayout};

fn describe(server: &Entrepot, repo: &str) -> Value {
    serde_json::from_str(&server.cli_ok(&["repositories", "describe", repo, "--format=json"]))
        .unwrap()
}

fn number(v: &Value) -> u64 {
    v.as_str().unwrap().parse().unwrap()
}

/// The file of a committed blob under the server's data directory.
fn blob_file(data_dir: &Path, digest: &str) -> std::path::PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    data_dir.join(format!("blobs/blobs/sha256/{}/{hex}", &hex[..2]))
}

/// The digest of the first layer of the image `manifest` in a layout.
fn first_layer(layout: &Path, manifest: &str) -> String {
    let m: Value =
        serde_json::from_slice(&std::fs::read(support::layout_blob(layout, manifest)).unwrap())
            .unwrap();
    m["layers"][0]["digest"].as_str().unwrap().to_owned()
}

#[test]
fn a_docker_push_over_the_repository_quota_is_refused_naming_the_quota_and_the_usage() {
    let server = Entrepot::start();
    server.cli_ok(&[
        "repositories",
        "create",
        "small",
        "--repository-format=docker",
        "--storage-quota=1MiB",
    ]);
    let described = describe(&server, "small");
    assert_eq!(described["storageQuotaBytes"], "1048576", "{described}");

    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("src"));
    let fits = layout.add_image(&[(300 * 1024, LayerKind::Tar)], "amd64");
    layout.tag(&fits, "fits");
    let big = layout.add_image(&[(2 * 1024 * 1024, LayerKind::Tar)], "amd64");
    layout.tag(&big, "big");
    server.skopeo_push(&layout.dir, "fits", "default/small/app:fits", false);
    let usage = number(&describe(&server, "small")["storageUsageBytes"]);
    assert!(usage > 300 * 1024, "{usage}");

    let creds = format!("--dest-creds={}", server.creds());
    let src = format!("oci:{}:big", layout.dir.display());
    let dst = server.docker_ref("default/small/app:big");
    let out = server.skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &creds,
        &src,
        &dst,
    ]);
    assert!(
        !out.status.success(),
        "the push over the quota went through"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("denied"), "{stderr}");
    assert!(
        stderr.contains(
            "storage quota exceeded: projects/default/repositories/small has a storage quota of 1.0 MiB and holds"
        ),
        "{stderr}"
    );
    // Nothing of the refused push was stored.
    let layer = first_layer(&layout.dir, &big.digest);
    assert!(!blob_file(&server.data_dir, &layer).exists());
    assert_eq!(
        number(&describe(&server, "small")["storageUsageBytes"]),
        usage
    );
    assert!(server.metric("entrepot_quota_refusals_total") >= 1);

    // With more room, the same push goes through.
    server.cli_ok(&["repositories", "update", "small", "--storage-quota=10MiB"]);
    assert_eq!(describe(&server, "small")["storageQuotaBytes"], "10485760");
    server.skopeo_push(&layout.dir, "big", "default/small/app:big", false);

    // A project quota bounds all its standard repositories together.
    server.create_repository("other");
    server.cli_ok(&[
        "projects",
        "set-storage-quota",
        "default",
        "--storage-quota=2MiB",
    ]);
    let out = server.skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &creds,
        &format!("oci:{}:fits", layout.dir.display()),
        &server.docker_ref("default/other/app:fits"),
    ]);
    assert!(
        !out.status.success(),
        "the push over the project quota went through"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("projects/default has a storage quota of 2.0 MiB and holds"),
        "{stderr}"
    );
    let described = describe(&server, "other");
    assert_eq!(
        described["projectStorageQuotaBytes"], "2097152",
        "{described}"
    );
    server.cli_ok(&[
        "projects",
        "set-storage-quota",
        "default",
        "--storage-quota=none",
    ]);
    server.skopeo_push(&layout.dir, "fits", "default/other/app:fits", false);
}

#[test]
fn a_twine_upload_over_the_quota_is_refused_with_403_naming_the_quota() {
    let server = Entrepot::start();
    server.create_python("pkgs", None, json!({}));
    let dists = tempfile::tempdir().unwrap();
    let first = make_dist(dists.path(), "wheel", "quota-demo", "1.0", &[]);
    let second = make_dist(dists.path(), "wheel", "quota-demo", "2.0", &[]);
    let size = std::fs::metadata(&first).unwrap().len();
    // Room for one file, not two.
    let quota = size + size / 2;
    server.cli_ok(&[
        "repositories",
        "update",
        "pkgs",
        &format!("--storage-quota={quota}"),
    ]);
    let url = format!("{}/pypi/default/pkgs/legacy/", server.base);
    let out = twine_upload(&url, "__token__", &server.admin_token, &[first.as_path()]);
    assert!(out.status.success(), "{}", support::text(&out));
    let out = twine_upload(&url, "__token__", &server.admin_token, &[second.as_path()]);
    assert!(
        !out.status.success(),
        "the upload over the quota went through"
    );
    // twine prints its errors on stdout, wrapped to the terminal's width.
    let printed = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        printed.contains("HTTPError: 403 Forbidden"),
        "{}",
        support::text(&out)
    );
    assert!(
        printed.contains(
            "storage quota exceeded: projects/default/repositories/pkgs has a storage quota of"
        ) && printed.contains(" and holds "),
        "{}",
        support::text(&out)
    );
    let page = server
        .request(
            reqwest::Method::GET,
            "/pypi/default/pkgs/simple/quota-demo/",
        )
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("quota_demo-1.0-"), "{page}");
    assert!(!page.contains("quota_demo-2.0-"), "{page}");
}

/// Bytes of `describe`'s usage of `repo`.
fn usage_of(server: &Entrepot, repo: &str) -> u64 {
    number(&describe(server, repo)["storageUsageBytes"])
}

#[test]
fn uploads_in_progress_reserve_their_bytes_so_that_open_sessions_never_pass_the_quota() {
    let server = Entrepot::start();
    server.cli_ok(&[
        "repositories",
        "create",
        "held",
        "--repository-format=docker",
        "--storage-quota=1MiB",
    ]);
    // Four sessions each send a chunk of 300 KiB, with its length: three
    // fit under the quota together, the fourth is refused before its bytes
    // are read although nothing is stored yet.
    let chunk = |n: u8| vec![n; 300 * 1024];
    let mut sessions = Vec::new();
    for n in 0..4u8 {
        let started = server
            .request(reqwest::Method::POST, "/v2/default/held/app/blobs/uploads/")
            .send()
            .unwrap();
        assert_eq!(started.status(), 202);
        let location = support::header(&started, "location");
        let patched = server
            .request(reqwest::Method::PATCH, &location)
            .header("content-type", "application/octet-stream")
            .body(chunk(n))
            .send()
            .unwrap();
        sessions.push((n, location, patched));
    }
    let (_, _, refused) = sessions.pop().unwrap();
    let error = support::assert_oci_error(refused, 403, "DENIED");
    let message = error["errors"][0]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains(
            "projects/default/repositories/held has a storage quota of 1.0 MiB and holds 0 B, and uploads in progress have reserved 900.0 KiB; this upload of 300.0 KiB would bring it to 1.2 MiB"
        ),
        "{message}"
    );
    // The three others finish; what they stored is what they reserved.
    for (n, _, patched) in sessions {
        assert_eq!(patched.status(), 202, "chunk {n}");
        let location = support::header(&patched, "location");
        let sep = if location.contains('?') { '&' } else { '?' };
        let digest = support::sha256(&chunk(n));
        let finished = server
            .request(
                reqwest::Method::PUT,
                &format!("{location}{sep}digest={digest}"),
            )
            .send()
            .unwrap();
        assert_eq!(finished.status(), 201, "finish {n}");
    }
    assert_eq!(usage_of(&server, "held"), 3 * 300 * 1024);
    // Committed, the reservations are gone: the room left is the quota's.
    let last = vec![9u8; 1024 * 1024 - 3 * 300 * 1024];
    server.push_blob("default/held/app", &last);
    assert_eq!(usage_of(&server, "held"), 1024 * 1024);
}

#[test]
fn racing_single_request_pushes_never_store_more_than_the_quota() {
    let server = Entrepot::start();
    server.cli_ok(&[
        "repositories",
        "create",
        "race",
        "--repository-format=docker",
        "--storage-quota=1MiB",
    ]);
    // Eight clients push a blob of 300 KiB each at once (`POST ?digest=`,
    // with its length): three fit.
    let blobs: Vec<Vec<u8>> = (0..8).map(|_| support::random_bytes(300 * 1024)).collect();
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let racers: Vec<_> = blobs
            .iter()
            .map(|bytes| {
                let server = &server;
                scope.spawn(move || {
                    let digest = support::sha256(bytes);
                    let answer = server
                        .request(
                            reqwest::Method::POST,
                            &format!("/v2/default/race/app/blobs/uploads/?digest={digest}"),
                        )
                        .header("content-type", "application/octet-stream")
                        .body(bytes.clone())
                        .send()
                        .unwrap();
                    (answer.status().as_u16(), answer.text().unwrap())
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let stored = answers.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(stored, 3, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 201) {
        assert_eq!(*status, 403, "{body}");
        assert!(
            body.contains("DENIED")
                && body.contains(
                    "storage quota exceeded: projects/default/repositories/race has a storage quota of 1.0 MiB and holds"
                ),
            "{body}"
        );
    }
    assert_eq!(usage_of(&server, "race"), 3 * 300 * 1024);
    let on_disk = blobs
        .iter()
        .filter(|b| blob_file(&server.data_dir, &support::sha256(b)).exists())
        .count();
    assert_eq!(on_disk, 3, "refused blobs were stored");
}

#[test]
fn concurrent_skopeo_pushes_stay_under_the_quota_and_the_refused_ones_print_it() {
    let server = Entrepot::start();
    server.cli_ok(&[
        "repositories",
        "create",
        "busy",
        "--repository-format=docker",
        "--storage-quota=1MiB",
    ]);
    // Four images of one 400 KiB layer each, pushed by four skopeo
    // processes at once: two fit (with their configs and manifests).
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("src"));
    for n in 0..4 {
        let image = layout.add_image(&[(400 * 1024, LayerKind::Tar)], "amd64");
        layout.tag(&image, &format!("v{n}"));
    }
    let creds = format!("--dest-creds={}", server.creds());
    let outputs: Vec<std::process::Output> = std::thread::scope(|scope| {
        let pushes: Vec<_> = (0..4)
            .map(|n| {
                let (server, layout, creds) = (&server, &layout, &creds);
                scope.spawn(move || {
                    server.skopeo(&[
                        "copy",
                        "--preserve-digests",
                        "--dest-tls-verify=false",
                        creds,
                        &format!("oci:{}:v{n}", layout.dir.display()),
                        &server.docker_ref(&format!("default/busy/app{n}:v{n}")),
                    ])
                })
            })
            .collect();
        pushes.into_iter().map(|p| p.join().unwrap()).collect()
    });
    let pushed = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        pushed,
        2,
        "{:#?}",
        outputs.iter().map(support::text).collect::<Vec<_>>()
    );
    for out in outputs.iter().filter(|o| !o.status.success()) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("a refused skopeo printed: {stderr}");
        assert!(
            stderr.contains("denied")
                && stderr.contains(
                    "storage quota exceeded: projects/default/repositories/busy has a storage quota of 1.0 MiB and holds"
                ),
            "{stderr}"
        );
    }
    let usage = usage_of(&server, "busy");
    assert!(usage <= 1024 * 1024, "{usage}");
    assert!(usage >= 2 * 400 * 1024, "{usage}");
    // Every image that went through pulls back whole.
    for (n, out) in outputs.iter().enumerate() {
        if out.status.success() {
            let pulled = work.path().join(format!("pulled{n}"));
            server.skopeo_pull(&format!("default/busy/app{n}:v{n}"), &pulled, "x", false);
        }
    }
}
