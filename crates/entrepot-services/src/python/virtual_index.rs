//! Virtual Python repositories: one simple index over the members' pages.
//!
//! A project page merges the pages of the members that have the project,
//! members asked by priority; a file name listed by two members is served
//! from the first. **A project that a standard (hosted) member has is read
//! from the standard members only**: a public package of the same name on a
//! remote member's upstream cannot shadow a private one (dependency
//! confusion), unless the virtual repository names the project in
//! `allowRemoteShadowing`, which is logged on the audit target each time it
//! lets a remote member in. A standard member that fails (storage) fails
//! the page rather than being skipped, for the same reason; a remote member
//! that fails is skipped with a warning, so an upstream outage only hides
//! that upstream's files.
//!
//! File links point at the virtual repository, so that a reader of the
//! virtual repository needs no access to its members; a file request is
//! routed to the member whose page listed the file (hashes, PEP 658
//! metadata, PEP 700 size and upload time and PEP 592 yanks as that member
//! gives them). Members are read by the server itself (as the project's
//! service agent would): the caller was authorized once, on the virtual
//! repository.
//!
//! A remote member's pages and files are held back by the member's own
//! minimum release age and by the virtual repository's (the stricter rule
//! wins; see [`super::cooldown`]); standard members are not judged.
//!
//! Merged pages are kept per process, keyed by the members' own pages (the
//! sha256 of each one's rendered JSON) and the virtual repository's update
//! time: an upload, a yank or a refreshed upstream page in any member, or a
//! change of the member list, builds a new merged page.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use entrepot_domain::cooldown::ReleaseAgePolicy;
use entrepot_domain::{Digest, Format, Mode, Repository, RepositoryName};

use super::dist::{normalize, parse_filename};
use super::index::{first_seen, PageFormat, ProjectPage, ServedPage};
use super::{file_path, LocatedFile, PythonError, PythonRepositories};
use crate::remote::UpstreamFailure;

/// Merged pages kept before all are dropped and rebuilt on demand.
const MAX_MERGED_PAGES: usize = 4096;

/// A merged project page and where each of its files comes from.
pub(super) struct MergedPage {
    /// What it was built from: the virtual repository's update time and the
    /// members' page tags.
    fingerprint: String,
    /// The page, with links into the virtual repository.
    pub page: Arc<ServedPage>,
    /// File name → (sha256, the member that serves it).
    origins: HashMap<String, (String, RepositoryName)>,
}

/// Merged pages of one process.
#[derive(Default)]
pub(super) struct MergedPages {
    pages: Mutex<HashMap<(RepositoryName, String), Arc<MergedPage>>>,
}

impl MergedPages {
    fn get(&self, key: &(RepositoryName, String), fingerprint: &str) -> Option<Arc<MergedPage>> {
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages
            .get(key)
            .filter(|p| p.fingerprint == fingerprint)
            .cloned()
    }

    fn put(&self, key: (RepositoryName, String), page: Arc<MergedPage>) {
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        if pages.len() >= MAX_MERGED_PAGES && !pages.contains_key(&key) {
            pages.clear();
        }
        pages.insert(key, page);
    }
}

/// A member's page, as read for a merge.
struct MemberPage {
    member: RepositoryName,
    page: Arc<ServedPage>,
}

