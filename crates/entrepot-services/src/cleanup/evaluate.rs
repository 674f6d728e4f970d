//! Which versions a repository's cleanup policies delete: a pure function
//! of the policies, the versions and the time.
//!
//! Artifact Registry's rules: a version is deleted when a `DELETE` policy
//! matches it and no `KEEP` policy does (conditional, or among the most
//! recent versions of its package); with no `DELETE` policy nothing is.
//! Beyond them: a version that a kept version references (an index's
//! manifests) is kept too, so a kept index always pulls; and the versions
//! to delete come parents first, so deleting them one by one never leaves an
//! index naming a deleted manifest.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use entrepot_domain::cleanup::{CleanupAction, CleanupPolicy, Selector};

/// One version as the policies see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The package: an image, a Python project (normalised).
    pub package: String,
    /// The version: a manifest digest, a Python version.
    pub version: String,
    /// Its tags (none for Python versions).
    pub tags: Vec<String>,
    /// When it was uploaded (unix seconds).
    pub upload_time: i64,
    /// Versions of the same package it references (an index's manifests).
    pub children: Vec<String>,
}

/// A version to delete, and the policy that deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Its place in the candidates given.
    pub index: usize,
    /// The first `DELETE` policy that matched it.
    pub policy: String,
}

/// The versions to delete, in the order to delete them (a version before
/// those it references).
pub fn evaluate(policies: &[CleanupPolicy], candidates: &[Candidate], now: i64) -> Vec<Selected> {
    let mut deleted_by: Vec<Option<&str>> = vec![None; candidates.len()];
    let mut kept = vec![false; candidates.len()];
    for (i, c) in candidates.iter().enumerate() {
        let age = now.saturating_sub(c.upload_time);
        for policy in policies {
            let Selector::Condition(condition) = &policy.selector else {
                continue;
            };
            if !condition.matches(&c.package, &c.version, &c.tags, age) {
                continue;
            }
            match policy.action {
                CleanupAction::Keep => kept[i] = true,
                CleanupAction::Delete => {
                    deleted_by[i].get_or_insert(policy.name.as_str());
                }
            }
        }
    }
    keep_most_recent(policies, candidates, &mut kept);

    let by_name: HashMap<(&str, &str), usize> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.package.as_str(), c.version.as_str()), i))
        .collect();
    let children = |i: usize| {
        let c = &candidates[i];
        c.children
            .iter()
            .filter_map(|v| by_name.get(&(c.package.as_str(), v.as_str())).copied())
            .collect::<Vec<_>>()
    };
    // What a kept version references is kept, transitively.
    let doomed = |i: usize, kept: &[bool]| deleted_by[i].is_some() && !kept[i];
    let mut work: Vec<usize> = (0..candidates.len())
        .filter(|&i| !doomed(i, &kept))
        .collect();
    let mut protected = kept.clone();
    for &i in &work {
        protected[i] = true;
    }
    while let Some(i) = work.pop() {
        for child in children(i) {
            if !protected[child] {
                protected[child] = true;
                work.push(child);
            }
        }
    }
    let selected: BTreeSet<usize> = (0..candidates.len())
        .filter(|&i| deleted_by[i].is_some() && !protected[i])
        .collect();

    // Parents first: a version goes once no version still to be deleted
    // references it.
    let mut parents: BTreeMap<usize, usize> = selected.iter().map(|&i| (i, 0)).collect();
    for &i in &selected {
        for child in children(i) {
            if let Some(n) = parents.get_mut(&child) {
                *n += 1;
            }
        }
    }
    let mut ready: Vec<usize> = parents
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(i, _)| *i)
        .rev()
        .collect();
    let mut order = Vec::with_capacity(selected.len());
    while let Some(i) = ready.pop() {
        order.push(i);
        for child in children(i) {
            if let Some(n) = parents.get_mut(&child) {
                *n -= 1;
                if *n == 0 {
                    ready.push(child);
                }
            }
        }
    }
    // A reference cycle (not possible with digests) would leave some out:
    // they are then not deleted, which is the safe side.
    order
        .into_iter()
        .map(|index| Selected {
            index,
            policy: deleted_by[index].unwrap_or_default().to_owned(),
        })
        .collect()
}

