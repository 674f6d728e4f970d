//! Cleanup policies of a repository, in Artifact Registry's shape.
//!
//! A repository holds up to [`MAX_POLICIES`] named policies. Each either
//! deletes or keeps the versions its `condition` matches (tag state, tag,
//! version and package name prefixes, age), or keeps the most recent
//! versions of each package (`mostRecentVersions`, keep only). A version
//! matched by a keep policy is never deleted, whatever the delete policies
//! say.
//!
//! Two input shapes are accepted ([`parse_policies`]):
//!
//! - the policy file of `gcloud artifacts repositories set-cleanup-policies
//!   --policy=FILE.json`: a list of `{"name", "action": {"type": "Delete"},
//!   "condition": {"tagState": "tagged", "olderThan": "30d", ...}}`;
//! - the REST resource's `cleanupPolicies`: a map of id to `{"id", "action":
//!   "DELETE", "condition": {"tagState": "TAGGED", "olderThan": "2592000s"}}`
//!   (or a list of those).
//!
//! They are written back ([`CleanupPolicy`]'s `Serialize`) in the REST form,
//! durations in seconds (`"2592000s"`).

use std::collections::BTreeSet;

use serde::ser::SerializeMap as _;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// Most policies a repository may have (Artifact Registry's limit).
pub const MAX_POLICIES: usize = 10;
/// Most prefixes in one list of a condition.
pub const MAX_PREFIXES: usize = 100;
/// Longest prefix, in bytes.
pub const MAX_PREFIX_LEN: usize = 256;
/// Longest policy name.
pub const MAX_NAME_LEN: usize = 128;
/// Largest `keepCount`.
pub const MAX_KEEP_COUNT: u32 = 100_000;
/// Largest policy document accepted, in bytes.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// What a policy does with the versions it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CleanupAction {
    /// Delete them (unless a keep policy matches too).
    Delete,
    /// Keep them, whatever the delete policies say.
    Keep,
}

/// Which versions a condition matches by their tags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TagState {
    /// Versions with at least one tag.
    Tagged,
    /// Versions without a tag.
    Untagged,
    /// Every version.
    #[default]
    Any,
}

/// The versions a `DELETE` or conditional `KEEP` policy matches: all of its
/// given fields must hold (an empty list holds for every version).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupCondition {
    /// By tags.
    pub tag_state: TagState,
    /// At least one tag starts with one of these.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tag_prefixes: Vec<String>,
    /// The version name (a manifest digest, a Python version) starts with one
    /// of these.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub version_name_prefixes: Vec<String>,
    /// The package name (an image, a Python project) starts with one of these.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub package_name_prefixes: Vec<String>,
    /// Uploaded more than this many seconds ago.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "seconds_form"
    )]
    pub older_than: Option<u64>,
    /// Uploaded less than this many seconds ago.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "seconds_form"
    )]
    pub newer_than: Option<u64>,
}

/// Keep the `keep_count` most recently uploaded versions of each package
/// whose name starts with one of the prefixes (every package without any).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MostRecentVersions {
    /// Packages it applies to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub package_name_prefixes: Vec<String>,
    /// How many versions of each to keep.
    pub keep_count: u32,
}

/// What a policy selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// The versions a condition matches.
    Condition(CleanupCondition),
    /// The most recent versions of each package (keep policies only).
    MostRecent(MostRecentVersions),
}

/// One named cleanup policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Its name (the REST form's `id`), unique in the repository.
    pub name: String,
    /// Delete or keep.
    pub action: CleanupAction,
    /// What it applies to.
    pub selector: Selector,
}

impl Serialize for CleanupPolicy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("id", &self.name)?;
        map.serialize_entry("action", &self.action)?;
        match &self.selector {
            Selector::Condition(c) => map.serialize_entry("condition", c)?,
            Selector::MostRecent(m) => map.serialize_entry("mostRecentVersions", m)?,
        }
        map.end()
    }
}

fn seconds_form<S: Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(secs) => s.serialize_str(&format!("{secs}s")),
        None => s.serialize_none(),
    }
}

