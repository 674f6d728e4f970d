//! What the services need from outgoing HTTP, as a trait: the
//! [`UpstreamClient`](crate::UpstreamClient) is the real one; a test can put
//! a scripted one in its place to order a download's steps.

use async_trait::async_trait;
use url::Url;

use crate::client::{UpstreamError, UpstreamRequest};
use crate::credentials::CredentialSource;
use crate::hop::HopDenied;
use crate::response::UpstreamResponse;

/// Sends requests to upstreams.
#[async_trait]
pub trait UpstreamTransport: Send + Sync + 'static {
    /// Whether entrepot may use `url`'s host (the access policy's verdict),
    /// without sending anything: for callers about to serve content that
    /// came from there.
    async fn check_origin(&self, url: &Url) -> Result<(), HopDenied>;

    /// Send `request` with the credentials of `source`, answering auth
    /// challenges and following redirects; the answer is the last hop's.
    /// Fails when a hop is refused, credentials cannot be had or are refused,
    /// or no answer arrives.
    async fn send(
        &self,
        request: &UpstreamRequest,
        source: &dyn CredentialSource,
    ) -> Result<UpstreamResponse, UpstreamError>;
}
