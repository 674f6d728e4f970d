//! Contracts of [`BlobStore`]: create-only verified commits, reads and
//! ranges, upload parts, staging and quarantine.
//!
//! They run against [`crate::ObjectBlobStore`] on each `object_store`
//! backend it is used with: the local directory (with its own fast paths)
//! and the in-memory store, which takes the path object storage (S3) takes.

use std::sync::Arc;

use bytes::Bytes;
use entrepot_domain::{ByteRange, Digest};
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};

use crate::blob::*;

/// A blob store under test, with the object store it keeps its objects in,
/// to play behind its back what a crash or a damaged disk would do.
pub(crate) struct Blobs {
    /// The store under test.
    pub(crate) store: Arc<dyn BlobStore>,
    /// The objects beneath it.
    pub(crate) objects: Arc<dyn ObjectStore>,
}

fn body(chunks: &[&'static [u8]]) -> ByteStream {
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
    futures::stream::iter(chunks).boxed()
}

fn owned_body(data: Vec<u8>, chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

/// A body that fails after its first chunk, as a client that disconnects.
fn broken_body(first: &'static [u8]) -> ByteStream {
    let chunks = vec![
        Ok(Bytes::from_static(first)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ];
    futures::stream::iter(chunks).boxed()
}

async fn read_all(b: &Blobs, d: &Digest, range: Option<ByteRange>) -> Vec<u8> {
    let chunks: Vec<Bytes> = b
        .store
        .read(d, range)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    chunks.concat()
}

/// The objects under `prefix`, as paths.
async fn objects_under(b: &Blobs, prefix: &str) -> Vec<String> {
    let mut found: Vec<String> = b
        .objects
        .list(Some(&Path::from(prefix)))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    found.sort();
    found
}

fn blob_path(d: &Digest) -> Path {
    Path::from(format!("blobs/sha256/{}/{}", &d.hex()[..2], d.hex()))
}

/// Nothing is visible at a digest that was never committed.
pub(crate) async fn absent_blobs_are_not_found(b: &Blobs) {
    let d = Digest::of(b"absent");
    assert_eq!(b.store.stat(&d).await.unwrap(), None);
    assert!(matches!(
        b.store.read(&d, None).await,
        Err(BlobError::NotFound)
    ));
    assert!(matches!(
        b.store.read(&d, Some(ByteRange { start: 0, end: 0 })).await,
        Err(BlobError::NotFound)
    ));
    b.store.delete(&d).await.unwrap();
}

/// A blob put whole is visible once verified; putting it again, even while
/// another put of it runs, keeps one copy of the same bytes.
pub(crate) async fn put_blob_is_verified_and_idempotent(b: &Blobs) {
    let d = Digest::of(b"hello world");
    assert_eq!(
        b.store
            .put_blob(&d, body(&[b"hello ", b"world"]), None)
            .await
            .unwrap(),
        11
    );
    assert_eq!(b.store.stat(&d).await.unwrap(), Some(11));
    assert_eq!(read_all(b, &d, None).await, b"hello world");
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let store = b.store.clone();
            let d = d.clone();
            tokio::spawn(async move { store.put_blob(&d, body(&[b"hello world"]), None).await })
        })
        .collect();
    for racer in racers {
        assert_eq!(racer.await.unwrap().unwrap(), 11);
    }
    assert_eq!(read_all(b, &d, None).await, b"hello world");
    assert!(objects_under(b, "staging").await.is_empty());
}

/// Bytes that do not hash to the announced digest are never visible, under
/// either digest, and leave nothing behind.
pub(crate) async fn digest_mismatch_leaves_nothing_visible(b: &Blobs) {
    let wrong = Digest::of(b"something else");
    let err = b
        .store
        .put_blob(&wrong, body(&[b"data"]), None)
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::DigestMismatch { .. }));
    assert_eq!(b.store.stat(&wrong).await.unwrap(), None);
    assert_eq!(b.store.stat(&Digest::of(b"data")).await.unwrap(), None);
    assert!(objects_under(b, "staging").await.is_empty());
    assert!(objects_under(b, "blobs").await.is_empty());
}

