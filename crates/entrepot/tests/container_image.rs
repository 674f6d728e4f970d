//! The container image, built and run as docs/deploy.md says: the
//! Containerfile built by `packaging/build-image.sh` (the binary under test
//! put in with `--prebuilt`, the Debian bookworm base made by debootstrap
//! from the Debian mirror, since no container registry is reachable here),
//! started by podman with a named volume for its data on loopback, then
//! used by curl, the CLI and skopeo; a second container on the same volume
//! serves what the first stored.
//!
//! Skipped, with the reason printed, when debootstrap is not installed and
//! no base image was made before.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::*;

const BASE_IMAGE: &str = "localhost/entrepot-base/debian:bookworm";

/// What podman needs on this kind of machine: root lacks CAP_SYS_RESOURCE,
/// so the container's limits may only be lowered (podman's defaults raise
/// them), and crun refuses the hybrid cgroup v1 hierarchy where runc
/// accepts it. Harmless elsewhere.
const RUNTIME_FLAGS: [&str; 6] = [
    "--runtime",
    "runc",
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=4096:4096",
];

fn run(command: &mut Command) -> Output {
    command.output().expect("cannot run the command")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn podman(args: &[&str]) -> Output {
    run(Command::new("podman").args(args))
}

fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {args:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_owned()
}

/// Removes what the test made (containers, volume, image and the untagged
/// image of the binary's build stage), whatever happens; the debootstrapped
/// base stays for the next run.
struct Made {
    image: String,
    volume: String,
    containers: Vec<String>,
    dangling_before: Vec<String>,
}

/// Untagged images (`podman build` keeps one per intermediate stage;
/// `--layers=false`, which would not, fails on multi-stage builds in
/// podman 4.3).
fn dangling_images() -> Vec<String> {
    text(&podman(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]).stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

impl Drop for Made {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = podman(&["rm", "-f", "-t", "2", c]);
        }
        let _ = podman(&["volume", "rm", "-f", &self.volume]);
        let _ = podman(&["rmi", "-f", &self.image]);
        for id in dangling_images() {
            if !self.dangling_before.contains(&id) {
                let _ = podman(&["rmi", &id]);
            }
        }
    }
}

fn can_make_base() -> bool {
    let has_base = podman(&["image", "exists", BASE_IMAGE]).status.success();
    let has_debootstrap = Command::new("debootstrap")
        .arg("--version")
        .output()
        .is_ok();
    if !has_base && !has_debootstrap {
        println!(
            "SKIPPED: debootstrap is not installed (apt-get install -y debootstrap) and there is no {BASE_IMAGE} to build the image on"
        );
        return false;
    }
    true
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Start a container of `image` on `volume`, listening on a port of its
/// choosing on loopback; its name and `127.0.0.1:PORT`.
fn start_container(made: &mut Made, n: usize) -> (String, String) {
    let name = format!("{}-{n}", made.volume);
    let volume = format!("{}:/var/lib/entrepot", made.volume);
    let mut args = vec!["run", "-d", "--name", &name, "--network=host"];
    args.extend(RUNTIME_FLAGS);
    args.extend([
        "-e",
        "ENTREPOT_LISTEN=127.0.0.1:0",
        "-v",
        &volume,
        &made.image,
    ]);
    podman_ok(&args);
    made.containers.push(name.clone());
    let mut addr = None;
    let listening = eventually(Duration::from_secs(60), || {
        let logs = podman(&["logs", &name]);
        addr = text(&logs.stdout)
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("entrepot listening on http://"))
            .map(str::to_owned);
        addr.is_some()
    });
    let logs = podman(&["logs", &name]);
    assert!(
        listening,
        "the container never printed its listening line:\n{}{}",
        text(&logs.stdout),
        text(&logs.stderr)
    );
    (name, addr.unwrap())
}

fn process_uid(container: &str) -> String {
    let pid = podman_ok(&["inspect", "--format", "{{.State.Pid}}", container]);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uids = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .unwrap()
        .to_owned();
    uids.split_whitespace().next().unwrap().to_owned()
}

fn file_uid(path: &Path) -> u32 {
    std::os::unix::fs::MetadataExt::uid(&fs::metadata(path).unwrap())
}

