//! The OCI service refuses a caller without the operation's permission by
//! itself, for hosted and remote repositories alike, before it looks at the
//! repository or contacts an upstream.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use entrepot_domain::iam::{ARTIFACTREGISTRY_READER, ARTIFACTREGISTRY_WRITER};
use entrepot_domain::{Digest, Format, ImagePath};
use entrepot_storage::{ByteStream, ObjectBlobStore};
use futures::StreamExt;

use super::{OciRepositories, RegistryError, RemoteOci, UploadStart};
use crate::access::{AuthError, Principal};
use crate::access_testing::{user, CountingUpstream, Fixture};
use crate::metrics::Metrics;
use crate::remote::{Fills, NoSecretReader};

struct Registry {
    oci: OciRepositories,
    upstream: CountingUpstream,
    _dir: tempfile::TempDir,
}

/// Hosted `images` and `source`, and `hub`, a remote repository in front
/// of a counting upstream. alice reads `images` and `hub`, bob writes
/// `images`, dave writes `source`, erin writes `images` and reads `source`.
async fn registry() -> Registry {
    let fixture = Fixture::new().await;
    let upstream = CountingUpstream::start().await;
    fixture.repository("images", Format::Docker, None).await;
    fixture.repository("source", Format::Docker, None).await;
    fixture
        .repository("hub", Format::Docker, Some(&upstream.url))
        .await;
    fixture
        .grant("images", ARTIFACTREGISTRY_READER, "alice@example.com")
        .await;
    fixture
        .grant("hub", ARTIFACTREGISTRY_READER, "alice@example.com")
        .await;
    fixture
        .grant("images", ARTIFACTREGISTRY_WRITER, "bob@example.com")
        .await;
    fixture
        .grant("source", ARTIFACTREGISTRY_WRITER, "dave@example.com")
        .await;
    fixture
        .grant("images", ARTIFACTREGISTRY_WRITER, "erin@example.com")
        .await;
    fixture
        .grant("source", ARTIFACTREGISTRY_READER, "erin@example.com")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(ObjectBlobStore::local(dir.path().join("blobs")).unwrap());
    let metrics = Arc::new(Metrics::default());
    let fills = Fills::new(dir.path().join("spool"), blobs.clone(), metrics.clone()).unwrap();
    let client =
        entrepot_upstream::UpstreamClient::new(Arc::new(entrepot_upstream::AllowAllHops)).unwrap();
    let remote = RemoteOci::new(
        fixture.stores.metadata.clone(),
        fixture.stores.cache.clone(),
        blobs.clone(),
        fills,
        Arc::new(client),
        metrics,
        Arc::new(NoSecretReader),
    );
    let oci = OciRepositories::new(fixture.stores.metadata.clone(), blobs, fixture.access())
        .with_remote(Arc::new(remote));
    Registry {
        oci,
        upstream,
        _dir: dir,
    }
}

fn image(s: &str) -> ImagePath {
    s.parse().unwrap()
}

fn body(bytes: &'static [u8]) -> ByteStream {
    futures::stream::once(async move { Ok(bytes::Bytes::from_static(bytes)) }).boxed()
}

fn is_denied(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Access(AuthError::Denied { .. }))
}

fn is_unauthenticated(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Access(AuthError::Unauthenticated(_)))
}

#[tokio::test]
async fn hosted_reads_need_download_and_anonymous_callers_must_authenticate() {
    let r = registry().await;
    let path = image("demo/images/app");
    let tag = "v1";

    let err = r
        .oci
        .get_manifest(&user("mallory@example.com"), &path, tag)
        .await
        .unwrap_err();
    assert!(is_denied(&err), "{err:?}");
    let err = r
        .oci
        .get_manifest(&Principal::Anonymous, &path, tag)
        .await
        .unwrap_err();
    assert!(is_unauthenticated(&err), "{err:?}");
    let err = r
        .oci
        .list_tags(&Principal::Anonymous, &path, None, None)
        .await
        .unwrap_err();
    assert!(is_unauthenticated(&err), "{err:?}");

    // A reader gets past the check to the content, which is not there.
    let err = r
        .oci
        .get_manifest(&user("alice@example.com"), &path, tag)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::ManifestUnknown(_)), "{err:?}");
    // The refusal comes before the lookup: a repository that does not
    // exist is refused the same way, and its absence is not told.
    let err = r
        .oci
        .get_manifest(
            &user("mallory@example.com"),
            &image("demo/nothing/app"),
            tag,
        )
        .await
        .unwrap_err();
    assert!(is_denied(&err), "{err:?}");
}

#[tokio::test]
async fn hosted_pushes_need_upload_and_deletes_need_delete() {
    let r = registry().await;
    let path = image("demo/images/app");
    let alice = user("alice@example.com");
    let bob = user("bob@example.com");

    let err = r.oci.start_upload(&alice, &path, None).await.unwrap_err();
    assert!(is_denied(&err), "{err:?}");
    let err = r
        .oci
        .put_blob(&alice, &path, &Digest::of(b"{}").to_string(), body(b"{}"))
        .await
        .unwrap_err();
    assert!(is_denied(&err), "{err:?}");
    let err = r
        .oci
        .put_manifest(&alice, &path, "v1", &[], None, body(b"{}"))
        .await
        .unwrap_err();
    assert!(is_denied(&err), "{err:?}");
    let err = r
        .oci
        .start_upload(&Principal::Anonymous, &path, None)
        .await
        .unwrap_err();
    assert!(is_unauthenticated(&err), "{err:?}");

    let digest = r
        .oci
        .put_blob(&bob, &path, &Digest::of(b"{}").to_string(), body(b"{}"))
        .await
        .unwrap();
    // A writer may not delete; nor may the caller list the catalog without
    // an organisation-wide grant.
    let err = r.oci.delete_blob(&bob, &path, &digest).await.unwrap_err();
    assert!(is_denied(&err), "{err:?}");
    let err = r.oci.catalog(&bob, None, None).await.unwrap_err();
    assert!(is_denied(&err), "{err:?}");
    assert_eq!(
        r.oci
            .locate_blob(&bob, &path, &digest)
            .await
            .unwrap()
            .size(),
        2
    );
}

