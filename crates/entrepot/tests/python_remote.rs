//! Remote (pull-through) Python repositories with real clients (pip, uv)
//! against the real binary, and real upstreams on loopback: pypiserver, and a
//! fixture index that misbehaves on purpose.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::path::Path;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

const JSON: &str = "application/vnd.pypi.simple.v1+json";
const HTML: &str = "application/vnd.pypi.simple.v1+html";

/// The fixtures most tests use: a library, an app depending on it, an sdist-only package.
fn fixtures(dir: &Path) {
    make_dist(dir, "wheel", "tiny-lib", "1.0", &[]);
    make_dist(dir, "wheel", "tiny-app", "1.0", &["tiny-lib>=1.0"]);
    make_dist(dir, "sdist", "sdist-only", "0.5", &[]);
}

fn blob_exists(server: &Entrepot, sha256: &str) -> bool {
    let mut found = false;
    let mut stack = vec![server.data_dir.join("blobs")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().contains(sha256)
                && !path.to_string_lossy().contains("spool")
            {
                found = true;
            }
        }
    }
    found
}

#[test]
fn pip_and_uv_install_through_the_cache_then_with_the_upstream_stopped() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    fixtures(&packages);
    let mut upstream = PyPiServer::start(&packages);
    let server = Entrepot::start();
    // A zero freshness window: every page request asks the upstream, so the
    // warm run below proves pages are served stale when it is down.
    server.create_python(
        "up",
        Some(&upstream.index_url()),
        json!({ "tagTtlSecs": 0 }),
    );
    let url = server.python_index("up");

    let cold = work.path().join("cold");
    let out = pip_install(&url, &cold, &["tiny-app", "sdist-only"]);
    assert!(out.status.success(), "cold pip install: {}", text(&out));
    assert!(
        installed(&cold, "tiny_app")
            && installed(&cold, "tiny_lib")
            && installed(&cold, "sdist_only")
    );

    let uv = work.path().join("uv");
    let out = uv_install(&url, &uv, &["tiny-app", "sdist-only"]);
    assert!(out.status.success(), "uv install: {}", text(&out));
    assert!(installed(&uv, "tiny_app") && installed(&uv, "sdist_only"));
    let file_gets = upstream.gets_of("/packages/");
    assert_eq!(
        file_gets,
        3,
        "each file is fetched from the upstream once:\n{}",
        upstream.log_text()
    );

    upstream.stop();
    let warm = work.path().join("warm");
    let out = pip_install(&url, &warm, &["tiny-app", "sdist-only"]);
    assert!(
        out.status.success(),
        "warm pip install with the upstream down: {}",
        text(&out)
    );
    let warm_uv = work.path().join("warm-uv");
    let out = uv_install(&url, &warm_uv, &["tiny-app"]);
    assert!(
        out.status.success(),
        "warm uv install with the upstream down: {}",
        text(&out)
    );
    assert!(installed(&warm_uv, "tiny_lib"));

    // Pages served from the cache because the upstream is down say so.
    let r = server.get("/pypi/default/up/simple/tiny-lib/");
    assert_eq!(r.status(), 200);
    assert!(header(&r, "warning").contains("Stale"));

    // A project never cached cannot be served while the upstream is down.
    let r = server.get("/pypi/default/up/simple/never-seen/");
    assert_eq!(r.status().as_u16(), 503, "{}", r.text().unwrap());
}

