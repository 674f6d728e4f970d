//! Python clients and a Python upstream, all on loopback: pip, uv and twine
//! from a virtual environment, pypiserver serving fixture distributions
//! written by `fixtures/make_dist.py` (no build tool, no network), and the
//! Python repositories of a test's server.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::server::Entrepot;
use super::upstream::free_port;
use super::wait::eventually;

impl Entrepot {
    /// Create a Python repository in `project`: remote when `upstream` (an
    /// index URL) is given, its host allowed by the access policy and `extra`
    /// merged into its `remoteRepositoryConfig`; standard otherwise.
    pub fn create_python_in(&self, project: &str, id: &str, upstream: Option<&str>, extra: Value) {
        let mut body = json!({ "format": "python", "mode": "standard-repository" });
        if let Some(url) = upstream {
            // The registry access policy must allow the loopback upstream.
            let parsed = url::Url::parse(url).unwrap();
            let host = format!("{}:{}", parsed.host_str().unwrap(), parsed.port().unwrap());
            self.allow_upstream(&host);
            let mut config = json!({ "upstream": url });
            if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
                c.extend(e.clone());
            }
            body = json!({ "format": "python", "mode": "remote-repository", "remoteRepositoryConfig": config });
        }
        self.create_repository_from(project, id, body);
    }

    /// [`Self::create_python_in`] project `default`.
    pub fn create_python(&self, id: &str, upstream: Option<&str>, extra: Value) {
        self.create_python_in("default", id, upstream, extra);
    }

    /// The index URL pip and uv are given for a repository of project
    /// `default`, with the admin's token as PyPI-style credentials (`__token__`).
    pub fn python_index(&self, repo: &str) -> String {
        format!(
            "http://__token__:{}@{}/pypi/default/{repo}/simple/",
            self.admin_token, self.addr
        )
    }
}

/// The virtual environment holding pip, uv, twine and pypiserver:
/// `ENTREPOT_PYTHON_VENV`, else `/opt/entrepot-ci` (what `.ci/run` creates).
pub fn venv() -> PathBuf {
    let dir = std::env::var_os("ENTREPOT_PYTHON_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/entrepot-ci"));
    for tool in ["python", "pip", "uv", "twine", "pypi-server"] {
        assert!(
            dir.join("bin").join(tool).exists(),
            "{tool} is missing from {}; create the environment with: python3 -m venv {0} && {0}/bin/pip install -r .ci/requirements.txt (or point ENTREPOT_PYTHON_VENV at one)",
            dir.display()
        );
    }
    dir
}

/// A tool of the virtual environment.
pub fn tool(name: &str) -> PathBuf {
    venv().join("bin").join(name)
}

/// Write a fixture distribution into `dir`: `kind` is `wheel` or `sdist`.
/// Returns the file's path.
pub fn make_dist(dir: &Path, kind: &str, name: &str, version: &str, requires: &[&str]) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make_dist.py");
    let output = Command::new(tool("python"))
        .arg(script)
        .arg(dir)
        .args([kind, name, version])
        .args(requires)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "make_dist failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    dir.join(String::from_utf8(output.stdout).unwrap().trim())
}

