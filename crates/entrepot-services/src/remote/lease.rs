//! Single flight across servers: a fill of one content key (the asking
//! repository and the digest) takes a lease in the shared database first.
//!
//! The holder downloads from the upstream as a lone server does, renews the
//! lease while it runs, and finishes it with the blob's name once the
//! content is committed and linked. A server that finds the lease held
//! waits, asking again every [`WAIT_POLL`]; when it finds the lease
//! finished it reads the committed blob from the shared blob store instead
//! of the upstream (the fill verifies it again before anything is served
//! whole); when it finds the lease expired (the holder died mid-download)
//! it takes it over and downloads itself. A partial download is never
//! visible: only the holder's spool holds it, and only a verified commit
//! finishes the lease.
//!
//! The fill engine ([`super::fill`]) does not know of any of this: a
//! leased fill's "upstream" is whatever [`FillLeases::leased`] opens.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use entrepot_domain::{ContentDigest, Digest};
use entrepot_storage::{BlobStore, LeaseGrant, LeaseStore};
use futures::FutureExt as _;

use super::fill::{AfterCommit, Committed, FillError, OpenUpstream, UpstreamBody};

/// How long a fill's lease lasts unless renewed: how long the servers
/// waiting on a holder that died wait before one of them takes over.
pub const FILL_LEASE_TTL: Duration = Duration::from_secs(10);

/// How often a waiting server asks whether the lease was finished or
/// expired.
pub const WAIT_POLL: Duration = Duration::from_millis(100);

/// How long a finished lease names the committed blob to late askers; after
/// that they find the content linked, or fetch it afresh.
const OUTCOME_KEPT: Duration = Duration::from_secs(300);

/// Opens a fill's download, once.
pub type OpenFill = Box<dyn FnOnce() -> OpenUpstream + Send>;

/// Runs once a fill committed its content.
pub type AfterFill = Box<dyn FnOnce(Committed) -> AfterCommit + Send>;

/// The fill leases of one server.
pub struct FillLeases {
    store: Arc<dyn LeaseStore>,
    blobs: Arc<dyn BlobStore>,
    node: String,
    ttl: Duration,
}

impl FillLeases {
    /// Leases in `store` held as `node`, over the blob store `blobs` that
    /// every server shares.
    pub fn new(store: Arc<dyn LeaseStore>, blobs: Arc<dyn BlobStore>, node: &str) -> Self {
        Self {
            store,
            blobs,
            node: node.to_owned(),
            ttl: FILL_LEASE_TTL,
        }
    }

    /// The same leases lasting `ttl` unless renewed.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// `open` and `after_commit` of the fill of `digest` for `scope`, made
    /// to take the fill's lease (see the module documentation): the opened
    /// body is the upstream's when this server holds the lease, or the
    /// committed blob's when another server finished it.
    pub fn leased(
        &self,
        scope: &str,
        digest: &ContentDigest,
        open: impl FnOnce() -> OpenUpstream + Send + 'static,
        after_commit: impl FnOnce(Committed) -> AfterCommit + Send + 'static,
    ) -> (OpenFill, AfterFill) {
        let hold = Arc::new(Hold {
            store: self.store.clone(),
            blobs: self.blobs.clone(),
            name: format!("fill {scope} {digest}"),
            node: self.node.clone(),
            ttl: self.ttl,
            heartbeat: Mutex::new(None),
        });
        let opening = hold.clone();
        let open: OpenFill = Box::new(move || async move { opening.take_turn(open).await }.boxed());
        let after: AfterFill = Box::new(move |committed: Committed| {
            let outcome = committed.digest.to_string();
            let linked = after_commit(committed);
            async move {
                linked.await;
                hold.finish(&outcome).await;
            }
            .boxed()
        });
        (open, after)
    }
}

/// One fill's lease, shared by its opening and its commit; released on drop
/// if held and not finished (the fill failed).
struct Hold {
    store: Arc<dyn LeaseStore>,
    blobs: Arc<dyn BlobStore>,
    name: String,
    node: String,
    ttl: Duration,
    /// Renews the lease while this server holds it.
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Hold {
    fn heartbeat(&self) -> std::sync::MutexGuard<'_, Option<tokio::task::JoinHandle<()>>> {
        self.heartbeat.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait for this server's turn: open the upstream once the lease is
    /// granted, or the committed blob once another server finished it.
    async fn take_turn(
        &self,
        open: impl FnOnce() -> OpenUpstream,
    ) -> Result<UpstreamBody, FillError> {
        let mut waited_on = None;
        loop {
            match self.store.acquire(&self.name, &self.node, self.ttl).await {
                Ok(LeaseGrant::Granted) => {
                    if let Some(holder) = waited_on {
                        tracing::warn!(lease = %self.name, %holder, "the fill's holder let its lease expire; taking the fill over");
                    }
                    self.start_heartbeat();
                    return open().await;
                }
                Ok(LeaseGrant::Done { outcome }) => {
                    if let Some(body) = self.committed(&outcome).await {
                        return Ok(body);
                    }
                    // Gone again since (evicted): fetch it, alone.
                    return open().await;
                }
                Ok(LeaseGrant::Held { holder }) => {
                    if waited_on.is_none() {
                        tracing::debug!(lease = %self.name, %holder, "another server is filling this content; waiting for its commit");
                    }
                    waited_on = Some(holder);
                    tokio::time::sleep(WAIT_POLL).await;
                }
                Err(e) => {
                    // Better a second download than none.
                    tracing::warn!(lease = %self.name, error = %e, "cannot take the fill's lease; filling without it");
                    return open().await;
                }
            }
        }
    }

    /// The blob another server committed under `outcome`, as a fill body.
    async fn committed(&self, outcome: &str) -> Option<UpstreamBody> {
        let digest: Digest = outcome.parse().ok()?;
        let size = self.blobs.stat(&digest).await.ok()??;
        let body = self.blobs.read(&digest, None).await.ok()?;
        Some(UpstreamBody {
            host: "the shared blob store".into(),
            length: Some(size),
            body,
        })
    }

    fn start_heartbeat(&self) {
        let (store, name, node, ttl) = (
            self.store.clone(),
            self.name.clone(),
            self.node.clone(),
            self.ttl,
        );
        let beat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                match store.renew(&name, &node, ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(lease = %name, "a fill's lease was lost while it ran; another server may fetch the content too");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(lease = %name, error = %e, "could not renew a fill's lease")
                    }
                }
            }
        });
        *self.heartbeat() = Some(beat);
    }

    /// The content is committed and linked as `outcome`: tell the servers
    /// waiting on this lease.
    async fn finish(&self, outcome: &str) {
        let Some(beat) = self.heartbeat().take() else {
            return; // Not this server's lease: it read another's commit.
        };
        beat.abort();
        if let Err(e) = self
            .store
            .finish(&self.name, &self.node, outcome, OUTCOME_KEPT)
            .await
        {
            tracing::warn!(lease = %self.name, error = %e, "could not finish a fill's lease; the others take it over when it expires");
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let Some(beat) = self.heartbeat().take() else {
            return;
        };
        // Held and never finished: the fill failed. The next asker fetches.
        beat.abort();
        let (store, name, node) = (self.store.clone(), self.name.clone(), self.node.clone());
        tokio::spawn(async move {
            if let Err(e) = store.release(&name, &node).await {
                tracing::warn!(lease = %name, error = %e, "could not release a failed fill's lease; it expires by itself");
            }
        });
    }
}