#[test]
fn simple_api_negotiates_redirects_and_serves_ranges() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    fixtures(&packages);
    let wheel = std::fs::read(packages.join("tiny_lib-1.0-py3-none-any.whl")).unwrap();
    let upstream = PyPiServer::start(&packages);
    let server = Entrepot::start();
    server.create_python("up", Some(&upstream.index_url()), json!({}));
    let page = "/pypi/default/up/simple/tiny-lib/";
    let get = |accept: Option<&str>, path: &str| {
        let mut r = server.request(Method::GET, path);
        if let Some(a) = accept {
            r = r.header("Accept", a);
        }
        r.send().unwrap()
    };

    // JSON (pip's and uv's Accept), whatever form the upstream speaks.
    let r = get(Some("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"), page);
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), JSON);
    assert_eq!(header(&r, "vary"), "Accept");
    let body: Value = r.json().unwrap();
    // pypiserver gives no sizes: until the file is cached, the page is 1.0.
    assert_eq!(body["meta"]["api-version"], "1.0");
    assert_eq!(body["name"], "tiny-lib");
    assert_eq!(body["versions"], json!(["1.0"]));
    let file = &body["files"][0];
    let sha = sha256(&wheel);
    let sha = sha.trim_start_matches("sha256:");
    assert_eq!(file["hashes"]["sha256"], sha);
    let file_url = file["url"].as_str().unwrap().to_owned();
    assert_eq!(
        file_url,
        format!("/pypi/default/up/files/{sha}/tiny_lib-1.0-py3-none-any.whl")
    );

    // HTML, versioned and plain; q-values decide.
    let r = get(Some(HTML), page);
    assert_eq!(header(&r, "content-type"), HTML);
    let html = r.text().unwrap();
    assert!(
        html.contains(&format!("href=\"{file_url}#sha256={sha}\"")),
        "{html}"
    );
    assert!(html.contains("<meta name=\"pypi:repository-version\" content=\"1.0\">"));
    let r = get(
        Some("application/vnd.pypi.simple.v1+json;q=0.5, text/html"),
        page,
    );
    assert!(header(&r, "content-type").starts_with("text/html"));
    let r = get(None, page);
    assert!(header(&r, "content-type").starts_with("text/html"));
    let r = get(Some("application/xml"), page);
    assert_eq!(r.status(), 406);
    assert!(r
        .text()
        .unwrap()
        .contains("application/vnd.pypi.simple.v1+json"));

    // PEP 503 normalisation and trailing slashes.
    let r = get(None, "/pypi/default/up/simple/Tiny_Lib/");
    assert_eq!(r.status(), 301);
    assert_eq!(header(&r, "location"), page);
    let r = get(None, "/pypi/default/up/simple/tiny-lib");
    assert_eq!(r.status(), 301);
    assert_eq!(header(&r, "location"), page);
    let r = get(Some(JSON), "/pypi/default/up/simple/");
    let list: Value = r.json().unwrap();
    assert!(
        list["projects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "tiny-lib"),
        "{list}"
    );

    // Unknown project: a plain 404.
    let r = get(Some(JSON), "/pypi/default/up/simple/no-such-project/");
    assert_eq!(r.status(), 404);

    // HEAD before any GET has the right length; ranges work, cold and warm.
    let r = server.request(Method::HEAD, &file_url).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), wheel.len().to_string());
    let r = server
        .request(Method::GET, &file_url)
        .header("Range", "bytes=10-19")
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        header(&r, "content-range"),
        format!("bytes 10-19/{}", wheel.len())
    );
    assert_eq!(r.bytes().unwrap().as_ref(), &wheel[10..20]);
    let r = server.get(&file_url);
    assert_eq!(r.bytes().unwrap().as_ref(), &wheel[..]);
    assert_eq!(upstream.gets_of("/packages/"), 1, "{}", upstream.log_text());

    // pypiserver has no metadata files: once the wheel is cached, entrepot
    // offers the METADATA it extracted from it (PEP 658/714).
    let offered = eventually(std::time::Duration::from_secs(30), || {
        let body: Value = get(Some(JSON), page).json().unwrap();
        body["files"][0]["core-metadata"]["sha256"].is_string()
    });
    assert!(
        offered,
        "the extracted metadata is never offered:\n{}",
        server.log_text()
    );
    let body: Value = get(Some(JSON), page).json().unwrap();
    assert_eq!(body["meta"]["api-version"], "1.1");
    assert_eq!(body["files"][0]["size"], wheel.len());
    let r = server.get(&format!("{file_url}.metadata"));
    assert_eq!(r.status(), 200);
    let metadata = r.bytes().unwrap();
    assert_eq!(
        sha256(&metadata).trim_start_matches("sha256:"),
        body["files"][0]["core-metadata"]["sha256"]
            .as_str()
            .unwrap()
    );
    assert!(String::from_utf8_lossy(&metadata).contains("Name: tiny-lib"));
    let html = get(Some("text/html"), page).text().unwrap();
    assert!(html.contains("data-core-metadata=\"sha256="), "{html}");

    // A file not on any page is not fetched from anywhere.
    let r = server.get(&format!(
        "/pypi/default/up/files/{}/evil-1.0.tar.gz",
        "0".repeat(64)
    ));
    assert_eq!(r.status(), 404);
}

