//! `TestBlobAPIs` of the redesigned suite (`conformance/run.go` and the
//! requests of `conformance/api.go` on `main`), once per digest algorithm
//! ("sha256 blobs", "sha512 blobs"): each way to push a blob, then `HEAD`,
//! `GET` and delete it (the delete seen at once); range requests; the empty
//! and `{}` blobs; and each push with a digest that does not match (400).
//! Pushes go to a hosted repository; range requests, reads, also through
//! the remote repository in front of docker-registry.

use reqwest::blocking::Response;
use reqwest::Method;

use crate::fixture::*;
use crate::support::*;

/// `chunkMin` of `api.go`.
const CHUNK_MIN: usize = 1024;

/// A blob of the case and its digest in the case's algorithm.
pub struct TestBlob {
    pub digest: String,
    pub bytes: Vec<u8>,
}

impl TestBlob {
    pub fn new(algorithm: &str, bytes: Vec<u8>) -> TestBlob {
        TestBlob {
            digest: digest_of(algorithm, &bytes),
            bytes,
        }
    }

    /// `genBlob(genWithBlobSize(size))`.
    pub fn random(algorithm: &str, size: usize) -> TestBlob {
        TestBlob::new(algorithm, random_bytes(size))
    }

    /// The blobs of "bad digest ...": the digest of `bytes`, sent with
    /// "oh no" appended.
    pub fn corrupt(algorithm: &str) -> TestBlob {
        let mut blob = TestBlob::random(algorithm, CHUNK_MIN * 3 - 5);
        blob.bytes.extend_from_slice(b"oh no");
        blob
    }
}

/// `VerifyDigest`: a `Docker-Content-Digest` header, if any, names the blob.
fn verify_digest(response: &Response, digest: &str) {
    if let Some(got) = header_opt(response, "docker-content-digest") {
        assert_eq!(got, digest, "Docker-Content-Digest");
    }
}

/// `BlobVerifyLocation`: the `Location` answered serves the bytes.
fn verify_location(t: &Target, location: &str, bytes: &[u8]) {
    let response = t.at(Method::GET, location).send().unwrap();
    assert_eq!(response.status(), 200, "GET {location}");
    assert_eq!(response.bytes().unwrap().as_ref(), bytes, "GET {location}");
}

/// `BlobPostOnly`: `POST ?digest=` with the bytes, `201` (a `202` is the
/// registry not supporting it, which the suite fails).
pub fn post_only(t: &Target, blob: &TestBlob, bad: bool) {
    let response = t
        .write(
            Method::POST,
            &with_query("blobs/uploads/", "digest", &blob.digest),
        )
        .header("content-type", "application/octet-stream")
        .body(blob.bytes.clone())
        .send()
        .unwrap();
    if bad {
        assert_eq!(response.status(), 400, "POST with a wrong digest");
        return;
    }
    assert_eq!(response.status(), 201, "POST ?digest= with the blob");
    verify_digest(&response, &blob.digest);
    verify_location(t, &location(&response), &blob.bytes);
}

/// `BlobPostPut`: `POST`, then `PUT ?digest=` with the bytes: `201`.
pub fn post_put(t: &Target, blob: &TestBlob, bad: bool) {
    let session = t.start_upload();
    let response = t
        .at(Method::PUT, &with_query(&session, "digest", &blob.digest))
        .header("content-type", "application/octet-stream")
        .body(blob.bytes.clone())
        .send()
        .unwrap();
    if bad {
        assert_eq!(response.status(), 400, "PUT with a wrong digest");
        return;
    }
    assert_eq!(response.status(), 201, "PUT ?digest=");
    verify_digest(&response, &blob.digest);
    verify_location(t, &location(&response), &blob.bytes);
}

/// `BlobPatchStream`: `POST` (`Content-Length: 0`), one `PATCH` without
/// `Content-Range`, then `PUT ?digest=` without a body: `201`.
pub fn patch_stream(t: &Target, blob: &TestBlob, bad: bool) {
    let post = t
        .write(Method::POST, "blobs/uploads/")
        .header("content-length", "0")
        .send()
        .unwrap();
    assert_eq!(post.status(), 202);
    let patch = t
        .at(Method::PATCH, &location(&post))
        .header("content-type", "application/octet-stream")
        .body(blob.bytes.clone())
        .send()
        .unwrap();
    assert_eq!(patch.status(), 202, "PATCH stream");
    let put = t
        .at(
            Method::PUT,
            &with_query(&location(&patch), "digest", &blob.digest),
        )
        .header("content-length", "0")
        .header("content-type", "application/octet-stream")
        .send()
        .unwrap();
    if bad {
        assert_eq!(put.status(), 400, "PUT with a wrong digest");
        return;
    }
    assert_eq!(put.status(), 201, "PUT closing the stream");
    verify_digest(&put, &blob.digest);
    verify_location(t, &location(&put), &blob.bytes);
}

