//! Per-key locks: one request at a time decides about a mutable document (a
//! tag, an index page), so concurrent requests for a stale one ask the
//! upstream once and the others read what it stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// Locks by key, forgotten once nobody holds or waits for them.
#[derive(Default)]
pub struct KeyLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyLocks {
    /// Wait for the lock of `key`; it is held until the guard is dropped (a
    /// guard may move into a task that finishes the work in the background).
    pub async fn lock(&self, key: String) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            // Locks only this map holds are free: forget them.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(key).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// How many keys are locked or waited for.
    pub fn len(&self) -> usize {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.len()
    }

    /// Whether no key is locked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn one_holder_per_key_and_free_keys_are_forgotten() {
        let locks = KeyLocks::default();
        let a = locks.lock("a".into()).await;
        // Another key is not held up.
        let b = locks.lock("b".into()).now_or_never();
        assert!(b.is_some());
        drop(b);
        // The same key waits for its holder.
        let mut waiting = Box::pin(locks.lock("a".into()));
        assert!((&mut waiting).now_or_never().is_none());
        drop(a);
        let again = waiting.await;
        assert_eq!(locks.len(), 1);
        drop(again);
        assert!(locks.is_empty());
    }
}
