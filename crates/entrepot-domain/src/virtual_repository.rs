//! The settings of a virtual repository: an ordered list of member
//! repositories of one format in one project, in Artifact Registry's shape
//! (`virtualRepositoryConfig.upstreamPolicies`), and entrepot's guard
//! against dependency confusion (`allowRemoteShadowing`).
//!
//! Pure: the rules that need no storage (shape, distinct ids, names that
//! parse, one project) are checked here; the ones that need the members
//! themselves (they exist, same format, not virtual) are the repository
//! service's.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::cooldown::{ReleaseAgeError, ReleaseAgePolicy};
use crate::repository::RepositoryName;

/// The most members one virtual repository may have (Artifact Registry's
/// limit is 20 as well): each request to the virtual repository may ask
/// every member.
pub const MAX_VIRTUAL_MEMBERS: usize = 20;

/// The most project names `allowRemoteShadowing` may hold.
pub const MAX_SHADOWING_NAMES: usize = 1000;

/// One member of a virtual repository.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamPolicy {
    /// The member's id within the virtual repository (free text, unique).
    pub id: String,
    /// The member, `projects/P/repositories/R` (the `locations/L/` form
    /// Artifact Registry writes is accepted and stored without it).
    pub repository: String,
    /// Members with a greater priority are asked first (as in Artifact
    /// Registry); members of equal priority in list order.
    #[serde(default)]
    pub priority: i64,
}

/// Settings of a virtual repository.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualConfig {
    /// The members.
    #[serde(default)]
    pub upstream_policies: Vec<UpstreamPolicy>,
    /// Entrepot's extension: Python project names (normalised) that remote
    /// members may serve even though a standard member has a project of
    /// that name. Empty by default: a name that exists in a standard member
    /// is served from standard members only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_remote_shadowing: Vec<String>,
    /// Entrepot's extension: a minimum release age for what the remote
    /// members serve through this repository, applied on top of each
    /// member's own (the stricter rule wins). Off by default.
    #[serde(default, skip_serializing_if = "ReleaseAgePolicy::is_off")]
    pub release_age: ReleaseAgePolicy,
}

/// Why a virtual repository's settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VirtualConfigError {
    /// No member.
    #[error("a virtual repository needs at least one upstream policy (a member repository); pass --upstream-policy-file")]
    NoMembers,
    /// Too many members.
    #[error("a virtual repository may have at most {MAX_VIRTUAL_MEMBERS} members, not {0}")]
    TooManyMembers(usize),
    /// Too many shadowing names.
    #[error("allowRemoteShadowing may name at most {MAX_SHADOWING_NAMES} projects, not {0}")]
    TooManyNames(usize),
    /// An id is empty or too long.
    #[error("upstream policy id {0:?} is invalid; use 1 to 63 letters, digits, '-' or '_'")]
    BadId(String),
    /// Two members share an id.
    #[error("upstream policy id {0:?} is used twice; ids must be distinct")]
    DuplicateId(String),
    /// A member is named twice.
    #[error("{0} is a member twice; name each repository once")]
    DuplicateMember(String),
    /// A member name does not parse.
    #[error("upstream policy {id:?}: {repository:?} is not a repository name; use projects/PROJECT/repositories/REPOSITORY")]
    BadRepository {
        /// The policy's id.
        id: String,
        /// The name as given.
        repository: String,
    },
    /// A member lives in another project.
    #[error("upstream policy {id:?}: {member} is in another project; the members of a virtual repository must be in its own project ({project})")]
    OtherProject {
        /// The policy's id.
        id: String,
        /// The member.
        member: String,
        /// The virtual repository's project.
        project: String,
    },
    /// The virtual repository names itself.
    #[error("upstream policy {0:?} names the virtual repository itself")]
    SelfMember(String),
    /// The release-age settings are invalid.
    #[error(transparent)]
    ReleaseAge(#[from] ReleaseAgeError),
}

/// A member name as given: `projects/P/repositories/R` or
/// `projects/P/locations/L/repositories/R`.
pub fn parse_member(name: &str) -> Option<RepositoryName> {
    let parts: Vec<&str> = name.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["projects", _, "repositories", _] => name.trim_matches('/').parse().ok(),
        ["projects", p, "locations", _, "repositories", r] => {
            format!("projects/{p}/repositories/{r}").parse().ok()
        }
        _ => None,
    }
}

