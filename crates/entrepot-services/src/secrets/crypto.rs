//! Envelope encryption of secret payloads.
//!
//! Each version gets a fresh 256-bit data key. The payload is sealed with
//! AES-256-GCM under that key, with the version's full resource name as
//! associated data, so a sealed payload moved to another row does not open. The
//! data key is then wrapped (AES-256-GCM again, same associated data) by the
//! primary master key of a [`KeyRing`] and stored with that key's id. Rotating the
//! master key only rewraps data keys; payloads are never re-encrypted.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use entrepot_domain::SecretPayload;
use entrepot_storage::SealedPayload;
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

/// Length of every key, in bytes (AES-256).
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// Why sealing, opening or key handling failed. Never carries key or payload bytes.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The master key that wrapped a data key is not in the key ring.
    #[error("master key {0:?} is not in the key ring; was the master key file replaced?")]
    UnknownKey(String),
    /// Authentication failed: wrong key, damaged bytes, or bytes moved between versions.
    #[error("decryption failed for {0}: the stored data or the master key does not match")]
    Decrypt(String),
    /// Encryption failed (not expected with valid keys).
    #[error("encryption failed")]
    Encrypt,
    /// The key file could not be read or written.
    #[error("master key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file is not in the expected format.
    #[error("master key file {path} is damaged at line {line}: {message}")]
    BadKeyFile {
        /// The key file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// A 256-bit AES key; zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct AesKey(Zeroizing<[u8; KEY_LEN]>);

impl AesKey {
    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(key.as_mut());
        Self(key)
    }

    fn from_slice(bytes: &[u8]) -> Option<Self> {
        let array: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(array)))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.as_ref()))
    }
}

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AesKey(<redacted>)")
    }
}

/// A master key with its id.
#[derive(Clone, Debug)]
pub struct MasterKey {
    /// The id stored next to every data key it wraps.
    pub id: String,
    key: AesKey,
}

impl MasterKey {
    /// A master key from an id and key material.
    pub fn new(id: impl Into<String>, key: AesKey) -> Self {
        Self { id: id.into(), key }
    }
}

/// A data key wrapped by a master key.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedDataKey {
    /// Which master key wrapped it.
    pub key_id: String,
    /// Nonce followed by the AES-GCM ciphertext of the data key.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for WrappedDataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedDataKey(key_id {})", self.key_id)
    }
}

/// AES-256-GCM with a random nonce; output is `nonce || ciphertext`.
fn encrypt(key: &AesKey, plaintext: &[u8], aad: &[u8]) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let ciphertext = key
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Encrypt)?;
    Ok((nonce.to_vec(), ciphertext))
}

fn decrypt(
    key: &AesKey,
    nonce: &[u8],
    ciphertext: &[u8],
    aad: &[u8],
    what: &str,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if nonce.len() != NONCE_LEN {
        return Err(CryptoError::Decrypt(what.to_owned()));
    }
    key.cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Decrypt(what.to_owned()))
}

/// The master keys: one primary that wraps new data keys, and retired ones that
/// still unwrap the data keys they wrapped.
pub trait KeyRing: Send + Sync + 'static {
    /// Wrap a data key with the primary master key; `aad` binds it to its version.
    fn wrap(&self, data_key: &AesKey, aad: &[u8]) -> Result<WrappedDataKey, CryptoError>;
    /// Unwrap a data key with the master key named in `wrapped`.
    fn unwrap(&self, wrapped: &WrappedDataKey, aad: &[u8]) -> Result<AesKey, CryptoError>;
    /// The id of the primary master key.
    fn primary_id(&self) -> String;
}

/// A key ring held in memory: the last key is the primary.
#[derive(Clone, Debug)]
pub struct MemoryKeyRing {
    keys: Vec<MasterKey>,
}

impl MemoryKeyRing {
    /// A ring of one fresh random key, for tests.
    pub fn generate() -> Self {
        Self {
            keys: vec![MasterKey::new("mk-1", AesKey::generate())],
        }
    }

    /// A ring from keys, oldest first; the last one becomes the primary.
    /// `None` if `keys` is empty.
    pub fn from_keys(keys: Vec<MasterKey>) -> Option<Self> {
        (!keys.is_empty()).then_some(Self { keys })
    }

    /// Add a fresh key and make it the primary; returns its id.
    pub fn rotate(&mut self) -> String {
        let id = format!("mk-{}", self.keys.len() + 1);
        self.keys
            .push(MasterKey::new(id.clone(), AesKey::generate()));
        id
    }