/// The policies of a repository as the REST resource shows them: a map of
/// id to policy.
pub fn policies_json(policies: &[CleanupPolicy]) -> Value {
    Value::Object(
        policies
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    serde_json::to_value(p).unwrap_or(Value::Null),
                )
            })
            .collect(),
    )
}

/// Why a policy document was refused; the message names the policy and the
/// field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CleanupPolicyError(String);

fn invalid(message: impl Into<String>) -> CleanupPolicyError {
    CleanupPolicyError(message.into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    id: Option<String>,
    action: Value,
    #[serde(default)]
    condition: Option<RawCondition>,
    #[serde(default)]
    most_recent_versions: Option<RawMostRecent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCondition {
    #[serde(default)]
    tag_state: Option<String>,
    #[serde(default)]
    tag_prefixes: Vec<String>,
    #[serde(default)]
    version_name_prefixes: Vec<String>,
    #[serde(default)]
    package_name_prefixes: Vec<String>,
    #[serde(default)]
    older_than: Option<Value>,
    #[serde(default)]
    newer_than: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawMostRecent {
    #[serde(default)]
    package_name_prefixes: Vec<String>,
    #[serde(default)]
    keep_count: Option<Value>,
}

/// Parse and validate a policy document: a list of policies (the gcloud
/// policy file, or REST policies), or a map of id to policy (the REST
/// resource's `cleanupPolicies`). An empty list removes every policy.
pub fn parse_policies(document: &[u8]) -> Result<Vec<CleanupPolicy>, CleanupPolicyError> {
    if document.len() > MAX_POLICY_BYTES {
        return Err(invalid(format!(
            "the cleanup policy document has {} bytes; at most {MAX_POLICY_BYTES} are accepted",
            document.len()
        )));
    }
    let value: Value = serde_json::from_slice(document)
        .map_err(|e| invalid(format!("the cleanup policy document is not JSON: {e}")))?;
    parse_policies_value(value)
}

/// [`parse_policies`] of a document already parsed as JSON.
pub fn parse_policies_value(value: Value) -> Result<Vec<CleanupPolicy>, CleanupPolicyError> {
    let entries: Vec<(Option<String>, Value)> = match value {
        Value::Array(items) => items.into_iter().map(|v| (None, v)).collect(),
        Value::Object(map) => map.into_iter().map(|(k, v)| (Some(k), v)).collect(),
        _ => {
            return Err(invalid(
                "a cleanup policy document is a JSON list of policies (or a map of policy id to policy)",
            ))
        }
    };
    if entries.len() > MAX_POLICIES {
        return Err(invalid(format!(
            "{} cleanup policies given; a repository has at most {MAX_POLICIES}",
            entries.len()
        )));
    }
    let mut names = BTreeSet::new();
    let mut policies = Vec::with_capacity(entries.len());
    for (i, (key, value)) in entries.into_iter().enumerate() {
        let raw: RawPolicy = serde_json::from_value(value).map_err(|e| match &key {
            Some(key) => invalid(format!("cleanup policy {key:?}: {e}")),
            None => invalid(format!("cleanup policy #{}: {e}", i + 1)),
        })?;
        let policy = validate(i, key, raw)?;
        if !names.insert(policy.name.clone()) {
            return Err(invalid(format!(
                "two cleanup policies are named {:?}; names must be unique",
                policy.name
            )));
        }
        policies.push(policy);
    }
    Ok(policies)
}

fn validate(
    index: usize,
    key: Option<String>,
    raw: RawPolicy,
) -> Result<CleanupPolicy, CleanupPolicyError> {
    let name = match (key, raw.name, raw.id) {
        (Some(key), _, Some(id)) if key != id => {
            return Err(invalid(format!(
                "cleanup policy {key:?} has the id {id:?}; they must be the same"
            )))
        }
        (Some(key), _, _) => key,
        (None, Some(name), _) | (None, None, Some(name)) => name,
        (None, None, None) => {
            return Err(invalid(format!(
                "cleanup policy #{} has no name; give each policy a \"name\"",
                index + 1
            )))
        }
    };
    check_name(&name)?;
    let action = parse_action(&name, &raw.action)?;
    let selector = match (raw.condition, raw.most_recent_versions) {
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "cleanup policy {name:?} has both a condition and mostRecentVersions; give one"
            )))
        }
        (None, None) => {
            return Err(invalid(format!(
                "cleanup policy {name:?} has neither a condition nor mostRecentVersions"
            )))
        }
        (Some(c), None) => Selector::Condition(condition(&name, c)?),
        (None, Some(m)) => {
            if action != CleanupAction::Keep {
                return Err(invalid(format!(
                    "cleanup policy {name:?}: mostRecentVersions is only for KEEP policies"
                )));
            }
            Selector::MostRecent(most_recent(&name, m)?)
        }
    };
    Ok(CleanupPolicy {
        name,
        action,
        selector,
    })
}

