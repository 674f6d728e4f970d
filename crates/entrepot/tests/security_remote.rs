//! Remote repositories against hostile upstreams: a tenant's private blob is
//! never served by digest through another tenant's remote repository, upstream
//! credentials never follow a redirect target's challenge, upstream-sent values
//! never reach error messages, unverified bytes are never a complete answer,
//! and large or broken Python index pages get clear errors without stalling
//! the server. Every upstream here is a scripted server on loopback.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};
use support::*;

fn hex_sha256(bytes: &[u8]) -> String {
    sha256(bytes).trim_start_matches("sha256:").to_owned()
}

/// Status and body of a GET, the body `None` when the transfer broke off
/// (the server aborts a response whose bytes failed verification), the
/// status 0 when the connection closed before any answer.
fn get_outcome(server: &Entrepot, path: &str, range: Option<&str>) -> (u16, Option<Vec<u8>>) {
    let mut request = server.request(Method::GET, path);
    if let Some(r) = range {
        request = request.header("range", r);
    }
    let Ok(response) = request.send() else {
        return (0, None);
    };
    let status = response.status().as_u16();
    (status, response.bytes().ok().map(|b| b.to_vec()))
}

#[test]
fn a_remote_docker_repository_never_serves_another_projects_blob_by_digest() {
    let server = Entrepot::start();
    // Project default keeps a private image in a hosted repository.
    server.create_repository("private");
    let secret = server.push_small_image("default/private/app", "1");
    let layer = secret.blobs[0].clone();
    let digest = secret.layer_digest();

    // Project b's remote repository points at an upstream its admin controls:
    // it answers HEAD 200 for any blob, and serves other bytes (or nothing).
    server.create_project("b");
    let decoy = random_bytes(layer.len());
    let decoy_for_upstream = decoy.clone();
    let upstream = ScriptedUpstream::start("127.0.0.1", move |seen| match seen.path.as_str() {
        "/v2/" => Reply::ok("application/json", "{}"),
        p if p.starts_with("/v2/lure/blobs/") => {
            Reply::ok("application/octet-stream", decoy_for_upstream.clone())
        }
        p if p.starts_with("/v2/gone/blobs/") && seen.method == "HEAD" => {
            Reply::ok("application/octet-stream", vec![0u8; 1024])
        }
        _ => Reply::status(404),
    });
    server.create_remote_docker_in(
        "b",
        "mirror",
        &format!("http://{}", upstream.addr),
        json!({}),
    );

    // Other bytes from the upstream: refused (the transfer breaks off before
    // its last byte, or an error), never replaced by the stored ones.
    let path = format!("/v2/b/mirror/lure/blobs/{digest}");
    let (status, body) = get_outcome(&server, &path, None);
    assert!(
        !(status == 200 && body.as_deref() == Some(layer.as_slice())),
        "project b read project default's private layer through its remote repository"
    );
    assert!(
        status != 200 || body.is_none(),
        "a complete answer of unverified bytes"
    );
    // It asked its own upstream, and still refuses the second time (nothing
    // was linked to it).
    assert!(!upstream
        .requests_to(&format!("/v2/lure/blobs/{digest}"))
        .iter()
        .all(|s| s.method == "HEAD"));
    let (status, body) = get_outcome(&server, &path, None);
    assert!(status != 200 || body.is_none());

    // An upstream that answers HEAD 200 but has no such blob: unknown.
    let response = server.get(&format!("/v2/b/mirror/gone/blobs/{digest}"));
    assert_oci_error(response, 404, "BLOB_UNKNOWN");
    let response = server
        .request(Method::HEAD, &format!("/v2/b/mirror/gone/blobs/{digest}"))
        .send()
        .unwrap();
    assert_ne!(response.status(), 200);

    // Project default still reads its own layer.
    let own = server.get(&format!("/v2/default/private/app/blobs/{digest}"));
    assert_eq!(own.status(), 200);
    assert_eq!(own.bytes().unwrap().as_ref(), layer.as_slice());
}

