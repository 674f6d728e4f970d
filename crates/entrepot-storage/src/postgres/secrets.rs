//! The secret store on PostgreSQL: secrets, sealed versions and the audit log.
//!
//! Destroying a version overwrites its sealed columns with NULL. Unlike
//! SQLite's `secure_delete`, PostgreSQL keeps the old row version until
//! (auto)vacuum reclaims it, and its write-ahead log and backups keep it
//! longer: the payload stays sealed under a data key the master key wraps,
//! which never enters the database (see docs/deploy.md).

use std::collections::BTreeMap;

use async_trait::async_trait;
use entrepot_domain::{ProjectId, SecretId, SecretName};
use sqlx::Row;

use super::{is_unique_violation, PostgresMetadataStore};
use crate::metadata::StoreError;
use crate::secrets::*;

fn secret_from_row(row: &sqlx::postgres::PgRow) -> Result<SecretRecord, StoreError> {
    let labels: String = row.try_get("labels")?;
    Ok(SecretRecord {
        project: row.try_get("project")?,
        id: row.try_get("id")?,
        labels: serde_json::from_str(&labels).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        create_time: row.try_get("create_time")?,
        settings: row.try_get("settings")?,
        etag: row.try_get("etag")?,
    })
}

const SECRET_COLUMNS: &str = "project, id, labels, create_time, settings, etag";

fn version_from_row(row: &sqlx::postgres::PgRow) -> Result<VersionRecord, StoreError> {
    Ok(VersionRecord {
        project: row.try_get("project")?,
        secret: row.try_get("secret")?,
        number: row.try_get("number")?,
        state: row.try_get("state")?,
        create_time: row.try_get("create_time")?,
        destroy_time: row.try_get("destroy_time")?,
    })
}

fn audit_from_row(row: &sqlx::postgres::PgRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        time: row.try_get("time")?,
        project: row.try_get("project")?,
        principal: row.try_get("principal")?,
        action: row.try_get("action")?,
        resource: row.try_get("resource")?,
        version: row.try_get("version")?,
        allowed: row.try_get::<i64, _>("allowed")? != 0,
        reason: row.try_get("reason")?,
    })
}

const VERSION_COLUMNS: &str = "project, secret, number, state, create_time, destroy_time";

const AUDIT_COLUMNS: &str =
    "seq, time, project, principal, action, resource, version, allowed, reason";

/// Escape `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_prefix(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push_str("/%");
    out
}

