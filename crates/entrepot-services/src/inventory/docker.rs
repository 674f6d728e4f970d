//! Docker images and tags of a repository.

use entrepot_domain::{Digest, Format, ImageName, ImagePath, Reference, RepositoryName};
use entrepot_storage::{DockerImageRecord, DockerPackageRecord, DockerTagRecord};

use super::{ArtifactInventory, InventoryError, MAX_TAGS_PER_IMAGE};
use crate::access::{Permission, Principal};
use crate::oci::RegistryError;
use crate::paging::{Page, PageRequest};

/// How an image to delete is named: `IMAGE@DIGEST` or `IMAGE:TAG`.
pub type ImageReference = Reference;

/// One manifest of a Docker repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerImage {
    /// What the store holds about it.
    pub record: DockerImageRecord,
}

impl DockerImage {
    /// Its size as Artifact Registry counts it: the manifest, its config
    /// and its layers.
    pub fn size_bytes(&self) -> u64 {
        self.record.manifest_bytes + self.record.blob_bytes
    }
}

/// What an image deletion removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedImage {
    /// The manifest deleted.
    pub digest: Digest,
    /// The tags that pointed at it, deleted with it.
    pub tags: Vec<String>,
}

fn image_name(image: &str) -> Result<ImageName, InventoryError> {
    image
        .parse()
        .map_err(|e: entrepot_domain::name::NameError| InventoryError::Invalid(e.to_string()))
}

impl ArtifactInventory {
    /// One page of the manifests of a Docker repository, ordered by image
    /// then digest; with `image`, only that image's. Each carries at most
    /// [`MAX_TAGS_PER_IMAGE`] of its tags (none unless `with_tags`).
    pub async fn docker_images(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        image: Option<&str>,
        page: &PageRequest<(String, String)>,
        with_tags: bool,
    ) -> Result<Page<DockerImage, (String, String)>, InventoryError> {
        self.readable(caller, name, Format::Docker).await?;
        self.flush_pulls().await;
        let image = image.map(image_name).transpose()?;
        let max_tags = if with_tags { MAX_TAGS_PER_IMAGE } else { 0 };
        let after = page.after.as_ref().map(|(i, d)| (i.as_str(), d.as_str()));
        let rows = match &image {
            None => {
                self.store
                    .docker_images(name, after, page.limit(), max_tags)
                    .await?
            }
            Some(image) => {
                // Within one image: start after its own last digest, and
                // stop where the next image begins.
                let start = match after {
                    Some((i, d)) if i == image.as_str() => (i, d),
                    _ => (image.as_str(), ""),
                };
                let mut rows = self
                    .store
                    .docker_images(name, Some(start), page.limit(), max_tags)
                    .await?;
                rows.retain(|r| r.image == image.as_str());
                rows
            }
        };
        let items = rows
            .into_iter()
            .map(|record| DockerImage { record })
            .collect();
        Ok(Page::from_rows(items, page, |i: &DockerImage| {
            (i.record.image.clone(), i.record.digest.to_string())
        }))
    }

    /// One page of an image's tags, in lexical order.
    pub async fn docker_tags(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        image: &str,
        page: &PageRequest<String>,
    ) -> Result<Page<DockerTagRecord, String>, InventoryError> {
        self.readable(caller, name, Format::Docker).await?;
        self.flush_pulls().await;
        let image = image_name(image)?;
        let rows = self
            .store
            .docker_tags(name, image.as_str(), page.after.as_deref(), page.limit())
            .await?;
        Ok(Page::from_rows(rows, page, |t: &DockerTagRecord| {
            t.tag.clone()
        }))
    }

    /// One tag of an image.
    pub async fn docker_tag(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        image: &str,
        tag: &str,
    ) -> Result<DockerTagRecord, InventoryError> {
        self.readable(caller, name, Format::Docker).await?;
        self.flush_pulls().await;
        let image = image_name(image)?;
        self.store
            .docker_tag(name, image.as_str(), tag)
            .await?
            .ok_or_else(|| InventoryError::NotFound(format!("tag {name}/{image}:{tag} not found")))
    }

    /// One page of the image names of a Docker repository.
    pub async fn docker_packages(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        page: &PageRequest<String>,
    ) -> Result<Page<DockerPackageRecord, String>, InventoryError> {
        self.readable(caller, name, Format::Docker).await?;
        self.flush_pulls().await;
        let rows = self
            .store
            .docker_packages(name, page.after.as_deref(), page.limit())
            .await?;
        Ok(Page::from_rows(rows, page, |p: &DockerPackageRecord| {
            p.image.clone()
        }))
    }

    /// Delete an image (a manifest, named by digest or by a tag pointing at
    /// it), for a caller with `artifactregistry.repositories.deleteArtifacts`.
    /// A manifest that tags point at is refused, naming them, unless
    /// `delete_tags` (then they go with it), as `gcloud artifacts docker
    /// images delete` does; a manifest an index of the image lists is
    /// refused too (delete the index first).
    pub async fn delete_docker_image(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        image: &str,
        reference: &ImageReference,
        delete_tags: bool,
    ) -> Result<DeletedImage, InventoryError> {
        self.repository(caller, Permission::DeleteArtifacts, name)
            .await?;
        let image = image_name(image)?;
        let image_ref = entrepot_storage::ImageRef {
            project: name.project.to_string(),
            repository: name.repository.to_string(),
            image: image.to_string(),
        };
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => self
                .meta
                .manifest_by_tag(&image_ref, t.as_str())
                .await?
                .map(|m| m.digest)
                .ok_or_else(|| {
                    InventoryError::NotFound(format!("tag {name}/{image}:{t} not found"))
                })?,
        };
        let tags = self
            .store
            .docker_tags_of(name, image.as_str(), &digest, MAX_TAGS_PER_IMAGE)
            .await?;
        if !tags.is_empty() && !delete_tags {
            return Err(InventoryError::FailedPrecondition(format!(
                "image {name}/{image}@{digest} is tagged ({}); pass --delete-tags (API: force=true) to delete it with its tags, or delete the tags first",
                tags.join(", ")
            )));
        }
        let path = ImagePath {
            project: name.project.clone(),
            repository: name.repository.clone(),
            image,
        };
        self.registry
            .delete_manifest(caller, &path, &digest.to_string(), false)
            .await
            .map_err(|e| match e {
                RegistryError::ManifestUnknown(m) | RegistryError::NameUnknown(m) => {
                    InventoryError::NotFound(format!("image {m} not found"))
                }
                RegistryError::Denied(m) => InventoryError::FailedPrecondition(m),
                RegistryError::Access(a) => InventoryError::Auth(a),
                RegistryError::Store(s) => InventoryError::Store(s),
                other => InventoryError::Registry(other),
            })?;
        Ok(DeletedImage { digest, tags })
    }
}
