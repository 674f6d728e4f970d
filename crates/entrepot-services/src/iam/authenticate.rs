//! Authentication: credentials (a password, a personal access token, a
//! registry token) to the principal they stand for, through the credential
//! cache for tokens.

use entrepot_domain::iam::Member;
use entrepot_domain::token_id::TokenId;
use entrepot_storage::TokenRecord;

use super::{internal, now, principal_of, IamService};
use crate::access::{AuthError, Credentials, Principal};
use crate::authn;
use crate::credential_cache::{touch_due, CredentialKey, Verification, Verified};
use crate::password_checks::Refusal;

/// User names that may stand in front of a token in HTTP Basic, as clients
/// such as `docker login` need some user name.
const TOKEN_USERNAMES: &[&str] = &["_token", "token", "oauth2accesstoken", "__token__"];

/// Who authenticated, and through which token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The principal (wrapped in `ReadOnly` for read-only tokens).
    pub principal: Principal,
    /// The personal access token used, if any.
    pub token_id: Option<TokenId>,
    /// Creation time of the user or service account, carried into registry
    /// tokens so that they die with the principal.
    pub principal_created: Option<String>,
}

/// How a token is checked.
#[derive(Clone, Copy)]
enum TokenKind<'a> {
    /// A personal access token, with the Basic user name it came with.
    Access { username: Option<&'a str> },
    /// A registry token (JWT) from the token endpoint.
    Registry,
}

fn unauthenticated() -> AuthError {
    AuthError::Unauthenticated(
        "the user name, password or token is not valid, has expired or was revoked".into(),
    )
}

impl IamService {
    /// Record a token's use without making the request wait: the write queues
    /// for SQLite's single writer, which a large delete may hold, and a read
    /// must never wait behind it. At most one write per token is in flight.
    fn touch_in_background(&self, id: &TokenId) {
        let lock = || self.touching.lock().unwrap_or_else(|p| p.into_inner());
        if !lock().insert(id.clone()) {
            return;
        }
        let (store, touching, id) = (self.store.clone(), self.touching.clone(), id.clone());
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(&id).await {
                tracing::warn!(error = %e, "could not record the last use of a token");
            }
            touching
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
    }

    /// Authenticate, also telling which personal access token was used.
    pub async fn authenticate_detailed(
        &self,
        credentials: Option<&Credentials>,
    ) -> Result<Authenticated, AuthError> {
        match credentials {
            None => Ok(Authenticated {
                principal: Principal::Anonymous,
                token_id: None,
                principal_created: None,
            }),
            Some(Credentials::Bearer(token)) => {
                let kind = if authn::looks_like_jwt(token) {
                    TokenKind::Registry
                } else {
                    TokenKind::Access { username: None }
                };
                self.by_token(CredentialKey::bearer(token), kind, token)
                    .await
            }
            Some(Credentials::Basic { username, password }) => {
                let kind = if password.starts_with(authn::ACCESS_TOKEN_PREFIX) {
                    TokenKind::Access {
                        username: Some(username),
                    }
                } else if authn::looks_like_jwt(password) {
                    TokenKind::Registry
                } else {
                    // Passwords are never cached: every login pays the check.
                    return self.by_password(username, password).await;
                };
                self.by_token(CredentialKey::basic(username, password), kind, password)
                    .await
            }
        }
    }

    /// Check a token, from the credential cache if it was checked within the
    /// last second, else against the database (then remember the success).
    async fn by_token(
        &self,
        key: CredentialKey,
        kind: TokenKind<'_>,
        token: &str,
    ) -> Result<Authenticated, AuthError> {
        if let Some(hit) = self.verified.get(&key, std::time::Instant::now()) {
            self.record_use(&hit);
            return Ok(hit.who().clone());
        }
        // Read before the database, so that a revocation landing meanwhile
        // keeps this result out of the cache.
        let generation = self.verified.generation();
        let verification = match kind {
            TokenKind::Access { username } => self.by_access_token(username, token).await?,
            TokenKind::Registry => self.by_registry_token(token).await?,
        };
        let who = verification.who.clone();
        self.verified.offer(
            generation,
            key,
            verification,
            std::time::Instant::now(),
            now().unix_timestamp_nanos(),
        );
        Ok(who)
    }

    /// What a check of a personal access token does besides answering, for a
    /// check answered from the cache: record the use (at most once a minute)
    /// and note the bootstrap token's first use.
    fn record_use(&self, hit: &Verified) {
        if !hit.is_access_token() {
            return;
        }
        if let Some(id) = &hit.who().token_id {
            if hit.claim_use(now().unix_timestamp()) {
                self.touch_in_background(id);
            }
            self.bootstrap.used(id);
        }
    }