#[test]
fn a_remote_python_repository_never_serves_another_projects_file_by_sha256() {
    let work = tempfile::tempdir().unwrap();
    let server = Entrepot::start();
    server.create_repository_from(
        "default",
        "private",
        json!({ "format": "python", "mode": "standard-repository" }),
    );
    let wheel = make_dist(work.path(), "wheel", "secret-pkg", "1.0", &[]);
    let filename = wheel.file_name().unwrap().to_string_lossy().into_owned();
    let bytes = std::fs::read(&wheel).unwrap();
    let hex = hex_sha256(&bytes);
    let out = twine_upload(
        &format!("{}/pypi/default/private/legacy/", server.base),
        "__token__",
        &server.admin_token,
        &[&wheel],
    );
    assert!(out.status.success(), "twine upload: {}", text(&out));

    // Project b's upstream lists that sha256 and has no such file.
    server.create_project("b");
    let (page_hex, page_name) = (hex.clone(), filename.clone());
    let upstream = ScriptedUpstream::start("127.0.0.1", move |seen| match seen.path.as_str() {
        "/simple/secret-pkg/" => Reply::ok(
            "text/html",
            format!("<a href=\"/files/{page_name}#sha256={page_hex}\">{page_name}</a>"),
        ),
        _ => Reply::status(404),
    });
    server.create_python_in(
        "b",
        "mirror",
        Some(&format!("http://{}/simple/", upstream.addr)),
        json!({}),
    );
    let page = server.get("/pypi/b/mirror/simple/secret-pkg/");
    assert_eq!(page.status(), 200);
    let page = page.text().unwrap();
    assert!(page.contains(&hex), "{page}");

    let file = format!("/pypi/b/mirror/files/{hex}/{filename}");
    for _ in 0..2 {
        let (status, body) = get_outcome(&server, &file, None);
        assert!(
            !(status == 200 && body.as_deref() == Some(bytes.as_slice())),
            "project b read project default's private file through its remote repository"
        );
        assert!(
            status != 200 || body.is_none(),
            "a complete answer of unverified bytes"
        );
    }
    assert!(
        !upstream
            .requests_to(&format!("/files/{filename}"))
            .is_empty(),
        "the upstream was never asked for the file"
    );
    // The page no longer tells the size of bytes only another tenant has.
    let json_page: Value = server
        .request(Method::GET, "/pypi/b/mirror/simple/secret-pkg/")
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(json_page["files"][0].get("size").is_none(), "{json_page}");

    // The owner still downloads its file.
    let own = server.get(&format!("/pypi/default/private/files/{hex}/{filename}"));
    assert_eq!(own.status(), 200);
    assert_eq!(own.bytes().unwrap().as_ref(), bytes.as_slice());
}