#[test]
fn every_cached_wheel_offers_its_extracted_metadata() {
    // Many wheels, each fetched once: the metadata extracted from each must be
    // offered on the page (a partly written scratch copy once made this fail
    // now and then, so one wheel is not enough to show it).
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    let versions: Vec<String> = (1..=24).map(|i| format!("1.{i}")).collect();
    for v in &versions {
        make_dist(&packages, "wheel", "many-wheels", v, &[]);
    }
    let upstream = PyPiServer::start(&packages);
    let server = Entrepot::start();
    server.create_python("up", Some(&upstream.index_url()), json!({}));
    let page = "/pypi/default/up/simple/many-wheels/";
    let files = |server: &Entrepot| -> Vec<Value> {
        let r = server
            .request(Method::GET, page)
            .header("Accept", JSON)
            .send()
            .unwrap();
        let body: Value = r.json().unwrap();
        body["files"].as_array().unwrap().clone()
    };
    let listed = files(&server);
    assert_eq!(listed.len(), versions.len());
    for f in &listed {
        let r = server.get(f["url"].as_str().unwrap());
        assert_eq!(r.status(), 200);
    }
    let all_offered = eventually(std::time::Duration::from_secs(30), || {
        files(&server)
            .iter()
            .all(|f| f["core-metadata"]["sha256"].is_string())
    });
    assert!(
        all_offered,
        "cached wheels without metadata: {:?}\n{}",
        files(&server)
            .iter()
            .filter(|f| !f["core-metadata"]["sha256"].is_string())
            .map(|f| f["filename"].clone())
            .collect::<Vec<_>>(),
        server.log_text()
    );
    for f in files(&server) {
        let r = server.get(&format!("{}.metadata", f["url"].as_str().unwrap()));
        assert_eq!(r.status(), 200);
        let metadata = r.bytes().unwrap();
        assert_eq!(
            sha256(&metadata).trim_start_matches("sha256:"),
            f["core-metadata"]["sha256"].as_str().unwrap()
        );
        assert!(String::from_utf8_lossy(&metadata).contains("Name: many-wheels"));
    }
}

