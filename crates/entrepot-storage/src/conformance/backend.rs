//! Contracts of the stores beside [`crate::Stores`]: garbage collection,
//! eviction, cleanup and quotas, console sessions and the inventory, each
//! over one backend's every store ([`MetadataBackend`]).

use entrepot_domain::{Digest, Mode};

use super::metadata::{image, manifest, repository};
use super::{pid, rname};
use crate::cleanup::StoredCleanupPolicies;
use crate::console_sessions::ConsoleSessionRecord;
use crate::eviction::{EvictionScope, PullRecord};
use crate::lifecycle::{CheckedPut, DoomedBlob};
use crate::metadata::{ImageRef, ManifestRecord, StoreError};
use crate::python::PythonFileRecord;
use crate::MetadataBackend;

/// A backend as the contracts take it.
pub(crate) type Backend = std::sync::Arc<dyn MetadataBackend>;

pub(crate) fn blob(n: u8) -> Digest {
    Digest::of(&[n; 8])
}

/// An image manifest naming `config` and `layers` (its bytes are what the
/// store reads the names from).
pub(crate) fn image_manifest(config: &Digest, layers: &[&Digest]) -> ManifestRecord {
    let layers: Vec<_> = layers
        .iter()
        .map(|d| serde_json::json!({ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.to_string(), "size": 8 }))
        .collect();
    manifest(
        &serde_json::json!({
            "schemaVersion": 2,
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 8 },
            "layers": layers,
        })
        .to_string(),
    )
}

pub(crate) async fn with_repository(s: &Backend, project: &str, id: &str, mode: Mode) {
    if s.get_project(&pid(project)).await.unwrap().is_none() {
        s.create_project(&pid(project)).await.unwrap();
    }
    let mut repo = repository(project, id, "");
    // The store files a repository by its mode alone.
    repo.mode = mode;
    s.create_repository(&rname(project, id), &repo)
        .await
        .unwrap();
}

/// A manifest is stored only when its blobs are linked to the image; the
/// links it names stay, the others go after the grace period; a blob
/// nothing links is doomed, can no longer be linked, and its row goes when
/// its bytes have.
pub(crate) async fn collection_dooms_only_what_nothing_links(s: &Backend) {
    with_repository(s, "p", "r", Mode::StandardRepository).await;
    let app = image("p", "r", "app");
    let (config, layer, stray) = (blob(1), blob(2), blob(3));
    let m = image_manifest(&config, &[&layer]);
    let checked = s
        .put_manifest_checked(&app, &m, Some("1.0"), &[config.clone(), layer.clone()])
        .await
        .unwrap();
    assert_eq!(checked, CheckedPut::MissingBlob(config.clone()));
    assert!(s
        .manifest_by_digest(&app, &m.digest)
        .await
        .unwrap()
        .is_none());
    for d in [&config, &layer, &stray] {
        s.link_blob(&app, d, 8).await.unwrap();
    }
    let checked = s
        .put_manifest_checked(&app, &m, Some("1.0"), &[config.clone(), layer.clone()])
        .await
        .unwrap();
    assert_eq!(checked, CheckedPut::Stored);
    assert!(s.manifest_by_tag(&app, "1.0").await.unwrap().is_some());

    // Within the grace period nothing goes; after it, only the stray link.
    assert_eq!(s.drop_unreferenced_links(-1, 100).await.unwrap(), 0);
    let count = s.count_collectable(i64::MAX).await.unwrap();
    assert_eq!((count.links, count.blobs, count.bytes), (1, 1, 8));
    assert_eq!(s.drop_unreferenced_links(i64::MAX, 100).await.unwrap(), 1);
    let doomed = s.doom_unlinked_blobs(100).await.unwrap();
    assert_eq!(
        doomed,
        vec![DoomedBlob {
            digest: stray.clone(),
            size: 8
        }]
    );
    assert_eq!(s.doomed_blobs(None, 10).await.unwrap(), doomed);
    match s.link_blob(&app, &stray, 8).await {
        Err(StoreError::BlobBeingCollected(d)) => assert_eq!(d, stray),
        other => panic!("a doomed blob was linked: {other:?}"),
    }
    let forgotten = s
        .forget_doomed_blobs(&[stray.clone(), config.clone()])
        .await
        .unwrap();
    assert_eq!(forgotten, vec![stray.clone()]);
    assert!(!s.forget_doomed_blob(&stray).await.unwrap());
    assert_eq!(s.blob_size(&stray).await.unwrap(), None);
    // Gone, it can be stored again.
    s.link_blob(&app, &stray, 8).await.unwrap();

    // Deleting the manifest leaves its links unreferenced.
    assert!(s.delete_manifest(&app, &m.digest).await.unwrap());
    assert_eq!(s.drop_unreferenced_links(i64::MAX, 100).await.unwrap(), 3);
    let mut doomed: Vec<_> = s
        .doom_unlinked_blobs(100)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.digest)
        .collect();
    doomed.sort();
    let mut all = vec![config, layer, stray];
    all.sort();
    assert_eq!(doomed, all);
}