#[test]
fn credentials_never_follow_a_redirect_targets_challenge() {
    let work = tempfile::tempdir().unwrap();
    let server = Entrepot::start();
    let password = "upstream-pass-7f3a";
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("bob:{password}"))
    );

    // A listener that records whatever credentials reach it (the realm the
    // redirect target names).
    let realm = ScriptedUpstream::start("127.0.0.3", |_| {
        Reply::ok("application/json", r#"{"token":"stolen","expires_in":300}"#)
    });
    // The redirect target answers 401 with a Bearer challenge naming it.
    let realm_url = format!("http://{}/token", realm.addr);
    let cdn = ScriptedUpstream::start("127.0.0.2", move |_| {
        Reply::status(401).header(
            "www-authenticate",
            &format!("Bearer realm=\"{realm_url}\",service=\"cdn\""),
        )
    });
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = random_bytes(2048);
    let (config_digest, layer_digest) = (sha256(&config), sha256(&layer));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": LAYER_TAR, "digest": layer_digest, "size": layer.len()}],
    })
    .to_string();
    let echo_digest = sha256(b"echo");
    // The upstream speaks Basic and redirects the layer to the CDN; another
    // blob is redirected to a Location that echoes the Authorization it got.
    let cdn_addr = cdn.addr.clone();
    let (want, routes_config, routes_manifest) =
        (expected.clone(), config.clone(), manifest.clone());
    let (layer_path, config_path, echo_path) = (
        format!("/v2/app/blobs/{layer_digest}"),
        format!("/v2/app/blobs/{config_digest}"),
        format!("/v2/app/blobs/{echo_digest}"),
    );
    let (lp, cp, ep) = (layer_path.clone(), config_path.clone(), echo_path.clone());
    let upstream = ScriptedUpstream::start("127.0.0.1", move |seen| {
        if seen.authorization.as_deref() != Some(want.as_str()) {
            return Reply::status(401).header("www-authenticate", "Basic realm=\"upstream\"");
        }
        match seen.path.as_str() {
            "/v2/" => Reply::ok("application/json", "{}"),
            "/v2/app/manifests/1" => Reply::ok(OCI_MANIFEST, routes_manifest.clone()),
            p if p == cp => Reply::ok("application/octet-stream", routes_config.clone()),
            p if p == lp => Reply::status(307)
                .header("location", &format!("http://{cdn_addr}/cdn/{}", &lp[15..])),
            p if p == ep => Reply::status(307).header(
                "location",
                &format!(
                    "http://[{}]/",
                    seen.authorization.clone().unwrap_or_default()
                ),
            ),
            _ => Reply::status(404),
        }
    });
    for host in [&cdn.addr, &realm.addr] {
        server.allow_upstream(host);
    }
    let version = server.agent_secret(work.path(), "upstream-pass", password);
    server.create_remote_docker_in(
        "default",
        "up",
        &format!("http://{}", upstream.addr),
        json!({ "username": "bob", "passwordSecretVersion": version }),
    );

    let m = server.get("/v2/default/up/app/manifests/1");
    assert_eq!(m.status(), 200, "{}", m.text().unwrap());

    // The layer's redirect target asks for credentials: it gets none, and
    // neither does the realm it names.
    let blob = server.get(&format!("/v2/default/up/app/blobs/{layer_digest}"));
    assert_ne!(blob.status(), 200);
    let text = blob.text().unwrap();
    assert!(!text.contains(password), "{text}");
    assert!(
        cdn.seen().iter().all(|s| s.authorization.is_none()),
        "the redirect target got credentials: {:?}",
        cdn.seen()
    );
    assert!(
        realm.seen().iter().all(|s| s.authorization.is_none()),
        "the realm named by the redirect target got credentials: {:?}",
        realm.seen()
    );

    // Later requests still use the upstream's own scheme.
    let before = upstream.requests_to(&config_path).len();
    let c = server.get(&format!("/v2/default/up/app/blobs/{config_digest}"));
    assert_eq!(c.status(), 200);
    assert_eq!(c.bytes().unwrap().as_ref(), config.as_slice());
    let asked = upstream.requests_to(&config_path);
    assert!(asked.len() > before);
    assert!(
        asked
            .iter()
            .any(|s| s.authorization.as_deref() == Some(expected.as_str())),
        "{asked:?}"
    );
    assert!(
        asked
            .iter()
            .all(|s| s.authorization.is_none()
                || s.authorization.as_deref() == Some(expected.as_str())),
        "the upstream was sent another scheme: {asked:?}"
    );
    assert!(realm.seen().iter().all(|s| s.authorization.is_none()));

    // A Location echoing the Authorization header is not reflected to the client.
    let echoed = server.get(&format!("/v2/default/up/app/blobs/{echo_digest}"));
    assert_ne!(echoed.status(), 200);
    let text = echoed.text().unwrap();
    let encoded = expected.trim_start_matches("Basic ");
    assert!(
        !text.contains(encoded) && !text.contains(password),
        "the error reflects the credentials: {text}"
    );
    assert!(
        !server.log_text().contains(encoded),
        "the log holds the credentials"
    );
}

