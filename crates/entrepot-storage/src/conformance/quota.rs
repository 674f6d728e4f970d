//! Contracts of quota reservations: bytes of uploads in progress held
//! against storage quotas, atomically with what is stored.

use entrepot_domain::Mode;

use super::backend::{blob, with_repository, Backend};
use super::metadata::image;
use super::{pid, rname};
use crate::cleanup::{QuotaReservation, QuotaShortfall};

const NOW: i64 = 1_700_000_000;
const LATER: i64 = NOW + 3600;

fn refused(r: QuotaReservation) -> QuotaShortfall {
    match r {
        QuotaReservation::Refused(s) => s,
        QuotaReservation::Granted => panic!("the reservation was granted"),
    }
}

/// A reservation fits under usage + the others' reservations; it replaces
/// what its upload held; a release, or its expiry, frees its bytes; a
/// refusal names the quota, the usage and what others hold, and changes
/// nothing.
pub(crate) async fn reservations_count_against_quotas_until_released_or_expired(s: &Backend) {
    with_repository(s, "p", "a", Mode::StandardRepository).await;
    with_repository(s, "p", "b", Mode::StandardRepository).await;
    let a = rname("p", "a");
    // Without a quota, anything is granted.
    assert_eq!(
        s.reserve_quota("u0", &a, u64::MAX / 2, NOW, LATER)
            .await
            .unwrap(),
        QuotaReservation::Granted
    );
    s.release_quota("u0").await.unwrap();
    s.set_storage_quota(&pid("p"), Some("a"), Some(1000))
        .await
        .unwrap();
    s.link_blob(&image("p", "a", "app"), &blob(1), 300)
        .await
        .unwrap();
    let grant = |id: &'static str, bytes| {
        let a = a.clone();
        let s = s.clone();
        async move { s.reserve_quota(id, &a, bytes, NOW, LATER).await.unwrap() }
    };
    assert_eq!(grant("u1", 400).await, QuotaReservation::Granted);
    assert_eq!(
        s.quota_reserved_bytes(&pid("p"), Some("a"), NOW)
            .await
            .unwrap(),
        400
    );
    let shortfall = refused(grant("u2", 301).await);
    assert_eq!(
        shortfall,
        QuotaShortfall {
            repository: Some("a".into()),
            quota: 1000,
            usage: 300,
            reserved: 400,
        }
    );
    // The refusal reserved nothing.
    assert_eq!(
        s.quota_reserved_bytes(&pid("p"), Some("a"), NOW)
            .await
            .unwrap(),
        400
    );
    assert_eq!(grant("u2", 300).await, QuotaReservation::Granted);
    // An upload growing its reservation is weighed without its own old one.
    assert_eq!(grant("u1", 300).await, QuotaReservation::Granted);
    assert_eq!(grant("u1", 400).await, QuotaReservation::Granted);
    assert_eq!(refused(grant("u1", 401).await).reserved, 300);
    // Committed: the bytes move from the reservation into usage.
    s.link_blob(&image("p", "a", "app"), &blob(2), 400)
        .await
        .unwrap();
    s.release_quota("u1").await.unwrap();
    let shortfall = refused(grant("u3", 1).await);
    assert_eq!((shortfall.usage, shortfall.reserved), (700, 300));
    s.release_quota("u2").await.unwrap();
    s.release_quota("u2").await.unwrap(); // releasing twice is harmless
    assert_eq!(grant("u3", 300).await, QuotaReservation::Granted);

    // An expired reservation holds nothing.
    s.reserve_quota("old", &rname("p", "b"), 50, NOW, NOW + 10)
        .await
        .unwrap();
    assert_eq!(
        s.quota_reserved_bytes(&pid("p"), None, NOW).await.unwrap(),
        350
    );
    assert_eq!(
        s.quota_reserved_bytes(&pid("p"), None, NOW + 10)
            .await
            .unwrap(),
        300
    );
    s.release_quota("u3").await.unwrap();
    s.reserve_quota("stuck", &a, 300, NOW, NOW + 10)
        .await
        .unwrap();
    assert!(matches!(
        s.reserve_quota("u4", &a, 300, NOW, LATER).await.unwrap(),
        QuotaReservation::Refused(_)
    ));
    assert_eq!(
        s.reserve_quota("u4", &a, 300, NOW + 10, LATER)
            .await
            .unwrap(),
        QuotaReservation::Granted
    );
}

