//! Bounds on the work anyone can make the server do by sending passwords.
//!
//! An argon2id check costs about 19 MiB and tens of milliseconds of CPU, and a
//! client needs no account to ask for one. [`PasswordChecks`] keeps that work
//! bounded:
//!
//! - at most `max_concurrent` checks run at once; a request waits at most
//!   `queue_wait` for a turn (and at most `max_waiting` requests wait), then it
//!   is refused with a retry hint instead of piling up memory;
//! - after `free_failures` failed checks for one user name, or from one client
//!   address, further attempts are refused without hashing for a backoff that
//!   doubles with each failure (up to `max_backoff`) and is forgotten after a
//!   quiet period (a user name's count also after its successful login);
//! - an unknown user name, or a user without a password, is checked against a
//!   dummy hash of the same cost, so the answer and its timing do not tell
//!   which users exist.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::authn;

/// Limits of password checking.
#[derive(Debug, Clone)]
pub struct PasswordLimits {
    /// Checks running at once (each holds about 19 MiB while it runs).
    pub max_concurrent: usize,
    /// Requests waiting for a turn; more are refused at once.
    pub max_waiting: usize,
    /// How long a request waits for a turn before it is refused.
    pub queue_wait: Duration,
    /// Failures per user name or client address before backoff starts.
    pub free_failures: u32,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// Failures are forgotten after this long without a new one.
    pub forget_after: Duration,
    /// Most user names and addresses tracked at once (memory bound).
    pub max_tracked: usize,
}

impl Default for PasswordLimits {
    fn default() -> Self {
        Self {
            max_concurrent: 4,
            max_waiting: 64,
            queue_wait: Duration::from_secs(2),
            free_failures: 5,
            max_backoff: Duration::from_secs(60),
            forget_after: Duration::from_secs(15 * 60),
            max_tracked: 10_000,
        }
    }
}

/// Why a password was not checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Too many recent failures for this user name or client address.
    Backoff {
        /// Seconds until another attempt is accepted.
        retry_after_secs: u64,
    },
    /// Every check slot was busy for the whole wait.
    Busy {
        /// Seconds after which a retry is advised.
        retry_after_secs: u64,
    },
}

/// Whose failures are counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Client(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Instant,
}

/// Counters of password checking, for `/metrics`.
#[derive(Debug, Default)]
struct Counters {
    verifications: AtomicU64,
    dummy_verifications: AtomicU64,
    refused_backoff: AtomicU64,
    refused_busy: AtomicU64,
}

/// The gate every password check passes (see the module documentation).
pub struct PasswordChecks {
    limits: PasswordLimits,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    failures: Mutex<HashMap<Key, Failures>>,
    dummy_hash: String,
    counters: Counters,
    /// Working memory of finished checks, reused by the next ones: at most
    /// `max_concurrent` buffers ever exist.
    memory: Arc<Mutex<Vec<authn::HashMemory>>>,
}