#[test]
fn unverified_bytes_are_never_a_complete_answer() {
    let server = Entrepot::start();
    let claimed = b"the real content".to_vec();
    let digest = sha256(&claimed);
    let other = random_bytes(4096);
    let other_digest = sha256(b"what the upstream should have sent");
    let other_for_upstream = other.clone();
    let upstream = ScriptedUpstream::start("127.0.0.1", move |seen| match seen.path.as_str() {
        "/v2/" => Reply::ok("application/json", "{}"),
        p if p.starts_with("/v2/empty/blobs/") => Reply::ok("application/octet-stream", Vec::new()),
        p if p.starts_with("/v2/wrong/blobs/") => {
            Reply::ok("application/octet-stream", other_for_upstream.clone())
        }
        _ => Reply::status(404),
    });
    server.create_remote_docker_in(
        "default",
        "up",
        &format!("http://{}", upstream.addr),
        json!({}),
    );

    // `200, Content-Length: 0` for content that is not empty.
    let (status, body) = get_outcome(
        &server,
        &format!("/v2/default/up/empty/blobs/{digest}"),
        None,
    );
    assert!(
        !(status == 200 && body.as_deref() == Some(&[][..])),
        "an empty unverified body was answered 200"
    );
    let head = server
        .request(
            Method::HEAD,
            &format!("/v2/default/up/empty/blobs/{digest}"),
        )
        .send()
        .unwrap();
    assert_ne!(head.status(), 200);

    // A range that ends before the last byte, on a cold fill of wrong bytes.
    for attempt in 0..3 {
        let (status, body) = get_outcome(
            &server,
            &format!("/v2/default/up/wrong/blobs/{other_digest}"),
            Some("bytes=0-9"),
        );
        assert!(
            !((status == 206 || status == 200) && body.is_some()),
            "attempt {attempt}: unverified bytes were answered {status} {body:?}"
        );
    }
}

/// An HTML project page of `files` wheels of `name`, each version distinct.
fn big_page(name: &str, files: usize) -> String {
    let mut html = String::with_capacity(files * 140);
    html.push_str("<!DOCTYPE html><html><body>\n");
    let module = name.replace('-', "_");
    for i in 0..files {
        html.push_str(&format!(
            "<a href=\"/files/{module}-{i}.0-py3-none-any.whl#sha256={i:064x}\">{module}-{i}.0-py3-none-any.whl</a><br/>\n"
        ));
    }
    html.push_str("</body></html>\n");
    html
}

