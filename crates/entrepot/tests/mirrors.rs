//! The registry mirror endpoint with the clients that use it: the Docker
//! daemon's `registry-mirrors`, containerd's `hosts.toml` (through `ctr
//! --hosts-dir`) and podman's `[[registry.mirror]]`. A loopback
//! docker-registry stands in for Docker Hub; entrepot's mirror repository is
//! a remote repository of it.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::containerd::Containerd;
use support::*;

const READER: &str = "roles/artifactregistry.reader";

/// An upstream holding `library/app:1.0` and `team/tool:2.0`, and an
/// entrepot whose Docker Hub mirror is the remote repository `hub` of it,
/// pullable anonymously.
fn mirror_of_upstream() -> (Distribution, Entrepot, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("image");
    image_layout(&layout, "1.0", &[50_000, 200_000]);
    let upstream = Distribution::start();
    upstream.push(&layout, "1.0", "library/app:1.0", None);
    upstream.push(&layout, "1.0", "team/tool:2.0", None);
    let server = Entrepot::builder()
        .config("mirror = \"projects/default/repositories/hub\"\n")
        .start();
    server.create_remote_docker("hub", &format!("http://{}", upstream.addr), json!({}));
    server.grant("projects/default/repositories/hub", "allUsers", READER);
    (upstream, server, work)
}

#[test]
fn short_names_resolve_against_the_mirror_repository_and_writes_are_refused() {
    let (upstream, server, _work) = mirror_of_upstream();
    // Docker Hub's rule: a one-component name is library/NAME.
    for path in [
        "/v2/app/manifests/1.0",
        "/v2/library/app/manifests/1.0",
        "/v2/team/tool/manifests/2.0",
        "/v2/library/app/manifests/1.0?ns=docker.io",
        "/v2/default/hub/library/app/manifests/1.0?ns=docker.io",
    ] {
        let response = server
            .bare_request(reqwest::Method::GET, path)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    assert!(
        upstream
            .log_text()
            .contains("/v2/library/app/manifests/1.0"),
        "{}",
        upstream.log_text()
    );
    // Project paths are unchanged.
    let direct = server
        .bare_request(
            reqwest::Method::GET,
            "/v2/default/hub/team/tool/manifests/2.0",
        )
        .send()
        .unwrap();
    assert_eq!(direct.status(), 200);
    // A push to the mirror path is refused, naming where to push instead.
    let push = server
        .bare_request(reqwest::Method::POST, "/v2/library/app/blobs/uploads/")
        .send()
        .unwrap();
    assert_eq!(push.status(), 405);
    let body = push.text().unwrap();
    assert!(
        body.contains("UNSUPPORTED") && body.contains("read-only"),
        "{body}"
    );
    // A host with no mirror is refused by name.
    let other = server
        .bare_request(reqwest::Method::GET, "/v2/app/manifests/1.0?ns=quay.io")
        .send()
        .unwrap();
    assert_eq!(other.status(), 404);
    assert!(other.text().unwrap().contains("quay.io"));
}

#[test]
fn the_mirror_follows_the_repository_iam_policy() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("image");
    image_layout(&layout, "1.0", &[1000]);
    let upstream = Distribution::start();
    upstream.push(&layout, "1.0", "library/app:1.0", None);
    let server = Entrepot::builder()
        .config("mirror = \"projects/default/repositories/hub\"\n")
        .start();
    server.create_remote_docker("hub", &format!("http://{}", upstream.addr), json!({}));
    // No allUsers binding: anonymous callers get the registry's challenge.
    let anonymous = server
        .bare_request(reqwest::Method::GET, "/v2/library/app/manifests/1.0")
        .send()
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("repository:default/hub/library/app:pull"),
        "{challenge}"
    );
    // The admin, through a token issued for the short scope, pulls.
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("--creds={}", server.creds()),
        &format!("docker://{}/library/app:1.0", server.addr),
    ]);
    assert_skopeo_ok(&out, "inspecting through the mirror as the admin");
}

