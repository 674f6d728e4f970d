//! Secrets: names (`projects/{p}/secrets/{s}`), version names
//! (`.../versions/{n|latest}`), version states, labels, and the payload type.
//!
//! [`SecretPayload`] holds the only plaintext in the system. It zeroizes its bytes
//! on drop, redacts itself in `Debug` and `Display`, and has no `Serialize`: the
//! one response that carries a payload (`versions/{v}:access`) builds its body
//! explicitly from [`SecretPayload::as_bytes`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use zeroize::Zeroizing;

use crate::name::{NameError, ProjectId};
use crate::secret_settings::{Replication, Rotation};

/// The largest payload a secret version may hold, in bytes (64 KiB).
pub const MAX_PAYLOAD_BYTES: usize = 65_536;
/// The most labels a secret may carry.
pub const MAX_LABELS: usize = 64;

/// Why a secret name, version name, label or payload was refused.
///
/// No variant ever carries payload bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretNameError {
    /// The project part is not a valid project id.
    #[error(transparent)]
    Project(#[from] NameError),
    /// A secret id that breaks the id rules.
    #[error("secret id {0:?} is invalid: use 1-255 letters, digits, '_' and '-'")]
    BadSecretId(String),
    /// A version that is neither a number from 1 nor `latest`.
    #[error("secret version {0:?} is invalid: use a version number from 1, or latest")]
    BadVersion(String),
    /// A string that is not `projects/{p}/secrets/{s}`.
    #[error("{0:?} is not a secret name of the form projects/PROJECT/secrets/SECRET")]
    BadSecretName(String),
    /// A string that is not `projects/{p}/secrets/{s}/versions/{v}`.
    #[error("{0:?} is not a secret version name of the form projects/PROJECT/secrets/SECRET/versions/VERSION")]
    BadVersionName(String),
    /// A label that breaks the label rules.
    #[error("label {0:?} is invalid: keys are 1-63 lower-case letters, digits, '_' and '-' starting with a letter; values are up to 63 of the same characters")]
    BadLabel(String),
    /// Too many labels.
    #[error("a secret carries at most {MAX_LABELS} labels, {0} were given")]
    TooManyLabels(usize),
    /// The payload is empty.
    #[error("the secret payload is empty; a payload holds 1 to {MAX_PAYLOAD_BYTES} bytes")]
    EmptyPayload,
    /// The payload is larger than [`MAX_PAYLOAD_BYTES`].
    #[error("the secret payload is {0} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes (64 KiB)")]
    PayloadTooLarge(usize),
    /// A replication policy, annotation, expiry or rotation setting that
    /// breaks its rules; the text says which and why.
    #[error("{0}")]
    BadSetting(String),
    /// The payload does not match the CRC32C the client sent with it.
    #[error("the payload does not match its dataCrc32c; it was damaged on the way or the checksum is wrong, and nothing was stored")]
    ChecksumMismatch,
}

/// A secret id inside a project: 1-255 of `[A-Za-z0-9_-]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SecretId(String);

impl SecretId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SecretId {
    type Err = SecretNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 255
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(SecretNameError::BadSecretId(s.to_owned()))
        }
    }
}

impl fmt::Display for SecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for SecretId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for SecretId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `projects/{project}/secrets/{secret}`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SecretName {
    /// The project.
    pub project: ProjectId,
    /// The secret id.
    pub secret: SecretId,
}

impl SecretName {
    /// A secret name from its parts.
    pub fn new(project: ProjectId, secret: SecretId) -> Self {
        Self { project, secret }
    }

    /// The name of one version of this secret.
    pub fn version(&self, version: VersionId) -> SecretVersionName {
        SecretVersionName {
            secret: self.clone(),
            version,
        }
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "projects/{}/secrets/{}", self.project, self.secret)
    }
}

impl FromStr for SecretName {
    type Err = SecretNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            ["projects", p, "secrets", id] => Ok(Self::new(p.parse()?, id.parse()?)),
            _ => Err(SecretNameError::BadSecretName(s.to_owned())),
        }
    }
}

/// Which version of a secret: a number from 1, or `latest` (the newest enabled).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum VersionId {
    /// The newest version in state ENABLED.
    Latest,
    /// A version number, from 1.
    Number(u64),
}

impl FromStr for VersionId {
    type Err = SecretNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(Self::Latest);
        }
        // Digits only: no sign, no leading zeros, no whitespace.
        let digits = !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) && !s.starts_with('0');
        match s.parse::<u64>() {
            Ok(n) if digits && n <= i64::MAX as u64 => Ok(Self::Number(n)),
            _ => Err(SecretNameError::BadVersion(s.to_owned())),
        }
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionId::Latest => f.write_str("latest"),
            VersionId::Number(n) => write!(f, "{n}"),
        }
    }
}

