//! Contracts of [`IamStore`]: principals, tokens and IAM policies.

use entrepot_domain::iam::{Member, Policy, EMPTY_POLICY_ETAG, OWNER};
use entrepot_domain::token_id::TokenId;

use super::walk;
use crate::conformance::{pid, res};
use crate::iam::*;
use crate::metadata::StoreError;
use crate::Stores;

fn policy(etag: &str, member: &str) -> Policy {
    let mut p = Policy {
        etag: etag.into(),
        ..Policy::default()
    };
    p.add_binding(OWNER, member.parse::<Member>().unwrap())
        .unwrap();
    p
}

fn tid(id: &str) -> TokenId {
    id.parse().unwrap()
}

fn who(member: &str) -> Member {
    member.parse().unwrap()
}

fn token(id: &str, principal: &str, create_time: &str) -> TokenRecord {
    TokenRecord {
        id: tid(id),
        principal: who(principal),
        token_hash: format!("hash-of-{id}"),
        description: String::new(),
        expire_time: None,
        read_only: false,
        revoked: false,
        create_time: create_time.into(),
        last_used_time: None,
    }
}

fn account(project: &str, name: &str) -> ServiceAccountRecord {
    ServiceAccountRecord {
        email: format!("{name}@{project}.iam.entrepot"),
        project: pid(project),
        account_id: name.into(),
        display_name: String::new(),
        create_time: "2026-01-01T00:00:00Z".into(),
    }
}