#[test]
fn a_repository_recreated_under_the_same_name_serves_its_own_upstream() {
    // Served pages are kept in memory: one kept for a deleted repository must
    // not answer for a new repository of the same name with another upstream.
    let work = tempfile::tempdir().unwrap();
    let (first, second) = (work.path().join("first"), work.path().join("second"));
    make_dist(&first, "wheel", "moved-pkg", "1.0", &[]);
    make_dist(&second, "wheel", "moved-pkg", "2.0", &[]);
    let (first, second) = (PyPiServer::start(&first), PyPiServer::start(&second));
    let server = Entrepot::start();
    let filenames = |server: &Entrepot| -> Vec<String> {
        let r = server
            .request(Method::GET, "/pypi/default/up/simple/moved-pkg/")
            .header("Accept", JSON)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().unwrap();
        body["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["filename"].as_str().unwrap().to_owned())
            .collect()
    };
    server.create_python("up", Some(&first.index_url()), json!({}));
    assert_eq!(filenames(&server), ["moved_pkg-1.0-py3-none-any.whl"]);
    let r = server
        .request(Method::DELETE, "/v1/projects/default/repositories/up")
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    server.create_python("up", Some(&second.index_url()), json!({}));
    assert_eq!(filenames(&server), ["moved_pkg-2.0-py3-none-any.whl"]);
}

#[test]
fn a_corrupted_upstream_file_fails_the_install_and_is_not_cached() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    let wheel = make_dist(&packages, "wheel", "tiny-lib", "1.0", &[]);
    let upstream = PyPiServer::start(&packages);
    let server = Entrepot::start();
    server.create_python("up", Some(&upstream.index_url()), json!({}));
    let r = server
        .request(Method::GET, "/pypi/default/up/simple/tiny-lib/")
        .header("Accept", JSON)
        .send()
        .unwrap();
    let page: Value = r.json().unwrap();
    let good_sha = page["files"][0]["hashes"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();

    // The upstream now serves other bytes under the same name.
    let mut bytes = std::fs::read(&wheel).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&wheel, &bytes).unwrap();

    let target = work.path().join("t");
    let out = pip_install(&server.python_index("up"), &target, &["tiny-lib"]);
    assert!(
        !out.status.success(),
        "install of a corrupted file must fail: {}",
        text(&out)
    );
    assert!(!installed(&target, "tiny_lib"));
    let file_url = page["files"][0]["url"].as_str().unwrap();
    let r = server.get(file_url);
    let status = r.status().as_u16();
    let body = r.bytes().map(|b| b.to_vec()).unwrap_or_default();
    assert!(
        status == 502 || body != bytes,
        "corrupted bytes must never be served whole"
    );
    assert!(
        !blob_exists(&server, &good_sha),
        "nothing may be cached under {good_sha}"
    );
    assert!(
        server.log_text().contains("failed verification"),
        "{}",
        server.log_text()
    );

    // The upstream is repaired: the next install fetches the right bytes.
    bytes[last] ^= 0xff;
    std::fs::write(&wheel, &bytes).unwrap();
    let target = work.path().join("again");
    let out = pip_install(&server.python_index("up"), &target, &["tiny-lib"]);
    assert!(
        out.status.success(),
        "install once repaired: {}",
        text(&out)
    );
    assert!(installed(&target, "tiny_lib"));
    assert!(blob_exists(&server, &good_sha));
}

