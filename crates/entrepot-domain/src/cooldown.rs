//! The release-age policy ("cooldown") of a remote repository: content the
//! upstream published less than a minimum age ago, or after an absolute
//! cut-off time, is held back. Pure rules; the services apply them to
//! Python files (by their PEP 700 upload time) and to Docker tags (by when
//! a tag's digest was first seen).

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The longest minimum release age accepted: one year.
pub const MAX_MIN_RELEASE_AGE_SECS: u64 = 365 * 24 * 3600;

/// The most exemptions one repository may list.
pub const MAX_EXEMPTIONS: usize = 200;

/// A remote repository's release-age settings. Off (nothing held back) when
/// neither a minimum age nor a cut-off is set.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseAgePolicy {
    /// Content published less than this many seconds ago is held back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_release_age_secs: Option<u64>,
    /// RFC 3339 time: content published after it is held back (incident
    /// response: "nothing published after T").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_cutoff_time: Option<String>,
    /// Serve content whose publish time is unknown (by default it is held
    /// back: the policy fails closed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_unknown_release_time: bool,
    /// `NAME` or `NAME==VERSION` entries exempt from the policy (a Python
    /// project, or one release of it; a Docker image, or one tag of it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exemptions: Vec<String>,
}

/// Why a release-age setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseAgeError {
    /// The minimum age is longer than a year.
    #[error("the minimum release age may be at most one year (365d)")]
    TooLong,
    /// The cut-off is not an RFC 3339 time.
    #[error("release cut-off {0:?} is not an RFC 3339 time such as 2026-11-20T00:00:00Z")]
    Cutoff(String),
    /// An exemption is not `NAME` or `NAME==VERSION`.
    #[error("release-age exemption {0:?} is not NAME or NAME==VERSION")]
    Exemption(String),
    /// Too many exemptions.
    #[error("a repository may list at most {MAX_EXEMPTIONS} release-age exemptions")]
    TooManyExemptions,
}

/// What the policy says of one piece of content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseVerdict {
    /// Served.
    Allowed,
    /// Held back until this time (unix seconds), when it is old enough.
    HeldUntil(i64),
    /// Published after the cut-off (unix seconds): held back while the
    /// cut-off is set.
    AfterCutoff(i64),
    /// Its publish time is unknown, and the policy fails closed.
    UnknownTime,
}

impl ReleaseVerdict {
    /// Whether the content is served.
    pub fn allowed(self) -> bool {
        self == ReleaseVerdict::Allowed
    }

    /// Why the content is held back, for a user: `what` names it (e.g.
    /// `requests-2.32.0.tar.gz`); `None` when it is allowed.
    pub fn reason(self, what: &str) -> Option<String> {
        match self {
            ReleaseVerdict::Allowed => None,
            ReleaseVerdict::HeldUntil(at) => Some(format!(
                "{what} is held back by this repository's minimum release age: it becomes available at {}",
                rfc3339(at)
            )),
            ReleaseVerdict::AfterCutoff(cutoff) => Some(format!(
                "{what} was published after this repository's release cut-off {}: it is not served while the cut-off is set",
                rfc3339(cutoff)
            )),
            ReleaseVerdict::UnknownTime => Some(format!(
                "{what} is held back by this repository's minimum release age: the upstream does not say when it was published (set --allow-unknown-release-time to serve such files)"
            )),
        }
    }

    /// The PEP 592 yank reason of a held-back file on a project page;
    /// `None` when it is allowed.
    pub fn yank_reason(self) -> Option<String> {
        match self {
            ReleaseVerdict::Allowed => None,
            ReleaseVerdict::HeldUntil(at) => Some(format!(
                "held back by the release-age rule until {}",
                rfc3339(at)
            )),
            ReleaseVerdict::AfterCutoff(cutoff) => Some(format!(
                "held back: published after the release cut-off {}",
                rfc3339(cutoff)
            )),
            ReleaseVerdict::UnknownTime => Some(
                "held back by the release-age rule: the upstream does not say when it was published"
                    .to_owned(),
            ),
        }
    }

