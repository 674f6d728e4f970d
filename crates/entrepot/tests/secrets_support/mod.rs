//! Helpers for the secret manager tests: the real `entrepot` binary as server and
//! CLI, on a free loopback port, with a temporary data directory and the server's
//! log kept in a file for inspection.

#![allow(dead_code, clippy::unwrap_used)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_entrepot")
}

/// A running `entrepot serve`.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The bootstrap admin's token when the server enforces IAM (it writes the
    /// token to `<data-dir>/bootstrap-admin-token` on first start); `None` while
    /// every caller is allowed everything.
    pub token: Option<String>,
}

impl Server {
    /// Start a server on `data_dir` at debug log level, appending its stderr to `log`.
    pub fn start(data_dir: &Path, log: &Path) -> Server {
        let stderr: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let env = [("ENTREPOT_LOG".to_owned(), "debug".to_owned())];
        let launched = crate::launch::launch(data_dir, &env, Stdio::from(stderr), || {
            format!("see the log at {}", log.display())
        });
        crate::launch::drain(launched.stdout);
        let (child, url) = (launched.child, format!("http://{}", launched.addr));
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        // The server deletes its token file once the token is used: keep a
        // copy beside the data directory for later starts on the same data.
        let kept = data_dir.with_extension("admin-token");
        let token = std::fs::read_to_string(data_dir.join("bootstrap-admin-token"))
            .or_else(|_| std::fs::read_to_string(&kept))
            .ok()
            .map(|t| t.trim().to_owned());
        if let Some(t) = &token {
            let _ = std::fs::write(&kept, t);
        }
        Server {
            child,
            url,
            data_dir: data_dir.to_owned(),
            token,
        }
    }

    /// Stop the server the way an operator does (SIGTERM) and wait for it to exit.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap();
    }

    /// Run a CLI command against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_stdin(args, None)
    }

    /// Run a CLI command against this server, feeding `stdin`.
    pub fn cli_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut command = Command::new(binary());
        command
            .arg("--server")
            .arg(&self.url)
            .args(args)
            .env_remove("ENTREPOT_TOKEN")
            .env_remove("ENTREPOT_PROJECT")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(token) = &self.token {
            command.env("ENTREPOT_TOKEN", token);
        }
        let mut child = command.spawn().unwrap();
        if let Some(bytes) = stdin {
            child.stdin.take().unwrap().write_all(bytes).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Run a CLI command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "entrepot {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Run a CLI command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            !out.status.success(),
            "entrepot {args:?} unexpectedly succeeded"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// A raw HTTP request to `path` on this server, as the admin when IAM is on.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        let request =
            reqwest::blocking::Client::new().request(method, format!("{}{path}", self.url));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// GET a path of the admin API and decode the JSON answer.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.request(reqwest::Method::GET, path).send().unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `entrepot admin ...` (no server involved).
pub fn admin(args: &[&str]) -> Output {
    Command::new(binary())
        .arg("admin")
        .args(args)
        .env_remove("ENTREPOT_MASTER_KEY_FILE")
        .env_remove("ENTREPOT_DATA_DIR")
        .output()
        .unwrap()
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Write `bytes` to `dir/name` and return the path as a string.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}
