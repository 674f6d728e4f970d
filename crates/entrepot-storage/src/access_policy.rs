//! Storage of the organisation's registry access policy: the policy, its etag
//! and the time of the last change.

use async_trait::async_trait;
use entrepot_domain::access_policy::AccessPolicy;

use crate::metadata::StoreError;

/// The stored policy with its concurrency token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccessPolicy {
    /// The policy.
    pub policy: AccessPolicy,
    /// Changes with every write; a writer names the etag it read.
    pub etag: String,
    /// RFC 3339 time of the last change.
    pub update_time: String,
}

/// Where the registry access policy lives.
#[async_trait]
pub trait AccessPolicyStore: Send + Sync + 'static {
    /// The stored policy; `None` if it was never set.
    async fn get_access_policy(&self) -> Result<Option<StoredAccessPolicy>, StoreError>;

    /// Store `policy` under `new_etag` if the stored etag is `expected_etag`
    /// (`None`: only if no policy was ever stored). Compare and swap in one
    /// statement; false if the expectation did not hold.
    async fn set_access_policy(
        &self,
        policy: &AccessPolicy,
        new_etag: &str,
        expected_etag: Option<&str>,
    ) -> Result<bool, StoreError>;
}
