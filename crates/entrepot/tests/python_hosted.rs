//! Standard (hosted) Python repositories with real clients against the real
//! binary: twine uploads, pip and uv install what was uploaded, and uploads
//! that must be refused.

#![allow(clippy::unwrap_used)]

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

const JSON: &str = "application/vnd.pypi.simple.v1+json";

#[test]
fn twine_uploads_to_a_standard_repository_and_pip_installs_from_it() {
    let work = tempfile::tempdir().unwrap();
    let dists = work.path().join("dists");
    let lib = make_dist(&dists, "wheel", "tiny-lib", "1.0", &[]);
    let app = make_dist(&dists, "wheel", "tiny-app", "1.0", &["tiny-lib>=1.0"]);
    let sdist = make_dist(&dists, "sdist", "sdist-only", "0.5", &[]);
    let server = Entrepot::start();
    server.create_python("hosted", None, json!({}));
    let legacy = format!("{}/pypi/default/hosted/legacy/", server.base);

    let out = twine_upload(
        &legacy,
        "__token__",
        &server.admin_token,
        &[&lib, &app, &sdist],
    );
    assert!(out.status.success(), "twine upload: {}", text(&out));

    let target = work.path().join("t");
    let out = pip_install(
        &server.python_index("hosted"),
        &target,
        &["tiny-app", "sdist-only"],
    );
    assert!(out.status.success(), "pip install: {}", text(&out));
    assert!(
        installed(&target, "tiny_app")
            && installed(&target, "tiny_lib")
            && installed(&target, "sdist_only")
    );

    // The page has hashes, sizes, upload times, requires-python and metadata files.
    let body: Value = server
        .request(Method::GET, "/pypi/default/hosted/simple/tiny-app/")
        .header("Accept", JSON)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let file = &body["files"][0];
    let app_bytes = std::fs::read(&app).unwrap();
    assert_eq!(
        file["hashes"]["sha256"],
        sha256(&app_bytes).trim_start_matches("sha256:")
    );
    assert_eq!(file["size"], app_bytes.len());
    assert_eq!(file["requires-python"], ">=3.7");
    assert!(file["upload-time"].is_string());
    let metadata = server
        .get(&format!("{}.metadata", file["url"].as_str().unwrap()))
        .text()
        .unwrap();
    assert!(
        metadata.contains("Requires-Dist: tiny-lib>=1.0"),
        "{metadata}"
    );

    // The same file again: refused, like PyPI.
    let out = twine_upload(&legacy, "__token__", &server.admin_token, &[&lib]);
    assert!(!out.status.success());
    assert!(text(&out).contains("File already exists"), "{}", text(&out));

    // A wrong sha256: refused, nothing stored.
    let other = make_dist(&work.path().join("other"), "wheel", "other-pkg", "1.0", &[]);
    let bytes = std::fs::read(&other).unwrap();
    let zeros = "0".repeat(64);
    let fields = [
        (":action", "file_upload"),
        ("name", "other-pkg"),
        ("version", "1.0"),
        ("filetype", "bdist_wheel"),
        ("sha256_digest", zeros.as_str()),
    ];
    let r = upload_form(
        &server,
        "hosted",
        &fields,
        "other_pkg-1.0-py3-none-any.whl",
        &bytes,
    );
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("digest"));
    assert_eq!(
        server
            .get("/pypi/default/hosted/simple/other-pkg/")
            .status(),
        404
    );

    // A name that does not match the file: refused.
    let fields = [
        (":action", "file_upload"),
        ("name", "tiny-lib"),
        ("version", "1.0"),
    ];
    let r = upload_form(
        &server,
        "hosted",
        &fields,
        "other_pkg-1.0-py3-none-any.whl",
        &bytes,
    );
    assert_eq!(r.status(), 400);

    // Yank 1.0 of tiny-lib: marked on the page with its reason; unyank clears it.
    let out = server.cli(&[
        "python",
        "yank",
        "tiny-lib",
        "1.0",
        "--repository=hosted",
        "--reason=broken build",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = server
        .get("/pypi/default/hosted/simple/tiny-lib/")
        .text()
        .unwrap();
    assert!(html.contains("data-yanked=\"broken build\""), "{html}");
    let out = server.cli(&["python", "unyank", "tiny-lib", "1.0", "--repository=hosted"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = server
        .get("/pypi/default/hosted/simple/tiny-lib/")
        .text()
        .unwrap();
    assert!(!html.contains("data-yanked"), "{html}");
}

#[test]
fn uploads_over_the_size_cap_or_to_a_remote_repository_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let wheel = make_dist(work.path(), "wheel", "tiny-lib", "1.0", &[]);
    let server = Entrepot::builder()
        .env("ENTREPOT_PYTHON_MAX_UPLOAD_BYTES", "100")
        .start();
    server.create_python("hosted", None, json!({}));
    let out = twine_upload(
        &format!("{}/pypi/default/hosted/legacy/", server.base),
        "__token__",
        &server.admin_token,
        &[&wheel],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("File too large"), "{}", text(&out));
    assert_eq!(
        server.get("/pypi/default/hosted/simple/tiny-lib/").status(),
        404
    );
    let staged = std::fs::read_dir(server.data_dir.join("blobs/uploads-python"))
        .unwrap()
        .count();
    assert_eq!(staged, 0, "a refused upload leaves nothing staged");

    // The remote `pypi` repository takes no uploads.
    let bytes = std::fs::read(&wheel).unwrap();
    let fields = [
        (":action", "file_upload"),
        ("name", "tiny-lib"),
        ("version", "1.0"),
    ];
    let r = upload_form(
        &server,
        "pypi",
        &fields,
        "tiny_lib-1.0-py3-none-any.whl",
        &bytes,
    );
    assert_eq!(r.status(), 405);
    assert!(r.text().unwrap().contains("remote repository"));
}