fn check_name(name: &str) -> Result<(), CleanupPolicyError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{name:?} is not a cleanup policy name; use 1 to {MAX_NAME_LEN} letters, digits, '-', '_' or '.'"
        )))
    }
}

/// `"DELETE"`, `"Keep"`, or the policy file's `{"type": "Delete"}`.
fn parse_action(name: &str, value: &Value) -> Result<CleanupAction, CleanupPolicyError> {
    let text = match value {
        Value::String(s) => Some(s.as_str()),
        Value::Object(o) if o.len() == 1 => o.get("type").and_then(Value::as_str),
        _ => None,
    };
    match text.map(str::to_ascii_uppercase).as_deref() {
        Some("DELETE") => Ok(CleanupAction::Delete),
        Some("KEEP") => Ok(CleanupAction::Keep),
        _ => Err(invalid(format!(
            "cleanup policy {name:?}: action {value} is not DELETE or KEEP (in a policy file: {{\"type\": \"Delete\"}} or {{\"type\": \"Keep\"}})"
        ))),
    }
}

fn condition(name: &str, raw: RawCondition) -> Result<CleanupCondition, CleanupPolicyError> {
    let tag_state = match raw
        .tag_state
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("ANY") => TagState::Any,
        Some("TAGGED") => TagState::Tagged,
        Some("UNTAGGED") => TagState::Untagged,
        Some(_) => {
            return Err(invalid(format!(
                "cleanup policy {name:?}: tagState {:?} is not tagged, untagged or any",
                raw.tag_state.unwrap_or_default()
            )))
        }
    };
    if tag_state == TagState::Untagged && !raw.tag_prefixes.is_empty() {
        return Err(invalid(format!(
            "cleanup policy {name:?}: tagPrefixes cannot match untagged versions; use tagState tagged or any"
        )));
    }
    for (field, list) in [
        ("tagPrefixes", &raw.tag_prefixes),
        ("versionNamePrefixes", &raw.version_name_prefixes),
        ("packageNamePrefixes", &raw.package_name_prefixes),
    ] {
        check_prefixes(name, field, list)?;
    }
    let older_than = raw
        .older_than
        .as_ref()
        .map(|v| duration(name, "olderThan", v))
        .transpose()?;
    let newer_than = raw
        .newer_than
        .as_ref()
        .map(|v| duration(name, "newerThan", v))
        .transpose()?;
    Ok(CleanupCondition {
        tag_state,
        tag_prefixes: raw.tag_prefixes,
        version_name_prefixes: raw.version_name_prefixes,
        package_name_prefixes: raw.package_name_prefixes,
        older_than,
        newer_than,
    })
}

