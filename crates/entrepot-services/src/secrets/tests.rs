#![allow(clippy::unwrap_used)]

use super::*;
use crate::access::{AllowAll, Credentials};
use async_trait::async_trait;
use entrepot_storage::testing::{file_stores, memory_stores};

/// Allows everything except payload access by `user:mallory@example.com`.
struct DenyMallory;

#[async_trait]
impl AccessControl for DenyMallory {
    async fn authenticate(&self, _c: Option<&Credentials>) -> Result<Principal, AuthError> {
        Ok(Principal::Anonymous)
    }
    async fn authorize(
        &self,
        p: &Principal,
        perm: Permission,
        r: &Resource,
    ) -> Result<(), AuthError> {
        if *p == Principal::User("mallory@example.com".into()) && perm == Permission::VersionsAccess
        {
            return Err(AuthError::Denied {
                principal: p.to_string(),
                permission: perm.as_str(),
                resource: r.to_string(),
            });
        }
        Ok(())
    }
}

async fn service(access: Arc<dyn AccessControl>) -> SecretService {
    let stores = memory_stores().await.unwrap();
    stores
        .metadata
        .create_project(&"demo".parse().unwrap())
        .await
        .unwrap();
    SecretService::new(
        stores.secrets,
        stores.metadata,
        Arc::new(MemoryKeyRing::generate()),
        access,
    )
}

fn payload(s: &str) -> SecretPayload {
    SecretPayload::new(s.as_bytes().to_vec()).unwrap()
}

