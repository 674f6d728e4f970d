//! Caches that a change committed by another server makes stale, and the
//! follower that drops them as the database announces changes.
//!
//! Each server keeps some state in memory to answer fast: token checks for
//! a second, upstream credentials read from secrets for a minute, the
//! access policy for a second, served Python pages until a file of their
//! repository is cached. A change made through this server drops them at
//! once; one made through another reaches here as a [`Change`] and drops
//! them too, within the time the notice takes (milliseconds).

use std::sync::Arc;

use entrepot_storage::Change;
use tokio::sync::mpsc;

use crate::access_policy::AccessPolicyService;
use crate::iam::IamService;
use crate::oci::RemoteOci;
use crate::python::RemotePython;

/// The caches of one server that other servers' changes make stale.
pub struct StaleCaches {
    iam: Arc<IamService>,
    access_policy: Arc<AccessPolicyService>,
    oci: Arc<RemoteOci>,
    python: Arc<RemotePython>,
}

impl StaleCaches {
    /// The caches of these services.
    pub fn new(
        iam: Arc<IamService>,
        access_policy: Arc<AccessPolicyService>,
        oci: Arc<RemoteOci>,
        python: Arc<RemotePython>,
    ) -> Self {
        Self {
            iam,
            access_policy,
            oci,
            python,
        }
    }

    /// Drop what `change` makes stale.
    pub fn drop_stale(&self, change: &Change) {
        match change {
            Change::Credentials | Change::IamPolicies => self.iam.forget_verified_credentials(),
            Change::Secrets => {
                self.oci.forget_credentials();
                self.python.forget_credentials();
            }
            Change::AccessPolicy => self.access_policy.forget_cached(),
            Change::Repositories => {
                self.oci.forget_credentials();
                self.python.forget_credentials();
                self.python.forget_pages(None);
            }
            Change::PythonFiles(repo) => self.python.forget_pages(Some(repo)),
            Change::Everything => {
                self.iam.forget_verified_credentials();
                self.access_policy.forget_cached();
                self.oci.forget_credentials();
                self.python.forget_credentials();
                self.python.forget_pages(None);
            }
        }
    }

    /// Drop what each change of `changes` makes stale, until the sender
    /// stops.
    pub fn spawn_follower(
        self: Arc<Self>,
        mut changes: mpsc::Receiver<Change>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            while let Some(change) = changes.recv().await {
                tracing::debug!(?change, "dropping caches a committed change made stale");
                self.drop_stale(&change);
            }
        })
    }
}
