//! Eviction over the real SQLite store and a local blob directory.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use entrepot_domain::{Digest, Format, Mode, Repository};
use entrepot_storage::testing::memory_stores;
use entrepot_storage::{BlobStore, ImageRef, ManifestRecord, ObjectBlobStore, Stores};
use futures::FutureExt;

use super::*;
use crate::metrics::Metrics;
use crate::remote::Fills;

struct Fixture {
    stores: Stores,
    blobs: Arc<ObjectBlobStore>,
    pulls: Arc<PullTracker>,
    dir: tempfile::TempDir,
}

/// A cached image: its manifest and blobs.
struct Cached {
    image: ImageRef,
    manifest: Digest,
    blobs: Vec<Digest>,
}

async fn fixture(repositories: &[(&str, Option<u64>)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let stores = memory_stores().await.unwrap();
    stores
        .metadata
        .create_project(&"p".parse().unwrap())
        .await
        .unwrap();
    for (id, cap) in repositories {
        let name: RepositoryName = format!("projects/p/repositories/{id}").parse().unwrap();
        let mut remote = serde_json::json!({ "upstream": "http://127.0.0.1:5000" });
        if let Some(cap) = cap {
            remote["cacheMaxSizeBytes"] = (*cap).into();
        }
        let repo = Repository {
            name: name.to_string(),
            format: Format::Docker,
            mode: Mode::RemoteRepository,
            description: String::new(),
            remote_repository_config: Some(serde_json::from_value(remote).unwrap()),
            virtual_repository_config: None,
            create_time: String::new(),
            update_time: String::new(),
        };
        stores
            .metadata
            .create_repository(&name, &repo)
            .await
            .unwrap();
    }
    Fixture {
        pulls: Arc::new(PullTracker::new(stores.eviction.clone())),
        blobs: Arc::new(ObjectBlobStore::local(dir.path().join("blobs")).unwrap()),
        stores,
        dir,
    }
}

impl Fixture {
    fn evictor(&self) -> CacheEvictor {
        let gc = GarbageCollector::new(
            self.stores.lifecycle.clone(),
            self.blobs.clone(),
            Arc::new(Metrics::default()),
        );
        CacheEvictor::new(
            self.stores.eviction.clone(),
            self.stores.metadata.clone(),
            Arc::new(gc),
            self.pulls.clone(),
        )
    }

    async fn store_blob(&self, at: &ImageRef, bytes: Vec<u8>) -> Digest {
        let digest = Digest::of(&bytes);
        let body = futures::stream::once(async move { Ok(Bytes::from(bytes)) });
        let size = self
            .blobs
            .put_blob(&digest, Box::pin(body), None)
            .await
            .unwrap();
        self.stores
            .metadata
            .link_blob(at, &digest, size)
            .await
            .unwrap();
        digest
    }

    /// Cache `image:latest` in `repository`: a shared config of 2 bytes and
    /// a layer of `layer_bytes` random bytes, pulled at `pulled_ms`.
    async fn cache(
        &self,
        repository: &str,
        name: &str,
        layer_bytes: usize,
        pulled_ms: i64,
    ) -> Cached {
        let image = ImageRef {
            project: "p".into(),
            repository: repository.into(),
            image: name.into(),
        };
        let config = self.store_blob(&image, b"{}".to_vec()).await;
        let layer: Vec<u8> = (0..layer_bytes).map(|_| rand::random::<u8>()).collect();
        let layer = self.store_blob(&image, layer).await;
        let content = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": layer_bytes}],
        })
        .to_string()
        .into_bytes();
        let manifest = ManifestRecord {
            digest: Digest::of(&content),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            artifact_type: None,
            subject: None,
            annotations: None,
            content,
        };
        self.stores
            .metadata
            .put_manifest(&image, &manifest, Some("latest"))
            .await
            .unwrap();
        self.pulls.record_at(&image, &manifest.digest, pulled_ms);
        Cached {
            image,
            manifest: manifest.digest,
            blobs: vec![config, layer],
        }
    }

    async fn is_cached(&self, c: &Cached) -> bool {
        self.stores
            .metadata
            .manifest_by_tag(&c.image, "latest")
            .await
            .unwrap()
            .is_some()
    }

    async fn on_disk(&self, digest: &Digest) -> bool {
        self.blobs.stat(digest).await.unwrap().is_some()
    }
}

