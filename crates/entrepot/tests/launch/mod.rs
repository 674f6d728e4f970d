//! Starting the real `entrepot serve` for integration tests: one place that
//! spawns the binary on a free loopback port, waits for its first stdout line
//! (`entrepot listening on http://ADDR`) and keeps its stdout drained.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

/// A server process that has printed its listening line.
pub struct Launched {
    pub child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The rest of stdout; pass it to [`drain`] once read as far as needed.
    pub stdout: Lines<BufReader<ChildStdout>>,
}

/// Start `entrepot serve --listen 127.0.0.1:0 --data-dir DATA` with `env`,
/// sending stderr to `stderr`. Panics with `describe_failure()` appended when the
/// server does not print its listening line.
pub fn launch(
    data_dir: &Path,
    env: &[(String, String)],
    stderr: Stdio,
    describe_failure: impl FnOnce() -> String,
) -> Launched {
    let mut command = Command::new(env!("CARGO_BIN_EXE_entrepot"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("ENTREPOT_MASTER_KEY_FILE")
        .env_remove("ENTREPOT_DATA_DIR")
        .env_remove("ENTREPOT_LISTEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("cannot start the entrepot binary");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = stdout.next().and_then(Result::ok).unwrap_or_default();
    let Some(addr) = first.strip_prefix("entrepot listening on http://") else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "entrepot did not start; first stdout line {first:?}\n{}",
            describe_failure()
        );
    };
    Launched {
        addr: addr.to_owned(),
        child,
        stdout,
    }
}

/// Keep reading a server's stdout so it never blocks on a full pipe.
pub fn drain(stdout: Lines<BufReader<ChildStdout>>) {
    std::thread::spawn(move || for _ in stdout {});
}
