//! The minimum release age of remote Docker repositories.
//!
//! A tag's upstream digest is "published" at the earlier of two times:
//! when entrepot first saw the tag point at it, and the image config's
//! `created` (when the manifest is an image manifest whose config says).
//! A digest younger than the minimum age (or published after the cut-off)
//! is held back: the tag keeps resolving to the newest digest it pointed at
//! that the policy allows, and the answer says which digest is held back
//! and until when. A pull by the held-back digest is refused with the
//! reason. A digest no tag ever pointed at (a platform manifest of an
//! index, say) is judged by nothing and served.
//!
//! Read through a virtual repository, a remote member's tags are judged by
//! the member's policy and the virtual repository's together: the stricter
//! rule wins.

use std::sync::Arc;

use entrepot_domain::cooldown::{ReleaseAgePolicy, ReleaseAgeRules, ReleaseVerdict};
use entrepot_domain::{Digest, ImagePath, Manifest, ManifestKind, Repository, Tag};
use entrepot_storage::{TagDigestRecord, TagDigestStore};
use futures::StreamExt;

use super::content::{image_ref, ServedManifest};
use super::error::RegistryError;
use super::remote::RemoteOci;
use crate::clock::Clock;

/// The `created` recorded for a digest whose config has none: later than
/// any first-seen time, so the first-seen time decides.
const NO_CREATED_TIME: i64 = i64::MAX;

/// The largest image config read for its `created` time.
const MAX_CONFIG_BYTES: usize = 256 * 1024;

/// A newer digest of a tag that the minimum release age holds back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    /// The digest held back.
    pub digest: Digest,
    /// When it becomes available (unix seconds); `None` if it does not by
    /// itself (after the cut-off, or its time is unknown).
    pub available_at: Option<i64>,
}

impl HeldBack {
    /// The `Entrepot-Held-Back` header value:
    /// `sha256:...; available-at=2026-12-09T10:00:00Z`, or
    /// `sha256:...; until-policy-change`.
    pub fn header_value(&self) -> String {
        match self.available_at {
            Some(at) => format!(
                "{}; available-at={}",
                self.digest,
                crate::clock::rfc3339(at)
            ),
            None => format!("{}; until-policy-change", self.digest),
        }
    }
}

/// What the release-age rules of remote Docker repositories need: the
/// first-seen records and the clock.
#[derive(Clone)]
pub struct ReleaseAgeRecords {
    /// First-seen times of tag digests.
    pub store: Arc<dyn TagDigestStore>,
    /// Now.
    pub clock: Arc<dyn Clock>,
}

/// The release-age rules of a remote repository's content: its own policy
/// and, read through a virtual repository, that one's (`through`); `None`
/// when neither holds anything back.
pub(super) fn active_rules(
    repo: &Repository,
    through: Option<&ReleaseAgePolicy>,
) -> Option<ReleaseAgeRules> {
    let rules = ReleaseAgeRules::new(
        repo.remote_repository_config
            .as_ref()
            .map(|c| &c.release_age)
            .into_iter()
            .chain(through),
    );
    rules.is_active().then_some(rules)
}

/// The publish time of a record: the earlier of first seen and created.
fn published(r: &TagDigestRecord) -> i64 {
    r.created.map_or(r.first_seen, |c| c.min(r.first_seen))
}

/// `created` of an image config, as unix seconds.
fn config_created(bytes: &[u8]) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    entrepot_domain::cooldown::parse_time(value.get("created")?.as_str()?)
}

impl RemoteOci {
    /// Apply the repository's minimum release age to a manifest just
    /// resolved for `tag`.
    pub(super) async fn hold_back_tag(
        &self,
        repo: &Repository,
        path: &ImagePath,
        tag: &Tag,
        policy: &ReleaseAgeRules,
        resolved: ServedManifest,
    ) -> Result<ServedManifest, RegistryError> {
        let records = self.release_age_records()?;
        let image = image_ref(path);
        let now = records.clock.now_unix();
        let digest = resolved.digest.to_string();
        let mut record = records
            .store
            .saw_tag_digest(&image, tag.as_str(), &digest, now)
            .await?;
        if record.created.is_none() && !policy.is_exempt(path.image.as_str(), Some(tag.as_str())) {
            // Read once per digest: a config without `created` (or an
            // index) is remembered as "never", so it is not read again.
            if let Some(created) = self.image_created(repo, path, &resolved).await {
                let created = created.unwrap_or(NO_CREATED_TIME);
                records
                    .store
                    .set_digest_created(&image, &digest, created)
                    .await?;
                record.created = Some(created);
            }
        }
        let verdict = |r: &TagDigestRecord| {
            policy.verdict(
                path.image.as_str(),
                Some(tag.as_str()),
                Some(published(r)),
                now,
            )
        };
        let held = verdict(&record);
        if held.allowed() {
            return Ok(resolved);
        }
        let held_back = HeldBack {
            digest: resolved.digest.clone(),
            available_at: held.available_at(),
        };
        let previous = records
            .store
            .tag_digests(&image, tag.as_str())
            .await?
            .into_iter()
            .filter(|r| r.digest != digest)
            .find(|r| verdict(r).allowed());
        let Some(previous) = previous else {
            return Err(RegistryError::Denied(refusal(
                &format!("{path}:{tag}"),
                &resolved.digest,
                held,
                " and no earlier digest of the tag is old enough",
            )));
        };
        let previous: Digest = previous
            .digest
            .parse()
            .map_err(|_| entrepot_storage::StoreError::Corrupt(previous.digest.clone()))?;
        let mut served = self.manifest_by_digest(repo, path, &previous).await?;
        tracing::info!(image = %path, %tag, held_back = %held_back.digest, serving = %served.digest, "tag held back by the minimum release age");
        served.held_back = Some(held_back);
        Ok(served)
    }

