//! Storage quotas of hosted content, per repository and per project.
//!
//! A push (an OCI blob or manifest, a Python file) is refused before its
//! bytes are stored when it would bring the repository, or all standard
//! repositories of its project together, past its quota. Usage is counted as
//! `repositories describe` shows it: each blob once per repository, plus
//! manifests and uploaded Python files.
//!
//! Concurrent pushes cannot overshoot a quota together: an upload reserves
//! its bytes as soon as they are known (a request's `Content-Length`, each
//! chunk's length, or a chunk's size once written when the client sent no
//! length), atomically against usage plus every other upload's
//! reservation, and before they are committed; the reservation is released
//! once they count as usage, or when the upload ends or expires. A body of
//! unknown length is cut off where the quota's room (after every
//! reservation) ends.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use entrepot_domain::iam::Permission;
use entrepot_domain::storage_quota::format_bytes;
use entrepot_domain::{Mode, ProjectId, RepositoryName};
use entrepot_storage::{ByteStream, CleanupStore, MetadataStore, QuotaReservation, StoreError};
use futures::Stream;
use serde::Serialize;

use crate::access::{AccessControl, AuthError, DenyAll, Principal, Resource};
use crate::clock::now_unix;
use crate::metrics::Metrics;

/// A push refused because it would exceed a quota.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage quota exceeded: {scope} has a storage quota of {} and holds {}{}; this upload of {} would bring it to {}. Delete content (or run the repository's cleanup policies) or raise the quota", format_bytes(*.quota), format_bytes(*.usage), reserved_text(*.reserved), incoming_text(*.incoming), format_bytes(.usage.saturating_add(*.reserved).saturating_add(.incoming.unwrap_or(0))))]
pub struct QuotaExceeded {
    /// The resource whose quota it is (`projects/p/repositories/r` or
    /// `projects/p`).
    pub scope: String,
    /// The quota in bytes.
    pub quota: u64,
    /// Bytes held now.
    pub usage: u64,
    /// Bytes other uploads in progress have reserved under the quota.
    pub reserved: u64,
    /// Bytes the push adds, when known.
    pub incoming: Option<u64>,
}

fn reserved_text(reserved: u64) -> String {
    if reserved == 0 {
        String::new()
    } else {
        format!(
            ", and uploads in progress have reserved {}",
            format_bytes(reserved)
        )
    }
}

fn incoming_text(incoming: Option<u64>) -> String {
    match incoming {
        Some(n) => format_bytes(n),
        None => "more bytes".into(),
    }
}

/// Errors of quota checks and settings.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The push would exceed a quota.
    #[error(transparent)]
    Exceeded(#[from] QuotaExceeded),
    /// The caller may not read or set the quota.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// No such repository or project.
    #[error("{0} not found")]
    NotFound(String),
    /// The request does not apply; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Quotas and usage of a repository and its project, as `describe` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaUsage {
    /// The repository's quota, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_quota_bytes: Option<u64>,
    /// The repository's usage.
    pub storage_usage_bytes: u64,
    /// The project's quota, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_storage_quota_bytes: Option<u64>,
    /// Bytes the project's standard repositories hold together.
    pub project_storage_usage_bytes: u64,
}

/// How much a push may still add, and whose quota bounds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headroom {
    /// Bytes that may still be stored.
    pub bytes: u64,
    /// The binding quota, to name in a refusal.
    pub limit: QuotaExceeded,
}

impl Headroom {
    /// The refusal of a push of `incoming` bytes (when known).
    pub fn refusal(&self, incoming: Option<u64>) -> QuotaExceeded {
        QuotaExceeded {
            incoming,
            ..self.limit.clone()
        }
    }

    /// Refuse `incoming` bytes that do not fit.
    pub fn admit(&self, incoming: u64) -> Result<(), QuotaExceeded> {
        if incoming > self.bytes {
            Err(self.refusal(Some(incoming)))
        } else {
            Ok(())
        }
    }
}

/// How long a reservation counts without being renewed, unless set: an
/// upload session idle for longer is expired anyway.
pub const DEFAULT_RESERVATION_SECS: i64 = 3600;

/// Storage quotas: reading, setting, and checking pushes against them.
pub struct StorageQuotas {
    store: Arc<dyn CleanupStore>,
    meta: Arc<dyn MetadataStore>,
    access: Arc<dyn AccessControl>,
    metrics: Option<Arc<Metrics>>,
    reservation_secs: i64,
}

