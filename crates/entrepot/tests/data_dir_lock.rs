//! SQLite stays single-node: a second server on a data directory that a
//! running server holds is refused, naming the first one's pid, and starts
//! once the first has stopped.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

#[test]
fn a_second_server_on_a_held_data_directory_is_refused_with_the_holder_s_pid() {
    if every_server_on_postgres() {
        eprintln!("skipped: the servers of this run keep their metadata in PostgreSQL");
        return;
    }
    let first = Entrepot::start();
    let mut second = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&first.data_dir)
        .env_remove("ENTREPOT_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            second.kill().unwrap();
            panic!("the second server kept running on a held data directory");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = second.wait_with_output().unwrap();
    assert!(!status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("(pid {})", first.pid())),
        "the refusal does not name the holder: {said}"
    );
    assert!(said.contains("single-node"), "{said}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "the second server listened"
    );
    // The first still serves; once it is gone, a new server starts there.
    assert_eq!(first.get("/v1/projects/default").status(), 200);
    let restarted = first.restart();
    assert_eq!(restarted.get("/v1/projects/default").status(), 200);
}
