//! When a cached mutable document (a tag's manifest, an index page) is
//! answered without the upstream, and when it is answered stale.

use entrepot_domain::repository::RemoteConfig;

use super::failure::UpstreamFailure;
use super::target::Gate;

/// What to do with a request for a mutable document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Answer the cached copy: within the freshness window (`stale: false`),
    /// or because the access policy blocks the upstream and the repository
    /// serves what it cached before (`stale: true`).
    Cached {
        /// The copy is older than the freshness window.
        stale: bool,
    },
    /// Ask the upstream.
    Fetch,
    /// Nothing may be answered: the upstream is blocked and there is no copy.
    Blocked,
}

/// Whether a copy checked at `checked_at` (unix seconds) is still fresh at
/// `now` under a window of `ttl_secs`.
pub fn is_fresh(checked_at: i64, now: i64, ttl_secs: u64) -> bool {
    now.saturating_sub(checked_at) < i64::try_from(ttl_secs).unwrap_or(i64::MAX)
}

/// The plan for a document whose cached copy (if any) was last checked at
/// `checked_at`.
pub fn plan(checked_at: Option<i64>, now: i64, config: &RemoteConfig, gate: &Gate) -> Plan {
    match (checked_at, gate) {
        (Some(at), _) if is_fresh(at, now, config.tag_ttl_secs) => Plan::Cached { stale: false },
        (Some(_), Gate::CachedOnly(_)) => Plan::Cached { stale: true },
        (None, Gate::CachedOnly(_)) => Plan::Blocked,
        (_, Gate::Open) => Plan::Fetch,
    }
}

/// Whether the cached copy, last confirmed by the upstream at `checked_at`
/// (unix seconds, when known), is answered at `now` after the upstream
/// failed with `failure`: on any failure of the upstream when the repository
/// serves stale, and after a 404 only within the grace period of a deleted
/// tag (`keep_deleted_secs`).
pub fn serve_stale(
    failure: &UpstreamFailure,
    config: &RemoteConfig,
    checked_at: Option<i64>,
    now: i64,
) -> bool {
    if !config.serve_stale {
        return false;
    }
    match failure {
        UpstreamFailure::NotFound { .. } => {
            checked_at.is_some_and(|at| is_fresh(at, now, config.keep_deleted_secs()))
        }
        f => f.allows_stale(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entrepot_upstream::HopDenied;

    fn config(ttl: u64, serve_stale: bool) -> RemoteConfig {
        RemoteConfig {
            upstream: "http://127.0.0.1:1".into(),
            username: None,
            password_secret_version: None,
            tag_ttl_secs: ttl,
            python_index_ttl_secs: None,
            serve_stale,
            allow_insecure_upstream: false,
            allow_cached_from_blocked: false,
            keep_deleted_secs: None,
            negative_cache_secs: None,
            cache_max_size_bytes: None,
            timeouts: Default::default(),
            release_age: Default::default(),
        }
    }

    fn blocked() -> Gate {
        Gate::CachedOnly(HopDenied {
            host: "x.io".into(),
            message: "blocked".into(),
        })
    }

    #[test]
    fn fresh_copies_are_answered_and_old_ones_fetched() {
        let c = config(300, true);
        assert_eq!(
            plan(Some(1_000), 1_299, &c, &Gate::Open),
            Plan::Cached { stale: false }
        );
        assert_eq!(plan(Some(1_000), 1_300, &c, &Gate::Open), Plan::Fetch);
        assert_eq!(plan(None, 1_000, &c, &Gate::Open), Plan::Fetch);
        // A window of zero always asks the upstream.
        assert_eq!(
            plan(Some(1_000), 1_000, &config(0, true), &Gate::Open),
            Plan::Fetch
        );
        // A copy checked "later" (the clock moved back) counts as fresh; a
        // huge window does not overflow.
        assert!(is_fresh(2_000, 1_000, 300));
        assert!(is_fresh(0, 10, u64::MAX));
    }

    #[test]
    fn a_blocked_upstream_serves_copies_stale_and_nothing_else() {
        let c = config(300, true);
        assert_eq!(
            plan(Some(1_000), 1_100, &c, &blocked()),
            Plan::Cached { stale: false }
        );
        assert_eq!(
            plan(Some(1_000), 5_000, &c, &blocked()),
            Plan::Cached { stale: true }
        );
        assert_eq!(plan(None, 5_000, &c, &blocked()), Plan::Blocked);
    }

    #[test]
    fn stale_answers_follow_the_failure_and_the_setting() {
        let down = UpstreamFailure::ServerError {
            host: "x.io".into(),
            status: 503,
            what: "tag".into(),
        };
        let gone = UpstreamFailure::NotFound {
            host: "x.io".into(),
            what: "tag".into(),
        };
        let refused = UpstreamFailure::Refused {
            host: "x.io".into(),
            detail: "no".into(),
        };
        let day = 86_400;
        assert!(serve_stale(&down, &config(0, true), None, 0));
        assert!(!serve_stale(&down, &config(0, false), None, 0));
        assert!(serve_stale(&refused, &config(0, true), None, 0));
        // A deleted tag: within the grace period after the last confirmation.
        assert!(serve_stale(
            &gone,
            &config(0, true),
            Some(1_000),
            1_000 + day - 1
        ));
        assert!(!serve_stale(
            &gone,
            &config(0, true),
            Some(1_000),
            1_000 + day
        ));
        assert!(!serve_stale(&gone, &config(0, true), None, 1_000));
        let mut short = config(0, true);
        short.keep_deleted_secs = Some(0);
        assert!(!serve_stale(&gone, &short, Some(1_000), 1_000));
    }
}
