//! A repository's `cleanupPolicies` and `cleanupPolicyDryRun` on the
//! `locations` paths, as Google's `Repository` message carries them: read
//! from a create or patch body (Google's clients send enums as numbers,
//! `$alt=json;enum-encoding=int`), and written into what get, create and
//! patch answer. The policies themselves live in the cleanup service; this
//! module only translates.

use entrepot_domain::cleanup::{parse_policies_value, policies_json};
use entrepot_domain::RepositoryName;
use entrepot_services::cleanup::CleanupSettings;
use entrepot_services::Principal;
use serde_json::{Map, Value};

use super::resource::EnumEncoding;
use crate::admin::ApiError;
use crate::AppState;

/// `CleanupPolicy.Action`: `ACTION_UNSPECIFIED` is 0.
const ACTIONS: &[(&str, i64)] = &[("DELETE", 1), ("KEEP", 2)];
/// `CleanupPolicyCondition.TagState`: `TAG_STATE_UNSPECIFIED` (0) is any.
const TAG_STATES: &[(&str, i64)] = &[("ANY", 0), ("TAGGED", 1), ("UNTAGGED", 2), ("ANY", 3)];

/// What a create or patch asks of the cleanup settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CleanupChange {
    /// The new policies in the REST form (already checked), or `None` to
    /// keep the current ones.
    pub policies: Option<Value>,
    /// The new dry-run flag, or `None` to keep the current one.
    pub dry_run: Option<bool>,
}

impl CleanupChange {
    /// A change of the policies (`policies`, as sent) and/or the dry-run
    /// flag. The policies are checked now, so that a refusal comes before
    /// anything else of the request is applied; Google's numeric enums
    /// become names.
    pub fn new(policies: Option<Value>, dry_run: Option<bool>) -> Result<Self, ApiError> {
        let policies = policies
            .map(|p| {
                let named = names_for_numbers(p);
                parse_policies_value(named.clone())
                    .map_err(|e| ApiError::invalid(e.to_string()))?;
                Ok::<_, ApiError>(named)
            })
            .transpose()?;
        Ok(Self { policies, dry_run })
    }

    /// Whether the change sets any policy (an empty map or list sets none).
    pub fn sets_policies(&self) -> bool {
        match &self.policies {
            Some(Value::Object(m)) => !m.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            _ => false,
        }
    }

    /// Apply the change to `repo` for `caller` (who needs
    /// `artifactregistry.repositories.update`); what is not changed is read
    /// first and written back as it was.
    pub async fn apply(
        self,
        state: &AppState,
        caller: &Principal,
        repo: &RepositoryName,
    ) -> Result<CleanupSettings, ApiError> {
        let (policies, dry_run) = match (self.policies, self.dry_run) {
            (Some(p), Some(d)) => (p, d),
            (policies, dry_run) => {
                let current = state.cleanup.settings(caller, repo).await?;
                (
                    policies.unwrap_or_else(|| policies_json(&current.policies)),
                    dry_run.unwrap_or(current.dry_run),
                )
            }
        };
        Ok(state
            .cleanup
            .set_policies(caller, repo, policies, dry_run)
            .await?)
    }
}

/// Add `cleanupPolicies` and `cleanupPolicyDryRun` to a rendered repository,
/// left out when empty and false as proto3 JSON leaves out defaults.
pub(crate) fn add_fields(into: &mut Value, settings: &CleanupSettings, enums: EnumEncoding) {
    let Value::Object(into) = into else { return };
    if !settings.policies.is_empty() {
        let mut policies = policies_json(&settings.policies);
        if enums == EnumEncoding::Numbers {
            numbers_for_names(&mut policies);
        }
        into.insert("cleanupPolicies".into(), policies);
    }
    if settings.dry_run {
        into.insert("cleanupPolicyDryRun".into(), Value::Bool(true));
    }
}

/// The cleanup settings of `repo` added to its rendering for `caller`.
pub(crate) async fn describe(
    state: &AppState,
    caller: &Principal,
    repo: &RepositoryName,
    into: &mut Value,
    enums: EnumEncoding,
) -> Result<(), ApiError> {
    let settings = state.cleanup.settings(caller, repo).await?;
    add_fields(into, &settings, enums);
    Ok(())
}

