//! Virtual Docker repositories: an image of the virtual repository is the
//! same image in its members, asked by priority.
//!
//! - A manifest (by tag or digest) is the first member's that has it; a
//!   remote member answers through its own cache and freshness rules, and
//!   its minimum release age together with the virtual repository's (the
//!   stricter rule wins).
//! - A blob is served by the first member that holds it for that image
//!   (hosted: linked; remote: cached); only when none does are the remote
//!   members asked to fetch it from their upstreams, by priority.
//! - Tags are the union of the members' tags.
//! - Referrers of a subject are those of the first member that holds the
//!   subject manifest (a remote member: that has cached it).
//! - Nothing is pushed to a virtual repository: the refusal names its
//!   members.
//!
//! A member that fails (an upstream outage, a blocked host) is skipped with
//! a warning and the next one asked, so an outage of one upstream does not
//! break pulls of content another member holds; when no member has the
//! content, the first failure is the answer if there was one (it says more
//! than "unknown"), else the not-found of the virtual repository.
//!
//! Members are read by the server itself (as the project's service agent
//! would): the caller was authorized once, on the virtual repository.

use entrepot_domain::{Digest, Format, ImagePath, Mode, Reference, Repository};

use super::{OciRepositories, Page, RegistryError, ServedManifest};
use crate::located::LocatedBlob;
use crate::remote::UpstreamFailure;

/// Whether a member's error only says it does not have the content.
fn is_absent(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::ManifestUnknown(_)
            | RegistryError::NameUnknown(_)
            | RegistryError::BlobUnknown(_)
            | RegistryError::Remote(UpstreamFailure::NotFound { .. })
    )
}

/// The member's own path of an image of the virtual repository.
fn member_path(member: &Repository, path: &ImagePath) -> Result<ImagePath, RegistryError> {
    let name = member
        .repository_name()
        .map_err(|e| entrepot_storage::StoreError::Corrupt(e.to_string()))?;
    Ok(ImagePath {
        project: name.project,
        repository: name.repository,
        image: path.image.clone(),
    })
}

/// The refusal of a push to the virtual repository `repo`.
pub(super) fn push_refused(repo: &Repository) -> RegistryError {
    let members: Vec<String> = repo
        .virtual_repository_config
        .as_ref()
        .map(|c| c.members().iter().map(|m| m.to_string()).collect())
        .unwrap_or_default();
    RegistryError::Denied(format!(
        "{} is a virtual repository and cannot be pushed to; push to one of its standard members instead (members, by priority: {})",
        repo.name,
        members.join(", ")
    ))
}

/// What the members answered so far: the first failure that was more than
/// a not-found.
#[derive(Default)]
struct Failures {
    first: Option<RegistryError>,
}

impl Failures {
    fn skip(&mut self, repo: &Repository, member: &Repository, what: &str, e: RegistryError) {
        if !is_absent(&e) {
            tracing::warn!(repository = %repo.name, member = %member.name, content = what, error = %e, "member failed; asking the next one");
            self.first.get_or_insert(e);
        }
    }

    fn answer(self, absent: RegistryError) -> RegistryError {
        self.first.unwrap_or(absent)
    }
}

impl OciRepositories {
    /// The members of a virtual repository that can be read, by priority;
    /// one deleted or re-created with another format or mode since the
    /// list was checked is skipped, with a warning.
    pub(super) async fn virtual_members(
        &self,
        repo: &Repository,
    ) -> Result<Vec<Repository>, RegistryError> {
        let Some(config) = &repo.virtual_repository_config else {
            return Ok(Vec::new());
        };
        let mut members = Vec::new();
        for name in config.members() {
            match self.meta.get_repository(&name).await? {
                Some(member)
                    if member.format == Format::Docker
                        && member.mode != Mode::VirtualRepository =>
                {
                    members.push(member)
                }
                _ => {
                    tracing::warn!(repository = %repo.name, member = %name, "member is missing or no longer a standard or remote Docker repository; skipped")
                }
            }
        }
        Ok(members)
    }

