//! The blob store holds only verified bytes, whatever clients race or send;
//! connections are bounded; and the data directory is private. Each test is
//! an attack or a failure from a hostile review, replayed by raw HTTP against
//! the real binary.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use support::{
    assert_oci_error, blob_path, eventually, random_bytes, read_answer, sha256, Entrepot,
    RawConnection, OCI_CONFIG, OCI_MANIFEST,
};

const APP: &str = "default/images/app";

fn server_with(env: &[(&str, &str)]) -> Entrepot {
    let server = Entrepot::builder().envs(env).start();
    server.create_repository("images");
    server
}

/// `POST .../blobs/uploads/` and the session path from `Location`.
fn open_session(server: &Entrepot, image: &str) -> String {
    let mut raw = RawConnection::connect(server);
    let answer = raw.send("POST", &format!("/v2/{image}/blobs/uploads/"), "", b"");
    assert_eq!(answer.status, 202, "{answer:?}");
    answer.header("location").unwrap()
}

fn get_blob(server: &Entrepot, image: &str, digest: &str) -> (u16, Vec<u8>) {
    let response = server.get(&format!("/v2/{image}/blobs/{digest}"));
    let status = response.status().as_u16();
    (status, response.bytes().unwrap().to_vec())
}

/// CRITICAL 1. Two PATCHes race to write part 0 of one session, one with a
/// public layer's bytes, one with an attacker's bytes of the same length;
/// then the session is finished under the genuine digest. Whatever the server
/// answers, the store must never serve the attacker's bytes under that digest
/// (here, in another project, or to a later push).
#[test]
fn racing_patches_never_publish_attacker_bytes_under_the_genuine_digest() {
    let server = server_with(&[]);
    server.create_repository_in("default", "other");
    const ROUNDS: usize = 24;
    for round in 0..ROUNDS {
        let genuine = random_bytes(64 * 1024 + round);
        let attacker = random_bytes(genuine.len());
        let digest = sha256(&genuine);
        let session = open_session(&server, APP);
        if round % 2 == 0 {
            // The attacker's PATCH is in flight, stalled mid-body, while the
            // genuine one completes and wins; then the attacker's completes.
            let mut slow = RawConnection::connect(&server);
            slow.head("PATCH", &session, "", Some(attacker.len()));
            slow.stream
                .write_all(&attacker[..attacker.len() / 2])
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
            let mut fast = RawConnection::connect(&server);
            let won = fast.send("PATCH", &session, "", &genuine);
            assert_eq!(won.status, 202, "{won:?}");
            slow.stream
                .write_all(&attacker[attacker.len() / 2..])
                .unwrap();
            let lost = read_answer(&mut slow.stream).unwrap();
            assert_ne!(lost.status / 100, 5, "{lost:?}");
        } else {
            // Both at once.
            let barrier = Arc::new(Barrier::new(2));
            let handles: Vec<_> = [genuine.clone(), attacker.clone()]
                .into_iter()
                .map(|bytes| {
                    let mut raw = RawConnection::connect(&server);
                    let (barrier, session) = (barrier.clone(), session.clone());
                    std::thread::spawn(move || {
                        raw.head("PATCH", &session, "", Some(bytes.len()));
                        barrier.wait();
                        raw.stream.write_all(&bytes).unwrap();
                        read_answer(&mut raw.stream).unwrap().status
                    })
                })
                .collect();
            for h in handles {
                let status = h.join().unwrap();
                assert!(status == 202 || status == 400, "PATCH answered {status}");
            }
        }
        let mut raw = RawConnection::connect(&server);
        let finished = raw.send("PUT", &format!("{session}?digest={digest}"), "", b"");
        assert_ne!(finished.status / 100, 5, "{finished:?}");
        let (status, body) = get_blob(&server, APP, &digest);
        assert!(
            status == 404 || (status == 200 && body == genuine),
            "round {round}: GET {digest} answered {status} with {} bytes, {}",
            body.len(),
            if body == attacker {
                "the attacker's bytes"
            } else {
                "not the genuine bytes"
            }
        );
        if round % 6 == 0 {
            // Another tenant pushes the genuine layer and reads it back.
            server.push_blob("default/other/app", &genuine);
            let (status, body) = get_blob(&server, "default/other/app", &digest);
            assert_eq!(status, 200);
            assert!(
                body == genuine,
                "round {round}: another push reads back other bytes"
            );
        }
    }
    assert!(
        !server.log_text().contains("ERROR"),
        "{}",
        server.log_text()
    );
}

