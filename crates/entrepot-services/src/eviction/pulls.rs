//! When cached manifests were last pulled, without a write per request:
//! pulls go into a bounded in-memory map, flushed to the store in one
//! transaction periodically, before each eviction pass and at shutdown.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entrepot_domain::Digest;
use entrepot_storage::{EvictionStore, ImageRef, PullRecord, StoreError};
use tokio::sync::Notify;

/// Pulls held in memory between two flushes; past it a flush is asked for
/// and new manifests are not recorded until it ran (a pull of one already
/// held still moves its time). Each entry is about 200 bytes.
pub const MAX_PENDING_PULLS: usize = 50_000;

/// Repositories remembered as having new content until the evictor looks.
const MAX_FILLED_REPOSITORIES: usize = 1_000;

/// How often the pending pulls are written when nothing else flushes them.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(10);

type PullKey = (ImageRef, Digest);

/// The batch of pulls not yet written, and which repositories cached new
/// content since the evictor last looked.
pub struct PullTracker {
    store: Arc<dyn EvictionStore>,
    pending: Mutex<HashMap<PullKey, i64>>,
    filled: Mutex<HashSet<String>>,
    /// Wakes the evictor: content was cached, or the batch is full.
    wake: Notify,
    /// Pulls not recorded because the batch was full.
    dropped: AtomicU64,
    /// One flush at a time, so that two flushes never reorder a manifest's
    /// times (the store keeps the later one anyway).
    flushing: tokio::sync::Mutex<()>,
}

fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

impl PullTracker {
    /// A tracker writing into `store`.
    pub fn new(store: Arc<dyn EvictionStore>) -> Self {
        Self {
            store,
            pending: Mutex::new(HashMap::new()),
            filled: Mutex::new(HashSet::new()),
            wake: Notify::new(),
            dropped: AtomicU64::new(0),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    /// The manifest `digest` of `image` was pulled now.
    pub fn record(&self, image: &ImageRef, digest: &Digest) {
        self.record_at(image, digest, now_ms());
    }

    /// The manifest `digest` of `image` was pulled at `at_ms` (unix ms).
    pub fn record_at(&self, image: &ImageRef, digest: &Digest, at_ms: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let key = (image.clone(), digest.clone());
        if let Some(time) = pending.get_mut(&key) {
            *time = (*time).max(at_ms);
            return;
        }
        if pending.len() >= MAX_PENDING_PULLS {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            drop(pending);
            self.wake.notify_one();
            return;
        }
        pending.insert(key, at_ms);
    }

    /// `repository` (a resource name) cached new content: its size is
    /// checked against its cap soon.
    pub fn filled(&self, repository: &str) {
        let mut filled = self.filled.lock().unwrap_or_else(|p| p.into_inner());
        if filled.len() < MAX_FILLED_REPOSITORIES {
            filled.insert(repository.to_owned());
        }
        drop(filled);
        self.wake.notify_one();
    }

    /// The repositories that cached content since the last call.
    pub fn take_filled(&self) -> Vec<String> {
        let mut filled = self.filled.lock().unwrap_or_else(|p| p.into_inner());
        filled.drain().collect()
    }

    /// Wait until content was cached or the batch filled up.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Pulls held in memory now.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Pulls not recorded because the batch was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Write the pending pulls in one transaction. On failure they are
    /// kept for the next flush (what arrived meanwhile wins a tie).
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let _one = self.flushing.lock().await;
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.is_empty() {
            return Ok(0);
        }
        let records: Vec<PullRecord> = batch
            .iter()
            .map(|((image, digest), at)| PullRecord {
                image: image.clone(),
                digest: digest.clone(),
                pulled_ms: *at,
            })
            .collect();
        match self.store.record_pulls(&records).await {
            Ok(()) => Ok(records.len()),
            Err(e) => {
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                for (key, at) in batch {
                    if pending.len() >= MAX_PENDING_PULLS {
                        break;
                    }
                    let time = pending.entry(key).or_insert(at);
                    *time = (*time).max(at);
                }
                Err(e)
            }
        }
    }

    /// Flush every `every`, for as long as the returned task lives.
    pub fn spawn_flushes(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.flush().await {
                    tracing::warn!(error = %e, "could not record the last pull times; kept for the next try");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entrepot_storage::testing::memory_stores;

    fn image(name: &str) -> ImageRef {
        ImageRef {
            project: "p".into(),
            repository: "r".into(),
            image: name.into(),
        }
    }

    #[tokio::test]
    async fn pulls_stay_in_memory_until_a_flush_writes_the_latest_of_each() {
        let stores = memory_stores().await.unwrap();
        let tracker = PullTracker::new(stores.eviction.clone());
        let app = image("app");
        let manifest = entrepot_storage::ManifestRecord {
            digest: Digest::of(b"{}"),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            artifact_type: None,
            subject: None,
            annotations: None,
            content: b"{}".to_vec(),
        };
        stores
            .metadata
            .put_manifest(&app, &manifest, Some("1"))
            .await
            .unwrap();
        let d = manifest.digest.clone();
        tracker.record_at(&app, &d, 2_000);
        tracker.record_at(&app, &d, 5_000);
        tracker.record_at(&app, &d, 3_000);
        // A manifest that is not cached leaves no row.
        tracker.record_at(&app, &Digest::of(b"gone"), 9_000);
        assert_eq!(tracker.pending(), 2);
        assert_eq!(stores.eviction.last_pull(&app, &d).await.unwrap(), None);
        assert_eq!(tracker.flush().await.unwrap(), 2);
        assert_eq!(tracker.pending(), 0);
        assert_eq!(
            stores.eviction.last_pull(&app, &d).await.unwrap(),
            Some(5_000)
        );
        assert_eq!(
            stores
                .eviction
                .last_pull(&app, &Digest::of(b"gone"))
                .await
                .unwrap(),
            None
        );
        // An older time flushed later does not move it back.
        tracker.record_at(&app, &d, 4_000);
        tracker.flush().await.unwrap();
        assert_eq!(
            stores.eviction.last_pull(&app, &d).await.unwrap(),
            Some(5_000)
        );
    }

    #[tokio::test]
    async fn a_full_batch_drops_new_manifests_and_asks_for_a_flush() {
        let stores = memory_stores().await.unwrap();
        let tracker = PullTracker::new(stores.eviction.clone());
        let app = image("app");
        for i in 0..MAX_PENDING_PULLS {
            tracker.record_at(&app, &Digest::of(i.to_string().as_bytes()), 1);
        }
        tracker.record_at(&app, &Digest::of(b"one more"), 1);
        assert_eq!(tracker.pending(), MAX_PENDING_PULLS);
        assert_eq!(tracker.dropped(), 1);
        // The wake-up is stored for the evictor.
        assert!(futures::FutureExt::now_or_never(tracker.woken()).is_some());
    }
}