fn valid_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl VirtualConfig {
    /// Check the settings of the virtual repository `owner` and put them in
    /// their stored form: member names without a location, shadowing names
    /// normalised (PEP 503), sorted and once each.
    pub fn validated(mut self, owner: &RepositoryName) -> Result<Self, VirtualConfigError> {
        if self.upstream_policies.is_empty() {
            return Err(VirtualConfigError::NoMembers);
        }
        if self.upstream_policies.len() > MAX_VIRTUAL_MEMBERS {
            return Err(VirtualConfigError::TooManyMembers(
                self.upstream_policies.len(),
            ));
        }
        self.release_age.validate()?;
        if self.allow_remote_shadowing.len() > MAX_SHADOWING_NAMES {
            return Err(VirtualConfigError::TooManyNames(
                self.allow_remote_shadowing.len(),
            ));
        }
        let (mut ids, mut members) = (HashSet::new(), HashSet::new());
        for policy in &mut self.upstream_policies {
            if !valid_id(&policy.id) {
                return Err(VirtualConfigError::BadId(policy.id.clone()));
            }
            if !ids.insert(policy.id.clone()) {
                return Err(VirtualConfigError::DuplicateId(policy.id.clone()));
            }
            let member = parse_member(&policy.repository).ok_or_else(|| {
                VirtualConfigError::BadRepository {
                    id: policy.id.clone(),
                    repository: policy.repository.clone(),
                }
            })?;
            if member.project != owner.project {
                return Err(VirtualConfigError::OtherProject {
                    id: policy.id.clone(),
                    member: member.to_string(),
                    project: owner.project.to_string(),
                });
            }
            if &member == owner {
                return Err(VirtualConfigError::SelfMember(policy.id.clone()));
            }
            if !members.insert(member.clone()) {
                return Err(VirtualConfigError::DuplicateMember(member.to_string()));
            }
            policy.repository = member.to_string();
        }
        let mut names: Vec<String> = self
            .allow_remote_shadowing
            .iter()
            .map(|n| normalize_project(n))
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names.dedup();
        self.allow_remote_shadowing = names;
        Ok(self)
    }

    /// The members in the order they are asked: greater priority first,
    /// list order among equals. Names that do not parse (never stored: see
    /// [`Self::validated`]) are left out.
    pub fn members(&self) -> Vec<RepositoryName> {
        let mut policies: Vec<&UpstreamPolicy> = self.upstream_policies.iter().collect();
        policies.sort_by_key(|p| std::cmp::Reverse(p.priority));
        policies
            .into_iter()
            .filter_map(|p| parse_member(&p.repository))
            .collect()
    }

    /// Whether remote members may serve the Python project `name` even
    /// though a standard member has it.
    pub fn allows_remote_shadowing(&self, name: &str) -> bool {
        let name = normalize_project(name);
        self.allow_remote_shadowing.contains(&name)
    }
}

/// A Python project name normalised as PEP 503 says: lower case, runs of
/// `-`, `_` and `.` as one `-`.
fn normalize_project(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> RepositoryName {
        "projects/acme/repositories/all".parse().unwrap()
    }

    fn policy(id: &str, repository: &str, priority: i64) -> UpstreamPolicy {
        UpstreamPolicy {
            id: id.into(),
            repository: repository.into(),
            priority,
        }
    }

    #[test]
    fn members_are_asked_by_descending_priority() {
        let config = VirtualConfig {
            upstream_policies: vec![
                policy("low", "projects/acme/repositories/pypi", 1),
                policy(
                    "high",
                    "projects/acme/locations/us/repositories/private",
                    10,
                ),
            ],
            allow_remote_shadowing: vec!["Acme_Tools".into(), "acme.tools".into()],
            ..Default::default()
        }
        .validated(&owner())
        .unwrap();
        let members: Vec<String> = config.members().iter().map(|m| m.to_string()).collect();
        assert_eq!(
            members,
            [
                "projects/acme/repositories/private",
                "projects/acme/repositories/pypi"
            ]
        );
        assert_eq!(config.allow_remote_shadowing, ["acme-tools"]);
        assert!(config.allows_remote_shadowing("ACME-tools"));
        assert!(!config.allows_remote_shadowing("acme"));
    }

    #[test]
    fn bad_member_lists_are_refused() {
        let check = |policies: Vec<UpstreamPolicy>| {
            VirtualConfig {
                upstream_policies: policies,
                ..Default::default()
            }
            .validated(&owner())
            .unwrap_err()
        };
        assert_eq!(check(vec![]), VirtualConfigError::NoMembers);
        assert!(matches!(
            check(vec![
                policy("a", "projects/acme/repositories/x", 1),
                policy("a", "projects/acme/repositories/y", 2)
            ]),
            VirtualConfigError::DuplicateId(_)
        ));
        assert!(matches!(
            check(vec![
                policy("a", "projects/acme/repositories/x", 1),
                policy("b", "projects/acme/locations/l/repositories/x", 2)
            ]),
            VirtualConfigError::DuplicateMember(_)
        ));
        assert!(matches!(
            check(vec![policy("a", "projects/other/repositories/x", 1)]),
            VirtualConfigError::OtherProject { .. }
        ));
        assert!(matches!(
            check(vec![policy("a", "projects/acme/repositories/all", 1)]),
            VirtualConfigError::SelfMember(_)
        ));
        assert!(matches!(
            check(vec![policy("a", "acme/x", 1)]),
            VirtualConfigError::BadRepository { .. }
        ));
        assert!(matches!(
            check(vec![policy("", "projects/acme/repositories/x", 1)]),
            VirtualConfigError::BadId(_)
        ));
    }
}