    async fn by_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Authenticated, AuthError> {
        let user = self.store.get_user(username).await.map_err(internal)?;
        let created = user.as_ref().map(|u| u.create_time.clone());
        // No user, or no password: the same check against a dummy hash, so
        // neither the answer nor its timing tells which users exist.
        let hash = user.and_then(|u| u.password_hash);
        let client = crate::origin::current_client();
        match self
            .passwords
            .verify(username, client, hash, password)
            .await
        {
            Ok(true) => Ok(Authenticated {
                principal: Principal::User(username.to_owned()),
                token_id: None,
                principal_created: created,
            }),
            Ok(false) => Err(unauthenticated()),
            Err(Refusal::Backoff { retry_after_secs }) => Err(AuthError::Throttled {
                message: format!(
                    "too many failed logins for this user or from this address; retry in {retry_after_secs} s or use a token"
                ),
                retry_after_secs,
                overloaded: false,
            }),
            Err(Refusal::Busy { retry_after_secs }) => Err(AuthError::Throttled {
                message: "too many password checks in progress; retry shortly or use a token"
                    .into(),
                retry_after_secs,
                overloaded: true,
            }),
        }
    }

    /// Authenticate credentials offered in exchange for a registry token
    /// (`/v2/token`): a registry token itself is refused, so that a token
    /// cannot be renewed past the life of the credential it came from.
    pub async fn authenticate_for_exchange(
        &self,
        credentials: Option<&Credentials>,
    ) -> Result<Authenticated, AuthError> {
        let who = self.authenticate_detailed(credentials).await?;
        if who.principal.is_registry_token() {
            return Err(AuthError::Unauthenticated(
                "a registry token cannot be exchanged for another; authenticate with a password or a personal access token".into(),
            ));
        }
        Ok(who)
    }

    async fn by_access_token(
        &self,
        username: Option<&str>,
        token: &str,
    ) -> Result<Verification, AuthError> {
        let record = self
            .store
            .token_by_hash(&authn::token_hash(token))
            .await
            .map_err(internal)?
            .ok_or_else(unauthenticated)?;
        let (principal, created) = self.live_token_principal(&record).await?;
        if let Some(username) = username {
            let email = match &principal {
                Principal::User(e) | Principal::ServiceAccount(e) => e.as_str(),
                _ => "",
            };
            if username != email && !TOKEN_USERNAMES.contains(&username) {
                return Err(unauthenticated());
            }
        }
        let mut last_use = last_use_unix(record.last_used_time.as_deref());
        let now_unix = now().unix_timestamp();
        if touch_due(last_use, now_unix) {
            self.touch_in_background(&record.id);
            last_use = now_unix;
        }
        self.bootstrap.used(&record.id);
        Ok(Verification {
            who: Authenticated {
                principal: if record.read_only {
                    Principal::ReadOnly(Box::new(principal))
                } else {
                    principal
                },
                token_id: Some(record.id),
                principal_created: Some(created),
            },
            expires_at: record.expire_time,
            last_use: Some(last_use),
        })
    }

    /// Whether credentials checked earlier still hold: `member` still exists
    /// and, when they were the personal access token `token_id`, that token
    /// is neither revoked nor expired and still `member`'s. A failed lookup
    /// counts as not holding (a console session then signs in again).
    pub async fn credentials_still_hold(
        &self,
        member: &Member,
        token_id: Option<&TokenId>,
    ) -> bool {
        let Some(id) = token_id else {
            return matches!(self.principal_created(member).await, Ok(Some(_)));
        };
        match self.store.get_token(id).await {
            Ok(Some(record)) if record.principal == *member => {
                self.live_token_principal(&record).await.is_ok()
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(error = %e, "could not check a session's token");
                false
            }
        }
    }

    /// The principal of a token that is neither revoked, expired, nor owned by
    /// a principal that no longer exists, with the principal's creation time.
    async fn live_token_principal(
        &self,
        record: &TokenRecord,
    ) -> Result<(Principal, String), AuthError> {
        if record.revoked
            || record
                .expire_time
                .is_some_and(|t| t <= now().unix_timestamp())
        {
            return Err(unauthenticated());
        }
        let member = record.principal.clone();
        let created = self
            .principal_created(&member)
            .await?
            .ok_or_else(unauthenticated)?;
        let principal = principal_of(&member).ok_or_else(unauthenticated)?;
        Ok((principal, created))
    }

    /// The creation time of a user or service account; `None` if it does not
    /// exist (or the member names no single identity).
    async fn principal_created(&self, member: &Member) -> Result<Option<String>, AuthError> {
        Ok(match member {
            Member::User(e) => self
                .store
                .get_user(e)
                .await
                .map_err(internal)?
                .map(|u| u.create_time),
            Member::ServiceAccount(e) => self
                .store
                .get_service_account(e)
                .await
                .map_err(internal)?
                .map(|a| a.create_time),
            _ => None,
        })
    }

