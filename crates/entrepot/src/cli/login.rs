//! `entrepot login` and the CLI's own configuration file
//! (`~/.config/entrepot/config.toml`, or `$ENTREPOT_CONFIG`).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::{AdminClient, ClientError};

/// The server used when none is configured.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// What `entrepot login` remembers.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The entrepot server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Access token for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Where the CLI configuration lives.
pub fn config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ENTREPOT_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("entrepot").join("config.toml"))
}

/// The configuration file's contents; empty if there is none or it cannot be read.
pub fn load() -> ClientConfig {
    config_path()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| toml::from_str(&text).ok())
        .unwrap_or_default()
}

/// Server and token to use: flags and environment first, then the file.
pub fn resolve(server: Option<String>, token: Option<String>) -> (String, Option<String>) {
    let file = load();
    let server = server
        .or(file.server)
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    (server, token.or(file.token))
}

/// Read a secret from a file (`-`: standard input), without the trailing newline.
pub fn read_secret(path: &Path) -> Result<String, String> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
    } else {
        text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    }
    let text = text.trim_end_matches(['\r', '\n']).to_owned();
    if text.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(text)
}

fn write_config(path: &Path, config: &ClientConfig) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let text = toml::to_string(config).map_err(|e| e.to_string())?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write as _;
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Check the token against the server, then remember server and token.
pub async fn login(
    server: &str,
    token: Option<String>,
    token_file: Option<&Path>,
) -> Result<(), ClientError> {
    let bad = |message: String| ClientError::Api {
        status: StatusCode::BAD_REQUEST,
        message,
    };
    let token = match token_file {
        Some(f) => read_secret(f).map_err(bad)?,
        None => token.ok_or_else(|| {
            bad(
                "give the token with --token-file FILE, --token-file - (standard input) or --token"
                    .into(),
            )
        })?,
    };
    let client = AdminClient::new(server, Some(token.clone()));
    // One token of the caller's own is enough to name the caller.
    let tokens = client.call(Method::GET, "tokens?pageSize=1", None).await?;
    let principal = tokens["tokens"]
        .as_array()
        .and_then(|t| t.first())
        .and_then(|t| t["principal"].as_str())
        .unwrap_or("your account")
        .to_owned();
    let path = config_path()
        .ok_or_else(|| bad("cannot find a configuration directory: set ENTREPOT_CONFIG".into()))?;
    write_config(
        &path,
        &ClientConfig {
            server: Some(server.to_owned()),
            token: Some(token),
        },
    )
    .map_err(bad)?;
    eprintln!(
        "Logged in to {server} as {principal}; saved in {}.",
        path.display()
    );
    Ok(())
}
