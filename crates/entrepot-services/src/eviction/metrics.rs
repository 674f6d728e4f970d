//! Eviction's metrics: the size of each remote cache (gauges refreshed by
//! each eviction pass) and what eviction removed (counters).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use entrepot_storage::CacheUsage;

use super::EvictionReport;
use crate::prometheus::{family, labels};

/// Repositories shown in the size gauges; a store with more shows the first
/// ones by name (the label values stay bounded).
pub const MAX_GAUGED_REPOSITORIES: usize = 1_000;

/// Counters and gauges of cache eviction.
#[derive(Default)]
pub struct EvictionMetrics {
    sizes: Mutex<BTreeMap<String, CacheUsage>>,
    total: Mutex<CacheUsage>,
    manifests: AtomicU64,
    blobs: AtomicU64,
    bytes: AtomicU64,
    runs: AtomicU64,
}

impl EvictionMetrics {
    /// Replace every repository's size (a full pass).
    pub fn replace_sizes(&self, sizes: Vec<(String, CacheUsage)>) {
        let mut map: BTreeMap<String, CacheUsage> = sizes.into_iter().collect();
        while map.len() > MAX_GAUGED_REPOSITORIES {
            map.pop_last();
        }
        *self.sizes.lock().unwrap_or_else(|p| p.into_inner()) = map;
    }

    /// Set one repository's size (a pass after a fill).
    pub fn set_size(&self, repository: &str, usage: CacheUsage) {
        let mut map = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() < MAX_GAUGED_REPOSITORIES || map.contains_key(repository) {
            map.insert(repository.to_owned(), usage);
        }
    }

    /// Set the size of every remote cache together.
    pub fn set_total(&self, usage: CacheUsage) {
        *self.total.lock().unwrap_or_else(|p| p.into_inner()) = usage;
    }

    /// A repository's size as last measured.
    pub fn size(&self, repository: &str) -> Option<CacheUsage> {
        self.sizes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(repository)
            .copied()
    }

    /// Count a pass.
    pub fn evicted(&self, report: &EvictionReport) {
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.manifests
            .fetch_add(report.manifests + report.files, Ordering::Relaxed);
        self.blobs.fetch_add(report.blobs, Ordering::Relaxed);
        self.bytes.fetch_add(report.bytes, Ordering::Relaxed);
    }

    /// Write the families in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let sizes = self.sizes.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (name, help, value) in [
            (
                "entrepot_cache_size_bytes",
                "Bytes of the blobs a remote repository's cache holds (each blob once), as of the last eviction pass.",
                (|u: &CacheUsage| u.bytes) as fn(&CacheUsage) -> u64,
            ),
            (
                "entrepot_cache_blobs",
                "Blobs a remote repository's cache holds, as of the last eviction pass.",
                |u| u.blobs,
            ),
        ] {
            family(out, name, "gauge", help);
            for (repository, usage) in &sizes {
                let _ = writeln!(
                    out,
                    "{name}{} {}",
                    labels(&[("repository", repository)]),
                    value(usage)
                );
            }
        }
        let total = *self.total.lock().unwrap_or_else(|p| p.into_inner());
        for (name, help, value) in [
            (
                "entrepot_cache_total_size_bytes",
                "Bytes of the blobs every remote repository together holds (each blob once), weighed against cache_max_size.",
                total.bytes,
            ),
            (
                "entrepot_cache_total_blobs",
                "Blobs every remote repository together holds.",
                total.blobs,
            ),
        ] {
            family(out, name, "gauge", help);
            let _ = writeln!(out, "{name} {value}");
        }
        for (name, help, value) in [
            (
                "entrepot_cache_eviction_runs_total",
                "Cache eviction passes run.",
                &self.runs,
            ),
            (
                "entrepot_cache_evictions_total",
                "Cached manifests and Python files evicted from remote repositories over their size cap.",
                &self.manifests,
            ),
            (
                "entrepot_cache_evicted_blobs_total",
                "Blobs deleted because an eviction left them unlinked.",
                &self.blobs,
            ),
            (
                "entrepot_cache_evicted_bytes_total",
                "Bytes of the blobs deleted because an eviction left them unlinked.",
                &self.bytes,
            ),
        ] {
            family(out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
    }
}
