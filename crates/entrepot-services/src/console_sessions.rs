//! Signed-in sessions of the web console.
//!
//! A session starts from the same credentials the API takes (a personal
//! access token, or a local user's password through the same password-check
//! limits), and stands for that principal until it expires or is signed out.
//! The cookie value is 32 random bytes; only its SHA-256 is stored. Each
//! session carries its own CSRF token, which every form posts back.

use std::sync::Arc;

use base64::Engine as _;
use entrepot_domain::iam::Member;
use entrepot_domain::token_id::TokenId;
use entrepot_storage::{ConsoleSessionRecord, ConsoleSessionStore, StoreError};
use rand::RngCore as _;

use crate::access::{AuthError, Credentials, Principal};
use crate::authn::{token_hash, SecretString};
use crate::clock::{Clock, SystemClock};
use crate::iam::{member_of, principal_of, IamService};

/// Why a sign-in did not start a session.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleSessionError {
    /// The credentials were refused (or not checked: throttled).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The credentials are valid but cannot open a console session.
    #[error("{0}")]
    NotForConsole(String),
    /// The session table failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A live session: who, and the CSRF token of its forms.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// The principal the session acts as (read-only when signed in with a
    /// read-only token).
    pub principal: Principal,
    /// Every form of the session posts this back.
    pub csrf_token: String,
    /// Unix seconds after which the session is refused.
    pub expire_time: i64,
}

impl std::fmt::Debug for ConsoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSession")
            .field("principal", &self.principal)
            .field("expire_time", &self.expire_time)
            .finish_non_exhaustive()
    }
}

/// 32 random bytes, base64url (session cookies, CSRF tokens).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares in time independent of where the strings differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Starts, looks up and ends console sessions.
#[derive(Clone)]
pub struct ConsoleSessions {
    store: Arc<dyn ConsoleSessionStore>,
    iam: Arc<IamService>,
    ttl_secs: i64,
    clock: Arc<dyn Clock>,
}

impl ConsoleSessions {
    /// Sessions in `store`, authenticated by `iam`, each living `ttl_secs`.
    pub fn new(store: Arc<dyn ConsoleSessionStore>, iam: Arc<IamService>, ttl_secs: u64) -> Self {
        Self {
            store,
            iam,
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2),
            clock: Arc::new(SystemClock),
        }
    }

    /// How long a session lives, in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Use `clock` for expiry (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Check `credentials` as the API does and start a session for the
    /// principal. Returns the cookie value (shown to the browser once) and
    /// the session. Registry tokens and anonymous callers are refused.
    pub async fn sign_in(
        &self,
        credentials: &Credentials,
    ) -> Result<(SecretString, ConsoleSession), ConsoleSessionError> {
        let who = self.iam.authenticate_detailed(Some(credentials)).await?;
        let (inner, read_only) = match who.principal {
            Principal::ReadOnly(p) => (*p, true),
            p => (p, false),
        };
        let member = match &inner {
            Principal::User(_) | Principal::ServiceAccount(_) => member_of(&inner),
            _ => None,
        }
        .ok_or_else(|| {
            ConsoleSessionError::NotForConsole(
                "sign in with a personal access token or a local user's password".into(),
            )
        })?;
        let cookie = random_token();
        let now = self.clock.now_unix();
        let record = ConsoleSessionRecord {
            id_hash: token_hash(&cookie),
            principal: member.to_string(),
            read_only,
            token_id: who.token_id.as_ref().map(ToString::to_string),
            csrf_token: random_token(),
            create_time: now,
            expire_time: now.saturating_add(self.ttl_secs),
        };
        // Expired sessions go when new ones come: the table stays as large
        // as the sessions alive.
        if let Err(e) = self.store.delete_expired_console_sessions(now).await {
            tracing::warn!(error = %e, "could not remove expired console sessions");
        }
        self.store.insert_console_session(&record).await?;
        tracing::info!(principal = %record.principal, read_only, "console session started");
        let principal = if read_only {
            Principal::ReadOnly(Box::new(inner))
        } else {
            inner
        };
        Ok((
            SecretString::new(cookie),
            ConsoleSession {
                principal,
                csrf_token: record.csrf_token,
                expire_time: record.expire_time,
            },
        ))
    }

    /// The live session of a cookie value; `None` if unknown or expired.
    pub async fn session(&self, cookie: &str) -> Result<Option<ConsoleSession>, StoreError> {
        let Some(record) = self.store.get_console_session(&token_hash(cookie)).await? else {
            return Ok(None);
        };
        if record.expire_time <= self.clock.now_unix() {
            return Ok(None);
        }
        let member: Member = match record.principal.parse() {
            Ok(m) => m,
            Err(e) => return Err(StoreError::Corrupt(format!("console session member: {e}"))),
        };
        let token_id = match record.token_id.as_deref().map(str::parse::<TokenId>) {
            None => None,
            Some(Ok(id)) => Some(id),
            Some(Err(e)) => return Err(StoreError::Corrupt(format!("console session token: {e}"))),
        };
        // A session lives no longer than what it was opened with: a revoked
        // or expired token, a deleted user or service account ends it.
        if !self
            .iam
            .credentials_still_hold(&member, token_id.as_ref())
            .await
        {
            return Ok(None);
        }
        let Some(principal) = principal_of(&member) else {
            return Ok(None);
        };
        let principal = if record.read_only {
            Principal::ReadOnly(Box::new(principal))
        } else {
            principal
        };
        Ok(Some(ConsoleSession {
            principal,
            csrf_token: record.csrf_token,
            expire_time: record.expire_time,
        }))
    }

    /// End the session of a cookie value (sign-out).
    pub async fn sign_out(&self, cookie: &str) -> Result<(), StoreError> {
        self.store.delete_console_session(&token_hash(cookie)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "abcd"));
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 43);
    }
}