impl std::fmt::Debug for PasswordChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChecks")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Decrements the waiting count however the wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PasswordChecks {
    /// A gate with these limits. Hashes a random dummy password once (the
    /// stand-in for users without a password hash).
    pub fn new(limits: PasswordLimits) -> Self {
        let dummy = authn::new_token_id();
        // Hashing a fresh random string cannot fail short of a broken RNG;
        // a hash that parses but matches nothing is the safe fallback.
        let dummy_hash = authn::hash_password(dummy.as_str()).unwrap_or_else(|_| {
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned()
        });
        Self {
            permits: Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
            limits,
            waiting: AtomicUsize::new(0),
            failures: Mutex::new(HashMap::new()),
            dummy_hash,
            counters: Counters::default(),
            memory: Arc::default(),
        }
    }

    fn keys(username: &str, client: Option<IpAddr>) -> Vec<Key> {
        let mut keys = vec![Key::User(username.to_owned())];
        keys.extend(client.map(Key::Client));
        keys
    }

    /// Refuse at once if `username` or `client` is in backoff.
    fn check_backoff(&self, keys: &[Key]) -> Result<(), Refusal> {
        let now = Instant::now();
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let wait = keys
            .iter()
            .filter_map(|k| failures.get(k))
            .filter(|f| f.blocked_until > now)
            .map(|f| f.blocked_until - now)
            .max();
        match wait {
            Some(wait) => {
                self.counters
                    .refused_backoff
                    .fetch_add(1, Ordering::Relaxed);
                Err(Refusal::Backoff {
                    retry_after_secs: wait.as_secs().max(1),
                })
            }
            None => Ok(()),
        }
    }

    fn record(&self, keys: &[Key], ok: bool) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            // Only the user's own count: a login to an account one controls
            // must not reset the count of the address it comes from.
            for k in keys.iter().filter(|k| matches!(k, Key::User(_))) {
                failures.remove(k);
            }
            return;
        }
        if failures.len() + keys.len() > self.limits.max_tracked {
            let forget_after = self.limits.forget_after;
            failures.retain(|_, f| now.duration_since(f.last) < forget_after);
            if failures.len() + keys.len() > self.limits.max_tracked {
                // Still full under attack from many names: drop the oldest half
                // rather than grow; those attempts still pay the full check.
                let mut lasts: Vec<Instant> = failures.values().map(|f| f.last).collect();
                lasts.sort_unstable();
                if let Some(cut) = lasts.get(lasts.len() / 2).copied() {
                    failures.retain(|_, f| f.last > cut);
                }
            }
        }
        for k in keys {
            let entry = failures.entry(k.clone()).or_insert(Failures {
                count: 0,
                last: now,
                blocked_until: now,
            });
            if now.duration_since(entry.last) >= self.limits.forget_after {
                entry.count = 0;
            }
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
            if entry.count >= self.limits.free_failures {
                let doublings = (entry.count - self.limits.free_failures).min(16);
                let backoff = Duration::from_secs(1u64 << doublings).min(self.limits.max_backoff);
                entry.blocked_until = now + backoff;
            }
        }
    }

    /// Check `password` for `username` against `hash` (`None`: the user does
    /// not exist or has no password, checked against the dummy hash and always
    /// false), within the limits. `client` is the caller's address if known.
    pub async fn verify(
        &self,
        username: &str,
        client: Option<IpAddr>,
        hash: Option<String>,
        password: &str,
    ) -> Result<bool, Refusal> {
        let keys = Self::keys(username, client);
        self.check_backoff(&keys)?;
        let busy = || {
            self.counters.refused_busy.fetch_add(1, Ordering::Relaxed);
            Refusal::Busy {
                retry_after_secs: 1,
            }
        };
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.limits.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(busy());
                }
                let _waiting = Waiting(&self.waiting);
                match tokio::time::timeout(
                    self.limits.queue_wait,
                    self.permits.clone().acquire_owned(),
                )
                .await
                {
                    Ok(Ok(p)) => p,
                    _ => return Err(busy()),
                }
            }
        };
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let password = password.to_owned();
        self.counters.verifications.fetch_add(1, Ordering::Relaxed);
        if !known {
            self.counters
                .dummy_verifications
                .fetch_add(1, Ordering::Relaxed);
        }
        // argon2 is deliberately slow: keep it off the request threads.
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default();
        let pool = self.memory.clone();
        // The permit and the memory go with the computation, which runs to
        // its end even if the request is dropped meanwhile.
        let ok = tokio::task::spawn_blocking(move || {
            let ok = authn::verify_password_in(&hash, &password, &mut memory);
            pool.lock().unwrap_or_else(|p| p.into_inner()).push(memory);
            drop(permit);
            ok
        })
        .await
        .unwrap_or(false);
        let ok = ok && known;
        self.record(&keys, ok);
        Ok(ok)
    }

    /// The counters in the Prometheus text format.
    pub fn render(&self) -> String {
        let c = &self.counters;
        let mut out = String::new();
        for (name, help, value) in [
            (
                "entrepot_password_verifications_total",
                "Password hashes computed to check a login (unknown users included).",
                c.verifications.load(Ordering::Relaxed),
            ),
            (
                "entrepot_password_dummy_verifications_total",
                "Checks run against the dummy hash: unknown users and users without a password.",
                c.dummy_verifications.load(Ordering::Relaxed),
            ),
            (
                "entrepot_password_refused_backoff_total",
                "Password attempts refused unchecked during a failure backoff.",
                c.refused_backoff.load(Ordering::Relaxed),
            ),
            (
                "entrepot_password_refused_busy_total",
                "Password attempts refused because every check slot was busy.",
                c.refused_busy.load(Ordering::Relaxed),
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            ));
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fast() -> PasswordLimits {
        PasswordLimits {
            max_concurrent: 1,
            max_waiting: 0,
            queue_wait: Duration::from_millis(1),
            free_failures: 2,
            ..PasswordLimits::default()
        }
    }

    #[tokio::test]
    async fn failures_start_a_backoff_and_unknown_users_pay_the_same_check() {
        let checks = PasswordChecks::new(fast());
        let hash = authn::hash_password("correct horse").unwrap();
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        assert_eq!(
            checks.verify("ghost", None, None, "x").await,
            Ok(false),
            "an unknown user is checked, and fails"
        );
        assert!(checks
            .render()
            .contains("entrepot_password_verifications_total 1"));
        assert!(checks
            .render()
            .contains("entrepot_password_dummy_verifications_total 1"));
        assert_eq!(
            checks
                .verify("alice", Some(ip), Some(hash.clone()), "correct horse")
                .await,
            Ok(true)
        );
        for _ in 0..2 {
            assert_eq!(
                checks
                    .verify("alice", Some(ip), Some(hash.clone()), "wrong")
                    .await,
                Ok(false)
            );
        }
        let refused = checks
            .verify("alice", Some(ip), Some(hash.clone()), "correct horse")
            .await;
        assert!(
            matches!(refused, Err(Refusal::Backoff { .. })),
            "{refused:?}"
        );
        // Another name from the same address is in backoff too.
        let refused = checks.verify("bob", Some(ip), None, "x").await;
        assert!(
            matches!(refused, Err(Refusal::Backoff { .. })),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn a_busy_gate_refuses_instead_of_queueing_without_bound() {
        let checks = Arc::new(PasswordChecks::new(fast()));
        let _held = checks.permits.clone().try_acquire_owned().unwrap();
        let refused = checks.verify("carol", None, None, "x").await;
        assert_eq!(
            refused,
            Err(Refusal::Busy {
                retry_after_secs: 1
            })
        );
    }
}