#[test]
fn the_container_image_builds_runs_as_non_root_and_keeps_its_data_in_the_volume() {
    require_tool("podman", "podman");
    require_tool("skopeo", "skopeo");
    if !can_make_base() {
        return;
    }
    let unique = format!("{}-{}", std::process::id(), uuid_like());
    let mut made = Made {
        image: format!("localhost/entrepot-test:{unique}"),
        volume: format!("entrepot-test-{unique}"),
        containers: Vec::new(),
        dangling_before: dangling_images(),
    };

    // Build: the script debootstraps the base on first use, then podman
    // builds the Containerfile with the binary under test.
    let mut build = Command::new(repo_root().join("packaging/build-image.sh"));
    build
        .args([
            "--tag",
            &made.image,
            "--prebuilt",
            support::BIN,
            "--debootstrap",
        ])
        .arg("--")
        .args(RUNTIME_FLAGS)
        .env("ENTREPOT_BASE_IMAGE", BASE_IMAGE);
    let built = run(&mut build);
    assert!(
        built.status.success(),
        "packaging/build-image.sh failed:\n{}",
        text(&built.stderr)
    );
    assert_eq!(text(&built.stdout).trim(), made.image);
    let config = podman_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.User}} {{json .Config.Volumes}}",
        &made.image,
    ]);
    assert_eq!(config, r#"10001:10001 {"/var/lib/entrepot":{}}"#);

    // Run with a named volume; the server is not root and writes only there.
    podman_ok(&["volume", "create", &made.volume]);
    let (first, addr) = start_container(&mut made, 1);
    assert_eq!(process_uid(&first), "10001");
    let data = PathBuf::from(podman_ok(&[
        "volume",
        "inspect",
        "--format",
        "{{.Mountpoint}}",
        &made.volume,
    ]));
    let token = fs::read_to_string(data.join("bootstrap-admin-token"))
        .expect("the bootstrap admin token is in the volume")
        .trim()
        .to_owned();
    for file in ["metadata.db", "blobs"] {
        assert_eq!(file_uid(&data.join(file)), 10001, "{file} in the volume");
    }

    // curl: the registry answers with its token challenge.
    let base = format!("http://{addr}");
    let v2 = run(Command::new("curl").args([
        "-sS",
        "-o",
        "/dev/null",
        "-D",
        "-",
        &format!("{base}/v2/"),
    ]));
    let head = text(&v2.stdout);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(
        head.contains(&format!("realm=\"{base}/v2/token\"")),
        "{head}"
    );

    // The CLI creates a hosted repository; skopeo pushes and pulls.
    let work = tempfile::tempdir().unwrap();
    let cli = run(Command::new(support::BIN)
        .args([
            "repositories",
            "create",
            "images",
            "--repository-format=docker",
        ])
        .env("ENTREPOT_SERVER", &base)
        .env("ENTREPOT_TOKEN", &token)
        .env("HOME", work.path()));
    assert!(
        cli.status.success(),
        "entrepot repositories create: {}",
        text(&cli.stderr)
    );
    let layout = work.path().join("pushed");
    let digest = image_layout(&layout, "1.0", &[256 * 1024, 1024]);
    let creds = format!("admin:{token}");
    let image = format!("docker://{addr}/default/images/app:1.0");
    let pushed = skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &format!("oci:{}:1.0", layout.display()),
        &image,
    ]);
    assert_skopeo_ok(&pushed, "skopeo push into the container");

    // A new container on the same volume serves what the first stored.
    podman_ok(&["rm", "-f", "-t", "5", &first]);
    let (_second, addr) = start_container(&mut made, 2);
    let pulled_layout = work.path().join("pulled");
    let pulled = skopeo(&[
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &format!("docker://{addr}/default/images/app:1.0"),
        &format!("oci:{}:1.0", pulled_layout.display()),
    ]);
    assert_skopeo_ok(&pulled, "skopeo pull from the second container");
    assert_eq!(assert_same_content(&layout, &pulled_layout, &digest), 4);
}

/// A suffix that keeps concurrent runs' names apart.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{nanos:x}")
}
