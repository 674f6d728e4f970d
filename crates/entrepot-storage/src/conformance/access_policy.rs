//! Contracts of [`AccessPolicyStore`] and [`CacheStore`].

use entrepot_domain::access_policy::{parse_entries, AccessPolicy, Enforcement};

use crate::metadata::ImageRef;
use crate::Stores;

/// The access policy is written by compare and swap on its etag; `None`
/// expects that no policy was ever stored.
pub(crate) async fn access_policy_is_a_compare_and_swap_on_the_etag(s: &Stores) {
    let store = &*s.access_policy;
    assert_eq!(store.get_access_policy().await.unwrap(), None);
    let p1 = AccessPolicy::default();
    assert!(store.set_access_policy(&p1, "e1", None).await.unwrap());
    // A second "first write" loses.
    assert!(!store.set_access_policy(&p1, "e1b", None).await.unwrap());
    let p2 = AccessPolicy::new(
        true,
        Enforcement::DryRun,
        parse_entries(&["ghcr.io"]).unwrap(),
    )
    .unwrap();
    assert!(!store
        .set_access_policy(&p2, "e2", Some("stale"))
        .await
        .unwrap());
    assert!(store
        .set_access_policy(&p2, "e2", Some("e1"))
        .await
        .unwrap());
    let stored = store.get_access_policy().await.unwrap().unwrap();
    assert_eq!(stored.policy, p2);
    assert_eq!(stored.etag, "e2");
    assert!(!stored.update_time.is_empty());
}

/// Of nodes racing to store the first policy, exactly one wins.
pub(crate) async fn racing_first_policies_let_one_win(s: &Stores) {
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = s.access_policy.clone();
            tokio::spawn(async move {
                let etag = format!("e{i}");
                let won = store
                    .set_access_policy(&AccessPolicy::default(), &etag, None)
                    .await
                    .unwrap();
                (etag, won)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        let (etag, won) = racer.await.unwrap();
        if won {
            winners.push(etag);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = s.access_policy.get_access_policy().await.unwrap().unwrap();
    assert_eq!(stored.etag, winners[0]);
}

/// When a tag was last confirmed upstream is kept per image and tag, and
/// moves with each confirmation.
fn tag(t: &str) -> entrepot_domain::Tag {
    t.parse().unwrap()
}

pub(crate) async fn tag_checks_are_kept_per_tag(s: &Stores) {
    let store = &*s.cache;
    let image = |name: &str| ImageRef {
        project: "p".into(),
        repository: "hub".into(),
        image: name.into(),
    };
    let (alpine, busybox) = (image("library/alpine"), image("library/busybox"));
    assert_eq!(
        store.tag_checked_at(&alpine, &tag("latest")).await.unwrap(),
        None
    );
    store
        .mark_tag_checked(&alpine, &tag("latest"), 100)
        .await
        .unwrap();
    store
        .mark_tag_checked(&alpine, &tag("3.20"), 150)
        .await
        .unwrap();
    assert_eq!(
        store.tag_checked_at(&alpine, &tag("latest")).await.unwrap(),
        Some(100)
    );
    store
        .mark_tag_checked(&alpine, &tag("latest"), 200)
        .await
        .unwrap();
    assert_eq!(
        store.tag_checked_at(&alpine, &tag("latest")).await.unwrap(),
        Some(200)
    );
    assert_eq!(
        store.tag_checked_at(&alpine, &tag("3.20")).await.unwrap(),
        Some(150)
    );
    assert_eq!(
        store
            .tag_checked_at(&busybox, &tag("latest"))
            .await
            .unwrap(),
        None
    );
}

/// A referrers index is kept per image and subject, replaced whole with its
/// confirmation time.
pub(crate) async fn referrers_indexes_are_kept_per_subject(s: &Stores) {
    let store = &*s.cache;
    let image = |name: &str| ImageRef {
        project: "p".into(),
        repository: "hub".into(),
        image: name.into(),
    };
    let (app, other) = (image("app"), image("other"));
    let one = entrepot_domain::Digest::of(b"one");
    let two = entrepot_domain::Digest::of(b"two");
    assert_eq!(store.referrers_index(&app, &one).await.unwrap(), None);
    store
        .put_referrers_index(&app, &one, b"{\"manifests\":[]}", 100)
        .await
        .unwrap();
    store
        .put_referrers_index(&app, &two, b"two", 110)
        .await
        .unwrap();
    store
        .put_referrers_index(&app, &one, b"replaced", 200)
        .await
        .unwrap();
    let kept = store.referrers_index(&app, &one).await.unwrap().unwrap();
    assert_eq!(
        (kept.content.as_slice(), kept.checked_at),
        (&b"replaced"[..], 200)
    );
    let kept = store.referrers_index(&app, &two).await.unwrap().unwrap();
    assert_eq!(
        (kept.content.as_slice(), kept.checked_at),
        (&b"two"[..], 110)
    );
    assert_eq!(store.referrers_index(&other, &one).await.unwrap(), None);
}