impl StorageQuotas {
    /// Quotas in `store`, usage from `meta`; callers are refused until
    /// [`Self::with_access_control`].
    pub fn new(store: Arc<dyn CleanupStore>, meta: Arc<dyn MetadataStore>) -> Self {
        Self {
            store,
            meta,
            access: Arc::new(DenyAll),
            metrics: None,
            reservation_secs: DEFAULT_RESERVATION_SECS,
        }
    }

    /// Let a reservation count for `secs` after it was last renewed (each
    /// chunk of an upload renews it): the upload sessions' idle timeout, so
    /// that one a crash left behind frees its bytes when its session would
    /// have expired.
    pub fn with_reservation_secs(mut self, secs: i64) -> Self {
        self.reservation_secs = secs.max(1);
        self
    }

    /// Count refusals in `metrics` (`entrepot_quota_refusals_total`).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Count one push refused by a quota.
    pub fn refused(&self) {
        if let Some(m) = &self.metrics {
            m.quota_refused();
        }
    }

    /// Authorize callers through `access`.
    pub fn with_access_control(mut self, access: Arc<dyn AccessControl>) -> Self {
        self.access = access;
        self
    }

    /// How much more `repo` may store, bounded by its own quota and its
    /// project's, after what is stored and what uploads in progress have
    /// reserved; `None` when neither quota is set. Costs one read of each
    /// quota and, for each that is set, a count of usage and reservations.
    /// An estimate for cutting off bodies of unknown length: only
    /// [`Self::reserve`] decides atomically.
    pub async fn headroom(&self, repo: &RepositoryName) -> Result<Option<Headroom>, StoreError> {
        let now = now_unix();
        let mut best: Option<Headroom> = None;
        if let Some(quota) = self
            .store
            .storage_quota(&repo.project, Some(repo.repository.as_str()))
            .await?
        {
            let usage = self.meta.repository_size_bytes(repo).await?;
            let reserved = self
                .store
                .quota_reserved_bytes(&repo.project, Some(repo.repository.as_str()), now)
                .await?;
            best = Some(headroom(repo.to_string(), quota, usage, reserved));
        }
        if let Some(quota) = self.store.storage_quota(&repo.project, None).await? {
            let usage = self.store.project_hosted_bytes(&repo.project).await?;
            let reserved = self
                .store
                .quota_reserved_bytes(&repo.project, None, now)
                .await?;
            let project = headroom(format!("projects/{}", repo.project), quota, usage, reserved);
            if best.as_ref().is_none_or(|b| project.bytes < b.bytes) {
                best = Some(project);
            }
        }
        Ok(best)
    }

    /// Reserve `bytes` for the upload `id` to `repo` (replacing what it
    /// held), atomically against usage and every other reservation of the
    /// repository and of its project; refused, naming the quota, the usage
    /// and what others reserved, when they do not fit. Renews the
    /// reservation's expiry. Returns whether a reservation is held: without
    /// a quota on the repository or its project nothing is written (one
    /// read of each quota), and there is nothing to release.
    pub async fn reserve(
        &self,
        id: &str,
        repo: &RepositoryName,
        bytes: u64,
    ) -> Result<bool, QuotaError> {
        let own = self
            .store
            .storage_quota(&repo.project, Some(repo.repository.as_str()))
            .await?;
        if own.is_none()
            && self
                .store
                .storage_quota(&repo.project, None)
                .await?
                .is_none()
        {
            return Ok(false);
        }
        let now = now_unix();
        match self
            .store
            .reserve_quota(id, repo, bytes, now, now + self.reservation_secs)
            .await?
        {
            QuotaReservation::Granted => Ok(true),
            QuotaReservation::Refused(short) => Err(QuotaExceeded {
                scope: match &short.repository {
                    Some(r) => format!("projects/{}/repositories/{r}", repo.project),
                    None => format!("projects/{}", repo.project),
                },
                quota: short.quota,
                usage: short.usage,
                reserved: short.reserved,
                incoming: Some(bytes),
            }
            .into()),
        }
    }

    /// Drop the reservation of upload `id`: its bytes now count as usage,
    /// or the upload ended. A failure is logged, not returned: the
    /// reservation then frees its bytes when it expires.
    pub async fn release(&self, id: &str) {
        if let Err(e) = self.store.release_quota(id).await {
            tracing::warn!(upload = id, error = %e, "could not release a quota reservation; it frees its bytes when it expires");
        }
    }

