//! `repositories refresh REPO IMAGE[:TAG]`: ask the upstream about a cached
//! tag (or every cached tag of an image) now, instead of when its freshness
//! window ends, so the next pull sees where the tag points upstream.

use entrepot_domain::{ContentDigest, ImagePath, Reference, Repository, Tag};

use super::{ManifestOf, RemoteOci};
use crate::clock::now_unix;
use crate::oci::content::image_ref;
use crate::oci::error::RegistryError;
use crate::remote::target::{Gate, Target};
use crate::remote::{Answer, CachedCopy, RefreshReport, Refreshed};
use entrepot_domain::upstream::DockerUpstream;

/// The most cached tags of one image a refresh asks about.
pub const MAX_REFRESHED_TAGS: u32 = 1000;

impl RemoteOci {
    /// Revalidate `what` (`IMAGE:TAG`, or `IMAGE` for each of its cached
    /// tags) with the upstream now. A tag the upstream cannot confirm is
    /// reported failed and keeps its cached copy.
    pub async fn refresh(
        &self,
        repo: &Repository,
        what: &str,
    ) -> Result<RefreshReport, RegistryError> {
        let (image, tag) = match what.rsplit_once(':') {
            Some((image, tag)) => (image, Some(tag)),
            None => (what, None),
        };
        let name = repo
            .repository_name()
            .map_err(|e| RegistryError::NameInvalid(e.to_string()))?;
        let path: ImagePath = format!("{}/{}/{image}", name.project, name.repository)
            .parse()
            .map_err(|e: entrepot_domain::NameError| RegistryError::NameInvalid(e.to_string()))?;
        let (tags, truncated) = match tag {
            Some(tag) => (vec![tag.to_owned()], false),
            None => {
                let mut tags = self
                    .meta
                    .list_tags(&image_ref(&path), None, MAX_REFRESHED_TAGS + 1)
                    .await?;
                let truncated = tags.len() > MAX_REFRESHED_TAGS as usize;
                tags.truncate(MAX_REFRESHED_TAGS as usize);
                (tags, truncated)
            }
        };
        let tags = tags
            .iter()
            .map(|t| {
                t.parse::<Tag>()
                    .map_err(|e| RegistryError::TagInvalid(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let target = self.remote.target(repo)?;
        let gate = self.remote.gate(&target).await?;
        let mut refreshed = Vec::with_capacity(tags.len());
        for tag in tags {
            refreshed.push(self.refresh_tag(&target, &gate, &path, &tag).await?);
        }
        Ok(RefreshReport {
            repository: repo.name.clone(),
            refreshed,
            versions: Vec::new(),
            truncated,
        })
    }

    /// Ask the upstream where `tag` points now, and keep that.
    async fn refresh_tag(
        &self,
        target: &Target<DockerUpstream>,
        gate: &Gate,
        path: &ImagePath,
        tag: &Tag,
    ) -> Result<Refreshed, RegistryError> {
        let image = image_ref(path);
        let reference = Reference::Tag(tag.clone());
        let name = format!("{}:{tag}", path.image);
        let _guard = self
            .remote
            .lock(target, &format!("{path}:{reference}"))
            .await;
        let cached = self.meta.manifest_by_tag(&image, tag.as_str()).await?;
        let before = cached.as_ref().map(|m| m.digest.to_string());
        let cached = cached.map(|m| CachedCopy {
            checked_at: 0,
            digest: Some(ContentDigest::from(&m.digest)),
            copy: m,
        });
        let document = ManifestOf {
            path: path.clone(),
            reference,
        };
        let answer = match self
            .remote
            .revalidate(target, gate, &document, cached)
            .await
        {
            Ok(answer) => answer,
            Err(failure) => return Ok(Refreshed::failed(name, before, failure.to_string())),
        };
        let after = match answer {
            Answer::Cached { copy, .. } | Answer::Confirmed(copy) => copy.digest,
            Answer::Fetched { valid, .. } => {
                self.meta
                    .put_manifest(&image, &valid, Some(tag.as_str()))
                    .await?;
                valid.digest
            }
        };
        self.cache.mark_tag_checked(&image, tag, now_unix()).await?;
        tracing::info!(repository = %target.repository, tag = %name, before = ?before, after = %after, "tag refreshed from the upstream");
        Ok(Refreshed::of(name, before, Some(after.to_string())))
    }
}
