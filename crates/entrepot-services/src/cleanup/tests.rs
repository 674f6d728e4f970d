//! Cleanup runs over the real SQLite store, with a manual clock.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use entrepot_domain::clock::ManualClock;
use entrepot_domain::{Digest, Format, Mode, ProjectId, Repository};
use entrepot_storage::testing::memory_stores_with_clock;
use entrepot_storage::{ImageRef, ManifestRecord, PythonFileRecord, Stores};
use serde_json::json;

use super::*;
use crate::access::AllowAll;

const DAY: i64 = 86_400;
const START: i64 = 1_700_000_000;

struct Fixture {
    stores: Stores,
    clock: Arc<ManualClock>,
    service: CleanupService,
}

async fn fixture(format: Format) -> (Fixture, RepositoryName) {
    let clock = Arc::new(ManualClock::at(START));
    let stores = memory_stores_with_clock(clock.clone()).await.unwrap();
    let project: ProjectId = "p".parse().unwrap();
    stores.metadata.create_project(&project).await.unwrap();
    let name = RepositoryName::new(project, "r".parse().unwrap());
    stores
        .metadata
        .create_repository(
            &name,
            &Repository {
                name: name.to_string(),
                format,
                mode: Mode::StandardRepository,
                description: String::new(),
                remote_repository_config: None,
                virtual_repository_config: None,
                create_time: String::new(),
                update_time: String::new(),
            },
        )
        .await
        .unwrap();
    let service = CleanupService::new(
        stores.cleanup.clone(),
        stores.metadata.clone(),
        stores.python.clone(),
        Arc::new(Metrics::default()),
    )
    .with_access_control(Arc::new(AllowAll))
    .with_audit_log(stores.secrets.clone())
    .with_clock(clock.clone());
    (
        Fixture {
            stores,
            clock,
            service,
        },
        name,
    )
}

fn image(name: &str) -> ImageRef {
    ImageRef {
        project: "p".into(),
        repository: "r".into(),
        image: name.into(),
    }
}

fn image_manifest(seed: &str) -> ManifestRecord {
    let content = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": Digest::of(seed.as_bytes()).to_string(), "size": seed.len()},
        "layers": [],
    })
    .to_string()
    .into_bytes();
    ManifestRecord {
        digest: Digest::of(&content),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        artifact_type: None,
        subject: None,
        annotations: None,
        content,
    }
}

fn index_of(children: &[&ManifestRecord]) -> ManifestRecord {
    let manifests: Vec<_> = children
        .iter()
        .map(|c| {
            json!({"mediaType": c.media_type, "digest": c.digest.to_string(),
                   "size": c.content.len(), "platform": {"architecture": "amd64", "os": "linux"}})
        })
        .collect();
    let content = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    })
    .to_string()
    .into_bytes();
    ManifestRecord {
        digest: Digest::of(&content),
        media_type: "application/vnd.oci.image.index.v1+json".into(),
        artifact_type: None,
        subject: None,
        annotations: None,
        content,
    }
}

async fn put(f: &Fixture, at: &str, m: &ManifestRecord, tag: Option<&str>) {
    f.stores
        .metadata
        .put_manifest(&image(at), m, tag)
        .await
        .unwrap();
}

async fn exists(f: &Fixture, at: &str, m: &ManifestRecord) -> bool {
    f.stores
        .metadata
        .manifest_by_digest(&image(at), &m.digest)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn a_dry_run_reports_exactly_what_the_real_run_deletes() {
    let (f, repo) = fixture(Format::Docker).await;
    // 40 days ago: a release, a dev build, an untagged build, and an index
    // (tagged) whose untagged children a policy would otherwise delete.
    let release = image_manifest("release");
    let dev = image_manifest("dev");
    let untagged_old = image_manifest("untagged-old");
    let child_a = image_manifest("child-a");
    let child_b = image_manifest("child-b");
    let index = index_of(&[&child_a, &child_b]);
    put(&f, "app", &release, Some("release-1.0")).await;
    put(&f, "app", &dev, Some("dev-42")).await;
    put(&f, "app", &untagged_old, None).await;
    put(&f, "app", &child_a, None).await;
    put(&f, "app", &child_b, None).await;
    put(&f, "app", &index, Some("multi")).await;
    f.clock.advance(40 * DAY);
    // Now: a new untagged build, too young for the policy.
    let untagged_new = image_manifest("untagged-new");
    put(&f, "app", &untagged_new, None).await;

    let policies = json!([
        {"name": "old", "action": {"type": "Delete"}, "condition": {"tagState": "any", "olderThan": "30d"}},
        {"name": "releases", "action": {"type": "Keep"},
         "condition": {"tagState": "tagged", "tagPrefixes": ["release", "multi"]}}
    ]);
    f.service
        .set_policies(&Principal::Anonymous, &repo, policies, false)
        .await
        .unwrap();

    let dry = f
        .service
        .run_now(&Principal::Anonymous, &repo, true)
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.versions_examined, 7);
    let mut would: Vec<&str> = dry.deleted.iter().map(|i| i.version.as_str()).collect();
    would.sort();
    let mut expected = vec![dev.digest.to_string(), untagged_old.digest.to_string()];
    expected.sort();
    assert_eq!(would, expected);
    assert!(dry.deleted.iter().all(|i| i.policy == "old"));
    assert!(exists(&f, "app", &dev).await, "a dry run deleted");

    let real = f
        .service
        .run_now(&Principal::Anonymous, &repo, false)
        .await
        .unwrap();
    assert!(!real.dry_run);
    assert_eq!(real.deleted, dry.deleted);
    assert!(real.skipped.is_empty());
    assert!(!exists(&f, "app", &dev).await);
    assert!(!exists(&f, "app", &untagged_old).await);
    for kept in [&release, &index, &child_a, &child_b, &untagged_new] {
        assert!(exists(&f, "app", kept).await, "{} went", kept.digest);
    }
    // The tag went with its manifest.
    assert!(f
        .stores
        .metadata
        .manifest_by_tag(&image("app"), "dev-42")
        .await
        .unwrap()
        .is_none());
    // Both runs are in the audit log.
    let log = f
        .stores
        .secrets
        .list_audit("p", None, None, 10)
        .await
        .unwrap();
    assert_eq!(
        log.iter()
            .filter(|e| e.record.action == CLEANUP_ACTION)
            .count(),
        2
    );
    // Nothing left to do.
    let again = f
        .service
        .run_now(&Principal::Anonymous, &repo, false)
        .await
        .unwrap();
    assert!(again.deleted.is_empty());
}

