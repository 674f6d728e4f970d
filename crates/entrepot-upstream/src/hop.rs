//! The per-hop check every outgoing request passes before it connects.

use async_trait::async_trait;
use url::Url;

/// Why a hop was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HopDenied {
    /// The host that was refused.
    pub host: String,
    /// A message for the user: which host, why, and how an admin allows it.
    pub message: String,
}

/// Decides whether entrepot may contact a URL's host. Called for every hop,
/// before any DNS lookup or connection.
#[async_trait]
pub trait HopCheck: Send + Sync + 'static {
    /// `Ok` if the host may be contacted.
    async fn check(&self, url: &Url) -> Result<(), HopDenied>;
}

/// Allows every host: the behaviour before an access policy is configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAllHops;

#[async_trait]
impl HopCheck for AllowAllHops {
    async fn check(&self, _url: &Url) -> Result<(), HopDenied> {
        Ok(())
    }
}
