//! The IAM store on PostgreSQL: users, service accounts, tokens and IAM policies.

use async_trait::async_trait;
use entrepot_domain::iam::{policy_etag, Binding, Member, Policy, EMPTY_POLICY_ETAG};
use entrepot_domain::resource::Resource;
use entrepot_domain::token_id::TokenId;
use entrepot_domain::ProjectId;
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::{decode, is_unique_violation, PostgresMetadataStore};
use crate::iam::*;
use crate::metadata::StoreError;

fn user_from_row(row: &PgRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        create_time: row.try_get("create_time")?,
    })
}

fn account_from_row(row: &PgRow) -> Result<ServiceAccountRecord, StoreError> {
    Ok(ServiceAccountRecord {
        email: row.try_get("email")?,
        project: decode(row.try_get::<String, _>("project")?, "project id")?,
        account_id: row.try_get("account_id")?,
        display_name: row.try_get("display_name")?,
        create_time: row.try_get("create_time")?,
    })
}

fn token_from_row(row: &PgRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: decode(row.try_get::<String, _>("id")?, "token id")?,
        principal: decode(row.try_get::<String, _>("principal")?, "token owner")?,
        token_hash: row.try_get("token_hash")?,
        description: row.try_get("description")?,
        expire_time: row.try_get("expire_time")?,
        read_only: row.try_get::<i64, _>("read_only")? != 0,
        revoked: row.try_get::<i64, _>("revoked")? != 0,
        create_time: row.try_get("create_time")?,
        last_used_time: row.try_get("last_used_time")?,
    })
}

/// Take every role away from a deleted principal, in the deleting
/// transaction, so that a principal re-created under the same name starts with
/// no grants. The resources whose policy changed.
async fn remove_member_from_policies(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    member: &Member,
    now: &str,
) -> Result<Vec<String>, StoreError> {
    // Members are stored as JSON strings: look for the quoted member string.
    let needle = serde_json::to_string(&member.to_string())
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let rows = sqlx::query(
        "SELECT resource, bindings FROM iam_policies WHERE strpos(bindings, $1) > 0 FOR UPDATE",
    )
    .bind(&needle)
    .fetch_all(&mut **tx)
    .await?;
    let mut changed = Vec::new();
    for row in rows {
        let resource: String = row.try_get("resource")?;
        let bindings: String = row.try_get("bindings")?;
        let bindings: Vec<Binding> = serde_json::from_str(&bindings)
            .map_err(|e| StoreError::Corrupt(format!("IAM policy of {resource}: {e}")))?;
        let mut policy = Policy {
            version: 1,
            etag: String::new(),
            bindings,
        };
        if !policy.remove_member(member) {
            continue;
        }
        let bindings = serde_json::to_string(&policy.bindings)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // A new etag: a writer holding the old policy must read it again.
        let mut random = [0u8; 8];
        random.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
        let etag = policy_etag(random);
        sqlx::query(
            "UPDATE iam_policies SET bindings = $1, etag = $2, update_time = $3 WHERE resource = $4",
        )
        .bind(&bindings)
        .bind(&etag)
        .bind(now)
        .bind(&resource)
        .execute(&mut **tx)
        .await?;
        changed.push(resource);
    }
    Ok(changed)
}

const TOKEN_COLUMNS: &str =
    "id, principal, token_hash, description, expire_time, read_only, revoked, create_time, last_used_time";

