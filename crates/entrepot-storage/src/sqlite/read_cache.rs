//! An in-process cache of the lookups every request starts with: the IAM
//! policies on the way from a resource up to the organisation, a repository by
//! name, and what is pulled by name: a manifest by tag (a tag names a digest,
//! and the manifest is kept once per image and digest, however many tags name
//! it), the origin of a file of a remote Python repository.
//!
//! The store that owns it invalidates entries on each write that could change
//! them, so it is only correct while this process is the database's only
//! writer (the embedded SQLite deployment). A store shared by several nodes
//! must not use it.
//!
//! A read that misses goes to the database, then offers its result with the
//! generation it saw before reading. Every invalidation bumps the generation,
//! so a result read before a concurrent write is never cached after it.
//!
//! Each map is a bounded CLOCK-Pro cache (`quick_cache`) sized by an estimate
//! of the bytes it holds: when full it evicts what is least likely to be read
//! again, instead of emptying itself, so a hot set larger than the cache still
//! hits for its most read part. Hits and misses are counted for `/metrics`.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use entrepot_domain::iam::Policy;
use entrepot_domain::{Digest, Repository};
use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::metadata::{ImageRef, ManifestRecord};
use crate::python::RemoteFileRecord;

/// Bytes (estimated) kept of manifests by default, by image and digest: those
/// read by tag, the hot path of every pull.
const MANIFEST_BYTES: u64 = 64 * 1024 * 1024;
/// Bytes (estimated) kept of tags by default, each naming its manifest's
/// digest. An entry counts about 220 bytes, so this holds about 150,000 tags
/// (when each tag held its own copy of the manifest, 64 MiB held 22,000
/// tags of a 1.5 KiB manifest, and 100,000 tags missed on 80% of reads).
const TAG_BYTES: u64 = 32 * 1024 * 1024;
/// Bytes (estimated) kept of repositories by name by default: every request
/// to a repository starts with this lookup. An entry counts about 1.5 KiB,
/// so this holds about 20,000 repositories (8 MiB held about 5,000, and a
/// store of 10,000 served manifests at half the rate of one of 1,000).
const REPOSITORY_BYTES: u64 = 32 * 1024 * 1024;
/// Bytes (estimated) kept of each of the other two maps by default.
const OTHER_BYTES: u64 = 8 * 1024 * 1024;

/// The whole cache's default budget (estimated bytes): 64 MiB of manifests,
/// 32 MiB of tags, 32 MiB of repositories and 8 MiB for each of the other two
/// maps.
pub const DEFAULT_READ_CACHE_BYTES: u64 =
    MANIFEST_BYTES + TAG_BYTES + REPOSITORY_BYTES + 2 * OTHER_BYTES;

type TagKey = (ImageRef, String);
type ManifestKey = (ImageRef, Digest);

/// `(project, repository, sha256, filename)`.
pub(crate) type RemoteFileKey = (String, String, String, String);

/// Roughly the heap and inline bytes an entry holds, to size the maps by
/// memory rather than by entry count (a manifest may be 4 MiB).
trait Footprint {
    fn footprint(&self) -> u64;
}

impl Footprint for String {
    fn footprint(&self) -> u64 {
        (std::mem::size_of::<String>() + self.len()) as u64
    }
}

impl<T: Footprint> Footprint for Option<T> {
    fn footprint(&self) -> u64 {
        self.as_ref().map_or(0, Footprint::footprint)
    }
}

impl<A: Footprint, B: Footprint> Footprint for (A, B) {
    fn footprint(&self) -> u64 {
        self.0.footprint() + self.1.footprint()
    }
}

impl Footprint for RemoteFileKey {
    fn footprint(&self) -> u64 {
        self.0.footprint() + self.1.footprint() + self.2.footprint() + self.3.footprint()
    }
}

impl Footprint for ImageRef {
    fn footprint(&self) -> u64 {
        self.project.footprint() + self.repository.footprint() + self.image.footprint()
    }
}

impl Footprint for Digest {
    fn footprint(&self) -> u64 {
        (std::mem::size_of::<Self>() + self.hex().len()) as u64
    }
}

