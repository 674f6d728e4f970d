//! What `repositories refresh` reports: for each mutable document it asked
//! the upstream about (a tag, the files of an index page), what the cache
//! held before and holds now.

use std::collections::{BTreeMap, BTreeSet};

/// What a refresh did to one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefreshOutcome {
    /// The upstream confirmed the cached copy.
    Unchanged,
    /// The upstream has another version; it replaced the cached copy.
    Updated,
    /// Nothing was cached; the upstream's version is now.
    Added,
    /// Cached, and no longer in the upstream's document (a file gone from
    /// a Python project's page); dropped from the cache.
    Removed,
    /// The upstream could not be asked or did not answer it; the cached copy
    /// (if any) is kept.
    Failed,
}

/// One document a refresh asked the upstream about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refreshed {
    /// What it is, as the user names it (`app:1.0`, a Python project).
    pub name: String,
    /// The digest of the cached copy before, if there was one.
    pub before: Option<String>,
    /// The digest of the cached copy now, if there is one.
    pub after: Option<String>,
    /// What happened.
    pub outcome: RefreshOutcome,
    /// Why it failed, for [`RefreshOutcome::Failed`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a refresh did to one version of a Python project.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionRefreshed {
    /// The version, as the file names give it.
    pub version: String,
    /// What happened to its files as a whole.
    pub outcome: RefreshOutcome,
}

/// The result of `repositories refresh`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshReport {
    /// The repository's resource name.
    pub repository: String,
    /// Each document asked about, in order (for a Python project, each
    /// file of its page, then the files it no longer lists).
    pub refreshed: Vec<Refreshed>,
    /// For a Python project, what happened to each version: a version is
    /// added or removed with all its files, unchanged when its files are,
    /// updated otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<VersionRefreshed>,
    /// More documents matched than one refresh asks about; the rest were
    /// left to their freshness window.
    pub truncated: bool,
}

impl Refreshed {
    /// The outcome of asking about `name`, cached as `before`, now `after`.
    pub fn of(name: String, before: Option<String>, after: Option<String>) -> Self {
        let outcome = match (&before, &after) {
            (None, _) => RefreshOutcome::Added,
            (b, a) if b == a => RefreshOutcome::Unchanged,
            _ => RefreshOutcome::Updated,
        };
        Self {
            name,
            before,
            after,
            outcome,
            error: None,
        }
    }

    /// Asking about `name`, cached as `before`, failed with `error`.
    pub fn failed(name: String, before: Option<String>, error: String) -> Self {
        Self {
            name,
            after: before.clone(),
            before,
            outcome: RefreshOutcome::Failed,
            error: Some(error),
        }
    }
}

/// One file of a page as [`diff_files`] compares it: its name, its
/// version (when the name gives one), its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// The file name.
    pub name: String,
    /// Its version.
    pub version: Option<String>,
    /// Its digest (`sha256:...`).
    pub digest: String,
}

/// What changed between the files a page listed `before` and lists
/// `after`: one entry per file (the files of `after` in its order, then
/// those only `before` listed), and one per version in the same order.
pub fn diff_files(
    before: &[ListedFile],
    after: &[ListedFile],
) -> (Vec<Refreshed>, Vec<VersionRefreshed>) {
    let old: BTreeMap<&str, &ListedFile> = before.iter().map(|f| (f.name.as_str(), f)).collect();
    let new: BTreeSet<&str> = after.iter().map(|f| f.name.as_str()).collect();
    let mut files = Vec::with_capacity(after.len());
    for f in after {
        let was = old.get(f.name.as_str()).map(|b| b.digest.clone());
        files.push(Refreshed::of(f.name.clone(), was, Some(f.digest.clone())));
    }
    for f in before.iter().filter(|f| !new.contains(f.name.as_str())) {
        files.push(Refreshed {
            name: f.name.clone(),
            before: Some(f.digest.clone()),
            after: None,
            outcome: RefreshOutcome::Removed,
            error: None,
        });
    }
    // Each version's outcome, from the outcomes of its files.
    let version_of: BTreeMap<&str, &str> = before
        .iter()
        .chain(after)
        .filter_map(|f| f.version.as_deref().map(|v| (f.name.as_str(), v)))
        .collect();
    let mut versions: Vec<VersionRefreshed> = Vec::new();
    for file in &files {
        let Some(version) = version_of.get(file.name.as_str()) else {
            continue;
        };
        match versions.iter_mut().find(|v| v.version == *version) {
            None => versions.push(VersionRefreshed {
                version: (*version).to_owned(),
                outcome: file.outcome,
            }),
            Some(v) if v.outcome != file.outcome => v.outcome = RefreshOutcome::Updated,
            Some(_) => {}
        }
    }
    (files, versions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, version: &str, digest: &str) -> ListedFile {
        ListedFile {
            name: name.into(),
            version: Some(version.into()),
            digest: digest.into(),
        }
    }

    #[test]
    fn files_and_versions_added_removed_and_unchanged_are_told_apart() {
        let before = [
            file("a-1.0.tar.gz", "1.0", "sha256:10"),
            file("a-1.1.tar.gz", "1.1", "sha256:11"),
            file("a-1.1-py3-none-any.whl", "1.1", "sha256:1w"),
            file("a-0.9.tar.gz", "0.9", "sha256:09"),
        ];
        let after = [
            file("a-1.0.tar.gz", "1.0", "sha256:10"),
            file("a-1.1.tar.gz", "1.1", "sha256:11"),
            file("a-2.0.tar.gz", "2.0", "sha256:20"),
        ];
        let (files, versions) = diff_files(&before, &after);
        let outcomes: Vec<(&str, RefreshOutcome)> =
            files.iter().map(|f| (f.name.as_str(), f.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                ("a-1.0.tar.gz", RefreshOutcome::Unchanged),
                ("a-1.1.tar.gz", RefreshOutcome::Unchanged),
                ("a-2.0.tar.gz", RefreshOutcome::Added),
                ("a-1.1-py3-none-any.whl", RefreshOutcome::Removed),
                ("a-0.9.tar.gz", RefreshOutcome::Removed),
            ]
        );
        assert_eq!(files[3].after, None);
        let versions: Vec<(&str, RefreshOutcome)> = versions
            .iter()
            .map(|v| (v.version.as_str(), v.outcome))
            .collect();
        assert_eq!(
            versions,
            [
                ("1.0", RefreshOutcome::Unchanged),
                ("1.1", RefreshOutcome::Updated),
                ("2.0", RefreshOutcome::Added),
                ("0.9", RefreshOutcome::Removed),
            ]
        );
    }

    #[test]
    fn a_file_whose_digest_changed_is_updated() {
        let (files, versions) = diff_files(
            &[file("a-1.0.tar.gz", "1.0", "sha256:aa")],
            &[file("a-1.0.tar.gz", "1.0", "sha256:bb")],
        );
        assert_eq!(files[0].outcome, RefreshOutcome::Updated);
        assert_eq!(files[0].before.as_deref(), Some("sha256:aa"));
        assert_eq!(versions[0].outcome, RefreshOutcome::Updated);
    }
}
