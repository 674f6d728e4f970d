//! The minimum release age of remote Python repositories: files whose
//! upstream upload time (PEP 700 `upload-time`, read from the upstream's
//! JSON page) is too recent, or after the cut-off, are listed as yanked on
//! project pages (PEP 592, the reason saying until when), and a download
//! of one is refused with the time it becomes available. The rules are [`ReleaseAgePolicy`]'s; this module applies
//! them to pages and files.
//!
//! The rules applied are [`ReleaseAgeRules`]: a remote repository's own
//! policy and, for a page or file read through a virtual repository, the
//! virtual repository's too (the stricter rule wins).

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
    /// The page with every held-back file marked yanked (PEP 592), the
    /// reason saying until when; `None` if nothing is held back.
    pub page: Option<ProjectPage>,
    /// The earliest time a held-back file becomes available (unix seconds),
    /// until which this result stands; `None` if no file will by itself.
    pub changes_at: Option<i64>,
}

/// Mark yanked in `page` what `policy` holds back at `now`.
///
/// Yanked rather than left out: resolvers (pip, uv) skip a yanked file
/// unless the requirement pins its version exactly (PEP 592), so `pip
/// install acme` picks the newest release old enough, while `pip install
/// acme==3.0` of a held-back release picks the file, is refused its
/// download with the reason and the time it becomes available (403), and
/// prints both, instead of "no matching distribution". A file the upstream
/// yanked keeps the upstream's reason; its download is refused all the
/// same.
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
    let files = page
        .files
        .iter()
        .zip(&verdicts)
        .map(|(f, v)| {
            let mut file = f.clone();
            if file.yanked.is_none() {
                file.yanked = v.yank_reason();
            }
            file
        })
        .collect();
    HeldBackPage {
        page: Some(ProjectPage {
            name: page.name.clone(),
            files,
            versions: page.versions.clone(),
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
    fn young_and_undated_files_are_yanked_with_the_reason() {
        let held = hold_back(&rules(&week()), &page(), NOW);
        let page = held.page.unwrap();
        let yanked: Vec<(&str, Option<&str>)> = page
            .files
            .iter()
            .map(|f| (f.filename.as_str(), f.yanked.as_deref()))
            .collect();
        let until = format!(
            "held back by the release-age rule until {}",
            crate::clock::rfc3339(NOW + 6 * DAY)
        );
        assert_eq!(
            yanked,
            [
                ("acme-1.0-py3-none-any.whl", None),
                ("acme-1.0.tar.gz", None),
                ("acme-2.0-py3-none-any.whl", Some(until.as_str())),
                ("acme-2.0.tar.gz", Some(until.as_str())),
                (
                    "acme-3.0.tar.gz",
                    Some("held back by the release-age rule: the upstream does not say when it was published")
                ),
            ]
        );
        // Every version stays listed, as PEP 700 lists yanked ones.
        assert_eq!(page.versions, ["1.0", "2.0", "3.0", "4.0"]);
        assert_eq!(held.changes_at, Some(NOW + 6 * DAY));
    }

    #[test]
    fn an_upstream_yank_keeps_its_reason() {
        let mut upstream = page();
        upstream.files[2].yanked = Some("broken build".into());
        let page = hold_back(&rules(&week()), &upstream, NOW).page.unwrap();
        assert_eq!(page.files[2].yanked.as_deref(), Some("broken build"));
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