#[tokio::test]
async fn the_least_recently_pulled_image_goes_and_its_unshared_bytes_with_it() {
    let f = fixture(&[("up", Some(2500))]).await;
    let a = f.cache("up", "a", 1000, 1_000).await;
    let b = f.cache("up", "b", 1000, 2_000).await;
    // `a` pulled again: `b` is now the least recently pulled.
    f.pulls.record_at(&a.image, &a.manifest, 3_000);
    let c = f.cache("up", "c", 1000, 4_000).await;

    let evictor = f.evictor();
    let report = evictor.run().await.unwrap();
    assert_eq!(report.manifests, 1, "{report:?}");
    assert_eq!(report.tags, 1);
    assert_eq!((report.blobs, report.bytes), (1, 1000), "{report:?}");
    assert!(!f.is_cached(&b).await);
    assert!(f.is_cached(&a).await && f.is_cached(&c).await);
    assert!(
        !f.on_disk(&b.blobs[1]).await,
        "the evicted layer is still stored"
    );
    // The config every image shares stays, linked by the others.
    assert!(f.on_disk(&b.blobs[0]).await);
    for kept in a.blobs.iter().chain(&c.blobs) {
        assert!(f.on_disk(kept).await);
    }
    // Under the low-water mark (90% of 2500) now, and measured so.
    let size = evictor
        .metrics()
        .size("projects/p/repositories/up")
        .unwrap();
    assert_eq!(size.bytes, 2002);
    assert_eq!(size.blobs, 3);
    // A second pass has nothing to do.
    assert_eq!(evictor.run().await.unwrap().manifests, 0);
    let mut text = String::new();
    evictor.metrics().render(&mut text);
    assert!(
        text.contains(
            "entrepot_cache_size_bytes{repository=\"projects/p/repositories/up\"} 2002\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("entrepot_cache_evictions_total 1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn an_image_whose_blob_is_being_filled_is_left_alone() {
    let f = fixture(&[("up", Some(2500))]).await;
    let a = f.cache("up", "a", 1000, 1_000).await;
    let b = f.cache("up", "b", 1000, 2_000).await;
    let c = f.cache("up", "c", 1000, 3_000).await;
    // A download of `a`'s layer is under way (its upstream never answers).
    let fills = Fills::new(
        f.dir.path().join("spool"),
        f.blobs.clone(),
        Arc::new(Metrics::default()),
    )
    .unwrap();
    let _filling = fills
        .get_or_start(
            "projects/p/repositories/up",
            &(&a.blobs[1]).into(),
            async { Ok(None) },
            || futures::future::pending().boxed(),
            |_| async {}.boxed(),
        )
        .await
        .unwrap();

    let report = f
        .evictor()
        .with_fills(fills.in_flight())
        .run()
        .await
        .unwrap();
    assert_eq!(report.skipped_filling, 1, "{report:?}");
    assert_eq!(report.manifests, 1);
    assert!(
        f.is_cached(&a).await,
        "content in the middle of a fill was evicted"
    );
    assert!(!f.is_cached(&b).await);
    assert!(f.is_cached(&c).await);
}

#[tokio::test]
async fn the_store_wide_cap_weighs_every_remote_cache_together() {
    // No cap of their own; 2500 bytes for both together.
    let f = fixture(&[("one", None), ("two", None)]).await;
    let old = f.cache("one", "old", 1000, 1_000).await;
    let mid = f.cache("two", "mid", 1000, 2_000).await;
    let new = f.cache("one", "new", 1000, 3_000).await;
    let report = f.evictor().with_store_cap(Some(2500)).run().await.unwrap();
    assert_eq!(report.manifests, 1, "{report:?}");
    assert!(!f.is_cached(&old).await);
    assert!(f.is_cached(&mid).await && f.is_cached(&new).await);
    assert!(!f.on_disk(&old.blobs[1]).await);
    let total = f.stores.eviction.remote_cache_usage().await.unwrap();
    assert_eq!((total.bytes, total.blobs), (2002, 3));
}

#[tokio::test]
async fn a_pass_after_fills_checks_only_the_repositories_that_grew() {
    let f = fixture(&[("up", Some(1500)), ("other", Some(1500))]).await;
    f.cache("up", "a", 1000, 1_000).await;
    f.cache("up", "b", 1000, 2_000).await;
    let x = f.cache("other", "x", 1000, 1_000).await;
    f.cache("other", "y", 1000, 2_000).await;
    let evictor = f.evictor();
    let report = evictor
        .run_for(&["projects/p/repositories/up".to_owned()])
        .await
        .unwrap();
    assert_eq!(report.manifests, 1);
    assert!(
        f.is_cached(&x).await,
        "a repository that did not grow was evicted from"
    );
}