    async fn by_registry_token(&self, token: &str) -> Result<Verification, AuthError> {
        let claims = self.signer.verify(token).ok_or_else(|| {
            AuthError::Unauthenticated("the registry token is not valid or has expired".into())
        })?;
        let dead = || {
            AuthError::Unauthenticated(
                "the registry token's principal or access token no longer exists or was revoked"
                    .into(),
            )
        };
        let (principal, created) = if claims.sub.is_empty() {
            (Principal::Anonymous, None)
        } else {
            // A registry token dies with its principal: it must still exist,
            // and be the same one (not re-created under the same name).
            let member: Member = claims.sub.parse().map_err(|_| unauthenticated())?;
            let created = self.principal_created(&member).await?.ok_or_else(dead)?;
            if claims.uct.as_ref().is_some_and(|u| *u != created) {
                return Err(dead());
            }
            let principal = principal_of(&member).ok_or_else(unauthenticated)?;
            (principal, Some(created))
        };
        // ... and with the access token it was exchanged for.
        let mut expires_at = claims.exp;
        if let Some(id) = &claims.tid {
            let record = self
                .store
                .get_token(id)
                .await
                .map_err(internal)?
                .ok_or_else(dead)?;
            let (owner, _) = self
                .live_token_principal(&record)
                .await
                .map_err(|_| dead())?;
            if owner != principal {
                return Err(dead());
            }
            if let Some(t) = record.expire_time {
                expires_at = expires_at.min(t);
            }
        }
        let principal = if claims.ro {
            Principal::ReadOnly(Box::new(principal))
        } else {
            principal
        };
        Ok(Verification {
            who: Authenticated {
                principal: Principal::RegistryToken {
                    principal: Box::new(principal),
                    access: claims.access,
                },
                token_id: claims.tid,
                principal_created: created,
            },
            expires_at: Some(expires_at),
            last_use: None,
        })
    }
}

