//! Contracts of lease stores: one holder at a time, takeover after expiry,
//! outcomes left for the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::lease::{LeaseGrant, LeaseStore};

/// The fixture: a lease store.
pub(crate) type Leases = Arc<dyn LeaseStore>;

const LONG: Duration = Duration::from_secs(60);

/// Ask for `name` as `holder` until it is granted (at most 30 s, for
/// leases that are left to expire).
async fn granted_eventually(leases: &Leases, name: &str, holder: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let grant = leases.acquire(name, holder, LONG).await.unwrap();
        if grant == LeaseGrant::Granted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{holder} was never granted {name}: {grant:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn a_lease_has_one_holder_until_released(leases: &Leases) {
    assert_eq!(
        leases.acquire("fill a", "node-1", LONG).await.unwrap(),
        LeaseGrant::Granted
    );
    let held = LeaseGrant::Held {
        holder: "node-1".into(),
    };
    assert_eq!(
        leases.acquire("fill a", "node-2", LONG).await.unwrap(),
        held
    );
    assert_eq!(
        leases.acquire("fill a", "node-1", LONG).await.unwrap(),
        held
    );
    // Another name is another lease.
    assert_eq!(
        leases.acquire("fill b", "node-2", LONG).await.unwrap(),
        LeaseGrant::Granted
    );
    assert!(leases.renew("fill a", "node-1", LONG).await.unwrap());
    assert!(!leases.renew("fill a", "node-2", LONG).await.unwrap());
    // Only its holder releases it.
    leases.release("fill a", "node-2").await.unwrap();
    assert_eq!(
        leases.acquire("fill a", "node-2", LONG).await.unwrap(),
        held
    );
    leases.release("fill a", "node-1").await.unwrap();
    assert_eq!(
        leases.acquire("fill a", "node-2", LONG).await.unwrap(),
        LeaseGrant::Granted
    );
}

pub(crate) async fn an_expired_lease_is_taken_over(leases: &Leases) {
    let short = Duration::from_millis(300);
    assert_eq!(
        leases.acquire("job gc", "node-1", short).await.unwrap(),
        LeaseGrant::Granted
    );
    granted_eventually(leases, "job gc", "node-2").await;
    // The old holder has lost it: it can neither renew nor release it.
    assert!(!leases.renew("job gc", "node-1", LONG).await.unwrap());
    leases.release("job gc", "node-1").await.unwrap();
    assert_eq!(
        leases.acquire("job gc", "node-3", LONG).await.unwrap(),
        LeaseGrant::Held {
            holder: "node-2".into()
        }
    );
}

pub(crate) async fn a_finished_lease_tells_its_outcome_until_it_expires(leases: &Leases) {
    assert_eq!(
        leases.acquire("fill c", "node-1", LONG).await.unwrap(),
        LeaseGrant::Granted
    );
    leases
        .finish("fill c", "node-1", "sha256:abc", Duration::from_secs(5))
        .await
        .unwrap();
    let done = LeaseGrant::Done {
        outcome: "sha256:abc".into(),
    };
    assert_eq!(
        leases.acquire("fill c", "node-2", LONG).await.unwrap(),
        done
    );
    // A finished lease is not renewed, nor released, by its holder.
    assert!(!leases.renew("fill c", "node-1", LONG).await.unwrap());
    leases.release("fill c", "node-1").await.unwrap();
    assert_eq!(
        leases.acquire("fill c", "node-2", LONG).await.unwrap(),
        done
    );
    granted_eventually(leases, "fill c", "node-2").await;
}

pub(crate) async fn racing_askers_are_granted_once(leases: &Leases) {
    for round in 0..10 {
        let name = format!("race {round}");
        // All spawned before any is awaited, so that they race.
        let askers: Vec<_> = (0..8)
            .map(|i| {
                let (leases, name) = (leases.clone(), name.clone());
                tokio::spawn(async move {
                    leases
                        .acquire(&name, &format!("node-{i}"), LONG)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut granted = 0;
        for asker in askers {
            if asker.await.unwrap() == LeaseGrant::Granted {
                granted += 1;
            }
        }
        assert_eq!(granted, 1, "round {round}: {granted} askers were granted");
    }
}
