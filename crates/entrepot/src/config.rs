//! Server configuration: one typed struct, loaded once from an optional TOML
//! file, then `ENTREPOT_*` environment variables, then command-line flags, and
//! validated before anything starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where all state lives.
    pub data_dir: PathBuf,
    /// Seconds an idle upload session is kept before it is removed.
    pub upload_timeout_secs: u64,
    /// `text` or `json` log lines.
    pub log_format: String,
    /// Largest file accepted by a Python upload (twine), in bytes.
    pub python_max_upload_bytes: u64,
    /// The master key file of the secret manager (default `<data_dir>/master.key`).
    pub master_key_file: Option<PathBuf>,
    /// Most files an upstream Python project page may list; a larger page is
    /// refused with an error naming this limit.
    pub python_max_page_files: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("entrepot-data"),
            upload_timeout_secs: 3600,
            log_format: "text".into(),
            python_max_upload_bytes: 1024 * 1024 * 1024,
            master_key_file: None,
            python_max_page_files: entrepot_services::python::index::DEFAULT_MAX_PAGE_FILES,
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
        config.validate()?;
        Ok(config)
    }

    /// Where the secret manager's master keys live.
    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
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
        if let Some(v) = get("ENTREPOT_UPLOAD_TIMEOUT_SECS") {
            self.upload_timeout_secs = v.parse().map_err(|_| ConfigError::Value {
                key: "upload_timeout_secs",
                env: "ENTREPOT_UPLOAD_TIMEOUT_SECS",
                message: format!("{v:?} is not a whole number of seconds"),
            })?;
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
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
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
        if self.python_max_page_files == 0 {
            return Err(ConfigError::Value {
                key: "python_max_page_files",
                env: "ENTREPOT_PYTHON_MAX_PAGE_FILES",
                message: "must be at least 1 file".into(),
            });
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
        let bad: Result<Config, _> = toml::from_str("listne = \"x\"");
        assert!(bad.unwrap_err().to_string().contains("listne"));
    }
}