fn quarantined(data_dir: &Path) -> Vec<Vec<u8>> {
    match std::fs::read_dir(data_dir.join("blobs/quarantine/sha256")) {
        Ok(entries) => entries
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A blob whose bytes no longer match its digest (poisoned before the fix,
/// or damaged on disk) is found by `entrepot admin verify-blobs` and by the
/// start-up check, moved to quarantine (never deleted), reported, and can be
/// pushed again.
#[test]
fn verify_blobs_quarantines_a_corrupted_blob_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let options = || {
        Entrepot::builder()
            .data_dir(&data_dir)
            .env("ENTREPOT_VERIFY_BLOBS_ON_START", "always")
    };
    let server = options().start();
    server.create_repository("images");
    let (good, bad) = (random_bytes(3000), random_bytes(5000));
    let good_digest = server.push_blob(APP, &good);
    let bad_digest = server.push_blob(APP, &bad);
    drop(server);

    std::fs::write(blob_path(&data_dir, &bad_digest), random_bytes(5000)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_entrepot"))
        .args(["admin", "verify-blobs", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report.contains("Checked 2 blobs: 1 did not match"),
        "{report}"
    );
    assert!(report.contains(&bad_digest), "{report}");
    assert!(!blob_path(&data_dir, &bad_digest).exists());
    assert!(blob_path(&data_dir, &good_digest).exists());
    assert_eq!(quarantined(&data_dir).len(), 1);
    let again = Command::new(env!("CARGO_BIN_EXE_entrepot"))
        .args(["admin", "verify-blobs", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(again.status.success());

    // The server does not claim the quarantined blob, so the client pushes it again.
    let server = options().start();
    let head = server
        .request(Method::HEAD, &format!("/v2/{APP}/blobs/{bad_digest}"))
        .send()
        .unwrap();
    assert_eq!(head.status(), 404);
    server.create_repository("mirror");
    let mount = server
        .request(
            Method::POST,
            &format!("/v2/default/mirror/app/blobs/uploads/?mount={bad_digest}&from={APP}"),
        )
        .send()
        .unwrap();
    assert_eq!(mount.status(), 202, "a quarantined blob was mounted");
    server.push_blob(APP, &bad);
    assert_eq!(get_blob(&server, APP, &bad_digest), (200, bad.clone()));

    // The start-up check finds damage on its own.
    drop(server);
    std::fs::write(blob_path(&data_dir, &good_digest), b"rotten").unwrap();
    let server = options().start();
    assert!(
        eventually(Duration::from_secs(60), || server
            .log_text()
            .contains("moved to quarantine")),
        "{}",
        server.log_text()
    );
    assert_eq!(get_blob(&server, APP, &good_digest).0, 404);
    assert_eq!(quarantined(&data_dir).len(), 2);
    assert!(quarantined(&data_dir).contains(&b"rotten".to_vec()));
}

/// Many pushers of small blobs at once, each by POST, PATCH and PUT, some of
/// them pushing the same bytes: no request fails (a shared directory used to
/// vanish under a writer: `Unable to create dir .../uploads/<uuid>`).
#[test]
fn concurrent_pushers_of_small_blobs_all_succeed() {
    let server = Arc::new(server_with(&[]));
    const THREADS: usize = 8;
    const UPLOADS: usize = 500;
    let shared: Arc<Vec<Vec<u8>>> = Arc::new((0..20).map(|_| random_bytes(512)).collect());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (server, shared) = (server.clone(), shared.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                for i in 0..UPLOADS {
                    let bytes = if i % 5 == 0 {
                        shared[(i / 5 + t) % shared.len()].clone()
                    } else {
                        random_bytes(100 + i)
                    };
                    let digest = sha256(&bytes);
                    let started = server
                        .request(Method::POST, &format!("/v2/{APP}/blobs/uploads/"))
                        .send()
                        .unwrap();
                    if started.status() != 202 {
                        failures.push(format!("POST {}", started.status()));
                        continue;
                    }
                    let location = support::header(&started, "location");
                    let patched = server
                        .request(Method::PATCH, &location)
                        .header("content-type", "application/octet-stream")
                        .body(bytes)
                        .send()
                        .unwrap();
                    if patched.status() != 202 {
                        failures.push(format!("PATCH {}", patched.status()));
                        continue;
                    }
                    let location = support::header(&patched, "location");
                    let finished = server
                        .request(Method::PUT, &format!("{location}?digest={digest}"))
                        .send()
                        .unwrap();
                    if finished.status() != 201 {
                        failures.push(format!(
                            "PUT {}: {}",
                            finished.status(),
                            finished.text().unwrap_or_default()
                        ));
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} uploads failed, e.g. {:?}\n{}",
        failures.len(),
        THREADS * UPLOADS,
        &failures[..failures.len().min(5)],
        server.log_text()
    );
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The data directory is the server's alone: 0700, and the database (with
/// its WAL and shared-memory files) and blobs 0600, whatever the umask.
#[cfg(unix)]
#[test]
fn data_directory_and_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("fresh");
    let server = Entrepot::builder().data_dir(&data_dir).start();
    server.create_repository("images");
    let digest = server.push_blob(APP, &random_bytes(2048));
    assert_eq!(mode(&data_dir), 0o700);
    for file in ["metadata.db", "metadata.db-wal", "metadata.db-shm"] {
        assert_eq!(mode(&data_dir.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&data_dir.join("blobs")), 0o700);
    assert_eq!(mode(&blob_path(&data_dir, &digest)), 0o600);

    // A data directory from before is tightened at start.
    drop(server);
    use std::os::unix::fs::PermissionsExt as _;
    for (path, m) in [
        (data_dir.clone(), 0o755),
        (data_dir.join("metadata.db"), 0o644),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
    }
    let _server = Entrepot::builder().data_dir(&data_dir).start();
    assert_eq!(mode(&data_dir), 0o700);
    assert_eq!(mode(&data_dir.join("metadata.db")), 0o600);
}

/// A chunk whose body is not as long as its `Content-Range` says is refused
/// with 416 and changes nothing; several ranges on a download are ignored
/// (RFC 9110) and the whole blob is sent.
#[test]
fn content_range_must_match_the_body_and_multiple_ranges_are_ignored() {
    let server = server_with(&[]);
    let session = open_session(&server, APP);
    let mut raw = RawConnection::connect(&server);
    // Announced by Content-Length.
    let short = raw.send("PATCH", &session, "Content-Range: 0-9\r\n", b"01234");
    assert_eq!(short.status, 416, "{short:?}");
    // A refused request's body may be left unread and its connection closed
    // (hyper does so when the answer goes out first): a new one each time.
    let mut raw = RawConnection::connect(&server);
    // Discovered only at the end of a chunked body.
    raw.head("PATCH", &session, "Content-Range: 0-9\r\n", None);
    raw.stream.write_all(b"5\r\n01234\r\n0\r\n\r\n").unwrap();
    let chunked = read_answer(&mut raw.stream).unwrap();
    assert_eq!(chunked.status, 416, "{chunked:?}");
    let mut raw = RawConnection::connect(&server);
    // The session is as it was: empty.
    let status = raw.send("GET", &session, "", b"");
    assert_eq!(status.status, 204, "{status:?}");
    assert_eq!(status.header("range").as_deref(), Some("0-0"));
    let ok = raw.send("PATCH", &session, "Content-Range: 0-4\r\n", b"01234");
    assert_eq!(ok.status, 202, "{ok:?}");
    assert_eq!(ok.header("range").as_deref(), Some("0-4"));
    let digest = sha256(b"01234");
    let done = raw.send("PUT", &format!("{session}?digest={digest}"), "", b"");
    assert_eq!(done.status, 201, "{done:?}");

    let response = server
        .request(Method::GET, &format!("/v2/{APP}/blobs/{digest}"))
        .header("range", "bytes=0-1,3-4")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().unwrap().as_ref(), b"01234");
    let response = server
        .request(Method::GET, &format!("/v2/{APP}/blobs/{digest}"))
        .header("range", "bytes=1-2")
        .send()
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.bytes().unwrap().as_ref(), b"12");
}

/// A manifest whose descriptors give sizes other than the content's is
/// refused with MANIFEST_INVALID, for the config as for layers.
#[test]
fn manifest_descriptor_sizes_must_match_the_blobs() {
    let server = server_with(&[]);
    let config = json!({"architecture": "amd64", "os": "linux"})
        .to_string()
        .into_bytes();
    let layer = random_bytes(1000);
    let (config_digest, layer_digest) = (
        server.push_blob(APP, &config),
        server.push_blob(APP, &layer),
    );
    let manifest = |config_size: usize, layer_size: usize| {
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": support::LAYER_TAR, "digest": layer_digest, "size": layer_size}],
        })
        .to_string()
        .into_bytes()
    };
    for (c, l) in [(config.len() + 1, layer.len()), (config.len(), 1)] {
        let response = server.put_manifest(APP, "v1", OCI_MANIFEST, &manifest(c, l));
        assert_oci_error(response, 400, "MANIFEST_INVALID");
    }
    let tags = server.get(&format!("/v2/{APP}/tags/list"));
    assert_eq!(tags.status(), 404);
    let response = server.put_manifest(
        APP,
        "v1",
        OCI_MANIFEST,
        &manifest(config.len(), layer.len()),
    );
    assert_eq!(response.status(), 201);
}

/// A client that goes away in the middle of an upload body is its own
/// failure: no ERROR in the log, and the session still works.
#[test]
fn a_client_disconnecting_mid_body_is_not_a_server_error() {
    let server = server_with(&[]);
    let session = open_session(&server, APP);
    {
        let mut raw = RawConnection::connect(&server);
        raw.head("PATCH", &session, "", Some(100_000));
        raw.stream.write_all(&random_bytes(1000)).unwrap();
    }
    assert!(
        eventually(Duration::from_secs(30), || server
            .log_text()
            .contains("request body ended early")),
        "{}",
        server.log_text()
    );
    let log = server.log_text();
    assert!(!log.contains("ERROR"), "{log}");
    let mut raw = RawConnection::connect(&server);
    let ok = raw.send("PATCH", &session, "", b"abc");
    assert_eq!(ok.status, 202, "{ok:?}");
    assert_eq!(ok.header("range").as_deref(), Some("0-2"));
}

/// Whether the server closed the connection: a read ends (EOF or reset)
/// rather than timing out.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

/// HIGH 7 (slowloris). A connection that sends half a request line is closed
/// once the header deadline passes; an idle keep-alive connection once the
/// idle timeout passes.
#[test]
fn slow_request_heads_and_idle_connections_are_closed() {
    let server = server_with(&[
        ("ENTREPOT_HEADER_READ_TIMEOUT_SECS", "1"),
        ("ENTREPOT_IDLE_TIMEOUT_SECS", "1"),
    ]);
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    slow.write_all(b"GET /healthz HT").unwrap();
    assert!(
        closed_by_server(&mut slow),
        "a half-sent request line stayed open"
    );

    let mut silent = TcpStream::connect(&server.addr).unwrap();
    assert!(
        closed_by_server(&mut silent),
        "a silent connection stayed open"
    );

    let mut idle = RawConnection::connect(&server);
    let answer = idle.send("GET", "/healthz", "", b"");
    assert_eq!(answer.status, 200);
    assert!(
        closed_by_server(&mut idle.stream),
        "an idle keep-alive connection stayed open"
    );

    // Headers that never end, with the idle timeout out of the way.
    let long_idle = server_with(&[("ENTREPOT_HEADER_READ_TIMEOUT_SECS", "1")]);
    let mut slow = TcpStream::connect(&long_idle.addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert!(closed_by_server(&mut slow), "half-sent headers stayed open");
}

/// A request head larger than a connection's read buffer may grow (32 KiB,
/// up to twice that as hyper rounds its allocations up) is refused with 431
/// instead of growing the buffer, which the connection would keep while
/// idle; hyper's own limit let 500 KiB through. A head of ordinary size, on
/// a new connection, is served.
#[test]
fn request_heads_over_the_buffer_limit_are_refused() {
    let server = server_with(&[]);
    let padding = |n: usize| format!("X-Padding: {}\r\n", "a".repeat(n));

    // The server may answer and close before it has read the whole head, so
    // the write may fail and the answer may be cut by a reset: refused either
    // way, as long as nothing but a 431 comes back and the server does not
    // just sit on the connection.
    let mut huge = TcpStream::connect(&server.addr).unwrap();
    huge.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n{}Content-Length: 0\r\n\r\n",
        padding(256 * 1024)
    );
    let _ = huge.write_all(head.as_bytes());
    match read_answer(&mut huge) {
        Ok(answer) => assert_eq!(answer.status, 431, "{answer:?}"),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the server neither answered nor closed the connection: {e}"
        ),
    }

    let mut fine = RawConnection::connect(&server);
    fine.head("GET", "/healthz", &padding(16 * 1024), Some(0));
    let answer = read_answer(&mut fine.stream).unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// With a low connection limit, connections over it are answered 503 and
/// closed while a client already connected keeps being served, and a freed
/// slot serves a new client.
#[test]
fn connections_over_the_limit_are_refused_and_existing_clients_still_work() {
    let server = server_with(&[("ENTREPOT_MAX_CONNECTIONS", "4")]);
    let mut client = RawConnection::connect(&server);
    assert_eq!(client.send("GET", "/healthz", "", b"").status, 200);
    let mut idle: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    // The accept loop takes the idle ones in order; one more is over the limit.
    assert!(eventually(Duration::from_secs(30), || {
        let mut extra = TcpStream::connect(&server.addr).unwrap();
        extra
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = String::new();
        let _ = extra.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 503")
    }));
    assert_eq!(client.send("GET", "/healthz", "", b"").status, 200);
    assert!(
        eventually(Duration::from_secs(60), || server
            .log_text()
            .contains("connection limit reached")),
        "{}",
        server.log_text()
    );
    idle.clear();
    assert!(eventually(Duration::from_secs(30), || {
        let mut fresh = RawConnection::connect(&server);
        fresh
            .stream
            .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes())
            .is_ok()
            && read_answer(&mut fresh.stream).is_ok_and(|a| a.status == 200)
    }));
}

/// Long transfers that keep moving are never cut by the header deadline or
/// the idle timeout, even with pauses longer than both.
#[test]
fn slow_but_progressing_transfers_complete() {
    let server = server_with(&[
        ("ENTREPOT_HEADER_READ_TIMEOUT_SECS", "1"),
        ("ENTREPOT_IDLE_TIMEOUT_SECS", "1"),
    ]);
    let blob = random_bytes(16 * 1024 * 1024);
    let digest = server.push_blob(APP, &blob);

    let mut download = RawConnection::connect(&server);
    download.head("GET", &format!("/v2/{APP}/blobs/{digest}"), "", Some(0));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(download.stream.read(&mut byte).unwrap(), 1);
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"));
    let mut got = Vec::with_capacity(blob.len());
    let mut buf = vec![0u8; 1024 * 1024];
    let mut pauses = 0;
    while got.len() < blob.len() {
        let n = download.stream.read(&mut buf).unwrap();
        assert_ne!(n, 0, "download cut after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
        if pauses < 3 && got.len() > (pauses + 1) * 4 * 1024 * 1024 {
            std::thread::sleep(Duration::from_millis(1500));
            pauses += 1;
        }
    }
    assert!(got == blob, "downloaded bytes differ");

    // An upload body sent in pieces with pauses.
    let session = open_session(&server, APP);
    let body = random_bytes(3 * 1024 * 1024);
    let mut upload = RawConnection::connect(&server);
    upload.head("PATCH", &session, "", Some(body.len()));
    for piece in body.chunks(1024 * 1024) {
        upload.stream.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
    }
    let answer = read_answer(&mut upload.stream).unwrap();
    assert_eq!(answer.status, 202, "{answer:?}");
    let digest = sha256(&body);
    let mut raw = RawConnection::connect(&server);
    let done = raw.send("PUT", &format!("{session}?digest={digest}"), "", b"");
    assert_eq!(done.status, 201, "{done:?}");
}