/// Files no row knows are orphans; claiming one gives it a doomed row, so a
/// push of the same bytes meanwhile fails to link it; a hosted Python
/// file's blob is never an orphan.
pub(crate) async fn orphans_are_claimed_once_and_python_files_are_kept(s: &Backend) {
    with_repository(s, "p", "r", Mode::StandardRepository).await;
    let app = image("p", "r", "app");
    let known = blob(1);
    s.link_blob(&app, &known, 8).await.unwrap();
    let python_bytes = blob(9);
    let hex = python_bytes
        .to_string()
        .trim_start_matches("sha256:")
        .to_owned();
    s.add_file(
        &rname("p", "r"),
        &PythonFileRecord {
            filename: "tiny-1.0.tar.gz".into(),
            name: "tiny".into(),
            version: "1.0".into(),
            sha256: hex,
            size: 8,
            requires_python: None,
            metadata_sha256: None,
            yanked: false,
            yanked_reason: None,
            upload_time: "2026-01-01T00:00:00Z".into(),
        },
    )
    .await
    .unwrap();
    let file = |d: &Digest| DoomedBlob {
        digest: d.clone(),
        size: 8,
    };
    let files = [file(&known), file(&blob(2)), file(&python_bytes)];
    assert_eq!(s.orphans_among(&files).await.unwrap(), vec![file(&blob(2))]);
    assert_eq!(s.claim_orphans(&files).await.unwrap(), vec![file(&blob(2))]);
    assert!(s.claim_orphans(&files).await.unwrap().is_empty());
    assert!(matches!(
        s.link_blob(&app, &blob(2), 8).await,
        Err(StoreError::BlobBeingCollected(_))
    ));
    // Doomed by the claim, it is never doomed again, and not an orphan.
    assert!(s.orphans_among(&files).await.unwrap().is_empty());
    assert!(s.doom_unlinked_blobs(10).await.unwrap().is_empty());
}

/// Pull times only ever move forward and only for cached manifests;
/// candidates come least recently pulled first; evicting one takes its
/// tags and pull record and unlinks the blobs no other manifest names.
pub(crate) async fn eviction_takes_the_least_recently_pulled_first(s: &Backend) {
    with_repository(s, "p", "cache", Mode::RemoteRepository).await;
    with_repository(s, "p", "hosted", Mode::StandardRepository).await;
    let app = image("p", "cache", "app");
    let (shared, only_old, only_new) = (blob(1), blob(2), blob(3));
    let old = image_manifest(&shared, &[&only_old]);
    let new = image_manifest(&shared, &[&only_new]);
    for d in [&shared, &only_old, &only_new] {
        s.link_blob(&app, d, 100).await.unwrap();
    }
    s.link_blob(&image("p", "hosted", "x"), &blob(7), 5)
        .await
        .unwrap();
    s.put_manifest(&app, &old, Some("old")).await.unwrap();
    s.put_manifest(&app, &new, Some("new")).await.unwrap();
    let pull = |m: &ManifestRecord, ms: i64| PullRecord {
        image: app.clone(),
        digest: m.digest.clone(),
        pulled_ms: ms,
    };
    let gone = manifest("{\"never\":\"stored\"}");
    s.record_pulls(&[pull(&old, 2000), pull(&new, 5000), pull(&gone, 1)])
        .await
        .unwrap();
    s.record_pulls(&[pull(&new, 3000)]).await.unwrap();
    assert_eq!(s.last_pull(&app, &new.digest).await.unwrap(), Some(5000));
    assert_eq!(s.last_pull(&app, &gone.digest).await.unwrap(), None);

    let usage = s.cache_usage("p", "cache").await.unwrap();
    assert_eq!((usage.blobs, usage.bytes), (3, 300));
    let remote = s.remote_cache_usage().await.unwrap();
    assert_eq!((remote.blobs, remote.bytes), (3, 300));

    let scope = EvictionScope::Repository {
        project: "p".into(),
        repository: "cache".into(),
    };
    let candidates = s.eviction_candidates(&scope, 0, 10).await.unwrap();
    let order: Vec<_> = candidates.iter().map(|c| c.digest.clone()).collect();
    assert_eq!(order, vec![old.digest.clone(), new.digest.clone()]);
    assert_eq!(candidates[0].last_pull_ms, 2000);
    let mut named = candidates[0].blobs.clone();
    named.sort();
    let mut want = vec![shared.clone(), only_old.clone()];
    want.sort();
    assert_eq!(named, want);
    let all = s
        .eviction_candidates(&EvictionScope::AllRemote, 1, 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "skip passes the first");
    assert_eq!(all[0].digest, new.digest);

    let evicted = s.evict_manifest(&app, &old.digest).await.unwrap();
    assert!(evicted.removed);
    assert_eq!(evicted.tags, 1);
    assert_eq!(evicted.unlinked, vec![only_old.clone()]);
    assert!(s.manifest_by_tag(&app, "old").await.unwrap().is_none());
    assert_eq!(s.last_pull(&app, &old.digest).await.unwrap(), None);
    let doomed = s
        .doom_unlinked_among(&[only_old.clone(), shared.clone()])
        .await
        .unwrap();
    assert_eq!(
        doomed,
        vec![DoomedBlob {
            digest: only_old,
            size: 100
        }]
    );
    assert!(!s.evict_manifest(&app, &old.digest).await.unwrap().removed);
}

