//! The README's quick start, run as a new user would: `entrepot serve` in a
//! git working tree (with the project's `.gitignore`), `entrepot` on the
//! PATH, then the README's first shell block through bash, line for line.
//! Only what cannot be the same here changes: the server's port (the README
//! says 8080; the test takes a free one) and Docker Hub, for which a
//! loopback docker-registry holding `alpine:3.20` stands in (the
//! `docker-hub` repository is recreated pointing at it, by the CLI, right
//! after the README's first line). Afterwards the working tree is clean
//! and the bootstrap token file is gone, as the README says.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use support::*;

const README: &str = include_str!("../../../README.md");

/// The first ```sh block after the line that contains `marker`.
fn block_after(marker: &str) -> Vec<String> {
    let rest = &README[README.find(marker).expect("marker in README.md")..];
    let start = rest.find("```sh\n").unwrap() + "```sh\n".len();
    let end = start + rest[start..].find("```").unwrap();
    rest[start..end].lines().map(str::to_owned).collect()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn git(tree: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(tree)
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_readme_quick_start_runs_as_written_and_leaves_the_working_tree_clean() {
    require_tool("skopeo", "skopeo");
    let lines = block_after("Pull through the cache, then");
    assert!(
        lines[0].starts_with("export ENTREPOT_TOKEN=$(cat entrepot-data/bootstrap-admin-token)"),
        "the README's quick start should begin by keeping the token: {lines:?}"
    );

    // Docker Hub's stand-in.
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("alpine-src");
    image_layout(&layout, "3.20", &[100_000]);
    let hub = Distribution::start();
    // A URL upstream gets no `library/` prefix (only the DOCKER-HUB preset does).
    hub.push(&layout, "3.20", "alpine:3.20", None);

    // A working tree with the project's .gitignore, committed.
    let tree = work.path().join("checkout");
    fs::create_dir(&tree).unwrap();
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.gitignore"),
        tree.join(".gitignore"),
    )
    .unwrap();
    git(&tree, &["init", "-q"]);
    git(&tree, &["add", ".gitignore"]);
    git(&tree, &["commit", "-q", "-m", "checkout"]);

    // `entrepot` on the PATH, as after `cargo install`; HOME outside the tree.
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let home = work.path().join("home");
    fs::create_dir(&home).unwrap();
    let mut child = Command::new("entrepot")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(&tree)
        .env("PATH", &path)
        .env("HOME", &home)
        .env_remove("ENTREPOT_DATA_DIR")
        .env_remove("ENTREPOT_LISTEN")
        .env_remove("ENTREPOT_TOKEN")
        .env_remove("ENTREPOT_SERVER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            fs::File::create(work.path().join("server.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let server = Killed(child);
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("entrepot listening on http://")
        .unwrap_or_else(|| panic!("first stdout line {first:?}"))
        .to_owned();
    // Keep draining stdout so the server never blocks on it.
    std::thread::spawn(move || for _ in stdout.lines() {});
    assert!(
        tree.join("entrepot-data/bootstrap-admin-token").exists(),
        "the first start writes entrepot-data/bootstrap-admin-token"
    );

    let alpine = work.path().join("alpine");
    let adapt = |line: &str| {
        line.replace("127.0.0.1:8080", &addr)
            .replace("/tmp/alpine", &alpine.display().to_string())
    };
    let mut script = vec!["set -euo pipefail".to_owned(), adapt(&lines[0])];
    script.extend([
        format!("entrepot access-policy allow {}", hub.addr),
        "entrepot repositories delete docker-hub --quiet".to_owned(),
        format!(
            "entrepot repositories create docker-hub --repository-format=docker --mode=remote-repository --remote-docker-repo=http://{}",
            hub.addr
        ),
    ]);
    script.extend(lines[1..].iter().map(|l| adapt(l)));
    let script = script.join("\n");
    let ran = Command::new("bash")
        .args(["-c", &script])
        .current_dir(&tree)
        .env("PATH", &path)
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("ENTREPOT_SERVER", format!("http://{addr}"))
        .env_remove("ENTREPOT_TOKEN")
        .env_remove("REGISTRY_AUTH_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "the README's quick start failed:\n{script}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- server ---\n{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr),
        fs::read_to_string(work.path().join("server.log")).unwrap_or_default()
    );
    drop(server);

    assert!(
        alpine.join("index.json").exists(),
        "the pulled image layout"
    );
    assert_eq!(
        git(&tree, &["status", "--porcelain"]),
        "",
        "running the README left files in the working tree"
    );
    assert!(
        !tree.join("entrepot-data/bootstrap-admin-token").exists(),
        "the token file is deleted once the token has served"
    );
}