#[test]
fn large_python_pages_are_served_without_stalling_others_and_oversized_ones_refused() {
    let server = Entrepot::builder()
        .env("ENTREPOT_PYTHON_MAX_PAGE_FILES", "60000")
        .start();
    let pages: HashMap<String, String> = HashMap::from([
        ("/simple/big/".to_owned(), big_page("big", 50_000)),
        ("/simple/huge/".to_owned(), big_page("huge", 60_001)),
        ("/simple/small/".to_owned(), big_page("small", 3)),
        (
            "/simple/evil/".to_owned(),
            format!(
                "<a href=\"file:///etc/passwd#sha256={:064x}\">evil-1.0.tar.gz</a>",
                1
            ),
        ),
    ]);
    let upstream = ScriptedUpstream::start("127.0.0.1", move |seen| match pages.get(&seen.path) {
        Some(page) => Reply::ok("text/html", page.clone()),
        None => Reply::status(404),
    });
    server.create_python_in(
        "default",
        "mirror",
        Some(&format!("http://{}/simple/", upstream.addr)),
        json!({}),
    );

    let big = std::thread::scope(|scope| {
        let big = scope.spawn(|| {
            server
                .request(Method::GET, "/pypi/default/mirror/simple/big/")
                .header("accept", "application/vnd.pypi.simple.v1+json")
                .send()
                .unwrap()
        });
        // Once the upstream was asked for the large page, other requests are
        // answered while it is read (checked by their answers, not by a clock).
        assert!(eventually(Duration::from_secs(60), || !upstream
            .requests_to("/simple/big/")
            .is_empty()));
        let small = server.get("/pypi/default/mirror/simple/small/");
        assert_eq!(small.status(), 200);
        assert_eq!(small.text().unwrap().matches(">small-").count(), 3);
        assert_eq!(server.get("/healthz").status(), 200);
        big.join().unwrap()
    });
    assert_eq!(big.status(), 200);
    let page: Value = big.json().unwrap();
    assert_eq!(page["files"].as_array().unwrap().len(), 50_000);
    assert_eq!(page["versions"].as_array().unwrap().len(), 50_000);
    assert_eq!(page["versions"][49_999], "49999.0");

    // Over the cap: a clear error naming the limit.
    let huge = server.get("/pypi/default/mirror/simple/huge/");
    assert_eq!(huge.status(), 502);
    let message = huge.text().unwrap();
    assert!(
        message.contains("60000") && message.contains("python_max_page_files"),
        "{message}"
    );

    // A non-http(s) link is a broken page, not a host to allow.
    let evil = server.get("/pypi/default/mirror/simple/evil/");
    assert_eq!(evil.status(), 200);
    let file = server.get(&format!(
        "/pypi/default/mirror/files/{:064x}/evil-1.0.tar.gz",
        1
    ));
    assert_eq!(file.status(), 502);
    let message = file.text().unwrap();
    assert!(message.contains("non-http(s)"), "{message}");
    assert!(!message.contains("access-policy"), "{message}");
    assert!(!message.contains("/etc/passwd"), "{message}");
}

#[test]
fn the_project_list_is_parsed_once_per_upstream_fetch() {
    let server = Entrepot::start();
    let mut list = String::from("<html><body>\n");
    for i in 0..20_000 {
        list.push_str(&format!("<a href=\"/simple/p{i}/\">P_{i}</a>\n"));
    }
    let upstream = ScriptedUpstream::start("127.0.0.1", move |seen| match seen.path.as_str() {
        "/simple/" => Reply::ok("text/html", list.clone()),
        _ => Reply::status(404),
    });
    server.create_python_in(
        "default",
        "mirror",
        Some(&format!("http://{}/simple/", upstream.addr)),
        json!({}),
    );
    for _ in 0..3 {
        let r = server
            .request(Method::GET, "/pypi/default/mirror/simple/")
            .header("accept", "application/vnd.pypi.simple.v1+json")
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().unwrap();
        let projects = body["projects"].as_array().unwrap();
        assert_eq!(projects.len(), 20_000);
        assert_eq!(projects[19_999]["name"], "p-19999");
    }
    assert_eq!(upstream.requests_to("/simple/").len(), 1);
    let metrics = server.get("/metrics").text().unwrap();
    let parses = metrics
        .lines()
        .find_map(|l| l.strip_prefix("entrepot_python_index_parses_total "))
        .unwrap_or_else(|| panic!("no parse counter in:\n{metrics}"));
    assert_eq!(parses, "1", "the list was parsed more than once");
}

/// A wheel whose `METADATA` is `metadata`, written with Python's zipfile.
fn wheel_with_metadata(dir: &Path, filename: &str, metadata_len: usize) -> Vec<u8> {
    let path = dir.join("wheel.zip");
    let script = format!(
        "import zipfile\nz = zipfile.ZipFile({:?}, 'w', zipfile.ZIP_DEFLATED)\nz.writestr('big_meta-1.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: big-meta\\nVersion: 1.0\\n\\n' + 'x' * {metadata_len})\nz.writestr('big_meta/__init__.py', '')\nz.close()\n",
        path.display().to_string()
    );
    run_python(&script);
    let _ = filename;
    std::fs::read(path).unwrap()
}

