//! Contracts of [`SecretStore`]: secrets, versions and their states, the
//! audit log.

use std::collections::BTreeMap;

use entrepot_domain::iam::{Member, Policy, OWNER};

use super::walk;
use crate::conformance::{pid, res, sname};
use crate::metadata::StoreError;
use crate::secrets::*;
use crate::Stores;

fn sealed(tag: u8) -> SealedPayload {
    SealedPayload {
        ciphertext: vec![tag; 40],
        nonce: vec![tag; 12],
        wrapped_key: vec![tag; 60],
        key_id: format!("k{tag}"),
    }
}

fn version(number: i64) -> VersionRecord {
    VersionRecord {
        project: "demo".into(),
        secret: "tok".into(),
        number,
        state: "ENABLED".into(),
        create_time: "2026-01-01T00:00:00Z".into(),
        destroy_time: None,
    }
}

fn secret(id: &str) -> SecretRecord {
    SecretRecord {
        project: "demo".into(),
        id: id.into(),
        labels: BTreeMap::from([("env".into(), "prod".into())]),
        create_time: "2026-01-01T00:00:00Z".into(),
        settings: r#"{"annotations":{"owner":"core"}}"#.into(),
        etag: "\"1\"".into(),
    }
}

fn audit(resource: &str, version: &str) -> AuditRecord {
    AuditRecord {
        time: "2026-01-01T00:00:00Z".into(),
        project: "demo".into(),
        principal: "user:alice@example.com".into(),
        action: "secretmanager.versions.access".into(),
        resource: resource.into(),
        version: Some(version.into()),
        allowed: true,
        reason: String::new(),
    }
}

/// The project `demo` with the secret `tok`, which cannot be created twice.
async fn with_secret(s: &Stores) {
    s.metadata.create_project(&pid("demo")).await.unwrap();
    s.secrets.create_secret(&secret("tok")).await.unwrap();
    assert!(matches!(
        s.secrets.create_secret(&secret("tok")).await,
        Err(StoreError::AlreadyExists)
    ));
}

/// An update replaces labels, settings and etag together, and only while
/// the etag it was read with is still current.
pub(crate) async fn secret_updates_need_the_current_etag(s: &Stores) {
    with_secret(s).await;
    let store = &*s.secrets;
    let updated = SecretRecord {
        labels: BTreeMap::from([("team".into(), "infra".into())]),
        settings: r#"{"expireTime":"2030-01-01T00:00:00Z"}"#.into(),
        etag: "\"2\"".into(),
        ..secret("tok")
    };
    assert!(!store.update_secret(&updated, "\"stale\"").await.unwrap());
    assert_eq!(
        store.get_secret(&sname("demo", "tok")).await.unwrap(),
        Some(secret("tok"))
    );
    assert!(store.update_secret(&updated, "\"1\"").await.unwrap());
    assert_eq!(
        store.get_secret(&sname("demo", "tok")).await.unwrap(),
        Some(updated.clone())
    );
    // The old etag is spent.
    assert!(!store.update_secret(&updated, "\"1\"").await.unwrap());
    let absent = SecretRecord {
        id: "absent".into(),
        ..updated
    };
    assert!(!store.update_secret(&absent, "\"2\"").await.unwrap());
    // A conditional delete needs the current etag too.
    assert!(!store
        .delete_secret_if_etag(&sname("demo", "tok"), "\"1\"")
        .await
        .unwrap());
    assert!(store
        .get_secret(&sname("demo", "tok"))
        .await
        .unwrap()
        .is_some());
    assert!(store
        .delete_secret_if_etag(&sname("demo", "tok"), "\"2\"")
        .await
        .unwrap());
    assert_eq!(store.get_secret(&sname("demo", "tok")).await.unwrap(), None);
    assert!(!store
        .delete_secret_if_etag(&sname("demo", "tok"), "\"2\"")
        .await
        .unwrap());
}