/// Each policy of a map or list of policies, mutably.
fn each_policy(policies: &mut Value) -> Vec<&mut Map<String, Value>> {
    match policies {
        Value::Object(map) => map.values_mut().filter_map(Value::as_object_mut).collect(),
        Value::Array(list) => list.iter_mut().filter_map(Value::as_object_mut).collect(),
        _ => Vec::new(),
    }
}

/// Google's numbers for `action` and `condition.tagState` as names; anything
/// else is left for the policy parser to judge.
fn names_for_numbers(mut policies: Value) -> Value {
    let name = |table: &[(&'static str, i64)], v: &Value| {
        v.as_i64()
            .and_then(|n| table.iter().find(|(_, x)| *x == n))
            .map(|(name, _)| Value::String((*name).to_owned()))
    };
    for policy in each_policy(&mut policies) {
        if let Some(named) = policy.get("action").and_then(|v| name(ACTIONS, v)) {
            policy.insert("action".into(), named);
        }
        if let Some(condition) = policy.get_mut("condition").and_then(Value::as_object_mut) {
            if let Some(named) = condition.get("tagState").and_then(|v| name(TAG_STATES, v)) {
                condition.insert("tagState".into(), named);
            }
        }
    }
    policies
}

/// Names of `action` and `condition.tagState` as Google's numbers.
fn numbers_for_names(policies: &mut Value) {
    // ANY is written as 3, not as the unspecified 0.
    let number = |table: &[(&'static str, i64)], v: &Value| {
        v.as_str()
            .and_then(|s| table.iter().rev().find(|(name, _)| *name == s))
            .map(|(_, n)| Value::from(*n))
    };
    for policy in each_policy(policies) {
        if let Some(n) = policy.get("action").and_then(|v| number(ACTIONS, v)) {
            policy.insert("action".into(), n);
        }
        if let Some(condition) = policy.get_mut("condition").and_then(Value::as_object_mut) {
            if let Some(n) = condition
                .get("tagState")
                .and_then(|v| number(TAG_STATES, v))
            {
                condition.insert("tagState".into(), n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use entrepot_domain::cleanup::CleanupAction;
    use serde_json::json;

    use super::*;

    #[test]
    fn numeric_enums_read_and_write_back() {
        let change = CleanupChange::new(
            Some(json!({
                "old": {"id": "old", "action": 1, "condition": {"tagState": 2, "olderThan": "86400s"}},
                "recent": {"id": "recent", "action": 2, "mostRecentVersions": {"keepCount": 3}}
            })),
            Some(true),
        )
        .unwrap();
        let policies = change.policies.clone().unwrap();
        assert_eq!(policies["old"]["action"], "DELETE");
        assert_eq!(policies["old"]["condition"]["tagState"], "UNTAGGED");
        let parsed = parse_policies_value(policies).unwrap();
        assert_eq!(parsed[1].action, CleanupAction::Keep);
        let settings = CleanupSettings {
            policies: parsed,
            dry_run: true,
        };
        let mut numbers = json!({});
        add_fields(&mut numbers, &settings, EnumEncoding::Numbers);
        assert_eq!(numbers["cleanupPolicies"]["old"]["action"], 1);
        assert_eq!(
            numbers["cleanupPolicies"]["old"]["condition"]["tagState"],
            2
        );
        assert_eq!(numbers["cleanupPolicies"]["recent"]["action"], 2);
        assert_eq!(numbers["cleanupPolicyDryRun"], true);
        let mut names = json!({});
        add_fields(&mut names, &settings, EnumEncoding::Names);
        assert_eq!(names["cleanupPolicies"]["old"]["action"], "DELETE");
    }

    #[test]
    fn empty_settings_are_left_out_and_bad_policies_refused() {
        let mut v = json!({});
        add_fields(&mut v, &CleanupSettings::default(), EnumEncoding::Names);
        assert_eq!(v, json!({}));
        assert!(CleanupChange::new(Some(json!({"x": {"action": 9}})), None).is_err());
        assert!(!CleanupChange::new(Some(json!({})), None)
            .unwrap()
            .sets_policies());
    }
}
