//! Cleanup policies with the real server, skopeo and twine: old, dev and
//! untagged images go, releases and an index's children stay, a dry run
//! reports exactly what the real run then deletes, the most recent versions
//! are kept, and the server runs the policies on its own schedule.
//!
//! "Old" content is made old the way time would: the server is stopped and
//! the upload times of chosen manifests or files are moved back 40 days in
//! its database, then it starts again.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use support::{
    assert_same_content, eventually, make_dist, run_python, twine_upload, Entrepot, LayerKind,
    OciLayout,
};

/// Forty days before the run, in the stored RFC 3339 form.
const LONG_AGO: &str = "2020-01-01T00:00:00Z";

/// Stop the server, move the upload time of the manifests with these
/// digests (and of the Python files of these `(project, version)`s) to
/// [`LONG_AGO`], and start it again.
fn backdate(server: Entrepot, digests: &[&str], python: &[(&str, &str)]) -> Entrepot {
    let data_dir = server.data_dir.clone();
    if let Some(url) = server.database_url().map(str::to_owned) {
        let builder = server.into_builder();
        backdate_on_postgres(&url, digests, python);
        return builder.start();
    }
    let builder = server.into_builder();
    let db = data_dir.join("metadata.db");
    let digests = serde_json::to_string(digests).unwrap();
    let python = serde_json::to_string(python).unwrap();
    run_python(&format!(
        r#"
import json, sqlite3
db = sqlite3.connect({db:?})
for d in json.loads({digests:?}):
    n = db.execute("UPDATE manifests SET create_time = ? WHERE digest = ?", ("{LONG_AGO}", d)).rowcount
    assert n >= 1, d
for name, version in json.loads({python:?}):
    n = db.execute("UPDATE python_files SET upload_time = ? WHERE name = ? AND version = ?", ("{LONG_AGO}", name, version)).rowcount
    assert n >= 1, (name, version)
db.commit()
db.close()
"#,
        db = db.display().to_string(),
    ));
    builder.start()
}

/// [`backdate`]'s updates on the PostgreSQL database at `url`, with psql.
fn backdate_on_postgres(url: &str, digests: &[&str], python: &[(&str, &str)]) {
    let update = |sql: String| {
        let out = std::process::Command::new("psql")
            .args(["-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", url, "-c", &sql])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.lines().any(|l| l == "1"),
            "{sql}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // The values are the test's own digests and names: no quote in them.
    for d in digests {
        update(format!(
            "UPDATE manifests SET create_time = '{LONG_AGO}' WHERE digest = '{d}' RETURNING 1"
        ));
    }
    for (name, version) in python {
        update(format!(
            "UPDATE python_files SET upload_time = '{LONG_AGO}' \
             WHERE name = '{name}' AND version = '{version}' RETURNING 1"
        ));
    }
}

fn policy_file(dir: &Path, policies: &Value) -> String {
    let path = dir.join("policy.json");
    std::fs::write(&path, serde_json::to_vec_pretty(policies).unwrap()).unwrap();
    path.display().to_string()
}

fn cleanup(server: &Entrepot, repo: &str, dry_run: bool) -> Value {
    let mut args = vec!["repositories", "cleanup", repo, "--format=json"];
    if dry_run {
        args.push("--dry-run");
    }
    serde_json::from_str(&server.cli_ok(&args)).unwrap()
}

fn deleted(report: &Value) -> BTreeSet<String> {
    report["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}@{}",
                i["package"].as_str().unwrap(),
                i["version"].as_str().unwrap()
            )
        })
        .collect()
}

