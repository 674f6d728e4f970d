//! Master-key rotation: rewrapping stored data keys.

use super::*;

/// What a master-key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrapReport {
    /// The primary master key after the rotation.
    pub key_id: String,
    /// Data keys rewrapped with it.
    pub rewrapped: u64,
}

/// Rewrap every stored data key with the key ring's primary master key.
///
/// Run after adding a new primary key (`FileKeyRing::rotate`). Payloads are not
/// touched; each wrapped key is replaced only if it did not change meanwhile, all
/// in one transaction. Keys already wrapped by the primary are left alone, so the
/// call can be repeated after an interruption.
pub async fn rewrap_data_keys(
    store: &dyn SecretStore,
    keys: &dyn KeyRing,
) -> Result<RewrapReport, SecretError> {
    let primary = keys.primary_id();
    let mut replacements: Vec<(WrappedKeyRecord, WrappedKeyRecord)> = Vec::new();
    for old in store.wrapped_keys().await? {
        if old.key_id == primary {
            continue;
        }
        let version_name = format!(
            "projects/{}/secrets/{}/versions/{}",
            old.project, old.secret, old.number
        );
        let new = crypto::rewrap(
            keys,
            &version_name,
            &crypto::WrappedDataKey {
                key_id: old.key_id.clone(),
                bytes: old.wrapped_key.clone(),
            },
        )?;
        let replacement = WrappedKeyRecord {
            key_id: new.key_id,
            wrapped_key: new.bytes,
            ..old.clone()
        };
        replacements.push((old, replacement));
    }
    let rewrapped = store.replace_wrapped_keys(&replacements).await?;
    Ok(RewrapReport {
        key_id: primary,
        rewrapped,
    })
}