/// Cleanup policies and quotas are kept per repository and go with it;
/// manifest versions carry their tags; hosted bytes count standard
/// repositories only.
pub(crate) async fn cleanup_policies_and_quotas_belong_to_their_repository(s: &Backend) {
    with_repository(s, "p", "a", Mode::StandardRepository).await;
    with_repository(s, "p", "b", Mode::StandardRepository).await;
    with_repository(s, "p", "cache", Mode::RemoteRepository).await;
    let policies = |dry_run| StoredCleanupPolicies {
        policies: "[{\"id\":\"old\"}]".into(),
        dry_run,
        update_time: "2026-01-01T00:00:00Z".into(),
    };
    for id in ["b", "a"] {
        s.set_cleanup_policies(&rname("p", id), &policies(true))
            .await
            .unwrap();
    }
    s.set_cleanup_policies(&rname("p", "a"), &policies(false))
        .await
        .unwrap();
    assert_eq!(
        s.cleanup_policies(&rname("p", "a")).await.unwrap(),
        Some(policies(false))
    );
    let first = s.repositories_with_cleanup_policies(None, 1).await.unwrap();
    assert_eq!(first, vec![rname("p", "a")]);
    let next = s
        .repositories_with_cleanup_policies(Some(&first[0]), 10)
        .await
        .unwrap();
    assert_eq!(next, vec![rname("p", "b")]);

    let app = image("p", "a", "app");
    let m = manifest("{\"schemaVersion\":2}");
    s.put_manifest(&app, &m, Some("v2")).await.unwrap();
    s.put_manifest(&app, &m, Some("latest")).await.unwrap();
    s.link_blob(&app, &blob(1), 1000).await.unwrap();
    s.link_blob(&image("p", "cache", "x"), &blob(2), 50)
        .await
        .unwrap();
    let versions = s.manifest_versions(&rname("p", "a")).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].tags, vec!["latest", "v2"]);
    assert_eq!(versions[0].index_content, None);
    assert_eq!(
        s.project_hosted_bytes(&pid("p")).await.unwrap(),
        1000 + m.content.len() as u64
    );

    s.set_storage_quota(&pid("p"), None, Some(10_000))
        .await
        .unwrap();
    s.set_storage_quota(&pid("p"), Some("a"), Some(500))
        .await
        .unwrap();
    s.set_storage_quota(&pid("p"), Some("a"), Some(600))
        .await
        .unwrap();
    assert_eq!(
        s.storage_quota(&pid("p"), None).await.unwrap(),
        Some(10_000)
    );
    assert_eq!(
        s.storage_quota(&pid("p"), Some("a")).await.unwrap(),
        Some(600)
    );
    s.set_storage_quota(&pid("p"), None, None).await.unwrap();
    assert_eq!(s.storage_quota(&pid("p"), None).await.unwrap(), None);

    // A repository's policies and quota go with it.
    assert!(s.delete_repository(&rname("p", "a")).await.unwrap());
    assert_eq!(s.cleanup_policies(&rname("p", "a")).await.unwrap(), None);
    assert_eq!(s.storage_quota(&pid("p"), Some("a")).await.unwrap(), None);
}

