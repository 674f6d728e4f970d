//! What a remote repository's cache did to answer a page, for the
//! `X-Cache` and `Age` headers the front-end writes.

use crate::remote::CacheStatus;

/// How the cache answered one request for an index page or the project
/// list of a remote repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheReport {
    /// `HIT`, `MISS`, `STALE` or `REVALIDATED`, as on remote OCI answers.
    pub status: CacheStatus,
    /// Seconds since the upstream last sent the page, for a stale answer.
    pub age_secs: Option<u64>,
}

impl CacheReport {
    /// An answer of `status` that is not stale.
    pub fn fresh(status: CacheStatus) -> Self {
        Self {
            status,
            age_secs: None,
        }
    }

    /// A stale answer of a page fetched at `fetched_at` (unix seconds).
    pub fn stale(fetched_at: i64, now: i64) -> Self {
        Self {
            status: CacheStatus::Stale,
            age_secs: Some(u64::try_from(now.saturating_sub(fetched_at)).unwrap_or(0)),
        }
    }
}

/// A page or list, and how a remote repository's cache answered for it
/// (`None` for standard and virtual repositories).
#[derive(Debug, Clone)]
pub struct Answered<T> {
    /// What is served.
    pub value: T,
    /// How the cache answered, for a remote repository.
    pub cache: Option<CacheReport>,
}
