//! What a secret carries besides its labels, in the JSON shape of Google's
//! `google.cloud.secretmanager.v1.Secret`: replication, annotations, an
//! expiry time and a rotation schedule.
//!
//! entrepot keeps one copy of each payload whatever the replication says; the
//! policy is validated, stored and reported back so that clients which send
//! it (Google's libraries always do) work unchanged. Times are RFC 3339 text
//! and durations Google's `"3600s"` form; their values are checked where the
//! clock lives (the services), their shapes here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::secret::SecretNameError;

/// The most bytes a secret's annotations may hold, keys and values together.
pub const MAX_ANNOTATION_BYTES: usize = 16 * 1024;

/// How a secret's versions are replicated: exactly one of the two fields.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Replication {
    /// Replicated wherever the service sees fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic: Option<AutomaticReplication>,
    /// Replicated to the locations the user chose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_managed: Option<UserManagedReplication>,
}

impl Default for Replication {
    fn default() -> Self {
        Self {
            automatic: Some(AutomaticReplication {}),
            user_managed: None,
        }
    }
}

/// `replication.automatic`. Customer-managed encryption keys are refused
/// (payloads are sealed with entrepot's own master key).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomaticReplication {}

/// `replication.userManaged`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserManagedReplication {
    /// At least one location.
    pub replicas: Vec<Replica>,
}

/// One location of a user-managed replication.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replica {
    /// A location name such as `us-east1`.
    pub location: String,
}

impl Replication {
    /// Check that exactly one kind is given and every location is named.
    pub fn validate(&self) -> Result<(), SecretNameError> {
        let bad = |why: &str| Err(SecretNameError::BadSetting(format!("replication: {why}")));
        match (&self.automatic, &self.user_managed) {
            (Some(_), None) => Ok(()),
            (None, Some(u)) if u.replicas.is_empty() => {
                bad("userManaged.replicas needs at least one replica")
            }
            (None, Some(u)) => {
                let named = u.replicas.iter().all(|r| {
                    !r.location.is_empty()
                        && r.location.len() <= 63
                        && r.location
                            .bytes()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                });
                if named {
                    Ok(())
                } else {
                    bad("every replica needs a location of lower-case letters, digits and '-'")
                }
            }
            _ => bad("give exactly one of automatic and userManaged"),
        }
    }
}

/// `rotation`: when the secret is next due to be rotated, and how often.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rotation {
    /// RFC 3339 time of the next rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_time: Option<String>,
    /// Time between rotations, `"{seconds}s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_period: Option<String>,
}

/// Parse a duration in the JSON form of `google.protobuf.Duration`
/// (`"3600s"`, `"1.5s"`) to whole seconds, rounding fractions down.
pub fn parse_duration_secs(s: &str) -> Result<i64, SecretNameError> {
    let bad = || {
        SecretNameError::BadSetting(format!(
            "{s:?} is not a duration; write seconds followed by s, e.g. \"86400s\""
        ))
    };
    let digits = s.strip_suffix('s').ok_or_else(bad)?;
    let whole = match digits.split_once('.') {
        Some((w, f)) if !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit()) => w,
        Some(_) => return Err(bad()),
        None => digits,
    };
    if whole.is_empty() || !whole.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    whole.parse().map_err(|_| bad())
}

/// Annotations: free-form metadata, unlike labels not used for filtering.
/// Keys are 1-63 letters, digits, `-`, `_` and `.`, starting and ending
/// with a letter or digit; at most [`MAX_ANNOTATION_BYTES`] in all.
pub fn validate_annotations(map: &BTreeMap<String, String>) -> Result<(), SecretNameError> {
    let mut total = 0;
    for (k, v) in map {
        let b = k.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 63
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
        if !ok {
            return Err(SecretNameError::BadSetting(format!(
                "annotation key {k:?} is invalid: use 1-63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
            )));
        }
        total += k.len() + v.len();
    }
    if total > MAX_ANNOTATION_BYTES {
        return Err(SecretNameError::BadSetting(format!(
            "annotations hold {total} bytes; the limit is {MAX_ANNOTATION_BYTES}"
        )));
    }
    Ok(())
}

/// What is stored beside a secret's labels, as one JSON document.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSettings {
    /// The replication policy, as given at creation.
    #[serde(default)]
    pub replication: Replication,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 time after which the secret is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    /// The rotation schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
    /// The `nextRotationTime` whose coming due is already in the audit log,
    /// so that it is written there once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_due_audited: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn replication_takes_exactly_one_kind() {
        let auto: Replication = serde_json::from_str(r#"{"automatic": {}}"#).unwrap();
        assert!(auto.validate().is_ok());
        assert_eq!(auto, Replication::default());
        let user: Replication =
            serde_json::from_str(r#"{"userManaged": {"replicas": [{"location": "us-east1"}]}}"#)
                .unwrap();
        assert!(user.validate().is_ok());
        assert_eq!(
            serde_json::to_value(&user).unwrap(),
            serde_json::json!({"userManaged": {"replicas": [{"location": "us-east1"}]}})
        );
        for bad in [
            r#"{}"#,
            r#"{"automatic": {}, "userManaged": {"replicas": [{"location": "a"}]}}"#,
            r#"{"userManaged": {"replicas": []}}"#,
            r#"{"userManaged": {"replicas": [{"location": "US East"}]}}"#,
        ] {
            let r: Replication = serde_json::from_str(bad).unwrap();
            assert!(r.validate().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Replication>(
            r#"{"automatic": {"customerManagedEncryption": {"kmsKeyName": "k"}}}"#
        )
        .is_err());
    }

    #[test]
    fn durations_are_seconds_with_an_s() {
        assert_eq!(parse_duration_secs("3600s").unwrap(), 3600);
        assert_eq!(parse_duration_secs("1.5s").unwrap(), 1);
        for bad in ["3600", "s", "-1s", "1.s", "1e3s", " 1s", "1.5.5s"] {
            assert!(parse_duration_secs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn annotations_are_checked() {
        let ok: BTreeMap<String, String> =
            [("owner.team".to_owned(), "Core team, room 4".to_owned())].into();
        assert!(validate_annotations(&ok).is_ok());
        for key in ["", ".x", "x.", "a b", &"k".repeat(64)] {
            let map: BTreeMap<String, String> = [(key.to_owned(), String::new())].into();
            assert!(validate_annotations(&map).is_err(), "{key:?}");
        }
        let big: BTreeMap<String, String> = [("k".to_owned(), "v".repeat(16 * 1024))].into();
        assert!(validate_annotations(&big).is_err());
    }
}
