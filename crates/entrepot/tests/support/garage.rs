//! Garage, the self-hosted S3 server, on loopback: a single-node cluster in
//! a temporary directory with one bucket and one access key, killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use rand::RngCore;

use super::upstream::free_port;
use super::wait::eventually;

/// The garage binary: `$GARAGE_BIN` (when set, that file or none),
/// `/opt/garage/bin/garage`, or `garage` on `PATH`; `None` when there is none.
pub fn garage_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("GARAGE_BIN") {
        return Some(PathBuf::from(bin)).filter(|b| b.is_file());
    }
    let installed = PathBuf::from("/opt/garage/bin/garage");
    if installed.is_file() {
        return Some(installed);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join("garage"))
        .find(|p| p.is_file())
}

/// A running Garage node with bucket [`Garage::bucket`] and the key that may
/// read and write it.
pub struct Garage {
    child: Option<Child>,
    bin: PathBuf,
    config: PathBuf,
    /// The S3 API's base URL, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket created for the test.
    pub bucket: String,
    /// The access key id of the bucket's key.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    dir: tempfile::TempDir,
}

impl Garage {
    /// Start Garage with a single-node layout and bucket `bucket`; `None`,
    /// after printing why, when no garage binary is installed.
    pub fn start(bucket: &str) -> Option<Garage> {
        let Some(bin) = garage_binary() else {
            eprintln!(
                "SKIPPED: no garage binary (set GARAGE_BIN, install /opt/garage/bin/garage or put garage on PATH: cargo install --locked garage)"
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("entrepot-garage-")
            .tempdir()
            .unwrap();
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
                meta = dir.path().join("meta").display(),
                data = dir.path().join("data").display(),
                secret = hex::encode(secret),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("garage.log")).unwrap();
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start garage");
        let mut garage = Garage {
            child: Some(child),
            bin,
            config,
            endpoint: format!("http://127.0.0.1:{s3}"),
            bucket: bucket.to_owned(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            dir,
        };
        garage.set_up_single_node();
        Some(garage)
    }

    /// Layout, bucket, key and grant, as the Garage quick start does them.
    fn set_up_single_node(&mut self) {
        assert!(
            eventually(Duration::from_secs(30), || self
                .cli(&["status"])
                .status
                .success()),
            "garage did not come up: {}",
            self.log_text()
        );
        let id = self.cli_ok(&["node", "id", "-q"]);
        let id = id.trim().split('@').next().unwrap().to_owned();
        self.cli_ok(&["layout", "assign", "-z", "dc1", "-c", "1G", &id]);
        self.cli_ok(&["layout", "apply", "--version", "1"]);
        let bucket = self.bucket.clone();
        assert!(
            eventually(Duration::from_secs(30), || self
                .cli(&["bucket", "create", &bucket])
                .status
                .success()),
            "garage refused to create the bucket: {}",
            self.log_text()
        );
        let key = self.cli_ok(&["key", "create", "entrepot-test"]);
        let field = |name: &str| {
            key.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| panic!("no {name} in garage's key output:\n{key}"))
        };
        self.access_key_id = field("Key ID:");
        self.secret_access_key = field("Secret key:");
        self.cli_ok(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            &bucket,
            "--key",
            "entrepot-test",
        ]);
    }

    /// Run `garage -c CONFIG ARGS`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Run a garage command that must succeed; its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "garage {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `s3://BUCKET?endpoint=...&region=garage`, as `--blob-store` takes it.
    pub fn blob_store_url(&self) -> String {
        format!(
            "s3://{}?endpoint={}&region=garage",
            self.bucket, self.endpoint
        )
    }

    /// The environment that points a server at this bucket.
    pub fn server_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ENTREPOT_BLOB_STORE", self.blob_store_url()),
            ("AWS_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
        ]
    }

    /// Garage's own log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    /// Bytes Garage holds in its data directory (blocks, possibly compressed).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
