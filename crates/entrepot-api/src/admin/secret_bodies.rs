//! Request bodies and query parameters of the secret routes, in the shapes of
//! `google.cloud.secretmanager.v1` as Google's client libraries send them
//! (camelCase JSON; `$alt=json;enum-encoding=int` on every call).
//!
//! Bodies that may hold a payload are never echoed in errors: a body that does
//! not parse is described by its expected shape, and only an unknown field's
//! name (never a value) is repeated.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use base64::Engine as _;
use entrepot_domain::crc32c::crc32c;
use entrepot_domain::{Labels, Replication, Rotation, SecretNameError, SecretPayload};
use entrepot_services::{Expiry, NewSecret, SecretChanges};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

use super::ApiError;

/// `payload` of `:addVersion` and of a create with a first version.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PayloadBody {
    data: String,
    /// CRC32C of the data: a JSON number, or a string as protobuf's JSON
    /// mapping writes 64-bit integers.
    #[serde(default)]
    data_crc32c: Option<Value>,
}

/// A secret as a create or patch body carries it. Output-only fields that a
/// client may send back unchanged (`name`, `createTime`) are accepted and
/// ignored.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct SecretBody {
    #[serde(default)]
    #[allow(dead_code)] // Output only: accepted, not read.
    name: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)] // Output only: accepted, not read.
    create_time: Option<IgnoredAny>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    replication: Option<Replication>,
    #[serde(default)]
    expire_time: Option<String>,
    #[serde(default)]
    ttl: Option<String>,
    #[serde(default)]
    rotation: Option<Rotation>,
    #[serde(default)]
    etag: Option<String>,
    /// Fields of Google's API that entrepot does not implement: accepted
    /// when empty (Node's client always sends the maps), refused otherwise.
    #[serde(default)]
    version_aliases: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    tags: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    topics: Option<Vec<Value>>,
    #[serde(default)]
    version_destroy_ttl: Option<Value>,
    #[serde(default)]
    customer_managed_encryption: Option<Value>,
    /// entrepot's own: a first version with the secret.
    #[serde(default)]
    payload: Option<PayloadBody>,
}

/// The body of `:addVersion`. `parent` repeats the path when a client sends
/// it; it must then name the same secret.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct AddVersionBody {
    #[serde(default)]
    pub parent: Option<String>,
    pub payload: PayloadBody,
}

/// The body of a version's `:enable`, `:disable` and `:destroy`: `name`
/// repeats the path, `etag` is accepted (versions carry none yet).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct VersionVerbBody {
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    etag: Option<String>,
}

/// Parse a JSON body that may hold a payload: on failure say what shape is
/// expected, and the name of an unknown field, never what was received.
pub(super) fn parse_payload_body<T: serde::de::DeserializeOwned>(
    body: &Bytes,
    expected: &str,
) -> Result<T, ApiError> {
    if body.is_empty() {
        return serde_json::from_slice(b"{}").map_err(|_| {
            ApiError::invalid(format!(
                "the request body must be JSON of the form {expected}"
            ))
        });
    }
    serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        // serde names an unknown field and the fields it knows, no values.
        let field = text
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name.to_owned());
        match field {
            Some(name) => ApiError::invalid(format!(
                "the request body has a field entrepot does not support: {name:?}; the body must be JSON of the form {expected}"
            )),
            None => ApiError::invalid(format!(
                "the request body must be JSON of the form {expected}"
            )),
        }
    })
}

/// Decode `payload.data` and check `payload.dataCrc32c` when sent. The
/// message never repeats the data.
pub(super) fn decode_payload(body: PayloadBody) -> Result<SecretPayload, ApiError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body.data.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(body.data.trim()))
        .map_err(|_| ApiError::invalid("payload.data is not valid base64"))?;
    if let Some(sent) = body.data_crc32c {
        let sent = match &sent {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse::<u64>().ok(),
            _ => None,
        }
        .ok_or_else(|| ApiError::invalid("payload.dataCrc32c must be a whole number"))?;
        if sent != u64::from(crc32c(&bytes)) {
            return Err(ApiError::invalid(
                SecretNameError::ChecksumMismatch.to_string(),
            ));
        }
    }
    SecretPayload::new(bytes).map_err(|e| ApiError::invalid(e.to_string()))
}

fn labels(map: BTreeMap<String, String>) -> Result<Labels, ApiError> {
    Labels::new(map).map_err(|e| ApiError::invalid(e.to_string()))
}

fn ttl_secs(ttl: &str) -> Result<i64, ApiError> {
    entrepot_domain::secret_settings::parse_duration_secs(ttl)
        .map_err(|e| ApiError::invalid(format!("ttl: {e}")))
}

fn expiry(expire_time: Option<String>, ttl: Option<String>) -> Result<Option<Expiry>, ApiError> {
    match (expire_time, ttl) {
        (Some(_), Some(_)) => Err(ApiError::invalid("give either expireTime or ttl, not both")),
        (Some(at), None) => Ok(Some(Expiry::At(at))),
        (None, Some(ttl)) => Ok(Some(Expiry::After(ttl_secs(&ttl)?))),
        (None, None) => Ok(None),
    }
}

