//! Server configuration: one typed struct, loaded once from an optional TOML
//! file, then `ENTREPOT_*` environment variables, then command-line flags, and
//! validated before anything starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod blob_store;
mod database_url;
mod mirrors;

pub use blob_store::{BlobStoreOpenError, SecretSetting};
pub use database_url::DatabaseUrl;
pub use mirrors::MirrorConfig;

/// Why the configuration cannot be used. Each variant names the bad key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this struct.
    #[error("config file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key.
        message: String,
    },
    /// One setting has a bad value.
    #[error("config key {key} (environment {env}): {message}")]
    Value {
        /// The TOML key.
        key: &'static str,
        /// The environment variable.
        env: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Everything `entrepot serve` can be told.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where all state lives.
    pub data_dir: PathBuf,
    /// The PostgreSQL database of the metadata (`postgres://user:password@host/db`),
    /// shared by every server pointed at it; unset: the SQLite file of the
    /// data directory, for one server. Printed with its password redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<DatabaseUrl>,
    /// Seconds an idle upload session is kept before it is removed.
    pub upload_timeout_secs: u64,
    /// `text` or `json` log lines.
    pub log_format: String,
    /// Largest file accepted by a Python upload (twine), in bytes.
    pub python_max_upload_bytes: u64,
    /// The master key file of the secret manager (default `<data_dir>/master.key`).
    pub master_key_file: Option<PathBuf>,
    /// Seconds a client has to send a complete request head (request line and
    /// headers), from the moment the server waits for one; also bounds how long
    /// a keep-alive connection waits for its next request.
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may sit with no request in flight and no byte
    /// moving before it is closed.
    pub idle_timeout_secs: u64,
    /// Most connections open at once; further ones are answered 503 and closed.
    pub max_connections: usize,
    /// Send stored blobs and Python files from their files with `sendfile`
    /// on plain HTTP/1.1 connections (TLS and HTTP/2 always copy); off only
    /// for a filesystem whose `sendfile` misbehaves, or to measure the cost.
    pub sendfile: bool,
    /// `/readyz` answers 503 when the data directory's filesystem has less
    /// free space than this (bytes; 0 turns the check off).
    pub min_free_disk_bytes: u64,
    /// When to rehash stored blobs at start, in the background: `once` (until
    /// one full pass has completed), `always` or `never`.
    pub verify_blobs_on_start: VerifyOnStart,
    /// Reverse proxies (IP addresses or CIDR ranges) whose `X-Forwarded-*`
    /// headers are believed; from anyone else they are ignored. Default none.
    pub trusted_proxies: Vec<String>,
    /// Rows kept in the audit log; the oldest are removed beyond it.
    pub audit_max_rows: u64,
    /// Most files an upstream Python project page may list; a larger page is
    /// refused with an error naming this limit.
    pub python_max_page_files: usize,
    /// The default and the largest page of `tags/list` and `_catalog`; a
    /// partial answer carries a `Link` header to the next page.
    pub max_page_size: u32,
    /// Estimated bytes the in-process read cache (IAM policies, repositories,
    /// manifests by tag, remote Python files) may hold in all; 0 turns it
    /// off, so every lookup reads the database.
    pub read_cache_bytes: u64,
    /// PEM certificate chain to serve HTTPS with (with `tls_key`); unset:
    /// plain HTTP. Reloaded on SIGHUP and when the file changes.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: when set, every client must present a
    /// certificate signed by one of them (mutual TLS). Needs `tls_cert`.
    pub tls_client_ca: Option<PathBuf>,
    /// The remote repository (`projects/P/repositories/R`) that serves the
    /// registry mirror endpoint for Docker Hub: `/v2/NAME/...` without a
    /// project prefix, as the Docker daemon's `registry-mirrors` sends it.
    pub mirror: Option<String>,
    /// Mirrors of other upstream hosts, chosen by containerd's `?ns=HOST`.
    pub mirrors: Vec<MirrorConfig>,
    /// Seconds between two runs of the garbage collector (0: never on a
    /// schedule; `entrepot admin gc` still runs it).
    pub gc_interval_secs: u64,
    /// Seconds a blob uploaded but named by no manifest is kept: a push
    /// must put its manifest within this time after its blobs.
    pub gc_grace_secs: u64,
    /// Most bytes of blobs all remote repositories together may cache
    /// (`"500GiB"`, or a number of bytes); past it the least recently pulled
    /// images go. Unset: no store-wide cap (a repository's own cap still
    /// applies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_max_size: Option<entrepot_domain::ByteSize>,
    /// Seconds between two passes that measure every remote cache (the
    /// size gauges) and evict from those over their cap; a cache is also
    /// checked right after it cached content. 0 turns eviction off.
    pub cache_eviction_interval_secs: u64,
    /// Seconds between two runs of every repository's cleanup policies (0:
    /// never on a schedule; `entrepot repositories cleanup` still runs them).
    pub cleanup_interval_secs: u64,
    /// Where blobs live: unset for `<data_dir>/blobs`, or an S3-compatible
    /// bucket, `s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob_store: Option<String>,
    /// The bucket's access key id; unset: `AWS_ACCESS_KEY_ID` and the rest
    /// of the `AWS_*` environment. Credentials are never printed.
    #[serde(skip_serializing)]
    pub blob_store_access_key_id: Option<String>,
    /// The secret of `blob_store_access_key_id`; never printed.
    #[serde(skip_serializing)]
    pub blob_store_secret_access_key: Option<SecretSetting>,
}