#[test]
fn wheels_with_bad_tags_or_oversized_metadata_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let server = Entrepot::start();
    server.create_repository_from(
        "default",
        "hosted",
        json!({ "format": "python", "mode": "standard-repository" }),
    );
    let fields = [
        (":action", "file_upload"),
        ("name", "big-meta"),
        ("version", "1.0"),
    ];
    let small = wheel_with_metadata(work.path(), "", 10);
    for bad in [
        "big_meta-1.0-py3-none-<script>.whl",
        "big_meta-1.0-py3-none-any%20x.whl",
        "big_meta-1.0-x1-py3-none-any.whl",
    ] {
        let r = upload_form(&server, "hosted", &fields, bad, &small);
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.text().unwrap().contains("tag"), "{bad}");
    }

    let big = wheel_with_metadata(work.path(), "", 17 * 1024 * 1024);
    let r = upload_form(
        &server,
        "hosted",
        &fields,
        "big_meta-1.0-py3-none-any.whl",
        &big,
    );
    assert_eq!(r.status(), 400);
    let message = r.text().unwrap();
    assert!(message.contains("larger than 16777216 bytes"), "{message}");
    assert_eq!(
        server.get("/pypi/default/hosted/simple/big-meta/").status(),
        404
    );

    // A wheel that follows the spec is still accepted.
    let r = upload_form(
        &server,
        "hosted",
        &fields,
        "big_meta-1.0-py3-none-any.whl",
        &small,
    );
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
}

