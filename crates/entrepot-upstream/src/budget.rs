//! How long one upstream exchange may take.
//!
//! A hanging upstream must not hold a client's request for minutes: each
//! phase of the exchange has its own limit, and the retries of one request
//! share one budget.

use std::time::Duration;

/// Default time to open a connection (TCP and TLS).
pub const DEFAULT_CONNECT: Duration = Duration::from_secs(5);
/// Default time from sending a request to its response's headers.
pub const DEFAULT_FIRST_BYTE: Duration = Duration::from_secs(15);
/// Default time all attempts of one request may take together.
pub const DEFAULT_TOTAL: Duration = Duration::from_secs(30);
/// Default longest pause between two pieces of a response body.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(15);

/// The time limits of one upstream request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Opening a connection.
    pub connect: Duration,
    /// Sending the request until the response's headers arrived.
    pub first_byte: Duration,
    /// All attempts (retries and their back-off) together, up to the headers.
    pub total: Duration,
    /// The longest pause while reading the body; past it the transfer fails.
    pub idle: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            connect: DEFAULT_CONNECT,
            first_byte: DEFAULT_FIRST_BYTE,
            total: DEFAULT_TOTAL,
            idle: DEFAULT_IDLE,
        }
    }
}

impl Budget {
    /// A budget from whole seconds; `None` or 0 keeps a phase's default.
    pub fn from_secs(
        connect: Option<u64>,
        first_byte: Option<u64>,
        total: Option<u64>,
        idle: Option<u64>,
    ) -> Self {
        let pick = |secs: Option<u64>, default: Duration| match secs {
            Some(s) if s > 0 => Duration::from_secs(s),
            _ => default,
        };
        Self {
            connect: pick(connect, DEFAULT_CONNECT),
            first_byte: pick(first_byte, DEFAULT_FIRST_BYTE),
            total: pick(total, DEFAULT_TOTAL),
            idle: pick(idle, DEFAULT_IDLE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_none_keep_the_defaults() {
        assert_eq!(
            Budget::from_secs(None, Some(0), None, None),
            Budget::default()
        );
        let b = Budget::from_secs(Some(1), Some(2), Some(3), Some(4));
        assert_eq!(b.connect, Duration::from_secs(1));
        assert_eq!(b.idle, Duration::from_secs(4));
    }
}