/// Users and service accounts are created once; a token is found by its
/// hash; a deleted user's tokens are revoked.
pub(crate) async fn users_accounts_and_tokens_round_trip(s: &Stores) {
    let store = &*s.iam;
    store
        .create_user("alice@example.com", Some("$argon2id$x"))
        .await
        .unwrap();
    assert!(matches!(
        store.create_user("alice@example.com", None).await,
        Err(StoreError::AlreadyExists)
    ));
    let alice = store.get_user("alice@example.com").await.unwrap().unwrap();
    assert_eq!(alice.password_hash.as_deref(), Some("$argon2id$x"));
    assert!(!format!("{alice:?}").contains("argon2"));
    s.metadata.create_project(&pid("p")).await.unwrap();
    let account = account("p", "ci");
    store.create_service_account(&account).await.unwrap();
    assert!(matches!(
        store.create_service_account(&account).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.get_service_account(&account.email).await.unwrap(),
        Some(account.clone())
    );
    assert_eq!(
        store
            .list_service_accounts(&pid("p"), None, 10)
            .await
            .unwrap(),
        vec![account]
    );
    let token = TokenRecord {
        description: "laptop".into(),
        expire_time: Some(1_900_000_000),
        read_only: true,
        ..token("t1", "user:alice@example.com", "2026-01-01T00:00:00Z")
    };
    store.create_token(&token).await.unwrap();
    assert!(matches!(
        store.create_token(&token).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store
            .token_by_hash(&token.token_hash)
            .await
            .unwrap()
            .unwrap(),
        token
    );
    assert_eq!(store.token_by_hash("unknown").await.unwrap(), None);
    store.touch_token(&tid("t1")).await.unwrap();
    assert!(store
        .get_token(&tid("t1"))
        .await
        .unwrap()
        .unwrap()
        .last_used_time
        .is_some());
    assert!(store.delete_user("alice@example.com").await.unwrap());
    assert!(!store.delete_user("alice@example.com").await.unwrap());
    assert_eq!(store.get_user("alice@example.com").await.unwrap(), None);
    assert!(
        store
            .token_by_hash(&token.token_hash)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(!store.revoke_token(&tid("t1")).await.unwrap());
}

/// Users page by e-mail, service accounts by e-mail within their project.
pub(crate) async fn user_and_service_account_pages_follow_their_keys(s: &Stores) {
    let store = &*s.iam;
    for i in 0..7 {
        store
            .create_user(&format!("user{i}@example.com"), None)
            .await
            .unwrap();
    }
    let seen = walk(3, async |after: Option<String>, n| {
        if n == 1 {
            store.create_user("a@example.com", None).await.unwrap();
            store.create_user("zed@example.com", None).await.unwrap();
        }
        let page = store.list_users(after.as_deref(), 3).await.unwrap();
        page.into_iter().map(|u| u.email).collect()
    })
    .await;
    let mut expected: Vec<String> = (0..7).map(|i| format!("user{i}@example.com")).collect();
    expected.push("zed@example.com".into());
    assert_eq!(seen, expected);

    for project in ["p", "q"] {
        s.metadata.create_project(&pid(project)).await.unwrap();
    }
    for name in ["c", "a", "e", "b", "d"] {
        store
            .create_service_account(&account("p", name))
            .await
            .unwrap();
    }
    store
        .create_service_account(&account("q", "b2"))
        .await
        .unwrap();
    let seen = walk(2, async |after: Option<String>, _| {
        let page = store
            .list_service_accounts(&pid("p"), after.as_deref(), 2)
            .await
            .unwrap();
        page.into_iter().map(|a| a.email).collect()
    })
    .await;
    let expected: Vec<String> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|n| format!("{n}@p.iam.entrepot"))
        .collect();
    assert_eq!(seen, expected);
}

/// A deleted principal loses its tokens and every grant, in the same step:
/// a principal created again under the name starts with none. Policies it
/// was removed from get a new etag; other members keep their roles.
pub(crate) async fn deleting_a_principal_revokes_its_tokens_and_grants(s: &Stores) {
    let store = &*s.iam;
    s.metadata.create_project(&pid("p")).await.unwrap();
    let bob = Member::User("bob@example.com".into());
    let ci = Member::ServiceAccount("ci@p.iam.entrepot".into());
    store.create_user("bob@example.com", None).await.unwrap();
    store
        .create_service_account(&account("p", "ci"))
        .await
        .unwrap();
    let (r1, r2, r3) = (
        &res("projects/p"),
        &res("projects/p/repositories/r"),
        &res("projects/p/secrets/s"),
    );
    for (resource, etag) in [(r1, "e1"), (r2, "e2")] {
        let mut p = policy(etag, "user:carol@example.com");
        p.add_binding(OWNER, bob.clone()).unwrap();
        p.add_binding(OWNER, ci.clone()).unwrap();
        assert!(store.set_policy(resource, &p, None).await.unwrap());
    }
    assert!(store
        .set_policy(r3, &policy("e3", "user:carol@example.com"), None)
        .await
        .unwrap());
    store
        .create_token(&token("tb", "user:bob@example.com", "2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    store
        .create_token(&token(
            "tc",
            "serviceAccount:ci@p.iam.entrepot",
            "2026-01-01T00:00:00Z",
        ))
        .await
        .unwrap();

    assert!(store.delete_user("bob@example.com").await.unwrap());
    for (resource, old) in [(r1, "e1"), (r2, "e2")] {
        let p = store.get_policy(resource).await.unwrap();
        assert_ne!(p.etag, old, "{resource} changed but kept its etag");
        let members: Vec<&Member> = p.bindings.iter().flat_map(|b| &b.members).collect();
        assert!(!members.contains(&&bob), "{resource}: {members:?}");
        assert!(members.contains(&&ci));
        assert!(members.contains(&&Member::User("carol@example.com".into())));
    }
    // A policy that never named the principal is left alone.
    assert_eq!(store.get_policy(r3).await.unwrap().etag, "e3");
    assert!(store.get_token(&tid("tb")).await.unwrap().unwrap().revoked);
    assert!(!store.get_token(&tid("tc")).await.unwrap().unwrap().revoked);

    assert!(store
        .delete_service_account("ci@p.iam.entrepot")
        .await
        .unwrap());
    assert!(!store
        .delete_service_account("ci@p.iam.entrepot")
        .await
        .unwrap());
    assert_eq!(
        store
            .get_service_account("ci@p.iam.entrepot")
            .await
            .unwrap(),
        None
    );
    assert!(store.get_token(&tid("tc")).await.unwrap().unwrap().revoked);
    let p = store.get_policy(r1).await.unwrap();
    assert!(!p.bindings.iter().any(|b| b.members.contains(&ci)));

    // Created again, the user has no grant and no live token.
    store.create_user("bob@example.com", None).await.unwrap();
    for resource in [r1, r2, r3] {
        let p = store.get_policy(resource).await.unwrap();
        assert!(!p.bindings.iter().any(|b| b.members.contains(&bob)));
    }
    assert!(
        store
            .token_by_hash("hash-of-tb")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
}

/// Revoking a token is final and said once; its record stays, revoked.
pub(crate) async fn token_revocation_is_final(s: &Stores) {
    let store = &*s.iam;
    store
        .create_token(&token("t1", "user:a", "2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    store
        .create_token(&token("t2", "user:a", "2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    assert!(store.revoke_token(&tid("t1")).await.unwrap());
    assert!(!store.revoke_token(&tid("t1")).await.unwrap());
    assert!(!store.revoke_token(&tid("absent")).await.unwrap());
    assert!(
        store
            .token_by_hash("hash-of-t1")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(!store.get_token(&tid("t2")).await.unwrap().unwrap().revoked);
    // A use recorded after the revocation does not bring it back.
    store.touch_token(&tid("t1")).await.unwrap();
    let t1 = store.get_token(&tid("t1")).await.unwrap().unwrap();
    assert!(t1.revoked && t1.last_used_time.is_some());
    let listed = store.list_tokens(&who("user:a"), None, 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|t| t.id.as_str() == "t1" && t.revoked));
}

/// Tokens of a principal page newest first, ties broken by id.
pub(crate) async fn token_pages_walk_newest_first_through_equal_creation_times(s: &Stores) {
    let store = &*s.iam;
    // Five tokens, three of them created in the same second: the cursor
    // must break ties by id, or a page boundary inside the tie would skip
    // or repeat tokens.
    let times = [
        "2026-01-03T00:00:00Z",
        "2026-01-02T00:00:00Z",
        "2026-01-02T00:00:00Z",
        "2026-01-02T00:00:00Z",
        "2026-01-01T00:00:00Z",
    ];
    for (i, time) in times.iter().enumerate() {
        store
            .create_token(&token(&format!("t{}", 5 - i), "user:a", time))
            .await
            .unwrap();
    }
    store
        .create_token(&token("t9", "user:b", "2026-01-02T00:00:00Z"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_tokens(&who("user:a"), after.as_ref(), 2)
            .await
            .unwrap();
        seen.extend(page.iter().map(|t| t.id.to_string()));
        match page.last() {
            Some(last) if page.len() == 2 => after = Some(last.key()),
            _ => break,
        }
    }
    assert_eq!(seen, ["t5", "t2", "t3", "t4", "t1"]);
    assert!(store
        .list_tokens(&who("user:c"), None, 2)
        .await
        .unwrap()
        .is_empty());
}

/// Setting a policy names the etag it read: a stale etag loses, the empty
/// policy's etag holds only while no policy is stored, `None` always wins.
pub(crate) async fn set_policy_is_a_compare_and_swap_on_the_etag(s: &Stores) {
    let store = &*s.iam;
    let r = &res("projects/p/repositories/r");
    assert_eq!(store.get_policy(r).await.unwrap().etag, EMPTY_POLICY_ETAG);
    assert!(store
        .set_policy(r, &policy("e1", "user:a"), Some(EMPTY_POLICY_ETAG))
        .await
        .unwrap());
    // A second writer that also read the empty policy loses.
    assert!(!store
        .set_policy(r, &policy("e2", "user:b"), Some(EMPTY_POLICY_ETAG))
        .await
        .unwrap());
    assert!(!store
        .set_policy(r, &policy("e2", "user:b"), Some("stale"))
        .await
        .unwrap());
    assert!(store
        .set_policy(r, &policy("e2", "user:b"), Some("e1"))
        .await
        .unwrap());
    let stored = store.get_policy(r).await.unwrap();
    assert_eq!(stored.etag, "e2");
    assert_eq!(stored.bindings[0].members, vec![Member::User("b".into())]);
    assert!(store
        .set_policy(r, &policy("e3", "user:c"), None)
        .await
        .unwrap());
    assert_eq!(store.get_policy(r).await.unwrap().etag, "e3");
    assert!(store.delete_policy(r).await.unwrap());
    assert!(!store.delete_policy(r).await.unwrap());
    assert_eq!(store.get_policy(r).await.unwrap(), Policy::default());
    // Other resources were never touched.
    assert_eq!(
        store.get_policy(&res("projects/p")).await.unwrap(),
        Policy::default()
    );
}

/// Of writers racing from the same etag, exactly one wins, and its policy
/// is the one stored.
pub(crate) async fn racing_policy_writers_let_one_win(s: &Stores) {
    let r = &res("projects/p");
    for read in [EMPTY_POLICY_ETAG, "e-base"] {
        if read != EMPTY_POLICY_ETAG {
            assert!(s
                .iam
                .set_policy(r, &policy(read, "user:base"), None)
                .await
                .unwrap());
        }
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let store = s.iam.clone();
                let r = r.clone();
                tokio::spawn(async move {
                    let etag = format!("{read}-{i}");
                    let mine = policy(&etag, &format!("user:writer{i}"));
                    let won = store.set_policy(&r, &mine, Some(read)).await.unwrap();
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
        assert_eq!(winners.len(), 1, "from {read}: {winners:?}");
        assert_eq!(s.iam.get_policy(r).await.unwrap().etag, winners[0]);
    }
}
