//! Shared helpers of the integration tests: run the real `entrepot` binary on a
//! free loopback port, build OCI image layouts on disk, drive skopeo and podman,
//! and speak raw HTTP to the registry.
//!
//! Every helper that talks to the server goes through [`Server::request`] or the
//! skopeo/CLI helpers, which add credentials when the server has some, so tests
//! keep working once `/v2` and `/v1` require authentication.

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::RngCore;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `sha256:<hex>` of some bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Random bytes.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

/// Fail with the package to install when a client program is missing.
pub fn require_tool(tool: &str, package: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "{tool} is required by this test and was not found; install it with `apt-get install -y {package}`"
    );
}

/// How to start a server.
#[derive(Default)]
pub struct ServerOptions {
    /// Reuse this data directory (to restart on the same state).
    pub data_dir: Option<PathBuf>,
    /// Extra environment, e.g. `ENTREPOT_UPLOAD_TIMEOUT_SECS`.
    pub env: Vec<(String, String)>,
    /// A token to send as `Authorization: Bearer` on `/v1` and `/v2`, and to
    /// skopeo/podman as the password of `username`.
    pub token: Option<String>,
    /// The user name for Basic credentials given to skopeo and podman.
    pub username: Option<String>,
}

/// A running `entrepot serve`, killed on drop.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The server's log (its stderr).
    pub log: PathBuf,
    /// Credentials the helpers send.
    pub token: Option<String>,
    pub username: Option<String>,
    env: Vec<(String, String)>,
    http: Client,
    /// Keeps the temporary directory alive as long as the server, unless the
    /// data directory was given.
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A fresh server on a temporary data directory.
    pub fn start() -> Server {
        Self::start_with(ServerOptions::default())
    }

    /// A server with options.
    pub fn start_with(options: ServerOptions) -> Server {
        let (dir, data_dir) = match options.data_dir {
            Some(d) => (None, d),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("entrepot-test-")
                    .tempdir()
                    .unwrap();
                let data = dir.path().join("data");
                (Some(dir), data)
            }
        };
        fs::create_dir_all(&data_dir).unwrap();
        let log = data_dir.with_extension("log");
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut env = vec![(
            "ENTREPOT_LOG".to_owned(),
            "info,tower_http=debug".to_owned(),
        )];
        env.extend(options.env.iter().cloned());
        let launched = crate::launch::launch(&data_dir, &env, Stdio::from(log_file), || {
            format!("log:\n{}", fs::read_to_string(&log).unwrap_or_default())
        });
        crate::launch::drain(launched.stdout);
        let (child, addr) = (launched.child, launched.addr);
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(300))
            .build()
            .unwrap();
        // Unless a test chose its credentials, it acts as the bootstrap admin.
        // The server deletes its token file once the token is used: keep a copy
        // beside the data directory for later starts on the same data.
        let kept = data_dir.with_extension("admin-token");
        let (token, username) = match options.token {
            Some(token) => (Some(token), options.username),
            None => match fs::read_to_string(data_dir.join("bootstrap-admin-token"))
                .or_else(|_| fs::read_to_string(&kept))
            {
                Ok(token) => {
                    let token = token.trim().to_owned();
                    fs::write(&kept, &token).unwrap();
                    (Some(token), Some("admin".to_owned()))
                }
                Err(_) => (None, options.username),
            },
        };
        Server {
            child,
            base: format!("http://{addr}"),
            addr,
            data_dir,
            log,
            token,
            username,
            env: options.env,
            http,
            _dir: dir,
        }
    }

    /// Stop this server and start a new one on the same data directory.
    pub fn restart(mut self) -> Server {
        self.stop();
        let dir = self._dir.take();
        let mut server = Self::start_with(ServerOptions {
            data_dir: Some(self.data_dir.clone()),
            env: self.env.clone(),
            token: self.token.clone(),
            username: self.username.clone(),
        });
        server._dir = dir;
        server
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's log so far, for failure messages.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A request to `path` (which starts with `/`), with credentials if any.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request
    }

    pub fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().unwrap()
    }

    /// Create a Docker repository in project `default` through the admin API.
    pub fn create_repository(&self, id: &str) {
        self.create_repository_in("default", id);
    }

    /// Create a Docker repository in a project through the admin API.
    pub fn create_repository_in(&self, project: &str, id: &str) {
        let response = self
            .request(
                Method::POST,
                &format!("/v1/projects/{project}/repositories?repositoryId={id}"),
            )
            .json(&json!({ "format": "docker" }))
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "create repository {id}: {}",
            response.text().unwrap()
        );
    }

    /// Add `host` (e.g. `127.0.0.1:5000`) to the registry access policy, so that
    /// remote repositories may use it as their upstream.
    pub fn allow_upstream(&self, host: &str) {
        let response = self
            .request(Method::PATCH, "/v1/organization/accessPolicy")
            .json(&json!({ "addAllowedHosts": [host] }))
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "allow upstream {host}: {}",
            response.text().unwrap()
        );
    }

    /// Run the `entrepot` CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_entrepot"));
        command
            .args(args)
            .env("ENTREPOT_SERVER", &self.base)
            .env_remove("ENTREPOT_TOKEN");
        if let Some(token) = &self.token {
            command.env("ENTREPOT_TOKEN", token);
        }
        command.output().unwrap()
    }

    /// `docker://ADDR/PATH`.
    pub fn docker_ref(&self, image: &str) -> String {
        format!("docker://{}/{image}", self.addr)
    }

    fn creds(&self) -> Option<String> {
        self.token.as_ref().map(|t| {
            format!(
                "{}:{t}",
                self.username.as_deref().unwrap_or("oauth2accesstoken")
            )
        })
    }

    /// `skopeo copy` from an OCI layout into this server, digests preserved.
    /// `all` copies every platform of an index.
    pub fn skopeo_push(&self, layout: &Path, tag: &str, image: &str, all: bool) {
        let mut args = vec![
            "copy".to_owned(),
            "--preserve-digests".into(),
            "--dest-tls-verify=false".into(),
        ];
        if all {
            args.push("--all".into());
        }
        if let Some(creds) = self.creds() {
            args.push(format!("--dest-creds={creds}"));
        }
        args.push(format!("oci:{}:{tag}", layout.display()));
        args.push(self.docker_ref(image));
        self.skopeo(&args);
    }

    /// `skopeo copy` from this server into a new OCI layout.
    pub fn skopeo_pull(&self, image: &str, layout: &Path, tag: &str, all: bool) {
        let mut args = vec![
            "copy".to_owned(),
            "--preserve-digests".into(),
            "--src-tls-verify=false".into(),
        ];
        if all {
            args.push("--all".into());
        }
        if let Some(creds) = self.creds() {
            args.push(format!("--src-creds={creds}"));
        }
        args.push(self.docker_ref(image));
        args.push(format!("oci:{}:{tag}", layout.display()));
        self.skopeo(&args);
    }

    /// Run skopeo (with `--insecure-policy`, so no policy file is needed).
    pub fn skopeo(&self, args: &[String]) {
        require_tool("skopeo", "skopeo");
        let output = Command::new("skopeo")
            .arg("--insecure-policy")
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "skopeo {args:?} failed:\n{}\n--- server log ---\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log_text()
        );
    }

    /// Push a blob in one request (`POST ...?digest=`); returns its digest.
    pub fn push_blob(&self, image: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let response = self
            .request(
                Method::POST,
                &format!("/v2/{image}/blobs/uploads/?digest={digest}"),
            )
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            response.status(),
            201,
            "push blob: {}",
            response.text().unwrap()
        );
        digest
    }

    /// Put a manifest; returns the response.
    pub fn put_manifest(
        &self,
        image: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Response {
        self.request(Method::PUT, &format!("/v2/{image}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(bytes.to_vec())
            .send()
            .unwrap()
    }

    /// Push a small image's blobs and its manifest under `reference` by raw
    /// HTTP; asserts 201.
    pub fn push_image(&self, image: &str, reference: &str, img: &SmallImage) {
        for blob in &img.blobs {
            self.push_blob(image, blob);
        }
        let response = self.put_manifest(image, reference, OCI_MANIFEST, &img.manifest);
        assert_eq!(
            response.status(),
            201,
            "put manifest: {}",
            response.text().unwrap()
        );
        assert_eq!(header(&response, "docker-content-digest"), img.digest);
    }

    /// Push a new random small image tagged `tag`; returns it.
    pub fn push_small_image(&self, image: &str, tag: &str) -> SmallImage {
        let img = SmallImage::random();
        self.push_image(image, tag, &img);
        img
    }
}

/// A small image (config + one layer) built in memory.
#[derive(Debug, Clone)]
pub struct SmallImage {
    /// Manifest digest.
    pub digest: String,
    /// Manifest bytes.
    pub manifest: Vec<u8>,
    /// Layer then config bytes.
    pub blobs: Vec<Vec<u8>>,
}

impl SmallImage {
    /// A new image with a random 1 KiB layer.
    pub fn random() -> SmallImage {
        let layer = random_bytes(1024);
        let layer_digest = sha256(&layer);
        let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer_digest]}})
            .to_string()
            .into_bytes();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(&config), "size": config.len()},
            "layers": [{"mediaType": LAYER_TAR, "digest": layer_digest, "size": layer.len()}],
        })
        .to_string()
        .into_bytes();
        SmallImage {
            digest: sha256(&manifest),
            manifest,
            blobs: vec![layer, config],
        }
    }

    /// Digest of the layer.
    pub fn layer_digest(&self) -> String {
        sha256(&self.blobs[0])
    }
}

