//! Stored blobs and Python files on plain HTTP/1.1 leave by `sendfile`, from
//! their files to the socket (entrepot_api::zero_copy), with HTTP's
//! semantics whole: ranges, keep-alive, pipelined requests, HEAD, and
//! another response between two blobs on one connection. Over TLS the same
//! requests stream through memory (tests/tls.rs); these check the bytes that
//! arrive are the blob's, and that a damaged file never passes for one.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::io::Write;

use support::{random_bytes, read_answer, sha256, Entrepot, RawConnection};

const APP: &str = "default/images/app";

fn server_with_blob(len: usize) -> (Entrepot, Vec<u8>, String) {
    let server = Entrepot::start();
    server.create_repository("images");
    let bytes = random_bytes(len);
    let digest = server.push_blob(APP, &bytes);
    (server, bytes, digest)
}

#[test]
fn whole_blobs_and_ranges_arrive_intact_on_one_kept_alive_connection() {
    // Larger than one placeholder chunk (8 MiB), not a multiple of it.
    let (server, bytes, digest) = server_with_blob(9 * 1024 * 1024 + 4321);
    let path = format!("/v2/{APP}/blobs/{digest}");
    let mut raw = RawConnection::connect(&server);
    for _ in 0..3 {
        let answer = raw.send("GET", &path, "", b"");
        assert_eq!(answer.status, 200, "{}", answer.head);
        assert_eq!(sha256(&answer.body), digest);
    }
    let last = bytes.len() - 1;
    for (start, end) in [
        (0, 0),
        (17, 70_000),
        (8 * 1024 * 1024 - 3, 8 * 1024 * 1024 + 3),
        (last - 9, last),
    ] {
        let answer = raw.send(
            "GET",
            &path,
            &format!("Range: bytes={start}-{end}\r\n"),
            b"",
        );
        assert_eq!(answer.status, 206, "{}", answer.head);
        assert_eq!(
            answer.header("content-range").unwrap(),
            format!("bytes {start}-{end}/{}", bytes.len())
        );
        assert_eq!(answer.body, &bytes[start..=end], "range {start}-{end}");
    }
    // Another kind of response between two blobs, on the same connection.
    let answer = raw.send("GET", "/v2/", "", b"");
    assert_eq!(answer.status, 200, "{}", answer.head);
    let answer = raw.send("GET", &path, "", b"");
    assert_eq!(sha256(&answer.body), digest);
}

#[test]
fn pipelined_blob_requests_get_their_own_bytes_in_order() {
    let server = Entrepot::start();
    server.create_repository("images");
    let blobs: Vec<Vec<u8>> = (0..4).map(|i| random_bytes(1_000_000 + i * 7919)).collect();
    let digests: Vec<String> = blobs.iter().map(|b| server.push_blob(APP, b)).collect();
    let mut raw = RawConnection::connect(&server);
    // Every request in one write, before reading any answer; a HEAD and a
    // range in the middle.
    let mut requests = Vec::new();
    for (i, digest) in digests.iter().enumerate() {
        let path = format!("/v2/{APP}/blobs/{digest}");
        let range = if i == 2 { "Range: bytes=5-104\r\n" } else { "" };
        write!(
            requests,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n{range}\r\n",
            server.addr, server.admin_token
        )
        .unwrap();
    }
    raw.stream.write_all(&requests).unwrap();
    for (i, blob) in blobs.iter().enumerate() {
        let answer = read_answer(&mut raw.stream).unwrap();
        if i == 2 {
            assert_eq!(answer.status, 206, "{}", answer.head);
            assert_eq!(answer.body, &blob[5..=104]);
        } else {
            assert_eq!(answer.status, 200, "{}", answer.head);
            assert_eq!(sha256(&answer.body), digests[i]);
        }
    }
}

#[test]
fn head_sends_no_body_and_the_next_get_still_gets_the_blob() {
    let (server, bytes, digest) = server_with_blob(300_000);
    let path = format!("/v2/{APP}/blobs/{digest}");
    let mut raw = RawConnection::connect(&server);
    raw.head("HEAD", &path, "", Some(0));
    let head = support::read_head(&mut raw.stream).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        support::header_of(&head, "content-length").unwrap(),
        bytes.len().to_string()
    );
    let answer = raw.send("GET", &path, "", b"");
    assert_eq!(sha256(&answer.body), digest);
}

#[test]
fn a_blob_file_cut_short_on_disk_is_never_served_as_the_whole_blob() {
    let (server, bytes, digest) = server_with_blob(2_000_000);
    let file = server.blob_file(&digest);
    let truncated = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    truncated.set_len(bytes.len() as u64 / 2).unwrap();
    drop(truncated);
    let mut raw = RawConnection::connect(&server);
    let path = format!("/v2/{APP}/blobs/{digest}");
    raw.head("GET", &path, "", Some(0));
    // Either an error status or a body cut off by the connection's end:
    // never the recorded length of bytes.
    match read_answer(&mut raw.stream) {
        Ok(answer) => assert_ne!(answer.status, 200, "a short file served whole"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}"),
    }
}