/// A console session is found by its hash until deleted or expired.
pub(crate) async fn console_sessions_live_until_they_expire(s: &Backend) {
    let session = |id: &str, expire_time| ConsoleSessionRecord {
        id_hash: id.into(),
        principal: "user:a@example.com".into(),
        read_only: true,
        token_id: Some("t1".into()),
        csrf_token: "csrf".into(),
        create_time: 100,
        expire_time,
    };
    s.insert_console_session(&session("one", 200))
        .await
        .unwrap();
    s.insert_console_session(&session("two", 300))
        .await
        .unwrap();
    assert_eq!(
        s.get_console_session("one").await.unwrap(),
        Some(session("one", 200))
    );
    assert_eq!(s.delete_expired_console_sessions(250).await.unwrap(), 1);
    assert_eq!(s.get_console_session("one").await.unwrap(), None);
    s.delete_console_session("two").await.unwrap();
    assert_eq!(s.get_console_session("two").await.unwrap(), None);
}

/// The inventory pages images by (image, digest), with their sizes and
/// tags, and Python packages by name and version.
pub(crate) async fn inventory_pages_follow_their_keys(s: &Backend) {
    with_repository(s, "p", "r", Mode::StandardRepository).await;
    let repo = rname("p", "r");
    let (config, layer) = (blob(1), blob(2));
    for d in [&config, &layer] {
        s.link_blob(&image("p", "r", "b"), d, 100).await.unwrap();
    }
    let big = image_manifest(&config, &[&layer]);
    s.put_manifest(&image("p", "r", "b"), &big, Some("1.0"))
        .await
        .unwrap();
    s.put_manifest(&image("p", "r", "a"), &manifest("{}"), None)
        .await
        .unwrap();
    let first = s.docker_images(&repo, None, 1, 5).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].image, "a");
    let rest = s
        .docker_images(&repo, Some(("a", &first[0].digest.to_string())), 10, 5)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].image, "b");
    assert_eq!(rest[0].blob_bytes, 200);
    assert_eq!(rest[0].manifest_bytes, big.content.len() as u64);
    assert_eq!(rest[0].tags, vec!["1.0"]);
    // Each manifest carries its own image's tags, the first `max_tags` in
    // lexical order; none with 0.
    for tag in ["z", "2.0", "10"] {
        s.put_manifest(&image("p", "r", "b"), &big, Some(tag))
            .await
            .unwrap();
    }
    s.put_manifest(&image("p", "r", "c"), &big, Some("elsewhere"))
        .await
        .unwrap();
    let page = s.docker_images(&repo, None, 10, 3).await.unwrap();
    let tags: Vec<(&str, Vec<&str>)> = page
        .iter()
        .map(|i| {
            (
                i.image.as_str(),
                i.tags.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        tags,
        [
            ("a", vec![]),
            ("b", vec!["1.0", "10", "2.0"]),
            ("c", vec!["elsewhere"])
        ]
    );
    let untagged = s.docker_images(&repo, None, 10, 0).await.unwrap();
    assert!(untagged.iter().all(|i| i.tags.is_empty()), "{untagged:?}");
    let packages = s.docker_packages(&repo, None, 10).await.unwrap();
    let names: Vec<_> = packages.iter().map(|p| p.image.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(
        s.docker_tag(&repo, "b", "1.0")
            .await
            .unwrap()
            .unwrap()
            .digest,
        big.digest
    );

    for (filename, version) in [
        ("t-1.0.tar.gz", "1.0"),
        ("t-1.0-py3.whl", "1.0"),
        ("t-2.0.tar.gz", "2.0"),
    ] {
        s.add_file(
            &repo,
            &PythonFileRecord {
                filename: filename.into(),
                name: "t".into(),
                version: version.into(),
                sha256: "ab".repeat(32),
                size: 10,
                requires_python: None,
                metadata_sha256: None,
                yanked: false,
                yanked_reason: None,
                upload_time: format!(
                    "2026-01-0{}T00:00:00Z",
                    if version == "1.0" { 1 } else { 2 }
                ),
            },
        )
        .await
        .unwrap();
    }
    let python = s.python_packages(&repo, None, 10).await.unwrap();
    assert_eq!(python.len(), 1);
    assert_eq!(
        (python[0].versions, python[0].files, python[0].size),
        (2, 3, 30)
    );
    let page = s.python_version_files(&repo, "t", None, 1).await.unwrap();
    let files: Vec<_> = page.iter().map(|f| f.filename.as_str()).collect();
    assert_eq!(files, ["t-1.0-py3.whl", "t-1.0.tar.gz"]);
    let page = s
        .python_version_files(&repo, "t", Some("1.0"), 1)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].version, "2.0");
    assert_eq!(s.delete_python_version(&repo, "t", "1.0").await.unwrap(), 2);
    assert!(s.store_size_bytes().await.unwrap() >= 200);
}