impl Footprint for ManifestRecord {
    fn footprint(&self) -> u64 {
        (std::mem::size_of::<Self>() + self.content.len() + self.media_type.len()) as u64
            + self.artifact_type.footprint()
            + self.annotations.footprint()
    }
}

impl Footprint for Repository {
    fn footprint(&self) -> u64 {
        // The remote configuration is small and bounded; count it as 1 KiB.
        (std::mem::size_of::<Self>() + self.name.len() + self.description.len() + 1024) as u64
    }
}

impl Footprint for Policy {
    fn footprint(&self) -> u64 {
        let bindings: usize = self
            .bindings
            .iter()
            .map(|b| 64 + b.role.len() + 96 * b.members.len())
            .sum();
        (std::mem::size_of::<Self>() + self.etag.len() + bindings) as u64
    }
}

impl Footprint for RemoteFileRecord {
    fn footprint(&self) -> u64 {
        (std::mem::size_of::<Self>()
            + self.name.len()
            + self.sha256.len()
            + self.filename.len()
            + self.url.len()) as u64
            + self.metadata_sha256.footprint()
    }
}

#[derive(Clone, Copy)]
struct ByFootprint;

impl<K: Footprint, V: Footprint> Weighter<K, V> for ByFootprint {
    fn weight(&self, key: &K, value: &V) -> u64 {
        // Never 0: quick_cache never evicts weightless entries.
        (key.footprint() + value.footprint()).max(1)
    }
}

