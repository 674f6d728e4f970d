//! A short memory of token credentials verified recently, so that a client
//! sending the same personal access token or registry token on every request
//! does not cost database reads each time.
//!
//! An entry maps a key derived from the presented credential (SHA-256 over
//! the scheme, the user name for Basic and the token; never the token itself)
//! to the [`Authenticated`] result of a successful check. Only successes are
//! kept, and only of tokens: password logins always go through the password
//! checks.
//!
//! An entry is believed for at most [`CREDENTIAL_CACHE_TTL`], and never past
//! the expiry of the credential it stands for. The short life is what bounds a
//! revocation made by another node sharing the database; on this node every
//! revocation or deletion of a principal empties the cache at once
//! ([`CredentialCache::invalidate_all`]).
//!
//! Invalidation follows the metadata store's read cache: a check that misses
//! reads the generation before asking the database and offers its result with
//! it; every invalidation bumps the generation, so a result read before a
//! concurrent revocation is never kept after it.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use quick_cache::Weighter;
use sha2::{Digest as _, Sha256};

use crate::access::Principal;
use crate::iam::Authenticated;

/// How long a verified credential is believed without asking the database
/// again: the longest a revocation made on another node goes unnoticed here.
pub const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(1);

/// How many credentials are remembered at most; past that, the least likely
/// to be used again are forgotten first. An entry larger than
/// [`ENTRY_SLOT_BYTES`] (a registry token with many scopes) takes several
/// slots, so the cache holds at most about 32 MiB however large the tokens
/// its callers mint.
pub const CREDENTIAL_CACHE_ENTRIES: usize = 65_536;

/// The bytes one slot of [`CREDENTIAL_CACHE_ENTRIES`] stands for.
pub const ENTRY_SLOT_BYTES: u64 = 512;

/// A token's last use is recorded at most this often (seconds).
pub(crate) const TOKEN_TOUCH_INTERVAL_SECS: i64 = 60;

/// The key of a presented credential: SHA-256 over the scheme, the user name
/// (Basic) and the token. The token cannot be recovered from it, and it never
/// prints.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CredentialKey([u8; 32]);

impl fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialKey(<redacted>)")
    }
}

impl CredentialKey {
    /// The key of `Authorization: Bearer <token>`.
    pub fn bearer(token: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"bearer\0");
        h.update(token.as_bytes());
        Self(h.finalize().into())
    }

    /// The key of `Authorization: Basic` with `username` and a token as the
    /// password: the user name is part of what was checked.
    pub fn basic(username: &str, token: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"basic\0");
        // The length keeps ("ab", "c") and ("a", "bc") apart.
        h.update((username.len() as u64).to_be_bytes());
        h.update(username.as_bytes());
        h.update(token.as_bytes());
        Self(h.finalize().into())
    }
}

/// A successful check, as the cache needs it.
#[derive(Debug)]
pub struct Verification {
    /// Who authenticated.
    pub who: Authenticated,
    /// Unix seconds from which the credential is refused (the earliest expiry
    /// of the tokens it rests on); `None` if it does not expire.
    pub expires_at: Option<i64>,
    /// For a personal access token, whose use is recorded: unix seconds of its
    /// last recorded (or just scheduled) use, `i64::MIN` if never. `None` for
    /// a registry token.
    pub last_use: Option<i64>,
}

/// One remembered credential.
#[derive(Debug)]
pub struct Verified {
    who: Authenticated,
    fresh_until: Instant,
    /// See [`Verification::last_use`]; updated when a hit records a use.
    last_use: Option<AtomicI64>,
}

impl Verified {
    /// Who authenticated.
    pub fn who(&self) -> &Authenticated {
        &self.who
    }

    /// Whether this is a personal access token (whose use is recorded).
    pub fn is_access_token(&self) -> bool {
        self.last_use.is_some()
    }