/// A token's last use (RFC 3339) in unix seconds; `i64::MIN` if never or
/// unreadable, so that the next use is recorded.
fn last_use_unix(last: Option<&str>) -> i64 {
    last.and_then(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    })
    .map_or(i64::MIN, |t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::AccessControl;
    use crate::credential_cache::CredentialCache;
    use crate::iam::test_support::{service, user};
    use crate::iam::NewToken;
    use entrepot_storage::testing::memory_stores;

    #[tokio::test]
    async fn passwords_authenticate_users() {
        let (iam, _) = service().await;
        iam.bootstrap().await.unwrap();
        iam.create_user(&user("admin"), "dev@example.com", Some("s3cret-pass"))
            .await
            .unwrap();
        let ok = Credentials::Basic {
            username: "dev@example.com".into(),
            password: "s3cret-pass".into(),
        };
        assert_eq!(
            iam.authenticate(Some(&ok)).await.unwrap(),
            user("dev@example.com")
        );
        let bad = Credentials::Basic {
            username: "dev@example.com".into(),
            password: "nope-nope".into(),
        };
        assert!(matches!(
            iam.authenticate(Some(&bad)).await,
            Err(AuthError::Unauthenticated(_))
        ));
    }

    /// A service whose credential cache keeps entries for an hour: what
    /// expires them in these tests is invalidation, never the clock.
    async fn service_with_lasting_cache() -> (IamService, entrepot_storage::Stores) {
        let store = memory_stores().await.unwrap();
        let iam = IamService::new(store.iam.clone(), store.metadata.clone(), &[7u8; 32]);
        let cache = CredentialCache::new(1024, std::time::Duration::from_secs(3600));
        (iam.with_credential_cache(cache), store)
    }

    fn counter(iam: &IamService, name: &str) -> u64 {
        let text = iam.render_metrics();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    }

    fn hits(iam: &IamService) -> u64 {
        counter(iam, "entrepot_credential_cache_hits_total")
    }

    #[tokio::test]
    async fn a_checked_token_is_answered_from_memory_with_the_same_result() {
        let (iam, store) = service_with_lasting_cache().await;
        iam.bootstrap().await.unwrap();
        let admin = user("admin");
        let created = iam
            .create_token(
                &admin,
                NewToken {
                    read_only: true,
                    ..NewToken::default()
                },
            )
            .await
            .unwrap();
        let bearer = Credentials::Bearer(created.token.expose().into());
        let first = iam.authenticate_detailed(Some(&bearer)).await.unwrap();
        assert_eq!(hits(&iam), 0);
        let jwt = iam.issue_registry_token(&first, Vec::new()).unwrap();
        let jwt = Credentials::Bearer(jwt.token.expose().into());
        let jwt_first = iam.authenticate_detailed(Some(&jwt)).await.unwrap();
        // Revoked behind the service's back (as another node would): the
        // cached checks still answer, which shows they do not read the store.
        store.iam.revoke_token(&created.record.id).await.unwrap();
        assert_eq!(
            iam.authenticate_detailed(Some(&bearer)).await.unwrap(),
            first
        );
        assert_eq!(
            iam.authenticate_detailed(Some(&jwt)).await.unwrap(),
            jwt_first
        );
        assert_eq!(hits(&iam), 2);
        assert_eq!(
            first.principal,
            Principal::ReadOnly(Box::new(admin.clone()))
        );
        assert!(matches!(
            jwt_first.principal,
            Principal::RegistryToken { ref principal, .. } if **principal == first.principal
        ));
        // The same token under Basic is another entry (the user name is part
        // of what is checked), so it is checked against the store: revoked.
        let basic = Credentials::Basic {
            username: "_token".into(),
            password: created.token.expose().into(),
        };
        assert!(iam.authenticate(Some(&basic)).await.is_err());
    }

    #[tokio::test]
    async fn revoking_or_deleting_on_this_node_stops_a_cached_token_at_once() {
        let (iam, store) = service_with_lasting_cache().await;
        iam.bootstrap().await.unwrap();
        store
            .metadata
            .create_project(&"demo".parse().unwrap())
            .await
            .unwrap();
        let admin = user("admin");
        iam.create_user(&admin, "dev@example.com", None)
            .await
            .unwrap();
        iam.create_service_account(&admin, &"demo".parse().unwrap(), "ci-robot", "")
            .await
            .unwrap();
        let token_of = |member: &str| {
            let iam = iam.clone();
            let member: Member = member.parse().unwrap();
            async move {
                let t = iam
                    .create_token(
                        &user("admin"),
                        NewToken {
                            principal: Some(member),
                            ..NewToken::default()
                        },
                    )
                    .await
                    .unwrap();
                (Credentials::Bearer(t.token.expose().into()), t.record.id)
            }
        };
        let (pat, pat_id) = token_of("user:admin").await;
        let (dev, _) = token_of("user:dev@example.com").await;
        let (robot, _) = token_of("serviceAccount:ci-robot@demo.iam.entrepot").await;
        let (base, _) = token_of("user:admin").await;
        let who = iam.authenticate_detailed(Some(&base)).await.unwrap();
        let jwt = iam.issue_registry_token(&who, Vec::new()).unwrap();
        let jwt = Credentials::Bearer(jwt.token.expose().into());
        let base_id = who.token_id.clone().unwrap();
        // Each is used twice: checked, then answered from the cache.
        for c in [&pat, &dev, &robot, &jwt] {
            iam.authenticate(Some(c)).await.unwrap();
            iam.authenticate(Some(c)).await.unwrap();
        }
        assert_eq!(hits(&iam), 4);

        iam.revoke_token(&admin, &pat_id).await.unwrap();
        assert!(iam.authenticate(Some(&pat)).await.is_err());
        iam.delete_user(&admin, "dev@example.com").await.unwrap();
        assert!(iam.authenticate(Some(&dev)).await.is_err());
        iam.delete_service_account(
            &admin,
            &"demo".parse().unwrap(),
            "ci-robot@demo.iam.entrepot",
        )
        .await
        .unwrap();
        assert!(iam.authenticate(Some(&robot)).await.is_err());
        iam.authenticate(Some(&jwt)).await.unwrap();
        iam.revoke_token(&admin, &base_id).await.unwrap();
        assert!(iam.authenticate(Some(&jwt)).await.is_err());
        assert_eq!(
            counter(&iam, "entrepot_credential_cache_invalidations_total"),
            4
        );
    }

    #[tokio::test]
    async fn password_logins_are_never_cached() {
        let (iam, _) = service_with_lasting_cache().await;
        iam.bootstrap().await.unwrap();
        iam.create_user(&user("admin"), "dev@example.com", Some("s3cret-pass"))
            .await
            .unwrap();
        let ok = Credentials::Basic {
            username: "dev@example.com".into(),
            password: "s3cret-pass".into(),
        };
        let checks = || counter(&iam, "entrepot_password_verifications_total");
        let before = checks();
        for _ in 0..2 {
            iam.authenticate(Some(&ok)).await.unwrap();
        }
        assert_eq!(checks() - before, 2, "each login pays the password check");
        assert_eq!(hits(&iam), 0);
        assert_eq!(counter(&iam, "entrepot_credential_cache_entries"), 0);
    }
}
