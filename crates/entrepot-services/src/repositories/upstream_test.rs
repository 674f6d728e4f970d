//! `testUpstream` and `refresh`: each format's remote engine checks a
//! repository's upstream and revalidates its cached documents; the
//! repository service picks the engine by the repository's format.

use async_trait::async_trait;
use entrepot_domain::Repository;

use super::RepositoryError;
use crate::oci::{RegistryError, RemoteOci};
use crate::python::{PythonError, RemotePython};
use crate::remote::{RefreshReport, UpstreamFailure, UpstreamReport};

/// Checks that a remote repository's upstream answers and accepts its
/// credentials, and asks it about cached documents on demand.
#[async_trait]
pub trait UpstreamTester: Send + Sync + 'static {
    /// Probe the upstream of `repo` (a remote repository of this tester's
    /// format).
    async fn test_upstream(&self, repo: &Repository) -> Result<UpstreamReport, UpstreamFailure>;

    /// Revalidate `what` (a format's name of cached documents: `IMAGE:TAG`,
    /// `IMAGE`, a Python project) with the upstream of `repo` now.
    async fn refresh(
        &self,
        repo: &Repository,
        what: &str,
    ) -> Result<RefreshReport, RepositoryError>;
}

#[async_trait]
impl UpstreamTester for RemoteOci {
    async fn test_upstream(&self, repo: &Repository) -> Result<UpstreamReport, UpstreamFailure> {
        RemoteOci::test_upstream(self, repo).await
    }

    async fn refresh(
        &self,
        repo: &Repository,
        what: &str,
    ) -> Result<RefreshReport, RepositoryError> {
        RemoteOci::refresh(self, repo, what)
            .await
            .map_err(|e| match e {
                RegistryError::Remote(f) => RepositoryError::Upstream(f),
                RegistryError::Store(e) => RepositoryError::Store(e),
                e => RepositoryError::Invalid(e.to_string()),
            })
    }
}

#[async_trait]
impl UpstreamTester for RemotePython {
    async fn test_upstream(&self, repo: &Repository) -> Result<UpstreamReport, UpstreamFailure> {
        RemotePython::test_upstream(self, repo).await
    }

    async fn refresh(
        &self,
        repo: &Repository,
        what: &str,
    ) -> Result<RefreshReport, RepositoryError> {
        RemotePython::refresh(self, repo, what)
            .await
            .map_err(|e| match e {
                PythonError::Remote(f) => RepositoryError::Upstream(f),
                PythonError::Access(a) => RepositoryError::Auth(a),
                PythonError::Repository(e) => e,
                e => RepositoryError::Invalid(e.to_string()),
            })
    }
}
