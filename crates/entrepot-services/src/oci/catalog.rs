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
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use entrepot_domain::virtual_repository::{UpstreamPolicy, VirtualConfig};
    use entrepot_domain::{Digest, Format, Mode, RepositoryName};
    use entrepot_storage::{ImageRef, ManifestRecord, MetadataStore, SqliteMetadataStore};

    use super::start_after;
    use crate::access::{AccessControl, AuthError, Credentials, Permission, Principal, Resource};
    use crate::oci::OciRepositories;

    /// Lists the catalog, and reads only the repository it names.
    struct ReadsOne(&'static str);

    #[async_trait]
    impl AccessControl for ReadsOne {
        async fn authenticate(&self, _: Option<&Credentials>) -> Result<Principal, AuthError> {
            Ok(Principal::User("carol@example.com".into()))
        }

        async fn authorize(
            &self,
            _: &Principal,
            permission: Permission,
            resource: &Resource,
        ) -> Result<(), AuthError> {
            match resource {
                Resource::Organization => Ok(()),
                Resource::Repository { repository, .. }
                    if permission == Permission::DownloadArtifacts && repository == self.0 =>
                {
                    Ok(())
                }
                other => Err(AuthError::Denied {
                    principal: "user:carol@example.com".into(),
                    permission: "downloadArtifacts",
                    resource: format!("{other:?}"),
                }),
            }
        }
    }

    fn repository(id: &str, members: &[&str]) -> entrepot_domain::Repository {
        entrepot_domain::Repository {
            name: format!("projects/p/repositories/{id}"),
            format: Format::Docker,
            mode: if members.is_empty() {
                Mode::StandardRepository
            } else {
                Mode::VirtualRepository
            },
            description: String::new(),
            remote_repository_config: None,
            virtual_repository_config: (!members.is_empty()).then(|| VirtualConfig {
                upstream_policies: members
                    .iter()
                    .map(|m| UpstreamPolicy {
                        id: (*m).into(),
                        repository: format!("projects/p/repositories/{m}"),
                        priority: 1,
                    })
                    .collect(),
                ..Default::default()
            }),
            create_time: "2026-01-01T00:00:00Z".into(),
            update_time: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[tokio::test]
    async fn virtual_images_are_listed_to_those_who_may_read_the_virtual_repository() {
        let store = Arc::new(SqliteMetadataStore::in_memory().await.unwrap());
        store.create_project(&"p".parse().unwrap()).await.unwrap();
        for (id, members) in [
            ("team", &[][..]),
            ("open", &["team"]),
            ("closed", &["team"]),
        ] {
            let name: RepositoryName = format!("projects/p/repositories/{id}").parse().unwrap();
            store
                .create_repository(&name, &repository(id, members))
                .await
                .unwrap();
        }
        let content = br#"{"schemaVersion":2}"#.to_vec();
        let manifest = ManifestRecord {
            digest: Digest::of(&content),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            artifact_type: None,
            subject: None,
            annotations: None,
            content,
        };
        let image = ImageRef {
            project: "p".into(),
            repository: "team".into(),
            image: "app".into(),
        };
        store
            .put_manifest(&image, &manifest, Some("1"))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let blobs = Arc::new(entrepot_storage::ObjectBlobStore::local(dir.path()).unwrap());
        let oci = OciRepositories::new(store, blobs, Arc::new(ReadsOne("open")));
        let carol = Principal::User("carol@example.com".into());
        let page = oci.catalog(&carol, None, None).await.unwrap();
        assert_eq!(page.items, ["p/open/app", "p/team/app"]);
    }

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