/// A `database_url` from the environment or a flag: empty means unset.
fn database_url_value(url: &str) -> Result<Option<DatabaseUrl>, ConfigError> {
    if url.is_empty() {
        return Ok(None);
    }
    DatabaseUrl::parse(url)
        .map(Some)
        .map_err(|message| ConfigError::Value {
            key: "database_url",
            env: "ENTREPOT_DATABASE_URL",
            message,
        })
}

/// The largest `max_page_size` accepted: one page is built in memory.
const MAX_PAGE_SIZE_LIMIT: u32 = 1_000_000;

/// When `entrepot serve` rehashes the blob store at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyOnStart {
    /// Until one full pass has completed on this data directory.
    Once,
    /// At every start.
    Always,
    /// Never (run `entrepot admin verify-blobs` instead).
    Never,
}

impl std::str::FromStr for VerifyOnStart {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "once" => Ok(Self::Once),
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            other => Err(format!("{other:?} is not once, always or never")),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("entrepot-data"),
            database_url: None,
            upload_timeout_secs: 3600,
            log_format: "text".into(),
            python_max_upload_bytes: 1024 * 1024 * 1024,
            master_key_file: None,
            header_read_timeout_secs: 30,
            idle_timeout_secs: 20,
            max_connections: 4096,
            sendfile: true,
            min_free_disk_bytes: 1024 * 1024 * 1024,
            verify_blobs_on_start: VerifyOnStart::Once,
            trusted_proxies: Vec::new(),
            audit_max_rows: 1_000_000,
            python_max_page_files: entrepot_services::python::index::DEFAULT_MAX_PAGE_FILES,
            max_page_size: entrepot_services::oci::DEFAULT_MAX_PAGE_SIZE,
            read_cache_bytes: entrepot_storage::DEFAULT_READ_CACHE_BYTES,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            mirror: None,
            mirrors: Vec::new(),
            gc_interval_secs: 3600,
            gc_grace_secs: 24 * 3600,
            cache_max_size: None,
            cache_eviction_interval_secs: 60,
            cleanup_interval_secs: 3600,
            blob_store: None,
            blob_store_access_key_id: None,
            blob_store_secret_access_key: None,
        }
    }
}