    /// A manifest of a virtual repository: the first member's that has it.
    pub(super) async fn virtual_manifest(
        &self,
        repo: &Repository,
        path: &ImagePath,
        reference: &Reference,
    ) -> Result<ServedManifest, RegistryError> {
        let mut failures = Failures::default();
        for member in self.virtual_members(repo).await? {
            let at = member_path(&member, path)?;
            let answer = match member.mode {
                // The member that serves the manifest records the pull, so
                // its last pull (and a remote one's eviction order) see it.
                Mode::StandardRepository => self.hosted_manifest(&at, reference).await,
                _ => match self.remote.as_deref() {
                    Some(remote) => {
                        let through = repo
                            .virtual_repository_config
                            .as_ref()
                            .map(|c| &c.release_age)
                            .filter(|p| p.is_active());
                        remote
                            .get_manifest_through(&member, &at, reference, through)
                            .await
                    }
                    None => continue,
                },
            };
            match answer {
                Ok(manifest) => return Ok(manifest),
                Err(e) => failures.skip(repo, &member, "manifest", e),
            }
        }
        Err(failures.answer(RegistryError::ManifestUnknown(format!(
            "{path}:{reference} (in none of the members of {})",
            repo.name
        ))))
    }

    /// A blob of an image of a virtual repository: from the first member
    /// that holds it for the image, else fetched by the first remote member
    /// whose upstream has it.
    pub(super) async fn virtual_blob(
        &self,
        repo: &Repository,
        path: &ImagePath,
        digest: &Digest,
    ) -> Result<LocatedBlob, RegistryError> {
        let members = self.virtual_members(repo).await?;
        let mut failures = Failures::default();
        let mut remotes = Vec::new();
        for member in &members {
            let at = member_path(member, path)?;
            match member.mode {
                Mode::StandardRepository => match self.hosted.locate_blob(&at, digest).await {
                    Ok(blob) => return Ok(blob),
                    Err(e) => failures.skip(repo, member, "blob", e),
                },
                _ => {
                    let image = super::content::image_ref(&at);
                    if self.meta.linked_blob_size(&image, digest).await?.is_some() {
                        if let Some(remote) = self.remote.as_deref() {
                            match remote.locate_blob(member, &at, digest).await {
                                Ok(blob) => return Ok(blob),
                                Err(e) => failures.skip(repo, member, "blob", e),
                            }
                        }
                    } else {
                        remotes.push((member, at));
                    }
                }
            }
        }
        if let Some(remote) = self.remote.as_deref() {
            for (member, at) in remotes {
                match remote.locate_blob(member, &at, digest).await {
                    Ok(blob) => return Ok(blob),
                    Err(e) => failures.skip(repo, member, "blob", e),
                }
            }
        }
        Err(failures.answer(RegistryError::BlobUnknown(digest.clone())))
    }

    /// The referrers index of `subject` in a virtual repository: the first
    /// member (by priority) that holds the subject manifest answers, with
    /// the artifact-type filter as for its own clients; an empty index when
    /// none holds it.
    pub(super) async fn virtual_referrers(
        &self,
        repo: &Repository,
        path: &ImagePath,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<u8>, RegistryError> {
        for member in self.virtual_members(repo).await? {
            let at = member_path(&member, path)?;
            let image = super::content::image_ref(&at);
            if self
                .meta
                .manifest_by_digest(&image, subject)
                .await?
                .is_some()
            {
                return self.hosted.referrers(&at, subject, artifact_type).await;
            }
        }
        // The virtual repository stores nothing: an empty index.
        self.hosted.referrers(path, subject, artifact_type).await
    }

    /// Tags of an image of a virtual repository: the members' tags, merged,
    /// one page of at most `size` after `last`.
    pub(super) async fn virtual_tags(
        &self,
        repo: &Repository,
        path: &ImagePath,
        size: u32,
        last: Option<&str>,
    ) -> Result<Page, RegistryError> {
        let mut failures = Failures::default();
        let (mut tags, mut more, mut answered) = (Vec::new(), false, false);
        for member in self.virtual_members(repo).await? {
            let at = member_path(&member, path)?;
            let page = match member.mode {
                Mode::StandardRepository => self.hosted.list_tags(&at, size, last).await,
                _ => match self.remote.as_deref() {
                    Some(remote) => remote.list_tags(&member, &at, size, last).await,
                    None => continue,
                },
            };
            match page {
                Ok(page) => {
                    answered = true;
                    more |= page.more;
                    tags.extend(page.items);
                }
                Err(e) => failures.skip(repo, &member, "tags", e),
            }
        }
        if !answered {
            return Err(failures.answer(RegistryError::NameUnknown(format!(
                "image {path} is in none of the members of {}",
                repo.name
            ))));
        }
        tags.sort_unstable();
        tags.dedup();
        let limit = usize::try_from(size).unwrap_or(usize::MAX);
        more |= tags.len() > limit;
        tags.truncate(limit);
        Ok(Page {
            items: tags,
            size,
            more,
        })
    }
}
