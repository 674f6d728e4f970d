//! The registry access policy on PostgreSQL: one row holding the policy as JSON,
//! its etag and the time of the last change.

use async_trait::async_trait;
use entrepot_domain::access_policy::AccessPolicy;
use sqlx::Row;

use super::PostgresMetadataStore;
use crate::access_policy::*;
use crate::metadata::StoreError;

#[async_trait]
impl AccessPolicyStore for PostgresMetadataStore {
    async fn get_access_policy(&self) -> Result<Option<StoredAccessPolicy>, StoreError> {
        let row = sqlx::query("SELECT policy, etag, update_time FROM access_policy WHERE id = 1")
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let text: String = row.try_get("policy")?;
        let policy: AccessPolicy = serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("registry access policy: {e}")))?;
        Ok(Some(StoredAccessPolicy {
            policy,
            etag: row.try_get("etag")?,
            update_time: row.try_get("update_time")?,
        }))
    }

    async fn set_access_policy(
        &self,
        policy: &AccessPolicy,
        new_etag: &str,
        expected_etag: Option<&str>,
    ) -> Result<bool, StoreError> {
        let text = serde_json::to_string(policy).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now = self.now_rfc3339();
        let result = match expected_etag {
            Some(etag) => {
                sqlx::query(
                    "UPDATE access_policy SET policy = $1, etag = $2, update_time = $3 WHERE id = 1 AND etag = $4",
                )
                .bind(&text)
                .bind(new_etag)
                .bind(&now)
                .bind(etag)
                .execute(self.pool())
                .await?
            }
            None => {
                sqlx::query(
                    "INSERT INTO access_policy (id, policy, etag, update_time) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&text)
                .bind(new_etag)
                .bind(&now)
                .execute(self.pool())
                .await?
            }
        };
        Ok(result.rows_affected() == 1)
    }
}