/// `skopeo inspect` of an image through the server, which must fail; its
/// error output.
fn skopeo_inspect_error(server: &Server, image: &str) -> String {
    require_tool("skopeo", "skopeo");
    let token = server.admin_token.clone();
    let output = std::process::Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--tls-verify=false"])
        .arg(format!("--creds=admin:{}", token.trim()))
        .arg(server.docker_ref(image))
        .output()
        .unwrap();
    assert!(!output.status.success(), "skopeo inspect of {image} worked");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `pip install` that retries as pip does by default (the shared helper
/// turns retries off), which must fail.
fn pip_install_retrying(index_url: &str, target: &Path, package: &str) {
    let output = std::process::Command::new(tool("pip"))
        .args(["install", "--no-cache-dir", "--disable-pip-version-check"])
        .args(["--no-input", "--retries", "2", "--target"])
        .arg(target)
        .args(["--index-url", index_url, package])
        .env_remove("PIP_INDEX_URL")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .env("PIP_CONFIG_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(!output.status.success(), "pip installed {package}");
}

#[test]
fn an_upstream_rate_limit_reaches_docker_and_python_clients_with_its_retry_after() {
    let work = tempfile::tempdir().unwrap();
    let file = b"a file the upstream rate-limits".to_vec();
    let hex = hex_sha256(&file);
    let page =
        format!("<a href=\"/packages/limited-1.0.tar.gz#sha256={hex}\">limited-1.0.tar.gz</a>");
    let upstream = ScriptedUpstream::start("127.0.0.1", move |seen| match seen.path.as_str() {
        "/v2/" => Reply::ok("application/json", "{}"),
        "/simple/listed/" => Reply::ok("text/html", page.clone()),
        _ => Reply::status(429).header("retry-after", "1"),
    });
    let server = Server::start();
    server.create_remote_docker_in(
        "default",
        "hub",
        &format!("http://{}", upstream.addr),
        json!({}),
    );
    server.create_python_in(
        "default",
        "index",
        Some(&format!("http://{}/simple/", upstream.addr)),
        json!({}),
    );

    // Manifests, blobs, index pages and files: the upstream's 429 and its
    // Retry-After, and a message naming the upstream.
    let blob = format!("/v2/default/hub/app/blobs/{}", sha256(b"some layer"));
    for path in ["/v2/default/hub/app/manifests/1", blob.as_str()] {
        let response = server.get(path);
        assert_eq!(header(&response, "retry-after"), "1", "{path}");
        let body = assert_oci_error(response, 429, "TOOMANYREQUESTS");
        assert!(body.to_string().contains(&upstream.addr), "{body}");
    }
    assert_eq!(
        server.get("/pypi/default/index/simple/listed/").status(),
        200
    );
    let file_path = format!("/pypi/default/index/files/{hex}/limited-1.0.tar.gz");
    for path in ["/pypi/default/index/simple/limited/", file_path.as_str()] {
        let response = server.get(path);
        assert_eq!(response.status(), 429, "{path}");
        assert_eq!(header(&response, "retry-after"), "1", "{path}");
        let message = response.text().unwrap();
        assert!(message.contains(&upstream.addr), "{message}");
    }

    // skopeo and pip wait as they are told and ask again before giving up
    // (pip retries a 429 only when it carries a Retry-After).
    let error = skopeo_inspect_error(&server, "default/hub/app:2");
    assert!(error.contains("toomanyrequests"), "{error}");
    assert!(
        upstream.requests_to("/v2/app/manifests/2").len() > 1,
        "skopeo did not retry: {error}"
    );
    let index = format!(
        "http://__token__:{}@{}/pypi/default/index/simple/",
        server.admin_token.trim(),
        server.addr
    );
    pip_install_retrying(&index, &work.path().join("t"), "limited-two");
    assert!(
        upstream.requests_to("/simple/limited-two/").len() > 1,
        "pip did not retry after the Retry-After"
    );
}

#[test]
fn files_an_index_names_without_a_sha256_are_left_out_not_served_unverified() {
    let (hashed, sha512_only, bare) = (b"hashed".to_vec(), b"sha512".to_vec(), b"bare".to_vec());
    let hex = hex_sha256(&hashed);
    let hex512 = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha512::digest(&sha512_only))
    };
    let page = format!(
        "<a href=\"/packages/mixed-1.0.tar.gz#sha256={hex}\">mixed-1.0.tar.gz</a>\n\
         <a href=\"/packages/mixed-2.0.tar.gz#sha512={hex512}\">mixed-2.0.tar.gz</a>\n\
         <a href=\"/packages/mixed-3.0.tar.gz\">mixed-3.0.tar.gz</a>\n"
    );
    let files: HashMap<String, Vec<u8>> = [
        ("/packages/mixed-1.0.tar.gz", hashed.clone()),
        ("/packages/mixed-2.0.tar.gz", sha512_only),
        ("/packages/mixed-3.0.tar.gz", bare),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let upstream = ScriptedUpstream::start("127.0.0.1", move |seen| {
        if seen.path == "/simple/mixed/" {
            return Reply::ok("text/html", page.clone());
        }
        match files.get(&seen.path) {
            Some(body) => Reply::ok("application/octet-stream", body.clone()),
            None => Reply::status(404),
        }
    });
    let server = Server::start();
    server.create_python_in(
        "default",
        "index",
        Some(&format!("http://{}/simple/", upstream.addr)),
        json!({}),
    );

    let r = server
        .request(Method::GET, "/pypi/default/index/simple/mixed/")
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().unwrap();
    let names: Vec<&str> = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mixed-1.0.tar.gz"]);
    let file = server.get(&format!("/pypi/default/index/files/{hex}/mixed-1.0.tar.gz"));
    assert_eq!(file.status(), 200);
    assert_eq!(file.bytes().unwrap().as_ref(), hashed.as_slice());
    // The others cannot be asked for, and the upstream is never asked.
    let r = server.get(&format!(
        "/pypi/default/index/files/{}/mixed-2.0.tar.gz",
        &hex512[..64]
    ));
    assert_eq!(r.status(), 404);
    assert!(upstream
        .requests_to("/packages/mixed-2.0.tar.gz")
        .is_empty());
    assert!(upstream
        .requests_to("/packages/mixed-3.0.tar.gz")
        .is_empty());
}