impl SecretBody {
    /// Refuse the fields entrepot does not implement unless they are empty.
    fn refuse_unsupported(&self) -> Result<(), ApiError> {
        let given = [
            (
                "versionAliases",
                self.version_aliases.as_ref().is_some_and(|m| !m.is_empty()),
            ),
            ("tags", self.tags.as_ref().is_some_and(|m| !m.is_empty())),
            (
                "topics",
                self.topics.as_ref().is_some_and(|t| !t.is_empty()),
            ),
            (
                "versionDestroyTtl",
                self.version_destroy_ttl
                    .as_ref()
                    .is_some_and(|v| !v.is_null()),
            ),
            (
                "customerManagedEncryption",
                self.customer_managed_encryption
                    .as_ref()
                    .is_some_and(|v| !v.is_null()),
            ),
        ];
        match given.iter().find(|(_, set)| *set) {
            Some((field, _)) => Err(ApiError::new(
                axum::http::StatusCode::NOT_IMPLEMENTED,
                format!("{field} is not supported by entrepot; leave it out or empty"),
            )),
            None => Ok(()),
        }
    }

    /// A new secret, and its first version if the body holds one.
    pub fn into_new_secret(self) -> Result<(NewSecret, Option<SecretPayload>), ApiError> {
        self.refuse_unsupported()?;
        let payload = self.payload.map(decode_payload).transpose()?;
        let spec = NewSecret {
            labels: labels(self.labels.unwrap_or_default())?,
            replication: self.replication.unwrap_or_default(),
            annotations: self.annotations.unwrap_or_default(),
            expiry: expiry(self.expire_time, self.ttl)?,
            rotation: self.rotation,
        };
        Ok((spec, payload))
    }

    /// The changes a patch asks for, and the etag it requires. The update
    /// mask names the fields to change (snake_case or camelCase, comma
    /// separated); without one, every field present in the body is changed.
    pub fn into_changes(
        self,
        update_mask: Option<&str>,
    ) -> Result<(SecretChanges, Option<String>), ApiError> {
        self.refuse_unsupported()?;
        if self.payload.is_some() {
            return Err(ApiError::invalid(
                "a patch cannot carry a payload; add a version with :addVersion",
            ));
        }
        let mask: Vec<String> = match update_mask {
            Some(mask) => mask
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(camel_case)
                .collect(),
            None => {
                let mut present = Vec::new();
                let fields = [
                    ("labels", self.labels.is_some()),
                    ("annotations", self.annotations.is_some()),
                    ("expireTime", self.expire_time.is_some()),
                    ("ttl", self.ttl.is_some()),
                    ("rotation", self.rotation.is_some()),
                    ("replication", self.replication.is_some()),
                ];
                for (field, given) in fields {
                    if given {
                        present.push(field.to_owned());
                    }
                }
                present
            }
        };
        if mask.is_empty() {
            return Err(ApiError::invalid(
                "nothing to update: give updateMask (e.g. updateMask=labels,annotations) and the fields in the body",
            ));
        }
        let mut changes = SecretChanges::default();
        for field in &mask {
            match field.as_str() {
                "labels" => changes.labels = Some(labels(self.labels.clone().unwrap_or_default())?),
                "annotations" => {
                    changes.annotations = Some(self.annotations.clone().unwrap_or_default())
                }
                "expireTime" | "ttl" => {
                    changes.expiry = Some(expiry(self.expire_time.clone(), self.ttl.clone())?)
                }
                f if f == "rotation" || f.starts_with("rotation.") => {
                    changes.rotation = Some(self.rotation.clone())
                }
                "replication" => {
                    return Err(ApiError::invalid(
                        "replication cannot be changed after a secret is created",
                    ))
                }
                other => {
                    return Err(ApiError::invalid(format!(
                        "updateMask names {other:?}, which cannot be updated; updatable fields are labels, annotations, expireTime, ttl and rotation"
                    )))
                }
            }
        }
        Ok((changes, self.etag))
    }
}

/// `next_rotation_time` → `nextRotationTime`.
fn camel_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether the caller asked for enums as numbers: Google's libraries send
/// `$alt=json;enum-encoding=int`.
pub(super) fn wants_int_enums(query: &HashMap<String, String>) -> bool {
    query
        .iter()
        .filter(|(k, _)| k.as_str() == "$alt" || k.as_str() == "alt")
        .any(|(_, v)| v.split(';').any(|part| part.trim() == "enum-encoding=int"))
        || query.get("enum-encoding").map(String::as_str) == Some("int")
}

/// A secret version's `state` as the number of
/// `google.cloud.secretmanager.v1.SecretVersion.State`.
fn state_number(state: &str) -> Option<u8> {
    match state {
        "ENABLED" => Some(1),
        "DISABLED" => Some(2),
        "DESTROYED" => Some(3),
        _ => None,
    }
}

