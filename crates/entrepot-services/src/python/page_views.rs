//! Project pages of remote repositories as served, kept in memory.
//!
//! Building a served page means reading the stored record of the page, joining it
//! with what the cache knows of each file (size, extracted metadata) and
//! rendering it: tens of milliseconds for a project with thousands of files.
//! A view is built once per upstream fetch and reused until its page leaves
//! the freshness window or a file of its project is cached.
//!
//! A view built while a file of its project was being committed must not
//! outlive that commit: every invalidation bumps a generation, and a view is
//! only kept if no invalidation happened since its build started (the same
//! rule as the storage crate's read cache). Views are per process; another
//! node's commits drop the repository's views through its change notices.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use entrepot_domain::RepositoryName;

use super::index::ServedPage;

/// Bytes of upstream page content kept in views before they are all dropped
/// and rebuilt on demand.
const MAX_VIEW_BYTES: usize = 64 * 1024 * 1024;

/// `(project id, repository id, normalised project name)`.
type ViewKey = (RepositoryName, String);

/// A served page and the upstream fetch it was built from.
pub(super) struct PageView {
    /// The index it was read from: a repository re-created or re-pointed under
    /// the same name must not be answered with another upstream's page.
    pub index_url: String,
    /// When the upstream page was fetched (unix seconds).
    pub fetched_at: i64,
    /// The page, rendered lazily per form.
    pub page: Arc<ServedPage>,
    /// Size of the upstream content it was built from (for the memory bound).
    pub weight: usize,
}

#[derive(Default)]
struct Inner {
    generation: u64,
    bytes: usize,
    views: HashMap<ViewKey, Arc<PageView>>,
}

/// The views of one process; see the module documentation.
#[derive(Default)]
pub(super) struct PageViews {
    inner: Mutex<Inner>,
}

fn key(repo: &RepositoryName, name: &str) -> ViewKey {
    (repo.clone(), name.to_owned())
}

impl PageViews {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map stays consistent whatever panicked while holding the lock.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The generation to pass to `offer` once a view is built.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The view of a project's page, if one is kept.
    pub fn get(&self, repo: &RepositoryName, name: &str) -> Option<Arc<PageView>> {
        self.lock().views.get(&key(repo, name)).cloned()
    }

    /// Keep a view built from what was read after `generation` was taken,
    /// unless something was invalidated since.
    pub fn offer(&self, generation: u64, repo: &RepositoryName, name: &str, view: Arc<PageView>) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.bytes + view.weight > MAX_VIEW_BYTES {
            inner.views.clear();
            inner.bytes = 0;
        }
        inner.bytes += view.weight;
        if let Some(old) = inner.views.insert(key(repo, name), view) {
            inner.bytes -= old.weight;
        }
    }

    /// Forget the views of every project of `repo` (of every repository
    /// with `None`): files were cached by another server.
    pub fn invalidate_repository(&self, repo: Option<&RepositoryName>) {
        let mut inner = self.lock();
        inner.generation += 1;
        let Inner { bytes, views, .. } = &mut *inner;
        views.retain(|(r, _), view| {
            let keep = repo.is_some_and(|repo| r != repo);
            if !keep {
                *bytes -= view.weight;
            }
            keep
        });
    }

    /// Forget the view of a project (a file of it was cached, or its page
    /// was fetched again).
    pub fn invalidate(&self, repo: &RepositoryName, name: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        if let Some(old) = inner.views.remove(&key(repo, name)) {
            inner.bytes -= old.weight;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::index::ProjectPage;

    fn repo() -> RepositoryName {
        "projects/default/repositories/pypi".parse().unwrap()
    }

    fn view(weight: usize) -> Arc<PageView> {
        Arc::new(PageView {
            index_url: "https://pypi.org/simple/".into(),
            fetched_at: 1,
            page: Arc::new(ServedPage::new(ProjectPage::default())),
            weight,
        })
    }

    #[test]
    fn a_view_offered_after_an_invalidation_is_not_kept() {
        let views = PageViews::default();
        let before = views.generation();
        views.invalidate(&repo(), "other");
        views.offer(before, &repo(), "requests", view(10));
        assert!(views.get(&repo(), "requests").is_none());

        views.offer(views.generation(), &repo(), "requests", view(10));
        assert!(views.get(&repo(), "requests").is_some());
        views.invalidate(&repo(), "requests");
        assert!(views.get(&repo(), "requests").is_none());
    }

    #[test]
    fn views_are_bounded_by_their_weight() {
        let views = PageViews::default();
        views.offer(views.generation(), &repo(), "a", view(MAX_VIEW_BYTES / 2));
        views.offer(views.generation(), &repo(), "b", view(MAX_VIEW_BYTES / 2));
        assert!(views.get(&repo(), "a").is_some());
        views.offer(views.generation(), &repo(), "c", view(1));
        assert!(views.get(&repo(), "a").is_none());
        assert!(views.get(&repo(), "c").is_some());
        // Replacing a view does not count it twice.
        views.offer(views.generation(), &repo(), "c", view(1));
        assert_eq!(views.lock().bytes, 1);
    }
}