/// Tag digests keep their first-seen time and only the latest few per tag.
pub(crate) async fn tag_digests_keep_their_first_sighting(s: &Backend) {
    let img: ImageRef = image("p", "r", "app");
    let first = s.saw_tag_digest(&img, "v1", "sha256:a", 100).await.unwrap();
    assert_eq!(first.first_seen, 100);
    let again = s.saw_tag_digest(&img, "v1", "sha256:a", 500).await.unwrap();
    assert_eq!(again.first_seen, 100);
    s.set_digest_created(&img, "sha256:a", 50).await.unwrap();
    let other = s
        .saw_tag_digest(&img, "latest", "sha256:a", 600)
        .await
        .unwrap();
    assert_eq!(other.created, Some(50));
    let records = s.digest_records(&img, "sha256:a").await.unwrap();
    let tags: Vec<_> = records.iter().map(|r| r.tag.as_str()).collect();
    assert_eq!(tags, ["v1", "latest"]);
    s.count_host_need("cdn.example", "projects/p/repositories/r", 0, 2, 10)
        .await
        .unwrap();
    s.count_host_need("cdn.example", "projects/p/repositories/r", 1, 3, 20)
        .await
        .unwrap();
    let needs = s.host_needs().await.unwrap();
    assert_eq!(needs.len(), 1);
    assert_eq!((needs[0].blocked, needs[0].would_block), (1, 5));
    assert_eq!((needs[0].first_time, needs[0].last_time), (10, 20));
}

/// A link racing the collector's claim: either the link wins and the blob
/// is not doomed, or the claim wins and the link is refused; never a
/// doomed blob that something links.
pub(crate) async fn a_link_racing_the_collector_never_links_a_doomed_blob(s: &Backend) {
    with_repository(s, "p", "r", Mode::StandardRepository).await;
    let app = image("p", "r", "app");
    for round in 0..40u8 {
        let digest = Digest::of(&[round, 0xee, 1, 2]);
        s.link_blob(&app, &digest, 8).await.unwrap();
        assert!(s.unlink_blob(&app, &digest).await.unwrap());
        let (linker, collector) = (s.clone(), s.clone());
        let (link_app, link_digest) = (app.clone(), digest.clone());
        let link = tokio::spawn(async move { linker.link_blob(&link_app, &link_digest, 8).await });
        let doom = tokio::spawn(async move { collector.doom_unlinked_blobs(100).await });
        let (linked, doomed) = (link.await.unwrap(), doom.await.unwrap().unwrap());
        let was_doomed = doomed.iter().any(|d| d.digest == digest);
        match linked {
            Ok(()) => assert!(!was_doomed, "round {round}: a linked blob was doomed"),
            Err(StoreError::BlobBeingCollected(_)) => assert!(was_doomed, "round {round}"),
            Err(e) => panic!("round {round}: {e}"),
        }
        let linked_now = s.linked_blob_size(&app, &digest).await.unwrap().is_some();
        assert_eq!(linked_now, !was_doomed, "round {round}");
        // Clean up for the next round.
        if was_doomed {
            s.forget_doomed_blobs(&[digest]).await.unwrap();
        } else {
            s.unlink_blob(&app, &digest).await.unwrap();
            s.doom_unlinked_blobs(100).await.unwrap();
            s.forget_doomed_blobs(&[digest]).await.unwrap();
        }
    }
}