    fn primary(&self) -> &MasterKey {
        // `from_keys` and `generate` never build an empty ring.
        &self.keys[self.keys.len() - 1]
    }

    fn find(&self, id: &str) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.id == id)
    }
}

impl KeyRing for MemoryKeyRing {
    fn wrap(&self, data_key: &AesKey, aad: &[u8]) -> Result<WrappedDataKey, CryptoError> {
        let primary = self.primary();
        let (mut bytes, ciphertext) = encrypt(&primary.key, data_key.0.as_ref(), aad)?;
        bytes.extend_from_slice(&ciphertext);
        Ok(WrappedDataKey {
            key_id: primary.id.clone(),
            bytes,
        })
    }

    fn unwrap(&self, wrapped: &WrappedDataKey, aad: &[u8]) -> Result<AesKey, CryptoError> {
        let master = self
            .find(&wrapped.key_id)
            .ok_or_else(|| CryptoError::UnknownKey(wrapped.key_id.clone()))?;
        let what = "a wrapped data key";
        if wrapped.bytes.len() < NONCE_LEN {
            return Err(CryptoError::Decrypt(what.to_owned()));
        }
        let (nonce, ciphertext) = wrapped.bytes.split_at(NONCE_LEN);
        let plain = decrypt(&master.key, nonce, ciphertext, aad, what)?;
        AesKey::from_slice(&plain).ok_or_else(|| CryptoError::Decrypt(what.to_owned()))
    }

    fn primary_id(&self) -> String {
        self.primary().id.clone()
    }
}

/// The key ring in a file (`<data-dir>/master.key` by default, mode 0600).
///
/// One key per line, `ID BASE64`, oldest first; the last line is the primary. A
/// line holding only the base64 key is accepted too (its id is `mk-N`, N being
/// its position), so a key made with `openssl rand -base64 32` can be mounted.
/// Retired keys stay in the file so that data keys they wrapped remain readable.
/// When asked for a key id it does not hold, the ring reads the file again, so
/// a server picks up a rotation done next to it without losing access.
#[derive(Debug)]
pub struct FileKeyRing {
    path: PathBuf,
    ring: RwLock<MemoryKeyRing>,
}

const FILE_HEADER: &str = "# entrepot master keys: one per line, `ID BASE64`, oldest first; the last line wraps new data keys.\n# Keep this file secret and back it up: without it no secret can be read.\n";

impl FileKeyRing {
    /// Read the key file, creating it with one fresh key (mode 0600) if it does not exist.
    pub fn open_or_create(path: &Path) -> Result<Self, CryptoError> {
        let ring = match read_key_file(path) {
            Ok(ring) => ring,
            Err(CryptoError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                let ring = MemoryKeyRing::generate();
                write_key_file(path, &ring, true)?;
                tracing::info!(path = %path.display(), "created a new master key file");
                ring
            }
            Err(e) => return Err(e),
        };
        warn_if_readable_by_others(path);
        Ok(Self {
            path: path.to_owned(),
            ring: RwLock::new(ring),
        })
    }

    /// Read an existing key file; fails if it does not exist.
    pub fn open(path: &Path) -> Result<Self, CryptoError> {
        let ring = read_key_file(path)?;
        Ok(Self {
            path: path.to_owned(),
            ring: RwLock::new(ring),
        })
    }

    /// Add a fresh master key as the new primary and save the file (old keys kept);
    /// returns the new key's id.
    pub fn rotate(&self) -> Result<String, CryptoError> {
        let mut ring = self.ring.write().unwrap_or_else(|e| e.into_inner());
        let mut next = ring.clone();
        let id = next.rotate();
        write_key_file(&self.path, &next, false)?;
        *ring = next;
        Ok(id)
    }

    /// Where the keys live.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reload(&self) -> Result<(), CryptoError> {
        let fresh = read_key_file(&self.path)?;
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }
}

impl KeyRing for FileKeyRing {
    fn wrap(&self, data_key: &AesKey, aad: &[u8]) -> Result<WrappedDataKey, CryptoError> {
        self.ring
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .wrap(data_key, aad)
    }

    fn unwrap(&self, wrapped: &WrappedDataKey, aad: &[u8]) -> Result<AesKey, CryptoError> {
        let first = self
            .ring
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap(wrapped, aad);
        match first {
            Err(CryptoError::UnknownKey(_)) => {
                self.reload()?;
                self.ring
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .unwrap(wrapped, aad)
            }
            other => other,
        }
    }

