//! The Python service refuses a caller without the operation's permission
//! by itself, for hosted and remote repositories alike, before it looks at
//! the repository or contacts an upstream.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use entrepot_domain::iam::{ARTIFACTREGISTRY_READER, ARTIFACTREGISTRY_WRITER};
use entrepot_domain::{Format, RepositoryName};
use entrepot_storage::ObjectBlobStore;

use super::{HostedPython, PythonError, PythonRepositories, RemotePython};
use crate::access::{AuthError, Principal};
use crate::access_testing::{user, CountingUpstream, Fixture};
use crate::metrics::Metrics;
use crate::remote::{Fills, NoSecretReader};

struct Python {
    python: PythonRepositories,
    upstream: CountingUpstream,
    _dir: tempfile::TempDir,
}

/// Hosted `uploads` and `pypi`, a remote repository in front of a counting
/// upstream; alice reads both, bob writes both.
async fn python() -> Python {
    let fixture = Fixture::new().await;
    let upstream = CountingUpstream::start().await;
    fixture.repository("uploads", Format::Python, None).await;
    fixture
        .repository("pypi", Format::Python, Some(&upstream.url))
        .await;
    for repo in ["uploads", "pypi"] {
        fixture
            .grant(repo, ARTIFACTREGISTRY_READER, "alice@example.com")
            .await;
    }
    for repo in ["uploads", "pypi"] {
        fixture
            .grant(repo, ARTIFACTREGISTRY_WRITER, "bob@example.com")
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(ObjectBlobStore::local(dir.path().join("blobs")).unwrap());
    let metrics = Arc::new(Metrics::default());
    let fills = Fills::new(dir.path().join("spool"), blobs.clone(), metrics.clone()).unwrap();
    let client =
        entrepot_upstream::UpstreamClient::new(Arc::new(entrepot_upstream::AllowAllHops)).unwrap();
    let remote = RemotePython::new(
        fixture.stores.python.clone(),
        blobs.clone(),
        fills,
        Arc::new(client),
        metrics,
        Arc::new(NoSecretReader),
        dir.path().join("scratch"),
    )
    .unwrap();
    let hosted = HostedPython::new(
        fixture.stores.python.clone(),
        blobs,
        dir.path().join("uploads"),
        1024 * 1024,
    )
    .unwrap();
    let python = PythonRepositories::new(
        fixture.access(),
        fixture.repositories.clone(),
        Arc::new(hosted),
        Arc::new(remote),
    );
    Python {
        python,
        upstream,
        _dir: dir,
    }
}

fn repo(id: &str) -> RepositoryName {
    format!("projects/demo/repositories/{id}").parse().unwrap()
}

fn is_denied(e: &PythonError) -> bool {
    matches!(e, PythonError::Access(AuthError::Denied { .. }))
}

fn is_unauthenticated(e: &PythonError) -> bool {
    matches!(e, PythonError::Access(AuthError::Unauthenticated(_)))
}

#[tokio::test]
async fn hosted_reads_need_download_and_anonymous_callers_must_authenticate() {
    let p = python().await;
    let uploads = repo("uploads");
    let err = p
        .python
        .project_list(&user("mallory@example.com"), &uploads)
        .await
        .unwrap_err();
    assert!(is_denied(&err), "{err:?}");
    let err = p
        .python
        .project_page(&Principal::Anonymous, &uploads, "demo")
        .await
        .unwrap_err();
    assert!(is_unauthenticated(&err), "{err:?}");
    let err = p
        .python
        .file(
            &Principal::Anonymous,
            &uploads,
            &"0".repeat(64),
            "demo-1.0.tar.gz",
        )
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(is_unauthenticated(&err), "{err:?}");
    // The refusal comes before the lookup: a missing repository is not told.
    let err = p
        .python
        .project_list(&user("mallory@example.com"), &repo("nothing"))
        .await
        .unwrap_err();
    assert!(is_denied(&err), "{err:?}");

    // A reader gets the (empty) content.
    let alice = user("alice@example.com");
    assert!(p
        .python
        .project_list(&alice, &uploads)
        .await
        .unwrap()
        .is_empty());
    let err = p
        .python
        .project_page(&alice, &uploads, "demo")
        .await
        .unwrap_err();
    assert!(matches!(err, PythonError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn uploads_need_upload_and_yanks_need_delete() {
    let p = python().await;
    let uploads = repo("uploads");
    let err = p
        .python
        .upload_target(&user("alice@example.com"), &uploads)
        .await
        .unwrap_err();
    assert!(is_denied(&err), "{err:?}");
    let err = p
        .python
        .upload_target(&Principal::Anonymous, &uploads)
        .await
        .unwrap_err();
    assert!(is_unauthenticated(&err), "{err:?}");
    let bob = user("bob@example.com");
    let target = p.python.upload_target(&bob, &uploads).await.unwrap();
    assert_eq!(target.repository().name, uploads.to_string());
    let err = p
        .python
        .set_yanked(&bob, &uploads, "demo", "1.0", true, b"")
        .await
        .unwrap_err();
    assert!(is_denied(&err), "{err:?}");
    // A writer of a remote repository passes the check, but the cache
    // takes no uploads.
    let err = p
        .python
        .upload_target(&bob, &repo("pypi"))
        .await
        .unwrap_err();
    assert!(matches!(err, PythonError::NotAllowed(_)), "{err:?}");
}

#[tokio::test]
async fn remote_reads_are_refused_before_the_upstream_is_contacted() {
    let p = python().await;
    let pypi = repo("pypi");
    let err = p
        .python
        .project_page(&user("mallory@example.com"), &pypi, "requests")
        .await
        .unwrap_err();
    assert!(is_denied(&err), "{err:?}");
    let err = p
        .python
        .project_list(&Principal::Anonymous, &pypi)
        .await
        .unwrap_err();
    assert!(is_unauthenticated(&err), "{err:?}");
    assert_eq!(p.upstream.connections(), 0);

    // A reader of the remote repository reaches its upstream.
    let err = p
        .python
        .project_page(&user("alice@example.com"), &pypi, "requests")
        .await
        .unwrap_err();
    assert!(matches!(err, PythonError::Remote(_)), "{err:?}");
    assert!(p.upstream.connections() > 0);
}

#[tokio::test]
async fn a_yank_body_is_read_only_after_the_caller_is_authorized() {
    let p = python().await;
    let uploads = repo("uploads");
    let err = p
        .python
        .set_yanked(
            &Principal::Anonymous,
            &uploads,
            "demo",
            "1.0",
            true,
            b"{not json",
        )
        .await
        .unwrap_err();
    assert!(is_unauthenticated(&err), "{err:?}");
    let err = p
        .python
        .set_yanked(
            &user("bob@example.com"),
            &uploads,
            "demo",
            "1.0",
            true,
            b"{not json",
        )
        .await
        .unwrap_err();
    assert!(is_denied(&err), "{err:?}");
}