#[test]
fn podman_pulls_docker_hub_images_through_the_mirror() {
    let (upstream, server, work) = mirror_of_upstream();
    let podman = Podman::new();
    let conf = work.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = \"{}\"\ninsecure = true\n",
            server.addr
        ),
    )
    .unwrap();
    let out = podman
        .command()
        .env("CONTAINERS_REGISTRIES_CONF", &conf)
        .args(["pull", "docker.io/library/app:1.0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "podman pull: {}", text(&out));
    assert!(upstream
        .log_text()
        .contains("/v2/library/app/manifests/1.0"));
}

fn hosts_dir(dir: &Path, hosts_toml: &str) -> String {
    let host = dir.join("docker.io");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("hosts.toml"), hosts_toml).unwrap();
    dir.display().to_string()
}

#[test]
fn containerd_pulls_through_hosts_toml_with_and_without_override_path() {
    let (upstream, server, work) = mirror_of_upstream();
    let containerd = Containerd::start();
    for (name, toml) in [
        (
            "mirror",
            format!(
                "server = \"https://registry-1.docker.io\"\n\n[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
                server.addr
            ),
        ),
        (
            "override",
            format!(
                "server = \"https://registry-1.docker.io\"\n\n[host.\"http://{}/v2/default/hub\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n",
                server.addr
            ),
        ),
    ] {
        let dir = hosts_dir(&work.path().join(name), &toml);
        let out = containerd.ctr(&[
            "--namespace",
            name,
            "images",
            "pull",
            "--hosts-dir",
            &dir,
            "docker.io/team/tool:2.0",
        ]);
        assert!(out.status.success(), "ctr pull ({name}): {}", text(&out));
    }
    let log = upstream.log_text();
    assert!(log.contains("/v2/team/tool/manifests/2.0"), "{log}");
}

/// A Docker daemon of its own (temporary data and exec roots, its own
/// socket, no networking), with entrepot as its Docker Hub mirror.
struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Dockerd {
    fn start(mirror: &str) -> Dockerd {
        require_tool("dockerd", "docker.io");
        let dir = tempfile::Builder::new()
            .prefix("dockerd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .args(["--iptables=false", "--bridge=none", "--storage-driver=vfs"])
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .arg("--registry-mirror")
            .arg(format!("http://{mirror}"))
            .arg("--insecure-registry")
            .arg(mirror)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let docker = Dockerd { child, dir };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !docker.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not start: {}",
                docker.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        docker
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!(
                "unix://{}",
                self.dir.path().join("docker.sock").display()
            ))
            .args(args)
            .env("DOCKER_CONFIG", self.dir.path().join("client"))
            .output()
            .unwrap()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn dockerd_pulls_docker_hub_images_through_the_mirror_and_falls_back_when_refused() {
    let (upstream, server, _work) = mirror_of_upstream();
    let docker = Dockerd::start(&server.addr);
    let out = docker.docker(&["pull", "docker.io/library/app:1.0"]);
    assert!(
        out.status.success(),
        "docker pull: {}\n{}",
        text(&out),
        docker.log()
    );
    let log = upstream.log_text();
    assert!(log.contains("/v2/library/app/manifests/1.0"), "{log}");
    let access = server.log_text();
    assert!(
        access.contains("path=/v2/library/app/manifests/1.0"),
        "the pull did not go through entrepot: {access}"
    );
    // An image the mirror cannot serve: the daemon falls back to Docker Hub
    // itself (unreachable here) and reports that error; it does not hang.
    let out = docker.docker(&["pull", "docker.io/library/missing:1.0"]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("registry-1.docker.io") || said.contains("docker.io"),
        "{said}"
    );
    assert!(
        upstream
            .log_text()
            .contains("/v2/library/missing/manifests/1.0"),
        "the mirror was not asked first"
    );
}
