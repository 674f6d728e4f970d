//! Storage of the upstream hosts the registry access policy blocked (or
//! would have blocked, in dry-run mode), per repository that needed them.

use async_trait::async_trait;

use crate::metadata::StoreError;

/// The most rows kept: past it, the rows seen least recently go.
pub const MAX_HOST_NEED_ROWS: i64 = 1_000;

/// One host one repository needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNeedRecord {
    /// `host[:port]` as the policy sees it.
    pub host: String,
    /// The repository (`projects/P/repositories/R`), or `""` when no
    /// repository asked (a check at create time).
    pub repository: String,
    /// Hops refused.
    pub blocked: u64,
    /// Hops let through by dry-run mode.
    pub would_block: u64,
    /// First seen (unix seconds).
    pub first_time: i64,
    /// Last seen (unix seconds).
    pub last_time: i64,
}

/// Where host needs are counted.
#[async_trait]
pub trait HostNeedStore: Send + Sync + 'static {
    /// Add `blocked` and `would_block` hops of `host` for `repository` at
    /// `now`; keep at most [`MAX_HOST_NEED_ROWS`] rows.
    async fn count_host_need(
        &self,
        host: &str,
        repository: &str,
        blocked: u64,
        would_block: u64,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Every row, most recently seen first.
    async fn host_needs(&self) -> Result<Vec<HostNeedRecord>, StoreError>;
}