/// A body over the limit, or one that breaks off, stores nothing.
pub(crate) async fn oversized_and_broken_bodies_store_nothing(b: &Blobs) {
    let d = Digest::of(b"0123456789");
    let err = b
        .store
        .put_blob(&d, body(&[b"01234", b"56789"]), Some(8))
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::TooLarge { limit: 8 }));
    let err = b
        .store
        .put_blob(&d, broken_body(b"01234"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Body(_)));
    assert_eq!(b.store.stat(&d).await.unwrap(), None);
    // Exactly the limit is allowed.
    let exact = Digest::of(b"01234567");
    b.store
        .put_blob(&exact, body(&[b"0123", b"4567"]), Some(8))
        .await
        .unwrap();
    let err = b
        .store
        .write_part("u1", broken_body(b"part"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Body(_)));
    assert!(objects_under(b, "staging").await.is_empty());
    assert!(objects_under(b, "uploads/u1").await.is_empty());
    assert_eq!(
        objects_under(b, "blobs").await,
        [blob_path(&exact).to_string()]
    );
}

/// The empty blob (the config of many OCI artifacts) is a blob like any
/// other, put whole or committed from an upload.
pub(crate) async fn the_empty_blob_is_stored_and_read(b: &Blobs) {
    let d = Digest::of(b"");
    assert_eq!(b.store.put_blob(&d, body(&[]), None).await.unwrap(), 0);
    assert_eq!(b.store.stat(&d).await.unwrap(), Some(0));
    assert_eq!(read_all(b, &d, None).await, b"");
    b.store.delete(&d).await.unwrap();
    // A session that received no part, then one that received one empty part.
    assert_eq!(b.store.commit_upload("u0", &[], &d, None).await.unwrap(), 0);
    assert_eq!(b.store.stat(&d).await.unwrap(), Some(0));
    b.store.delete(&d).await.unwrap();
    let part = b
        .store
        .write_part("u1", body(&[]), Some(RunningHash::new()))
        .await
        .unwrap();
    assert_eq!(part.size, 0);
    let parts = [part.name.clone()];
    assert_eq!(
        b.store
            .commit_upload("u1", &parts, &d, part.running)
            .await
            .unwrap(),
        0
    );
    assert_eq!(read_all(b, &d, None).await, b"");
}

/// Reads stream the whole blob or exactly the bytes of a range, across
/// every chunk boundary of the writes and reads.
pub(crate) async fn reads_whole_blobs_and_ranges_across_chunks(b: &Blobs) {
    // Past 8 MiB: the writes go in more than one multipart part.
    let data: Vec<u8> = (0..9 * 1024 * 1024 + 123)
        .map(|i| (i % 251) as u8)
        .collect();
    let d = Digest::of(&data);
    let size = b
        .store
        .put_blob(&d, owned_body(data.clone(), 300_000), None)
        .await
        .unwrap();
    assert_eq!(size, data.len() as u64);
    assert_eq!(b.store.stat(&d).await.unwrap(), Some(size));
    assert!(read_all(b, &d, None).await == data);
    let mib = 1024 * 1024;
    for (start, end) in [
        (0, 0),
        (0, 9),
        (mib - 10, 2 * mib + 10),
        (8 * mib - 1, 8 * mib),
        (size - 1, size - 1),
        (1, size - 1),
    ] {
        let got = read_all(b, &d, Some(ByteRange { start, end })).await;
        assert!(
            got == data[start as usize..=end as usize],
            "range {start}-{end}: {} bytes",
            got.len()
        );
    }
}

/// Parts written in several requests become the blob they hash to; the
/// session's parts go once committed.
pub(crate) async fn multi_part_upload_commits_verified_bytes(b: &Blobs) {
    let a = b
        .store
        .write_part("u1", body(&[b"hello "]), None)
        .await
        .unwrap();
    let c = b
        .store
        .write_part("u1", body(&[b"wor", b"ld"]), None)
        .await
        .unwrap();
    assert_eq!((a.size, c.size), (6, 5));
    assert_ne!(a.name, c.name);
    let d = Digest::of(b"hello world");
    let parts = [a.name, c.name];
    assert_eq!(
        b.store.commit_upload("u1", &parts, &d, None).await.unwrap(),
        11
    );
    assert_eq!(b.store.stat(&d).await.unwrap(), Some(11));
    assert_eq!(read_all(b, &d, None).await, b"hello world");
    assert_eq!(
        read_all(b, &d, Some(ByteRange { start: 6, end: 10 })).await,
        b"world"
    );
    assert!(objects_under(b, "uploads/u1").await.is_empty());
    assert!(objects_under(b, "staging").await.is_empty());
}