impl PostgresMetadataStore {
    /// Delete a secret, its versions and its policy in one transaction; with
    /// `etag`, only if the secret still has it. False if nothing was deleted.
    async fn delete_secret_where(
        &self,
        project: &str,
        id: &str,
        etag: Option<&str>,
    ) -> Result<bool, StoreError> {
        let policy_name = format!("projects/{project}/secrets/{id}");
        let mut conn = self.pool().acquire().await?;
        let deleted = {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            // The secret row first: its etag decides whether anything goes.
            let n = sqlx::query(
                "DELETE FROM secrets WHERE project = $1 AND id = $2 AND ($3::TEXT IS NULL OR etag = $4)",
            )
            .bind(project)
            .bind(id)
            .bind(etag)
            .bind(etag)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query("DELETE FROM secret_versions WHERE project = $1 AND secret = $2")
                .bind(project)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            // The policy goes with its secret: a new secret with the same id
            // must not inherit who could read the old one.
            sqlx::query("DELETE FROM iam_policies WHERE resource = $1")
                .bind(&policy_name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            true
        };
        Ok(deleted)
    }
}

#[async_trait]
impl SecretStore for PostgresMetadataStore {
    async fn create_secret(&self, secret: &SecretRecord) -> Result<(), StoreError> {
        let labels = serde_json::to_string(&secret.labels)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let result = sqlx::query(
            "INSERT INTO secrets (project, id, labels, create_time, settings, etag) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&secret.project)
        .bind(&secret.id)
        .bind(labels)
        .bind(&secret.create_time)
        .bind(&secret.settings)
        .bind(&secret.etag)
        .execute(self.pool())
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_secret(&self, name: &SecretName) -> Result<Option<SecretRecord>, StoreError> {
        let (project, id) = (name.project.as_str(), name.secret.as_str());
        sqlx::query(&format!(
            "SELECT {SECRET_COLUMNS} FROM secrets WHERE project = $1 AND id = $2"
        ))
        .bind(project)
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(secret_from_row)
        .transpose()
    }

    async fn list_secrets(
        &self,
        project: &ProjectId,
        after: Option<&SecretId>,
        limit: u32,
    ) -> Result<Vec<SecretRecord>, StoreError> {
        let (project, after) = (project.as_str(), after.map(SecretId::as_str));
        sqlx::query(&format!(
            "SELECT {SECRET_COLUMNS} FROM secrets WHERE project = $1 AND id > $2 \
             ORDER BY id LIMIT $3"
        ))
        .bind(project)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(secret_from_row)
        .collect()
    }

    async fn update_secret_labels(
        &self,
        name: &SecretName,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError> {
        let (project, id) = (name.project.as_str(), name.secret.as_str());
        let labels =
            serde_json::to_string(labels).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let n = sqlx::query("UPDATE secrets SET labels = $1 WHERE project = $2 AND id = $3")
            .bind(labels)
            .bind(project)
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn update_secret(
        &self,
        secret: &SecretRecord,
        expected_etag: &str,
    ) -> Result<bool, StoreError> {
        let labels = serde_json::to_string(&secret.labels)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // The etag comparison is part of the write, so of two writers that
        // read the same etag only one succeeds.
        let n = sqlx::query(
            "UPDATE secrets SET labels = $1, settings = $2, etag = $3 \
             WHERE project = $4 AND id = $5 AND etag = $6",
        )
        .bind(labels)
        .bind(&secret.settings)
        .bind(&secret.etag)
        .bind(&secret.project)
        .bind(&secret.id)
        .bind(expected_etag)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn delete_secret(&self, name: &SecretName) -> Result<bool, StoreError> {
        let (project, id) = (name.project.as_str(), name.secret.as_str());
        self.delete_secret_where(project, id, None).await
    }

    async fn delete_secret_if_etag(
        &self,
        name: &SecretName,
        etag: &str,
    ) -> Result<bool, StoreError> {
        let (project, id) = (name.project.as_str(), name.secret.as_str());
        self.delete_secret_where(project, id, Some(etag)).await
    }

    async fn next_version_number(&self, name: &SecretName) -> Result<i64, StoreError> {
        let (project, secret) = (name.project.as_str(), name.secret.as_str());
        let n: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM secret_versions WHERE project = $1 AND secret = $2",
        )
        .bind(project)
        .bind(secret)
        .fetch_one(self.pool())
        .await?;
        Ok(n)
    }

    async fn insert_version(
        &self,
        version: &VersionRecord,
        sealed: &SealedPayload,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO secret_versions \
             (project, secret, number, state, ciphertext, nonce, wrapped_key, key_id, create_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&version.project)
        .bind(&version.secret)
        .bind(version.number)
        .bind(&version.state)
        .bind(&sealed.ciphertext)
        .bind(&sealed.nonce)
        .bind(&sealed.wrapped_key)
        .bind(&sealed.key_id)
        .bind(&version.create_time)
        .execute(self.pool())
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_version(
        &self,
        name: &SecretName,
        number: i64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let (project, secret) = (name.project.as_str(), name.secret.as_str());
        sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM secret_versions WHERE project = $1 AND secret = $2 AND number = $3"
        ))
        .bind(project)
        .bind(secret)
        .bind(number)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(version_from_row)
        .transpose()
    }

    async fn latest_enabled_version(
        &self,
        name: &SecretName,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let (project, secret) = (name.project.as_str(), name.secret.as_str());
        sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM secret_versions \
             WHERE project = $1 AND secret = $2 AND state = 'ENABLED' ORDER BY number DESC LIMIT 1"
        ))
        .bind(project)
        .bind(secret)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(version_from_row)
        .transpose()
    }

    async fn sealed_payload(
        &self,
        name: &SecretName,
        number: i64,
    ) -> Result<Option<SealedPayload>, StoreError> {
        let (project, secret) = (name.project.as_str(), name.secret.as_str());
        let row = sqlx::query(
            "SELECT ciphertext, nonce, wrapped_key, key_id FROM secret_versions \
             WHERE project = $1 AND secret = $2 AND number = $3 AND state <> 'DESTROYED'",
        )
        .bind(project)
        .bind(secret)
        .bind(number)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let ciphertext: Option<Vec<u8>> = row.try_get("ciphertext")?;
        let nonce: Option<Vec<u8>> = row.try_get("nonce")?;
        let wrapped_key: Option<Vec<u8>> = row.try_get("wrapped_key")?;
        let key_id: Option<String> = row.try_get("key_id")?;
        match (ciphertext, nonce, wrapped_key, key_id) {
            (Some(ciphertext), Some(nonce), Some(wrapped_key), Some(key_id)) => Ok(Some(SealedPayload {
                ciphertext,
                nonce,
                wrapped_key,
                key_id,
            })),
            _ => Err(StoreError::Corrupt(format!(
                "projects/{project}/secrets/{secret}/versions/{number} is not destroyed but has no sealed payload"
            ))),
        }
    }

    async fn list_versions(
        &self,
        name: &SecretName,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        let (project, secret) = (name.project.as_str(), name.secret.as_str());
        sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM secret_versions WHERE project = $1 AND secret = $2 \
             AND number < $3 ORDER BY number DESC LIMIT $4"
        ))
        .bind(project)
        .bind(secret)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(version_from_row)
        .collect()
    }

