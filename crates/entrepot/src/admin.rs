//! `entrepot admin ...`: maintenance run against a data directory, not over the API.

use anyhow::Context as _;
use entrepot_services::secrets::{rewrap_data_keys, FileKeyRing, KeyRing as _};
use entrepot_storage::SqliteMetadataStore;

use crate::config::Config;

/// Add a new primary master key and rewrap every data key with it.
///
/// Meant to run while the server is stopped. Retired keys stay in the key file,
/// so a data key that was not rewrapped (a crash midway, a server that added a
/// version meanwhile) remains readable; running the command again finishes the
/// job. A server left running reloads the key file when it meets the new key id.
pub async fn rotate_master_key(config: &Config) -> anyhow::Result<()> {
    let db = config.data_dir.join("metadata.db");
    anyhow::ensure!(
        db.exists(),
        "no entrepot database at {}; pass the server's --data-dir",
        db.display()
    );
    let key_path = config.master_key_path();
    let keys = FileKeyRing::open(&key_path)
        .with_context(|| format!("cannot read the master key file {}", key_path.display()))?;
    let store = SqliteMetadataStore::open(&db)
        .await
        .context("cannot open the metadata database")?;
    let old = keys.primary_id();
    let new = keys.rotate().context("cannot write the new master key")?;
    let report = rewrap_data_keys(&store, &keys).await.context(
        "the new master key was saved, but rewrapping data keys failed; run the command again",
    )?;
    eprintln!(
        "Rotated the master key in {}: {old} -> {new}; rewrapped {} data keys. Retired keys are kept in the file.",
        key_path.display(),
        report.rewrapped
    );
    Ok(())
}