    /// Refuse a push of `incoming` bytes to `repo` that would exceed a quota
    /// (usage and reservations included), without reserving them.
    pub async fn check(&self, repo: &RepositoryName, incoming: u64) -> Result<(), QuotaError> {
        if let Some(room) = self.headroom(repo).await? {
            room.admit(incoming)?;
        }
        Ok(())
    }

    /// Quotas and usage of `repo`, for `caller` who may read it.
    pub async fn usage(
        &self,
        caller: &Principal,
        repo: &RepositoryName,
    ) -> Result<QuotaUsage, QuotaError> {
        self.access
            .authorize(caller, Permission::RepositoriesGet, &repository(repo))
            .await?;
        Ok(QuotaUsage {
            storage_quota_bytes: self
                .store
                .storage_quota(&repo.project, Some(repo.repository.as_str()))
                .await?,
            storage_usage_bytes: self.meta.repository_size_bytes(repo).await?,
            project_storage_quota_bytes: self.store.storage_quota(&repo.project, None).await?,
            project_storage_usage_bytes: self.store.project_hosted_bytes(&repo.project).await?,
        })
    }

    /// Set (`Some`) or remove (`None`, or 0) the quota of a standard
    /// repository; the caller needs `artifactregistry.repositories.update`
    /// on it.
    pub async fn set_repository_quota(
        &self,
        caller: &Principal,
        repo: &RepositoryName,
        bytes: Option<u64>,
    ) -> Result<QuotaUsage, QuotaError> {
        self.access
            .authorize(caller, Permission::RepositoriesUpdate, &repository(repo))
            .await?;
        let found = self
            .meta
            .get_repository(repo)
            .await?
            .ok_or_else(|| QuotaError::NotFound(format!("repository {repo}")))?;
        if found.mode != Mode::StandardRepository && bytes.is_some_and(|b| b > 0) {
            return Err(QuotaError::Invalid(format!(
                "{repo} is a {}; storage quotas apply to standard (hosted) repositories",
                found.mode.as_str()
            )));
        }
        self.store
            .set_storage_quota(
                &repo.project,
                Some(repo.repository.as_str()),
                bytes.filter(|b| *b > 0),
            )
            .await?;
        self.usage(caller, repo).await
    }

    /// A project's quota and usage, for `caller` who may read the project.
    pub async fn project_usage(
        &self,
        caller: &Principal,
        project: &ProjectId,
    ) -> Result<ProjectQuota, QuotaError> {
        self.access
            .authorize(
                caller,
                Permission::ProjectsGet,
                &Resource::Project(project.to_string()),
            )
            .await?;
        self.project_quota(project).await
    }

    async fn project_quota(&self, project: &ProjectId) -> Result<ProjectQuota, QuotaError> {
        if self.meta.get_project(project).await?.is_none() {
            return Err(QuotaError::NotFound(format!("project {project}")));
        }
        Ok(ProjectQuota {
            name: format!("projects/{project}"),
            storage_quota_bytes: self.store.storage_quota(project, None).await?,
            storage_usage_bytes: self.store.project_hosted_bytes(project).await?,
        })
    }

    /// Set (`Some`) or remove (`None`, or 0) a project's quota over all of
    /// its standard repositories; the caller needs
    /// `resourcemanager.projects.setIamPolicy` on the project (its
    /// owners): the quota bounds every repository admin of the project.
    pub async fn set_project_quota(
        &self,
        caller: &Principal,
        project: &ProjectId,
        bytes: Option<u64>,
    ) -> Result<ProjectQuota, QuotaError> {
        self.access
            .authorize(
                caller,
                Permission::ProjectsSetIamPolicy,
                &Resource::Project(project.to_string()),
            )
            .await?;
        if self.meta.get_project(project).await?.is_none() {
            return Err(QuotaError::NotFound(format!("project {project}")));
        }
        self.store
            .set_storage_quota(project, None, bytes.filter(|b| *b > 0))
            .await?;
        self.project_quota(project).await
    }
}

/// A project's quota and usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectQuota {
    /// `projects/{p}`.
    pub name: String,
    /// The quota, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_quota_bytes: Option<u64>,
    /// Bytes its standard repositories hold.
    pub storage_usage_bytes: u64,
}

fn headroom(scope: String, quota: u64, usage: u64, reserved: u64) -> Headroom {
    Headroom {
        bytes: quota.saturating_sub(usage).saturating_sub(reserved),
        limit: QuotaExceeded {
            scope,
            quota,
            usage,
            reserved,
            incoming: None,
        },
    }
}