/// A commit whose bytes do not match the digest publishes nothing, and the
/// session's parts go all the same.
pub(crate) async fn a_mismatched_commit_publishes_nothing(b: &Blobs) {
    let a = b
        .store
        .write_part("u1", body(&[b"one"]), None)
        .await
        .unwrap();
    let c = b
        .store
        .write_part("u1", body(&[b"two"]), None)
        .await
        .unwrap();
    let d = Digest::of(b"onethree");
    let err = b
        .store
        .commit_upload("u1", &[a.name, c.name], &d, None)
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::DigestMismatch { .. }));
    assert_eq!(b.store.stat(&d).await.unwrap(), None);
    assert_eq!(b.store.stat(&Digest::of(b"onetwo")).await.unwrap(), None);
    assert!(objects_under(b, "uploads/u1").await.is_empty());
    assert!(objects_under(b, "staging").await.is_empty());
}

/// Two requests racing to write the first part of one session each get a
/// file of their own, and a running hash is trusted only for the files it
/// was fed from: the attacker's bytes are never published under the genuine
/// digest, whichever hash the commit is handed.
pub(crate) async fn racing_parts_never_publish_bytes_that_were_not_hashed(b: &Blobs) {
    let genuine: &'static [u8] = b"genuine layer bytes";
    let attacker: &'static [u8] = b"attacker bytes!!!!!";
    assert_eq!(genuine.len(), attacker.len());
    let d = Digest::of(genuine);
    let g = b
        .store
        .write_part("u3", body(&[genuine]), Some(RunningHash::new()))
        .await
        .unwrap();
    let a = b
        .store
        .write_part("u3", body(&[attacker]), Some(RunningHash::new()))
        .await
        .unwrap();
    assert_ne!(g.name, a.name);
    // The session recorded the attacker's part, but the genuine hash is
    // offered: it does not cover that file, so the part is rehashed.
    let err = b
        .store
        .commit_upload("u3", std::slice::from_ref(&a.name), &d, g.running.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::DigestMismatch { .. }));
    assert_eq!(b.store.stat(&d).await.unwrap(), None);

    let g = b
        .store
        .write_part("u4", body(&[genuine]), Some(RunningHash::new()))
        .await
        .unwrap();
    let a = b
        .store
        .write_part("u4", body(&[attacker]), Some(RunningHash::new()))
        .await
        .unwrap();
    // The session recorded the genuine part, the attacker's hash is
    // offered: the fast path is refused and the genuine file is rehashed.
    b.store
        .commit_upload("u4", std::slice::from_ref(&g.name), &d, a.running)
        .await
        .unwrap();
    assert_eq!(read_all(b, &d, None).await, genuine);
    assert!(objects_under(b, "uploads/u4").await.is_empty());
}

/// Two requests finishing the same session at once publish the blob once:
/// each either commits it or finds the session gone, never other bytes.
pub(crate) async fn racing_commits_of_one_session_publish_it_once(b: &Blobs) {
    for running in [false, true] {
        let upload = format!("u-{running}");
        let part = b
            .store
            .write_part(&upload, body(&[b"layer bytes"]), Some(RunningHash::new()))
            .await
            .unwrap();
        let d = Digest::of(b"layer bytes");
        let racers: Vec<_> = (0..4)
            .map(|_| {
                let (store, upload, d) = (b.store.clone(), upload.clone(), d.clone());
                let parts = vec![part.name.clone()];
                let hash = part.running.clone().filter(|_| running);
                tokio::spawn(async move { store.commit_upload(&upload, &parts, &d, hash).await })
            })
            .collect();
        let mut committed = 0;
        for racer in racers {
            match racer.await.unwrap() {
                Ok(size) => {
                    assert_eq!(size, 11);
                    committed += 1;
                }
                Err(BlobError::NotFound) => {}
                Err(e) => panic!("racing commit failed: {e}"),
            }
        }
        assert!(committed >= 1);
        assert_eq!(read_all(b, &d, None).await, b"layer bytes");
        assert!(objects_under(b, &format!("uploads/{upload}"))
            .await
            .is_empty());
        assert!(objects_under(b, "staging").await.is_empty());
        b.store.delete(&d).await.unwrap();
    }
}