    /// When the content becomes available, if it ever does by itself.
    pub fn available_at(self) -> Option<i64> {
        match self {
            ReleaseVerdict::HeldUntil(at) => Some(at),
            _ => None,
        }
    }
}

impl ReleaseVerdict {
    /// How strict a verdict is: a hold outlasts being served, a later
    /// availability an earlier one, and a hold that ends only with a policy
    /// change (a cut-off, an unknown time) any age.
    fn strictness(self) -> (u8, i64) {
        match self {
            ReleaseVerdict::Allowed => (0, 0),
            ReleaseVerdict::HeldUntil(at) => (1, at),
            ReleaseVerdict::AfterCutoff(_) => (2, 0),
            ReleaseVerdict::UnknownTime => (3, 0),
        }
    }

    /// The stricter of two verdicts on the same content.
    pub fn stricter(self, other: ReleaseVerdict) -> ReleaseVerdict {
        if other.strictness() > self.strictness() {
            other
        } else {
            self
        }
    }
}

/// The release-age policies that apply together to content: a remote
/// repository's own and, when the content is read through a virtual
/// repository, the virtual repository's. Content is served only if every
/// policy allows it: the stricter rule wins, and an exemption in one policy
/// does not lift the other's rule.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ReleaseAgeRules {
    policies: Vec<ReleaseAgePolicy>,
}

impl ReleaseAgeRules {
    /// The rules of these policies (those that hold nothing back are left
    /// out).
    pub fn new<'a>(policies: impl IntoIterator<Item = &'a ReleaseAgePolicy>) -> Self {
        Self {
            policies: policies
                .into_iter()
                .filter(|p| p.is_active())
                .cloned()
                .collect(),
        }
    }

    /// Whether any policy holds anything back.
    pub fn is_active(&self) -> bool {
        !self.policies.is_empty()
    }

    /// Whether `name` (or its `version`) is exempt from every policy.
    pub fn is_exempt(&self, name: &str, version: Option<&str>) -> bool {
        self.policies.iter().all(|p| p.is_exempt(name, version))
    }

    /// The strictest verdict of the policies (see
    /// [`ReleaseAgePolicy::verdict`]).
    pub fn verdict(
        &self,
        name: &str,
        version: Option<&str>,
        published: Option<i64>,
        now: i64,
    ) -> ReleaseVerdict {
        self.policies
            .iter()
            .map(|p| p.verdict(name, version, published, now))
            .fold(ReleaseVerdict::Allowed, ReleaseVerdict::stricter)
    }
}

fn rfc3339(unix: i64) -> String {
    crate::clock::rfc3339(unix)
}

/// Parse an RFC 3339 time into unix seconds.
pub fn parse_time(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// A PEP 503 normalised name: lower case, runs of `-`, `_`, `.` as one `-`.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
        } else {
            if separator && !out.is_empty() {
                out.push('-');
            }
            separator = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// One exemption, parsed: a name (normalised) and maybe a version.
fn parse_exemption(entry: &str) -> Result<(String, Option<String>), ReleaseAgeError> {
    let bad = || ReleaseAgeError::Exemption(entry.to_owned());
    let (name, version) = match entry.split_once("==") {
        Some((n, v)) => (n, Some(v.trim())),
        None => (entry, None),
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 200
            && s.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '+' | '!')
            })
    };
    let name = name.trim();
    if !valid(name) || version.is_some_and(|v| !valid(v)) {
        return Err(bad());
    }
    Ok((normalize(name), version.map(str::to_ascii_lowercase)))
}

impl ReleaseAgePolicy {
    /// Whether nothing is held back and nothing is configured.
    pub fn is_off(&self) -> bool {
        *self == ReleaseAgePolicy::default()
    }