/// A fixture upstream speaking PEP 691 JSON with yanked files and metadata files.
#[test]
fn yanked_files_and_metadata_files_pass_through() {
    let work = tempfile::tempdir().unwrap();
    let wheel_path = make_dist(work.path(), "wheel", "fixture-pkg", "2.0", &["tiny-lib"]);
    let wheel = std::fs::read(&wheel_path).unwrap();
    let metadata =
        b"Metadata-Version: 2.1\nName: fixture-pkg\nVersion: 2.0\nRequires-Dist: tiny-lib\n\n"
            .to_vec();
    let (wsha, msha) = (sha256(&wheel), sha256(&metadata));
    let (wsha, msha) = (
        wsha.trim_start_matches("sha256:"),
        msha.trim_start_matches("sha256:"),
    );
    let old = b"not really an sdist".to_vec();
    let osha = sha256(&old);
    let osha = osha.trim_start_matches("sha256:");
    let page = json!({
        "meta": {"api-version": "1.1"},
        "name": "fixture-pkg",
        "files": [
            {"filename": "fixture_pkg-2.0-py3-none-any.whl", "url": "/files/fixture_pkg-2.0-py3-none-any.whl",
             "hashes": {"sha256": wsha}, "requires-python": ">=3.7,<4", "core-metadata": {"sha256": msha}, "size": wheel.len()},
            {"filename": "fixture-pkg-1.0.tar.gz", "url": "/files/fixture-pkg-1.0.tar.gz",
             "hashes": {"sha256": osha}, "yanked": "broken <build> & worse"},
        ],
    });
    let upstream = FixtureRegistry::start(HashMap::from([
        (
            "/simple/fixture-pkg/".to_owned(),
            Reply::ok(JSON, page.to_string().into_bytes()),
        ),
        (
            "/files/fixture_pkg-2.0-py3-none-any.whl".to_owned(),
            Reply::ok("application/octet-stream", wheel.clone()),
        ),
        (
            "/files/fixture_pkg-2.0-py3-none-any.whl.metadata".to_owned(),
            Reply::ok("application/octet-stream", metadata.clone()),
        ),
        (
            "/files/fixture-pkg-1.0.tar.gz".to_owned(),
            Reply::ok("application/octet-stream", old),
        ),
    ]));
    let server = Entrepot::start();
    server.create_python(
        "fx",
        Some(&format!("http://{}/simple/", upstream.addr)),
        json!({}),
    );

    let html = server
        .request(Method::GET, "/pypi/default/fx/simple/fixture-pkg/")
        .header("Accept", "text/html")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        html.contains("data-requires-python=\"&gt;=3.7,&lt;4\""),
        "{html}"
    );
    assert!(
        html.contains(&format!("data-core-metadata=\"sha256={msha}\"")),
        "{html}"
    );
    assert!(
        html.contains(&format!("data-dist-info-metadata=\"sha256={msha}\"")),
        "{html}"
    );
    assert!(
        html.contains("data-yanked=\"broken &lt;build&gt; &amp; worse\""),
        "{html}"
    );
    let body: Value = server
        .request(Method::GET, "/pypi/default/fx/simple/fixture-pkg/")
        .header("Accept", JSON)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["files"][1]["yanked"], "broken <build> & worse");
    assert_eq!(body["files"][0]["core-metadata"]["sha256"], msha);
    assert_eq!(body["files"][0]["size"], wheel.len());
    let url = body["files"][0]["url"].as_str().unwrap();
    let r = server.get(&format!("{url}.metadata"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().unwrap().as_ref(), &metadata[..]);
    assert_eq!(
        upstream.hits_of("GET /files/fixture_pkg-2.0-py3-none-any.whl.metadata"),
        1
    );
    let r = server.get(&format!("{url}.metadata"));
    assert_eq!(r.bytes().unwrap().as_ref(), &metadata[..]);
    assert_eq!(
        upstream.hits_of("GET /files/fixture_pkg-2.0-py3-none-any.whl.metadata"),
        1
    );
}

#[test]
fn concurrent_downloads_of_an_uncached_file_ask_the_upstream_once() {
    let content = random_bytes(1_500_000);
    let sha = sha256(&content);
    let sha = sha.trim_start_matches("sha256:").to_owned();
    let page = json!({
        "meta": {"api-version": "1.1"},
        "name": "big-pkg",
        "files": [{"filename": "big_pkg-1.0-py3-none-any.whl", "url": "/files/big_pkg-1.0-py3-none-any.whl", "hashes": {"sha256": sha}}],
    });
    let upstream = FixtureRegistry::start(HashMap::from([
        (
            "/simple/big-pkg/".to_owned(),
            Reply::ok(JSON, page.to_string().into_bytes()),
        ),
        (
            "/files/big_pkg-1.0-py3-none-any.whl".to_owned(),
            Reply::ok("application/octet-stream", content.clone())
                .slow(std::time::Duration::from_millis(20)),
        ),
    ]));
    let server = Entrepot::start();
    server.create_python(
        "fx",
        Some(&format!("http://{}/simple/", upstream.addr)),
        json!({}),
    );
    let body: Value = server
        .request(Method::GET, "/pypi/default/fx/simple/big-pkg/")
        .header("Accept", JSON)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let url = format!(
        "{}{}",
        server.base,
        body["files"][0]["url"].as_str().unwrap()
    );
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let url = url.clone();
            let token = server.admin_token.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let mut request = client.get(&url).bearer_auth(token);
                if i % 2 == 1 {
                    request = request.header("Range", "bytes=1000-1999");
                }
                let r = request.send().unwrap();
                (r.status().as_u16(), r.bytes().unwrap().to_vec())
            })
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        let (status, bytes) = client.join().unwrap();
        if i % 2 == 1 {
            assert_eq!(status, 206);
            assert_eq!(bytes, &content[1000..2000]);
        } else {
            assert_eq!(status, 200);
            assert_eq!(bytes, content);
        }
    }
    assert_eq!(
        upstream.hits_of("GET /files/big_pkg-1.0-py3-none-any.whl"),
        1
    );
}

