//! podman with a private image store: the test fails, naming the tool and its
//! package, when podman is missing or cannot run here (CI installs it).

use std::path::Path;
use std::process::Command;

use super::skopeo::require_tool;

/// podman whose storage lives in a temporary directory, so a test needs no
/// system image store.
pub struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    /// Insist podman is installed and `podman info` works with the private
    /// storage; panics with what to install or what failed otherwise.
    pub fn new() -> Podman {
        require_tool("podman", "podman");
        let podman = Podman {
            dir: tempfile::tempdir().unwrap(),
        };
        let info = podman.command().arg("info").output().unwrap();
        assert!(
            info.status.success(),
            "podman is installed but `podman info` fails here, so this test cannot run \
             (install it with `apt-get install -y podman`; rootless podman also needs uidmap): {}",
            String::from_utf8_lossy(&info.stderr).trim()
        );
        podman
    }

    /// `podman` with the private storage options.
    pub fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command.args(storage_options(self.dir.path()));
        command
    }
}

/// vfs works without overlay support in the kernel or fuse-overlayfs.
fn storage_options(root: &Path) -> Vec<String> {
    vec![
        "--root".into(),
        root.join("root").display().to_string(),
        "--runroot".into(),
        root.join("run").display().to_string(),
        "--storage-driver".into(),
        "vfs".into(),
        "--events-backend".into(),
        "file".into(),
    ]
}