/// Overrides from the command line.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config`.
    pub file: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--read-cache-bytes`.
    pub read_cache_bytes: Option<u64>,
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `--tls-client-ca`.
    pub tls_client_ca: Option<PathBuf>,
    /// `--min-free-disk`.
    pub min_free_disk_bytes: Option<u64>,
    /// `--gc-interval` (seconds).
    pub gc_interval_secs: Option<u64>,
    /// `--cache-max-size`.
    pub cache_max_size: Option<entrepot_domain::ByteSize>,
    /// `--cleanup-interval` (seconds).
    pub cleanup_interval_secs: Option<u64>,
    /// `--blob-store`.
    pub blob_store: Option<String>,
}

impl Config {
    /// Load file, then environment, then flags; validate.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut config = match &overrides.file {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        if let Some(listen) = overrides.listen {
            config.listen = listen;
        }
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(bytes) = overrides.read_cache_bytes {
            config.read_cache_bytes = bytes;
        }
        if let Some(url) = &overrides.database_url {
            config.database_url = database_url_value(url)?;
        }
        for (flag, setting) in [
            (&overrides.tls_cert, &mut config.tls_cert),
            (&overrides.tls_key, &mut config.tls_key),
            (&overrides.tls_client_ca, &mut config.tls_client_ca),
        ] {
            if let Some(path) = flag {
                *setting = Some(path.clone());
            }
        }
        if let Some(bytes) = overrides.min_free_disk_bytes {
            config.min_free_disk_bytes = bytes;
        }
        if let Some(secs) = overrides.gc_interval_secs {
            config.gc_interval_secs = secs;
        }
        if let Some(size) = overrides.cache_max_size {
            config.cache_max_size = Some(size).filter(|s| s.0 > 0);
        }
        if let Some(secs) = overrides.cleanup_interval_secs {
            config.cleanup_interval_secs = secs;
        }
        if let Some(location) = &overrides.blob_store {
            config.blob_store = Some(location.clone());
        }
        config.validate()?;
        Ok(config)
    }

    /// Where the secret manager's master keys live.
    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// The TLS files, when HTTPS is configured.
    pub fn tls_files(&self) -> Option<crate::tls::TlsFiles> {
        Some(crate::tls::TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
        })
    }

    /// The effective configuration as TOML, every key included (for
    /// `serve --print-config`). No key holds secret material: the master
    /// key and the TLS private key are named by path, never inlined, and
    /// `database_url` is printed with its password redacted.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }

    /// The trusted proxies, parsed.
    pub fn trusted_proxies(&self) -> Result<entrepot_api::forwarded::TrustedProxies, ConfigError> {
        let ranges = self
            .trusted_proxies
            .iter()
            .map(|s| {
                s.parse().map_err(|message| ConfigError::Value {
                    key: "trusted_proxies",
                    env: "ENTREPOT_TRUSTED_PROXIES",
                    message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(entrepot_api::forwarded::TrustedProxies::new(ranges))
    }

    fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("ENTREPOT_LISTEN") {
            self.listen = v.parse().map_err(|e| ConfigError::Value {
                key: "listen",
                env: "ENTREPOT_LISTEN",
                message: format!("{v:?} is not an address such as 127.0.0.1:8080 ({e})"),
            })?;
        }
        if let Some(v) = get("ENTREPOT_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("ENTREPOT_DATABASE_URL") {
            self.database_url = database_url_value(&v)?;
        }
        if let Some(v) = get("ENTREPOT_UPLOAD_TIMEOUT_SECS") {
            self.upload_timeout_secs = v.parse().map_err(|_| ConfigError::Value {
                key: "upload_timeout_secs",
                env: "ENTREPOT_UPLOAD_TIMEOUT_SECS",
                message: format!("{v:?} is not a whole number of seconds"),
            })?;
        }
        for (env, key, field) in [
            (
                "ENTREPOT_GC_INTERVAL_SECS",
                "gc_interval_secs",
                &mut self.gc_interval_secs,
            ),
            (
                "ENTREPOT_GC_GRACE_SECS",
                "gc_grace_secs",
                &mut self.gc_grace_secs,
            ),
            (
                "ENTREPOT_CACHE_EVICTION_INTERVAL_SECS",
                "cache_eviction_interval_secs",
                &mut self.cache_eviction_interval_secs,
            ),
            (
                "ENTREPOT_CLEANUP_INTERVAL_SECS",
                "cleanup_interval_secs",
                &mut self.cleanup_interval_secs,
            ),
        ] {
            if let Some(v) = get(env) {
                *field = v.parse().map_err(|_| ConfigError::Value {
                    key,
                    env,
                    message: format!("{v:?} is not a whole number of seconds"),
                })?;
            }
        }
        if let Some(v) = get("ENTREPOT_CACHE_MAX_SIZE") {
            let size: entrepot_domain::ByteSize =
                v.parse()
                    .map_err(|e: entrepot_domain::ByteSizeError| ConfigError::Value {
                        key: "cache_max_size",
                        env: "ENTREPOT_CACHE_MAX_SIZE",
                        message: e.to_string(),
                    })?;
            self.cache_max_size = Some(size).filter(|s| s.0 > 0);
        }
        if let Some(v) = get("ENTREPOT_LOG_FORMAT") {
            self.log_format = v;
        }
        if let Some(v) = get("ENTREPOT_PYTHON_MAX_UPLOAD_BYTES") {
            self.python_max_upload_bytes = v.parse().map_err(|_| ConfigError::Value {
                key: "python_max_upload_bytes",
                env: "ENTREPOT_PYTHON_MAX_UPLOAD_BYTES",
                message: format!("{v:?} is not a whole number of bytes"),
            })?;
        }
        if let Some(v) = get("ENTREPOT_PYTHON_MAX_PAGE_FILES") {
            self.python_max_page_files = v.parse().map_err(|_| ConfigError::Value {
                key: "python_max_page_files",
                env: "ENTREPOT_PYTHON_MAX_PAGE_FILES",
                message: format!("{v:?} is not a whole number of files"),
            })?;
        }
        if let Some(v) = get("ENTREPOT_MASTER_KEY_FILE").filter(|v| !v.is_empty()) {
            self.master_key_file = Some(PathBuf::from(v));
        }
        let number = |key: &'static str, env: &'static str, unit: &str| {
            let unit = unit.to_owned();
            move |v: &str| {
                v.parse::<u64>().map_err(|_| ConfigError::Value {
                    key,
                    env,
                    message: format!("{v:?} is not a whole number of {unit}"),
                })
            }
        };
        if let Some(v) = get("ENTREPOT_HEADER_READ_TIMEOUT_SECS") {
            self.header_read_timeout_secs = number(
                "header_read_timeout_secs",
                "ENTREPOT_HEADER_READ_TIMEOUT_SECS",
                "seconds",
            )(&v)?;
        }
        if let Some(v) = get("ENTREPOT_IDLE_TIMEOUT_SECS") {
            self.idle_timeout_secs =
                number("idle_timeout_secs", "ENTREPOT_IDLE_TIMEOUT_SECS", "seconds")(&v)?;
        }
        if let Some(v) = get("ENTREPOT_MAX_CONNECTIONS") {
            self.max_connections =
                number("max_connections", "ENTREPOT_MAX_CONNECTIONS", "connections")(&v)? as usize;
        }
        if let Some(v) = get("ENTREPOT_SENDFILE") {
            self.sendfile = match v.as_str() {
                "true" | "1" | "on" => true,
                "false" | "0" | "off" => false,
                _ => {
                    return Err(ConfigError::Value {
                        key: "sendfile",
                        env: "ENTREPOT_SENDFILE",
                        message: format!("{v:?} is not true or false"),
                    })
                }
            };
        }
        if let Some(v) = get("ENTREPOT_MIN_FREE_DISK_BYTES") {
            self.min_free_disk_bytes = number(
                "min_free_disk_bytes",
                "ENTREPOT_MIN_FREE_DISK_BYTES",
                "bytes",
            )(&v)?;
        }
        if let Some(v) = get("ENTREPOT_VERIFY_BLOBS_ON_START") {
            self.verify_blobs_on_start = v.parse().map_err(|message| ConfigError::Value {
                key: "verify_blobs_on_start",
                env: "ENTREPOT_VERIFY_BLOBS_ON_START",
                message,
            })?;
        }
        if let Some(v) = get("ENTREPOT_TRUSTED_PROXIES") {
            self.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = get("ENTREPOT_MAX_PAGE_SIZE") {
            self.max_page_size = v.parse().map_err(|_| ConfigError::Value {
                key: "max_page_size",
                env: "ENTREPOT_MAX_PAGE_SIZE",
                message: format!("{v:?} is not a whole number of entries"),
            })?;
        }
        if let Some(v) = get("ENTREPOT_READ_CACHE_BYTES") {
            self.read_cache_bytes =
                number("read_cache_bytes", "ENTREPOT_READ_CACHE_BYTES", "bytes")(&v)?;
        }
        for (env, setting) in [
            ("ENTREPOT_TLS_CERT", &mut self.tls_cert),
            ("ENTREPOT_TLS_KEY", &mut self.tls_key),
            ("ENTREPOT_TLS_CLIENT_CA", &mut self.tls_client_ca),
        ] {
            if let Some(v) = get(env).filter(|v| !v.is_empty()) {
                *setting = Some(PathBuf::from(v));
            }
        }
        if let Some(v) = get("ENTREPOT_MIRROR") {
            self.mirror = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("ENTREPOT_BLOB_STORE").filter(|v| !v.is_empty()) {
            self.blob_store = Some(v);
        }
        if let Some(v) = get("ENTREPOT_AUDIT_MAX_ROWS") {
            self.audit_max_rows = v.parse().map_err(|_| ConfigError::Value {
                key: "audit_max_rows",
                env: "ENTREPOT_AUDIT_MAX_ROWS",
                message: format!("{v:?} is not a whole number of rows"),
            })?;
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.mirrors()?;
        self.validate_blob_store()?;
        if self.upload_timeout_secs == 0 {
            return Err(ConfigError::Value {
                key: "upload_timeout_secs",
                env: "ENTREPOT_UPLOAD_TIMEOUT_SECS",
                message: "must be at least 1 second".into(),
            });
        }
        if self.log_format != "text" && self.log_format != "json" {
            return Err(ConfigError::Value {
                key: "log_format",
                env: "ENTREPOT_LOG_FORMAT",
                message: format!("{:?} is not text or json", self.log_format),
            });
        }
        if self.python_max_upload_bytes == 0 {
            return Err(ConfigError::Value {
                key: "python_max_upload_bytes",
                env: "ENTREPOT_PYTHON_MAX_UPLOAD_BYTES",
                message: "must be at least 1 byte".into(),
            });
        }
        for (value, key, env) in [
            (
                self.header_read_timeout_secs,
                "header_read_timeout_secs",
                "ENTREPOT_HEADER_READ_TIMEOUT_SECS",
            ),
            (
                self.idle_timeout_secs,
                "idle_timeout_secs",
                "ENTREPOT_IDLE_TIMEOUT_SECS",
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Value {
                    key,
                    env,
                    message: "must be at least 1 second".into(),
                });
            }
        }
        if self.max_connections == 0 || self.max_connections > u32::MAX as usize {
            return Err(ConfigError::Value {
                key: "max_connections",
                env: "ENTREPOT_MAX_CONNECTIONS",
                message: "must be between 1 and 4294967295".into(),
            });
        }
        self.trusted_proxies()?;
        if self.audit_max_rows < 1000 {
            return Err(ConfigError::Value {
                key: "audit_max_rows",
                env: "ENTREPOT_AUDIT_MAX_ROWS",
                message: "must be at least 1000".into(),
            });
        }
        if self.python_max_page_files == 0 {
            return Err(ConfigError::Value {
                key: "python_max_page_files",
                env: "ENTREPOT_PYTHON_MAX_PAGE_FILES",
                message: "must be at least 1 file".into(),
            });
        }
        if !(1..=MAX_PAGE_SIZE_LIMIT).contains(&self.max_page_size) {
            return Err(ConfigError::Value {
                key: "max_page_size",
                env: "ENTREPOT_MAX_PAGE_SIZE",
                message: format!("must be between 1 and {MAX_PAGE_SIZE_LIMIT}"),
            });
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return Err(ConfigError::Value {
                    key: "tls_key",
                    env: "ENTREPOT_TLS_KEY",
                    message: "tls_cert is set: the private key is needed too".into(),
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::Value {
                    key: "tls_cert",
                    env: "ENTREPOT_TLS_CERT",
                    message: "tls_key is set: the certificate is needed too".into(),
                })
            }
            (None, None) if self.tls_client_ca.is_some() => {
                return Err(ConfigError::Value {
                    key: "tls_client_ca",
                    env: "ENTREPOT_TLS_CLIENT_CA",
                    message: "client certificates need TLS: set tls_cert and tls_key".into(),
                })
            }
            _ => {}
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Value {
                key: "data_dir",
                env: "ENTREPOT_DATA_DIR",
                message: "must not be empty".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_defaults_and_errors_name_the_key() {
        let mut c = Config::default();
        c.apply_env(|k| (k == "ENTREPOT_LISTEN").then(|| "127.0.0.1:9999".to_owned()))
            .unwrap();
        assert_eq!(c.listen.port(), 9999);
        let err = c
            .apply_env(|k| (k == "ENTREPOT_UPLOAD_TIMEOUT_SECS").then(|| "soon".to_owned()))
            .unwrap_err();
        assert!(err.to_string().contains("upload_timeout_secs"));
        let err = c
            .apply_env(|k| (k == "ENTREPOT_MAX_CONNECTIONS").then(|| "many".to_owned()))
            .unwrap_err();
        assert!(err.to_string().contains("max_connections"));
        let err = c
            .apply_env(|k| (k == "ENTREPOT_VERIFY_BLOBS_ON_START").then(|| "daily".to_owned()))
            .unwrap_err();
        assert!(err.to_string().contains("verify_blobs_on_start"));
        c.apply_env(|k| (k == "ENTREPOT_HEADER_READ_TIMEOUT_SECS").then(|| "0".to_owned()))
            .unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("header_read_timeout_secs"));
        let file: Config = toml::from_str(
            "idle_timeout_secs = 5\nmax_connections = 10\nverify_blobs_on_start = \"never\"",
        )
        .unwrap();
        assert_eq!(file.verify_blobs_on_start, VerifyOnStart::Never);
        assert_eq!(file.max_connections, 10);
        let bad: Result<Config, _> = toml::from_str("listne = \"x\"");
        assert!(bad.unwrap_err().to_string().contains("listne"));
    }

    #[test]
    fn the_read_cache_budget_comes_from_file_environment_or_flag() {
        assert_eq!(
            Config::default().read_cache_bytes,
            entrepot_storage::DEFAULT_READ_CACHE_BYTES
        );
        let file: Config = toml::from_str("read_cache_bytes = 1048576").unwrap();
        assert_eq!(file.read_cache_bytes, 1_048_576);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entrepot.toml");
        std::fs::write(&path, "read_cache_bytes = 0\n").unwrap();
        let overrides = Overrides {
            file: Some(path.clone()),
            ..Overrides::default()
        };
        // 0 is valid: no cache at all.
        assert_eq!(Config::load(&overrides).unwrap().read_cache_bytes, 0);
        let flag = Overrides {
            file: Some(path),
            read_cache_bytes: Some(4096),
            ..Overrides::default()
        };
        assert_eq!(Config::load(&flag).unwrap().read_cache_bytes, 4096);

        let mut c = Config::default();
        c.apply_env(|k| (k == "ENTREPOT_READ_CACHE_BYTES").then(|| "1024".to_owned()))
            .unwrap();
        assert_eq!(c.read_cache_bytes, 1024);
        for bad in ["1MiB", "-1", ""] {
            let err = c
                .apply_env(|k| (k == "ENTREPOT_READ_CACHE_BYTES").then(|| bad.to_owned()))
                .unwrap_err();
            assert!(err.to_string().contains("read_cache_bytes"), "{err}");
        }
        let bad: Result<Config, _> = toml::from_str("read_cache_bytes = -1");
        assert!(bad.unwrap_err().to_string().contains("read_cache_bytes"));
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges() {
        let mut c = Config::default();
        c.apply_env(|k| (k == "ENTREPOT_TRUSTED_PROXIES").then(|| "10.0.0.0/8, ::1".to_owned()))
            .unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        assert!(c.validate().is_ok());
        c.trusted_proxies = vec!["proxy.example".into()];
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("trusted_proxies"));
    }

    /// The sample configuration shipped in `packaging/`.
    const SAMPLE: &str = include_str!("../../../packaging/entrepot.toml");

    #[test]
    fn the_sample_configuration_documents_every_key_with_its_default() {
        // As shipped (optional keys commented out): exactly the defaults.
        let sample: Config = toml::from_str(SAMPLE).unwrap();
        assert_eq!(sample.to_toml(), Config::default().to_toml());
        // With every commented key turned on, it still parses (no stale
        // key) and sets every key there is.
        let uncommented: String = SAMPLE
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.split_once(" = ").is_some_and(|(k, _)| is_key(k)) => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let full: Config = toml::from_str(&uncommented).unwrap();
        full.validate().unwrap();
        let printed = full.to_toml();
        for line in printed.lines() {
            let key = line.split_once(" = ").unwrap().0;
            assert!(
                uncommented
                    .lines()
                    .any(|l| l.starts_with(&format!("{key} = "))),
                "packaging/entrepot.toml does not document {key}"
            );
        }
        let keys = printed.lines().count();
        let documented = uncommented
            .lines()
            .filter(|l| {
                l.split_once(" = ")
                    .is_some_and(|(k, _)| is_key(k) && !blob_store::UNPRINTED_KEYS.contains(&k))
            })
            .count();
        assert_eq!(keys, documented, "{printed}");
    }

    fn is_key(k: &str) -> bool {
        !k.is_empty() && k.bytes().all(|c| c.is_ascii_lowercase() || c == b'_')
    }

    #[test]
    fn the_printed_configuration_reads_back_the_same() {
        let mut c = Config::default();
        c.apply_env(|k| match k {
            "ENTREPOT_TLS_CERT" => Some("/etc/entrepot/cert.pem".into()),
            "ENTREPOT_TLS_KEY" => Some("/etc/entrepot/key.pem".into()),
            "ENTREPOT_TRUSTED_PROXIES" => Some("10.0.0.0/8".into()),
            _ => None,
        })
        .unwrap();
        c.validate().unwrap();
        let printed = c.to_toml();
        let back: Config = toml::from_str(&printed).unwrap();
        assert_eq!(back.to_toml(), printed);
        assert_eq!(
            back.tls_files().unwrap().key,
            PathBuf::from("/etc/entrepot/key.pem")
        );
    }

    #[test]
    fn tls_needs_both_files() {
        let mut c = Config::default();
        c.apply_env(|k| (k == "ENTREPOT_TLS_CERT").then(|| "cert.pem".to_owned()))
            .unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("tls_key"));
        let c = Config {
            tls_client_ca: Some("ca.pem".into()),
            ..Config::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("tls_client_ca"));
    }
}
