//! Waiting for something that must eventually happen, with a bound.

use std::time::{Duration, Instant};

/// Poll `check` until it returns true, up to `bound`. This is a functional
/// wait (something must eventually happen), not a timing assertion.
pub fn eventually(bound: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if check() {
            return true;
        }
        if start.elapsed() > bound {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
