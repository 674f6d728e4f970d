//! Contracts of the store methods that write two things in one transaction:
//! a repository and its IAM policy, a project and its IAM policy. Either both
//! writes happen or neither does.

use entrepot_domain::iam::{Member, Policy, EMPTY_POLICY_ETAG, OWNER};

use super::metadata::repository;
use crate::conformance::{pid, res, rname};
use crate::metadata::StoreError;
use crate::Stores;

fn owned_by(etag: &str, member: &str) -> Policy {
    let mut p = Policy {
        etag: etag.into(),
        ..Policy::default()
    };
    p.add_binding(OWNER, member.parse::<Member>().unwrap())
        .unwrap();
    p
}

/// Deleting a repository with its policy takes both; a repository that is
/// not there leaves the policy stored under its name as it was; a new
/// repository of the deleted one's name starts with no grants.
pub(crate) async fn deleting_a_repository_takes_its_policy_or_nothing(s: &Stores) {
    s.metadata.create_project(&pid("p")).await.unwrap();
    s.metadata
        .create_repository(&rname("p", "r"), &repository("p", "r", ""))
        .await
        .unwrap();
    let (own, missing, project) = (
        &res("projects/p/repositories/r"),
        &res("projects/p/repositories/gone"),
        &res("projects/p"),
    );
    for name in [own, missing, project] {
        assert!(s
            .iam
            .set_policy(name, &owned_by("e1", "user:alice@example.com"), None)
            .await
            .unwrap());
    }

    assert!(!s
        .metadata
        .delete_repository_with_policy(&rname("p", "gone"))
        .await
        .unwrap());
    assert_eq!(s.iam.get_policy(missing).await.unwrap().etag, "e1");

    assert!(s
        .metadata
        .delete_repository_with_policy(&rname("p", "r"))
        .await
        .unwrap());
    assert!(s
        .metadata
        .get_repository(&rname("p", "r"))
        .await
        .unwrap()
        .is_none());
    let forgotten = s.iam.get_policy(own).await.unwrap();
    assert!(forgotten.bindings.is_empty(), "{forgotten:?}");
    assert_eq!(forgotten.etag, EMPTY_POLICY_ETAG);
    // The project's policy is not the repository's.
    assert_eq!(s.iam.get_policy(project).await.unwrap().etag, "e1");

    s.metadata
        .create_repository(&rname("p", "r"), &repository("p", "r", ""))
        .await
        .unwrap();
    assert!(s.iam.get_policy(own).await.unwrap().bindings.is_empty());
    assert!(!s
        .metadata
        .delete_repository_with_policy(&rname("p", "r-never"))
        .await
        .unwrap());
}

/// Creating a project with its policy writes both; when the project exists
/// already, the policy write is rolled back with the failed insert.
pub(crate) async fn creating_a_project_with_its_policy_is_all_or_nothing(s: &Stores) {
    let alice = owned_by("e1", "user:alice@example.com");
    let created = s
        .metadata
        .create_project_with_policy(&pid("p"), &alice)
        .await
        .unwrap();
    assert_eq!(created.id.as_str(), "p");
    assert_eq!(
        s.metadata.get_project(&pid("p")).await.unwrap(),
        Some(created)
    );
    assert_eq!(s.iam.get_policy(&res("projects/p")).await.unwrap(), alice);

    let bob = owned_by("e2", "user:bob@example.com");
    assert!(matches!(
        s.metadata.create_project_with_policy(&pid("p"), &bob).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        s.iam.get_policy(&res("projects/p")).await.unwrap(),
        alice,
        "a project that exists keeps its policy"
    );

    // A policy stored under a name no project holds is replaced, not merged.
    assert!(s
        .iam
        .set_policy(&res("projects/q"), &bob, None)
        .await
        .unwrap());
    s.metadata
        .create_project_with_policy(&pid("q"), &alice)
        .await
        .unwrap();
    assert_eq!(s.iam.get_policy(&res("projects/q")).await.unwrap(), alice);
    // Without a policy, the project's name keeps none.
    s.metadata.create_project(&pid("r")).await.unwrap();
    assert!(s
        .iam
        .get_policy(&res("projects/r"))
        .await
        .unwrap()
        .bindings
        .is_empty());
}
