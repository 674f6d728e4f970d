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
