//! A remote Python repository over its size cap, with pypiserver as the
//! upstream and pip as the client: installs fill the cache past its cap,
//! the least recently downloaded file leaves the disk, the recently
//! downloaded ones stay, and a re-install of the evicted package works,
//! fetching its file from the upstream exactly once more.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest as _, Sha256};
use support::*;

/// Random (incompressible) bytes in each wheel.
const PAYLOAD: usize = 100 * 1024;
/// Two wheels fit, three do not.
const CAP: u64 = 250 * 1024;
/// Bound of the waits for a background eviction pass (it runs right after
/// a fill; the bound only stops a broken build from hanging).
const PASS: Duration = Duration::from_secs(60);

/// A wheel of `name` 1.0 holding `PAYLOAD` random bytes, written into `dir`;
/// its path and sha256.
fn wheel(dir: &Path, name: &str) -> (PathBuf, String) {
    run_python(&format!(
        r#"
import base64, hashlib, os, zipfile
name, dist = "{name}", "{name}".replace("-", "_")
path = os.path.join("{dir}", f"{{dist}}-1.0-py3-none-any.whl")
files = {{
    f"{{dist}}/__init__.py": b"",
    f"{{dist}}/payload.bin": os.urandom({PAYLOAD}),
    f"{{dist}}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {{name}}\nVersion: 1.0\n".encode(),
    f"{{dist}}-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}}
record = "".join(
    f"{{n}},sha256={{base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b'=').decode()}},{{len(b)}}\n"
    for n, b in files.items()
) + f"{{dist}}-1.0.dist-info/RECORD,,\n"
with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
    for n, b in files.items():
        z.writestr(n, b)
    z.writestr(f"{{dist}}-1.0.dist-info/RECORD", record)
"#,
        dir = dir.display()
    ));
    let path = dir.join(format!("{}-1.0-py3-none-any.whl", name.replace('-', "_")));
    let sha256 = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
    (path, sha256)
}

fn install(server: &Entrepot, work: &Path, package: &str, into: &str) {
    let out = pip_install(&server.python_index("up"), &work.join(into), &[package]);
    assert!(
        out.status.success(),
        "pip install {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cached(server: &Entrepot, sha256: &str) -> bool {
    server.blob_file(&format!("sha256:{sha256}")).exists()
}

/// Bytes of the blob files in the server's blob directory.
fn bytes_on_disk(server: &Entrepot) -> u64 {
    files_under(&server.data_dir.join("blobs/blobs/sha256"))
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PASS, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_least_recently_downloaded_python_file_is_evicted_and_fetched_again() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    std::fs::create_dir_all(&packages).unwrap();
    let (_, a) = wheel(&packages, "pkg-a");
    let (_, b) = wheel(&packages, "pkg-b");
    let (_, c) = wheel(&packages, "pkg-c");
    let upstream = PyPiServer::start(&packages);
    let server = Entrepot::start();
    server.create_python(
        "up",
        Some(&upstream.index_url()),
        json!({ "cacheMaxSizeBytes": CAP }),
    );

    install(&server, work.path(), "pkg-a", "a1");
    install(&server, work.path(), "pkg-b", "b1");
    assert!(cached(&server, &a) && cached(&server, &b));
    // pkg-a downloaded again, from the cache: pkg-b is now the least
    // recently downloaded file.
    install(&server, work.path(), "pkg-a", "a2");
    assert_eq!(upstream.gets_of("/packages/pkg_a"), 1);
    // The third file takes the cache over its cap.
    install(&server, work.path(), "pkg-c", "c1");
    wait_until("pkg-b's file left the disk", || !cached(&server, &b));
    assert!(cached(&server, &a), "the recently downloaded file went");
    assert!(cached(&server, &c), "the file just cached went");
    let on_disk = bytes_on_disk(&server);
    assert!(
        on_disk <= CAP,
        "{on_disk} bytes on disk over a cap of {CAP}"
    );
    assert!(
        server.metric("entrepot_cache_evictions_total") >= 1,
        "the eviction is not counted"
    );

    // The evicted package installs again, fetched once more from the upstream.
    assert_eq!(upstream.gets_of("/packages/pkg_b"), 1);
    install(&server, work.path(), "pkg-b", "b2");
    assert_eq!(upstream.gets_of("/packages/pkg_b"), 2);
    assert!(work
        .path()
        .join("b2/pkg_b/payload.bin")
        .metadata()
        .is_ok_and(|m| m.len() == PAYLOAD as u64));
    wait_until("the cache is back under its cap", || {
        bytes_on_disk(&server) <= CAP
    });
}
