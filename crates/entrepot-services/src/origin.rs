//! The network address a request came from, for limits keyed by client.
//!
//! The HTTP edge knows the peer address (and which proxies to believe); the
//! services that limit per client (password checks) run deep below it. Rather
//! than thread an address through every authentication call, the edge runs
//! each request inside [`with_client`] and [`current_client`] reads it back.

use std::future::Future;
use std::net::IpAddr;

tokio::task_local! {
    static CLIENT: IpAddr;
}

/// Run `f` as a request from `client`.
pub async fn with_client<F: Future>(client: IpAddr, f: F) -> F::Output {
    CLIENT.scope(client, f).await
}

/// The client address of the request being handled, if the edge set one.
pub fn current_client() -> Option<IpAddr> {
    CLIENT.try_with(|c| *c).ok()
}
