//! The minimum release age of remote Python repositories: files whose
//! upstream upload time (PEP 700 `upload-time`, read from the upstream's
//! JSON page) is too recent, or after the cut-off, are left out of project
//! pages, and a direct download of one is refused with the time it becomes
//! available. The rules are [`ReleaseAgePolicy`]'s; this module applies
//! them to pages and files.
//!
//! The rules applied are [`ReleaseAgeRules`]: a remote repository's own
//! policy and, for a page or file read through a virtual repository, the
//! virtual repository's too (the stricter rule wins).

use std::collections::HashSet;

use entrepot_domain::cooldown::{ReleaseAgeRules, ReleaseVerdict};

use super::dist::version_of;
use super::index::{IndexFile, ProjectPage};

/// The verdict on one file of a project page.
pub fn file_verdict(
    policy: &ReleaseAgeRules,
    project: &str,
    file: &IndexFile,
    now: i64,
) -> ReleaseVerdict {
    policy.verdict(
        project,
        version_of(&file.filename),
        file.upload_time.map(|t| t.unix_timestamp()),
        now,
    )
}

/// A project page held back by `policy` at `now`.
#[derive(Debug)]
pub struct HeldBackPage {
    /// The page without the held-back files (and without versions all of
    /// whose files are held back); `None` if nothing is held back.
    pub page: Option<ProjectPage>,
    /// The earliest time a held-back file becomes available (unix seconds),
    /// until which this result stands; `None` if no file will by itself.
    pub changes_at: Option<i64>,
}

/// Leave out of `page` what `policy` holds back at `now`.
pub fn hold_back(policy: &ReleaseAgeRules, page: &ProjectPage, now: i64) -> HeldBackPage {
    if !policy.is_active() {
        return HeldBackPage {
            page: None,
            changes_at: None,
        };
    }
    let mut changes_at: Option<i64> = None;
    let verdicts: Vec<ReleaseVerdict> = page
        .files
        .iter()
        .map(|f| {
            let v = file_verdict(policy, &page.name, f, now);
            if let Some(at) = v.available_at() {
                changes_at = Some(changes_at.map_or(at, |c| c.min(at)));
            }
            v
        })
        .collect();
    if verdicts.iter().all(|v| v.allowed()) {
        return HeldBackPage {
            page: None,
            changes_at,
        };
    }
    let mut with_files = HashSet::new();
    let mut visible = HashSet::new();
    let mut files = Vec::with_capacity(page.files.len());
    for (f, v) in page.files.iter().zip(&verdicts) {
        let version = version_of(&f.filename);
        if let Some(version) = version {
            with_files.insert(version.to_ascii_lowercase());
        }
        if v.allowed() {
            if let Some(version) = version {
                visible.insert(version.to_ascii_lowercase());
            }
            files.push(f.clone());
        }
    }
    // A version listed without files stays listed; one whose every file is
    // held back goes, so that a resolver does not pick it.
    let versions = page
        .versions
        .iter()
        .filter(|v| {
            let v = v.to_ascii_lowercase();
            visible.contains(&v) || !with_files.contains(&v)
        })
        .cloned()
        .collect();
    HeldBackPage {
        page: Some(ProjectPage {
            name: page.name.clone(),
            files,
            versions,
            stale: page.stale,
        }),
        changes_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entrepot_domain::cooldown::ReleaseAgePolicy;
    use time::OffsetDateTime;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    fn file(name: &str, age_days: Option<i64>) -> IndexFile {
        IndexFile {
            filename: name.into(),
            upload_time: age_days
                .map(|d| OffsetDateTime::from_unix_timestamp(NOW - d * DAY).unwrap()),
            ..Default::default()
        }
    }

    fn page() -> ProjectPage {
        ProjectPage {
            name: "acme".into(),
            files: vec![
                file("acme-1.0-py3-none-any.whl", Some(30)),
                file("acme-1.0.tar.gz", Some(30)),
                file("acme-2.0-py3-none-any.whl", Some(1)),
                file("acme-2.0.tar.gz", Some(1)),
                file("acme-3.0.tar.gz", None),
            ],
            versions: vec!["1.0".into(), "2.0".into(), "3.0".into(), "4.0".into()],
            stale: false,
        }
    }

    fn week() -> ReleaseAgePolicy {
        ReleaseAgePolicy {
            min_release_age_secs: Some(7 * DAY as u64),
            ..Default::default()
        }
    }

    fn rules(policy: &ReleaseAgePolicy) -> ReleaseAgeRules {
        ReleaseAgeRules::new([policy])
    }

    #[test]
    fn young_and_undated_files_and_their_versions_leave_the_page() {
        let held = hold_back(&rules(&week()), &page(), NOW);
        let page = held.page.unwrap();
        let names: Vec<&str> = page.files.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(names, ["acme-1.0-py3-none-any.whl", "acme-1.0.tar.gz"]);
        // 4.0 has no files at all: it stays as the upstream listed it.
        assert_eq!(page.versions, ["1.0", "4.0"]);
        assert_eq!(held.changes_at, Some(NOW + 6 * DAY));
    }

    #[test]
    fn failing_open_and_exemptions_keep_files() {
        let mut policy = week();
        policy.allow_unknown_release_time = true;
        policy.exemptions = vec!["acme==2.0".into()];
        let held = hold_back(&rules(&policy), &page(), NOW);
        assert!(held.page.is_none(), "nothing is held back");
        assert_eq!(held.changes_at, None);
        assert!(
            hold_back(&rules(&ReleaseAgePolicy::default()), &page(), NOW)
                .page
                .is_none()
        );
    }
}
