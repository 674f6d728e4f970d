//! A Docker daemon of the test's own, for tests that need the docker CLI:
//! data, exec root, socket and pid file in a temporary directory, the
//! registry's CA in `/etc/docker/certs.d/HOST:PORT/ca.crt`, optionally a
//! registry mirror; all removed when dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::wait::eventually;

/// A dockerd of the test's own: data, exec root, socket and pid file in a
/// temporary directory; `/etc/docker/certs.d/ADDR/ca.crt` for the registry;
/// all removed when dropped.
pub struct Dockerd {
    child: std::process::Child,
    dir: tempfile::TempDir,
    certs_d: PathBuf,
}

impl Dockerd {
    /// Start dockerd trusting `ca_pem` for `registry` (HOST:PORT), or say
    /// why it cannot run here.
    pub fn start(registry: &str, ca_pem: &str) -> Result<Dockerd, String> {
        Dockerd::spawn(registry, ca_pem, &[])
    }

    /// Start dockerd with `https://REGISTRY` as its Docker Hub mirror
    /// (`--registry-mirror`), trusting `ca_pem` for it through certs.d, or
    /// say why it cannot run here.
    pub fn start_mirroring(registry: &str, ca_pem: &str) -> Result<Dockerd, String> {
        let mirror = format!("https://{registry}");
        Dockerd::spawn(registry, ca_pem, &["--registry-mirror", &mirror])
    }

    fn spawn(registry: &str, ca_pem: &str, extra: &[&str]) -> Result<Dockerd, String> {
        if Command::new("dockerd").arg("--version").output().is_err() {
            return Err("dockerd is not installed (apt-get install -y docker.io)".into());
        }
        if !rustix::process::geteuid().is_root() {
            return Err("dockerd needs root".into());
        }
        let certs_d = Path::new("/etc/docker/certs.d").join(registry);
        fs::create_dir_all(&certs_d).map_err(|e| format!("{}: {e}", certs_d.display()))?;
        fs::write(certs_d.join("ca.crt"), ca_pem).unwrap();
        // Short paths: the sockets under the exec root must fit in sun_path.
        let dir = tempfile::Builder::new()
            .prefix("dk")
            .tempdir_in("/tmp")
            .unwrap();
        let root = dir.path();
        let log = fs::File::create(root.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .args(["--storage-driver=vfs", "--data-root"])
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("x"))
            .arg("-H")
            .arg(format!("unix://{}", root.join("docker.sock").display()))
            .arg("--pidfile")
            .arg(root.join("pid"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start dockerd: {e}"))?;
        let dockerd = Dockerd {
            child,
            dir,
            certs_d,
        };
        let up = eventually(Duration::from_secs(60), || {
            dockerd.docker(&["info"]).status.success()
        });
        if !up {
            return Err(format!(
                "dockerd did not come up: {}",
                fs::read_to_string(dockerd.dir.path().join("dockerd.log")).unwrap_or_default()
            ));
        }
        Ok(dockerd)
    }

    /// `docker ARGS` against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_command(args).output().unwrap()
    }

    /// The `docker ARGS` command against this daemon, to adjust before running.
    pub fn docker_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("docker");
        command
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.dir.path().join("docker.sock").display()),
            )
            .env("DOCKER_CONFIG", self.dir.path().join("client"))
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// What the daemon wrote to its log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let stopped = eventually(Duration::from_secs(30), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = fs::remove_dir_all(&self.certs_d);
    }
}