/// Send one HTTP/1.1 request over a plain TCP connection, byte for byte as
/// given (clients normalise paths such as `a/../b`; this does not). Returns
/// the status and the body.
pub fn raw_http(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Assert an OCI error answer: status and `errors[0].code`. Returns the body.
pub fn assert_oci_error(response: Response, status: u16, code: &str) -> Value {
    let got_status = response.status().as_u16();
    let text = response.text().unwrap();
    assert_eq!(
        got_status, status,
        "expected {status} {code}, got {got_status}: {text}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is not JSON: {text}"));
    assert_eq!(body["errors"][0]["code"], code, "body: {text}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error without a message: {text}"
    );
    body
}

/// A header as text.
pub fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("response has no {name} header: {:?}", response.headers()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Poll `check` until it returns true, up to `bound`. This is a functional
/// wait (something must eventually happen), not a timing assertion.
pub fn eventually(bound: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if check() {
            return true;
        }
        if start.elapsed() > bound {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// How a generated layer is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// `application/vnd.oci.image.layer.v1.tar`.
    Tar,
    /// `application/vnd.oci.image.layer.v1.tar+gzip`.
    Gzip,
}

/// A descriptor of content in a layout.
#[derive(Debug, Clone)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
}

impl Blob {
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// An OCI image layout being written (`oci-layout`, `index.json`, `blobs/`).
pub struct OciLayout {
    pub dir: PathBuf,
    refs: Vec<Value>,
}

impl OciLayout {
    /// A new empty layout in `dir`.
    pub fn create(dir: &Path) -> OciLayout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let layout = OciLayout {
            dir: dir.to_owned(),
            refs: Vec::new(),
        };
        layout.write_index();
        layout
    }

    fn write_index(&self) {
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.refs});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec_pretty(&index).unwrap(),
        )
        .unwrap();
    }

    /// Store bytes as a blob.
    pub fn add_blob(&mut self, media_type: &str, bytes: &[u8]) -> Blob {
        let digest = sha256(bytes);
        let hex = digest.trim_start_matches("sha256:");
        fs::write(self.dir.join("blobs/sha256").join(hex), bytes).unwrap();
        Blob {
            media_type: media_type.to_owned(),
            digest,
            size: bytes.len(),
        }
    }

    /// Build a layer: a tar archive holding one file of `size` random bytes,
    /// gzipped or not. Returns the blob and its diff id.
    pub fn add_layer(&mut self, size: usize, kind: LayerKind) -> (Blob, String) {
        let mut builder = tar::Builder::new(Vec::new());
        let data = random_bytes(size);
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        let name = format!("data-{}.bin", &sha256(&data)[7..19]);
        builder
            .append_data(&mut header, &name, data.as_slice())
            .unwrap();
        let tar = builder.into_inner().unwrap();
        let diff_id = sha256(&tar);
        let blob = match kind {
            LayerKind::Tar => self.add_blob(LAYER_TAR, &tar),
            LayerKind::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&tar).unwrap();
                let gz = gz.finish().unwrap();
                self.add_blob(LAYER_GZIP, &gz)
            }
        };
        (blob, diff_id)
    }

    /// Build an image of the given layers for `linux/{arch}`; returns its manifest blob.
    pub fn add_image(&mut self, layers: &[(usize, LayerKind)], arch: &str) -> Blob {
        let mut descriptors = Vec::new();
        let mut diff_ids = Vec::new();
        for (size, kind) in layers {
            let (blob, diff_id) = self.add_layer(*size, *kind);
            descriptors.push(blob.descriptor());
            diff_ids.push(diff_id);
        }
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/data.bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = self.add_blob(OCI_CONFIG, &serde_json::to_vec(&config).unwrap());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": descriptors,
        });
        self.add_blob(OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap())
    }

    /// Build an index of `(manifest, arch)` entries; returns its blob.
    pub fn add_index(&mut self, entries: &[(&Blob, &str)]) -> Blob {
        let manifests: Vec<Value> = entries
            .iter()
            .map(|(m, arch)| {
                let mut d = m.descriptor();
                d["platform"] = json!({"architecture": arch, "os": "linux"});
                d
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        self.add_blob(OCI_INDEX, &serde_json::to_vec(&index).unwrap())
    }

    /// Name `blob` (a manifest or index) `tag` in `index.json`.
    pub fn tag(&mut self, blob: &Blob, tag: &str) {
        let mut d = blob.descriptor();
        d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.refs.push(d);
        self.write_index();
    }
}

/// Path of a blob in a layout directory.
pub fn layout_blob(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The digest that `tag` names in a layout's `index.json`.
pub fn layout_ref(dir: &Path, tag: &str) -> String {
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("{tag} is not in {}/index.json: {index}", dir.display()))
        ["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Assert that the manifest `digest` and everything it references (config,
/// layers, child manifests) are byte for byte the same in both layouts, and
/// that each pulled file hashes to its name. Returns how many blobs were compared.
pub fn assert_same_content(original: &Path, pulled: &Path, digest: &str) -> usize {
    let want = fs::read(layout_blob(original, digest)).unwrap();
    let got = fs::read(layout_blob(pulled, digest))
        .unwrap_or_else(|e| panic!("{digest} is missing from the pulled layout: {e}"));
    assert_eq!(
        sha256(&got),
        digest,
        "pulled file {digest} has other content"
    );
    assert!(
        want == got,
        "{digest} differs between the pushed and pulled layouts"
    );
    let doc: Value = serde_json::from_slice(&want).unwrap();
    let mut compared = 1;
    if let Some(children) = doc["manifests"].as_array() {
        for child in children {
            compared += assert_same_content(original, pulled, child["digest"].as_str().unwrap());
        }
        return compared;
    }
    let mut blobs = vec![doc["config"].clone()];
    blobs.extend(doc["layers"].as_array().cloned().unwrap_or_default());
    for blob in blobs {
        let d = blob["digest"].as_str().unwrap();
        let want = fs::read(layout_blob(original, d)).unwrap();
        let got = fs::read(layout_blob(pulled, d))
            .unwrap_or_else(|e| panic!("blob {d} was not pulled: {e}"));
        assert_eq!(sha256(&got), d, "pulled blob {d} has other content");
        assert!(want == got, "blob {d} differs");
        assert_eq!(blob["size"].as_u64(), Some(got.len() as u64));
        compared += 1;
    }
    compared
}

/// The `Link` header's next URL, if any.
pub fn next_link(response: &Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    let start = link.find('<')? + 1;
    let end = link.find('>')?;
    Some(link[start..end].to_owned())
}

/// Parse a query string into a map (for Link URLs).
pub fn query_of(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}