/// A single part written with a running hash is published without being
/// read again; committing the same content again is idempotent.
pub(crate) async fn single_part_with_running_hash_is_published_in_place(b: &Blobs) {
    let part = b
        .store
        .write_part("u2", body(&[b"abc"]), Some(RunningHash::new()))
        .await
        .unwrap();
    let running = part.running.clone().unwrap();
    assert_eq!(running.parts(), std::slice::from_ref(&part.name));
    assert_eq!(running.len(), 3);
    let d = Digest::of(b"abc");
    b.store
        .commit_upload("u2", &[part.name], &d, part.running)
        .await
        .unwrap();
    assert_eq!(read_all(b, &d, None).await, b"abc");
    b.store.put_blob(&d, body(&[b"abc"]), None).await.unwrap();
    assert_eq!(b.store.stat(&d).await.unwrap(), Some(3));
    // A second session with the same content commits onto the existing blob.
    let again = b
        .store
        .write_part("u5", body(&[b"abc"]), Some(RunningHash::new()))
        .await
        .unwrap();
    b.store
        .commit_upload("u5", &[again.name], &d, again.running)
        .await
        .unwrap();
    assert_eq!(read_all(b, &d, None).await, b"abc");
    assert!(objects_under(b, "uploads").await.is_empty());
}

/// A part is discarded alone; a session is discarded whole, and only that
/// session, even one whose id starts another's.
pub(crate) async fn parts_and_sessions_are_discarded_alone(b: &Blobs) {
    let keep = b
        .store
        .write_part("u1", body(&[b"keep"]), None)
        .await
        .unwrap();
    let drop = b
        .store
        .write_part("u1", body(&[b"drop"]), None)
        .await
        .unwrap();
    let other = b
        .store
        .write_part("u10", body(&[b"other"]), None)
        .await
        .unwrap();
    b.store.discard_part("u1", &drop.name).await.unwrap();
    assert_eq!(
        objects_under(b, "uploads/u1").await,
        [format!("uploads/u1/{}", keep.name)]
    );
    // Names that could reach outside the session are refused.
    for bad in ["", "../u10", "a/b", "x y", "."] {
        assert!(
            matches!(
                b.store.discard_part("u1", bad).await,
                Err(BlobError::NotFound)
            ),
            "{bad:?}"
        );
    }
    b.store.discard_upload("u1").await.unwrap();
    b.store.discard_upload("u1").await.unwrap();
    assert!(objects_under(b, "uploads/u1").await.is_empty());
    assert_eq!(
        objects_under(b, "uploads/u10").await,
        [format!("uploads/u10/{}", other.name)]
    );
    // The other session still commits.
    let d = Digest::of(b"other");
    b.store
        .commit_upload("u10", &[other.name], &d, None)
        .await
        .unwrap();
    assert_eq!(read_all(b, &d, None).await, b"other");
}

/// A commit whose parts are gone (another request finished or cancelled the
/// session) is `NotFound`, and so is one naming a part outside the session.
pub(crate) async fn a_commit_without_its_parts_is_not_found(b: &Blobs) {
    let a = b
        .store
        .write_part("u1", body(&[b"one"]), None)
        .await
        .unwrap();
    let c = b
        .store
        .write_part("u1", body(&[b"two"]), Some(RunningHash::new()))
        .await
        .unwrap();
    b.store.discard_upload("u1").await.unwrap();
    let d = Digest::of(b"onetwo");
    let parts = [a.name.clone(), c.name.clone()];
    assert!(matches!(
        b.store.commit_upload("u1", &parts, &d, None).await,
        Err(BlobError::NotFound)
    ));
    let single = Digest::of(b"two");
    assert!(matches!(
        b.store
            .commit_upload("u1", std::slice::from_ref(&c.name), &single, c.running)
            .await,
        Err(BlobError::NotFound)
    ));
    let outside = ["../u2/x".to_owned()];
    assert!(matches!(
        b.store.commit_upload("u1", &outside, &d, None).await,
        Err(BlobError::NotFound)
    ));
    assert_eq!(b.store.stat(&d).await.unwrap(), None);
    assert_eq!(b.store.stat(&single).await.unwrap(), None);
    assert!(objects_under(b, "staging").await.is_empty());
}