    /// For a personal access token whose last use is at least
    /// [`TOKEN_TOUCH_INTERVAL_SECS`] old at `now` (unix seconds): mark it used
    /// now and answer true, once however many requests ask at the same time.
    pub fn claim_use(&self, now: i64) -> bool {
        let Some(last) = &self.last_use else {
            return false;
        };
        let seen = last.load(Ordering::Relaxed);
        touch_due(seen, now)
            && last
                .compare_exchange(seen, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Roughly the heap and inline bytes a principal holds.
fn principal_bytes(p: &Principal) -> usize {
    std::mem::size_of::<Principal>()
        + match p {
            Principal::Anonymous => 0,
            Principal::User(e) | Principal::ServiceAccount(e) => e.len(),
            Principal::ReadOnly(inner) => principal_bytes(inner),
            Principal::RegistryToken { principal, access } => {
                principal_bytes(principal)
                    + access
                        .iter()
                        .map(|e| {
                            std::mem::size_of_val(e)
                                + e.kind.len()
                                + e.name.len()
                                + e.actions.iter().map(|a| 24 + a.len()).sum::<usize>()
                        })
                        .sum::<usize>()
            }
        }
}

/// Slots of [`ENTRY_SLOT_BYTES`] an entry takes: one for all but large
/// registry tokens.
#[derive(Clone, Copy)]
struct BySlots;

impl Weighter<CredentialKey, Arc<Verified>> for BySlots {
    fn weight(&self, _key: &CredentialKey, value: &Arc<Verified>) -> u64 {
        let who = &value.who;
        let bytes = std::mem::size_of::<CredentialKey>()
            + std::mem::size_of::<Verified>()
            + principal_bytes(&who.principal)
            + who.token_id.as_ref().map_or(0, |id| id.as_str().len())
            + who.principal_created.as_ref().map_or(0, String::len);
        (bytes as u64).div_ceil(ENTRY_SLOT_BYTES).max(1)
    }
}

/// Whether a token last used at `last` (unix seconds) should be touched at `now`.
pub(crate) fn touch_due(last: i64, now: i64) -> bool {
    now.saturating_sub(last) >= TOKEN_TOUCH_INTERVAL_SECS
}

/// The cache; see the module documentation.
pub struct CredentialCache {
    entries: Cache<CredentialKey, Arc<Verified>, BySlots>,
    /// Held by an offer while it checks the generation and inserts, and by an
    /// invalidation while it bumps the generation and clears.
    generation: Mutex<u64>,
    ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
}

impl Default for CredentialCache {
    fn default() -> Self {
        Self::new(CREDENTIAL_CACHE_ENTRIES, CREDENTIAL_CACHE_TTL)
    }
}

impl CredentialCache {
    /// A cache of at most `entries` credentials (slots, for large ones),
    /// each believed for `ttl`.
    pub fn new(entries: usize, ttl: Duration) -> Self {
        let entries = entries.max(1);
        Self {
            entries: Cache::with_weighter(entries, entries as u64, BySlots),
            generation: Mutex::new(0),
            ttl,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        // A counter stays consistent whatever panicked while holding the lock.
        self.generation.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The generation to pass to [`Self::offer`], read before checking the
    /// credential against the database.
    pub fn generation(&self) -> u64 {
        *self.lock()
    }

    /// The remembered check of `key`, if still fresh at `now`. Counts a hit
    /// or a miss.
    pub fn get(&self, key: &CredentialKey, now: Instant) -> Option<Arc<Verified>> {
        let found = self.entries.get(key).filter(|v| now < v.fresh_until);
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            // Drop a stale entry rather than hold a dead principal's data.
            self.entries.remove_if(key, |v| now >= v.fresh_until);
        }
        found
    }

    /// Remember a successful check of `key`, made at `now` (`now_unix_nanos`
    /// on the wall clock) after reading `generation`. Nothing is kept if an
    /// invalidation came in between, or if the credential expires by then.
    pub fn offer(
        &self,
        generation: u64,
        key: CredentialKey,
        verified: Verification,
        now: Instant,
        now_unix_nanos: i128,
    ) {
        let mut life = self.ttl;
        if let Some(expires_at) = verified.expires_at {
            let left = i128::from(expires_at) * 1_000_000_000 - now_unix_nanos;
            if left <= 0 {
                return;
            }
            life = life.min(Duration::from_nanos(
                u64::try_from(left).unwrap_or(u64::MAX),
            ));
        }
        let entry = Arc::new(Verified {
            who: verified.who,
            fresh_until: now + life,
            last_use: verified.last_use.map(AtomicI64::new),
        });
        let current = self.lock();
        if *current != generation {
            return;
        }
        self.entries.insert(key, entry);
    }

    /// A credential died (a token revoked, a principal deleted): forget every
    /// check, and refuse offers of checks made before now.
    pub fn invalidate_all(&self) {
        let mut current = self.lock();
        *current += 1;
        self.entries.clear();
        self.invalidations.fetch_add(1, Ordering::Relaxed);
    }

    /// Counters in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, kind, help, value) in [
            (
                "entrepot_credential_cache_hits_total",
                "counter",
                "Token checks answered from the in-process credential cache.",
                self.hits.load(Ordering::Relaxed),
            ),
            (
                "entrepot_credential_cache_misses_total",
                "counter",
                "Token checks the credential cache sent to the database.",
                self.misses.load(Ordering::Relaxed),
            ),
            (
                "entrepot_credential_cache_invalidations_total",
                "counter",
                "Times the credential cache was emptied because a token or principal died.",
                self.invalidations.load(Ordering::Relaxed),
            ),
            (
                "entrepot_credential_cache_entries",
                "gauge",
                "Credentials held by the credential cache.",
                self.entries.len() as u64,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(email: &str) -> Authenticated {
        Authenticated {
            principal: Principal::User(email.into()),
            token_id: Some("t1".parse().unwrap()),
            principal_created: Some("2026-01-01T00:00:00Z".into()),
        }
    }

    fn verification(email: &str, expires_at: Option<i64>) -> Verification {
        Verification {
            who: who(email),
            expires_at,
            last_use: Some(i64::MIN),
        }
    }

    const WALL: i128 = 1_800_000_000 * 1_000_000_000;

    #[test]
    fn a_verified_credential_is_a_hit_until_its_life_ends() {
        let cache = CredentialCache::new(16, Duration::from_secs(1));
        let key = CredentialKey::bearer("entp_secret");
        let t0 = Instant::now();
        assert!(cache.get(&key, t0).is_none());
        cache.offer(
            cache.generation(),
            key.clone(),
            verification("a@example.com", None),
            t0,
            WALL,
        );
        let hit = cache.get(&key, t0 + Duration::from_millis(999)).unwrap();
        assert_eq!(hit.who(), &who("a@example.com"));
        assert!(cache.get(&key, t0 + Duration::from_secs(1)).is_none());
        // The stale entry is gone, not just hidden.
        assert!(cache.get(&key, t0).is_none());
        let text = cache.render();
        assert!(
            text.contains("entrepot_credential_cache_hits_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("entrepot_credential_cache_misses_total 3\n"),
            "{text}"
        );
    }

    #[test]
    fn an_entry_never_outlives_the_credential() {
        let cache = CredentialCache::new(16, Duration::from_secs(1));
        let t0 = Instant::now();
        // Expires 300 ms after the check.
        let expires_at = 1_800_000_001;
        let wall = WALL + 700_000_000;
        let key = CredentialKey::bearer("a.b.c");
        cache.offer(
            cache.generation(),
            key.clone(),
            verification("a@example.com", Some(expires_at)),
            t0,
            wall,
        );
        assert!(cache.get(&key, t0 + Duration::from_millis(299)).is_some());
        assert!(cache.get(&key, t0 + Duration::from_millis(300)).is_none());
        // Already expired: not kept at all.
        let late = CredentialKey::bearer("d.e.f");
        cache.offer(
            cache.generation(),
            late.clone(),
            verification("a@example.com", Some(expires_at)),
            t0,
            WALL + 1_000_000_000,
        );
        assert!(cache.get(&late, t0).is_none());
    }

    #[test]
    fn invalidation_forgets_everything_and_refuses_older_offers() {
        let cache = CredentialCache::default();
        let t0 = Instant::now();
        let (a, b) = (CredentialKey::bearer("one"), CredentialKey::bearer("two"));
        cache.offer(
            cache.generation(),
            a.clone(),
            verification("a@example.com", None),
            t0,
            WALL,
        );
        // A check that read the database before a revocation ...
        let before = cache.generation();
        cache.invalidate_all();
        assert!(cache.get(&a, t0).is_none());
        // ... is not kept after it.
        cache.offer(
            before,
            b.clone(),
            verification("b@example.com", None),
            t0,
            WALL,
        );
        assert!(cache.get(&b, t0).is_none());
        cache.offer(
            cache.generation(),
            b.clone(),
            verification("b@example.com", None),
            t0,
            WALL,
        );
        assert!(cache.get(&b, t0).is_some());
        assert!(cache
            .render()
            .contains("entrepot_credential_cache_invalidations_total 1\n"));
    }

    #[test]
    fn large_registry_tokens_take_more_room_and_the_cache_stays_bounded() {
        let cache = CredentialCache::new(64, Duration::from_secs(1));
        let t0 = Instant::now();
        let small = verification("a@example.com", None);
        let slots = |v: &Verification| {
            BySlots.weight(
                &CredentialKey::bearer(""),
                &Arc::new(Verified {
                    who: v.who.clone(),
                    fresh_until: t0,
                    last_use: None,
                }),
            )
        };
        assert_eq!(slots(&small), 1);
        let entry = crate::authn::AccessEntry {
            kind: "repository".into(),
            name: "default/images/app".into(),
            actions: vec!["pull".into()],
        };
        let large = Verification {
            who: Authenticated {
                principal: Principal::RegistryToken {
                    principal: Box::new(Principal::User("a@example.com".into())),
                    access: vec![entry; 100],
                },
                token_id: None,
                principal_created: None,
            },
            expires_at: None,
            last_use: None,
        };
        assert!(slots(&large) > 10, "{}", slots(&large));
        for i in 0..1000 {
            let v = Verification {
                who: large.who.clone(),
                expires_at: None,
                last_use: None,
            };
            cache.offer(
                cache.generation(),
                CredentialKey::bearer(&format!("jwt{i}")),
                v,
                t0,
                WALL,
            );
        }
        assert!(cache.entries.weight() <= 64, "{}", cache.entries.weight());
        assert!(cache.entries.len() < 10);
    }

    #[test]
    fn keys_separate_schemes_and_user_names_and_print_nothing() {
        let keys = [
            CredentialKey::bearer("entp_x"),
            CredentialKey::basic("_token", "entp_x"),
            CredentialKey::basic("token", "entp_x"),
            CredentialKey::basic("_toke", "nentp_x"),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let printed = format!("{:?}", keys[1]);
        assert_eq!(printed, "CredentialKey(<redacted>)");
    }

    #[test]
    fn a_use_is_claimed_once_a_minute() {
        let cache = CredentialCache::default();
        let t0 = Instant::now();
        let key = CredentialKey::bearer("entp_y");
        let mut v = verification("a@example.com", None);
        v.last_use = Some(1_000);
        cache.offer(cache.generation(), key.clone(), v, t0, WALL);
        let hit = cache.get(&key, t0).unwrap();
        assert!(!hit.claim_use(1_059));
        assert!(hit.claim_use(1_060));
        assert!(!hit.claim_use(1_061), "claimed already");
        assert!(hit.claim_use(1_120));
        // A registry token records no use.
        let jwt = CredentialKey::bearer("a.b.c");
        let mut v = verification("a@example.com", None);
        v.last_use = None;
        cache.offer(cache.generation(), jwt.clone(), v, t0, WALL);
        let hit = cache.get(&jwt, t0).unwrap();
        assert!(!hit.is_access_token());
        assert!(!hit.claim_use(i64::MAX));
    }
}