/// Rewrite a secret version (or a listing of them) with numbered enums when
/// asked for.
pub(super) fn encode_version_enums(mut value: Value, int: bool) -> Value {
    if !int {
        return value;
    }
    let mut fix = |v: &mut Value| {
        if let Some(n) = v
            .get("state")
            .and_then(Value::as_str)
            .and_then(state_number)
        {
            v["state"] = Value::from(n);
        }
    };
    if let Some(items) = value.get_mut("versions").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(&mut fix);
    } else {
        fix(&mut value);
    }
    value
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> SecretBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_python_clients_create_body_is_accepted() {
        let bytes = Bytes::from_static(br#"{"replication": {"automatic": {}}}"#);
        let parsed: SecretBody = parse_payload_body(&bytes, "{}").unwrap();
        let (spec, payload) = parsed.into_new_secret().unwrap();
        assert_eq!(spec.replication, Replication::default());
        assert!(payload.is_none());
    }

    #[test]
    fn the_node_clients_empty_maps_are_accepted_and_filled_ones_refused() {
        let bytes = Bytes::from_static(
            br#"{"labels":{},"versionAliases":{},"annotations":{},"tags":{},"replication":{"automatic":{}}}"#,
        );
        let parsed: SecretBody = parse_payload_body(&bytes, "{}").unwrap();
        assert!(parsed.into_new_secret().is_ok());
        let Err(e) = body(json!({"topics": [{"name": "projects/p/topics/t"}]})).into_new_secret()
        else {
            panic!("topics were accepted")
        };
        assert_eq!(e.status(), axum::http::StatusCode::NOT_IMPLEMENTED);
    }

    #[test]
    fn unknown_fields_are_named_and_values_never_echoed() {
        let bytes = Bytes::from_static(br#"{"pubsub": [{"name": "hunter2"}]}"#);
        // The bodies hold payloads and have no Debug: no unwrap_err.
        let Err(e) = parse_payload_body::<SecretBody>(&bytes, "{}") else {
            panic!("an unknown field was accepted")
        };
        let text = format!("{e:?}");
        assert!(text.contains("pubsub"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let bytes = Bytes::from_static(br#"{"payload": {"data": 7}}"#);
        let Err(e) = parse_payload_body::<AddVersionBody>(&bytes, "{}") else {
            panic!("a number was accepted as data")
        };
        assert!(!format!("{e:?}").contains('7'));
    }

    #[test]
    fn checksums_are_checked_when_sent() {
        let data = base64::engine::general_purpose::STANDARD.encode(b"secret");
        let good = 0xb03c_4d4d_u64;
        for crc in [json!(good), json!(good.to_string()), Value::Null] {
            let p = PayloadBody {
                data: data.clone(),
                data_crc32c: (!crc.is_null()).then_some(crc),
            };
            assert_eq!(decode_payload(p).unwrap().as_bytes(), b"secret");
        }
        let bad = PayloadBody {
            data,
            data_crc32c: Some(json!("12345")),
        };
        let e = decode_payload(bad).unwrap_err();
        assert!(format!("{e:?}").contains("dataCrc32c"));
    }

    #[test]
    fn update_masks_pick_fields_and_default_to_those_given() {
        let (c, etag) = body(json!({"labels": {"env": "prod"}}))
            .into_changes(None)
            .unwrap();
        assert!(c.labels.is_some() && c.annotations.is_none() && etag.is_none());
        let (c, etag) =
            body(json!({"labels": {"a": "b"}, "annotations": {"x": "y"}, "etag": "\"e\""}))
                .into_changes(Some("annotations"))
                .unwrap();
        assert!(c.labels.is_none() && c.annotations.is_some());
        assert_eq!(etag.as_deref(), Some("\"e\""));
        let (c, _) = body(json!({}))
            .into_changes(Some("rotation.next_rotation_time,expire_time"))
            .unwrap();
        assert_eq!(c.rotation, Some(None));
        assert_eq!(c.expiry, Some(None));
        assert!(body(json!({})).into_changes(None).is_err());
        assert!(body(json!({"replication": {"automatic": {}}}))
            .into_changes(Some("replication"))
            .is_err());
        assert!(body(json!({})).into_changes(Some("createTime")).is_err());
    }

    #[test]
    fn enums_become_numbers_only_when_asked() {
        let q: HashMap<String, String> =
            [("$alt".to_owned(), "json;enum-encoding=int".to_owned())].into();
        assert!(wants_int_enums(&q));
        assert!(!wants_int_enums(&HashMap::new()));
        let v = json!({"name": "n", "state": "DISABLED"});
        assert_eq!(encode_version_enums(v.clone(), true)["state"], 2);
        assert_eq!(encode_version_enums(v, false)["state"], "DISABLED");
        let list = json!({"versions": [{"state": "ENABLED"}, {"state": "DESTROYED"}]});
        let list = encode_version_enums(list, true);
        assert_eq!(list["versions"][0]["state"], 1);
        assert_eq!(list["versions"][1]["state"], 3);
    }
}
