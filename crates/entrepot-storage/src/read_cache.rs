//! An in-process cache of the lookups every request starts with: the IAM
//! policies on the way from a resource up to the organisation, a repository by
//! name, and what is pulled by name: a manifest by tag, the origin of a file of
//! a remote Python repository.
//!
//! The store that owns it invalidates entries on each write that could change
//! them, so it is only correct while this process is the database's only
//! writer (the embedded SQLite deployment). A store shared by several nodes
//! must not use it.
//!
//! A read that misses goes to the database, then offers its result with the
//! generation it saw before reading. Every invalidation bumps the generation,
//! so a result read before a concurrent write is never cached after it.

use std::collections::HashMap;
use std::sync::Mutex;

use entrepot_domain::iam::Policy;
use entrepot_domain::{Digest, Repository};

use crate::metadata::{ImageRef, ManifestRecord};
use crate::python::RemoteFileRecord;

/// Entries kept per map before it is emptied and refilled from reads.
const MAX_ENTRIES: usize = 8192;

type TagKey = (ImageRef, String);

/// `(project, repository, sha256, filename)`.
pub(crate) type RemoteFileKey = (String, String, String, String);

#[derive(Default)]
struct Inner {
    generation: u64,
    repositories: HashMap<(String, String), Repository>,
    tags: HashMap<TagKey, ManifestRecord>,
    policies: HashMap<String, Policy>,
    remote_files: HashMap<RemoteFileKey, RemoteFileRecord>,
}

/// The cache; see the module documentation.
#[derive(Default)]
pub(crate) struct ReadCache {
    inner: Mutex<Inner>,
}

impl ReadCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The maps stay consistent whatever panicked while holding the lock.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The generation to pass to `offer_*` after reading the database.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    pub(crate) fn repository(&self, project: &str, id: &str) -> Option<Repository> {
        self.lock()
            .repositories
            .get(&(project.to_owned(), id.to_owned()))
            .cloned()
    }

    pub(crate) fn offer_repository(
        &self,
        generation: u64,
        repo: &Repository,
        project: &str,
        id: &str,
    ) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.repositories.len() >= MAX_ENTRIES {
            inner.repositories.clear();
        }
        inner
            .repositories
            .insert((project.to_owned(), id.to_owned()), repo.clone());
    }

    pub(crate) fn manifest_by_tag(&self, image: &ImageRef, tag: &str) -> Option<ManifestRecord> {
        self.lock()
            .tags
            .get(&(image.clone(), tag.to_owned()))
            .cloned()
    }

    pub(crate) fn offer_tag(
        &self,
        generation: u64,
        image: &ImageRef,
        tag: &str,
        manifest: &ManifestRecord,
    ) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.tags.len() >= MAX_ENTRIES {
            inner.tags.clear();
        }
        inner
            .tags
            .insert((image.clone(), tag.to_owned()), manifest.clone());
    }

    /// The IAM policy of a resource (by its policy name).
    pub(crate) fn policy(&self, resource: &str) -> Option<Policy> {
        self.lock().policies.get(resource).cloned()
    }

    pub(crate) fn offer_policy(&self, generation: u64, resource: &str, policy: &Policy) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.policies.len() >= MAX_ENTRIES {
            inner.policies.clear();
        }
        inner.policies.insert(resource.to_owned(), policy.clone());
    }

    /// A policy was written or deleted.
    pub(crate) fn forget_policy(&self, resource: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.policies.remove(resource);
    }

    /// Where a file of a remote Python repository comes from.
    pub(crate) fn remote_file(&self, key: &RemoteFileKey) -> Option<RemoteFileRecord> {
        self.lock().remote_files.get(key).cloned()
    }

    pub(crate) fn offer_remote_file(
        &self,
        generation: u64,
        key: RemoteFileKey,
        record: &RemoteFileRecord,
    ) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.remote_files.len() >= MAX_ENTRIES {
            inner.remote_files.clear();
        }
        inner.remote_files.insert(key, record.clone());
    }

    /// The records of these remote files changed.
    pub(crate) fn forget_remote_files(&self, keys: impl IntoIterator<Item = RemoteFileKey>) {
        let mut inner = self.lock();
        inner.generation += 1;
        for key in keys {
            inner.remote_files.remove(&key);
        }
    }

    /// A repository changed or went away, with everything in it.
    pub(crate) fn forget_repository(&self, project: &str, id: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner
            .repositories
            .remove(&(project.to_owned(), id.to_owned()));
        inner
            .tags
            .retain(|(image, _), _| !(image.project == project && image.repository == id));
        inner
            .remote_files
            .retain(|(p, r, _, _), _| !(p == project && r == id));
    }

    /// A tag moved or was deleted.
    pub(crate) fn forget_tag(&self, image: &ImageRef, tag: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.tags.remove(&(image.clone(), tag.to_owned()));
    }

    /// A manifest was deleted, and with it the tags naming it.
    pub(crate) fn forget_manifest(&self, image: &ImageRef, digest: &Digest) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner
            .tags
            .retain(|(tagged, _), manifest| !(tagged == image && &manifest.digest == digest));
    }
}