/// A secret id is taken once per project; labels are replaced whole;
/// secrets page by id.
pub(crate) async fn secrets_are_create_only_and_relabelled(s: &Stores) {
    with_secret(s).await;
    let store = &*s.secrets;
    assert_eq!(
        store.get_secret(&sname("demo", "tok")).await.unwrap(),
        Some(secret("tok"))
    );
    assert_eq!(
        store.get_secret(&sname("demo", "absent")).await.unwrap(),
        None
    );
    let labels = BTreeMap::from([("team".to_owned(), "infra".to_owned())]);
    assert!(store
        .update_secret_labels(&sname("demo", "tok"), &labels)
        .await
        .unwrap());
    assert!(!store
        .update_secret_labels(&sname("demo", "absent"), &labels)
        .await
        .unwrap());
    assert_eq!(
        store
            .get_secret(&sname("demo", "tok"))
            .await
            .unwrap()
            .unwrap()
            .labels,
        labels
    );
    s.metadata.create_project(&pid("other")).await.unwrap();
    store
        .create_secret(&SecretRecord {
            project: "other".into(),
            ..secret("tok0")
        })
        .await
        .unwrap();
    for id in ["b", "a", "tok2", "c"] {
        store.create_secret(&secret(id)).await.unwrap();
    }
    let seen = walk(2, async |after: Option<String>, _| {
        let page = store
            .list_secrets(&pid("demo"), after.map(|a| a.parse().unwrap()).as_ref(), 2)
            .await
            .unwrap();
        assert!(page.iter().all(|s| s.project == "demo"));
        page.into_iter().map(|s| s.id).collect()
    })
    .await;
    assert_eq!(seen, ["a", "b", "c", "tok", "tok2"]);
}

