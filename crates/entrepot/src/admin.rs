//! `entrepot admin ...`: maintenance run against a data directory, not over the API.

use anyhow::Context as _;
use entrepot_services::secrets::{rewrap_data_keys, FileKeyRing, KeyRing as _};
use entrepot_storage::{BlobStore as _, PostgresMetadataStore, SecretStore, SqliteMetadataStore};

use crate::config::Config;

/// Add a new primary master key and rewrap every data key with it.
///
/// Meant to run while the server is stopped. Retired keys stay in the key file,
/// so a data key that was not rewrapped (a crash midway, a server that added a
/// version meanwhile) remains readable; running the command again finishes the
/// job. A server left running reloads the key file when it meets the new key id.
pub async fn rotate_master_key(config: &Config) -> anyhow::Result<()> {
    let store: Box<dyn SecretStore> = match &config.database_url {
        Some(url) => Box::new(
            PostgresMetadataStore::connect(url.expose())
                .await
                .with_context(|| format!("cannot open the metadata database {url}"))?,
        ),
        None => {
            let db = config.data_dir.join("metadata.db");
            anyhow::ensure!(
                db.exists(),
                "no entrepot database at {}; pass the server's --data-dir",
                db.display()
            );
            Box::new(
                SqliteMetadataStore::open(&db)
                    .await
                    .context("cannot open the metadata database")?,
            )
        }
    };
    let key_path = config.master_key_path();
    let keys = FileKeyRing::open(&key_path)
        .with_context(|| format!("cannot read the master key file {}", key_path.display()))?;
    let old = keys.primary_id();
    let new = keys.rotate().context("cannot write the new master key")?;
    let report = rewrap_data_keys(store.as_ref(), &keys).await.context(
        "the new master key was saved, but rewrapping data keys failed; run the command again",
    )?;
    eprintln!(
        "Rotated the master key in {}: {old} -> {new}; rewrapped {} data keys. Retired keys are kept in the file.",
        key_path.display(),
        report.rewrapped
    );
    Ok(())
}

/// Rehash every stored blob and move those whose bytes do not match their
/// digest into `<data_dir>/blobs/quarantine/`; nothing is deleted. Returns
/// how many were quarantined. Safe while the server runs: a quarantined blob
/// is unknown to it, so clients push it again.
pub async fn verify_blobs(config: &Config) -> anyhow::Result<usize> {
    let dir = config.data_dir.join("blobs");
    anyhow::ensure!(
        config.blob_store.is_some() || dir.is_dir(),
        "no blob store at {}; pass the server's --data-dir",
        dir.display()
    );
    let store = config
        .open_blob_store()
        .context("cannot open the blob store")?;
    let report = store
        .verify_blobs()
        .await
        .context("blob verification failed")?;
    if report.quarantined.is_empty() {
        eprintln!(
            "Checked {} blobs: every one matches its digest.",
            report.checked
        );
    } else {
        let quarantine = report
            .quarantine_dir
            .as_deref()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        eprintln!(
            "Checked {} blobs: {} did not match their digest and were moved to {quarantine}:",
            report.checked,
            report.quarantined.len()
        );
        for digest in &report.quarantined {
            eprintln!("  {digest}");
        }
        eprintln!(
            "Push these blobs again; the quarantined files can be inspected or removed by hand."
        );
    }
    Ok(report.quarantined.len())
}
