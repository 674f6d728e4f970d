//! The minimum release age flags of `entrepot repositories create/update`.

use serde_json::{json, Value};

/// Hold back upstream content newer than an age or after a cut-off time
/// (remote repositories).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReleaseAgeArgs {
    /// Hold back upstream content published less than this long ago
    /// (e.g. 7d, 12h; 0 removes the rule).
    #[arg(long, value_parser = entrepot_domain::cooldown::parse_age)]
    min_release_age: Option<u64>,
    /// Hold back everything published after this RFC 3339 time, e.g.
    /// 2026-11-20T00:00:00Z (incident response; "" removes it).
    #[arg(long)]
    release_cutoff: Option<String>,
    /// Serve content whose publish time the upstream does not give (by
    /// default it is held back); true or false.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    allow_unknown_release_time: Option<bool>,
    /// Exempt a project (NAME) or one release (NAME==VERSION) from the
    /// release age; repeatable; audited.
    #[arg(long = "release-age-exempt")]
    exempt: Vec<String>,
    /// Remove an exemption (as it was added); repeatable.
    #[arg(long = "remove-release-age-exempt")]
    remove_exempt: Vec<String>,
}

impl ReleaseAgeArgs {
    /// The `releaseAge` of a new repository's `remoteRepositoryConfig`, if
    /// any flag was given.
    pub fn policy(&self) -> Option<Value> {
        let mut policy = json!({});
        if let Some(secs) = self.min_release_age.filter(|s| *s > 0) {
            policy["minReleaseAgeSecs"] = secs.into();
        }
        if let Some(cutoff) = self.release_cutoff.as_deref().filter(|c| !c.is_empty()) {
            policy["releaseCutoffTime"] = cutoff.into();
        }
        if self.allow_unknown_release_time == Some(true) {
            policy["allowUnknownReleaseTime"] = true.into();
        }
        if !self.exempt.is_empty() {
            policy["exemptions"] = self.exempt.clone().into();
        }
        (policy != json!({})).then_some(policy)
    }

    /// The `releaseAge` change of an update, if any flag was given.
    pub fn update(&self) -> Option<Value> {
        let mut update = json!({});
        if let Some(secs) = self.min_release_age {
            update["minReleaseAgeSecs"] = secs.into();
        }
        if let Some(cutoff) = &self.release_cutoff {
            update["releaseCutoffTime"] = cutoff.clone().into();
        }
        if let Some(allow) = self.allow_unknown_release_time {
            update["allowUnknownReleaseTime"] = allow.into();
        }
        if !self.exempt.is_empty() {
            update["addExemptions"] = self.exempt.clone().into();
        }
        if !self.remove_exempt.is_empty() {
            update["removeExemptions"] = self.remove_exempt.clone().into();
        }
        (update != json!({})).then_some(update)
    }
}