    fn primary_id(&self) -> String {
        self.ring
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .primary_id()
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CryptoError + '_ {
    move |source| CryptoError::Io {
        path: path.to_owned(),
        source,
    }
}

fn read_key_file(path: &Path) -> Result<MemoryKeyRing, CryptoError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io_error(path))?);
    let bad = |line: usize, message: &str| CryptoError::BadKeyFile {
        path: path.to_owned(),
        line,
        message: message.to_owned(),
    };
    let mut keys: Vec<MasterKey> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // A line without an id (`openssl rand -base64 32 > master.key`) gets the
        // id rotation would have given it.
        let fallback_id = format!("mk-{}", keys.len() + 1);
        let (id, encoded) = line.split_once(' ').unwrap_or((fallback_id.as_str(), line));
        if id.is_empty() || keys.iter().any(|k| k.id == id) {
            return Err(bad(i + 1, "key ids must be present and unique"));
        }
        let raw = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| bad(i + 1, "the key is not valid base64"))?,
        );
        let key = AesKey::from_slice(&raw).ok_or_else(|| bad(i + 1, "a key must be 32 bytes"))?;
        keys.push(MasterKey::new(id, key));
    }
    MemoryKeyRing::from_keys(keys).ok_or_else(|| bad(1, "the file holds no key"))
}