/// The flags of `BlobPatchChunked`.
#[derive(Clone, Copy, Default)]
pub struct Chunked {
    pub put_last_chunk: bool,
    pub out_of_order: bool,
    pub bad_digest: bool,
}

/// `BlobPatchChunked`: `POST` (`Content-Length: 0`, `OCI-Chunk-Min-Length`
/// read), `PATCH` chunks of `len/3+1` bytes (at least the minimum and
/// `chunkMin`) with `Content-Range`, the last one by `PUT ?digest=` or an
/// empty closing `PUT`. Out of order: before each chunk, the chunk after it
/// is sent first (by `PUT` if it is the last) and must be `416`, and a `GET`
/// of the session must answer `204` with `Range: 0-<last byte received>`.
pub fn patch_chunked(t: &Target, blob: &TestBlob, flags: Chunked) -> Option<String> {
    let bytes = &blob.bytes;
    let post = t
        .write(Method::POST, "blobs/uploads/")
        .header("content-length", "0")
        .send()
        .unwrap();
    assert_eq!(post.status(), 202);
    let min_header = header_opt(&post, "oci-chunk-min-length");
    let mut chunk = bytes.len() / 3 + 1;
    if let Some(min) = min_header.as_deref().and_then(|m| m.parse::<usize>().ok()) {
        chunk = chunk.max(min);
    }
    let chunk = chunk.max(CHUNK_MIN).min(bytes.len());
    let mut at = location(&post);
    let mut last: i64 = -1;
    let len = bytes.len() as i64;
    while last < len - 1 {
        if flags.out_of_order {
            let mut bad_start = last + 1 + chunk as i64;
            if bad_start >= len {
                bad_start = 0;
            }
            let bad_last = (bad_start + chunk as i64 - 1).min(len - 1);
            let put = flags.put_last_chunk && bad_last == len - 1;
            let target = if put {
                with_query(&at, "digest", &blob.digest)
            } else {
                at.clone()
            };
            let response = t
                .at(if put { Method::PUT } else { Method::PATCH }, &target)
                .header("content-type", "application/octet-stream")
                .header("content-range", format!("{bad_start}-{bad_last}"))
                .body(bytes[bad_start as usize..=bad_last as usize].to_vec())
                .send()
                .unwrap();
            assert_eq!(
                response.status(),
                416,
                "out-of-order chunk {bad_start}-{bad_last}"
            );
            if let Some(l) = header_opt(&response, "location") {
                at = l;
            }
            let status = t.at(Method::GET, &at).send().unwrap();
            assert_eq!(status.status(), 204, "GET of the session");
            at = location(&status);
            let range = header(&status, "range");
            let end = range
                .strip_prefix("0-")
                .unwrap_or_else(|| panic!("Range without 0-: {range:?}"));
            let end: i64 = end.parse().unwrap_or_else(|_| panic!("Range {range:?}"));
            if last >= 0 {
                assert_eq!(end, last, "Range after the refused chunk");
            }
        }
        let start = last + 1;
        last = (start + chunk as i64 - 1).min(len - 1);
        let body = bytes[start as usize..=last as usize].to_vec();
        let range = format!("{start}-{last}");
        if flags.put_last_chunk && last == len - 1 {
            let response = t
                .at(Method::PUT, &with_query(&at, "digest", &blob.digest))
                .header("content-type", "application/octet-stream")
                .header("content-range", &range)
                .body(body)
                .send()
                .unwrap();
            if flags.bad_digest {
                assert_eq!(response.status(), 400, "closing PUT with a wrong digest");
                return min_header;
            }
            assert_eq!(
                response.status(),
                201,
                "closing PUT with the last chunk {range}"
            );
            verify_digest(&response, &blob.digest);
            verify_location(t, &location(&response), bytes);
            return min_header;
        }
        let response = t
            .at(Method::PATCH, &at)
            .header("content-type", "application/octet-stream")
            .header("content-range", &range)
            .body(body)
            .send()
            .unwrap();
        assert_eq!(response.status(), 202, "PATCH {range}");
        at = location(&response);
    }
    let response = t
        .at(Method::PUT, &with_query(&at, "digest", &blob.digest))
        .header("content-length", "0")
        .header("content-type", "application/octet-stream")
        .send()
        .unwrap();
    if flags.bad_digest {
        assert_eq!(response.status(), 400, "closing PUT with a wrong digest");
        return min_header;
    }
    assert_eq!(response.status(), 201, "closing PUT");
    verify_digest(&response, &blob.digest);
    verify_location(t, &location(&response), bytes);
    min_header
}

