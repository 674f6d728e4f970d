//! Helpers for the IAM integration tests: a real `entrepot serve` on a free
//! loopback port, its bootstrap admin token, the CLI, skopeo and raw HTTP.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The entrepot binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_entrepot");

/// A running server with its own data directory.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Holds the data directory, CLI config and skopeo auth files.
    pub dir: tempfile::TempDir,
    /// The bootstrap admin's token.
    pub admin_token: String,
    /// Everything the server printed on stdout after the first line.
    pub banner: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Start a server and wait for its first stdout line.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let env = [("ENTREPOT_LOG".to_owned(), "warn".to_owned())];
        let launched = crate::launch::launch(&data, &env, Stdio::null(), String::new);
        let (child, addr, mut lines) = (launched.child, launched.addr, launched.stdout);
        // The banner ends with the registry login hint on first start.
        let mut banner = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let last = line.contains("registry login:");
            banner.push(line);
            if last {
                break;
            }
        }
        crate::launch::drain(lines);
        let admin_token = std::fs::read_to_string(data.join("bootstrap-admin-token"))
            .unwrap()
            .trim()
            .to_owned();
        Server {
            child,
            addr,
            dir,
            admin_token,
            banner,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Run the CLI against this server with `token` (none: anonymous), with a
    /// private CLI config file.
    pub fn cli(&self, token: Option<&str>, args: &[&str]) -> Output {
        self.cli_with_stdin(token, args, None)
    }

    /// Like [`Server::cli`], feeding `stdin`.
    pub fn cli_with_stdin(
        &self,
        token: Option<&str>,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("ENTREPOT_SERVER", self.url())
            .env("ENTREPOT_CONFIG", self.dir.path().join("cli.toml"))
            .env_remove("ENTREPOT_TOKEN")
            .env_remove("ENTREPOT_PROJECT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(t) = token {
            cmd.env("ENTREPOT_TOKEN", t);
        }
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Run the CLI as the admin and insist it succeeds; its stdout.
    pub fn admin_cli(&self, args: &[&str]) -> String {
        let out = self.cli(Some(&self.admin_token), args);
        assert!(
            out.status.success(),
            "entrepot {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A raw admin API call; status and JSON body (Null if empty or not JSON).
    pub fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let client = reqwest::blocking::Client::new();
        let mut req = client.request(method.parse().unwrap(), format!("{}{path}", self.url()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// An admin API call as the admin that must succeed.
    pub fn admin_api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.api(method, path, Some(&self.admin_token), body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {value}"
        );
        value
    }

    /// Create a user and a token for them; the token.
    pub fn user_with_token(&self, email: &str, read_only: bool) -> String {
        self.admin_api(
            "POST",
            "/v1/users",
            Some(serde_json::json!({ "email": email })),
        );
        let token = self.admin_api(
            "POST",
            "/v1/tokens",
            Some(
                serde_json::json!({ "principal": format!("user:{email}"), "readOnly": read_only }),
            ),
        );
        token["token"].as_str().unwrap().to_owned()
    }

    /// Grant `role` to `member` on a resource (`projects/p[/repositories/r]`).
    pub fn grant(&self, resource: &str, member: &str, role: &str) {
        let mut policy = self.admin_api("GET", &format!("/v1/{resource}:getIamPolicy"), None);
        let bindings = policy["bindings"].as_array_mut().unwrap();
        bindings.push(serde_json::json!({ "role": role, "members": [member] }));
        self.admin_api(
            "POST",
            &format!("/v1/{resource}:setIamPolicy"),
            Some(serde_json::json!({ "policy": policy })),
        );
    }

    /// The skopeo auth file of this test (never the user's own).
    pub fn authfile(&self) -> PathBuf {
        self.dir.path().join("auth.json")
    }

    /// Run skopeo with this test's auth file.
    pub fn skopeo(&self, args: &[&str]) -> Output {
        Command::new("skopeo")
            .args(args)
            .env("REGISTRY_AUTH_FILE", self.authfile())
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }

    /// An OCI layout with one small image tagged `1.0`, created once per server.
    pub fn layout(&self) -> PathBuf {
        let dir = self.dir.path().join("layout");
        if !dir.exists() {
            write_layout(&dir);
        }
        dir
    }

    /// skopeo-push the test image to `project/repo/image:tag` with `user:token`
    /// credentials (`None`: the auth file).
    pub fn push(&self, target: &str, creds: Option<&str>) -> Output {
        let src = format!("oci:{}:1.0", self.layout().display());
        let dst = format!("docker://{}/{target}", self.addr);
        let mut args = vec!["copy", "--dest-tls-verify=false"];
        if let Some(c) = creds {
            args.extend(["--dest-creds", c]);
        }
        args.extend([src.as_str(), dst.as_str()]);
        self.skopeo(&args)
    }

    /// skopeo-pull `project/repo/image:tag` into a fresh layout.
    pub fn pull(&self, target: &str, creds: Option<&str>) -> Output {
        let out = self.dir.path().join(format!("pulled-{}", uuid_like()));
        let dst = format!("oci:{}:1.0", out.display());
        let src = format!("docker://{}/{target}", self.addr);
        let mut args = vec!["copy", "--src-tls-verify=false"];
        if let Some(c) = creds {
            args.extend(["--src-creds", c]);
        }
        args.extend([src.as_str(), dst.as_str()]);
        self.skopeo(&args)
    }

    /// A raw `/v2` request with optional Basic credentials.
    pub fn v2(
        &self,
        method: &str,
        path: &str,
        basic: Option<(&str, &str)>,
    ) -> reqwest::blocking::Response {
        let client = reqwest::blocking::Client::new();
        let mut req = client.request(method.parse().unwrap(), format!("{}{path}", self.url()));
        if let Some((u, p)) = basic {
            req = req.basic_auth(u, Some(p));
        }
        req.send().unwrap()
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

/// Whether a process succeeded, with its stderr for assertion messages.
pub fn ok(out: &Output) -> bool {
    out.status.success()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn put_blob(dir: &Path, bytes: &[u8]) -> String {
    let hex = hex::encode(Sha256::digest(bytes));
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

/// The digest of the test image's manifest.
pub fn manifest_digest(layout: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

/// Write an OCI image layout holding one image (one small layer) tagged `1.0`.
pub fn write_layout(dir: &Path) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let layer = b"entrepot IAM test layer\n".repeat(64);
    let layer_digest = put_blob(dir, &layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
        "config": {}
    }))
    .unwrap();
    let config_digest = put_blob(dir, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len() }]
    }))
    .unwrap();
    let manifest_digest = put_blob(dir, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": "1.0" }
        }]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}