/// Write the whole ring to a temporary file (mode 0600), sync it, then rename it
/// over `path`, so a crash leaves either the old or the new file, never half.
fn write_key_file(path: &Path, ring: &MemoryKeyRing, create_new: bool) -> Result<(), CryptoError> {
    use std::io::Write as _;
    let mut text = Zeroizing::new(String::from(FILE_HEADER));
    for key in &ring.keys {
        text.push_str(&key.id);
        text.push(' ');
        text.push_str(&base64::engine::general_purpose::STANDARD.encode(key.key.0.as_ref()));
        text.push('\n');
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    }
    let tmp = path.with_extension("key.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io_error(&tmp))?;
    file.write_all(text.as_bytes()).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    drop(file);
    if create_new && path.exists() {
        // Someone created the file meanwhile: never overwrite a key file on creation.
        let _ = std::fs::remove_file(&tmp);
        return Err(CryptoError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the key file appeared while creating it",
            ),
        });
    }
    std::fs::rename(&tmp, path).map_err(io_error(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    "the master key file is readable by other users; restrict it with chmod 600"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Seal a payload for the version named `version_name`.
pub fn seal(
    keys: &dyn KeyRing,
    version_name: &str,
    payload: &SecretPayload,
) -> Result<SealedPayload, CryptoError> {
    let data_key = AesKey::generate();
    let aad = version_name.as_bytes();
    let (nonce, ciphertext) = encrypt(&data_key, payload.as_bytes(), aad)?;
    let wrapped = keys.wrap(&data_key, aad)?;
    Ok(SealedPayload {
        ciphertext,
        nonce,
        wrapped_key: wrapped.bytes,
        key_id: wrapped.key_id,
    })
}

/// Open the sealed payload of the version named `version_name`.
pub fn open(
    keys: &dyn KeyRing,
    version_name: &str,
    sealed: &SealedPayload,
) -> Result<SecretPayload, CryptoError> {
    let aad = version_name.as_bytes();
    let data_key = keys.unwrap(
        &WrappedDataKey {
            key_id: sealed.key_id.clone(),
            bytes: sealed.wrapped_key.clone(),
        },
        aad,
    )?;
    let mut plain = decrypt(
        &data_key,
        &sealed.nonce,
        &sealed.ciphertext,
        aad,
        version_name,
    )?;
    SecretPayload::new(std::mem::take(&mut *plain))
        .map_err(|_| CryptoError::Decrypt(version_name.to_owned()))
}

/// Unwrap a data key and wrap it again with the primary master key.
pub fn rewrap(
    keys: &dyn KeyRing,
    version_name: &str,
    wrapped: &WrappedDataKey,
) -> Result<WrappedDataKey, CryptoError> {
    let aad = version_name.as_bytes();
    let data_key = keys.unwrap(wrapped, aad)?;
    keys.wrap(&data_key, aad)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NAME: &str = "projects/demo/secrets/tok/versions/1";

    fn payload(s: &str) -> SecretPayload {
        SecretPayload::new(s.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn seals_and_opens_and_binds_to_the_version_name() {
        let ring = MemoryKeyRing::generate();
        let sealed = seal(&ring, NAME, &payload("s3cret-token")).unwrap();
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(
            open(&ring, NAME, &sealed).unwrap().as_bytes(),
            b"s3cret-token"
        );
        let moved = open(&ring, "projects/demo/secrets/tok/versions/2", &sealed).unwrap_err();
        assert!(matches!(moved, CryptoError::Decrypt(_)));
        let mut damaged = sealed.clone();
        damaged.ciphertext[0] ^= 1;
        assert!(open(&ring, NAME, &damaged).is_err());
        let other = MemoryKeyRing::generate();
        assert!(open(&other, NAME, &sealed).is_err());
    }

    #[test]
    fn every_version_gets_its_own_data_key_and_nonce() {
        let ring = MemoryKeyRing::generate();
        let a = seal(&ring, NAME, &payload("same")).unwrap();
        let b = seal(&ring, NAME, &payload("same")).unwrap();
        assert_ne!(a.wrapped_key, b.wrapped_key);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn rotation_keeps_old_data_keys_readable_and_rewraps_them() {
        let mut ring = MemoryKeyRing::generate();
        let sealed = seal(&ring, NAME, &payload("before")).unwrap();
        let new_id = ring.rotate();
        assert_eq!(ring.primary_id(), new_id);
        assert_eq!(open(&ring, NAME, &sealed).unwrap().as_bytes(), b"before");
        let old = WrappedDataKey {
            key_id: sealed.key_id.clone(),
            bytes: sealed.wrapped_key.clone(),
        };
        let new = rewrap(&ring, NAME, &old).unwrap();
        assert_eq!(new.key_id, new_id);
        let resealed = SealedPayload {
            wrapped_key: new.bytes,
            key_id: new.key_id,
            ..sealed
        };
        assert_eq!(open(&ring, NAME, &resealed).unwrap().as_bytes(), b"before");
    }

    #[test]
    fn key_file_is_created_private_and_rotation_keeps_retired_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let ring = FileKeyRing::open_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let sealed = seal(&ring, NAME, &payload("kept")).unwrap();
        // A second process rotates the file; this ring reloads on the unknown id.
        let other = FileKeyRing::open(&path).unwrap();
        let new_id = other.rotate().unwrap();
        let rewrapped = rewrap(
            &other,
            NAME,
            &WrappedDataKey {
                key_id: sealed.key_id.clone(),
                bytes: sealed.wrapped_key.clone(),
            },
        )
        .unwrap();
        let resealed = SealedPayload {
            wrapped_key: rewrapped.bytes,
            key_id: rewrapped.key_id,
            ..sealed.clone()
        };
        assert_eq!(open(&ring, NAME, &resealed).unwrap().as_bytes(), b"kept");
        assert_eq!(ring.primary_id(), new_id);
        let reopened = FileKeyRing::open_or_create(&path).unwrap();
        assert_eq!(open(&reopened, NAME, &sealed).unwrap().as_bytes(), b"kept");
    }

    #[test]
    fn damaged_key_files_are_refused_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, "mk-1 not-base64!\n").unwrap();
        let err = FileKeyRing::open(&path).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        std::fs::write(&path, "# only a comment\n").unwrap();
        assert!(FileKeyRing::open(&path).is_err());
        std::fs::write(&path, "mk-1 AAAA\n").unwrap();
        let err = FileKeyRing::open(&path).unwrap_err().to_string();
        assert!(err.contains("32 bytes"), "{err}");
    }

    #[test]
    fn a_bare_base64_key_is_accepted_and_rotation_adds_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mounted.key");
        let raw = base64::engine::general_purpose::STANDARD.encode([7u8; KEY_LEN]);
        std::fs::write(&path, format!("{raw}\n")).unwrap();
        let ring = FileKeyRing::open_or_create(&path).unwrap();
        assert_eq!(ring.primary_id(), "mk-1");
        let sealed = seal(&ring, NAME, &payload("x")).unwrap();
        assert_eq!(ring.rotate().unwrap(), "mk-2");
        let reread = FileKeyRing::open(&path).unwrap();
        assert_eq!(open(&reread, NAME, &sealed).unwrap().as_bytes(), b"x");
    }

    #[test]
    fn keys_never_print() {
        let ring = MemoryKeyRing::generate();
        let shown = format!("{ring:?}");
        assert!(shown.contains("redacted"), "{shown}");
        let raw = base64::engine::general_purpose::STANDARD.encode(ring.keys[0].key.0.as_ref());
        assert!(!shown.contains(&raw));
    }
}
