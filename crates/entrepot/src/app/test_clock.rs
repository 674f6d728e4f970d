//! The clock the release-age rules read. In production the machine's;
//! `ENTREPOT_TEST_CLOCK_OFFSET_FILE` names a file holding a number of
//! seconds added to it, read on every call, so that an end-to-end test can
//! move the server's time forward (a week of minimum release age) without
//! waiting. Not a configuration key: a testing aid.

use std::path::PathBuf;
use std::sync::Arc;

use entrepot_domain::clock::{Clock, SystemClock};

/// The environment variable naming the offset file.
pub const OFFSET_FILE_VAR: &str = "ENTREPOT_TEST_CLOCK_OFFSET_FILE";

/// The machine's clock moved by the seconds written in a file.
#[derive(Debug)]
struct OffsetFileClock {
    file: PathBuf,
}

impl Clock for OffsetFileClock {
    fn now_unix(&self) -> i64 {
        let offset = std::fs::read_to_string(&self.file)
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .unwrap_or(0);
        SystemClock.now_unix().saturating_add(offset)
    }
}

/// The clock of this process: [`SystemClock`], or the offset clock when
/// [`OFFSET_FILE_VAR`] is set.
pub fn from_env() -> Arc<dyn Clock> {
    match std::env::var_os(OFFSET_FILE_VAR) {
        Some(file) if !file.is_empty() => {
            tracing::warn!(file = %PathBuf::from(&file).display(), "the release-age clock is moved by a test offset file");
            Arc::new(OffsetFileClock { file: file.into() })
        }
        _ => Arc::new(SystemClock),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_in_the_file_moves_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("offset");
        let clock = OffsetFileClock { file: file.clone() };
        let before = SystemClock.now_unix();
        assert!(clock.now_unix() - before < 60);
        std::fs::write(&file, "864000\n").unwrap();
        assert!(clock.now_unix() - before >= 864_000);
    }
}
