//! What the docker CLI (through dockerd) and containerd's `ctr` print when a
//! remote repository's upstream fails: the reason entrepot gives must reach
//! the user's terminal, as `upstream_errors_clients.rs` checks for skopeo and
//! podman. Both daemons run as root with temporary roots of their own.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Output;

use serde_json::json;
use support::containerd::Containerd;
use support::sick_upstream::{remote_behind_sick_upstream, SickUpstream, Sickness};
use support::tls_ca::TestCa;
use support::*;

/// A repository in front of a sick upstream with small time limits, and an
/// image `app:1.0` at its healthy backend.
fn setup() -> (tempfile::TempDir, Distribution, SickUpstream, Entrepot) {
    // The 404 class is not remembered, so the healthy pull after it asks the
    // upstream again.
    remote_behind_sick_upstream(json!({ "negativeCacheSecs": 0 }))
}

/// Each failure class, and a phrase of the message entrepot gives for it.
const FAILURES: [(Sickness, &str); 6] = [
    (Sickness::Refuse, "is unreachable: connection failed"),
    (Sickness::Hang, "is unreachable: timed out"),
    (Sickness::ServerError(500), "answered HTTP 500"),
    (
        Sickness::TokenServiceRefuses(401),
        "refused the configured credentials",
    ),
    (Sickness::TooManyRequests(Some(7)), "rate-limits entrepot"),
    (Sickness::NotFound, "not in the upstream"),
];

fn assert_reason(
    client: &str,
    sickness: Sickness,
    phrase: &str,
    sick: &SickUpstream,
    out: &Output,
) {
    let err = stderr(out);
    assert!(!ok(out), "{sickness:?}: {client} succeeded");
    // A 404 names the image, not the upstream's address.
    let names_upstream = err.contains(sick.addr()) || matches!(sickness, Sickness::NotFound);
    assert!(
        err.contains(phrase) && names_upstream,
        "{sickness:?}: {client}'s stderr lacks {phrase:?} and the upstream's address:\n{err}"
    );
}

#[test]
fn the_docker_cli_prints_why_the_upstream_failed() {
    let (_work, _backend, mut sick, server) = setup();
    // Loopback registries are insecure registries to dockerd: it tries
    // https, then speaks plain http to entrepot. The CA is never used.
    let dockerd = match Dockerd::start(&server.addr, &TestCa::new("unused").pem()) {
        Ok(d) => d,
        Err(why) => panic!("the docker CLI test needs dockerd: {why}"),
    };
    let login = dockerd.docker(&[
        "login",
        "-u",
        "admin",
        "-p",
        &server.admin_token,
        &server.addr,
    ]);
    assert!(ok(&login), "docker login: {}", text(&login));
    let image = format!("{}/default/up/app:1.0", server.addr);
    for (sickness, phrase) in FAILURES {
        sick.set(sickness);
        let out = dockerd.docker(&["pull", &image]);
        assert_reason("docker", sickness, phrase, &sick, &out);
    }
    sick.set(Sickness::Healthy);
    let out = dockerd.docker(&["pull", &image]);
    assert!(ok(&out), "docker pull: {}\n{}", text(&out), dockerd.log());
}

#[test]
fn ctr_prints_why_the_upstream_failed() {
    let (_work, _backend, mut sick, server) = setup();
    let containerd = Containerd::start();
    let image = format!("{}/default/up/app:1.0", server.addr);
    let user = server.creds();
    for (sickness, phrase) in FAILURES {
        sick.set(sickness);
        let out = containerd.ctr(&["images", "pull", "--plain-http", "--user", &user, &image]);
        // containerd's resolver turns any 404 into its own "REF: not found",
        // whatever the status line or body say: true, if terse.
        let phrase = match sickness {
            Sickness::NotFound => "default/up/app:1.0: not found",
            _ => phrase,
        };
        assert_reason("ctr", sickness, phrase, &sick, &out);
    }
    sick.set(Sickness::Healthy);
    let out = containerd.ctr(&["images", "pull", "--plain-http", "--user", &user, &image]);
    assert!(ok(&out), "ctr pull: {}\n{}", text(&out), containerd.log());
}