/// A project's quota counts every repository's usage and reservations
/// together, and names the project when it is the one exceeded; a deleted
/// repository's reservations go with it.
pub(crate) async fn project_quotas_count_every_repository_s_reservations(s: &Backend) {
    with_repository(s, "p", "a", Mode::StandardRepository).await;
    with_repository(s, "p", "b", Mode::StandardRepository).await;
    with_repository(s, "q", "a", Mode::StandardRepository).await;
    s.set_storage_quota(&pid("p"), None, Some(1000))
        .await
        .unwrap();
    s.set_storage_quota(&pid("p"), Some("a"), Some(800))
        .await
        .unwrap();
    s.link_blob(&image("p", "b", "app"), &blob(1), 200)
        .await
        .unwrap();
    let reserve = |project: &'static str, repo: &'static str, id: &'static str, bytes| {
        let s = s.clone();
        async move {
            s.reserve_quota(id, &rname(project, repo), bytes, NOW, LATER)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        reserve("p", "a", "a1", 500).await,
        QuotaReservation::Granted
    );
    // The repository's own quota binds first: 500 + 301 > 800.
    let own = refused(reserve("p", "a", "a2", 301).await);
    assert_eq!((own.repository.as_deref(), own.quota), (Some("a"), 800));
    // Then the project's: 200 stored + 500 reserved + 301 > 1000.
    let project = refused(reserve("p", "b", "b1", 301).await);
    assert_eq!(
        project,
        QuotaShortfall {
            repository: None,
            quota: 1000,
            usage: 200,
            reserved: 500,
        }
    );
    assert_eq!(
        reserve("p", "b", "b1", 300).await,
        QuotaReservation::Granted
    );
    // Another project's quota is its own.
    assert_eq!(
        reserve("q", "a", "q1", 5000).await,
        QuotaReservation::Granted
    );
    assert_eq!(
        s.quota_reserved_bytes(&pid("p"), None, NOW).await.unwrap(),
        800
    );
    assert!(s.delete_repository(&rname("p", "a")).await.unwrap());
    assert_eq!(
        s.quota_reserved_bytes(&pid("p"), None, NOW).await.unwrap(),
        300
    );
}

/// Many uploads reserving at once never together pass the quota: exactly
/// as many as fit are granted.
pub(crate) async fn racing_reservations_never_exceed_the_quota(s: &Backend) {
    with_repository(s, "p", "a", Mode::StandardRepository).await;
    s.set_storage_quota(&pid("p"), Some("a"), Some(1000))
        .await
        .unwrap();
    s.set_storage_quota(&pid("p"), None, Some(1500))
        .await
        .unwrap();
    for round in 0..3 {
        let racers = (0..24).map(|n| {
            let s = s.clone();
            tokio::spawn(async move {
                s.reserve_quota(&format!("r{round}-{n}"), &rname("p", "a"), 100, NOW, LATER)
                    .await
                    .unwrap()
            })
        });
        let mut granted = 0;
        for racer in futures::future::join_all(racers).await {
            if racer.unwrap() == QuotaReservation::Granted {
                granted += 1;
            }
        }
        assert_eq!(granted, 10, "round {round}");
        assert_eq!(
            s.quota_reserved_bytes(&pid("p"), Some("a"), NOW)
                .await
                .unwrap(),
            1000
        );
        for n in 0..24 {
            s.release_quota(&format!("r{round}-{n}")).await.unwrap();
        }
    }
}
