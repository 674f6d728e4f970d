//! The catalog (`GET /v2/_catalog`): every image with manifests, and the
//! images each virtual Docker repository serves, as `project/repository/image`,
//! lexically, one page at a time.
//!
//! A virtual repository stores nothing, so its images are its members'
//! (hosted images, and what remote members have cached), listed under the
//! virtual repository's own name: the union, each name once, as a client
//! pulling through the virtual repository sees them. They are listed only to
//! a caller who may read the virtual repository. A page is built from at
//! most `n + 1` rows of the stored images and of each member, so its cost
//! does not grow with the catalog.

use entrepot_domain::{Format, Repository};

use super::{OciRepositories, Page, RegistryError};
use crate::access::{Permission, Principal, Resource};

/// `project/repository/`: the start of the paths of a repository's images.
fn prefix_of(repo: &Repository) -> Result<String, RegistryError> {
    let name = repo
        .repository_name()
        .map_err(|e| entrepot_storage::StoreError::Corrupt(e.to_string()))?;
    Ok(format!("{}/{}/", name.project, name.repository))
}

/// Where the images of a repository whose paths start with `prefix` begin
/// on the page after `last`: after this image name (`""`: from the first),
/// or `None` when all of them come before `last`.
fn start_after<'a>(prefix: &str, last: Option<&'a str>) -> Option<&'a str> {
    match last {
        None => Some(""),
        Some(last) => match last.strip_prefix(prefix) {
            Some(image) => Some(image),
            None if last < prefix => Some(""),
            None => None,
        },
    }
}

impl OciRepositories {
    /// One catalog page of at most `size` after `last`, with the images
    /// that the virtual repositories `principal` may read serve.
    pub(super) async fn catalog_page(
        &self,
        principal: &Principal,
        size: u32,
        last: Option<&str>,
    ) -> Result<Page, RegistryError> {
        let limit = size.saturating_add(1);
        let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut rows: Vec<String> = self
            .meta
            .catalog(last, limit)
            .await?
            .into_iter()
            .map(|e| e.path)
            .collect();
        for repo in self.meta.virtual_repositories(Format::Docker).await? {
            let prefix = prefix_of(&repo)?;
            let Some(after) = start_after(&prefix, last) else {
                continue;
            };
            // A full page that ends before this repository's images cannot
            // take any of them.
            if rows.len() >= wanted && rows.last().is_some_and(|l| *l < prefix) {
                continue;
            }
            if !self.may_read(principal, &repo).await {
                continue;
            }
            for member in self.virtual_members(&repo).await? {
                let member_prefix = prefix_of(&member)?;
                let from = format!("{member_prefix}{after}");
                for entry in self.meta.catalog(Some(&from), limit).await? {
                    let Some(image) = entry.path.strip_prefix(&member_prefix) else {
                        break;
                    };
                    rows.push(format!("{prefix}{image}"));
                }
            }
            rows.sort_unstable();
            rows.dedup();
            rows.truncate(wanted);
        }
        Ok(Page::from_rows(rows, size))
    }

    /// Whether `principal` may read (pull from) `repo`.
    async fn may_read(&self, principal: &Principal, repo: &Repository) -> bool {
        let Ok(name) = repo.repository_name() else {
            return false;
        };
        let resource = Resource::Repository {
            project: name.project.to_string(),
            repository: name.repository.to_string(),
        };
        self.access
            .authorize(principal, Permission::DownloadArtifacts, &resource)
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::start_after;

    #[test]
    fn a_virtual_repository_s_images_start_where_the_cursor_falls() {
        let p = "p/all/";
        assert_eq!(start_after(p, None), Some(""));
        assert_eq!(start_after(p, Some("p/all/app")), Some("app"));
        assert_eq!(start_after(p, Some("p/aa/x")), Some(""));
        assert_eq!(start_after(p, Some("p/alpha/x")), None);
        assert_eq!(start_after(p, Some("p/all")), Some(""));
        assert_eq!(start_after(p, Some("p/b/x")), None);
        assert_eq!(start_after(p, Some("q/all/app")), None);
    }
}