    /// Whether the policy holds anything back.
    pub fn is_active(&self) -> bool {
        self.min_release_age_secs.is_some_and(|s| s > 0) || self.release_cutoff_time.is_some()
    }

    /// Check the settings.
    pub fn validate(&self) -> Result<(), ReleaseAgeError> {
        if self
            .min_release_age_secs
            .is_some_and(|s| s > MAX_MIN_RELEASE_AGE_SECS)
        {
            return Err(ReleaseAgeError::TooLong);
        }
        if let Some(t) = &self.release_cutoff_time {
            parse_time(t).ok_or_else(|| ReleaseAgeError::Cutoff(t.clone()))?;
        }
        if self.exemptions.len() > MAX_EXEMPTIONS {
            return Err(ReleaseAgeError::TooManyExemptions);
        }
        for e in &self.exemptions {
            parse_exemption(e)?;
        }
        Ok(())
    }

    /// Whether `name` (any release of it, or `version` of it) is exempt.
    pub fn is_exempt(&self, name: &str, version: Option<&str>) -> bool {
        if self.exemptions.is_empty() {
            return false;
        }
        let name = normalize(name);
        let version = version.map(str::to_ascii_lowercase);
        self.exemptions.iter().any(|e| match parse_exemption(e) {
            Ok((n, None)) => n == name,
            Ok((n, Some(v))) => n == name && version.as_deref() == Some(v.as_str()),
            Err(_) => false,
        })
    }

    /// The verdict on content of `name` (`version` if known) published at
    /// `published` (unix seconds; `None` if unknown), at `now`.
    pub fn verdict(
        &self,
        name: &str,
        version: Option<&str>,
        published: Option<i64>,
        now: i64,
    ) -> ReleaseVerdict {
        if !self.is_active() || self.is_exempt(name, version) {
            return ReleaseVerdict::Allowed;
        }
        let Some(published) = published else {
            return if self.allow_unknown_release_time {
                ReleaseVerdict::Allowed
            } else {
                ReleaseVerdict::UnknownTime
            };
        };
        if let Some(cutoff) = self.release_cutoff_time.as_deref().and_then(parse_time) {
            if published > cutoff {
                return ReleaseVerdict::AfterCutoff(cutoff);
            }
        }
        if let Some(age) = self.min_release_age_secs.filter(|s| *s > 0) {
            let at = published.saturating_add(i64::try_from(age).unwrap_or(i64::MAX));
            if at > now {
                return ReleaseVerdict::HeldUntil(at);
            }
        }
        ReleaseVerdict::Allowed
    }
}

/// A change of a repository's release-age settings, as a client sends it:
/// each given field replaces the repository's.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseAgeUpdate {
    /// New minimum age in seconds; 0 removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_release_age_secs: Option<u64>,
    /// New cut-off (RFC 3339); empty removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_cutoff_time: Option<String>,
    /// Serve content whose publish time is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_unknown_release_time: Option<bool>,
    /// Exemptions to add.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_exemptions: Vec<String>,
    /// Exemptions to remove (as written when added).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_exemptions: Vec<String>,
}

