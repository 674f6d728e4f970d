//! skopeo against a test's server (as the admin, or with the credentials a
//! test names) and against upstream registries, with the test's own auth file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::layout::write_layout;
use super::server::Entrepot;

/// Fail with the package to install when a client program is missing.
pub fn require_tool(tool: &str, package: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "{tool} is required by this test and was not found; install it with `apt-get install -y {package}`"
    );
}

/// Run `skopeo --insecure-policy ARGS` (no policy file needed).
pub fn skopeo(args: &[&str]) -> Output {
    require_tool("skopeo", "skopeo");
    Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .unwrap()
}

/// Insist a skopeo run succeeded; `what` and its stderr otherwise.
pub fn assert_skopeo_ok(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Entrepot {
    /// `docker://ADDR/PATH`.
    pub fn docker_ref(&self, image: &str) -> String {
        format!("docker://{}/{image}", self.addr)
    }

    /// `USER:TOKEN` of the credentials the helpers send: the admin's.
    pub fn creds(&self) -> String {
        format!("admin:{}", self.admin_token)
    }

    /// The skopeo auth file of this test (never the user's own).
    pub fn authfile(&self) -> PathBuf {
        self.dir.path().join("auth.json")
    }

    /// Run `skopeo --insecure-policy ARGS` with this test's auth file and home.
    pub fn skopeo(&self, args: &[&str]) -> Output {
        require_tool("skopeo", "skopeo");
        Command::new("skopeo")
            .arg("--insecure-policy")
            .args(args)
            .env("REGISTRY_AUTH_FILE", self.authfile())
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }

    /// Run skopeo and insist it succeeds, with the server's log otherwise.
    fn skopeo_ok(&self, args: &[&str]) {
        let output = self.skopeo(args);
        assert!(
            output.status.success(),
            "skopeo {args:?} failed:\n{}\n--- server log ---\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log_text()
        );
    }

    /// `skopeo copy` from an OCI layout into this server, digests preserved.
    /// `all` copies every platform of an index.
    pub fn skopeo_push(&self, layout: &Path, tag: &str, image: &str, all: bool) {
        let creds = format!("--dest-creds={}", self.creds());
        let (src, dst) = (
            format!("oci:{}:{tag}", layout.display()),
            self.docker_ref(image),
        );
        let mut args = vec!["copy", "--preserve-digests", "--dest-tls-verify=false"];
        if all {
            args.push("--all");
        }
        args.extend([creds.as_str(), src.as_str(), dst.as_str()]);
        self.skopeo_ok(&args);
    }

    /// `skopeo copy` from this server into a new OCI layout, digests preserved.
    pub fn skopeo_pull(&self, image: &str, layout: &Path, tag: &str, all: bool) {
        let creds = format!("--src-creds={}", self.creds());
        let (src, dst) = (
            self.docker_ref(image),
            format!("oci:{}:{tag}", layout.display()),
        );
        let mut args = vec!["copy", "--preserve-digests", "--src-tls-verify=false"];
        if all {
            args.push("--all");
        }
        args.extend([creds.as_str(), src.as_str(), dst.as_str()]);
        self.skopeo_ok(&args);
    }

    /// `skopeo copy` of `image` from this server as the admin into a layout
    /// at `dest` tagged `tag`; the output, whatever happened.
    pub fn skopeo_pull_output(&self, image: &str, dest: &Path, tag: &str) -> Output {
        let creds = format!("--src-creds=admin:{}", self.admin_token);
        let (src, dst) = (
            self.docker_ref(image),
            format!("oci:{}:{tag}", dest.display()),
        );
        self.skopeo(&["copy", "--src-tls-verify=false", &creds, &src, &dst])
    }

    /// An OCI layout with one small image tagged `1.0`, written once per server.
    pub fn layout(&self) -> PathBuf {
        let dir = self.dir.path().join("layout");
        if !dir.exists() {
            write_layout(&dir);
        }
        dir
    }

    /// skopeo-push the test image ([`Self::layout`]) to `project/repo/image:tag`
    /// with `user:token` credentials (`None`: the auth file).
    pub fn push(&self, target: &str, creds: Option<&str>) -> Output {
        let src = format!("oci:{}:1.0", self.layout().display());
        let dst = self.docker_ref(target);
        let mut args = vec!["copy", "--dest-tls-verify=false"];
        if let Some(c) = creds {
            args.extend(["--dest-creds", c]);
        }
        args.extend([src.as_str(), dst.as_str()]);
        self.skopeo(&args)
    }

    /// skopeo-pull `project/repo/image:tag` into a fresh layout with
    /// `user:token` credentials (`None`: the auth file).
    pub fn pull(&self, target: &str, creds: Option<&str>) -> Output {
        use std::sync::atomic::{AtomicU64, Ordering};
        static PULLS: AtomicU64 = AtomicU64::new(0);
        let n = PULLS.fetch_add(1, Ordering::Relaxed);
        let out = self.dir.path().join(format!("pulled-{n}"));
        let dst = format!("oci:{}:1.0", out.display());
        let src = self.docker_ref(target);
        let mut args = vec!["copy", "--src-tls-verify=false"];
        if let Some(c) = creds {
            args.extend(["--src-creds", c]);
        }
        args.extend([src.as_str(), dst.as_str()]);
        self.skopeo(&args)
    }
}
