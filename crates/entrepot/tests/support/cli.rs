//! The `entrepot` CLI against a test's server, with a private CLI
//! configuration file, and `entrepot admin` on a data directory; helpers to
//! read a finished process.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use super::server::{Entrepot, BIN};

impl Entrepot {
    /// Run the CLI as the admin.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_input(Some(&self.admin_token), args, None)
    }

    /// Run the CLI with `token` (none: anonymous).
    pub fn cli_as(&self, token: Option<&str>, args: &[&str]) -> Output {
        self.cli_with_input(token, args, None)
    }

    /// Run the CLI with `token` (none: anonymous), feeding `stdin`. Its
    /// configuration file is the test's own (`DIR/cli.toml`), so `login` and
    /// later commands share it and never touch the user's.
    pub fn cli_with_input(
        &self,
        token: Option<&str>,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Output {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("ENTREPOT_SERVER", &self.base)
            .env("ENTREPOT_CONFIG", self.dir.path().join("cli.toml"))
            .env_remove("ENTREPOT_TOKEN")
            .env_remove("ENTREPOT_PROJECT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(token) = token {
            command.env("ENTREPOT_TOKEN", token);
        }
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            input.write_all(bytes).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Run the CLI as the admin and insist it succeeds; its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.cli_stdout(args)).into_owned()
    }

    /// Run the CLI as the admin and insist it succeeds; its stdout as bytes
    /// (a secret's payload need not be text).
    pub fn cli_stdout(&self, args: &[&str]) -> Vec<u8> {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "entrepot {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Store `payload` (written to `dir/{id}.txt`) as the secret `id` of
    /// project default, readable by the project's service agent, through the
    /// CLI as a user would; the name of its first version.
    pub fn agent_secret(&self, dir: &std::path::Path, id: &str, payload: &str) -> String {
        let file = dir.join(format!("{id}.txt"));
        std::fs::write(&file, payload).unwrap();
        self.cli_ok(&[
            "secrets",
            "create",
            id,
            &format!("--data-file={}", file.display()),
        ]);
        let agent = self.service_agent();
        self.cli_ok(&[
            "secrets",
            "add-iam-policy-binding",
            id,
            &format!("--member={agent}"),
            "--role=roles/secretmanager.secretAccessor",
        ]);
        format!("projects/default/secrets/{id}/versions/1")
    }

    /// Run the CLI as the admin and insist it fails; its stderr.
    pub fn cli_err(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(!out.status.success(), "entrepot {args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// Run `entrepot admin ...` (no server involved).
pub fn entrepot_admin(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("admin")
        .args(args)
        .env_remove("ENTREPOT_MASTER_KEY_FILE")
        .env_remove("ENTREPOT_DATA_DIR")
        .output()
        .unwrap()
}

/// Whether a process succeeded.
pub fn ok(out: &Output) -> bool {
    out.status.success()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Status, stdout and stderr of a process, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Insist a process succeeded; its stdout.
pub fn success_stdout(output: Output) -> String {
    assert!(
        output.status.success(),
        "entrepot failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
