//! What a repository holds, as its page lists it: a Docker repository's
//! images with their manifests, tags, sizes, digests and last pulls, or a
//! Python repository's projects with their versions, files and last
//! downloads.
//!
//! Read through the inventory service as the signed-in user, so a reader of
//! one repository or one project sees its content without any
//! organisation-wide permission (the registry's catalog needs one), and
//! nothing here fetches a manifest: a page view is never counted as a pull.
//! Remote repositories list what their cache holds.

use entrepot_domain::clock::rfc3339_ms;
use entrepot_domain::RepositoryName;
use entrepot_services::inventory::{DockerImage, PythonCachedFile, PythonVersion};
use entrepot_services::{PageRequest, Principal};
use maud::{html, Markup};

use crate::error::ConsoleError;
use crate::ConsoleState;

/// Manifests read for one repository page (across its images).
const MAX_MANIFESTS: u32 = 200;
/// Python projects shown on one repository page, and versions per project.
const MAX_PROJECTS: u32 = 20;
const MAX_VERSIONS: u32 = 50;

/// One image name with its manifests, in digest order.
pub struct ImageGroup {
    /// The image name inside the repository (`team/app`).
    pub image: String,
    /// Its manifests.
    pub manifests: Vec<DockerImage>,
}

/// The manifests of a Docker repository (hosted, or what a remote one has
/// cached), grouped by image; `true` when there were more than listed.
pub async fn docker_images(
    state: &ConsoleState,
    principal: &Principal,
    name: &RepositoryName,
) -> Result<(Vec<ImageGroup>, bool), ConsoleError> {
    let page = state
        .app
        .inventory
        .docker_images(
            principal,
            name,
            None,
            &PageRequest::first(MAX_MANIFESTS),
            true,
        )
        .await?;
    let mut groups: Vec<ImageGroup> = Vec::new();
    for manifest in page.items {
        match groups.last_mut() {
            Some(g) if g.image == manifest.record.image => g.manifests.push(manifest),
            _ => groups.push(ImageGroup {
                image: manifest.record.image.clone(),
                manifests: vec![manifest],
            }),
        }
    }
    // Tagged manifests first, the most recently stored first among them.
    for group in &mut groups {
        group.manifests.sort_by(|a, b| {
            a.record
                .tags
                .is_empty()
                .cmp(&b.record.tags.is_empty())
                .then_with(|| b.record.create_time.cmp(&a.record.create_time))
        });
    }
    Ok((groups, page.next.is_some()))
}

/// A hosted Python repository's projects, each with its versions (and
/// their files).
pub async fn python_projects(
    state: &ConsoleState,
    principal: &Principal,
    name: &RepositoryName,
) -> Result<Vec<(String, Vec<PythonVersion>)>, ConsoleError> {
    let inventory = &state.app.inventory;
    let packages = inventory
        .python_packages(principal, name, &PageRequest::first(MAX_PROJECTS))
        .await?;
    let mut out = Vec::with_capacity(packages.items.len());
    for package in packages.items {
        let versions = inventory
            .python_versions(
                principal,
                name,
                &package.name,
                &PageRequest::first(MAX_VERSIONS),
            )
            .await?;
        out.push((package.name, versions.items));
    }
    Ok(out)
}

/// Files a remote Python repository cached, read for one page.
const MAX_CACHED_FILES: u32 = 500;

/// One version of a project a remote Python repository holds files of.
pub struct CachedVersion {
    /// Normalised project name.
    pub project: String,
    /// The version, from the file names.
    pub version: String,
    /// Its cached files.
    pub files: Vec<PythonCachedFile>,
}

impl CachedVersion {
    /// Bytes of its cached files.
    pub fn size_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.record.size).sum()
    }

    /// The latest recorded download of one of its cached files (unix ms).
    pub fn last_pull_ms(&self) -> Option<i64> {
        self.files
            .iter()
            .filter_map(|f| f.record.last_pull_ms)
            .max()
    }
}

/// What a remote Python repository has cached, by project and version;
/// `true` when there were more files than listed.
pub async fn python_cached(
    state: &ConsoleState,
    principal: &Principal,
    name: &RepositoryName,
) -> Result<(Vec<CachedVersion>, bool), ConsoleError> {
    let page = state
        .app
        .inventory
        .python_cached_files(principal, name, &PageRequest::first(MAX_CACHED_FILES))
        .await?;
    let more = page.next.is_some();
    let mut versions: std::collections::BTreeMap<(String, String), Vec<PythonCachedFile>> =
        std::collections::BTreeMap::new();
    for file in page.items {
        versions
            .entry((file.record.name.clone(), file.version.clone()))
            .or_default()
            .push(file);
    }
    let versions = versions
        .into_iter()
        .map(|((project, version), files)| CachedVersion {
            project,
            version,
            files,
        })
        .collect();
    Ok((versions, more))
}

/// A time in unix milliseconds for a table cell: `2026-12-02 16:01 UTC`,
/// with the exact RFC 3339 time in the element's `datetime` and title.
pub fn pulled_cell(last_pull_ms: Option<i64>) -> Markup {
    match last_pull_ms {
        Some(ms) => {
            let exact = rfc3339_ms(ms);
            html! { time.last-pull datetime=(exact) title=(exact) { (short_time(&exact)) } }
        }
        None => html! { span.muted.last-pull { "Never" } },
    }
}

/// An RFC 3339 time for a table cell, to the minute, the exact time in the
/// element's `datetime` and title.
pub fn time_cell(rfc3339: &str) -> Markup {
    html! { time datetime=(rfc3339) title=(rfc3339) { (short_time(rfc3339)) } }
}

/// `2026-12-02T16:01:07.123Z` as `2026-12-02 16:01 UTC`; other text as is.
fn short_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(day), Some(minute)) if rfc3339.len() > 16 => format!("{day} {minute} UTC"),
        _ => rfc3339.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shortened_to_the_minute() {
        assert_eq!(
            short_time("2026-12-02T16:01:07.123Z"),
            "2026-12-02 16:01 UTC"
        );
        assert_eq!(short_time("soon"), "soon");
        let cell = pulled_cell(Some(1_700_000_000_123)).into_string();
        assert!(
            cell.contains("datetime=\"2023-11-14T22:13:20.123Z\""),
            "{cell}"
        );
        assert!(cell.contains("2023-11-14 22:13 UTC"), "{cell}");
        assert!(pulled_cell(None).into_string().contains("Never"));
    }
}
