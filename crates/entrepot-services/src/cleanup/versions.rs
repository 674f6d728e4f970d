//! The versions of a repository as cleanup policies see them, read from
//! the stores.

use std::collections::BTreeMap;

use entrepot_domain::{Manifest, RepositoryName};
use entrepot_storage::{CleanupStore, PythonStore, StoreError};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::Candidate;

/// A candidate with its upload time as stored, for the report.
pub(super) struct Listed {
    pub candidate: Candidate,
    pub upload_time: String,
}

/// Unix seconds of a stored RFC 3339 time. A time that does not parse
/// counts as now: such a version is never "older than" anything.
fn unix(text: &str, now: i64) -> i64 {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .unwrap_or(now)
}

/// Every manifest of every image, with its tags; an index's children are
/// the manifests it lists.
pub(super) async fn docker(
    store: &dyn CleanupStore,
    repo: &RepositoryName,
    now: i64,
) -> Result<Vec<Listed>, StoreError> {
    let versions = store.manifest_versions(repo).await?;
    Ok(versions
        .into_iter()
        .map(|v| {
            let children = v
                .index_content
                .as_deref()
                .and_then(|content| Manifest::parse(Some(&v.media_type), content).ok())
                .map(|m| m.manifests.iter().map(|d| d.digest.to_string()).collect())
                .unwrap_or_default();
            Listed {
                candidate: Candidate {
                    package: v.image,
                    version: v.digest.to_string(),
                    tags: v.tags,
                    upload_time: unix(&v.create_time, now),
                    children,
                },
                upload_time: v.create_time,
            }
        })
        .collect())
}

/// Every version of every project of a standard repository, uploaded when
/// its first file was.
pub(super) async fn python(
    store: &dyn PythonStore,
    repo: &RepositoryName,
    now: i64,
) -> Result<Vec<Listed>, StoreError> {
    let mut listed = Vec::new();
    for name in store.project_names(repo).await? {
        let mut first: BTreeMap<String, (i64, String)> = BTreeMap::new();
        for file in store.files_of(repo, &name).await? {
            let t = unix(&file.upload_time, now);
            let entry = first
                .entry(file.version.clone())
                .or_insert((t, file.upload_time.clone()));
            if t < entry.0 {
                *entry = (t, file.upload_time);
            }
        }
        for (version, (t, text)) in first {
            listed.push(Listed {
                candidate: Candidate {
                    package: name.clone(),
                    version,
                    tags: Vec::new(),
                    upload_time: t,
                    children: Vec::new(),
                },
                upload_time: text,
            });
        }
    }
    Ok(listed)
}
