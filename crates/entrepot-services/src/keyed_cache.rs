//! One small in-process cache: the latest value kept per key, shared between
//! requests. For values that are costly to rebuild but cheap to clone (an
//! `Arc`), such as a parsed project list or a repository's credential source.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// The latest value per key. Callers decide whether a kept value still fits
/// (`get_if`), so staleness rules stay with the code that knows them.
#[derive(Debug)]
pub struct KeyedCache<K, V> {
    entries: Mutex<HashMap<K, V>>,
}

impl<K, V> Default for KeyedCache<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> KeyedCache<K, V> {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
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
}
