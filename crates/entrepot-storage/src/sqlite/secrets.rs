//! The secret store on SQLite: secrets, sealed versions and the audit log.
//!
//! Destroying a version overwrites its sealed columns with NULL under
//! `secure_delete` and truncates the write-ahead log, so the old bytes do not
//! linger in free pages.

use std::collections::BTreeMap;

use async_trait::async_trait;
use entrepot_domain::{ProjectId, SecretId, SecretName};
use sqlx::Row;

use super::{is_unique_violation, SqliteMetadataStore};
use crate::metadata::StoreError;
use crate::secrets::*;

fn secret_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<SecretRecord, StoreError> {
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

fn version_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<VersionRecord, StoreError> {
    Ok(VersionRecord {
        project: row.try_get("project")?,
        secret: row.try_get("secret")?,
        number: row.try_get("number")?,
        state: row.try_get("state")?,
        create_time: row.try_get("create_time")?,
        destroy_time: row.try_get("destroy_time")?,
    })
}

fn audit_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<AuditRecord, StoreError> {
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

impl SqliteMetadataStore {
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
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut *conn)
            .await?;
        let deleted = {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            // The secret row first: its etag decides whether anything goes.
            let n = sqlx::query(
                "DELETE FROM secrets WHERE project = ? AND id = ? AND (? IS NULL OR etag = ?)",
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
            sqlx::query("DELETE FROM secret_versions WHERE project = ? AND secret = ?")
                .bind(project)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            // The policy goes with its secret: a new secret with the same id
            // must not inherit who could read the old one.
            sqlx::query("DELETE FROM iam_policies WHERE resource = ?")
                .bind(&policy_name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            true
        };
        self.cache.forget_policy(&policy_name);
        truncate_wal(&mut conn).await;
        Ok(deleted)
    }
}

#[async_trait]
impl SecretStore for SqliteMetadataStore {
    async fn create_secret(&self, secret: &SecretRecord) -> Result<(), StoreError> {
        let labels = serde_json::to_string(&secret.labels)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let result = sqlx::query(
            "INSERT INTO secrets (project, id, labels, create_time, settings, etag) \
             VALUES (?, ?, ?, ?, ?, ?)",
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
            "SELECT {SECRET_COLUMNS} FROM secrets WHERE project = ? AND id = ?"
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
            "SELECT {SECRET_COLUMNS} FROM secrets WHERE project = ? AND id > ? \
             ORDER BY id LIMIT ?"
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
        let n = sqlx::query("UPDATE secrets SET labels = ? WHERE project = ? AND id = ?")
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
            "UPDATE secrets SET labels = ?, settings = ?, etag = ? \
             WHERE project = ? AND id = ? AND etag = ?",
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
            "SELECT COALESCE(MAX(number), 0) + 1 FROM secret_versions WHERE project = ? AND secret = ?",
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            "SELECT {VERSION_COLUMNS} FROM secret_versions WHERE project = ? AND secret = ? AND number = ?"
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
             WHERE project = ? AND secret = ? AND state = 'ENABLED' ORDER BY number DESC LIMIT 1"
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
             WHERE project = ? AND secret = ? AND number = ? AND state <> 'DESTROYED'",
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
            "SELECT {VERSION_COLUMNS} FROM secret_versions WHERE project = ? AND secret = ? \
             AND number < ? ORDER BY number DESC LIMIT ?"
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
            "UPDATE secret_versions SET state = ? \
             WHERE project = ? AND secret = ? AND number = ? AND state <> 'DESTROYED'",
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
        // Overwrite freed bytes in the database file instead of leaving them in free pages.
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut *conn)
            .await?;
        let n = sqlx::query(
            "UPDATE secret_versions SET state = 'DESTROYED', ciphertext = NULL, nonce = NULL, \
             wrapped_key = NULL, key_id = NULL, destroy_time = COALESCE(destroy_time, ?) \
             WHERE project = ? AND secret = ? AND number = ?",
        )
        .bind(time)
        .bind(project)
        .bind(secret)
        .bind(number)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        truncate_wal(&mut conn).await;
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
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut *conn)
            .await?;
        let mut replaced = 0;
        {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            for (old, new) in replacements {
                replaced += sqlx::query(
                    "UPDATE secret_versions SET key_id = ?, wrapped_key = ? \
                     WHERE project = ? AND secret = ? AND number = ? AND key_id = ? AND wrapped_key = ?",
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
        truncate_wal(&mut conn).await;
        Ok(replaced)
    }

    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO secret_audit_log (time, project, principal, action, resource, version, allowed, reason) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
            "DELETE FROM secret_audit_log WHERE seq <= (SELECT MAX(seq) FROM secret_audit_log) - ?",
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
                         INDEXED BY secret_audit_log_by_resource \
                         WHERE project = ? AND resource = ? AND seq < ? ORDER BY seq DESC LIMIT ?) \
                       UNION ALL \
                       SELECT * FROM (SELECT {AUDIT_COLUMNS} FROM secret_audit_log \
                         INDEXED BY secret_audit_log_by_resource \
                         WHERE project = ? AND resource >= ? AND resource < ? AND seq < ? \
                         ORDER BY seq DESC LIMIT ?) \
                     ) ORDER BY seq DESC LIMIT ?"
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
                     WHERE project = ? AND (resource = ? OR resource LIKE ? ESCAPE '\\') \
                     AND seq < ? ORDER BY seq DESC LIMIT ?"
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
                    "SELECT {AUDIT_COLUMNS} FROM secret_audit_log WHERE project = ? AND seq < ? \
                     ORDER BY seq DESC LIMIT ?"
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

/// Move the write-ahead log into the database file and truncate it, so bytes just
/// wiped from the database do not survive in old log frames. Best effort: with
/// readers active the log is truncated at the next checkpoint instead.
async fn truncate_wal(conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>) {
    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut **conn)
        .await
    {
        tracing::warn!(error = %e, "could not truncate the write-ahead log after wiping secret data");
    }
}

#[cfg(test)]
mod tests {
    use crate::conformance::{pid, sname};
    use crate::secrets::{SealedPayload, SecretRecord, VersionRecord};
    use crate::testing::file_stores;

    /// Whether `needle` is anywhere in the database's files.
    fn on_disk(dir: &std::path::Path, needle: &[u8]) -> bool {
        ["metadata.db", "metadata.db-wal"].iter().any(|name| {
            std::fs::read(dir.join(name))
                .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        })
    }

    #[tokio::test]
    async fn destroyed_and_deleted_payloads_leave_no_bytes_in_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let stores = file_stores(dir.path()).await.unwrap();
        stores.metadata.create_project(&pid("demo")).await.unwrap();
        let marker = |n: u8| {
            format!("sealed-bytes-of-version-{n}-")
                .repeat(4)
                .into_bytes()
        };
        for id in ["destroyed", "deleted"] {
            stores
                .secrets
                .create_secret(&SecretRecord {
                    project: "demo".into(),
                    id: id.into(),
                    labels: Default::default(),
                    create_time: "2026-01-01T00:00:00Z".into(),
                    settings: "{}".into(),
                    etag: "\"1\"".into(),
                })
                .await
                .unwrap();
        }
        for (n, secret) in [(1, "destroyed"), (2, "deleted")] {
            let version = VersionRecord {
                project: "demo".into(),
                secret: secret.into(),
                number: 1,
                state: "ENABLED".into(),
                create_time: "2026-01-01T00:00:00Z".into(),
                destroy_time: None,
            };
            let sealed = SealedPayload {
                ciphertext: marker(n),
                nonce: vec![n; 12],
                wrapped_key: vec![n; 60],
                key_id: "k1".into(),
            };
            stores
                .secrets
                .insert_version(&version, &sealed)
                .await
                .unwrap();
        }
        assert!(on_disk(dir.path(), &marker(1)) && on_disk(dir.path(), &marker(2)));
        assert!(stores
            .secrets
            .destroy_version(&sname("demo", "destroyed"), 1, "2026-01-02T00:00:00Z")
            .await
            .unwrap());
        assert!(!on_disk(dir.path(), &marker(1)));
        assert!(stores
            .secrets
            .delete_secret(&sname("demo", "deleted"))
            .await
            .unwrap());
        assert!(!on_disk(dir.path(), &marker(2)));
    }
}
