//! Time, behind a [`Clock`] so that what time decides (freshness windows,
//! audit sampling, recorded times) can be driven by a test, and the one
//! definition of how entrepot writes a time down (RFC 3339, UTC): the
//! services and the stores both read "now" from here.

use std::sync::atomic::{AtomicI64, Ordering};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Where the services read the current time.
pub trait Clock: Send + Sync {
    /// Now as unix seconds, for expiry and freshness arithmetic.
    fn now_unix(&self) -> i64;

    /// Now as RFC 3339 text, for resource timestamps.
    fn now_rfc3339(&self) -> String {
        rfc3339(self.now_unix())
    }
}

/// The machine's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        OffsetDateTime::now_utc().unix_timestamp()
    }

    fn now_rfc3339(&self) -> String {
        OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default()
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug)]
pub struct ManualClock {
    unix: AtomicI64,
}

impl ManualClock {
    /// A clock showing `unix` seconds.
    pub fn at(unix: i64) -> Self {
        Self {
            unix: AtomicI64::new(unix),
        }
    }

    /// Move the clock forward by `secs` (backward if negative).
    pub fn advance(&self, secs: i64) {
        self.unix.fetch_add(secs, Ordering::SeqCst);
    }

    /// Set the clock to `unix` seconds.
    pub fn set(&self, unix: i64) {
        self.unix.store(unix, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix(&self) -> i64 {
        self.unix.load(Ordering::SeqCst)
    }
}

/// `unix` seconds as RFC 3339 text; empty if out of range.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// `unix_ms` milliseconds as RFC 3339 text with milliseconds
/// (`2026-12-02T16:01:07.123Z`); empty if out of range.
pub fn rfc3339_ms(unix_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            let format = time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            );
            t.format(&format).ok()
        })
        .unwrap_or_default()
}

/// Now as RFC 3339 text, from the [`SystemClock`].
pub fn now_rfc3339() -> String {
    SystemClock.now_rfc3339()
}

/// Now as unix seconds, from the [`SystemClock`].
pub fn now_unix() -> i64 {
    SystemClock.now_unix()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::at(1_700_000_000);
        assert_eq!(clock.now_unix(), 1_700_000_000);
        assert_eq!(clock.now_rfc3339(), "2023-11-14T22:13:20Z");
        clock.advance(60);
        assert_eq!(clock.now_unix(), 1_700_000_060);
        clock.set(0);
        assert_eq!(clock.now_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_ms(5), "1970-01-01T00:00:00.005Z");
    }
}
