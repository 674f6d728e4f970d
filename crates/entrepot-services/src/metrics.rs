//! Counters of the remote cache, rendered in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use entrepot_storage::ReadCacheStats;

/// The kind of content a cache counter is about.
#[derive(Debug, Clone, Copy)]
pub enum ContentKind {
    /// A blob (OCI layer or config, Python file).
    Blob,
    /// A manifest fetched by digest.
    Manifest,
    /// A tag (or index page): mutable content.
    Tag,
}

#[derive(Default)]
struct ByKind {
    blob: AtomicU64,
    manifest: AtomicU64,
    tag: AtomicU64,
}

impl ByKind {
    fn get(&self, kind: ContentKind) -> &AtomicU64 {
        match kind {
            ContentKind::Blob => &self.blob,
            ContentKind::Manifest => &self.manifest,
            ContentKind::Tag => &self.tag,
        }
    }
}

/// Process-wide counters.
#[derive(Default)]
pub struct Metrics {
    hits: ByKind,
    misses: ByKind,
    upstream_requests: AtomicU64,
    upstream_bytes: AtomicU64,
    stale_serves: AtomicU64,
    single_flight_joins: AtomicU64,
    access_policy_blocks: AtomicU64,
    access_policy_dry_run_violations: AtomicU64,
    index_page_parses: AtomicU64,
    secret_rotations_due: AtomicU64,
    /// Upstream requests by outcome, cache fills.
    upstream: crate::upstream_metrics::UpstreamMetrics,
    gc_runs: AtomicU64,
    gc_blobs_deleted: AtomicU64,
    gc_bytes_reclaimed: AtomicU64,
    gc_uploads_removed: AtomicU64,
    cleanup_runs: AtomicU64,
    cleanup_versions_deleted: AtomicU64,
    quota_refusals: AtomicU64,
    /// Where the metadata store's read cache reports from, once wired.
    read_cache: std::sync::OnceLock<ReadCacheSource>,
    /// Families other parts render themselves (see [`Metrics::add_families`]).
    families: std::sync::Mutex<Vec<FamilySource>>,
}

/// Writes whole metric families (with their `# HELP` and `# TYPE` lines).
type FamilySource = Box<dyn Fn(&mut String) + Send + Sync>;

/// Reports the read cache's counters when `/metrics` is rendered.
type ReadCacheSource = Box<dyn Fn() -> Vec<ReadCacheStats> + Send + Sync>;

impl Metrics {
    /// Render the metadata store's read cache counters from `source` (set
    /// once; later calls are ignored).
    pub fn report_read_cache(
        &self,
        source: impl Fn() -> Vec<ReadCacheStats> + Send + Sync + 'static,
    ) {
        let _ = self.read_cache.set(Box::new(source));
    }