fn repository(repo: &RepositoryName) -> Resource {
    Resource::Repository {
        project: repo.project.to_string(),
        repository: repo.repository.to_string(),
    }
}

/// A body that fails once it has carried more than `limit` bytes, setting
/// `exceeded`: the write it feeds is aborted (staged bytes are discarded)
/// before anything past the quota is stored.
pub fn limit_body(body: ByteStream, limit: u64, exceeded: Arc<AtomicBool>) -> ByteStream {
    Box::pin(Limited {
        inner: body,
        left: limit,
        exceeded,
        drained: None,
    })
}

/// Most bytes of a refused body read and thrown away before the refusal is
/// answered. A client still sending when the server answers and closes gets
/// a broken pipe instead of the answer (skopeo then prints "write: broken
/// pipe", not the quota): reading the rest, up to this, lets the refusal
/// reach it; a body longer than this is cut off.
pub const DRAIN_LIMIT: u64 = 64 << 20;

/// Read and throw away what is left of `body`, at most [`DRAIN_LIMIT`]
/// bytes, so that a refusal answered now reaches a client still sending.
pub async fn drain(mut body: ByteStream) {
    use futures::StreamExt as _;
    let mut drained = 0u64;
    while let Some(Ok(chunk)) = body.next().await {
        drained += chunk.len() as u64;
        if drained > DRAIN_LIMIT {
            return;
        }
    }
}

struct Limited {
    inner: ByteStream,
    left: u64,
    exceeded: Arc<AtomicBool>,
    /// Bytes thrown away since the limit was passed (see [`DRAIN_LIMIT`]).
    drained: Option<u64>,
}

fn quota_error() -> std::io::Error {
    std::io::Error::other("the upload exceeds the storage quota")
}

impl Stream for Limited {
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Past the limit: the rest is read and thrown away (bounded), then
        // the error ends the body.
        while let Some(drained) = self.drained {
            match self.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) if drained <= DRAIN_LIMIT => {
                    self.drained = Some(drained + chunk.len() as u64);
                }
                _ => {
                    self.drained = None;
                    self.left = 0;
                    return Poll::Ready(Some(Err(quota_error())));
                }
            }
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let n = chunk.len() as u64;
                if n > self.left {
                    self.exceeded.store(true, Ordering::SeqCst);
                    self.drained = Some(n);
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                self.left -= n;
                Poll::Ready(Some(Ok(chunk)))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;

    #[tokio::test]
    async fn a_limited_body_fails_past_its_limit() {
        let chunks = vec![
            Ok(bytes::Bytes::from_static(b"abcd")),
            Ok(bytes::Bytes::from_static(b"efgh")),
        ];
        let flag = Arc::new(AtomicBool::new(false));
        let mut body = limit_body(futures::stream::iter(chunks).boxed(), 6, flag.clone());
        assert!(body.next().await.unwrap().is_ok());
        assert!(body.next().await.unwrap().is_err());
        assert!(flag.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_body_past_its_limit_is_read_to_its_end_before_the_error() {
        let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = read.clone();
        let chunks = futures::stream::iter(0..5).map(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(bytes::Bytes::from_static(b"abcd"))
        });
        let flag = Arc::new(AtomicBool::new(false));
        let mut body = limit_body(chunks.boxed(), 6, flag);
        assert!(body.next().await.unwrap().is_ok());
        assert!(body.next().await.unwrap().is_err());
        // Every chunk was read (and thrown away) before the error.
        assert_eq!(read.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn a_refusal_names_the_quota_and_the_usage() {
        let room = headroom("projects/p/repositories/r".into(), 10 << 20, 9 << 20, 0);
        let message = room.admit(2 << 20).unwrap_err().to_string();
        assert!(
            message.contains("projects/p/repositories/r has a storage quota of 10.0 MiB and holds 9.0 MiB; this upload of 2.0 MiB"),
            "{message}"
        );
        assert!(room.admit(1 << 20).is_ok());
        // What uploads in progress reserved is named, and counts.
        let room = headroom("projects/p".into(), 10 << 20, 6 << 20, 3 << 20);
        let message = room.admit(2 << 20).unwrap_err().to_string();
        assert!(
            message.contains("projects/p has a storage quota of 10.0 MiB and holds 6.0 MiB, and uploads in progress have reserved 3.0 MiB; this upload of 2.0 MiB would bring it to 11.0 MiB"),
            "{message}"
        );
        assert!(room.admit(1 << 20).is_ok());
    }
}