impl ReleaseAgeUpdate {
    /// The update that sets a policy from nothing (for auditing a new
    /// repository's settings).
    pub fn setting(policy: &ReleaseAgePolicy) -> Self {
        Self {
            min_release_age_secs: policy.min_release_age_secs,
            release_cutoff_time: policy.release_cutoff_time.clone(),
            allow_unknown_release_time: policy.allow_unknown_release_time.then_some(true),
            add_exemptions: policy.exemptions.clone(),
            remove_exemptions: Vec::new(),
        }
    }

    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == ReleaseAgeUpdate::default()
    }

    /// Apply the update to `policy`, then check the result; the changes
    /// made, one line each, for the audit log.
    pub fn apply(&self, policy: &mut ReleaseAgePolicy) -> Result<Vec<String>, ReleaseAgeError> {
        let mut changes = Vec::new();
        if let Some(secs) = self.min_release_age_secs {
            let new = Some(secs).filter(|s| *s > 0);
            if new != policy.min_release_age_secs {
                changes.push(format!(
                    "minReleaseAgeSecs: {:?} -> {new:?}",
                    policy.min_release_age_secs
                ));
                policy.min_release_age_secs = new;
            }
        }
        if let Some(t) = &self.release_cutoff_time {
            let new = Some(t.trim().to_owned()).filter(|t| !t.is_empty());
            if new != policy.release_cutoff_time {
                changes.push(format!(
                    "releaseCutoffTime: {:?} -> {new:?}",
                    policy.release_cutoff_time
                ));
                policy.release_cutoff_time = new;
            }
        }
        if let Some(allow) = self.allow_unknown_release_time {
            if allow != policy.allow_unknown_release_time {
                changes.push(format!("allowUnknownReleaseTime: {allow}"));
                policy.allow_unknown_release_time = allow;
            }
        }
        for e in &self.remove_exemptions {
            let before = policy.exemptions.len();
            policy.exemptions.retain(|x| x.trim() != e.trim());
            if policy.exemptions.len() != before {
                changes.push(format!("exemption removed: {}", e.trim()));
            }
        }
        for e in &self.add_exemptions {
            parse_exemption(e)?;
            let e = e.trim().to_owned();
            if !policy.exemptions.contains(&e) {
                changes.push(format!("exemption added: {e}"));
                policy.exemptions.push(e);
            }
        }
        policy.validate()?;
        Ok(changes)
    }
}