/// Versions number from 1; `latest` is the newest enabled one.
pub(crate) async fn versions_number_from_one_and_latest_skips_disabled(s: &Stores) {
    with_secret(s).await;
    let store = &*s.secrets;
    assert_eq!(
        store
            .next_version_number(&sname("demo", "tok"))
            .await
            .unwrap(),
        1
    );
    store.insert_version(&version(1), &sealed(1)).await.unwrap();
    assert!(matches!(
        store.insert_version(&version(1), &sealed(1)).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store
            .next_version_number(&sname("demo", "tok"))
            .await
            .unwrap(),
        2
    );
    store.insert_version(&version(2), &sealed(2)).await.unwrap();
    assert_eq!(
        store
            .latest_enabled_version(&sname("demo", "tok"))
            .await
            .unwrap()
            .unwrap()
            .number,
        2
    );
    assert!(store
        .set_version_state(&sname("demo", "tok"), 2, "DISABLED")
        .await
        .unwrap());
    assert_eq!(
        store
            .latest_enabled_version(&sname("demo", "tok"))
            .await
            .unwrap()
            .unwrap()
            .number,
        1
    );
    assert_eq!(
        store
            .get_version(&sname("demo", "tok"), 2)
            .await
            .unwrap()
            .unwrap()
            .state,
        "DISABLED"
    );
    // A disabled version keeps its payload: it can be enabled again.
    assert_eq!(
        store
            .sealed_payload(&sname("demo", "tok"), 2)
            .await
            .unwrap(),
        Some(sealed(2))
    );
    assert!(!store
        .set_version_state(&sname("demo", "tok"), 9, "ENABLED")
        .await
        .unwrap());
    let numbers: Vec<i64> = store
        .list_versions(&sname("demo", "tok"), None, 10)
        .await
        .unwrap()
        .iter()
        .map(|v| v.number)
        .collect();
    assert_eq!(numbers, [2, 1]);
    assert!(store
        .set_version_state(&sname("demo", "tok"), 1, "DISABLED")
        .await
        .unwrap());
    assert_eq!(
        store
            .latest_enabled_version(&sname("demo", "tok"))
            .await
            .unwrap(),
        None
    );
}

/// Writers adding versions at once, each taking the next number and trying
/// again on `AlreadyExists`, end up with one number each.
pub(crate) async fn racing_version_inserts_take_one_number_each(s: &Stores) {
    with_secret(s).await;
    let racers: Vec<_> = (0..8u8)
        .map(|i| {
            let store = s.secrets.clone();
            tokio::spawn(async move {
                loop {
                    let number = store
                        .next_version_number(&sname("demo", "tok"))
                        .await
                        .unwrap();
                    match store.insert_version(&version(number), &sealed(i)).await {
                        Ok(()) => return (number, i),
                        Err(StoreError::AlreadyExists) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let mut taken = Vec::new();
    for racer in racers {
        taken.push(racer.await.unwrap());
    }
    taken.sort();
    let numbers: Vec<i64> = taken.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 6, 7, 8]);
    // Each number holds the payload of the writer that took it.
    for (number, tag) in taken {
        let payload = s
            .secrets
            .sealed_payload(&sname("demo", "tok"), number)
            .await
            .unwrap();
        assert_eq!(payload, Some(sealed(tag)));
    }
}

/// Versions page newest first, below the number of the last one seen.
pub(crate) async fn version_pages_walk_newest_first(s: &Stores) {
    with_secret(s).await;
    let store = &*s.secrets;
    for n in 1..=7 {
        store
            .insert_version(&version(n), &sealed(n as u8))
            .await
            .unwrap();
    }
    let seen = walk(3, async |before: Option<i64>, n| {
        if n == 1 {
            // Added during the walk, above the cursor: not on later pages.
            store.insert_version(&version(8), &sealed(8)).await.unwrap();
        }
        let page = store
            .list_versions(&sname("demo", "tok"), before, 3)
            .await
            .unwrap();
        page.into_iter().map(|v| v.number).collect()
    })
    .await;
    assert_eq!(seen, [7, 6, 5, 4, 3, 2, 1]);
    assert!(store
        .list_versions(&sname("demo", "other"), None, 3)
        .await
        .unwrap()
        .is_empty());
}

/// A destroyed version loses its sealed payload and its wrapped key for
/// good, and can never be enabled again.
pub(crate) async fn destroy_wipes_the_sealed_payload_for_good(s: &Stores) {
    with_secret(s).await;
    let store = &*s.secrets;
    store.insert_version(&version(1), &sealed(1)).await.unwrap();
    assert!(store
        .destroy_version(&sname("demo", "tok"), 1, "2026-01-02T00:00:00Z")
        .await
        .unwrap());
    assert_eq!(
        store
            .sealed_payload(&sname("demo", "tok"), 1)
            .await
            .unwrap(),
        None
    );
    let v = store
        .get_version(&sname("demo", "tok"), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.state, "DESTROYED");
    assert_eq!(v.destroy_time.as_deref(), Some("2026-01-02T00:00:00Z"));
    assert!(!store
        .set_version_state(&sname("demo", "tok"), 1, "ENABLED")
        .await
        .unwrap());
    assert!(store.wrapped_keys().await.unwrap().is_empty());
    assert_eq!(
        store
            .latest_enabled_version(&sname("demo", "tok"))
            .await
            .unwrap(),
        None
    );
    // Destroying again keeps the first destruction time.
    store
        .destroy_version(&sname("demo", "tok"), 1, "2026-01-03T00:00:00Z")
        .await
        .unwrap();
    let v = store
        .get_version(&sname("demo", "tok"), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.destroy_time.as_deref(), Some("2026-01-02T00:00:00Z"));
    assert!(!store
        .destroy_version(&sname("demo", "tok"), 2, "2026-01-03T00:00:00Z")
        .await
        .unwrap());
}

/// Deleting a secret takes its versions and its IAM policy: a secret created
/// again under the id starts at version 1 with no grants. The audit log
/// keeps its entries.
pub(crate) async fn deleting_a_secret_takes_its_versions_and_policy(s: &Stores) {
    with_secret(s).await;
    let store = &*s.secrets;
    store.insert_version(&version(1), &sealed(1)).await.unwrap();
    store
        .append_audit(&audit("projects/demo/secrets/tok", "1"))
        .await
        .unwrap();
    let resource = &res("projects/demo/secrets/tok");
    let mut policy = Policy {
        etag: "e1".into(),
        ..Policy::default()
    };
    policy
        .add_binding(OWNER, Member::User("alice@example.com".into()))
        .unwrap();
    assert!(s.iam.set_policy(resource, &policy, None).await.unwrap());
    let kept = &res("projects/demo/secrets/kept");
    assert!(s.iam.set_policy(kept, &policy, None).await.unwrap());

    assert!(store.delete_secret(&sname("demo", "tok")).await.unwrap());
    assert!(!store.delete_secret(&sname("demo", "tok")).await.unwrap());
    assert_eq!(store.get_secret(&sname("demo", "tok")).await.unwrap(), None);
    assert_eq!(s.iam.get_policy(resource).await.unwrap(), Policy::default());
    assert_eq!(s.iam.get_policy(kept).await.unwrap().etag, "e1");
    assert!(store.wrapped_keys().await.unwrap().is_empty());
    store.create_secret(&secret("tok")).await.unwrap();
    assert_eq!(
        store
            .next_version_number(&sname("demo", "tok"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.get_version(&sname("demo", "tok"), 1).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .sealed_payload(&sname("demo", "tok"), 1)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .list_audit("demo", None, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Master-key rotation replaces a wrapped key only if it is still the one
/// read.
pub(crate) async fn wrapped_keys_are_replaced_only_if_unchanged(s: &Stores) {
    with_secret(s).await;
    let store = &*s.secrets;
    store.insert_version(&version(1), &sealed(1)).await.unwrap();
    let old = store.wrapped_keys().await.unwrap().remove(0);
    let mut new = old.clone();
    new.key_id = "k9".into();
    new.wrapped_key = vec![9; 60];
    assert_eq!(
        store
            .replace_wrapped_keys(&[(old.clone(), new.clone())])
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.replace_wrapped_keys(&[(old, new)]).await.unwrap(), 0);
    let payload = store
        .sealed_payload(&sname("demo", "tok"), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(payload.key_id, "k9");
    assert_eq!(payload.wrapped_key, vec![9; 60]);
    // The ciphertext is not the rotation's business.
    assert_eq!(payload.ciphertext, sealed(1).ciphertext);
}

/// The audit log is read per project, for one resource or everything under
/// a name.
pub(crate) async fn audit_log_filters_by_resource_prefix(s: &Stores) {
    with_secret(s).await;
    let store = &*s.secrets;
    for (resource, allowed) in [
        ("projects/demo/secrets/tok", true),
        ("projects/demo/secrets/tok2", false),
    ] {
        store
            .append_audit(&AuditRecord {
                allowed,
                ..audit(resource, "1")
            })
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .list_audit("demo", None, None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    let only = store
        .list_audit("demo", Some("projects/demo/secrets/tok"), None, 10)
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    assert!(only[0].record.allowed);
    assert_eq!(only[0].record, audit("projects/demo/secrets/tok", "1"));
    assert_eq!(
        store
            .list_audit("demo", Some("projects/demo"), None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(store
        .list_audit("other", None, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.delete_secret(&sname("demo", "tok")).await.unwrap());
    assert_eq!(
        store
            .list_audit("demo", None, None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// A resource filter is a name, not a pattern: `_` and `%` match only
/// themselves.
pub(crate) async fn audit_filters_take_names_literally(s: &Stores) {
    with_secret(s).await;
    let store = &*s.secrets;
    for resource in [
        "projects/demo/secrets/a_b",
        "projects/demo/secrets/axb",
        "projects/demo/secrets/a%",
        "projects/demo/secrets/a%/versions/1",
        "projects/demo/secretsX/y",
    ] {
        store.append_audit(&audit(resource, "1")).await.unwrap();
    }
    let found = async |filter: &str| {
        let mut found: Vec<String> = store
            .list_audit("demo", Some(filter), None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.record.resource)
            .collect();
        found.sort();
        found
    };
    assert_eq!(
        found("projects/demo/secrets/a_b").await,
        ["projects/demo/secrets/a_b"]
    );
    assert_eq!(
        found("projects/demo/secrets/a%").await,
        [
            "projects/demo/secrets/a%",
            "projects/demo/secrets/a%/versions/1"
        ]
    );
    // A broader name: everything under it, not what merely starts the same.
    assert_eq!(found("projects/demo/secrets").await.len(), 4);
    assert_eq!(found("projects/de_o").await, Vec::<String>::new());
}

/// The audit log of one secret pages newest first, with the names under it
/// and without names that merely start the same.
pub(crate) async fn audit_pages_of_one_secret_walk_newest_first_and_include_names_under_it(
    s: &Stores,
) {
    with_secret(s).await;
    let store = &*s.secrets;
    // Entries of three resources, interleaved; "tok" and what is under its
    // name match a filter on "tok", "tok2" and "tok0" do not.
    let resources = [
        "projects/demo/secrets/tok",
        "projects/demo/secrets/tok2",
        "projects/demo/secrets/tok/versions",
        "projects/demo/secrets/tok0",
    ];
    for i in 0..20 {
        store
            .append_audit(&AuditRecord {
                time: format!("2026-01-01T00:00:{i:02}Z"),
                ..audit(resources[i % 4], &i.to_string())
            })
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list_audit("demo", Some("projects/demo/secrets/tok"), before, 3)
            .await
            .unwrap();
        seen.extend(page.iter().map(|e| e.record.version.clone().unwrap()));
        match page.last() {
            Some(last) if page.len() == 3 => before = Some(last.seq),
            _ => break,
        }
    }
    let expected: Vec<String> = (0..20)
        .rev()
        .filter(|i| i % 4 == 0 || i % 4 == 2)
        .map(|i: usize| i.to_string())
        .collect();
    assert_eq!(seen, expected);
    // The whole project's log pages the same way.
    let seen = walk(6, async |before: Option<i64>, _| {
        let page = store.list_audit("demo", None, before, 6).await.unwrap();
        page.into_iter().map(|e| e.seq).collect()
    })
    .await;
    assert_eq!(seen.len(), 20);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
}

/// Pruning keeps the newest `keep` entries, across projects, and says how
/// many went.
pub(crate) async fn audit_log_is_bounded_by_pruning_the_oldest(s: &Stores) {
    with_secret(s).await;
    let store = &*s.secrets;
    for i in 0..10 {
        let project = if i % 2 == 0 { "demo" } else { "" };
        store
            .append_audit(&AuditRecord {
                project: project.into(),
                ..audit("projects/demo/secrets/tok", &i.to_string())
            })
            .await
            .unwrap();
    }
    assert_eq!(store.prune_audit(100).await.unwrap(), 0);
    assert_eq!(store.prune_audit(4).await.unwrap(), 6);
    assert_eq!(store.prune_audit(4).await.unwrap(), 0);
    let left = |entries: Vec<AuditEntry>| -> Vec<String> {
        entries
            .into_iter()
            .filter_map(|e| e.record.version)
            .collect()
    };
    assert_eq!(
        left(store.list_audit("demo", None, None, 10).await.unwrap()),
        ["8", "6"]
    );
    assert_eq!(
        left(store.list_audit("", None, None, 10).await.unwrap()),
        ["9", "7"]
    );
    // Entries appended after a prune are newer than those it kept.
    store
        .append_audit(&audit("projects/demo/secrets/tok", "10"))
        .await
        .unwrap();
    let newest = store.list_audit("demo", None, None, 1).await.unwrap();
    assert_eq!(left(newest), ["10"]);
    assert_eq!(store.prune_audit(0).await.unwrap(), 5);
    assert!(store
        .list_audit("demo", None, None, 10)
        .await
        .unwrap()
        .is_empty());
}
