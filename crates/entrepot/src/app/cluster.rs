//! What a server on a shared PostgreSQL database takes part in: its node
//! id, the fill and job leases held under it, and the change notices that
//! drop its stale caches.

use std::sync::Arc;

use entrepot_services::cluster::jobs::JobLeases;
use entrepot_services::cluster::node_id;
use entrepot_services::remote::FillLeases;
use entrepot_storage::{BlobStore, LeaseStore, PostgresMetadataStore};

/// One server among those sharing a database.
pub(super) struct Cluster {
    /// The shared database.
    pub store: Arc<PostgresMetadataStore>,
    /// This server's name as a lease holder.
    pub node: String,
    blobs: Arc<dyn BlobStore>,
}

impl Cluster {
    /// This server's part on `store`, whose servers share `blobs` too.
    pub fn new(store: Arc<PostgresMetadataStore>, blobs: &Arc<dyn BlobStore>) -> Self {
        let node = node_id();
        tracing::info!(node = %node, "sharing the database with any other server on it: fills and background jobs take leases, caches follow change notices");
        Self {
            store,
            node,
            blobs: blobs.clone(),
        }
    }

    fn leases(&self) -> Arc<dyn LeaseStore> {
        self.store.clone()
    }

    /// Leases that fill each content key once across the servers.
    pub fn fill_leases(&self) -> Arc<FillLeases> {
        Arc::new(FillLeases::new(
            self.leases(),
            self.blobs.clone(),
            &self.node,
        ))
    }

    /// Leases that run each background job on one server at a time.
    pub fn job_leases(&self) -> JobLeases {
        JobLeases::new(self.leases(), &self.node)
    }
}