    /// Refuse a manifest pulled by a digest that a tag pointed at too
    /// recently.
    pub(super) async fn hold_back_digest(
        &self,
        path: &ImagePath,
        digest: &Digest,
        policy: &ReleaseAgeRules,
    ) -> Result<(), RegistryError> {
        let records = self.release_age_records()?;
        let image = image_ref(path);
        let found = records
            .store
            .digest_records(&image, &digest.to_string())
            .await?;
        let Some(earliest) = found.iter().map(published).min() else {
            return Ok(());
        };
        // Exempt if any tag that pointed at it is.
        let tags: Vec<&str> = found.iter().map(|r| r.tag.as_str()).collect();
        let now = records.clock.now_unix();
        let verdict = tags
            .iter()
            .map(|t| policy.verdict(path.image.as_str(), Some(t), Some(earliest), now))
            .find(|v| v.allowed())
            .unwrap_or_else(|| {
                policy.verdict(
                    path.image.as_str(),
                    tags.first().copied(),
                    Some(earliest),
                    now,
                )
            });
        if verdict.allowed() {
            return Ok(());
        }
        Err(RegistryError::Denied(refusal(
            &format!("{path}@{digest}"),
            digest,
            verdict,
            "",
        )))
    }

    fn release_age_records(&self) -> Result<&ReleaseAgeRecords, RegistryError> {
        self.release_age.as_ref().ok_or_else(|| {
            RegistryError::Denied(
                "this repository has a minimum release age, but this server keeps no record of when digests were first seen; nothing is served".into(),
            )
        })
    }

    /// The `created` time of an image manifest's config, read through the
    /// cache (the client fetches the config next anyway): `Some(None)` for
    /// an index or a config without one; `None` if the config could not be
    /// read now.
    async fn image_created(
        &self,
        repo: &Repository,
        path: &ImagePath,
        served: &ServedManifest,
    ) -> Option<Option<i64>> {
        let Ok(manifest) = Manifest::parse(Some(&served.media_type), &served.content) else {
            return Some(None);
        };
        if manifest.kind != ManifestKind::Image {
            return Some(None);
        }
        let Some(config) = manifest.blobs.first() else {
            return Some(None);
        };
        if config.size > MAX_CONFIG_BYTES as u64 {
            return Some(None);
        }
        let located = self.locate_blob(repo, path, &config.digest).await.ok()?;
        let mut body = located.open(None).await.ok()?.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk.ok()?);
            if bytes.len() > MAX_CONFIG_BYTES {
                return Some(None);
            }
        }
        Some(config_created(&bytes))
    }
}

/// Why `what` (its digest `digest`) is refused.
fn refusal(what: &str, digest: &Digest, verdict: ReleaseVerdict, tail: &str) -> String {
    let reason = verdict
        .reason(&format!("{what} ({digest})"))
        .unwrap_or_default();
    format!("{reason}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_says_which_digest_waits_and_until_when() {
        let digest = Digest::of(b"new");
        let held = HeldBack {
            digest: digest.clone(),
            available_at: Some(1_800_000_000),
        };
        assert_eq!(
            held.header_value(),
            format!("{digest}; available-at=2027-01-15T08:00:00Z")
        );
    }

    #[test]
    fn the_publish_time_is_the_earlier_of_first_seen_and_created() {
        let r = TagDigestRecord {
            tag: "v1".into(),
            digest: "sha256:a".into(),
            first_seen: 1000,
            created: Some(10),
        };
        assert_eq!(published(&r), 10);
        let later = TagDigestRecord {
            created: Some(5000),
            ..r
        };
        assert_eq!(published(&later), 1000);
        assert_eq!(
            config_created(br#"{"created":"2026-01-01T00:00:00Z","architecture":"amd64"}"#),
            Some(1_767_225_600)
        );
        assert_eq!(config_created(b"{}"), None);
    }
}
