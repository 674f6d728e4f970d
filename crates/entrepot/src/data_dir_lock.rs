//! One server per SQLite data directory: `entrepot.lock` in the directory,
//! held with `flock` for as long as the server runs. SQLite serves one
//! process (its in-process read cache is correct only because that process
//! makes every write), so a second server on the same directory is refused
//! with the first one's pid; the kernel releases the lock when the holder
//! exits, however it ends.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "entrepot.lock";

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum DataDirLockError {
    /// Another process holds the lock.
    #[error(
        "another entrepot server{holder} is using the data directory {dir}: SQLite stays \
         single-node; stop that server first, or run every server on one PostgreSQL \
         database (--database-url)",
        holder = match .pid { Some(pid) => format!(" (pid {pid})"), None => String::new() }
    )]
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The holder's pid, as it wrote it into the lock file.
        pid: Option<u32>,
    },
    /// The lock file could not be opened or written.
    #[error("cannot lock {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The held lock on a data directory; released when dropped.
#[derive(Debug)]
pub struct DataDirLock {
    // Holding the open file holds the lock.
    _file: File,
}

impl DataDirLock {
    /// Lock `data_dir` for this process and write its pid into the lock
    /// file; fails at once, naming the holder, when another process (or
    /// another server in this one) has it.
    pub fn acquire(data_dir: &Path) -> Result<Self, DataDirLockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| DataDirLockError::Io {
            path: path.clone(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(DataDirLockError::Held {
                    dir: data_dir.to_owned(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(e) => return Err(io(e.into())),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holder_s_pid_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains(&format!("(pid {})", std::process::id())),
            "{shown}"
        );
        assert!(shown.contains("single-node"), "{shown}");
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
