//! The `blob_store` setting: the local directory (the default) or an
//! S3-compatible bucket, and the bucket's access key.

use entrepot_storage::{BlobError, ObjectBlobStore, S3Credentials, S3Location};
use serde::Deserialize;

use super::{Config, ConfigError};

/// A secret read from the config file: never printed, never serialized.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretSetting(String);

impl std::fmt::Debug for SecretSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

const KEY: &str = "blob_store";

/// The keys `--print-config` never shows: the bucket's credentials.
#[cfg(test)]
pub(super) const UNPRINTED_KEYS: [&str; 2] =
    ["blob_store_access_key_id", "blob_store_secret_access_key"];
const ENV: &str = "ENTREPOT_BLOB_STORE";

impl Config {
    /// The bucket `blob_store` names; `None` for the local directory
    /// `<data_dir>/blobs`. Fails, naming the key, on anything but an
    /// `s3://BUCKET?endpoint=URL&region=NAME` location.
    pub fn blob_store_location(&self) -> Result<Option<S3Location>, ConfigError> {
        let Some(text) = self.blob_store.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        text.parse()
            .map(Some)
            .map_err(|e: entrepot_storage::S3LocationError| ConfigError::Value {
                key: KEY,
                env: ENV,
                message: e.to_string(),
            })
    }

    /// The access key from the config file, when both of its halves are
    /// there; `None` leaves the `AWS_*` environment to the S3 client.
    pub fn blob_store_credentials(&self) -> Result<Option<S3Credentials>, ConfigError> {
        match (
            &self.blob_store_access_key_id,
            &self.blob_store_secret_access_key,
        ) {
            (Some(id), Some(secret)) => Ok(Some(S3Credentials {
                access_key_id: id.clone(),
                secret_access_key: secret.0.clone(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::Value {
                key: "blob_store_secret_access_key",
                env: "AWS_SECRET_ACCESS_KEY",
                message: "blob_store_access_key_id is set: its secret is needed too".into(),
            }),
            (None, Some(_)) => Err(ConfigError::Value {
                key: "blob_store_access_key_id",
                env: "AWS_ACCESS_KEY_ID",
                message: "blob_store_secret_access_key is set: its key id is needed too".into(),
            }),
        }
    }

    pub(super) fn validate_blob_store(&self) -> Result<(), ConfigError> {
        self.blob_store_location()?;
        self.blob_store_credentials()?;
        Ok(())
    }

    /// Open the blob store the configuration names.
    pub fn open_blob_store(&self) -> Result<ObjectBlobStore, BlobStoreOpenError> {
        match self.blob_store_location()? {
            None => Ok(ObjectBlobStore::local(self.data_dir.join("blobs"))?),
            Some(location) => Ok(ObjectBlobStore::s3(
                &location,
                self.blob_store_credentials()?.as_ref(),
            )?),
        }
    }
}

/// Why the configured blob store cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum BlobStoreOpenError {
    /// The setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The directory or the client cannot be set up.
    #[error(transparent)]
    Blob(#[from] BlobError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_key_is_never_printed() {
        let config: Config = toml::from_str(
            "blob_store = \"s3://b?endpoint=http://127.0.0.1:3900&region=garage\"\nblob_store_access_key_id = \"GK1\"\nblob_store_secret_access_key = \"hunter2-secret\"\n",
        )
        .unwrap();
        config.validate_blob_store().unwrap();
        assert!(!config.to_toml().contains("hunter2"));
        assert!(!config.to_toml().contains("GK1"));
        assert!(config.to_toml().contains("s3://b?endpoint="));
        assert!(!format!("{config:?}").contains("hunter2"));
        let creds = config.blob_store_credentials().unwrap().unwrap();
        assert_eq!(creds.secret_access_key, "hunter2-secret");
    }

    #[test]
    fn a_bad_location_names_the_key() {
        let config: Config = toml::from_str("blob_store = \"/srv/blobs\"\n").unwrap();
        let e = config.validate_blob_store().unwrap_err().to_string();
        assert!(
            e.contains("blob_store") && e.contains("ENTREPOT_BLOB_STORE"),
            "{e}"
        );
        let half: Config = toml::from_str("blob_store_access_key_id = \"GK1\"\n").unwrap();
        assert!(half.validate_blob_store().is_err());
    }
}