/// Mark the `keepCount` most recent versions of each package a
/// `mostRecentVersions` policy applies to as kept.
fn keep_most_recent(policies: &[CleanupPolicy], candidates: &[Candidate], kept: &mut [bool]) {
    for policy in policies {
        let Selector::MostRecent(recent) = &policy.selector else {
            continue;
        };
        let mut by_package: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, c) in candidates.iter().enumerate() {
            if recent.applies_to(&c.package) {
                by_package.entry(c.package.as_str()).or_default().push(i);
            }
        }
        for versions in by_package.values_mut() {
            // Newest first; the same time is ordered by version, highest first.
            versions.sort_by(|&a, &b| {
                let (a, b) = (&candidates[a], &candidates[b]);
                b.upload_time
                    .cmp(&a.upload_time)
                    .then_with(|| b.version.cmp(&a.version))
            });
            for &i in versions.iter().take(recent.keep_count as usize) {
                kept[i] = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entrepot_domain::cleanup::parse_policies;

    fn version(package: &str, version: &str, tags: &[&str], upload_time: i64) -> Candidate {
        Candidate {
            package: package.into(),
            version: version.into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            upload_time,
            children: Vec::new(),
        }
    }

    fn names(candidates: &[Candidate], selected: &[Selected]) -> Vec<String> {
        selected
            .iter()
            .map(|s| {
                let c = &candidates[s.index];
                format!("{}@{}", c.package, c.version)
            })
            .collect()
    }

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_000 * DAY;

    #[test]
    fn keep_wins_over_delete_and_nothing_goes_without_a_delete_policy() {
        let candidates = vec![
            version("app", "a", &["release-1"], NOW - 40 * DAY),
            version("app", "b", &["dev-1"], NOW - 40 * DAY),
            version("app", "c", &[], NOW - 40 * DAY),
            version("app", "d", &[], NOW - DAY),
        ];
        let policies = parse_policies(
            br#"[{"name": "old", "action": {"type": "Delete"}, "condition": {"olderThan": "30d"}},
                 {"name": "releases", "action": {"type": "Keep"},
                  "condition": {"tagState": "tagged", "tagPrefixes": ["release"]}}]"#,
        )
        .unwrap();
        let selected = evaluate(&policies, &candidates, NOW);
        assert_eq!(names(&candidates, &selected), ["app@b", "app@c"]);
        assert!(selected.iter().all(|s| s.policy == "old"));
        let keep_only = parse_policies(
            br#"[{"name": "k", "action": "KEEP", "condition": {"tagState": "any"}}]"#,
        )
        .unwrap();
        assert!(evaluate(&keep_only, &candidates, NOW).is_empty());
    }

    #[test]
    fn most_recent_versions_keeps_n_of_each_package() {
        let mut candidates = Vec::new();
        for i in 0..5 {
            candidates.push(version("web", &format!("1.{i}"), &[], NOW - (10 - i) * DAY));
            candidates.push(version("api", &format!("2.{i}"), &[], NOW - (10 - i) * DAY));
        }
        let policies = parse_policies(
            br#"[{"name": "all", "action": "DELETE", "condition": {"tagState": "any"}},
                 {"name": "recent", "action": "KEEP",
                  "mostRecentVersions": {"packageNamePrefixes": ["we"], "keepCount": 2}}]"#,
        )
        .unwrap();
        let mut gone = names(&candidates, &evaluate(&policies, &candidates, NOW));
        gone.sort();
        assert_eq!(
            gone,
            [
                "api@2.0", "api@2.1", "api@2.2", "api@2.3", "api@2.4", "web@1.0", "web@1.1",
                "web@1.2"
            ]
        );
    }

    #[test]
    fn a_kept_index_keeps_its_children_and_a_deleted_one_goes_first() {
        let mut index = version("app", "idx", &["v1"], NOW - 40 * DAY);
        index.children = vec!["amd64".into(), "arm64".into()];
        let mut old_index = version("app", "old-idx", &[], NOW - 40 * DAY);
        old_index.children = vec!["old-amd64".into()];
        let candidates = vec![
            version("app", "amd64", &[], NOW - 40 * DAY),
            version("app", "arm64", &[], NOW - 40 * DAY),
            index,
            version("app", "old-amd64", &[], NOW - 40 * DAY),
            old_index,
            // Same version name in another package: not a child.
            version("other", "amd64", &[], NOW - 40 * DAY),
        ];
        let policies = parse_policies(
            br#"[{"name": "untagged", "action": "DELETE", "condition": {"tagState": "untagged"}}]"#,
        )
        .unwrap();
        let selected = evaluate(&policies, &candidates, NOW);
        assert_eq!(
            names(&candidates, &selected),
            ["app@old-idx", "app@old-amd64", "other@amd64"]
        );
    }
}
