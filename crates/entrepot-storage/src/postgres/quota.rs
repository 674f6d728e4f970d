//! Quota reservations on PostgreSQL (migration 0016): each check and insert
//! runs in one transaction under an advisory lock keyed on the project, so
//! concurrent reservations of one project take turns and each sees what the
//! previous ones reserved or committed.

use entrepot_domain::{ProjectId, RepositoryName};
use sqlx::{Postgres, Transaction};

use super::cleanup::PROJECT_HOSTED_SIZE;
use super::metadata::REPOSITORY_SIZE;
use super::{locks, PostgresMetadataStore};
use crate::cleanup::{QuotaReservation, QuotaShortfall};
use crate::metadata::StoreError;

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reserved bytes under `repository` of `project` ('' for the whole
/// project), leaving out the reservation `except`.
const RESERVED: &str = "SELECT COALESCE(SUM(bytes), 0)::BIGINT FROM quota_reservations
     WHERE project = $1 AND ($2 = '' OR repository = $2) AND id <> $3 AND expires_unix > $4";

impl PostgresMetadataStore {
    pub(super) async fn reserve_quota_bytes(
        &self,
        id: &str,
        repo: &RepositoryName,
        bytes: u64,
        now_unix: i64,
        expires_unix: i64,
    ) -> Result<QuotaReservation, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(locks::QUOTA_RESERVATIONS)
            .bind(repo.project.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM quota_reservations WHERE project = $1 AND expires_unix <= $2")
            .bind(repo.project.as_str())
            .bind(now_unix)
            .execute(&mut *tx)
            .await?;
        for scope in [repo.repository.as_str(), ""] {
            if let Some(shortfall) = shortfall(&mut tx, id, repo, scope, bytes, now_unix).await? {
                tx.rollback().await?;
                return Ok(QuotaReservation::Refused(shortfall));
            }
        }
        sqlx::query(
            "INSERT INTO quota_reservations (id, project, repository, bytes, expires_unix)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes,
                 expires_unix = excluded.expires_unix",
        )
        .bind(id)
        .bind(repo.project.as_str())
        .bind(repo.repository.as_str())
        .bind(to_i64(bytes))
        .bind(expires_unix)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(QuotaReservation::Granted)
    }

    pub(super) async fn release_quota_bytes(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM quota_reservations WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub(super) async fn reserved_quota_bytes(
        &self,
        project: &ProjectId,
        repository: Option<&str>,
        now_unix: i64,
    ) -> Result<u64, StoreError> {
        let reserved: i64 = sqlx::query_scalar(RESERVED)
            .bind(project.as_str())
            .bind(repository.unwrap_or(""))
            .bind("")
            .bind(now_unix)
            .fetch_one(self.pool())
            .await?;
        Ok(to_u64(reserved))
    }
}

/// What keeps `bytes` more from fitting under the quota of `scope` (a
/// repository of `repo`'s project, or '' for the project), if one is set
/// and they do not fit.
///
/// Reservations are read before usage: an upload links its blob (usage)
/// before it releases its reservation without this lock, so between the two
/// reads its bytes are seen at least once, never missed.
async fn shortfall(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    repo: &RepositoryName,
    scope: &str,
    bytes: u64,
    now_unix: i64,
) -> Result<Option<QuotaShortfall>, StoreError> {
    let quota: Option<i64> = sqlx::query_scalar(
        "SELECT bytes FROM storage_quotas WHERE project = $1 AND repository = $2",
    )
    .bind(repo.project.as_str())
    .bind(scope)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(quota) = quota.map(to_u64) else {
        return Ok(None);
    };
    let reserved: i64 = sqlx::query_scalar(RESERVED)
        .bind(repo.project.as_str())
        .bind(scope)
        .bind(id)
        .bind(now_unix)
        .fetch_one(&mut **tx)
        .await?;
    let usage: i64 = if scope.is_empty() {
        sqlx::query_scalar(PROJECT_HOSTED_SIZE)
            .bind(repo.project.as_str())
            .fetch_one(&mut **tx)
            .await?
    } else {
        sqlx::query_scalar(REPOSITORY_SIZE)
            .bind(repo.project.as_str())
            .bind(scope)
            .fetch_one(&mut **tx)
            .await?
    };
    let (usage, reserved) = (to_u64(usage), to_u64(reserved));
    let fits = usage
        .saturating_add(reserved)
        .checked_add(bytes)
        .is_some_and(|total| total <= quota);
    Ok((!fits).then(|| QuotaShortfall {
        repository: (!scope.is_empty()).then(|| scope.to_owned()),
        quota,
        usage,
        reserved,
    }))
}