/// `projects/{project}/secrets/{secret}/versions/{n|latest}`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SecretVersionName {
    /// The secret.
    pub secret: SecretName,
    /// The version.
    pub version: VersionId,
}

impl fmt::Display for SecretVersionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/versions/{}", self.secret, self.version)
    }
}

impl FromStr for SecretVersionName {
    type Err = SecretNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            ["projects", p, "secrets", id, "versions", v] => Ok(Self {
                secret: SecretName::new(p.parse()?, id.parse()?),
                version: v.parse()?,
            }),
            _ => Err(SecretNameError::BadVersionName(s.to_owned())),
        }
    }
}

/// The life cycle of a secret version.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VersionState {
    /// The payload can be accessed.
    Enabled,
    /// The payload is kept but cannot be accessed until the version is enabled again.
    Disabled,
    /// The payload is gone for good.
    Destroyed,
}

impl VersionState {
    /// The state's canonical name, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Enabled => "ENABLED",
            VersionState::Disabled => "DISABLED",
            VersionState::Destroyed => "DESTROYED",
        }
    }
}

impl fmt::Display for VersionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VersionState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ENABLED" => Ok(Self::Enabled),
            "DISABLED" => Ok(Self::Disabled),
            "DESTROYED" => Ok(Self::Destroyed),
            other => Err(format!("unknown secret version state {other:?}")),
        }
    }
}

/// Labels of a secret: `key=value` pairs with lower-case keys, sorted by key.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize)]
#[serde(transparent)]
pub struct Labels(BTreeMap<String, String>);

fn valid_label_part(s: &str, is_key: bool) -> bool {
    let b = s.as_bytes();
    b.len() <= 63
        && (!is_key || b.first().is_some_and(u8::is_ascii_lowercase))
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

impl Labels {
    /// Validate a map of labels.
    pub fn new(map: BTreeMap<String, String>) -> Result<Self, SecretNameError> {
        if map.len() > MAX_LABELS {
            return Err(SecretNameError::TooManyLabels(map.len()));
        }
        for (k, v) in &map {
            if !valid_label_part(k, true) || !valid_label_part(v, false) {
                return Err(SecretNameError::BadLabel(format!("{k}={v}")));
            }
        }
        Ok(Self(map))
    }

    /// Parse the command-line form `k=v,k2=v2` (empty text: no labels).
    pub fn parse_list(s: &str) -> Result<Self, SecretNameError> {
        let mut map = BTreeMap::new();
        for pair in s.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| SecretNameError::BadLabel(pair.to_owned()))?;
            map.insert(k.to_owned(), v.to_owned());
        }
        Self::new(map)
    }

    /// The labels as a map.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

/// A secret resource as the admin API shows it, in the shape of
/// `google.cloud.secretmanager.v1.Secret`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// `projects/{p}/secrets/{s}`.
    pub name: String,
    /// The replication policy, as given at creation.
    pub replication: Replication,
    /// Labels.
    pub labels: Labels,
    /// Annotations (left out when there are none).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 creation time.
    pub create_time: String,
    /// Changes with every update; an update or delete may require it.
    pub etag: String,
    /// RFC 3339 time after which the secret is gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    /// The rotation schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
    /// True when `rotation.nextRotationTime` has passed and no version was
    /// added since (an entrepot field; left out otherwise).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rotation_due: bool,
}

/// A secret version's metadata as the admin API shows it (never its payload).
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretVersion {
    /// `projects/{p}/secrets/{s}/versions/{n}`.
    pub name: String,
    /// Its state.
    pub state: VersionState,
    /// RFC 3339 creation time.
    pub create_time: String,
    /// RFC 3339 time of destruction, once destroyed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destroy_time: Option<String>,
}

/// The plaintext of a secret version: 1 to [`MAX_PAYLOAD_BYTES`] bytes.
///
/// Zeroized on drop; `Debug` and `Display` print only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretPayload(Zeroizing<Vec<u8>>);

impl SecretPayload {
    /// Take ownership of bytes, refusing empty and oversized payloads.
    ///
    /// On refusal the bytes are zeroized before the error is returned.
    pub fn new(bytes: Vec<u8>) -> Result<Self, SecretNameError> {
        let bytes = Zeroizing::new(bytes);
        match bytes.len() {
            0 => Err(SecretNameError::EmptyPayload),
            n if n > MAX_PAYLOAD_BYTES => Err(SecretNameError::PayloadTooLarge(n)),
            _ => Ok(Self(bytes)),
        }
    }

    /// The plaintext bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a payload holds at least one byte.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretPayload(<redacted {} bytes>)", self.0.len())
    }
}