impl PythonRepositories {
    /// The members of a virtual repository that can be read, by priority.
    /// One deleted or re-created with another format or mode since the list
    /// was checked is skipped, with a warning.
    async fn virtual_members(&self, repo: &Repository) -> Result<Vec<Repository>, PythonError> {
        let Some(config) = &repo.virtual_repository_config else {
            return Ok(Vec::new());
        };
        let mut members = Vec::new();
        for name in config.members() {
            match self.repositories.get(&name).await {
                Ok(member)
                    if member.format == Format::Python
                        && member.mode != Mode::VirtualRepository =>
                {
                    members.push(member)
                }
                Ok(_) => {
                    tracing::warn!(repository = %repo.name, member = %name, "member is no longer a standard or remote Python repository; skipped")
                }
                Err(crate::repositories::RepositoryError::NotFound(_)) => {
                    tracing::warn!(repository = %repo.name, member = %name, "member does not exist; skipped")
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(members)
    }

    /// The merged page of `project` in the virtual repository `repo`.
    pub(super) async fn virtual_page(
        &self,
        repo: &Repository,
        project: &str,
    ) -> Result<Arc<MergedPage>, PythonError> {
        let ids = repo.repository_name()?;
        let name = normalize(project);
        let members = self.virtual_members(repo).await?;
        let mut found: Vec<(usize, MemberPage)> = Vec::new();
        for (order, member) in members.iter().enumerate() {
            if member.mode != Mode::StandardRepository {
                continue;
            }
            match self.hosted.project_page(member, &name).await {
                Ok(page) => found.push((
                    order,
                    MemberPage {
                        member: member.repository_name()?,
                        page: Arc::new(ServedPage::new(page)),
                    },
                )),
                Err(PythonError::NotFound(_)) => {}
                // Failing closed: skipping a standard member could let a
                // remote one serve a private name.
                Err(e) => return Err(e),
            }
        }
        let shadowing = repo
            .virtual_repository_config
            .as_ref()
            .is_some_and(|c| c.allows_remote_shadowing(&name));
        let mut failure = None;
        if found.is_empty() || shadowing {
            for (order, member) in members.iter().enumerate() {
                if member.mode != Mode::RemoteRepository {
                    continue;
                }
                match self
                    .remote
                    .project_page_through(member, &name, through(repo))
                    .await
                {
                    Ok(page) => found.push((
                        order,
                        MemberPage {
                            member: member.repository_name()?,
                            page,
                        },
                    )),
                    Err(e) if is_absent(&e) => {}
                    Err(e) => {
                        tracing::warn!(repository = %repo.name, member = %member.name, project = %name, error = %e, "member failed; skipped");
                        failure.get_or_insert(e);
                    }
                }
            }
            if shadowing && found.iter().any(|(_, p)| is_remote(&members, &p.member)) {
                tracing::info!(target: "entrepot::audit", repository = %repo.name, project = %name, "allowRemoteShadowing: remote members serve a project that a standard member has");
            }
        }
        if found.is_empty() {
            return Err(failure.unwrap_or_else(|| {
                PythonError::NotFound(format!("project {name:?} is in no member of {}", repo.name))
            }));
        }
        found.sort_by_key(|(order, _)| *order);
        let mut fingerprint = repo.update_time.clone();
        for (_, p) in &found {
            fingerprint.push_str(&format!(" {}={}", p.member, p.page.etag(PageFormat::Json)));
        }
        let key = (ids.clone(), name.clone());
        if let Some(merged) = self.merged.get(&key, &fingerprint) {
            return Ok(merged);
        }
        let merged = Arc::new(merge(&ids, &name, fingerprint, &found));
        self.merged.put(key, merged.clone());
        Ok(merged)
    }

    /// The names of the projects of every member (a remote member that
    /// fails is skipped with a warning; if every member fails, the first
    /// failure is the answer).
    pub(super) async fn virtual_project_list(
        &self,
        repo: &Repository,
    ) -> Result<Arc<Vec<String>>, PythonError> {
        let members = self.virtual_members(repo).await?;
        let mut lists: Vec<Arc<Vec<String>>> = Vec::new();
        let mut failure = None;
        for member in &members {
            let list = match member.mode {
                Mode::StandardRepository => self.hosted.project_list(member).await.map(Arc::new),
                _ => self.remote.project_list(member).await,
            };
            match list {
                Ok(list) => lists.push(list),
                Err(e) => {
                    tracing::warn!(repository = %repo.name, member = %member.name, error = %e, "member's project list failed; skipped");
                    failure.get_or_insert(e);
                }
            }
        }
        if lists.is_empty() {
            if let Some(e) = failure {
                return Err(e);
            }
        }
        let names = first_seen(lists.iter().flat_map(|l| l.iter().cloned()));
        Ok(Arc::new(names))
    }

    /// A file of a virtual repository, from the member whose page lists it
    /// (the page of the project the file name gives, merged as above).
    pub(super) async fn virtual_file(
        &self,
        repo: &Repository,
        sha256: &str,
        filename: &str,
    ) -> Result<LocatedFile, PythonError> {
        let dist = filename.strip_suffix(".metadata").unwrap_or(filename);
        let not_found = || PythonError::NotFound(format!("{filename} is not in {}", repo.name));
        let project = parse_filename(dist).map_err(|_| not_found())?.name;
        let merged = self.virtual_page(repo, &project).await?;
        let (listed, member) = merged.origins.get(dist).ok_or_else(not_found)?;
        if !listed.eq_ignore_ascii_case(sha256) {
            return Err(not_found());
        }
        let member = self.repositories.get(member).await?;
        match member.mode {
            Mode::StandardRepository => self.hosted.file(&member, sha256, filename).await,
            Mode::RemoteRepository => {
                self.remote
                    .file_through(&member, sha256, filename, through(repo))
                    .await
            }
            Mode::VirtualRepository => Err(not_found()),
        }
    }
}

/// The virtual repository's own release-age policy, applied to what its
/// remote members serve through it on top of theirs.
fn through(repo: &Repository) -> Option<&ReleaseAgePolicy> {
    repo.virtual_repository_config
        .as_ref()
        .map(|c| &c.release_age)
        .filter(|p| p.is_active())
}

/// Whether a member's error only says it does not have the project or file.
fn is_absent(e: &PythonError) -> bool {
    matches!(
        e,
        PythonError::NotFound(_) | PythonError::Remote(UpstreamFailure::NotFound { .. })
    )
}

fn is_remote(members: &[Repository], name: &RepositoryName) -> bool {
    members
        .iter()
        .any(|m| m.mode == Mode::RemoteRepository && m.name == name.to_string())
}

/// The members' pages (by priority) as one page of the virtual repository.
fn merge(
    ids: &RepositoryName,
    name: &str,
    fingerprint: String,
    found: &[(usize, MemberPage)],
) -> MergedPage {
    let mut seen = HashSet::new();
    let mut origins = HashMap::new();
    let mut files = Vec::new();
    let mut stale = false;
    for (_, member) in found {
        let page = member.page.page();
        stale |= page.stale;
        for f in &page.files {
            let Some(sha256) = f.hashes.get("sha256").filter(|h| valid_sha256(h)) else {
                continue;
            };
            if !seen.insert(f.filename.clone()) {
                continue;
            }
            origins.insert(f.filename.clone(), (sha256.clone(), member.member.clone()));
            let mut file = f.clone();
            file.url = file_path(ids, sha256, &f.filename);
            files.push(file);
        }
    }
    let versions = first_seen(
        found
            .iter()
            .flat_map(|(_, m)| m.page.page().versions.iter().cloned()),
    );
    MergedPage {
        fingerprint,
        page: Arc::new(ServedPage::new(ProjectPage {
            name: name.to_owned(),
            files,
            versions,
            stale,
        })),
        origins,
    }
}

fn valid_sha256(hex: &str) -> bool {
    format!("sha256:{hex}").parse::<Digest>().is_ok()
}