/// Parse `7d`, `12h`, `30m`, `90s` or `600` (seconds) into seconds.
pub fn parse_age(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not an age such as 7d, 12h or 30m"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{s:?} has an unknown unit; use s, m, h, d or w")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("{s:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    fn week() -> ReleaseAgePolicy {
        ReleaseAgePolicy {
            min_release_age_secs: Some(7 * 86_400),
            ..Default::default()
        }
    }

    #[test]
    fn content_younger_than_the_minimum_age_is_held_until_it_is_old_enough() {
        let p = week();
        assert_eq!(
            p.verdict("a", Some("1"), Some(NOW - 8 * DAY), NOW),
            ReleaseVerdict::Allowed
        );
        assert_eq!(
            p.verdict("a", Some("2"), Some(NOW - DAY), NOW),
            ReleaseVerdict::HeldUntil(NOW + 6 * DAY)
        );
        assert_eq!(
            p.verdict("a", Some("2"), Some(NOW - DAY), NOW + 6 * DAY),
            ReleaseVerdict::Allowed
        );
    }

    #[test]
    fn of_two_policies_the_stricter_rule_wins_and_exemptions_lift_only_their_own() {
        let member = ReleaseAgePolicy {
            min_release_age_secs: Some(2 * 86_400),
            exemptions: vec!["a==2".into()],
            ..Default::default()
        };
        let virtual_repo = week();
        let rules = ReleaseAgeRules::new([&member, &virtual_repo]);
        assert!(rules.is_active());
        // Three days old: old enough for the member, not for the virtual
        // repository.
        assert_eq!(
            rules.verdict("a", Some("1"), Some(NOW - 3 * DAY), NOW),
            ReleaseVerdict::HeldUntil(NOW + 4 * DAY)
        );
        // The member's exemption does not lift the virtual repository's rule.
        assert_eq!(
            rules.verdict("a", Some("2"), Some(NOW - DAY), NOW),
            ReleaseVerdict::HeldUntil(NOW + 6 * DAY)
        );
        assert!(!rules.is_exempt("a", Some("2")));
        assert!(rules
            .verdict("a", Some("1"), Some(NOW - 8 * DAY), NOW)
            .allowed());
        // A cut-off outlasts any age; an unknown time fails closed if either
        // policy does.
        let cutoff = ReleaseAgePolicy {
            release_cutoff_time: Some("2020-01-01T00:00:00Z".into()),
            allow_unknown_release_time: true,
            ..Default::default()
        };
        let rules = ReleaseAgeRules::new([&cutoff, &virtual_repo]);
        assert!(matches!(
            rules.verdict("a", None, Some(NOW - DAY), NOW),
            ReleaseVerdict::AfterCutoff(_)
        ));
        assert_eq!(
            rules.verdict("a", None, None, NOW),
            ReleaseVerdict::UnknownTime
        );
        assert!(!ReleaseAgeRules::new([&ReleaseAgePolicy::default()]).is_active());
    }

    #[test]
    fn an_unknown_time_fails_closed_unless_the_repository_fails_open() {
        let mut p = week();
        assert_eq!(p.verdict("a", None, None, NOW), ReleaseVerdict::UnknownTime);
        p.allow_unknown_release_time = true;
        assert!(p.verdict("a", None, None, NOW).allowed());
        // Without a rule nothing is held back, known time or not.
        assert!(ReleaseAgePolicy::default()
            .verdict("a", None, None, NOW)
            .allowed());
    }

    #[test]
    fn a_cut_off_holds_back_everything_published_after_it() {
        let p = ReleaseAgePolicy {
            release_cutoff_time: Some("2026-11-20T00:00:00Z".into()),
            ..Default::default()
        };
        let cutoff = parse_time("2026-11-20T00:00:00Z").unwrap();
        assert!(p.verdict("a", None, Some(cutoff), NOW).allowed());
        assert_eq!(
            p.verdict("a", None, Some(cutoff + 1), NOW),
            ReleaseVerdict::AfterCutoff(cutoff)
        );
        assert!(p
            .verdict("a", None, Some(cutoff + 1), NOW)
            .reason("a-1.0.tar.gz")
            .unwrap()
            .contains("cut-off 2026-11-20T00:00:00Z"));
    }

    #[test]
    fn exemptions_name_a_project_or_one_release() {
        let mut p = week();
        p.exemptions = vec!["Acme_Tools==2.0".into(), "urgent".into()];
        assert!(p
            .verdict("acme-tools", Some("2.0"), Some(NOW), NOW)
            .allowed());
        assert!(!p
            .verdict("acme-tools", Some("2.1"), Some(NOW), NOW)
            .allowed());
        assert!(p.verdict("URGENT", Some("9"), Some(NOW), NOW).allowed());
        assert!(p.validate().is_ok());
        p.exemptions.push("bad name".into());
        assert!(matches!(p.validate(), Err(ReleaseAgeError::Exemption(_))));
    }

    #[test]
    fn updates_say_what_they_changed_and_are_validated() {
        let mut p = ReleaseAgePolicy::default();
        let changes = ReleaseAgeUpdate {
            min_release_age_secs: Some(7 * 86_400),
            add_exemptions: vec!["acme==1.0".into()],
            ..Default::default()
        }
        .apply(&mut p)
        .unwrap();
        assert_eq!(changes.len(), 2);
        assert!(p.is_active());
        let changes = ReleaseAgeUpdate {
            min_release_age_secs: Some(0),
            remove_exemptions: vec!["acme==1.0".into()],
            ..Default::default()
        }
        .apply(&mut p)
        .unwrap();
        assert_eq!(changes.len(), 2);
        assert!(p.is_off());
        assert!(ReleaseAgeUpdate {
            release_cutoff_time: Some("yesterday".into()),
            ..Default::default()
        }
        .apply(&mut p)
        .is_err());
    }

    #[test]
    fn ages() {
        assert_eq!(parse_age("7d"), Ok(7 * 86_400));
        assert_eq!(parse_age("12h"), Ok(12 * 3600));
        assert_eq!(parse_age("90"), Ok(90));
        assert_eq!(parse_age("2w"), Ok(14 * 86_400));
        assert!(parse_age("soon").is_err());
        assert!(parse_age("7y").is_err());
    }
}