/// One bounded map with its hit and miss counters.
struct Map<K, V> {
    entries: Cache<K, V, ByFootprint>,
    /// The most bytes it may hold; an entry weighing more is not kept (so a
    /// map of 0 bytes keeps nothing and every read goes to the database).
    bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<K: Eq + Hash + Footprint, V: Clone + Footprint> Map<K, V> {
    fn new(bytes: u64, typical_entry_bytes: u64) -> Self {
        Self {
            entries: Cache::with_weighter(
                ((bytes / typical_entry_bytes) as usize).max(1),
                bytes.max(1),
                ByFootprint,
            ),
            bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Keep `value` unless it alone weighs more than the whole map.
    fn insert(&self, key: K, value: V) {
        if ByFootprint.weight(&key, &value) <= self.bytes {
            self.entries.insert(key, value);
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let found = self.entries.get(key);
        self.count(found.is_some());
        found
    }

    /// Count one lookup, answered from the map or not.
    fn count(&self, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn stats(&self, cache: &'static str) -> ReadCacheStats {
        ReadCacheStats {
            cache,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.entries.len() as u64,
            bytes: self.entries.weight(),
        }
    }
}

/// What one map of the read cache has done so far, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCacheStats {
    /// Which map: `repository`, `tag`, `policy` or `python_remote_file`.
    pub cache: &'static str,
    /// Lookups answered from it.
    pub hits: u64,
    /// Lookups that went to the database.
    pub misses: u64,
    /// Entries it holds now.
    pub entries: u64,
    /// Estimated bytes it holds now.
    pub bytes: u64,
}

/// Estimated bytes for each map of a [`ReadCache`].
struct Capacity {
    manifests: u64,
    tags: u64,
    repositories: u64,
    /// For each of the policies and the remote files.
    other: u64,
}

/// The cache; see the module documentation.
pub(crate) struct ReadCache {
    /// Held by an offer while it checks the generation and inserts, and by an
    /// invalidation while it bumps the generation and removes: so an offer
    /// never lands after an invalidation it did not see. Lookups take no lock
    /// but the map's own shard lock.
    generation: Mutex<u64>,
    repositories: Map<(String, String), Repository>,
    /// The digest each tag names. Its hits and misses count manifest-by-tag
    /// lookups, answered only when the manifest is kept too.
    tags: Map<TagKey, Digest>,
    manifests: Map<ManifestKey, ManifestRecord>,
    policies: Map<String, Policy>,
    remote_files: Map<RemoteFileKey, RemoteFileRecord>,
}

impl Default for ReadCache {
    fn default() -> Self {
        Self::with_budget(DEFAULT_READ_CACHE_BYTES)
    }
}

impl ReadCache {
    /// A cache keeping about `bytes` in all, shared out as the default is:
    /// 4/9 to manifests, 2/9 to tags, 2/9 to repositories, 1/18 to each other
    /// map. 0 keeps nothing.
    pub(crate) fn with_budget(bytes: u64) -> Self {
        let share = |part: u64| {
            (u128::from(bytes) * u128::from(part) / u128::from(DEFAULT_READ_CACHE_BYTES)) as u64
        };
        Self::with_capacity(Capacity {
            manifests: share(MANIFEST_BYTES),
            tags: share(TAG_BYTES),
            repositories: share(REPOSITORY_BYTES),
            other: share(OTHER_BYTES),
        })
    }

    /// A cache keeping about the bytes of `capacity` in each map.
    fn with_capacity(capacity: Capacity) -> Self {
        Self {
            generation: Mutex::new(0),
            repositories: Map::new(capacity.repositories, 1536),
            tags: Map::new(capacity.tags, 224),
            manifests: Map::new(capacity.manifests, 2048),
            policies: Map::new(capacity.other, 512),
            remote_files: Map::new(capacity.other, 512),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        // A counter stays consistent whatever panicked while holding the lock.
        self.generation.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The generation to pass to `offer_*` after reading the database.
    pub(crate) fn generation(&self) -> u64 {
        *self.lock()
    }

    /// Hit and miss counts of each map.
    pub(crate) fn stats(&self) -> Vec<ReadCacheStats> {
        vec![
            self.repositories.stats("repository"),
            self.tags.stats("tag"),
            self.policies.stats("policy"),
            self.remote_files.stats("python_remote_file"),
            self.manifests.stats("manifest"),
        ]
    }

    pub(crate) fn repository(&self, project: &str, id: &str) -> Option<Repository> {
        self.repositories.get(&(project.to_owned(), id.to_owned()))
    }

    pub(crate) fn offer_repository(
        &self,
        generation: u64,
        repo: &Repository,
        project: &str,
        id: &str,
    ) {
        let current = self.lock();
        if *current != generation {
            return;
        }
        self.repositories
            .insert((project.to_owned(), id.to_owned()), repo.clone());
    }

    pub(crate) fn manifest_by_tag(&self, image: &ImageRef, tag: &str) -> Option<ManifestRecord> {
        let found = self
            .tags
            .entries
            .get(&(image.clone(), tag.to_owned()))
            .and_then(|digest| self.manifests.get(&(image.clone(), digest)));
        self.tags.count(found.is_some());
        found
    }

    pub(crate) fn offer_tag(
        &self,
        generation: u64,
        image: &ImageRef,
        tag: &str,
        manifest: &ManifestRecord,
    ) {
        let current = self.lock();
        if *current != generation {
            return;
        }
        self.tags
            .insert((image.clone(), tag.to_owned()), manifest.digest.clone());
        self.manifests
            .insert((image.clone(), manifest.digest.clone()), manifest.clone());
    }

    /// The IAM policy of a resource (by its policy name).
    pub(crate) fn policy(&self, resource: &str) -> Option<Policy> {
        self.policies.get(&resource.to_owned())
    }

    pub(crate) fn offer_policy(&self, generation: u64, resource: &str, policy: &Policy) {
        let current = self.lock();
        if *current != generation {
            return;
        }
        self.policies.insert(resource.to_owned(), policy.clone());
    }

    /// A policy was written or deleted.
    pub(crate) fn forget_policy(&self, resource: &str) {
        let mut current = self.lock();
        *current += 1;
        self.policies.entries.remove(resource);
    }

    /// Where a file of a remote Python repository comes from.
    pub(crate) fn remote_file(&self, key: &RemoteFileKey) -> Option<RemoteFileRecord> {
        self.remote_files.get(key)
    }

    pub(crate) fn offer_remote_file(
        &self,
        generation: u64,
        key: RemoteFileKey,
        record: &RemoteFileRecord,
    ) {
        let current = self.lock();
        if *current != generation {
            return;
        }
        self.remote_files.insert(key, record.clone());
    }

    /// The records of these remote files changed.
    pub(crate) fn forget_remote_files(&self, keys: impl IntoIterator<Item = RemoteFileKey>) {
        let mut current = self.lock();
        *current += 1;
        for key in keys {
            self.remote_files.entries.remove(&key);
        }
    }

    /// A repository changed or went away, with everything in it.
    pub(crate) fn forget_repository(&self, project: &str, id: &str) {
        let mut current = self.lock();
        *current += 1;
        self.repositories
            .entries
            .remove(&(project.to_owned(), id.to_owned()));
        self.tags
            .entries
            .retain(|(image, _), _| !(image.project == project && image.repository == id));
        self.manifests
            .entries
            .retain(|(image, _), _| !(image.project == project && image.repository == id));
        self.remote_files
            .entries
            .retain(|(p, r, _, _), _| !(p == project && r == id));
    }

    /// A tag moved or was deleted. The manifest it named stays: the bytes
    /// of a digest never change while the manifest exists.
    pub(crate) fn forget_tag(&self, image: &ImageRef, tag: &str) {
        let mut current = self.lock();
        *current += 1;
        self.tags.entries.remove(&(image.clone(), tag.to_owned()));
    }

    /// A manifest was deleted, and with it the tags naming it.
    pub(crate) fn forget_manifest(&self, image: &ImageRef, digest: &Digest) {
        let mut current = self.lock();
        *current += 1;
        self.manifests
            .entries
            .remove(&(image.clone(), digest.clone()));
        self.tags
            .entries
            .retain(|(tagged, _), named| !(tagged == image && named == digest));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageRef {
        ImageRef {
            project: "p".into(),
            repository: "r".into(),
            image: "app".into(),
        }
    }

    fn manifest(n: usize) -> ManifestRecord {
        ManifestRecord {
            digest: format!("sha256:{n:064x}").parse().unwrap(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            artifact_type: None,
            subject: None,
            annotations: None,
            content: vec![b'x'; 1000],
        }
    }

    #[test]
    fn filling_past_capacity_keeps_the_recently_read_entries() {
        // Room for about 100 tags of 1 KB.
        let cache = ReadCache::with_capacity(Capacity {
            manifests: 120_000,
            tags: 120_000,
            repositories: 120_000,
            other: 120_000,
        });
        let image = image();
        let hot: Vec<String> = (0..20).map(|i| format!("hot{i}")).collect();
        for tag in &hot {
            cache.offer_tag(cache.generation(), &image, tag, &manifest(0));
        }
        // Ten times the capacity of other tags, each read once, while the hot
        // ones keep being read.
        for i in 0..1000 {
            let tag = format!("cold{i}");
            assert!(cache.manifest_by_tag(&image, &tag).is_none());
            cache.offer_tag(cache.generation(), &image, &tag, &manifest(i));
            for tag in &hot {
                cache.manifest_by_tag(&image, tag);
            }
        }
        let stats = &cache.stats()[1];
        assert!(stats.entries > 50, "the map was emptied: {stats:?}");
        assert!(stats.bytes <= 120_000, "{stats:?}");
        for tag in &hot {
            assert!(
                cache.manifest_by_tag(&image, tag).is_some(),
                "{tag} was evicted although read all along"
            );
        }
        let stats = &cache.stats()[1];
        assert_eq!(stats.misses, 1000);
        assert!(stats.hits >= 20 * 1000, "{stats:?}");
    }

    #[test]
    fn more_tags_than_the_old_limit_do_not_empty_the_cache() {
        // The cache used to clear a map on reaching 8,192 entries.
        let cache = ReadCache::default();
        let image = image();
        for i in 0..10_000 {
            cache.offer_tag(cache.generation(), &image, &format!("t{i}"), &manifest(i));
        }
        let found = (0..10_000)
            .filter(|i| cache.manifest_by_tag(&image, &format!("t{i}")).is_some())
            .count();
        assert_eq!(found, 10_000);
    }

    #[test]
    fn tags_naming_one_manifest_keep_it_once() {
        // 100,000 tags of one 1.5 KiB manifest: as many copies of it would
        // need about 280 MiB.
        let cache = ReadCache::default();
        let image = image();
        let mut shared = manifest(1);
        shared.content = vec![b'x'; 1500];
        for i in 0..100_000 {
            cache.offer_tag(cache.generation(), &image, &format!("t{i:06}"), &shared);
        }
        let found = (0..100_000)
            .filter(|i| cache.manifest_by_tag(&image, &format!("t{i:06}")).is_some())
            .count();
        assert_eq!(found, 100_000);
        let manifests = cache.stats().into_iter().find(|s| s.cache == "manifest");
        assert_eq!(manifests.map(|s| s.entries), Some(1));
    }

    #[test]
    fn a_write_to_one_repository_forgets_only_its_entries() {
        let cache = ReadCache::default();
        let ours = image();
        let other_repository = ImageRef {
            repository: "other".into(),
            ..image()
        };
        let other_image = ImageRef {
            image: "db".into(),
            ..image()
        };
        let repo = Repository {
            name: "projects/p/repositories/r".into(),
            format: entrepot_domain::Format::Docker,
            mode: entrepot_domain::Mode::StandardRepository,
            description: String::new(),
            remote_repository_config: None,
            virtual_repository_config: None,
            create_time: String::new(),
            update_time: String::new(),
        };
        for image in [&ours, &other_repository, &other_image] {
            for tag in ["1.0", "2.0"] {
                cache.offer_tag(cache.generation(), image, tag, &manifest(1));
            }
            cache.offer_repository(cache.generation(), &repo, "p", &image.repository);
        }
        let key = |r: &str| {
            (
                "p".to_owned(),
                r.to_owned(),
                "ab".to_owned(),
                "f.whl".to_owned(),
            )
        };
        let file = RemoteFileRecord {
            name: "f".into(),
            sha256: "ab".into(),
            filename: "f.whl".into(),
            url: "http://127.0.0.1/f.whl".into(),
            metadata_sha256: None,
        };
        cache.offer_remote_file(cache.generation(), key("r"), &file);
        cache.offer_remote_file(cache.generation(), key("other"), &file);

        // A tag moves: that tag only.
        cache.forget_tag(&ours, "1.0");
        assert!(cache.manifest_by_tag(&ours, "1.0").is_none());
        assert!(cache.manifest_by_tag(&ours, "2.0").is_some());
        assert!(cache.manifest_by_tag(&other_image, "1.0").is_some());

        // A manifest goes: its tags in that image only.
        cache.forget_manifest(&other_image, &manifest(1).digest);
        assert!(cache.manifest_by_tag(&other_image, "2.0").is_none());
        assert!(cache.manifest_by_tag(&ours, "2.0").is_some());
        assert!(cache.manifest_by_tag(&other_repository, "2.0").is_some());
        cache.offer_tag(cache.generation(), &other_image, "2.0", &manifest(1));

        // A repository changes: everything in it, nothing elsewhere.
        cache.forget_repository("p", "r");
        assert!(cache.repository("p", "r").is_none());
        assert!(cache.manifest_by_tag(&ours, "2.0").is_none());
        assert!(cache.manifest_by_tag(&other_image, "2.0").is_none());
        assert!(cache.remote_file(&key("r")).is_none());
        assert!(cache.repository("p", "other").is_some());
        assert!(cache.manifest_by_tag(&other_repository, "1.0").is_some());
        assert!(cache.manifest_by_tag(&other_repository, "2.0").is_some());
        assert!(cache.remote_file(&key("other")).is_some());
        // A policy write leaves the other maps alone.
        cache.forget_policy("projects/p/repositories/other");
        assert!(cache.manifest_by_tag(&other_repository, "1.0").is_some());
        assert!(cache.repository("p", "other").is_some());
    }

    #[test]
    fn an_offer_read_before_an_invalidation_is_not_kept() {
        let cache = ReadCache::default();
        let image = image();
        let before = cache.generation();
        cache.forget_tag(&image, "1.0");
        cache.offer_tag(before, &image, "1.0", &manifest(1));
        assert!(cache.manifest_by_tag(&image, "1.0").is_none());
        cache.offer_tag(cache.generation(), &image, "1.0", &manifest(1));
        assert!(cache.manifest_by_tag(&image, "1.0").is_some());
        cache.forget_repository("p", "r");
        assert!(cache.manifest_by_tag(&image, "1.0").is_none());
    }
}