#[async_trait]
impl IamStore for PostgresMetadataStore {
    async fn create_user(
        &self,
        email: &str,
        password_hash: Option<&str>,
    ) -> Result<UserRecord, StoreError> {
        let create_time = self.now_rfc3339();
        match sqlx::query(
            "INSERT INTO iam_users (email, password_hash, create_time) VALUES ($1, $2, $3)",
        )
        .bind(email)
        .bind(password_hash)
        .bind(&create_time)
        .execute(self.pool())
        .await
        {
            Ok(_) => Ok(UserRecord {
                email: email.to_owned(),
                password_hash: password_hash.map(str::to_owned),
                create_time,
            }),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_user(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        sqlx::query("SELECT email, password_hash, create_time FROM iam_users WHERE email = $1")
            .bind(email)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn list_users(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        sqlx::query(
            "SELECT email, password_hash, create_time FROM iam_users WHERE email > $1 ORDER BY email LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn delete_user(&self, email: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let deleted = sqlx::query("DELETE FROM iam_users WHERE email = $1")
            .bind(email)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE iam_tokens SET revoked = 1 WHERE principal = $1")
            .bind(format!("user:{email}"))
            .execute(&mut *tx)
            .await?;
        remove_member_from_policies(
            &mut tx,
            &Member::User(email.to_owned()),
            &self.now_rfc3339(),
        )
        .await?;
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn create_service_account(
        &self,
        account: &ServiceAccountRecord,
    ) -> Result<(), StoreError> {
        match sqlx::query(
            "INSERT INTO iam_service_accounts (email, project, account_id, display_name, create_time) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&account.email)
        .bind(account.project.as_str())
        .bind(&account.account_id)
        .bind(&account.display_name)
        .bind(&account.create_time)
        .execute(self.pool())
        .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_service_account(
        &self,
        email: &str,
    ) -> Result<Option<ServiceAccountRecord>, StoreError> {
        sqlx::query("SELECT * FROM iam_service_accounts WHERE email = $1")
            .bind(email)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(account_from_row)
            .transpose()
    }

    async fn list_service_accounts(
        &self,
        project: &ProjectId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ServiceAccountRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM iam_service_accounts WHERE project = $1 AND email > $2 ORDER BY email LIMIT $3",
        )
        .bind(project.as_str())
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?
            .iter()
            .map(account_from_row)
            .collect()
    }

    async fn delete_service_account(&self, email: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let deleted = sqlx::query("DELETE FROM iam_service_accounts WHERE email = $1")
            .bind(email)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE iam_tokens SET revoked = 1 WHERE principal = $1")
            .bind(format!("serviceAccount:{email}"))
            .execute(&mut *tx)
            .await?;
        let member = Member::ServiceAccount(email.to_owned());
        remove_member_from_policies(&mut tx, &member, &self.now_rfc3339()).await?;
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn create_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        match sqlx::query(&format!(
            "INSERT INTO iam_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(token.id.as_str())
        .bind(token.principal.to_string())
        .bind(&token.token_hash)
        .bind(&token.description)
        .bind(token.expire_time)
        .bind(token.read_only as i64)
        .bind(token.revoked as i64)
        .bind(&token.create_time)
        .bind(&token.last_used_time)
        .execute(self.pool())
        .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(e.into()),
        }
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM iam_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(token_from_row)
        .transpose()
    }

    async fn get_token(&self, id: &TokenId) -> Result<Option<TokenRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM iam_tokens WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(token_from_row)
        .transpose()
    }

    async fn list_tokens(
        &self,
        principal: &Member,
        after: Option<&TokenKey>,
        limit: u32,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let principal = principal.to_string();
        let rows = match after {
            None => {
                sqlx::query(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM iam_tokens WHERE principal = $1 \
                     ORDER BY create_time DESC, id LIMIT $2"
                ))
                .bind(&principal)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?
            }
            // Older than the cursor, or as old with a greater id: the rows
            // after it in (create_time DESC, id) order. `create_time <= ?`
            // lets the index seek to the cursor instead of skipping rows.
            Some(key) => {
                sqlx::query(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM iam_tokens WHERE principal = $1 \
                     AND create_time <= $2 AND (create_time < $3 OR id > $4) \
                     ORDER BY create_time DESC, id LIMIT $5"
                ))
                .bind(&principal)
                .bind(&key.create_time)
                .bind(&key.create_time)
                .bind(key.id.as_str())
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, id: &TokenId) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE iam_tokens SET revoked = 1 WHERE id = $1 AND revoked = 0")
            .bind(id.as_str())
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn touch_token(&self, id: &TokenId) -> Result<(), StoreError> {
        sqlx::query("UPDATE iam_tokens SET last_used_time = $1 WHERE id = $2")
            .bind(self.now_rfc3339())
            .bind(id.as_str())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn get_policy(&self, resource: &Resource) -> Result<Policy, StoreError> {
        let resource = &resource.to_string();
        let row = sqlx::query("SELECT bindings, etag FROM iam_policies WHERE resource = $1")
            .bind(resource)
            .fetch_optional(self.pool())
            .await?;
        let policy = match row {
            None => Policy::default(),
            Some(row) => {
                let bindings: String = row.try_get("bindings")?;
                let bindings: Vec<Binding> = serde_json::from_str(&bindings)
                    .map_err(|e| StoreError::Corrupt(format!("IAM policy of {resource}: {e}")))?;
                Policy {
                    version: 1,
                    etag: row.try_get("etag")?,
                    bindings,
                }
            }
        };
        Ok(policy)
    }

    async fn set_policy(
        &self,
        resource: &Resource,
        policy: &Policy,
        expected_etag: Option<&str>,
    ) -> Result<bool, StoreError> {
        let resource = &resource.to_string();
        let bindings = serde_json::to_string(&policy.bindings)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now = self.now_rfc3339();
        // The etag comparison is part of the write statement, so two writers that
        // read the same etag cannot both succeed.
        let result =
            match expected_etag {
                Some(etag) if etag != EMPTY_POLICY_ETAG => sqlx::query(
                    "UPDATE iam_policies SET bindings = $1, etag = $2, update_time = $3 WHERE resource = $4 AND etag = $5",
                )
                .bind(&bindings)
                .bind(&policy.etag)
                .bind(&now)
                .bind(resource)
                .bind(etag)
                .execute(self.pool())
                .await?,
                expected => {
                    // No policy yet (etag `ACAB`) or an unconditional set.
                    sqlx::query(
                        "INSERT INTO iam_policies (resource, bindings, etag, update_time) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (resource) DO UPDATE SET bindings = excluded.bindings, etag = excluded.etag, \
                     update_time = excluded.update_time WHERE $5::text IS NULL",
                    )
                    .bind(resource)
                    .bind(&bindings)
                    .bind(&policy.etag)
                    .bind(&now)
                    .bind(expected)
                    .execute(self.pool())
                    .await?
                }
            };
        Ok(result.rows_affected() == 1)
    }

    async fn delete_policy(&self, resource: &Resource) -> Result<bool, StoreError> {
        let resource = &resource.to_string();
        let n = sqlx::query("DELETE FROM iam_policies WHERE resource = $1")
            .bind(resource)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}
