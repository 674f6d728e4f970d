//! The least recently pulled content of a cache, of both kinds in one
//! order: Docker manifests and cached Python files, merged by their last
//! pull time, each kind read a page at a time.

use std::collections::VecDeque;

use entrepot_storage::{
    EvictionCandidate, EvictionScope, EvictionStore, FileCandidate, StoreError,
};

/// Candidates read per query.
const PAGE: u32 = 32;

/// Something eviction may remove.
#[derive(Debug, Clone)]
pub(super) enum Candidate {
    /// A cached manifest, with its tags and the links only it needed.
    Manifest(EvictionCandidate),
    /// A cached Python distribution file.
    File(FileCandidate),
}

/// One kind's page and where the next one starts. Evicted candidates leave
/// the store's order, so the next page starts after the ones left alone.
struct Stream<T> {
    page: VecDeque<T>,
    skipped: u32,
    done: bool,
}

impl<T> Stream<T> {
    fn new() -> Self {
        Self {
            page: VecDeque::new(),
            skipped: 0,
            done: false,
        }
    }
}

/// Both kinds of a scope, least recently pulled first.
pub(super) struct Candidates<'a> {
    store: &'a dyn EvictionStore,
    scope: &'a EvictionScope,
    manifests: Stream<EvictionCandidate>,
    files: Stream<FileCandidate>,
}

impl<'a> Candidates<'a> {
    /// The candidates of `scope` in `store`.
    pub fn new(store: &'a dyn EvictionStore, scope: &'a EvictionScope) -> Self {
        Self {
            store,
            scope,
            manifests: Stream::new(),
            files: Stream::new(),
        }
    }

    /// The least recently pulled candidate not yet handed out, `None` when
    /// there is none left.
    pub async fn next(&mut self) -> Result<Option<Candidate>, StoreError> {
        if self.manifests.page.is_empty() && !self.manifests.done {
            let page = self
                .store
                .eviction_candidates(self.scope, self.manifests.skipped, PAGE)
                .await?;
            self.manifests.done = page.len() < PAGE as usize;
            self.manifests.page.extend(page);
        }
        if self.files.page.is_empty() && !self.files.done {
            let page = self
                .store
                .file_eviction_candidates(self.scope, self.files.skipped, PAGE)
                .await?;
            self.files.done = page.len() < PAGE as usize;
            self.files.page.extend(page);
        }
        let manifest_first = match (self.manifests.page.front(), self.files.page.front()) {
            (None, None) => return Ok(None),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(m), Some(f)) => m.last_pull_ms <= f.last_pull_ms,
        };
        Ok(if manifest_first {
            self.manifests.page.pop_front().map(Candidate::Manifest)
        } else {
            self.files.page.pop_front().map(Candidate::File)
        })
    }

    /// `candidate` (the last one handed out) was left alone: it stays in the
    /// store's order, and the next page of its kind starts after it.
    pub fn left_alone(&mut self, candidate: &Candidate) {
        match candidate {
            Candidate::Manifest(_) => self.manifests.skipped += 1,
            Candidate::File(_) => self.files.skipped += 1,
        }
    }
}