    async fn set_version_state(
        &self,
        name: &SecretName,
        number: i64,
        state: &str,
    ) -> Result<bool, StoreError> {
        let (project, secret) = (name.project.as_str(), name.secret.as_str());
        let n = sqlx::query(
            "UPDATE secret_versions SET state = $1 \
             WHERE project = $2 AND secret = $3 AND number = $4 AND state <> 'DESTROYED'",
        )
        .bind(state)
        .bind(project)
        .bind(secret)
        .bind(number)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn destroy_version(
        &self,
        name: &SecretName,
        number: i64,
        time: &str,
    ) -> Result<bool, StoreError> {
        let (project, secret) = (name.project.as_str(), name.secret.as_str());
        let mut conn = self.pool().acquire().await?;
        let n = sqlx::query(
            "UPDATE secret_versions SET state = 'DESTROYED', ciphertext = NULL, nonce = NULL, \
             wrapped_key = NULL, key_id = NULL, destroy_time = COALESCE(destroy_time, $1) \
             WHERE project = $2 AND secret = $3 AND number = $4",
        )
        .bind(time)
        .bind(project)
        .bind(secret)
        .bind(number)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn wrapped_keys(&self) -> Result<Vec<WrappedKeyRecord>, StoreError> {
        sqlx::query(
            "SELECT project, secret, number, key_id, wrapped_key FROM secret_versions \
             WHERE wrapped_key IS NOT NULL ORDER BY project, secret, number",
        )
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| {
            Ok(WrappedKeyRecord {
                project: row.try_get("project")?,
                secret: row.try_get("secret")?,
                number: row.try_get("number")?,
                key_id: row.try_get("key_id")?,
                wrapped_key: row.try_get("wrapped_key")?,
            })
        })
        .collect()
    }

    async fn replace_wrapped_keys(
        &self,
        replacements: &[(WrappedKeyRecord, WrappedKeyRecord)],
    ) -> Result<u64, StoreError> {
        let mut conn = self.pool().acquire().await?;
        let mut replaced = 0;
        {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            for (old, new) in replacements {
                replaced += sqlx::query(
                    "UPDATE secret_versions SET key_id = $1, wrapped_key = $2 \
                     WHERE project = $3 AND secret = $4 AND number = $5 AND key_id = $6 AND wrapped_key = $7",
                )
                .bind(&new.key_id)
                .bind(&new.wrapped_key)
                .bind(&old.project)
                .bind(&old.secret)
                .bind(old.number)
                .bind(&old.key_id)
                .bind(&old.wrapped_key)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
        }
        Ok(replaced)
    }

    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO secret_audit_log (time, project, principal, action, resource, version, allowed, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&record.time)
        .bind(&record.project)
        .bind(&record.principal)
        .bind(&record.action)
        .bind(&record.resource)
        .bind(&record.version)
        .bind(i64::from(record.allowed))
        .bind(&record.reason)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn prune_audit(&self, keep: u64) -> Result<u64, StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let n = sqlx::query(
            "DELETE FROM secret_audit_log WHERE seq <= (SELECT MAX(seq) FROM secret_audit_log) - $1",
        )
        .bind(keep)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n)
    }

    async fn list_audit(
        &self,
        project: &str,
        resource: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let before = before.unwrap_or(i64::MAX);
        let limit = i64::from(limit);
        let rows = match resource {
            // A secret's name (or a longer one): few of the project's entries
            // match. Read them along (project, resource, seq), the name
            // itself and the names under it (a range: the text after "name/"
            // and before "name0", '0' being the character after '/'), each
            // newest first, and merge the two.
            Some(resource) if resource.split('/').count() >= 4 => {
                let under = format!("{resource}/");
                let past = format!("{resource}0");
                sqlx::query(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM ( \
                       SELECT * FROM (SELECT {AUDIT_COLUMNS} FROM secret_audit_log \
                         WHERE project = $1 AND resource = $2 AND seq < $3 ORDER BY seq DESC LIMIT $4) a \
                       UNION ALL \
                       SELECT * FROM (SELECT {AUDIT_COLUMNS} FROM secret_audit_log \
                         WHERE project = $5 AND resource >= $6 AND resource < $7 AND seq < $8 \
                         ORDER BY seq DESC LIMIT $9) b \
                     ) u ORDER BY seq DESC LIMIT $10"
                ))
                .bind(project)
                .bind(resource)
                .bind(before)
                .bind(limit)
                .bind(project)
                .bind(&under)
                .bind(&past)
                .bind(before)
                .bind(limit)
                .bind(limit)
                .fetch_all(self.pool())
                .await?
            }
            // A project or broader: most entries match; read the project's
            // log newest first and keep those that do.
            Some(resource) => {
                sqlx::query(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM secret_audit_log \
                     WHERE project = $1 AND (resource = $2 OR resource LIKE $3 ESCAPE '\\') \
                     AND seq < $4 ORDER BY seq DESC LIMIT $5"
                ))
                .bind(project)
                .bind(resource)
                .bind(like_prefix(resource))
                .bind(before)
                .bind(limit)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM secret_audit_log WHERE project = $1 AND seq < $2 \
                     ORDER BY seq DESC LIMIT $3"
                ))
                .bind(project)
                .bind(before)
                .bind(limit)
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    seq: row.try_get("seq")?,
                    record: audit_from_row(row)?,
                })
            })
            .collect()
    }
}
