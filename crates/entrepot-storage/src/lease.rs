//! Leases: one holder at a time does a piece of work, among the servers
//! that share one database (a fill of one content key from its upstream, a
//! run of one background job).
//!
//! A lease is granted until it expires; its holder renews it while it works,
//! so a holder that dies loses it after one time-to-live and another takes
//! over. When the work is done the holder either releases the lease (the
//! next asker is granted it) or finishes it with an outcome that askers are
//! told until it expires (a fill's committed blob, which the others then
//! serve instead of fetching again).
//!
//! [`crate::PostgresMetadataStore`] keeps leases in its database;
//! [`MemoryLeases`] keeps them in the process, for a single server (SQLite)
//! and for tests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::metadata::StoreError;

/// What asking for a lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseGrant {
    /// The asker holds the lease for its time-to-live (renew it to keep it).
    Granted,
    /// Another holder has it, and has not let it expire.
    Held {
        /// Who holds it.
        holder: String,
    },
    /// A holder finished the work and left this outcome.
    Done {
        /// What the holder left (its meaning is the caller's).
        outcome: String,
    },
}

/// Leases by name; see the module documentation. Holders are names the
/// callers choose (a server's node id); a holder asking again for a lease
/// it holds is told it is held (by itself).
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Grant lease `name` to `holder` for `ttl` if nobody holds it or its
    /// last holder let it expire; else say who holds it or what outcome
    /// was left.
    async fn acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseGrant, StoreError>;

    /// Extend `holder`'s lease `name` to `ttl` from now; false when the
    /// lease is no longer `holder`'s (another took it over after it
    /// expired) or was finished.
    async fn renew(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// End `holder`'s lease `name` with `outcome`, which askers are told for
    /// `keep`; nothing if the lease is no longer `holder`'s.
    async fn finish(
        &self,
        name: &str,
        holder: &str,
        outcome: &str,
        keep: Duration,
    ) -> Result<(), StoreError>;

    /// Give up `holder`'s lease `name` without an outcome: the next asker
    /// is granted it. Nothing if the lease is no longer `holder`'s.
    async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError>;
}

struct MemoryLease {
    holder: String,
    until: Instant,
    outcome: Option<String>,
}

/// Leases held in this process only: enough when one server is all there
/// is, and the reference the contracts hold the database's leases to.
#[derive(Default)]
pub struct MemoryLeases {
    leases: Mutex<HashMap<String, MemoryLease>>,
}

impl MemoryLeases {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, MemoryLease>> {
        // Each call is one lookup and one write: a panic leaves no half state.
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl LeaseStore for MemoryLeases {
    async fn acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseGrant, StoreError> {
        let now = Instant::now();
        let mut leases = self.lock();
        leases.retain(|_, l| l.until > now);
        if let Some(lease) = leases.get(name) {
            return Ok(match &lease.outcome {
                Some(outcome) => LeaseGrant::Done {
                    outcome: outcome.clone(),
                },
                None => LeaseGrant::Held {
                    holder: lease.holder.clone(),
                },
            });
        }
        leases.insert(
            name.to_owned(),
            MemoryLease {
                holder: holder.to_owned(),
                until: now + ttl,
                outcome: None,
            },
        );
        Ok(LeaseGrant::Granted)
    }

    async fn renew(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut leases = self.lock();
        match leases.get_mut(name) {
            Some(l) if l.holder == holder && l.outcome.is_none() => {
                l.until = Instant::now() + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn finish(
        &self,
        name: &str,
        holder: &str,
        outcome: &str,
        keep: Duration,
    ) -> Result<(), StoreError> {
        if let Some(l) = self.lock().get_mut(name).filter(|l| l.holder == holder) {
            l.outcome = Some(outcome.to_owned());
            l.until = Instant::now() + keep;
        }
        Ok(())
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut leases = self.lock();
        if leases
            .get(name)
            .is_some_and(|l| l.holder == holder && l.outcome.is_none())
        {
            leases.remove(name);
        }
        Ok(())
    }
}

/// The lease contracts on leases of this process.
#[cfg(test)]
mod conformance {
    crate::conformance::lease_suite!(async {
        let leases: crate::conformance::leases::Leases =
            std::sync::Arc::new(super::MemoryLeases::default());
        (leases, ())
    });
}