fn vname(s: &str) -> SecretVersionName {
    format!("projects/demo/secrets/tok/versions/{s}")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn latest_follows_enabled_versions_and_destroy_is_final() {
    let svc = service(Arc::new(AllowAll)).await;
    let alice = Principal::User("alice@example.com".into());
    let name: SecretName = "projects/demo/secrets/tok".parse().unwrap();
    let (_, v1) = svc
        .create(&alice, &name, Labels::default(), Some(payload("one")))
        .await
        .unwrap();
    assert_eq!(v1.unwrap().name, "projects/demo/secrets/tok/versions/1");
    svc.add_version(&alice, &name, &payload("two"))
        .await
        .unwrap();
    let latest = svc.access(&alice, &vname("latest")).await.unwrap();
    assert_eq!(
        (latest.name.to_string().as_str(), latest.payload.as_bytes()),
        (vname("2").to_string().as_str(), &b"two"[..])
    );
    svc.disable_version(&alice, &vname("2")).await.unwrap();
    assert_eq!(
        svc.access(&alice, &vname("latest"))
            .await
            .unwrap()
            .payload
            .as_bytes(),
        b"one"
    );
    assert!(matches!(
        svc.access(&alice, &vname("2")).await,
        Err(SecretError::VersionDisabled(_))
    ));
    let destroyed = svc.destroy_version(&alice, &vname("1")).await.unwrap();
    assert_eq!(destroyed.state, VersionState::Destroyed);
    let err = svc.access(&alice, &vname("1")).await.unwrap_err();
    assert!(err.to_string().contains("DESTROYED"), "{err}");
    assert!(matches!(
        svc.access(&alice, &vname("latest")).await,
        Err(SecretError::NoEnabledVersion(_))
    ));
    assert!(matches!(
        svc.enable_version(&alice, &vname("1")).await,
        Err(SecretError::VersionDestroyed(_))
    ));
    svc.enable_version(&alice, &vname("2")).await.unwrap();
    assert_eq!(
        svc.access(&alice, &vname("latest"))
            .await
            .unwrap()
            .payload
            .as_bytes(),
        b"two"
    );
}

#[tokio::test]
async fn every_access_attempt_is_audited() {
    let svc = service(Arc::new(DenyMallory)).await;
    let alice = Principal::User("alice@example.com".into());
    let mallory = Principal::User("mallory@example.com".into());
    let agent = Principal::ServiceAccount("service-1@entrepot.local".into());
    let name: SecretName = "projects/demo/secrets/tok".parse().unwrap();
    svc.create(&alice, &name, Labels::default(), Some(payload("one")))
        .await
        .unwrap();
    svc.access(&alice, &vname("latest")).await.unwrap();
    let denied = svc.access(&mallory, &vname("1")).await.unwrap_err();
    assert!(matches!(
        denied,
        SecretError::Auth(AuthError::Denied { .. })
    ));
    let project: ProjectId = "demo".parse().unwrap();
    svc.access_as_service_agent(&project, &vname("latest"), &agent)
        .await
        .unwrap();
    let log = svc
        .audit_log(
            &alice,
            &project,
            Some("projects/demo/secrets/tok"),
            &PageRequest::first(100),
        )
        .await
        .unwrap()
        .items;
    let entries: Vec<(String, Option<String>, bool)> = log
        .iter()
        .map(|r| (r.principal.clone(), r.version.clone(), r.allowed))
        .collect();
    assert_eq!(
        entries,
        [
            (
                "serviceAccount:service-1@entrepot.local".to_owned(),
                Some("1".to_owned()),
                true
            ),
            (
                "user:mallory@example.com".to_owned(),
                Some("1".to_owned()),
                false
            ),
            (
                "user:alice@example.com".to_owned(),
                Some("1".to_owned()),
                true
            ),
        ]
    );
    assert!(log[0].reason.contains("service agent of projects/demo"));
    assert!(
        log[1].reason.contains("secretmanager.versions.access"),
        "{}",
        log[1].reason
    );

    let by_name = svc
        .access_as_project_service_agent("demo", "projects/demo/secrets/tok/versions/1", |n| {
            Principal::ServiceAccount(format!("service-{n}@entrepot.local"))
        })
        .await
        .unwrap();
    assert_eq!(by_name.payload.as_bytes(), b"one");
    let log = svc
        .audit_log(&alice, &project, None, &PageRequest::first(1))
        .await
        .unwrap()
        .items;
    assert!(log[0].allowed && log[0].principal.starts_with("serviceAccount:service-"));
    assert!(matches!(
        svc.access_as_project_service_agent(
            "ghost",
            "projects/demo/secrets/tok/versions/1",
            |_| Principal::Anonymous
        )
        .await,
        Err(SecretError::ProjectNotFound(_))
    ));
    assert!(matches!(
        svc.access_as_project_service_agent("demo", "tok", |_| Principal::Anonymous)
            .await,
        Err(SecretError::Invalid(_))
    ));

    // An agent without access is told which role to grant to whom on what.
    let err = svc
        .access_as_service_agent(&project, &vname("1"), &mallory)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("user:mallory@example.com")
            && err.contains("projects/demo/secrets/tok")
            && err.contains("roles/secretmanager.secretAccessor"),
        "{err}"
    );
    let log = svc
        .audit_log(&alice, &project, None, &PageRequest::first(1))
        .await
        .unwrap()
        .items;
    assert!(!log[0].allowed && log[0].principal == "user:mallory@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_adds_get_distinct_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let stores = file_stores(dir.path()).await.unwrap();
    stores
        .metadata
        .create_project(&"demo".parse().unwrap())
        .await
        .unwrap();
    let svc = SecretService::new(
        stores.secrets,
        stores.metadata,
        Arc::new(MemoryKeyRing::generate()),
        Arc::new(AllowAll),
    );
    let name: SecretName = "projects/demo/secrets/tok".parse().unwrap();
    svc.create(&Principal::Anonymous, &name, Labels::default(), None)
        .await
        .unwrap();
    let adds: Vec<_> = (0..8)
        .map(|i| {
            let (svc, name) = (svc.clone(), name.clone());
            tokio::spawn(async move {
                svc.add_version(&Principal::Anonymous, &name, &payload(&format!("p{i}")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for add in adds {
        numbers.push(add.await.unwrap().name);
    }
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 8);
    // Each version opens under its own name: the number used in the associated
    // data is the number stored.
    for n in 1..=8 {
        svc.access(&Principal::Anonymous, &vname(&n.to_string()))
            .await
            .unwrap();
    }
}

#[test]
fn secret_bearing_types_redact_themselves_in_debug() {
    let basic = Credentials::Basic {
        username: "alice".into(),
        password: "hunter2-password".into(),
    };
    let bearer = Credentials::Bearer("entp_bearer_token_value".into());
    let accessed = AccessedVersion {
        name: vname("1"),
        payload: payload("the-payload-text"),
    };
    let sealed = crypto::seal(&MemoryKeyRing::generate(), "n", &payload("sealed-text")).unwrap();
    let shown = format!("{basic:?} {bearer:?} {accessed:?} {sealed:?}");
    for secret in ["hunter2", "entp_bearer", "the-payload", "sealed-text"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(
        shown.contains("alice") && shown.contains("Number(1)"),
        "{shown}"
    );
}

#[tokio::test]
async fn rewrap_moves_every_data_key_to_the_new_primary() {
    let stores = memory_stores().await.unwrap();
    stores
        .metadata
        .create_project(&"demo".parse().unwrap())
        .await
        .unwrap();
    let store = stores.secrets.clone();
    let dir = tempfile::tempdir().unwrap();
    let ring = Arc::new(FileKeyRing::open_or_create(&dir.path().join("master.key")).unwrap());
    let svc = SecretService::new(
        stores.secrets,
        stores.metadata,
        ring.clone(),
        Arc::new(AllowAll),
    );
    let p = Principal::Anonymous;
    let name: SecretName = "projects/demo/secrets/tok".parse().unwrap();
    svc.create(&p, &name, Labels::default(), Some(payload("one")))
        .await
        .unwrap();
    svc.add_version(&p, &name, &payload("two")).await.unwrap();
    let new_id = ring.rotate().unwrap();
    let report = rewrap_data_keys(store.as_ref(), ring.as_ref())
        .await
        .unwrap();
    assert_eq!(
        report,
        RewrapReport {
            key_id: new_id.clone(),
            rewrapped: 2
        }
    );
    assert!(store
        .wrapped_keys()
        .await
        .unwrap()
        .iter()
        .all(|k| k.key_id == new_id));
    assert_eq!(
        rewrap_data_keys(store.as_ref(), ring.as_ref())
            .await
            .unwrap()
            .rewrapped,
        0
    );
    assert_eq!(
        svc.access(&p, &vname("1"))
            .await
            .unwrap()
            .payload
            .as_bytes(),
        b"one"
    );
    assert_eq!(
        svc.access(&p, &vname("2"))
            .await
            .unwrap()
            .payload
            .as_bytes(),
        b"two"
    );
}

#[tokio::test]
async fn errors_name_the_resource_and_never_the_payload() {
    let svc = service(Arc::new(AllowAll)).await;
    let p = Principal::Anonymous;
    let name: SecretName = "projects/demo/secrets/tok".parse().unwrap();
    svc.create(&p, &name, Labels::default(), Some(payload("pa55word")))
        .await
        .unwrap();
    let labelled = svc
        .update_labels(&p, &name, Labels::parse_list("env=prod").unwrap())
        .await
        .unwrap();
    assert_eq!(labelled.labels, Labels::parse_list("env=prod").unwrap());
    assert_eq!(svc.get(&p, &name).await.unwrap().labels, labelled.labels);
    let again = svc
        .create(&p, &name, Labels::default(), None)
        .await
        .unwrap_err();
    assert!(matches!(again, SecretError::AlreadyExists(_)));
    let missing: SecretName = "projects/demo/secrets/nope".parse().unwrap();
    assert!(matches!(
        svc.get(&p, &missing).await,
        Err(SecretError::NotFound(_))
    ));
    let other: SecretName = "projects/ghost/secrets/tok".parse().unwrap();
    assert!(matches!(
        svc.create(&p, &other, Labels::default(), None).await,
        Err(SecretError::ProjectNotFound(_))
    ));
    svc.disable_version(&p, &vname("1")).await.unwrap();
    let err = svc.access(&p, &vname("1")).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("pa55word"), "{shown}");
    let accessed = {
        svc.enable_version(&p, &vname("1")).await.unwrap();
        svc.access(&p, &vname("1")).await.unwrap()
    };
    assert!(!format!("{accessed:?}").contains("pa55word"));
}

#[tokio::test]
async fn refused_unauthenticated_attempts_get_one_row_per_minute_of_the_clock() {
    let clock = Arc::new(crate::clock::ManualClock::at(1_700_000_000));
    let svc = service(Arc::new(AllowAll)).await;
    let svc = svc.with_clock(clock.clone());
    let admin = Principal::User("alice@example.com".into());
    let project: ProjectId = "demo".parse().unwrap();
    let rows = |svc: SecretService| {
        let (admin, project) = (admin.clone(), project.clone());
        async move {
            svc.audit_log(&admin, &project, None, &PageRequest::first(100))
                .await
                .unwrap()
                .items
        }
    };
    for _ in 0..3 {
        svc.audit_unauthenticated_access(&vname("1"), "no credentials")
            .await
            .unwrap();
    }
    let first = rows(svc.clone()).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].time, "2023-11-14T22:13:20Z");
    assert_eq!(first[0].reason, "no credentials");

    // Still the same minute by the clock: only counted.
    clock.advance(30);
    svc.audit_unauthenticated_access(&vname("1"), "no credentials")
        .await
        .unwrap();
    assert_eq!(rows(svc.clone()).await.len(), 1);

    // The next minute: one row, naming the three attempts not written.
    clock.advance(30);
    svc.audit_unauthenticated_access(&vname("1"), "no credentials")
        .await
        .unwrap();
    let second = rows(svc.clone()).await;
    assert_eq!(second.len(), 2);
    assert_eq!(second[0].time, "2023-11-14T22:14:20Z");
    assert!(
        second[0].reason.starts_with("no credentials [and 3 more"),
        "{}",
        second[0].reason
    );
}

/// A secret past its expiry time is gone, payloads included; until then it
/// reads as usual.
#[tokio::test]
async fn an_expired_secret_stops_being_readable_and_is_deleted() {
    let clock = Arc::new(crate::clock::ManualClock::at(1_900_000_000));
    let stores = memory_stores().await.unwrap();
    stores
        .metadata
        .create_project(&"demo".parse().unwrap())
        .await
        .unwrap();
    let svc = SecretService::new(
        stores.secrets.clone(),
        stores.metadata,
        Arc::new(MemoryKeyRing::generate()),
        Arc::new(AllowAll),
    )
    .with_clock(clock.clone());
    let alice = Principal::User("alice@example.com".into());
    let name: SecretName = "projects/demo/secrets/tok".parse().unwrap();
    let spec = NewSecret {
        expiry: Some(Expiry::After(3600)),
        ..NewSecret::default()
    };
    let (secret, _) = svc
        .create_secret(&alice, &name, &spec, Some(payload("short-lived")))
        .await
        .unwrap();
    assert_eq!(secret.expire_time.as_deref(), Some("2030-03-17T18:46:40Z"));

    clock.advance(3599);
    let read = svc.access(&alice, &vname("latest")).await.unwrap();
    assert_eq!(read.payload.as_bytes(), b"short-lived");

    clock.advance(1);
    assert!(matches!(
        svc.access(&alice, &vname("latest")).await,
        Err(SecretError::NotFound(_))
    ));
    assert!(matches!(
        svc.get(&alice, &name).await,
        Err(SecretError::NotFound(_))
    ));
    let listed = svc
        .list(&alice, &name.project, &PageRequest::first(10))
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    // Deleted in the store, not only hidden.
    assert_eq!(
        stores
            .secrets
            .get_secret(&"projects/demo/secrets/tok".parse().unwrap())
            .await
            .unwrap(),
        None
    );

    // An expiry in the past is refused at creation.
    let past = NewSecret {
        expiry: Some(Expiry::At("2020-01-01T00:00:00Z".into())),
        ..NewSecret::default()
    };
    assert!(matches!(
        svc.create_secret(&alice, &name, &past, None).await,
        Err(SecretError::Invalid(_))
    ));
}

/// A due rotation shows on the secret, is audited and counted once, and a
/// new version moves the schedule on by the period.
#[tokio::test]
async fn a_due_rotation_is_shown_audited_once_and_moved_on_by_a_new_version() {
    let clock = Arc::new(crate::clock::ManualClock::at(1_900_000_000));
    let metrics = Arc::new(Metrics::default());
    let svc = service(Arc::new(AllowAll))
        .await
        .with_clock(clock.clone())
        .with_metrics(metrics.clone());
    let alice = Principal::User("alice@example.com".into());
    let name: SecretName = "projects/demo/secrets/tok".parse().unwrap();
    let spec = NewSecret {
        rotation: Some(Rotation {
            next_rotation_time: Some("2030-03-17T18:46:40Z".into()),
            rotation_period: Some("86400s".into()),
        }),
        ..NewSecret::default()
    };
    svc.create_secret(&alice, &name, &spec, Some(payload("v1")))
        .await
        .unwrap();
    assert!(!svc.get(&alice, &name).await.unwrap().rotation_due);

    clock.advance(3600);
    let due = svc.get(&alice, &name).await.unwrap();
    assert!(due.rotation_due);
    svc.get(&alice, &name).await.unwrap();
    svc.access(&alice, &vname("latest")).await.unwrap();
    let entries = svc
        .audit_log(&alice, &name.project, None, &PageRequest::first(100))
        .await
        .unwrap()
        .items;
    let rotation_entries: Vec<_> = entries
        .iter()
        .filter(|e| e.action == settings::ROTATION_DUE_ACTION)
        .collect();
    assert_eq!(rotation_entries.len(), 1, "{entries:?}");
    assert_eq!(rotation_entries[0].resource, name.to_string());
    assert!(metrics
        .render()
        .contains("entrepot_secret_rotations_due_total 1"));
    // The bookkeeping did not change the etag a client holds.
    assert_eq!(svc.get(&alice, &name).await.unwrap().etag, due.etag);

    svc.add_version(&alice, &name, &payload("v2"))
        .await
        .unwrap();
    let rotated = svc.get(&alice, &name).await.unwrap();
    assert!(!rotated.rotation_due);
    assert_eq!(
        rotated.rotation.unwrap().next_rotation_time.as_deref(),
        Some("2030-03-18T18:46:40Z")
    );
    assert_ne!(rotated.etag, due.etag);
}

/// Updates change only what they name, and a stale etag refuses an update
/// and a delete.
#[tokio::test]
async fn updates_follow_the_mask_and_refuse_stale_etags() {
    let svc = service(Arc::new(AllowAll)).await;
    let alice = Principal::User("alice@example.com".into());
    let name: SecretName = "projects/demo/secrets/tok".parse().unwrap();
    let spec = NewSecret {
        labels: Labels::parse_list("env=prod").unwrap(),
        annotations: [("owner".to_owned(), "core team".to_owned())].into(),
        ..NewSecret::default()
    };
    let (created, _) = svc.create_secret(&alice, &name, &spec, None).await.unwrap();
    let changes = SecretChanges {
        annotations: Some([("owner".to_owned(), "platform".to_owned())].into()),
        ..SecretChanges::default()
    };
    let updated = svc
        .update(&alice, &name, &changes, Some(&created.etag))
        .await
        .unwrap();
    assert_eq!(updated.labels, created.labels);
    assert_eq!(updated.annotations["owner"], "platform");
    assert_ne!(updated.etag, created.etag);
    assert!(matches!(
        svc.update(&alice, &name, &changes, Some(&created.etag))
            .await,
        Err(SecretError::StaleEtag { .. })
    ));
    assert!(matches!(
        svc.delete_if(&alice, &name, Some(&created.etag)).await,
        Err(SecretError::StaleEtag { .. })
    ));
    svc.delete_if(&alice, &name, Some(&updated.etag))
        .await
        .unwrap();
}

/// A filtered listing fills its pages from further down the store.
#[tokio::test]
async fn filtered_listings_fill_whole_pages() {
    let svc = service(Arc::new(AllowAll)).await;
    let alice = Principal::User("alice@example.com".into());
    let project: ProjectId = "demo".parse().unwrap();
    for i in 0..7 {
        let env = if i % 2 == 0 { "env=prod" } else { "env=dev" };
        let name = SecretName::new(project.clone(), format!("s{i}").parse().unwrap());
        svc.create(&alice, &name, Labels::parse_list(env).unwrap(), None)
            .await
            .unwrap();
    }
    let prod = |s: &Secret| s.labels.as_map().get("env").map(String::as_str) == Some("prod");
    let mut seen = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let got = svc
            .list_matching(&alice, &project, &page, prod)
            .await
            .unwrap();
        assert!(got.items.len() == 2 || got.next.is_none());
        seen.extend(got.items.into_iter().map(|s| s.name));
        match got.next {
            Some(next) => page.after = Some(next.parse().unwrap()),
            None => break,
        }
    }
    let ids: Vec<&str> = seen.iter().map(|n| n.rsplit('/').next().unwrap()).collect();
    assert_eq!(ids, ["s0", "s2", "s4", "s6"]);
}