fn manifest_status(server: &Entrepot, image: &str, reference: &str) -> u16 {
    server
        .request(
            Method::GET,
            &format!("/v2/default/apps/{image}/manifests/{reference}"),
        )
        .header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        )
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn docker_policies_delete_old_and_untagged_images_and_keep_releases_and_index_children() {
    let server = Entrepot::builder()
        .env("ENTREPOT_CLEANUP_INTERVAL_SECS", "0")
        .env("ENTREPOT_GC_INTERVAL_SECS", "0")
        .start();
    server.create_repository("apps");
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("src"));
    let small = [(64 * 1024, LayerKind::Tar)];
    let release = layout.add_image(&small, "amd64");
    layout.tag(&release, "release-1.0");
    let dev_old = layout.add_image(&small, "amd64");
    layout.tag(&dev_old, "dev-1");
    let untagged = layout.add_image(&small, "amd64");
    layout.tag(&untagged, "scratch");
    let amd = layout.add_image(&small, "amd64");
    let arm = layout.add_image(&small, "arm64");
    let index = layout.add_index(&[(&amd, "amd64"), (&arm, "arm64")]);
    layout.tag(&index, "multi-1");
    let dev_new = layout.add_image(&small, "amd64");
    layout.tag(&dev_new, "dev-2");
    let api_1 = layout.add_image(&small, "amd64");
    layout.tag(&api_1, "v0.1");
    let api_2 = layout.add_image(&small, "amd64");
    layout.tag(&api_2, "v0.2");
    for (tag, image) in [
        ("release-1.0", "web:release-1.0"),
        ("dev-1", "web:dev-1"),
        ("scratch", "web:scratch"),
        ("dev-2", "web:dev-2"),
        ("v0.1", "api:v0.1"),
        ("v0.2", "api:v0.2"),
    ] {
        server.skopeo_push(&layout.dir, tag, &format!("default/apps/{image}"), false);
    }
    server.skopeo_push(&layout.dir, "multi-1", "default/apps/web:multi-1", true);
    // The scratch build loses its tag: an untagged manifest.
    let response = server
        .request(Method::DELETE, "/v2/default/apps/web/manifests/scratch")
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);

    let server = backdate(
        server,
        &[
            &release.digest,
            &dev_old.digest,
            &untagged.digest,
            &amd.digest,
            &arm.digest,
            &index.digest,
            &api_1.digest,
            &api_2.digest,
        ],
        &[],
    );

    let policies = json!([
        {"name": "delete-old", "action": {"type": "Delete"},
         "condition": {"tagState": "any", "olderThan": "30d"}},
        {"name": "keep-releases", "action": {"type": "Keep"},
         "condition": {"tagState": "tagged", "tagPrefixes": ["release", "multi"]}},
        {"name": "keep-latest-api", "action": {"type": "Keep"},
         "mostRecentVersions": {"packageNamePrefixes": ["api"], "keepCount": 1}}
    ]);
    let file = policy_file(work.path(), &policies);
    // First in dry-run mode: runs only report.
    server.cli_ok(&[
        "repositories",
        "set-cleanup-policies",
        "apps",
        &format!("--policy={file}"),
        "--dry-run",
    ]);
    let described: Value = serde_json::from_str(&server.cli_ok(&[
        "repositories",
        "describe",
        "apps",
        "--format=json",
    ]))
    .unwrap();
    assert_eq!(described["cleanupPolicyDryRun"], true, "{described}");
    assert_eq!(
        described["cleanupPolicies"]["delete-old"]["condition"]["olderThan"], "2592000s",
        "{described}"
    );
    assert_eq!(
        described["cleanupPolicies"]["keep-latest-api"]["mostRecentVersions"]["keepCount"],
        1
    );

    let expected: BTreeSet<String> = [
        format!("web@{}", dev_old.digest),
        format!("web@{}", untagged.digest),
        // api keeps its most recent version only; both are equally old, so
        // the higher digest is the one kept.
        format!("api@{}", api_1.digest.clone().min(api_2.digest.clone())),
    ]
    .into_iter()
    .collect();
    let flagged = cleanup(&server, "apps", false);
    assert_eq!(flagged["dryRun"], true, "{flagged}");
    assert_eq!(deleted(&flagged), expected, "{flagged}");
    assert_eq!(manifest_status(&server, "web", "dev-1"), 200);

    // Now for real: the dry run reports exactly what the run deletes.
    server.cli_ok(&[
        "repositories",
        "set-cleanup-policies",
        "apps",
        &format!("--policy={file}"),
    ]);
    let dry = cleanup(&server, "apps", true);
    assert_eq!(dry["dryRun"], true);
    assert_eq!(deleted(&dry), expected, "{dry}");
    let table = server.cli_ok(&["repositories", "cleanup", "apps", "--dry-run"]);
    assert!(
        table.contains("3 of 9 versions would be deleted"),
        "{table}"
    );
    let real = cleanup(&server, "apps", false);
    assert_eq!(real["dryRun"], false);
    assert_eq!(real["deleted"], dry["deleted"], "{real}");
    assert_eq!(real["versionsExamined"], 9, "{real}");

    assert_eq!(manifest_status(&server, "web", "dev-1"), 404);
    assert_eq!(manifest_status(&server, "web", &dev_old.digest), 404);
    assert_eq!(manifest_status(&server, "web", &untagged.digest), 404);
    for (image, reference) in [
        ("web", "release-1.0"),
        ("web", "multi-1"),
        ("web", amd.digest.as_str()),
        ("web", arm.digest.as_str()),
        ("web", "dev-2"),
    ] {
        assert_eq!(
            manifest_status(&server, image, reference),
            200,
            "{image}:{reference} went"
        );
    }
    // The kept index still pulls, every platform.
    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/apps/web:multi-1", &pulled, "multi-1", true);
    assert_same_content(&layout.dir, &pulled, &index.digest);

    assert!(deleted(&cleanup(&server, "apps", false)).is_empty());
    assert!(server.metric("entrepot_cleanup_versions_deleted_total") >= 3);
    let audit = server.audit("projects/default/repositories/apps");
    let runs: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "artifactregistry.repositories.cleanup")
        .collect();
    assert!(runs.len() >= 4, "{audit:?}");
}