    /// Also render the families `source` writes, after the others (for a
    /// part with metrics of its own, such as cache eviction).
    pub fn add_families(&self, source: impl Fn(&mut String) + Send + Sync + 'static) {
        self.families
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Box::new(source));
    }

    /// Blobs deleted outside a collection, through its protocol (the
    /// blobs an eviction unlinked): counted as the collector's.
    pub fn blobs_reclaimed(&self, blobs: u64, bytes: u64) {
        self.gc_blobs_deleted.fetch_add(blobs, Ordering::Relaxed);
        self.gc_bytes_reclaimed.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Upstream requests by outcome and cache fills.
    pub fn upstream(&self) -> &crate::upstream_metrics::UpstreamMetrics {
        &self.upstream
    }

    /// A cache fill ended after `elapsed`: committed with `size` bytes, or
    /// failed (`None`).
    pub fn fill_finished(&self, elapsed: std::time::Duration, size: Option<u64>) {
        self.upstream.fill(elapsed, size);
    }

    /// Content answered from the cache.
    pub fn hit(&self, kind: ContentKind) {
        self.hits.get(kind).fetch_add(1, Ordering::Relaxed);
    }

    /// Content that had to come from the upstream.
    pub fn miss(&self, kind: ContentKind) {
        self.misses.get(kind).fetch_add(1, Ordering::Relaxed);
    }

    /// One request sent upstream.
    pub fn upstream_request(&self) {
        self.upstream_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes received from upstreams.
    pub fn upstream_bytes(&self, n: u64) {
        self.upstream_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Cached content served because the upstream failed.
    pub fn stale_serve(&self) {
        self.stale_serves.fetch_add(1, Ordering::Relaxed);
    }

    /// A request that joined a download already under way.
    pub fn single_flight_join(&self) {
        self.single_flight_joins.fetch_add(1, Ordering::Relaxed);
    }

    /// A hop the registry access policy refused.
    pub fn access_policy_block(&self) {
        self.access_policy_blocks.fetch_add(1, Ordering::Relaxed);
    }

    /// A hop the registry access policy would have refused, let through in dry run.
    pub fn access_policy_dry_run_violation(&self) {
        self.access_policy_dry_run_violations
            .fetch_add(1, Ordering::Relaxed);
    }

    /// An upstream Python index page or project list parsed (once per fetch,
    /// unless its parsed form was dropped from memory).
    pub fn index_page_parse(&self) {
        self.index_page_parses.fetch_add(1, Ordering::Relaxed);
    }

    /// A secret's rotation came due (counted once per due time).
    pub fn secret_rotation_due(&self) {
        self.secret_rotations_due.fetch_add(1, Ordering::Relaxed);
    }

    /// Upstream bytes so far (for tests and benchmarks).
    pub fn upstream_bytes_total(&self) -> u64 {
        self.upstream_bytes.load(Ordering::Relaxed)
    }

    /// One garbage collection that deleted `blobs` blobs of `bytes` bytes
    /// and `uploads` abandoned upload sessions.
    pub fn garbage_collected(&self, blobs: u64, bytes: u64, uploads: u64) {
        self.gc_runs.fetch_add(1, Ordering::Relaxed);
        self.gc_blobs_deleted.fetch_add(blobs, Ordering::Relaxed);
        self.gc_bytes_reclaimed.fetch_add(bytes, Ordering::Relaxed);
        self.gc_uploads_removed
            .fetch_add(uploads, Ordering::Relaxed);
    }

    /// One cleanup-policy run (not a dry run) that deleted `versions`.
    pub fn cleaned_up(&self, versions: u64) {
        self.cleanup_runs.fetch_add(1, Ordering::Relaxed);
        self.cleanup_versions_deleted
            .fetch_add(versions, Ordering::Relaxed);
    }

    /// A push refused by a storage quota.
    pub fn quota_refused(&self) {
        self.quota_refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let kinds = [
            ("blob", ContentKind::Blob),
            ("manifest", ContentKind::Manifest),
            ("tag", ContentKind::Tag),
        ];
        for (name, help, by) in [
            (
                "entrepot_cache_hits_total",
                "Requests answered from the remote cache.",
                &self.hits,
            ),
            (
                "entrepot_cache_misses_total",
                "Requests that needed the upstream.",
                &self.misses,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (label, kind) in kinds {
                let _ = writeln!(
                    out,
                    "{name}{{kind=\"{label}\"}} {}",
                    by.get(kind).load(Ordering::Relaxed)
                );
            }
        }
        for (name, help, value) in [
            (
                "entrepot_upstream_requests_total",
                "Requests sent to upstreams.",
                &self.upstream_requests,
            ),
            (
                "entrepot_upstream_bytes_total",
                "Content bytes received from upstreams.",
                &self.upstream_bytes,
            ),
            (
                "entrepot_stale_serves_total",
                "Cached content served because the upstream failed.",
                &self.stale_serves,
            ),
            (
                "entrepot_single_flight_joins_total",
                "Requests that joined an upstream download already under way.",
                &self.single_flight_joins,
            ),
            (
                "entrepot_access_policy_blocked_total",
                "Upstream hops refused by the registry access policy.",
                &self.access_policy_blocks,
            ),
            (
                "entrepot_access_policy_dry_run_violations_total",
                "Upstream hops outside the registry access policy, let through because it is in dry-run mode.",
                &self.access_policy_dry_run_violations,
            ),
            (
                "entrepot_secret_rotations_due_total",
                "Secret rotations that came due (rotation.nextRotationTime passed).",
                &self.secret_rotations_due,
            ),
            (
                "entrepot_python_index_parses_total",
                "Upstream Python index pages and project lists parsed.",
                &self.index_page_parses,
            ),
            (
                "entrepot_gc_runs_total",
                "Garbage collections run.",
                &self.gc_runs,
            ),
            (
                "entrepot_gc_blobs_deleted_total",
                "Blobs no repository linked, deleted by the garbage collector.",
                &self.gc_blobs_deleted,
            ),
            (
                "entrepot_gc_bytes_reclaimed_total",
                "Bytes of the blobs the garbage collector deleted.",
                &self.gc_bytes_reclaimed,
            ),
            (
                "entrepot_gc_uploads_removed_total",
                "Abandoned upload sessions the garbage collector removed.",
                &self.gc_uploads_removed,
            ),
            (
                "entrepot_cleanup_runs_total",
                "Cleanup-policy runs that could delete (dry runs not counted).",
                &self.cleanup_runs,
            ),
            (
                "entrepot_cleanup_versions_deleted_total",
                "Versions (manifests, Python versions) deleted by cleanup policies.",
                &self.cleanup_versions_deleted,
            ),
            (
                "entrepot_quota_refusals_total",
                "Pushes refused because they would exceed a storage quota.",
                &self.quota_refusals,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        self.upstream.render(&mut out);
        if let Some(source) = self.read_cache.get() {
            let stats = source();
            for (name, kind, help, value) in [
                (
                    "entrepot_read_cache_hits_total",
                    "counter",
                    "Metadata lookups answered from the in-process read cache.",
                    (|s: &ReadCacheStats| s.hits) as fn(&ReadCacheStats) -> u64,
                ),
                (
                    "entrepot_read_cache_misses_total",
                    "counter",
                    "Metadata lookups the read cache sent to the database.",
                    |s| s.misses,
                ),
                (
                    "entrepot_read_cache_entries",
                    "gauge",
                    "Entries held by the read cache.",
                    |s| s.entries,
                ),
                (
                    "entrepot_read_cache_bytes",
                    "gauge",
                    "Estimated bytes held by the read cache.",
                    |s| s.bytes,
                ),
            ] {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for s in &stats {
                    let _ = writeln!(out, "{name}{{cache=\"{}\"}} {}", s.cache, value(s));
                }
            }
        }
        for source in self
            .families
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            source(&mut out);
        }
        out
    }
}