#[tokio::test]
async fn a_blob_is_mounted_only_from_a_source_the_caller_may_pull() {
    let r = registry().await;
    let target = image("demo/images/app");
    let source = image("demo/source/app");
    let digest = r
        .oci
        .put_blob(
            &user("dave@example.com"),
            &source,
            &Digest::of(b"x").to_string(),
            body(b"x"),
        )
        .await
        .unwrap();
    // bob may push to `images` but not pull from `source`: he gets an
    // ordinary session and uploads the blob himself.
    match r
        .oci
        .start_upload(
            &user("bob@example.com"),
            &target,
            Some((&digest, Some(&source))),
        )
        .await
        .unwrap()
    {
        UploadStart::Session(_) => {}
        UploadStart::Mounted(_) => panic!("a source bob may not pull was mounted"),
    }
    // erin may pull from `source`: the blob is mounted.
    match r
        .oci
        .start_upload(
            &user("erin@example.com"),
            &target,
            Some((&digest, Some(&source))),
        )
        .await
        .unwrap()
    {
        UploadStart::Mounted(d) => assert_eq!(d, digest),
        UploadStart::Session(_) => panic!("a readable source is mounted"),
    }
}

#[tokio::test]
async fn remote_reads_are_refused_before_the_upstream_is_contacted() {
    let r = registry().await;
    let path = image("demo/hub/library/alpine");
    let tag = "latest";
    let digest = Digest::of(b"layer");

    let err = r
        .oci
        .get_manifest(&user("mallory@example.com"), &path, tag)
        .await
        .unwrap_err();
    assert!(is_denied(&err), "{err:?}");
    let err = r
        .oci
        .locate_blob(&Principal::Anonymous, &path, &digest)
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(is_unauthenticated(&err), "{err:?}");
    let err = r
        .oci
        .list_tags(&user("bob@example.com"), &path, None, None)
        .await
        .unwrap_err();
    assert!(is_denied(&err), "{err:?}");
    assert_eq!(r.upstream.connections(), 0);

    // A reader of the remote repository reaches its upstream.
    let err = r
        .oci
        .get_manifest(&user("alice@example.com"), &path, tag)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Remote(_)), "{err:?}");
    assert!(r.upstream.connections() > 0);
}

#[tokio::test]
async fn token_actions_are_granted_by_the_operation_table() {
    let r = registry().await;
    let path = image("demo/images/app");
    let all: Vec<String> = ["pull", "push", "delete", "*", "bogus"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        r.oci
            .granted_actions(&user("alice@example.com"), &path, &all)
            .await,
        ["pull"]
    );
    assert_eq!(
        r.oci
            .granted_actions(&user("bob@example.com"), &path, &all)
            .await,
        ["pull", "push"]
    );
    assert!(r
        .oci
        .granted_actions(&Principal::Anonymous, &path, &all)
        .await
        .is_empty());
    assert!(r
        .oci
        .granted_catalog_actions(&user("bob@example.com"), &["*".to_owned()])
        .await
        .is_empty());
}

#[tokio::test]
async fn the_caller_is_checked_before_the_request_is_parsed() {
    let r = registry().await;
    let path = image("demo/images/app");
    let anonymous = Principal::Anonymous;
    let alice = user("alice@example.com");
    let bob = user("bob@example.com");

    // Anonymous: unauthenticated; alice (a reader): denied; bob (a writer):
    // told what is wrong with the request.
    for (who, refused) in [
        (&anonymous, is_unauthenticated as fn(&_) -> bool),
        (&alice, is_denied),
    ] {
        let err = r
            .oci
            .put_blob(who, &path, "sha256:nothex", body(b"x"))
            .await
            .unwrap_err();
        assert!(refused(&err), "{err:?}");
        let err = r
            .oci
            .finish_upload(who, &path, "any", None, Default::default(), None)
            .await
            .unwrap_err();
        assert!(refused(&err), "{err:?}");
        let err = r
            .oci
            .append_chunk(who, &path, "any", Some("junk"), None, body(b"x"))
            .await
            .unwrap_err();
        assert!(refused(&err), "{err:?}");
    }
    let err = r
        .oci
        .list_tags(&anonymous, &path, Some("many"), None)
        .await
        .unwrap_err();
    assert!(is_unauthenticated(&err), "{err:?}");
    let err = r.oci.catalog(&alice, Some("many"), None).await.unwrap_err();
    assert!(is_denied(&err), "{err:?}");

    let err = r
        .oci
        .put_blob(&bob, &path, "sha256:nothex", body(b"x"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestInvalid(_)), "{err:?}");
    let err = r
        .oci
        .finish_upload(&bob, &path, "any", None, Default::default(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestInvalid(_)), "{err:?}");
    let err = r
        .oci
        .append_chunk(&bob, &path, "any", Some("0-9"), Some(1), body(b"x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::ChunkRangeInvalid(_)),
        "{err:?}"
    );
    let err = r
        .oci
        .list_tags(&alice, &path, Some("-1"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::PageSizeInvalid(_)), "{err:?}");
}
