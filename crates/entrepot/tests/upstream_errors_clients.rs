//! What skopeo and podman print when a remote repository's upstream fails:
//! the reason entrepot gives (in the body and in the status line's reason
//! phrase) must reach the user's terminal, and a hanging upstream must make
//! the pull fail within the repository's budget, not hang.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Output;

use serde_json::json;
use support::sick_upstream::{remote_behind_sick_upstream, SickUpstream, Sickness};
use support::*;

/// A repository in front of a sick upstream with small time limits, and an
/// image `app:1.0` at its healthy backend.
fn setup() -> (tempfile::TempDir, Distribution, SickUpstream, Entrepot) {
    remote_behind_sick_upstream(json!({}))
}

fn podman_pull(podman: &Podman, server: &Entrepot, image: &str) -> Output {
    podman
        .command()
        .args(["pull", "--tls-verify=false", "--creds"])
        .arg(server.creds())
        .arg(format!("{}/{image}", server.addr))
        .output()
        .unwrap()
}

/// The classes whose message only the status line carries to these clients
/// (a 5xx), and a phrase of each message.
const FAILURES: [(Sickness, &str); 4] = [
    (Sickness::Refuse, "is unreachable: connection failed"),
    (Sickness::Hang, "is unreachable: timed out"),
    (Sickness::ServerError(500), "answered HTTP 500"),
    (
        Sickness::TokenServiceRefuses(401),
        "refused the configured credentials",
    ),
];

#[test]
fn skopeo_prints_why_the_upstream_failed() {
    let (work, _backend, mut sick, server) = setup();
    for (n, (sickness, phrase)) in FAILURES.into_iter().enumerate() {
        sick.set(sickness);
        let out = server.skopeo_pull_output(
            "default/up/app:1.0",
            &work.path().join(format!("pulled-{n}")),
            "1.0",
        );
        let err = stderr(&out);
        assert!(!ok(&out), "{sickness:?}: skopeo succeeded");
        assert!(
            err.contains(phrase) && err.contains(sick.addr()),
            "{sickness:?}: skopeo's stderr lacks {phrase:?} and the upstream's address:\n{err}"
        );
    }
}

#[test]
fn podman_prints_why_the_upstream_failed() {
    let (_work, _backend, mut sick, server) = setup();
    let podman = Podman::new();
    for (sickness, phrase) in FAILURES {
        sick.set(sickness);
        let out = podman_pull(&podman, &server, "default/up/app:1.0");
        let err = stderr(&out);
        assert!(!ok(&out), "{sickness:?}: podman succeeded");
        assert!(
            err.contains(phrase) && err.contains(sick.addr()),
            "{sickness:?}: podman's stderr lacks {phrase:?} and the upstream's address:\n{err}"
        );
    }
}

#[test]
fn a_4xx_message_reaches_skopeo_from_the_error_body() {
    // 429 and 404 are answered as themselves; containers/image prints the
    // OCI error body's message for a 4xx.
    let (work, _backend, mut sick, server) = setup();
    for (n, (sickness, phrase)) in [
        (Sickness::TooManyRequests(Some(7)), "rate-limits entrepot"),
        (Sickness::NotFound, "not in the upstream"),
    ]
    .into_iter()
    .enumerate()
    {
        sick.set(sickness);
        let out = server.skopeo_pull_output(
            "default/up/app:1.0",
            &work.path().join(format!("pulled-{n}")),
            "1.0",
        );
        let err = stderr(&out);
        assert!(!ok(&out), "{sickness:?}: skopeo succeeded");
        assert!(err.contains(phrase), "{sickness:?}: {err}");
    }
}

#[test]
fn a_download_that_stalls_midway_fails_instead_of_hanging() {
    // The blob's headers and half its bytes arrive, then nothing: the fill
    // gives up after the idle timeout and the client's transfer breaks off.
    let work = tempfile::tempdir().unwrap();
    let original = work.path().join("original");
    image_layout(&original, "1.0", &[200_000]);
    let backend = Distribution::start();
    backend.push(&original, "1.0", "app:1.0", None);
    let mut sick = SickUpstream::start(&backend.addr);
    let server = Entrepot::start();
    server.create_remote_docker(
        "up",
        &sick.url(),
        json!({ "idleTimeoutSecs": 1, "firstByteTimeoutSecs": 2, "retryBudgetSecs": 3 }),
    );
    let manifest = server.get("/v2/default/up/app/manifests/1.0");
    assert_eq!(manifest.status(), 200);
    let manifest: serde_json::Value = manifest.json().unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();

    sick.set(Sickness::HangMidBody);
    let response = server.get(&format!("/v2/default/up/app/blobs/{layer}"));
    // Either the answer is an error, or its body breaks off: never all of it.
    if response.status() == 200 {
        assert!(response.bytes().is_err(), "a stalled fill delivered a body");
    } else {
        assert!(response.status().is_server_error(), "{}", response.status());
    }

    // Healthy again: the next pull fills the cache, the broken fill left nothing.
    sick.set(Sickness::Healthy);
    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/up/app:1.0", &pulled, "1.0", false);
}
