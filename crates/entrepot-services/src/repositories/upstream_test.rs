//! `testUpstream`: each format's remote engine checks a repository's
//! upstream; the repository service picks the engine by the repository's
//! format.

use async_trait::async_trait;
use entrepot_domain::Repository;

use crate::oci::RemoteOci;
use crate::python::RemotePython;
use crate::remote::{UpstreamFailure, UpstreamReport};

/// Checks that a remote repository's upstream answers and accepts its
/// credentials.
#[async_trait]
pub trait UpstreamTester: Send + Sync + 'static {
    /// Probe the upstream of `repo` (a remote repository of this tester's
    /// format).
    async fn test_upstream(&self, repo: &Repository) -> Result<UpstreamReport, UpstreamFailure>;
}

#[async_trait]
impl UpstreamTester for RemoteOci {
    async fn test_upstream(&self, repo: &Repository) -> Result<UpstreamReport, UpstreamFailure> {
        RemoteOci::test_upstream(self, repo).await
    }
}

#[async_trait]
impl UpstreamTester for RemotePython {
    async fn test_upstream(&self, repo: &Repository) -> Result<UpstreamReport, UpstreamFailure> {
        RemotePython::test_upstream(self, repo).await
    }
}