fn most_recent(name: &str, raw: RawMostRecent) -> Result<MostRecentVersions, CleanupPolicyError> {
    check_prefixes(name, "packageNamePrefixes", &raw.package_name_prefixes)?;
    let keep_count = match &raw.keep_count {
        Some(Value::Number(n)) => n.as_u64(),
        // The REST form may carry int32 fields as strings.
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .and_then(|n| u32::try_from(n).ok())
    .filter(|n| (1..=MAX_KEEP_COUNT).contains(n))
    .ok_or_else(|| {
        invalid(format!(
            "cleanup policy {name:?}: mostRecentVersions.keepCount must be a number from 1 to {MAX_KEEP_COUNT}"
        ))
    })?;
    Ok(MostRecentVersions {
        package_name_prefixes: raw.package_name_prefixes,
        keep_count,
    })
}

fn check_prefixes(name: &str, field: &str, list: &[String]) -> Result<(), CleanupPolicyError> {
    if list.len() > MAX_PREFIXES {
        return Err(invalid(format!(
            "cleanup policy {name:?}: {field} has {} entries; at most {MAX_PREFIXES}",
            list.len()
        )));
    }
    if let Some(bad) = list
        .iter()
        .find(|p| p.is_empty() || p.len() > MAX_PREFIX_LEN)
    {
        return Err(invalid(format!(
            "cleanup policy {name:?}: {field} entry {bad:?} must have 1 to {MAX_PREFIX_LEN} bytes"
        )));
    }
    Ok(())
}

/// A duration as the policy file writes it (`"30d"`, `"12h"`, `"90m"`,
/// `"2592000s"`; `"1.5s"` and other fractions are refused) or a number of
/// seconds.
fn duration(name: &str, field: &str, value: &Value) -> Result<u64, CleanupPolicyError> {
    let bad = || {
        invalid(format!(
            "cleanup policy {name:?}: {field} {value} is not a duration; write it as \"30d\", \"12h\", \"90m\" or \"2592000s\""
        ))
    };
    match value {
        Value::Number(n) => n.as_u64().ok_or_else(bad),
        Value::String(s) => parse_duration(s).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// Seconds of `"30d"`, `"12h"`, `"90m"`, `"45s"` (or a bare number of
/// seconds); `None` for anything else.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(scale)
}

impl CleanupCondition {
    /// Whether a version of `package` named `version`, carrying `tags`,
    /// uploaded `age` seconds ago, matches.
    pub fn matches(&self, package: &str, version: &str, tags: &[String], age: i64) -> bool {
        let tag_ok = match self.tag_state {
            TagState::Tagged => !tags.is_empty(),
            TagState::Untagged => tags.is_empty(),
            TagState::Any => true,
        };
        tag_ok
            && (self.tag_prefixes.is_empty()
                || tags
                    .iter()
                    .any(|t| self.tag_prefixes.iter().any(|p| t.starts_with(p.as_str()))))
            && prefixed(&self.version_name_prefixes, version)
            && prefixed(&self.package_name_prefixes, package)
            && self
                .older_than
                .is_none_or(|d| age > i64::try_from(d).unwrap_or(i64::MAX))
            && self
                .newer_than
                .is_none_or(|d| age < i64::try_from(d).unwrap_or(i64::MAX))
    }
}

impl MostRecentVersions {
    /// Whether the policy applies to `package`.
    pub fn applies_to(&self, package: &str) -> bool {
        prefixed(&self.package_name_prefixes, package)
    }
}

/// An empty list holds for everything; else some entry is a prefix of `name`.
fn prefixed(prefixes: &[String], name: &str) -> bool {
    prefixes.is_empty() || prefixes.iter().any(|p| name.starts_with(p.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gcloud_policy_file_parses() {
        let file = br#"[
          {"name": "delete-prerelease", "action": {"type": "Delete"},
           "condition": {"tagState": "tagged", "tagPrefixes": ["alpha", "v0"], "olderThan": "30d"}},
          {"name": "keep-tagged-release", "action": {"type": "Keep"},
           "condition": {"tagState": "tagged", "tagPrefixes": ["release"], "packageNamePrefixes": ["webapp", "mobile"]}},
          {"name": "keep-minimum-versions", "action": {"type": "Keep"},
           "mostRecentVersions": {"packageNamePrefixes": ["webapp"], "keepCount": 5}}
        ]"#;
        let policies = parse_policies(file).unwrap();
        assert_eq!(policies.len(), 3);
        assert_eq!(policies[0].action, CleanupAction::Delete);
        let Selector::Condition(c) = &policies[0].selector else {
            panic!("condition expected")
        };
        assert_eq!(c.tag_state, TagState::Tagged);
        assert_eq!(c.older_than, Some(30 * 86_400));
        assert!(matches!(
            &policies[2].selector,
            Selector::MostRecent(MostRecentVersions { keep_count: 5, .. })
        ));
        // Written back in the REST form, which parses to the same policies.
        let rest = policies_json(&policies);
        assert_eq!(
            rest["delete-prerelease"]["condition"]["olderThan"],
            "2592000s"
        );
        assert_eq!(rest["delete-prerelease"]["action"], "DELETE");
        assert_eq!(parse_policies_value(rest).unwrap().len(), 3);
    }

    #[test]
    fn the_rest_form_parses() {
        let doc = br#"[{"id": "untagged", "action": "DELETE",
            "condition": {"tagState": "UNTAGGED", "olderThan": "2592000s", "newerThan": 60}}]"#;
        let p = parse_policies(doc).unwrap();
        let Selector::Condition(c) = &p[0].selector else {
            panic!()
        };
        assert_eq!(c.older_than, Some(2_592_000));
        assert_eq!(c.newer_than, Some(60));
    }

    #[test]
    fn bad_documents_are_refused_naming_the_policy() {
        for (doc, needle) in [
            (r#"{"x": 1}"#.to_owned(), "cleanup policy \"x\""),
            (r#"[{"name": "a", "action": "PURGE", "condition": {}}]"#.into(), "PURGE"),
            (r#"[{"name": "a", "action": "DELETE"}]"#.into(), "neither"),
            (
                r#"[{"name": "a", "action": "DELETE", "mostRecentVersions": {"keepCount": 1}}]"#.into(),
                "only for KEEP",
            ),
            (
                r#"[{"name": "a", "action": "KEEP", "mostRecentVersions": {"keepCount": 0}}]"#.into(),
                "keepCount",
            ),
            (
                r#"[{"name": "a", "action": "DELETE", "condition": {"olderThan": "1y"}}]"#.into(),
                "olderThan",
            ),
            (
                r#"[{"name": "a", "action": "DELETE", "condition": {"tagState": "untagged", "tagPrefixes": ["v"]}}]"#.into(),
                "tagPrefixes",
            ),
            (
                r#"[{"name": "a", "action": "DELETE", "condition": {}}, {"name": "a", "action": "KEEP", "condition": {}}]"#.into(),
                "unique",
            ),
            (r#"[{"name": "a b", "action": "DELETE", "condition": {}}]"#.into(), "name"),
            (
                r#"[{"name": "a", "action": "DELETE", "condition": {"tagstate": "any"}}]"#.into(),
                "unknown field",
            ),
        ] {
            let err = parse_policies(doc.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(needle), "{doc}: {err}");
        }
        let many: Vec<String> = (0..11)
            .map(|i| format!(r#"{{"name": "p{i}", "action": "DELETE", "condition": {{}}}}"#))
            .collect();
        let doc = format!("[{}]", many.join(","));
        assert!(parse_policies(doc.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("at most 10"));
        assert!(parse_policies(b"[]").unwrap().is_empty());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Some(2_592_000));
        assert_eq!(parse_duration("12h"), Some(43_200));
        assert_eq!(parse_duration("90m"), Some(5400));
        assert_eq!(parse_duration("2592000s"), Some(2_592_000));
        assert_eq!(parse_duration("15"), Some(15));
        assert_eq!(parse_duration("1.5s"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("d"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }

    #[test]
    fn conditions_match_all_their_fields() {
        let c = CleanupCondition {
            tag_state: TagState::Tagged,
            tag_prefixes: vec!["v0".into()],
            package_name_prefixes: vec!["web".into()],
            older_than: Some(100),
            ..CleanupCondition::default()
        };
        let tags = vec!["latest".to_owned(), "v0.1".to_owned()];
        assert!(c.matches("webapp", "sha256:aa", &tags, 101));
        assert!(!c.matches("webapp", "sha256:aa", &tags, 100));
        assert!(!c.matches("api", "sha256:aa", &tags, 101));
        assert!(!c.matches("webapp", "sha256:aa", &["v1".into()], 101));
        assert!(!c.matches("webapp", "sha256:aa", &[], 101));
        let untagged = CleanupCondition {
            tag_state: TagState::Untagged,
            newer_than: Some(10),
            version_name_prefixes: vec!["1.".into()],
            ..CleanupCondition::default()
        };
        assert!(untagged.matches("p", "1.2", &[], 9));
        assert!(!untagged.matches("p", "1.2", &[], 10));
        assert!(!untagged.matches("p", "2.0", &[], 9));
        assert!(!untagged.matches("p", "1.2", &["x".into()], 9));
    }
}