#[test]
fn python_versions_go_by_policy_and_the_most_recent_stay() {
    let server = Entrepot::builder()
        .env("ENTREPOT_CLEANUP_INTERVAL_SECS", "0")
        .start();
    server.create_python("pkgs", None, json!({}));
    let dists = tempfile::tempdir().unwrap();
    let versions = ["0.1.dev1", "0.9", "1.0", "1.1", "2.0"];
    let files: Vec<_> = versions
        .iter()
        .map(|v| make_dist(dists.path(), "wheel", "demo-lib", v, &[]))
        .collect();
    let url = format!("{}/pypi/default/pkgs/legacy/", server.base);
    for file in &files {
        let out = twine_upload(&url, "__token__", &server.admin_token, &[file.as_path()]);
        assert!(out.status.success(), "{}", support::text(&out));
    }
    let server = backdate(
        server,
        &[],
        &[
            ("demo-lib", "0.1.dev1"),
            ("demo-lib", "0.9"),
            ("demo-lib", "1.0"),
        ],
    );
    let work = tempfile::tempdir().unwrap();
    let file = policy_file(
        work.path(),
        &json!([
            {"name": "old", "action": {"type": "Delete"}, "condition": {"olderThan": "30d"}},
            {"name": "dev", "action": {"type": "Delete"},
             "condition": {"versionNamePrefixes": ["0.1.dev"]}},
            {"name": "pin-1.0", "action": {"type": "Keep"},
             "condition": {"packageNamePrefixes": ["demo"], "versionNamePrefixes": ["1.0"]}},
            {"name": "recent", "action": {"type": "Keep"},
             "mostRecentVersions": {"keepCount": 2}}
        ]),
    );
    server.cli_ok(&[
        "repositories",
        "set-cleanup-policies",
        "pkgs",
        &format!("--policy={file}"),
    ]);
    let dry = cleanup(&server, "pkgs", true);
    let expected: BTreeSet<String> = ["demo-lib@0.1.dev1", "demo-lib@0.9"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(deleted(&dry), expected, "{dry}");
    let real = cleanup(&server, "pkgs", false);
    assert_eq!(real["deleted"], dry["deleted"], "{real}");

    let page = server
        .request(Method::GET, "/pypi/default/pkgs/simple/demo-lib/")
        .send()
        .unwrap()
        .text()
        .unwrap();
    for gone in ["0.1.dev1", "0.9"] {
        assert!(
            !page.contains(&format!("demo_lib-{gone}-")),
            "{gone} still listed:\n{page}"
        );
    }
    for kept in ["1.0", "1.1", "2.0"] {
        assert!(
            page.contains(&format!("demo_lib-{kept}-")),
            "{kept} not listed:\n{page}"
        );
    }
}

#[test]
fn the_server_runs_the_policies_on_its_schedule() {
    let server = Entrepot::builder()
        .env("ENTREPOT_CLEANUP_INTERVAL_SECS", "1")
        .start();
    server.create_repository("apps");
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("src"));
    let image = layout.add_image(&[(1024, LayerKind::Tar)], "amd64");
    layout.tag(&image, "tmp");
    let kept = layout.add_image(&[(1024, LayerKind::Tar)], "amd64");
    layout.tag(&kept, "stable");
    server.skopeo_push(&layout.dir, "tmp", "default/apps/web:tmp", false);
    server.skopeo_push(&layout.dir, "stable", "default/apps/web:stable", false);
    let response = server
        .request(Method::DELETE, "/v2/default/apps/web/manifests/tmp")
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    let file = policy_file(
        work.path(),
        &json!([{"name": "untagged", "action": {"type": "Delete"},
                 "condition": {"tagState": "untagged"}}]),
    );
    server.cli_ok(&[
        "repositories",
        "set-cleanup-policies",
        "apps",
        &format!("--policy={file}"),
    ]);
    assert!(
        eventually(Duration::from_secs(60), || manifest_status(
            &server,
            "web",
            &image.digest
        ) == 404),
        "the scheduled run did not delete the untagged manifest\n{}",
        server.log_text()
    );
    assert_eq!(manifest_status(&server, "web", "stable"), 200);
    let audit = server.audit("projects/default/repositories/apps");
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "artifactregistry.repositories.cleanup"
                && e["principal"] == "entrepot:cleanup-schedule"),
        "{audit:?}"
    );
}
