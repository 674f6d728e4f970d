//! The Docker daemon using entrepot as its Docker Hub mirror over HTTPS, as
//! an operator deploys it: entrepot serving a certificate of a private CA,
//! dockerd started with `--registry-mirror https://HOST:PORT` and the CA in
//! `/etc/docker/certs.d/HOST:PORT/ca.crt`, no insecure-registry exception.
//! A loopback docker-registry stands in for Docker Hub.
//!
//! dockerd counts 127.0.0.0/8 as an insecure registry whatever it is told,
//! so on loopback it speaks TLS to the mirror without verifying the
//! certificate; what this test can check is that the pull went over TLS
//! (the port speaks nothing else) and through entrepot. The certs.d CA is
//! written as a deployment on a real host name needs it.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::{
    assert_skopeo_ok, cert_dir, image_layout, ClientTls, Distribution, Dockerd, Entrepot,
    ServerFiles, TestCa,
};

const READER: &str = "roles/artifactregistry.reader";

#[test]
fn dockerd_pulls_docker_hub_images_through_the_mirror_over_https() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("image");
    image_layout(&layout, "1.0", &[50_000, 200_000]);
    let upstream = Distribution::start();
    upstream.push(&layout, "1.0", "library/app:1.0", None);

    let ca = TestCa::new("entrepot test CA");
    let files = ServerFiles::new(&ca.server("entrepot"));
    let mut builder = Entrepot::builder()
        .client_tls(ClientTls {
            ca_pem: ca.pem(),
            identity_pem: None,
        })
        .config("mirror = \"projects/default/repositories/hub\"\n");
    for (k, v) in files.env() {
        builder = builder.env(&k, &v);
    }
    let server = builder.start();
    assert!(server.base.starts_with("https://"), "{}", server.base);
    server.create_remote_docker("hub", &format!("http://{}", upstream.addr), json!({}));
    server.grant("projects/default/repositories/hub", "allUsers", READER);

    // The mirror path answers over HTTPS to a client trusting the CA only.
    let certs = cert_dir(work.path(), &ca, None);
    let inspected = support::skopeo(&[
        "inspect",
        "--cert-dir",
        &certs.display().to_string(),
        &format!("docker://{}/library/app:1.0", server.addr),
    ]);
    assert_skopeo_ok(&inspected, "skopeo inspect through the https mirror");

    let dockerd = match Dockerd::start_mirroring(&server.addr, &ca.pem()) {
        Ok(d) => d,
        Err(why) => {
            println!("SKIPPED: dockerd cannot run here: {why}");
            return;
        }
    };
    let pull = dockerd.docker(&["pull", "docker.io/library/app:1.0"]);
    assert!(
        pull.status.success(),
        "docker pull through the https mirror: {}{}\n--- dockerd ---\n{}\n--- server ---\n{}",
        String::from_utf8_lossy(&pull.stdout),
        String::from_utf8_lossy(&pull.stderr),
        dockerd.log(),
        server.log_text()
    );
    let inspect = dockerd.docker(&["image", "inspect", "docker.io/library/app:1.0"]);
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    // Served by entrepot (its access log names the short path dockerd
    // asked for), filled from the upstream standing in for Docker Hub.
    let access = server.log_text();
    assert!(
        access.contains("path=/v2/library/app/manifests/1.0"),
        "the pull did not go through entrepot: {access}"
    );
    let log = upstream.log_text();
    assert!(log.contains("/v2/library/app/manifests/1.0"), "{log}");
    // The pull went over TLS: the mirror path that answers over HTTPS is
    // not served in plain HTTP on the same port, so dockerd could not have
    // fetched it that way; and Docker Hub itself is unreachable here.
    let manifest = format!("{}/v2/library/app/manifests/1.0", server.addr);
    let curl = |url: String| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(certs.join("ca.crt"))
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl(format!("https://{manifest}")), "200");
    assert_ne!(curl(format!("http://{manifest}")), "200");
}