/// `BlobMount`: `POST ?mount=&from=` (no `from` when `source` is `None`);
/// `201` with a `Location` serving the blob.
fn blob_mount(t: &Target, source: Option<&str>, blob: &TestBlob) -> Response {
    let mut path = format!(
        "/v2/{}/blobs/uploads/?mount={}",
        t.write_name(),
        blob.digest
    );
    if let Some(source) = source {
        path = with_query(&path, "from", source);
    }
    t.writer().request(Method::POST, &path).send().unwrap()
}

/// A blob pushed to `<name>` of the case's second repository (`repo2`).
fn push_to_repo2(t: &Target, blob: &TestBlob) {
    let session = t
        .writer()
        .request(
            Method::POST,
            &format!("/v2/{}/blobs/uploads/", t.other_name()),
        )
        .send()
        .unwrap();
    assert_eq!(session.status(), 202);
    let put = t
        .at(
            Method::PUT,
            &with_query(&location(&session), "digest", &blob.digest),
        )
        .body(blob.bytes.clone())
        .send()
        .unwrap();
    assert_eq!(put.status(), 201);
}

/// `TestHeadBlob` (`BlobHeadExists`): 200, no body, the size, the digest.
pub fn head_blob(t: &Target, digest: &str, bytes: &[u8]) {
    let response = t
        .read(Method::HEAD, &format!("blobs/{digest}"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "HEAD blob {digest}");
    assert_eq!(header(&response, "content-length"), bytes.len().to_string());
    verify_digest(&response, digest);
    assert!(response.bytes().unwrap().is_empty());
}

/// `TestPullBlob` (`BlobGetExistsFull`): 200, the bytes, the size, the digest.
pub fn pull_blob(t: &Target, digest: &str, bytes: &[u8]) {
    let response = t
        .read(Method::GET, &format!("blobs/{digest}"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "GET blob {digest}");
    assert_eq!(header(&response, "content-length"), bytes.len().to_string());
    verify_digest(&response, digest);
    assert_eq!(response.bytes().unwrap().as_ref(), bytes);
}

/// `TestDeleteBlob`: `DELETE` is 202 (404 when never pushed; 405 is the
/// registry not supporting it), then `HEAD` is 404 at once.
pub fn delete_blob(t: &Target, name: &str, digest: &str) {
    let response = t
        .writer()
        .request(Method::DELETE, &format!("/v2/{name}/blobs/{digest}"))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    assert!(
        [202, 404].contains(&status),
        "DELETE blob {digest}: {status}"
    );
    let head = t
        .writer()
        .request(Method::HEAD, &format!("/v2/{name}/blobs/{digest}"))
        .send()
        .unwrap();
    assert_eq!(head.status(), 404, "HEAD after DELETE of {digest}");
}

/// A pushed blob checked as the suite does after each push API.
fn head_pull_delete(t: &Target, blob: &TestBlob) {
    head_blob(t, &blob.digest, &blob.bytes);
    pull_blob(t, &blob.digest, &blob.bytes);
    delete_blob(t, &t.write_name(), &blob.digest);
}

/// The cases of `TestBlobAPIs` for one algorithm.
macro_rules! blob_api_cases {
    ($module:ident, $algorithm:literal $(, remote = $kind:ident)? $(, ignore_remote = $why:literal)?) => {
        pub mod $module {
            #[allow(unused_imports)]
            use super::*;

            const ALGORITHM: &str = $algorithm;

            hosted_case!(
                /// "get-missing": GET of a blob never pushed is 404.
                get_missing,
                |t| {
                    let blob = TestBlob::random(ALGORITHM, 512);
                    let response = t.write(Method::GET, &format!("blobs/{}", blob.digest)).send().unwrap();
                    assert_eq!(response.status(), 404);
                }
            );

            hosted_case!(
                /// "post only": `POST ?digest=` with the blob (`BlobPostOnly`).
                post_only,
                |t| {
                    let blob = TestBlob::random(ALGORITHM, 512);
                    super::post_only(t, &blob, false);
                    head_pull_delete(t, &blob);
                }
            );

            hosted_case!(
                /// "post+put": `POST`, then `PUT ?digest=` (`BlobPostPut`).
                post_put,
                |t| {
                    let blob = TestBlob::random(ALGORITHM, 512);
                    super::post_put(t, &blob, false);
                    head_pull_delete(t, &blob);
                }
            );

            hosted_case!(
                /// "chunked single": one chunk (`BlobPatchChunked`).
                chunked_single,
                |t| {
                    let blob = TestBlob::random(ALGORITHM, 512);
                    patch_chunked(t, &blob, Chunked::default());
                    head_pull_delete(t, &blob);
                }
            );

            hosted_case!(
                /// "stream": one `PATCH` without `Content-Range` (`BlobPatchStream`).
                stream,
                |t| {
                    let blob = TestBlob::random(ALGORITHM, 512);
                    patch_stream(t, &blob, false);
                    head_pull_delete(t, &blob);
                }
            );

            hosted_case!(
                /// "mount": push to repo2, mount it from there: 201.
                mount,
                |t| {
                    let blob = TestBlob::random(ALGORITHM, 512);
                    push_to_repo2(t, &blob);
                    let response = blob_mount(t, Some(&t.other_name()), &blob);
                    assert_eq!(response.status(), 201, "mount from repo2");
                    verify_digest(&response, &blob.digest);
                    verify_location(t, &location(&response), &blob.bytes);
                    head_pull_delete(t, &blob);
                    delete_blob(t, &t.other_name(), &blob.digest);
                }
            );

            hosted_case!(
                /// "mount anonymous": push to repo2, mount without `from`: 201.
                mount_anonymous,
                |t| {
                    let blob = TestBlob::random(ALGORITHM, 512);
                    push_to_repo2(t, &blob);
                    let response = blob_mount(t, None, &blob);
                    assert_eq!(response.status(), 201, "mount without from");
                    verify_location(t, &location(&response), &blob.bytes);
                    head_pull_delete(t, &blob);
                    delete_blob(t, &t.other_name(), &blob.digest);
                }
            );

            hosted_case!(
                /// "mount missing": a mount from repo2 of a blob it lacks is
                /// 202 with a session, where the blob is then pushed.
                mount_missing,
                |t| {
                    let blob = TestBlob::random(ALGORITHM, 512);
                    let response = blob_mount(t, Some(&t.other_name()), &blob);
                    assert_eq!(response.status(), 202, "mount of a missing blob");
                    let put = t
                        .at(Method::PUT, &with_query(&location(&response), "digest", &blob.digest))
                        .body(blob.bytes.clone())
                        .send()
                        .unwrap();
                    assert_eq!(put.status(), 201);
                    verify_location(t, &location(&put), &blob.bytes);
                    head_pull_delete(t, &blob);
                }
            );

            hosted_case!(
                /// "post cancel": `POST`, then `DELETE` of the session: 204.
                post_cancel,
                |t| {
                    let blob = TestBlob::random(ALGORITHM, 512);
                    let session = t.start_upload();
                    let response = t.at(Method::DELETE, &session).header("content-length", "0").send().unwrap();
                    assert_eq!(response.status(), 204);
                    delete_blob(t, &t.write_name(), &blob.digest);
                }
            );

            hosted_case!(
                /// "chunked multi": three chunks, an empty closing `PUT`.
                chunked_multi,
                |t| {
                    let blob = TestBlob::random(ALGORITHM, CHUNK_MIN * 3 - 5);
                    patch_chunked(t, &blob, Chunked::default());
                    head_pull_delete(t, &blob);
                }
            );

            hosted_case!(
                /// "chunked multi and put chunk": the last chunk in the closing `PUT`.
                chunked_multi_and_put_chunk,
                |t| {
                    let blob = TestBlob::random(ALGORITHM, CHUNK_MIN * 3 - 5);
                    patch_chunked(t, &blob, Chunked { put_last_chunk: true, ..Chunked::default() });
                    head_pull_delete(t, &blob);
                }
            );

            hosted_case!(
                /// "chunked out-of-order": each chunk preceded by the next (416).
                chunked_out_of_order,
                |t| {
                    let blob = TestBlob::random(ALGORITHM, CHUNK_MIN * 3 - 5);
                    patch_chunked(t, &blob, Chunked { out_of_order: true, ..Chunked::default() });
                    head_pull_delete(t, &blob);
                }
            );

            hosted_case!(
                /// "chunked out-of-order and put chunk".
                chunked_out_of_order_and_put_chunk,
                |t| {
                    let blob = TestBlob::random(ALGORITHM, CHUNK_MIN * 3 - 5);
                    patch_chunked(
                        t,
                        &blob,
                        Chunked { put_last_chunk: true, out_of_order: true, ..Chunked::default() },
                    );
                    head_pull_delete(t, &blob);
                }
            );

            /// "range requests": a 2048-byte blob and six ranges; a full
            /// `200` answer is the registry not supporting ranges (a failure).
            fn range(t: &Target, range: &str, expect: Option<(usize, usize)>) {
                let blob = TestBlob::random(ALGORITHM, 2048);
                t.push_blob_as(&blob.digest, &blob.bytes);
                let response = t
                    .read(Method::GET, &format!("blobs/{}", blob.digest))
                    .header("range", range)
                    .send()
                    .unwrap();
                match expect {
                    Some((start, end)) => {
                        assert_eq!(response.status(), 206, "{range}");
                        assert_eq!(header(&response, "content-length"), (end - start + 1).to_string());
                        let content_range = header(&response, "content-range");
                        assert!(
                            content_range == format!("bytes {start}-{end}/2048")
                                || content_range == format!("bytes {start}-{end}/*"),
                            "{content_range}"
                        );
                        assert_eq!(response.bytes().unwrap().as_ref(), &blob.bytes[start..=end]);
                    }
                    None => assert_eq!(response.status(), 416, "{range}"),
                }
                if t.kind == Kind::Hosted {
                    delete_blob(t, &t.write_name(), &blob.digest);
                }
            }

            read_case!(
                /// "range requests" / "range 500-1499".
                range_500_1499 $(, remote = $kind)? $(, ignore_remote = $why)?,
                |t| { range(t, "bytes=500-1499", Some((500, 1499))) }
            );
            read_case!(
                /// "range requests" / "range 500-".
                range_500_to_end $(, remote = $kind)? $(, ignore_remote = $why)?,
                |t| { range(t, "bytes=500-", Some((500, 2047))) }
            );
            read_case!(
                /// "range requests" / "range -500".
                range_minus_500 $(, remote = $kind)? $(, ignore_remote = $why)?,
                |t| { range(t, "bytes=-500", Some((1548, 2047))) }
            );
            read_case!(
                /// "range requests" / "range 2000-5000" (clipped to the end).
                range_2000_5000 $(, remote = $kind)? $(, ignore_remote = $why)?,
                |t| { range(t, "bytes=2000-5000", Some((2000, 2047))) }
            );
            read_case!(
                /// "range requests" / "range 500-0": 416.
                range_500_0 $(, remote = $kind)? $(, ignore_remote = $why)?,
                |t| { range(t, "bytes=500-0", None) }
            );
            read_case!(
                /// "range requests" / "range 5000-10000": 416.
                range_5000_10000 $(, remote = $kind)? $(, ignore_remote = $why)?,
                |t| { range(t, "bytes=5000-10000", None) }
            );

            /// A well-known blob pushed by the first push API, then `HEAD`,
            /// `GET` and delete.
            fn well_known(t: &Target, bytes: &[u8]) {
                let blob = TestBlob::new(ALGORITHM, bytes.to_vec());
                super::post_put(t, &blob, false);
                head_pull_delete(t, &blob);
            }

            hosted_case!(
                /// "empty": the zero-byte blob.
                empty,
                |t| { well_known(t, b"") }
            );

            hosted_case!(
                /// "emptyJSON": the `{}` blob.
                empty_json,
                |t| { well_known(t, b"{}") }
            );

            hosted_case!(
                /// "bad digest post only": 400.
                bad_digest_post_only,
                |t| { super::post_only(t, &TestBlob::corrupt(ALGORITHM), true) }
            );

            hosted_case!(
                /// "bad digest post+put": 400.
                bad_digest_post_put,
                |t| { super::post_put(t, &TestBlob::corrupt(ALGORITHM), true) }
            );

            hosted_case!(
                /// "bad digest chunked": the closing `PUT` is 400.
                bad_digest_chunked,
                |t| {
                    patch_chunked(t, &TestBlob::corrupt(ALGORITHM), Chunked { bad_digest: true, ..Chunked::default() });
                }
            );

            hosted_case!(
                /// "bad digest chunked and put chunk" (the suite sends it
                /// like "bad digest chunked"; here the last chunk is in the
                /// closing `PUT`).
                bad_digest_chunked_and_put_chunk,
                |t| {
                    patch_chunked(
                        t,
                        &TestBlob::corrupt(ALGORITHM),
                        Chunked { bad_digest: true, put_last_chunk: true, ..Chunked::default() },
                    );
                }
            );

            hosted_case!(
                /// "bad digest stream": 400.
                bad_digest_stream,
                |t| { patch_stream(t, &TestBlob::corrupt(ALGORITHM), true) }
            );
        }
    };
}

blob_api_cases!(sha256_blobs, "sha256");
blob_api_cases!(sha512_blobs, "sha512", remote = RemoteEntrepot);