/// A running pypiserver, killed on drop.
pub struct PyPiServer {
    child: Option<Child>,
    pub addr: String,
    pub packages: PathBuf,
    args: Vec<String>,
    htpasswd: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PyPiServer {
    /// Serve `packages` anonymously.
    pub fn start(packages: &Path) -> PyPiServer {
        Self::start_with(packages, None)
    }

    /// Serve `packages`; with `auth`, downloads and listings need Basic
    /// credentials `(username, password)`.
    pub fn start_with(packages: &Path, auth: Option<(&str, &str)>) -> PyPiServer {
        let dir = tempfile::Builder::new()
            .prefix("pypiserver-")
            .tempdir()
            .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let port = addr.rsplit(':').next().unwrap().to_owned();
        let mut args: Vec<String> = vec![
            "run".into(),
            // Access log lines, which `gets_of` counts.
            "-vv".into(),
            "-p".into(),
            port,
            "-i".into(),
            "127.0.0.1".into(),
            "--disable-fallback".into(),
            "--hash-algo".into(),
            "sha256".into(),
        ];
        let htpasswd = dir.path().join("htpasswd");
        match auth {
            Some((user, password)) => {
                write_htpasswd(&htpasswd, user, password);
                args.extend([
                    "-a".into(),
                    "download,list,update".into(),
                    "-P".into(),
                    htpasswd.display().to_string(),
                ]);
            }
            None => args.extend(["-a".into(), ".".into(), "-P".into(), ".".into()]),
        }
        args.push(packages.display().to_string());
        let log = dir.path().join("pypiserver.log");
        let mut server = PyPiServer {
            child: None,
            addr,
            packages: packages.to_owned(),
            args,
            htpasswd,
            log,
            _dir: dir,
        };
        server.resume();
        server
    }

    /// Accept only this password from now on (restarts the server on its port).
    pub fn rotate_password(&mut self, user: &str, password: &str) {
        self.stop();
        write_htpasswd(&self.htpasswd, user, password);
        self.resume();
    }

    /// The simple index URL.
    pub fn index_url(&self) -> String {
        format!("http://{}/simple/", self.addr)
    }

    /// Stop serving (the upstream goes down).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start (again), and wait until it answers.
    pub fn resume(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(tool("pypi-server"))
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let ready = eventually(Duration::from_secs(60), || {
            std::net::TcpStream::connect(&self.addr).is_ok()
        });
        assert!(ready, "pypiserver did not start: {}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many GETs of paths starting with `prefix` it logged.
    pub fn gets_of(&self, prefix: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains(&format!("GET {prefix}")))
            .count()
    }
}

impl Drop for PyPiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_htpasswd(path: &Path, user: &str, password: &str) {
    let script = format!(
        "from passlib.apache import HtpasswdFile\nh = HtpasswdFile({:?}, new=True)\nh.set_password({user:?}, {password:?})\nh.save()\n",
        path.display().to_string()
    );
    run_python(&script);
}

/// Run a Python script with the environment's interpreter; insist it succeeds.
pub fn run_python(script: &str) {
    let out = Command::new(tool("python"))
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(mut command: Command) -> Output {
    command.stdin(Stdio::null());
    // Only what the test says: no index, links or config from the environment.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("PIP_") || key.starts_with("UV_") || key.starts_with("TWINE_") {
            command.env_remove(key.as_ref());
        }
    }
    command.output().unwrap()
}

/// `pip install` into a fresh target directory, no cache, this index only.
pub fn pip_install(index_url: &str, target: &Path, packages: &[&str]) -> Output {
    let mut c = Command::new(tool("pip"));
    c.args([
        "install",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--no-input",
        "--retries",
        "0",
        "--timeout",
        "120",
    ])
    .arg("--target")
    .arg(target)
    .args(["--index-url", index_url])
    .args(packages)
    .env_remove("PIP_INDEX_URL")
    .env_remove("PIP_EXTRA_INDEX_URL")
    .env("PIP_CONFIG_FILE", "/dev/null");
    run(c)
}

/// `uv pip install` into a fresh target directory, no cache, this index only.
pub fn uv_install(index_url: &str, target: &Path, packages: &[&str]) -> Output {
    let mut c = Command::new(tool("uv"));
    c.args(["pip", "install", "--no-cache", "--no-config"])
        .arg("--python")
        .arg(tool("python"))
        .arg("--target")
        .arg(target)
        .args(["--index-url", index_url])
        .args(packages)
        .env_remove("UV_INDEX_URL")
        .env_remove("UV_EXTRA_INDEX_URL")
        .env("UV_HTTP_TIMEOUT", "120");
    run(c)
}

/// `twine upload` of `files` to `repository_url`.
pub fn twine_upload(repository_url: &str, user: &str, password: &str, files: &[&Path]) -> Output {
    let mut c = Command::new(tool("twine"));
    c.args([
        "upload",
        "--disable-progress-bar",
        "--non-interactive",
        "--repository-url",
        repository_url,
    ])
    .args(["-u", user, "-p", password])
    .args(files)
    .env_remove("TWINE_REPOSITORY_URL")
    .env_remove("TWINE_USERNAME")
    .env_remove("TWINE_PASSWORD");
    run(c)
}

/// Whether a package landed in a `--target` directory.
pub fn installed(target: &Path, module: &str) -> bool {
    target.join(module).join("__init__.py").exists()
}

/// A legacy upload form, written by hand so a test can send what twine never would.
pub fn upload_form(
    server: &Entrepot,
    repo: &str,
    fields: &[(&str, &str)],
    filename: &str,
    content: &[u8],
) -> reqwest::blocking::Response {
    let boundary = "entrepot-test-boundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    server
        .request(Method::POST, &format!("/pypi/default/{repo}/legacy/"))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .unwrap()
}