#[test]
fn the_access_policy_blocks_python_upstreams_and_their_cached_content() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    fixtures(&packages);
    let upstream = PyPiServer::start(&packages);
    let server = Entrepot::start();
    server.create_python("up", Some(&upstream.index_url()), json!({}));
    server.create_python(
        "lenient",
        Some(&upstream.index_url()),
        json!({ "allowCachedFromBlocked": true }),
    );
    for repo in ["up", "lenient"] {
        let r = server.get(&format!("/pypi/default/{repo}/simple/tiny-lib/"));
        assert_eq!(r.status(), 200);
    }
    let r = server
        .request(Method::PATCH, "/v1/organization/accessPolicy")
        .json(&json!({ "removeAllowedHosts": [upstream.addr] }))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());

    // Blocked: neither the upstream nor what was cached from it.
    let r = server.get("/pypi/default/up/simple/tiny-lib/");
    assert_eq!(r.status(), 403);
    let message = r.text().unwrap();
    assert!(message.contains(&upstream.addr), "{message}");
    // Unless the repository allows serving what it already has.
    let r = server.get("/pypi/default/lenient/simple/tiny-lib/");
    assert_eq!(r.status(), 200);
    let r = server.get("/pypi/default/lenient/simple/tiny-app/");
    assert_eq!(r.status(), 403);
}

