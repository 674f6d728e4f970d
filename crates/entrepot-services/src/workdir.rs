//! Working directories a service writes temporary files into.

use std::path::Path;

/// Create `dir` if missing and empty it: files a previous process left there
/// were never committed, so nothing in it is worth keeping.
pub(crate) fn fresh_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let _ = std::fs::remove_file(entry.path());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_dir_exists_and_is_empty() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("spool");
        fresh_dir(&dir).unwrap();
        std::fs::write(dir.join("left-over"), b"x").unwrap();
        fresh_dir(&dir).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }
}
