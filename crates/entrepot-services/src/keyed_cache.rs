//! One small in-process cache: the latest value kept per key, shared between
//! requests. For values that are costly to rebuild but cheap to clone (an
//! `Arc`), such as a parsed project list or a repository's credential source.
//! It holds a bounded number of keys: past its capacity, the keys least used
//! lately are forgotten (CLOCK-Pro, `quick_cache`), so a stream of
//! repositories created and deleted, or of names asked once, cannot grow it
//! without end.

use std::hash::Hash;
use std::sync::Mutex;

use quick_cache::unsync::Cache;

/// How many keys a cache holds unless told otherwise.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// The latest value per key, for at most a bounded number of keys. Callers
/// decide whether a kept value still fits (`get_if`), so staleness rules
/// stay with the code that knows them.
pub struct KeyedCache<K, V> {
    entries: Mutex<Cache<K, V>>,
}

impl<K: Eq + Hash, V> Default for KeyedCache<K, V> {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl<K, V> std::fmt::Debug for KeyedCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedCache").finish_non_exhaustive()
    }
}

impl<K: Eq + Hash, V> KeyedCache<K, V> {
    /// An empty cache of [`DEFAULT_CAPACITY`] keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache of at most about `capacity` keys (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(Cache::new(capacity.max(1))),
        }
    }

    /// How many keys are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forget every key (what they stand for changed elsewhere).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

impl<K: Eq + Hash, V: Clone> KeyedCache<K, V> {
    /// A copy of the value kept for `key`, if `fits` accepts it.
    pub fn get_if(&self, key: &K, fits: impl FnOnce(&V) -> bool) -> Option<V> {
        self.lock().get(key).filter(|v| fits(v)).cloned()
    }

    /// Keep `value` for `key`, replacing what was kept.
    pub fn insert(&self, key: K, value: V) {
        self.lock().insert(key, value);
    }

    /// The value kept for `key` if `fits` accepts it; otherwise `make` builds
    /// one, which is kept and returned. Check and replacement are atomic.
    pub fn get_or_insert_with(
        &self,
        key: K,
        fits: impl FnOnce(&V) -> bool,
        make: impl FnOnce() -> V,
    ) -> V {
        let mut entries = self.lock();
        if let Some(v) = entries.get(&key).filter(|v| fits(v)) {
            return v.clone();
        }
        let value = make();
        entries.insert(key, value.clone());
        value
    }
}

impl<K, V> KeyedCache<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cache<K, V>> {
        // A panic elsewhere cannot leave a half-written map: each call is one
        // insert or lookup.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_value_is_served_only_while_it_fits() {
        let cache: KeyedCache<&str, (u32, &str)> = KeyedCache::new();
        assert_eq!(cache.get_if(&"a", |_| true), None);
        cache.insert("a", (1, "one"));
        assert_eq!(cache.get_if(&"a", |v| v.0 == 1), Some((1, "one")));
        assert_eq!(cache.get_if(&"a", |v| v.0 == 2), None);
        assert_eq!(cache.get_if(&"b", |_| true), None);
    }

    #[test]
    fn get_or_insert_with_rebuilds_what_no_longer_fits() {
        let cache: KeyedCache<&str, u32> = KeyedCache::new();
        let mut built = 0;
        let mut get = |wanted: u32| {
            cache.get_or_insert_with(
                "k",
                |v| *v == wanted,
                || {
                    built += 1;
                    wanted
                },
            )
        };
        assert_eq!(get(1), 1);
        assert_eq!(get(1), 1);
        assert_eq!(get(2), 2);
        assert_eq!(built, 2);
    }

    #[test]
    fn past_its_capacity_the_cache_forgets_keys_and_keeps_the_newest() {
        let cache: KeyedCache<u32, u32> = KeyedCache::with_capacity(8);
        for i in 0..1_000 {
            cache.insert(i, i);
            assert_eq!(cache.get_if(&i, |_| true), Some(i), "key {i} was not kept");
            assert!(cache.len() <= 8, "{} keys kept", cache.len());
        }
        // A key asked for again and again stays while others come and go.
        let busy: KeyedCache<u32, u32> = KeyedCache::with_capacity(8);
        busy.insert(u32::MAX, 0);
        for i in 0..1_000 {
            assert_eq!(
                busy.get_if(&u32::MAX, |_| true),
                Some(0),
                "after {i} others"
            );
            busy.insert(i, i);
        }
    }
}