#[test]
fn remote_python_repositories_are_created_with_the_cli() {
    let server = Entrepot::start();
    let out = server.cli(&[
        "repositories",
        "create",
        "pypi-mirror",
        "--repository-format=python",
        "--mode=remote-repository",
        "--remote-python-repo=PYPI",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.cli(&[
        "repositories",
        "create",
        "plain",
        "--repository-format=python",
        "--mode=remote-repository",
        "--remote-python-repo=http://pypi.example.com/simple/",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("allow-insecure-upstream"));
    // The first start created the PyPI cache next to docker-hub.
    let r = server.get("/v1/projects/default/repositories/pypi");
    assert_eq!(r.status(), 200);
    let repo: Value = r.json().unwrap();
    assert_eq!(repo["remoteRepositoryConfig"]["upstream"], "PYPI");
}

#[test]
fn an_upstream_that_wants_credentials_gets_a_clear_error() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    fixtures(&packages);
    let upstream = PyPiServer::start_with(&packages, Some(("__token__", "pypi-token-one")));
    let server = Entrepot::start();
    server.create_python("up", Some(&upstream.index_url()), json!({}));
    let r = server.get("/pypi/default/up/simple/tiny-lib/");
    assert_eq!(r.status(), 502);
    let message = r.text().unwrap();
    assert!(message.contains("credentials"), "{message}");
    assert!(
        message.contains("--remote-password-secret-version"),
        "{message}"
    );
    let target = work.path().join("t");
    let out = pip_install(&server.python_index("up"), &target, &["tiny-lib"]);
    assert!(!out.status.success());

    // test-upstream tells the same story, and fails.
    let out = server.cli(&["repositories", "test-upstream", "up"]);
    assert!(!out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("reachable:     true"), "{report}");
    assert!(report.contains("authenticated: false"), "{report}");
}

#[test]
fn upstream_credentials_come_from_a_secret_and_rotate() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    fixtures(&packages);
    let mut upstream = PyPiServer::start_with(&packages, Some(("__token__", "pypi-token-one")));
    let server = Entrepot::start();
    server.create_python(
        "up",
        Some(&upstream.index_url()),
        json!({ "tagTtlSecs": 0 }),
    );
    let url = server.python_index("up");

    // Without credentials the upstream refuses: a clear 502.
    let r = server.get("/pypi/default/up/simple/tiny-lib/");
    assert_eq!(r.status(), 502);
    assert!(r.text().unwrap().contains("credentials"));

    let token = work.path().join("token.txt");
    std::fs::write(&token, "pypi-token-one").unwrap();
    let out = server.cli(&[
        "secrets",
        "create",
        "pypi-token",
        &format!("--data-file={}", token.display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let project: Value = server.get("/v1/projects/default").json().unwrap();
    let agent = project["serviceAgent"].as_str().unwrap().to_owned();

    // Pointing the repository at the secret before the agent may read it: the
    // error names the agent, the secret and the role it lacks.
    let out = server.cli(&[
        "repositories",
        "update",
        "up",
        "--remote-username=__token__",
        "--remote-password-secret-version=projects/default/secrets/pypi-token/versions/latest",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = server.get("/pypi/default/up/simple/tiny-lib/");
    assert_eq!(r.status(), 502);
    let message = r.text().unwrap();
    let agent_email = agent.trim_start_matches("serviceAccount:");
    assert!(message.contains(agent_email), "{message}");
    assert!(message.contains("pypi-token"), "{message}");
    assert!(message.contains("secretAccessor"), "{message}");

    let out = server.cli(&[
        "secrets",
        "add-iam-policy-binding",
        "pypi-token",
        &format!("--member={agent}"),
        "--role=roles/secretmanager.secretAccessor",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = pip_install(&url, &work.path().join("a"), &["tiny-app"]);
    assert!(
        out.status.success(),
        "install with the token: {}",
        text(&out)
    );

    // Rotation: the upstream takes a new token; a new secret version follows.
    upstream.rotate_password("__token__", "pypi-token-two");
    std::fs::write(&token, "pypi-token-two").unwrap();
    let out = server.cli(&[
        "secrets",
        "versions",
        "add",
        "pypi-token",
        &format!("--data-file={}", token.display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = pip_install(&url, &work.path().join("b"), &["sdist-only"]);
    assert!(
        out.status.success(),
        "install after rotation: {}\nserver log:\n{}",
        text(&out),
        server.log_text()
    );
}

#[test]
fn a_token_the_upstream_refuses_is_a_bad_gateway_that_uv_shows() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    fixtures(&packages);
    let upstream = PyPiServer::start_with(&packages, Some(("__token__", "pypi-token-one")));
    let server = Server::start();
    server.agent_secret(work.path(), "pypi-token", "pypi-token-revoked");
    server.create_python(
        "up",
        Some(&upstream.index_url()),
        json!({
            "username": "__token__",
            "passwordSecretVersion": "projects/default/secrets/pypi-token/versions/1",
        }),
    );

    // The same answer as for Docker: a 502 naming the upstream and what to fix.
    let r = server.get("/pypi/default/up/simple/tiny-lib/");
    assert_eq!(r.status(), 502);
    let message = r.text().unwrap();
    assert!(message.contains(&upstream.addr), "{message}");
    assert!(
        message.contains("--remote-password-secret-version"),
        "{message}"
    );
    // uv shows it (from the status line); pip only fails.
    let out = uv_install(
        &server.python_index("up"),
        &work.path().join("uv"),
        &["tiny-lib"],
    );
    assert!(!out.status.success());
    let shown = text(&out);
    assert!(
        shown.contains("502") && shown.contains(&upstream.addr),
        "{shown}"
    );
    let out = pip_install(
        &server.python_index("up"),
        &work.path().join("pip"),
        &["tiny-lib"],
    );
    assert!(!out.status.success());
}
