//! How a remote repository's cache answered a request, for the `X-Cache`
//! header of every remote answer.

/// How a remote repository's cache answered, as `X-Cache` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// From the cache, without asking the upstream.
    Hit,
    /// Fetched from the upstream just now.
    Miss,
    /// From the cache because the upstream failed.
    Stale,
    /// From the cache, after the upstream confirmed it current.
    Revalidated,
}

impl CacheStatus {
    /// The header value: `HIT`, `MISS`, `STALE` or `REVALIDATED`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
            CacheStatus::Revalidated => "REVALIDATED",
        }
    }
}
