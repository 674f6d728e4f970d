//! `repositories refresh REPO PROJECT`: ask the upstream for a project's
//! page now, instead of when `--remote-python-index-ttl` ends, keep what it
//! answered, and say which files and versions it added or removed.

use entrepot_domain::Repository;

use super::{Ask, RemotePython};
use crate::python::dist::{normalize, version_of};
use crate::python::format::{page_url, Parsed};
use crate::python::index::IndexFile;
use crate::python::{sha256_digest, PythonError};
use crate::remote::{diff_files, ListedFile, RefreshReport, Refreshed};

impl RemotePython {
    /// Fetch the page of `project` from the upstream of `repo` now and
    /// replace the cached page with it. The report lists each file of the
    /// new page against the cached one, and each version; when the upstream
    /// cannot give the page (unreachable, failing, refusing, or sending one
    /// entrepot cannot read), or storing it fails, the report has one
    /// `FAILED` entry saying why, and the cached page is kept.
    pub async fn refresh(
        &self,
        repo: &Repository,
        project: &str,
    ) -> Result<RefreshReport, PythonError> {
        let name = normalize(project);
        if name.is_empty() {
            return Err(PythonError::Invalid(
                "name the Python project whose page to refresh".into(),
            ));
        }
        let target = self.target(repo)?;
        let before = self.cached_files(&target, &name).await;
        let report = |refreshed, versions| RefreshReport {
            repository: repo.name.clone(),
            refreshed,
            versions,
            truncated: false,
        };
        let fetched = match self
            .upstream_page_answered(repo, &name, Ask::Upstream)
            .await
        {
            Ok((page, _)) => page,
            Err(e @ (PythonError::Remote(_) | PythonError::Storage(_))) => {
                let kept = match &before {
                    Some(files) => format!("the cached page ({} files) is kept", files.len()),
                    None => "nothing was cached".to_owned(),
                };
                tracing::warn!(repository = %repo.name, project = %name, error = %e, "refreshing a project page failed");
                let failed = Refreshed::failed(name, None, format!("{e}; {kept}"));
                return Ok(report(vec![failed], Vec::new()));
            }
            Err(e) => return Err(e),
        };
        let after = listed(&fetched.page().files);
        let (files, versions) = diff_files(before.as_deref().unwrap_or_default(), &after);
        tracing::info!(repository = %repo.name, project = %name, files = after.len(), "project page refreshed from the upstream");
        Ok(report(files, versions))
    }

    /// The files the cached page of `name` lists, as served (with a
    /// sha256); `None` when no page is cached, or the cached one cannot be
    /// read (the refresh replaces it all the same).
    async fn cached_files(&self, target: &super::Target, name: &str) -> Option<Vec<ListedFile>> {
        let stored = match self.store.index_page(&target.ids, name).await {
            Ok(stored) => stored?,
            Err(e) => {
                tracing::warn!(project = %name, error = %e, "reading the cached page before a refresh failed");
                return None;
            }
        };
        let url = page_url(target, name).ok()?;
        match self.parse_stored(target, name, &url, stored).await {
            Ok(Parsed::Project(page, _)) => Some(listed(&page.files)),
            Ok(Parsed::List(_)) => None,
            Err(e) => {
                tracing::warn!(project = %name, error = %e, "the cached page is unreadable; the refresh replaces it");
                None
            }
        }
    }
}

/// The files of a page that entrepot serves (those with a sha256), named
/// by it.
fn listed(files: &[IndexFile]) -> Vec<ListedFile> {
    files
        .iter()
        .filter_map(|f| {
            let digest = sha256_digest(f.hashes.get("sha256")?).ok()?;
            Some(ListedFile {
                name: f.filename.clone(),
                version: version_of(&f.filename).map(str::to_owned),
                digest: digest.to_string(),
            })
        })
        .collect()
}
