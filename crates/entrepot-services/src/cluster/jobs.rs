//! Background work on one server at a time: a scheduled run (garbage
//! collection, cleanup policies, cache eviction) first takes the job's
//! lease, renews it while it runs and releases it when done. A server that
//! finds the lease held skips its run; the holder's covers it. A holder
//! that dies loses the lease after [`JOB_LEASE_TTL`].

use std::sync::Arc;
use std::time::Duration;

use entrepot_storage::{LeaseGrant, LeaseStore};

/// How long a job's lease lasts unless renewed: how long a job of a dead
/// server keeps the others from running it.
pub const JOB_LEASE_TTL: Duration = Duration::from_secs(30);

/// The job leases of one server.
#[derive(Clone)]
pub struct JobLeases {
    store: Arc<dyn LeaseStore>,
    node: String,
    ttl: Duration,
}

impl std::fmt::Debug for JobLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobLeases")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// The turn of one server at one job: the lease is renewed while this
/// lives and released when it is dropped.
pub struct JobTurn {
    heartbeat: tokio::task::JoinHandle<()>,
    store: Arc<dyn LeaseStore>,
    name: String,
    node: String,
}

impl Drop for JobTurn {
    fn drop(&mut self) {
        self.heartbeat.abort();
        let (store, name, node) = (self.store.clone(), self.name.clone(), self.node.clone());
        tokio::spawn(async move {
            if let Err(e) = store.release(&name, &node).await {
                tracing::warn!(lease = %name, error = %e, "could not release a job's lease; it expires by itself");
            }
        });
    }
}

impl JobLeases {
    /// Leases in `store`, held as `node`.
    pub fn new(store: Arc<dyn LeaseStore>, node: &str) -> Self {
        Self {
            store,
            node: node.to_owned(),
            ttl: JOB_LEASE_TTL,
        }
    }

    /// The same leases lasting `ttl` unless renewed.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// This server's turn at `job`, or `None` when another server runs it
    /// now (or the database cannot say: a run skipped is retried at the
    /// next tick, a run twice at once is what the lease exists to prevent).
    pub async fn turn(&self, job: &str) -> Option<JobTurn> {
        let name = format!("job {job}");
        match self.store.acquire(&name, &self.node, self.ttl).await {
            Ok(LeaseGrant::Granted) => {}
            Ok(LeaseGrant::Held { holder }) => {
                tracing::debug!(job, holder, "another server runs this job now; skipped");
                return None;
            }
            Ok(LeaseGrant::Done { .. }) => return None,
            Err(e) => {
                tracing::warn!(job, error = %e, "cannot take the job's lease; skipped");
                return None;
            }
        }
        let (store, lease, node, ttl) = (
            self.store.clone(),
            name.clone(),
            self.node.clone(),
            self.ttl,
        );
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                match store.renew(&lease, &node, ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(lease = %lease, "a job's lease was lost while it ran (this server stalled past its expiry)");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(lease = %lease, error = %e, "could not renew a job's lease")
                    }
                }
            }
        });
        Some(JobTurn {
            heartbeat,
            store: self.store.clone(),
            name,
            node: self.node.clone(),
        })
    }
}

/// Run `job` now if `leases` (when there are any) give this server its
/// turn; without leases (a single server) it always runs.
pub async fn in_turn<T>(
    leases: Option<&JobLeases>,
    job: &str,
    run: impl std::future::Future<Output = T>,
) -> Option<T> {
    let _turn = match leases {
        Some(leases) => Some(leases.turn(job).await?),
        None => None,
    };
    Some(run.await)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    /// Two servers run the same job on their schedules, as fast as they can:
    /// it never runs on both at once, and each gets turns.
    async fn two_servers_never_run_a_job_at_once(store: Arc<dyn LeaseStore>) {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let servers = ["node-a", "node-b"].map(|node| {
            let leases = JobLeases::new(store.clone(), node);
            let (running, most) = (running.clone(), most.clone());
            tokio::spawn(async move {
                let mut runs = 0;
                let deadline = Instant::now() + Duration::from_secs(20);
                while runs < 5 {
                    assert!(Instant::now() < deadline, "{node} never got five turns");
                    let ran = in_turn(Some(&leases), "gc", async {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await;
                    if ran.is_some() {
                        runs += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        });
        for server in servers {
            server.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "a job ran twice at once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_runs_on_one_server_at_a_time() {
        two_servers_never_run_a_job_at_once(Arc::new(entrepot_storage::MemoryLeases::default()))
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_runs_on_one_server_at_a_time_on_postgres() {
        let Some((store, _db)) = entrepot_storage::testing::postgres_store().await else {
            return;
        };
        two_servers_never_run_a_job_at_once(Arc::new(store)).await;
    }

    #[tokio::test]
    async fn a_dead_servers_job_is_run_by_another_after_the_lease_expires() {
        let store: Arc<dyn LeaseStore> = Arc::new(entrepot_storage::MemoryLeases::default());
        let short = Duration::from_millis(200);
        let dead = JobLeases::new(store.clone(), "node-a").with_ttl(short);
        let turn = dead.turn("cleanup").await.unwrap();
        // The server dies: its heartbeat stops, nothing is released.
        turn.heartbeat.abort();
        std::mem::forget(turn);
        let alive = JobLeases::new(store, "node-b").with_ttl(short);
        assert!(alive.turn("cleanup").await.is_none(), "taken while held");
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive.turn("cleanup").await.is_none() {
            assert!(
                Instant::now() < deadline,
                "the dead server's lease never expired"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
