//! The secret store: secrets, their sealed versions and the access audit log.
//!
//! This layer never sees plaintext: a version arrives sealed (ciphertext, nonce,
//! wrapped data key, master key id) and leaves the same way. Destroying a version
//! or deleting a secret must leave no trace of the sealed bytes, neither through
//! the store nor in the files behind it.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use entrepot_domain::{ProjectId, SecretId, SecretName};

use crate::metadata::StoreError;

/// A secret row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// Project id.
    pub project: String,
    /// Secret id.
    pub id: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// RFC 3339 creation time.
    pub create_time: String,
    /// Everything else the secret carries (replication, annotations, expiry,
    /// rotation), a JSON document the secret manager owns; `{}` when empty.
    pub settings: String,
    /// Changes with every update.
    pub etag: String,
}

/// The encrypted form of a version's payload.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedPayload {
    /// AES-256-GCM ciphertext with its tag.
    pub ciphertext: Vec<u8>,
    /// The 96-bit nonce used for the payload.
    pub nonce: Vec<u8>,
    /// The data key, wrapped by the master key `key_id`.
    pub wrapped_key: Vec<u8>,
    /// Which master key wrapped the data key.
    pub key_id: String,
}

impl fmt::Debug for SealedPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SealedPayload({} bytes, key_id {})",
            self.ciphertext.len(),
            self.key_id
        )
    }
}

/// A version row, without its sealed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// Project id.
    pub project: String,
    /// Secret id.
    pub secret: String,
    /// Version number, from 1.
    pub number: i64,
    /// `ENABLED`, `DISABLED` or `DESTROYED`.
    pub state: String,
    /// RFC 3339 creation time.
    pub create_time: String,
    /// RFC 3339 destruction time.
    pub destroy_time: Option<String>,
}

/// A wrapped data key, as the master-key rotation reads and rewrites it.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKeyRecord {
    /// Project id.
    pub project: String,
    /// Secret id.
    pub secret: String,
    /// Version number.
    pub number: i64,
    /// Which master key wrapped `wrapped_key`.
    pub key_id: String,
    /// The wrapped data key.
    pub wrapped_key: Vec<u8>,
}

impl fmt::Debug for WrappedKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WrappedKeyRecord(projects/{}/secrets/{}/versions/{}, key_id {})",
            self.project, self.secret, self.number, self.key_id
        )
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// RFC 3339 time of the attempt.
    pub time: String,
    /// Project of the resource.
    pub project: String,
    /// Who asked (`user:...`, `serviceAccount:...`, `allUsers`).
    pub principal: String,
    /// What was asked (`secretmanager.versions.access`).
    pub action: String,
    /// The secret's resource name.
    pub resource: String,
    /// The version: the resolved number, or as requested when it did not resolve.
    pub version: Option<String>,
    /// Whether the payload was released.
    pub allowed: bool,
    /// Why it was denied, or on whose behalf it was allowed.
    pub reason: String,
}

/// An audit entry with its place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Sequence number: later entries have larger ones. The keyset cursor of
    /// a page of the log.
    pub seq: i64,
    /// The entry.
    pub record: AuditRecord,
}

/// Storage of the secret manager. Every method is one atomic step.
#[async_trait]
pub trait SecretStore: Send + Sync + 'static {
    /// Create a secret; `AlreadyExists` if it does.
    async fn create_secret(&self, secret: &SecretRecord) -> Result<(), StoreError>;
    /// Look a secret up.
    async fn get_secret(&self, name: &SecretName) -> Result<Option<SecretRecord>, StoreError>;
    /// Secrets of a project by id, those after `after` (all with `None`), at
    /// most `limit`: one keyset page, read along the primary key.
    async fn list_secrets(
        &self,
        project: &ProjectId,
        after: Option<&SecretId>,
        limit: u32,
    ) -> Result<Vec<SecretRecord>, StoreError>;
    /// Replace a secret's labels; false if it does not exist.
    async fn update_secret_labels(
        &self,
        name: &SecretName,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError>;
    /// Replace a secret's labels, settings and etag if its etag is still
    /// `expected_etag`; false if it does not exist or its etag changed.
    async fn update_secret(
        &self,
        secret: &SecretRecord,
        expected_etag: &str,
    ) -> Result<bool, StoreError>;
    /// Delete a secret with all its versions (sealed payloads included) and its
    /// IAM policy; false if absent.
    async fn delete_secret(&self, name: &SecretName) -> Result<bool, StoreError>;
    /// [`SecretStore::delete_secret`] only while the secret's etag is `etag`;
    /// false if it is absent or its etag changed.
    async fn delete_secret_if_etag(
        &self,
        name: &SecretName,
        etag: &str,
    ) -> Result<bool, StoreError>;

    /// The number the next version of the secret would get.
    async fn next_version_number(&self, name: &SecretName) -> Result<i64, StoreError>;
    /// Insert a version in state ENABLED; `AlreadyExists` if the number is taken
    /// (another version was added concurrently: take the next number and retry).
    async fn insert_version(
        &self,
        version: &VersionRecord,
        sealed: &SealedPayload,
    ) -> Result<(), StoreError>;
    /// A version's metadata.
    async fn get_version(
        &self,
        name: &SecretName,
        number: i64,
    ) -> Result<Option<VersionRecord>, StoreError>;
    /// The newest version in state ENABLED.
    async fn latest_enabled_version(
        &self,
        name: &SecretName,
    ) -> Result<Option<VersionRecord>, StoreError>;
    /// A version's sealed payload; `None` when destroyed or absent.
    async fn sealed_payload(
        &self,
        name: &SecretName,
        number: i64,
    ) -> Result<Option<SealedPayload>, StoreError>;
    /// Versions of a secret, newest first, those numbered below `before` (all
    /// with `None`), at most `limit`: one keyset page, read along the primary
    /// key.
    async fn list_versions(
        &self,
        name: &SecretName,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<VersionRecord>, StoreError>;
    /// Set ENABLED or DISABLED on a version that is not destroyed; false if there
    /// is no such version or it is destroyed.
    async fn set_version_state(
        &self,
        name: &SecretName,
        number: i64,
        state: &str,
    ) -> Result<bool, StoreError>;
    /// Mark a version DESTROYED and wipe its sealed payload; false if absent.
    async fn destroy_version(
        &self,
        name: &SecretName,
        number: i64,
        time: &str,
    ) -> Result<bool, StoreError>;

    /// Every wrapped data key, for master-key rotation.
    async fn wrapped_keys(&self) -> Result<Vec<WrappedKeyRecord>, StoreError>;
    /// Replace wrapped data keys in one transaction. Each row is replaced only if
    /// it still holds the key it was read with (`old`); returns how many were.
    async fn replace_wrapped_keys(
        &self,
        replacements: &[(WrappedKeyRecord, WrappedKeyRecord)],
    ) -> Result<u64, StoreError>;

    /// Append an entry to the audit log.
    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError>;
    /// Audit entries of a project, newest first, those older than the entry
    /// numbered `before` (all with `None`), at most `limit`; with `resource`,
    /// only that resource and what is under it. One keyset page.
    async fn list_audit(
        &self,
        project: &str,
        resource: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    /// Remove the oldest audit entries beyond the newest `keep`; how many went.
    async fn prune_audit(&self, keep: u64) -> Result<u64, StoreError>;
}
