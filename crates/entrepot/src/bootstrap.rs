//! First-start IAM state in the data directory: the registry token signing key
//! and the bootstrap admin's token, both files readable by the owner only.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use entrepot_services::authn::{new_signing_key, SecretString};
use entrepot_services::secrets::StoredSecrets;
use entrepot_services::IamService;
use entrepot_storage::{IamStore, MetadataStore, SecretStore};

/// File holding the HMAC key that signs registry tokens.
pub const SIGNING_KEY_FILE: &str = "registry-token-key";
/// File the bootstrap admin's token is written to on first start.
pub const BOOTSTRAP_TOKEN_FILE: &str = "bootstrap-admin-token";

/// Write `bytes` to a new file with mode 0600; fails if it exists.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The signing key, created on first start.
fn signing_key(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join(SIGNING_KEY_FILE);
    if !path.exists() {
        let key = hex_encode(&new_signing_key());
        match write_private(&path, key.as_bytes()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let key = hex_decode(text.trim())
        .filter(|k| k.len() >= 32)
        .with_context(|| {
            format!(
                "{} is damaged: expected at least 64 hex characters",
                path.display()
            )
        })?;
    Ok(key)
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The bootstrap admin's token on first start, with where it was written.
pub struct BootstrapToken {
    /// The token (printed once).
    pub token: SecretString,
    /// The 0600 file holding it.
    pub path: PathBuf,
}

/// Build the IAM service over the metadata database and, on first start,
/// create the admin and write its token to the data directory.
pub async fn iam<S: IamStore + SecretStore>(
    store: &Arc<S>,
    meta: Arc<dyn MetadataStore>,
    data_dir: &Path,
) -> anyhow::Result<(Arc<IamService>, Option<BootstrapToken>)> {
    let key = signing_key(data_dir)?;
    let iam = Arc::new(
        IamService::new(store.clone(), meta, &key)
            .with_secret_directory(Arc::new(StoredSecrets(store.clone()))),
    );
    let token = iam
        .bootstrap()
        .await
        .context("cannot create the bootstrap admin")?;
    let path = data_dir.join(BOOTSTRAP_TOKEN_FILE);
    let token = match token {
        Some(token) => {
            // A leftover file from an earlier database would hold a dead token.
            let _ = std::fs::remove_file(&path);
            write_private(&path, format!("{}\n", token.expose()).as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Some(BootstrapToken {
                token,
                path: path.clone(),
            })
        }
        None => None,
    };
    retire_token_file(&iam, &path).await?;
    Ok((iam, token))
}

/// The bootstrap token on disk is a standing owner credential: delete the file
/// as soon as the token has served its purpose (its first successful use, or
/// another owner of the organisation), now if that happened already.
async fn retire_token_file(iam: &Arc<IamService>, path: &Path) -> anyhow::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let token = SecretString::new(text.trim().to_owned());
    if iam.adopt_bootstrap_token(&token).await? {
        remove_token_file(path);
        return Ok(());
    }
    // Not on stdout: its first line is the listening line scripts wait for.
    tracing::info!(
        path = %path.display(),
        "the bootstrap admin token file is deleted once the token has been used or another owner exists"
    );
    let (iam, path) = (iam.clone(), path.to_owned());
    tokio::spawn(async move {
        iam.bootstrap_token_retired().await;
        remove_token_file(&path);
    });
    Ok(())
}

fn remove_token_file(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!(
            path = %path.display(),
            "deleted the bootstrap admin token file: the token was used or another owner exists (the token itself stays valid until revoked)"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "could not delete the bootstrap admin token file")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_a_round_trip_and_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = signing_key(dir.path()).unwrap();
        let b = signing_key(dir.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(SIGNING_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
