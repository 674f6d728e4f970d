//! Release-age fixtures: a Python index on loopback whose files carry PEP
//! 700 upload times, installs that report the version they got, and the
//! server's test clock.

use std::collections::HashMap;
use std::path::Path;

use entrepot_domain::clock::{now_unix, rfc3339};
use serde_json::{json, Value};

use super::*;

pub const DAY: i64 = 86_400;

/// A Python index on loopback: `/simple/{project}/` as PEP 691 JSON, the
/// files under `/files/`.
pub struct FixtureIndex {
    pub server: ScriptedUpstream,
    /// sha256 of each file, by file name.
    pub sha256: HashMap<String, String>,
}

/// One release of the fixture index: project, version, and its upload time
/// as days ago (`None`: the index gives none).
pub type FixtureRelease<'a> = (&'a str, &'a str, Option<i64>);

impl FixtureIndex {
    pub fn start(dir: &Path, releases: &[FixtureRelease]) -> FixtureIndex {
        let mut files: HashMap<String, Vec<u8>> = HashMap::new();
        let mut pages: HashMap<String, Vec<Value>> = HashMap::new();
        let mut versions: HashMap<String, Vec<String>> = HashMap::new();
        let mut sha256 = HashMap::new();
        let now = now_unix();
        for (project, version, age) in releases {
            let path = make_dist(dir, "wheel", project, version, &[]);
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let bytes = std::fs::read(&path).unwrap();
            let hex = super::sha256(&bytes)
                .trim_start_matches("sha256:")
                .to_owned();
            let mut file = json!({
                "filename": name,
                "url": format!("../../files/{name}"),
                "hashes": { "sha256": hex },
                "requires-python": ">=3.7",
                "size": bytes.len(),
            });
            if let Some(days) = age {
                file["upload-time"] = rfc3339(now - days * DAY).into();
            }
            pages.entry(project.to_string()).or_default().push(file);
            versions
                .entry(project.to_string())
                .or_default()
                .push(version.to_string());
            sha256.insert(name.clone(), hex);
            files.insert(format!("/files/{name}"), bytes);
        }
        let routes: HashMap<String, Vec<u8>> = pages
            .into_iter()
            .map(|(project, files)| {
                let page = json!({
                    "meta": { "api-version": "1.1" },
                    "name": project,
                    "versions": versions[&project],
                    "files": files,
                });
                (
                    format!("/simple/{project}/"),
                    serde_json::to_vec(&page).unwrap(),
                )
            })
            .collect();
        let server = ScriptedUpstream::start("127.0.0.1", move |seen| {
            if let Some(page) = routes.get(&seen.path) {
                return Reply::ok("application/vnd.pypi.simple.v1+json", page.clone());
            }
            match files.get(&seen.path) {
                Some(bytes) => Reply::ok("application/octet-stream", bytes.clone()),
                None => Reply::status(404),
            }
        });
        FixtureIndex { server, sha256 }
    }

    pub fn url(&self) -> String {
        format!("http://{}/simple/", self.server.addr)
    }
}

pub fn wheel(project: &str, version: &str) -> String {
    format!("{project}-{version}-py3-none-any.whl")
}

/// The version of `project` that landed in a `--target` directory.
pub fn installed_version(target: &Path, project: &str) -> Option<String> {
    std::fs::read_dir(target).ok()?.find_map(|e| {
        let name = e.ok()?.file_name().into_string().ok()?;
        name.strip_prefix(&format!("{project}-"))?
            .strip_suffix(".dist-info")
            .map(str::to_owned)
    })
}

pub fn pip_gets(server: &Entrepot, repo: &str, spec: &str) -> Option<String> {
    let target = tempfile::tempdir().unwrap();
    let out = pip_install(&server.python_index(repo), target.path(), &[spec]);
    assert!(out.status.success(), "pip install {spec}: {}", text(&out));
    installed_version(target.path(), spec.split("==").next().unwrap())
}

pub fn uv_gets(server: &Entrepot, repo: &str, spec: &str) -> Option<String> {
    let target = tempfile::tempdir().unwrap();
    let out = uv_install(&server.python_index(repo), target.path(), &[spec]);
    assert!(
        out.status.success(),
        "uv pip install {spec}: {}",
        text(&out)
    );
    installed_version(target.path(), spec)
}

/// Create a remote Python repository with the CLI and its release-age flags.
pub fn create_cooled(server: &Entrepot, id: &str, index: &FixtureIndex, flags: &[&str]) -> Value {
    let host = index.server.addr.clone();
    server.allow_upstream(&host);
    let upstream = format!("--remote-python-repo={}", index.url());
    let mut args = vec![
        "repositories",
        "create",
        id,
        "--repository-format=python",
        "--mode=remote-repository",
        upstream.as_str(),
    ];
    args.extend(flags);
    serde_json::from_str(&server.cli_ok(&args)).unwrap()
}

/// The server's clock, moved forward through the offset file it reads.
pub struct TestClock {
    pub file: std::path::PathBuf,
    offset: std::cell::Cell<i64>,
}

impl TestClock {
    pub fn new(dir: &Path) -> TestClock {
        let file = dir.join("clock-offset");
        std::fs::write(&file, "0").unwrap();
        TestClock {
            file,
            offset: std::cell::Cell::new(0),
        }
    }

    /// An entrepot whose clock is this one.
    pub fn start_server(&self) -> Entrepot {
        Entrepot::builder()
            .env(
                "ENTREPOT_TEST_CLOCK_OFFSET_FILE",
                self.file.to_str().unwrap(),
            )
            .start()
    }

    pub fn advance(&self, secs: i64) {
        self.offset.set(self.offset.get() + secs);
        std::fs::write(&self.file, self.offset.get().to_string()).unwrap();
    }
}