impl fmt::Display for SecretPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {} bytes>", self.0.len())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_secret_names() {
        let n: SecretName = "projects/demo/secrets/Docker_hub-token".parse().unwrap();
        assert_eq!(n.project.as_str(), "demo");
        assert_eq!(n.secret.as_str(), "Docker_hub-token");
        assert_eq!(n.to_string(), "projects/demo/secrets/Docker_hub-token");
        for bad in [
            "projects/demo/secrets/",
            "projects/demo/secrets/a.b",
            "projects/demo/secrets/a/b",
            "projects/Demo/secrets/a",
            "project/demo/secrets/a",
            "projects/demo/secrets/../x",
        ] {
            assert!(bad.parse::<SecretName>().is_err(), "{bad}");
        }
        assert!("a".repeat(255).parse::<SecretId>().is_ok());
        assert!("a".repeat(256).parse::<SecretId>().is_err());
    }

    #[test]
    fn parses_version_names() {
        let v: SecretVersionName = "projects/demo/secrets/tok/versions/latest".parse().unwrap();
        assert_eq!(v.version, VersionId::Latest);
        let v: SecretVersionName = "projects/demo/secrets/tok/versions/12".parse().unwrap();
        assert_eq!(v.version, VersionId::Number(12));
        assert_eq!(v.to_string(), "projects/demo/secrets/tok/versions/12");
        for bad in [
            "0",
            "-1",
            "+1",
            "01",
            "1.0",
            "",
            "LATEST",
            " 1",
            "99999999999999999999",
        ] {
            assert!(bad.parse::<VersionId>().is_err(), "{bad:?}");
        }
        assert!("projects/demo/secrets/tok/versions"
            .parse::<SecretVersionName>()
            .is_err());
    }

    /// Every string up to four characters over an alphabet of separators and
    /// id characters: parsers never panic, and what they accept prints back as
    /// the same text.
    #[test]
    fn parsers_accept_only_what_they_print_back() {
        let alphabet = ['a', 'Z', '0', '1', '-', '_', '.', '/', ':', '%', ' '];
        let mut words = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = words
                .iter()
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            words.extend(longer);
        }
        words.sort();
        words.dedup();
        for w in &words {
            if let Ok(id) = w.parse::<SecretId>() {
                assert_eq!(id.to_string(), *w);
            }
            if let Ok(v) = w.parse::<VersionId>() {
                assert_eq!(v.to_string(), *w);
            }
            let name = format!("projects/demo/secrets/{w}");
            if let Ok(n) = name.parse::<SecretName>() {
                assert_eq!(n.to_string(), name);
            }
            let version = format!("projects/demo/secrets/tok/versions/{w}");
            if let Ok(n) = version.parse::<SecretVersionName>() {
                assert_eq!(n.to_string(), version);
            }
            let _ = Labels::parse_list(w);
        }
    }

    #[test]
    fn version_states_round_trip() {
        for s in [
            VersionState::Enabled,
            VersionState::Disabled,
            VersionState::Destroyed,
        ] {
            assert_eq!(s.as_str().parse::<VersionState>().unwrap(), s);
        }
        assert_eq!(
            serde_json::to_string(&VersionState::Destroyed).unwrap(),
            "\"DESTROYED\""
        );
    }

    #[test]
    fn labels_are_validated() {
        let l = Labels::parse_list("env=prod,team=core-1").unwrap();
        assert_eq!(l.as_map().get("env").map(String::as_str), Some("prod"));
        assert!(Labels::parse_list("Env=prod").is_err());
        assert!(Labels::parse_list("env").is_err());
        assert!(Labels::parse_list("1env=x").is_err());
        assert!(Labels::parse_list("env=Prod").is_err());
        assert!(Labels::parse_list("").unwrap().as_map().is_empty());
        let many: BTreeMap<String, String> =
            (0..65).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(
            Labels::new(many).unwrap_err(),
            SecretNameError::TooManyLabels(65)
        );
    }

    #[test]
    fn payload_limits_name_the_limit() {
        assert_eq!(
            SecretPayload::new(vec![]).unwrap_err(),
            SecretNameError::EmptyPayload
        );
        assert!(SecretPayload::new(vec![1; MAX_PAYLOAD_BYTES]).is_ok());
        let err = SecretPayload::new(vec![1; MAX_PAYLOAD_BYTES + 1]).unwrap_err();
        assert!(err.to_string().contains("65536"), "{err}");
        assert!(err.to_string().contains("65537"), "{err}");
    }

    #[test]
    fn payload_never_prints_its_content() {
        let p = SecretPayload::new(b"hunter2-token".to_vec()).unwrap();
        let shown = format!("{p:?} {p} {:?}", Some(&p));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"));
        assert_eq!(p.as_bytes(), b"hunter2-token");
    }
}