/// Deleting a blob makes it absent; deleting it again is no error; it can
/// be stored again.
pub(crate) async fn deleted_blobs_are_gone_until_stored_again(b: &Blobs) {
    let d = Digest::of(b"layer");
    b.store.put_blob(&d, body(&[b"layer"]), None).await.unwrap();
    b.store.delete(&d).await.unwrap();
    b.store.delete(&d).await.unwrap();
    assert_eq!(b.store.stat(&d).await.unwrap(), None);
    assert!(matches!(
        b.store.read(&d, None).await,
        Err(BlobError::NotFound)
    ));
    b.store.put_blob(&d, body(&[b"layer"]), None).await.unwrap();
    assert_eq!(read_all(b, &d, None).await, b"layer");
}

/// A verified local file (a finished download) is committed and removed;
/// importing a digest that exists keeps the existing blob.
pub(crate) async fn verified_files_are_imported(b: &Blobs) {
    let dir = tempfile::tempdir().unwrap();
    let d = Digest::of(b"downloaded");
    let file = dir.path().join("download");
    std::fs::write(&file, b"downloaded").unwrap();
    b.store.import_verified_file(&d, &file).await.unwrap();
    assert!(!file.exists());
    assert_eq!(read_all(b, &d, None).await, b"downloaded");
    std::fs::write(&file, b"downloaded").unwrap();
    b.store.import_verified_file(&d, &file).await.unwrap();
    assert!(!file.exists());
    assert_eq!(b.store.stat(&d).await.unwrap(), Some(10));
}

/// Verification rehashes every blob and moves those whose bytes changed
/// into quarantine, where they stay for inspection; the others are kept.
pub(crate) async fn verify_quarantines_blobs_whose_bytes_do_not_match(b: &Blobs) {
    let good = Digest::of(b"good");
    let bad = Digest::of(b"bad!");
    b.store
        .put_blob(&good, body(&[b"good"]), None)
        .await
        .unwrap();
    b.store
        .put_blob(&bad, body(&[b"bad!"]), None)
        .await
        .unwrap();
    let clean = b.store.verify_blobs().await.unwrap();
    assert_eq!((clean.checked, clean.quarantined.len()), (2, 0));
    // The disk flips the bytes behind the store's back.
    b.objects
        .put(&blob_path(&bad), PutPayload::from_static(b"evil"))
        .await
        .unwrap();
    let report = b.store.verify_blobs().await.unwrap();
    assert_eq!(report.checked, 2);
    assert_eq!(report.quarantined, vec![bad.clone()]);
    assert_eq!(b.store.stat(&bad).await.unwrap(), None);
    assert_eq!(b.store.stat(&good).await.unwrap(), Some(4));
    let quarantined = objects_under(b, "quarantine/sha256").await;
    assert_eq!(quarantined.len(), 1);
    assert!(
        quarantined[0].starts_with(&format!("quarantine/sha256/{}.", bad.hex())),
        "{quarantined:?}"
    );
    let kept = b
        .objects
        .get(&Path::from(quarantined[0].as_str()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(kept.as_ref(), b"evil");
    assert!(b.store.verify_blobs().await.unwrap().quarantined.is_empty());
    // The quarantined bytes do not stand in the way of the genuine blob.
    b.store
        .put_blob(&bad, body(&[b"bad!"]), None)
        .await
        .unwrap();
    assert_eq!(read_all(b, &bad, None).await, b"bad!");
}

/// What a crash left in staging is removed at start-up; blobs stay.
pub(crate) async fn remove_staging_clears_what_a_crash_left(b: &Blobs) {
    assert_eq!(b.store.remove_staging().await.unwrap(), 0);
    for name in ["staging/a", "staging/b"] {
        b.objects
            .put(&Path::from(name), PutPayload::from_static(b"x"))
            .await
            .unwrap();
    }
    let d = Digest::of(b"kept");
    b.store.put_blob(&d, body(&[b"kept"]), None).await.unwrap();
    assert_eq!(b.store.remove_staging().await.unwrap(), 2);
    assert_eq!(b.store.remove_staging().await.unwrap(), 0);
    assert!(objects_under(b, "staging").await.is_empty());
    assert_eq!(b.store.stat(&d).await.unwrap(), Some(4));
}
