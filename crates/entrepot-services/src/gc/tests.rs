//! The collector over the real SQLite store and a local blob directory.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use entrepot_domain::Digest;
use entrepot_storage::testing::memory_stores;
use entrepot_storage::{
    BlobStore, CheckedPut, ImageRef, ManifestRecord, ObjectBlobStore, StoreError, Stores,
};

use super::*;
use crate::access::AllowAll;

fn image(name: &str) -> ImageRef {
    ImageRef {
        project: "p".into(),
        repository: "r".into(),
        image: name.into(),
    }
}

async fn push_blob(
    stores: &Stores,
    blobs: &ObjectBlobStore,
    at: &ImageRef,
    bytes: &'static [u8],
) -> Digest {
    let digest = Digest::of(bytes);
    let body = futures::stream::once(async move { Ok(Bytes::from_static(bytes)) });
    let size = blobs.put_blob(&digest, Box::pin(body), None).await.unwrap();
    stores.metadata.link_blob(at, &digest, size).await.unwrap();
    digest
}

fn manifest_naming(config: &Digest, layer: &Digest) -> ManifestRecord {
    let content = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": 5}],
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

struct Fixture {
    stores: Stores,
    blobs: Arc<ObjectBlobStore>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    Fixture {
        stores: memory_stores().await.unwrap(),
        blobs: Arc::new(ObjectBlobStore::local(dir.path().join("blobs")).unwrap()),
        _dir: dir,
    }
}

fn collector(f: &Fixture, grace: Duration) -> GarbageCollector {
    GarbageCollector::new(
        f.stores.lifecycle.clone(),
        f.blobs.clone(),
        Arc::new(Metrics::default()),
    )
    .with_access_control(Arc::new(AllowAll))
    .with_grace(grace)
}

#[tokio::test]
async fn blobs_a_manifest_names_stay_and_the_others_go_after_the_grace_period() {
    let f = fixture().await;
    let app = image("app");
    let config = push_blob(&f.stores, &f.blobs, &app, b"{}").await;
    let layer = push_blob(&f.stores, &f.blobs, &app, b"layer").await;
    let stray = push_blob(&f.stores, &f.blobs, &app, b"never referenced").await;
    let m = manifest_naming(&config, &layer);
    assert_eq!(
        f.stores
            .lifecycle
            .put_manifest_checked(&app, &m, Some("v1"), &[config.clone(), layer.clone()])
            .await
            .unwrap(),
        CheckedPut::Stored
    );

    // Within the grace period the stray upload is protected.
    let report = collector(&f, DEFAULT_GRACE).run(false).await.unwrap();
    assert_eq!((report.links_dropped, report.blobs_deleted), (0, 0));
    assert!(f.blobs.stat(&stray).await.unwrap().is_some());

    let dry = collector(&f, Duration::ZERO).run(true).await.unwrap();
    assert_eq!(
        (dry.links_dropped, dry.blobs_deleted, dry.bytes_reclaimed),
        (1, 1, 16)
    );
    let report = collector(&f, Duration::ZERO).run(false).await.unwrap();
    assert_eq!(
        (
            report.links_dropped,
            report.blobs_deleted,
            report.bytes_reclaimed
        ),
        (1, 1, 16)
    );
    assert!(f.blobs.stat(&stray).await.unwrap().is_none());
    assert!(f.blobs.stat(&layer).await.unwrap().is_some());
    assert!(f.blobs.stat(&config).await.unwrap().is_some());

    // Deleting the manifest only unlinks: the next collection frees its blobs.
    assert!(f
        .stores
        .metadata
        .delete_manifest(&app, &m.digest)
        .await
        .unwrap());
    let report = collector(&f, Duration::ZERO).run(false).await.unwrap();
    assert_eq!((report.blobs_deleted, report.bytes_reclaimed), (2, 7));
    assert!(f.blobs.stat(&layer).await.unwrap().is_none());
}

#[tokio::test]
async fn a_doomed_blob_cannot_be_linked_nor_named_by_a_new_manifest() {
    let f = fixture().await;
    let app = image("app");
    let layer = push_blob(&f.stores, &f.blobs, &app, b"layer").await;
    assert!(f.stores.metadata.unlink_blob(&app, &layer).await.unwrap());
    let doomed = f.stores.lifecycle.doom_unlinked_blobs(10).await.unwrap();
    assert_eq!(doomed.len(), 1);
    match f.stores.metadata.link_blob(&app, &layer, 5).await {
        Err(StoreError::BlobBeingCollected(d)) => assert_eq!(d, layer),
        other => panic!("a doomed blob was linked: {other:?}"),
    }
    let m = manifest_naming(&layer, &layer);
    assert_eq!(
        f.stores
            .lifecycle
            .put_manifest_checked(&app, &m, None, std::slice::from_ref(&layer))
            .await
            .unwrap(),
        CheckedPut::MissingBlob(layer.clone())
    );
    // The sweep finishes what the claim began; the blob can then be pushed afresh.
    let report = collector(&f, Duration::ZERO).run(false).await.unwrap();
    assert_eq!(report.blobs_deleted, 1);
    push_blob(&f.stores, &f.blobs, &app, b"layer").await;
    assert!(f.blobs.stat(&layer).await.unwrap().is_some());
}

#[tokio::test]
async fn a_blob_another_repository_links_stays_when_one_repository_goes() {
    let f = fixture().await;
    let a = image("a");
    let b = ImageRef {
        repository: "other".into(),
        ..image("b")
    };
    let shared = push_blob(&f.stores, &f.blobs, &a, b"shared").await;
    push_blob(&f.stores, &f.blobs, &b, b"shared").await;
    let unique = push_blob(&f.stores, &f.blobs, &a, b"unique").await;
    let name: entrepot_domain::RepositoryName = "projects/p/repositories/r".parse().unwrap();
    f.stores.metadata.delete_repository(&name).await.unwrap();
    let report = collector(&f, DEFAULT_GRACE).run(false).await.unwrap();
    assert_eq!(report.blobs_deleted, 1);
    assert!(f.blobs.stat(&unique).await.unwrap().is_none());
    assert!(f.blobs.stat(&shared).await.unwrap().is_some());
}

#[tokio::test]
async fn a_blob_file_no_row_knows_goes_once_older_than_the_grace_period() {
    let f = fixture().await;
    let app = image("app");
    let kept = push_blob(&f.stores, &f.blobs, &app, b"linked").await;
    let m = manifest_naming(&kept, &kept);
    f.stores
        .lifecycle
        .put_manifest_checked(&app, &m, Some("v1"), std::slice::from_ref(&kept))
        .await
        .unwrap();
    // Bytes written, then a crash before any row recorded them.
    let orphan = Digest::of(b"orphan");
    let body = futures::stream::once(async { Ok(Bytes::from_static(b"orphan")) });
    f.blobs
        .put_blob(&orphan, Box::pin(body), None)
        .await
        .unwrap();

    // Recent: it may be a commit about to record it.
    let report = collector(&f, DEFAULT_GRACE).run(false).await.unwrap();
    assert_eq!(report.orphan_files, 0);
    assert!(f.blobs.stat(&orphan).await.unwrap().is_some());

    // Two days later.
    let later = entrepot_domain::clock::SystemClock.now_unix() + 2 * 86_400;
    let clock = Arc::new(entrepot_domain::clock::ManualClock::at(later));
    let dry = collector(&f, DEFAULT_GRACE)
        .with_clock(clock.clone())
        .run(true)
        .await
        .unwrap();
    assert_eq!((dry.orphan_files, dry.bytes_reclaimed), (1, 6));
    assert!(f.blobs.stat(&orphan).await.unwrap().is_some());
    let report = collector(&f, DEFAULT_GRACE)
        .with_clock(clock)
        .run(false)
        .await
        .unwrap();
    assert_eq!(
        (
            report.orphan_files,
            report.blobs_deleted,
            report.bytes_reclaimed
        ),
        (1, 1, 6)
    );
    assert!(f.blobs.stat(&orphan).await.unwrap().is_none());
    assert!(f.blobs.stat(&kept).await.unwrap().is_some());
    // Its claim went with it: the same bytes can be stored and linked again.
    push_blob(&f.stores, &f.blobs, &app, b"orphan").await;
}