#[tokio::test]
async fn the_repositorys_dry_run_flag_makes_every_run_a_dry_run() {
    let (f, repo) = fixture(Format::Docker).await;
    let m = image_manifest("x");
    put(&f, "app", &m, None).await;
    let policies =
        json!([{"name": "untagged", "action": "DELETE", "condition": {"tagState": "UNTAGGED"}}]);
    let settings = f
        .service
        .set_policies(&Principal::Anonymous, &repo, policies, true)
        .await
        .unwrap();
    assert!(settings.dry_run);
    assert_eq!(
        settings.to_json()["cleanupPolicies"]["untagged"]["condition"]["tagState"],
        "UNTAGGED"
    );
    let reports = f.service.run_all().await.unwrap();
    assert_eq!(reports.len(), 1);
    assert!(reports[0].dry_run);
    assert_eq!(reports[0].deleted.len(), 1);
    assert!(exists(&f, "app", &m).await);
    let forced = f
        .service
        .run_now(&Principal::Anonymous, &repo, false)
        .await
        .unwrap();
    assert!(forced.dry_run, "cleanupPolicyDryRun is ignored");
}

#[tokio::test]
async fn python_versions_keep_the_most_recent_and_match_version_prefixes() {
    let (f, repo) = fixture(Format::Python).await;
    for (i, version) in ["1.0", "1.1", "1.2", "2.0rc1", "2.0"].iter().enumerate() {
        for kind in ["tar.gz", "whl"] {
            let record = PythonFileRecord {
                filename: format!("demo-{version}.{kind}"),
                name: "demo".into(),
                version: (*version).into(),
                sha256: format!("{:064x}", i * 2 + usize::from(kind == "whl")),
                size: 10,
                requires_python: None,
                metadata_sha256: None,
                yanked: false,
                yanked_reason: None,
                upload_time: entrepot_domain::clock::rfc3339(START + i as i64 * DAY),
            };
            f.stores.python.add_file(&repo, &record).await.unwrap();
        }
    }
    f.clock.set(START + 10 * DAY);
    let policies = json!([
        {"name": "all", "action": "DELETE", "condition": {"tagState": "any"}},
        {"name": "recent", "action": "KEEP", "mostRecentVersions": {"keepCount": 2}},
        {"name": "ones", "action": "KEEP", "condition": {"versionNamePrefixes": ["1.0"]}}
    ]);
    f.service
        .set_policies(&Principal::Anonymous, &repo, policies, false)
        .await
        .unwrap();
    let report = f
        .service
        .run_now(&Principal::Anonymous, &repo, false)
        .await
        .unwrap();
    let deleted: Vec<&str> = report.deleted.iter().map(|i| i.version.as_str()).collect();
    assert_eq!(deleted, ["1.1", "1.2"]);
    let left: BTreeSet<String> = f
        .stores
        .python
        .files_of(&repo, "demo")
        .await
        .unwrap()
        .into_iter()
        .map(|file| file.version)
        .collect();
    assert_eq!(
        left,
        ["1.0", "2.0", "2.0rc1"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}

#[tokio::test]
async fn bad_policies_are_refused_and_change_nothing() {
    let (f, repo) = fixture(Format::Docker).await;
    let err = f
        .service
        .set_policies(
            &Principal::Anonymous,
            &repo,
            json!([{"name": "x", "action": "DELETE", "condition": {"olderThan": "a while"}}]),
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CleanupError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("olderThan"), "{err}");
    let settings = f
        .service
        .settings(&Principal::Anonymous, &repo)
        .await
        .unwrap();
    assert!(settings.policies.is_empty());
    let missing = RepositoryName::new("p".parse().unwrap(), "nope".parse().unwrap());
    assert!(matches!(
        f.service
            .set_policies(&Principal::Anonymous, &missing, json!([]), false)
            .await,
        Err(CleanupError::NotFound(_))
    ));
}
