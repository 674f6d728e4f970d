//! Python index fidelity through a remote repository: what a PEP 691 JSON
//! upstream says of each file (PEP 700 upload time and size, requires-python,
//! PEP 592 yanked, PEP 658/714 metadata) reaches clients unchanged in both
//! the JSON and the HTML entrepot serves; pages and files carry entity tags
//! that pip's and uv's HTTP caches revalidate with; cached sdists offer their
//! PKG-INFO as a metadata file; the index TTL is its own setting. Real
//! clients (pip, uv), the real binary, pypiserver and a fixture JSON index,
//! all on loopback.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

const JSON: &str = "application/vnd.pypi.simple.v1+json";

fn hex(bytes: &[u8]) -> String {
    sha256(bytes).trim_start_matches("sha256:").to_owned()
}

/// A PEP 691 index on loopback that negotiates like PyPI: JSON to a client
/// that asks for it, PEP 503 HTML (which cannot carry upload times or sizes)
/// to any other. It records each request's `Accept`.
struct JsonIndex {
    addr: String,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl JsonIndex {
    /// Serve `project`'s page (`json`, and `html` for clients that do not
    /// ask for JSON) and `files` (path -> bytes).
    fn start(project: &str, json: Value, html: String, files: HashMap<String, Vec<u8>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let page_path = format!("/simple/{project}/");
        let (log, json) = (seen.clone(), json.to_string());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, json, html, files, page_path) = (
                    log.clone(),
                    json.clone(),
                    html.clone(),
                    files.clone(),
                    page_path.clone(),
                );
                std::thread::spawn(move || {
                    let _ = answer(stream, &log, &page_path, &json, &html, &files);
                });
            }
        });
        JsonIndex { addr, seen }
    }

    fn index_url(&self) -> String {
        format!("http://{}/simple/", self.addr)
    }

    /// The `Accept` of each GET of `path`.
    fn accepts_of(&self, path: &str) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, a)| a.clone())
            .collect()
    }
}

/// Answer one connection's requests (keep-alive), each from the fixture.
fn answer(
    stream: TcpStream,
    log: &Mutex<Vec<(String, String)>>,
    page_path: &str,
    json: &str,
    html: &str,
    files: &HashMap<String, Vec<u8>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let mut accept = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("accept") {
                    accept = v.trim().to_owned();
                } else if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        log.lock().unwrap().push((path.clone(), accept.clone()));
        let (status, content_type, body): (&str, &str, Vec<u8>) = if path == page_path {
            if accept.contains(JSON) {
                ("200 OK", JSON, json.as_bytes().to_vec())
            } else {
                ("200 OK", "text/html", html.as_bytes().to_vec())
            }
        } else if let Some(bytes) = files.get(&path) {
            ("200 OK", "application/octet-stream", bytes.clone())
        } else {
            ("404 Not Found", "text/plain", b"not found".to_vec())
        };
        write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )?;
        stream.write_all(&body)?;
        stream.flush()?;
    }
}

/// The `METADATA` inside a wheel, read with the environment's Python.
fn wheel_metadata(wheel: &Path) -> Vec<u8> {
    let script = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nname = [n for n in z.namelist() if n.endswith('.dist-info/METADATA')][0]\nsys.stdout.buffer.write(z.read(name))\n";
    let out = Command::new(tool("python"))
        .args(["-c", script])
        .arg(wheel)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn page(server: &Entrepot, repo: &str, project: &str, accept: &str) -> reqwest::blocking::Response {
    server
        .request(
            Method::GET,
            &format!("/pypi/default/{repo}/simple/{project}/"),
        )
        .header("Accept", accept)
        .send()
        .unwrap()
}

/// Every field of the JSON index, checked in the JSON entrepot serves.
fn assert_json_fields(body: &Value, wheel: &(String, usize, String), sdist_sha: &str) {
    let (wsha, wsize, msha) = wheel;
    assert_eq!(body["meta"]["api-version"], "1.1", "{body}");
    assert_eq!(body["name"], "fx-pkg");
    assert_eq!(body["versions"], json!(["1.0", "2.0"]), "{body}");
    let files = body["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{body}");
    let sdist = &files[0];
    assert_eq!(sdist["filename"], "fx-pkg-1.0.tar.gz");
    assert_eq!(sdist["hashes"]["sha256"], sdist_sha);
    assert_eq!(sdist["yanked"], "broken <build> & worse");
    assert_eq!(sdist["upload-time"], "2025-06-01T00:00:00Z");
    assert_eq!(sdist["size"], 19);
    let w = &files[1];
    assert_eq!(w["filename"], "fx_pkg-2.0-py3-none-any.whl");
    assert_eq!(w["hashes"]["sha256"], wsha.as_str());
    assert_eq!(w["requires-python"], ">=3.8");
    assert_eq!(w["upload-time"], "2026-01-02T03:04:05.123456Z");
    assert_eq!(w["size"], *wsize);
    assert_eq!(w["core-metadata"]["sha256"], msha.as_str());
    assert_eq!(w["dist-info-metadata"]["sha256"], msha.as_str());
    assert!(w.get("yanked").is_none(), "{body}");
}

/// The fixture JSON index of `fx-pkg` (an sdist, yanked with a reason, and
/// a wheel with a metadata file, upload times and sizes), what
/// [`assert_json_fields`] expects of it, its JSON page, and the directory
/// the wheel was built in.
struct FxIndex {
    upstream: JsonIndex,
    wheel: (String, usize, String),
    sdist_sha: String,
    json_page: Value,
    work: tempfile::TempDir,
}

fn fx_index() -> FxIndex {
    let work = tempfile::tempdir().unwrap();
    let wheel_path = make_dist(work.path(), "wheel", "fx-pkg", "2.0", &[]);
    let wheel = std::fs::read(&wheel_path).unwrap();
    let metadata = wheel_metadata(&wheel_path);
    let sdist = b"not really an sdist".to_vec();
    let (wsha, msha, ssha) = (hex(&wheel), hex(&metadata), hex(&sdist));
    let json_page = json!({
        "meta": {"api-version": "1.1"},
        "name": "fx-pkg",
        "versions": ["1.0", "2.0"],
        "files": [
            {"filename": "fx-pkg-1.0.tar.gz", "url": "/files/fx-pkg-1.0.tar.gz",
             "hashes": {"sha256": ssha}, "yanked": "broken <build> & worse",
             "size": sdist.len(), "upload-time": "2025-06-01T00:00:00Z"},
            {"filename": "fx_pkg-2.0-py3-none-any.whl", "url": "/files/fx_pkg-2.0-py3-none-any.whl",
             "hashes": {"sha256": wsha}, "requires-python": ">=3.8",
             "core-metadata": {"sha256": msha}, "size": wheel.len(),
             "upload-time": "2026-01-02T03:04:05.123456Z"},
        ],
    });
    // What an HTML-only client would get: no upload times, no sizes.
    let html_page = format!(
        "<html><body><a href=\"/files/fx-pkg-1.0.tar.gz#sha256={ssha}\" data-yanked=\"\">fx-pkg-1.0.tar.gz</a>\n<a href=\"/files/fx_pkg-2.0-py3-none-any.whl#sha256={wsha}\">fx_pkg-2.0-py3-none-any.whl</a></body></html>"
    );
    let upstream = JsonIndex::start(
        "fx-pkg",
        json_page.clone(),
        html_page,
        HashMap::from([
            ("/files/fx-pkg-1.0.tar.gz".to_owned(), sdist.clone()),
            (
                "/files/fx_pkg-2.0-py3-none-any.whl".to_owned(),
                wheel.clone(),
            ),
            (
                "/files/fx_pkg-2.0-py3-none-any.whl.metadata".to_owned(),
                metadata.clone(),
            ),
        ]),
    );
    FxIndex {
        upstream,
        wheel: (wsha, wheel.len(), msha),
        sdist_sha: ssha,
        json_page,
        work,
    }
}

#[test]
fn every_field_of_a_json_upstream_survives_the_cache_in_json_and_html() {
    let FxIndex {
        upstream,
        wheel: expected,
        sdist_sha: ssha,
        work,
        ..
    } = fx_index();
    let msha = expected.2.clone();
    let server = Entrepot::start();
    // Pages stay fresh for an hour: later requests are answered from the
    // one cached record, not from the upstream.
    server.create_python(
        "fx",
        Some(&upstream.index_url()),
        json!({ "pythonIndexTtlSecs": 3600 }),
    );

    let r = page(&server, "fx", "fx-pkg", JSON);
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), JSON);
    let body: Value = r.json().unwrap();
    assert_json_fields(&body, &expected, &ssha);
    // entrepot asked for JSON first, HTML only as a fallback.
    let accepts = upstream.accepts_of("/simple/fx-pkg/");
    assert_eq!(accepts.len(), 1, "{accepts:?}");
    assert!(
        accepts[0].starts_with(JSON),
        "the upstream was asked with Accept: {}",
        accepts[0]
    );
    assert!(accepts[0].contains("text/html"), "{}", accepts[0]);

    // The HTML is written from the same record: same files, hashes,
    // requires-python, yanked reason and metadata hash.
    let html = page(&server, "fx", "fx-pkg", "text/html").text().unwrap();
    for f in body["files"].as_array().unwrap() {
        let href = format!(
            "href=\"{}#sha256={}\"",
            f["url"].as_str().unwrap(),
            f["hashes"]["sha256"].as_str().unwrap()
        );
        assert!(html.contains(&href), "{href} missing from {html}");
    }
    assert!(html.contains("data-requires-python=\"&gt;=3.8\""), "{html}");
    assert!(
        html.contains("data-yanked=\"broken &lt;build&gt; &amp; worse\""),
        "{html}"
    );
    assert!(
        html.contains(&format!("data-core-metadata=\"sha256={msha}\"")),
        "{html}"
    );
    assert!(html.contains("content=\"1.1\""), "{html}");

    // pip and uv install through the cache: the yanked sdist is passed over,
    // the wheel's metadata file is read (PEP 658) and matches the wheel.
    let out = pip_install(
        &server.python_index("fx"),
        &work.path().join("pip"),
        &["fx-pkg"],
    );
    assert!(out.status.success(), "pip: {}", text(&out));
    assert!(installed(&work.path().join("pip"), "fx_pkg"));
    let out = uv_install(
        &server.python_index("fx"),
        &work.path().join("uv"),
        &["fx-pkg"],
    );
    assert!(out.status.success(), "uv: {}", text(&out));
    assert!(installed(&work.path().join("uv"), "fx_pkg"));
    let r = server.get(&format!(
        "{}.metadata",
        body["files"][1]["url"].as_str().unwrap()
    ));
    assert_eq!(r.status(), 200);
    assert_eq!(hex(&r.bytes().unwrap()), msha);

    // After a restart the page is read back from the stored record: every
    // field is still there, each form is byte for byte the same (the same
    // entity tag, so clients' caches stay valid), and the upstream was asked
    // for it only once.
    let tags =
        [JSON, "text/html"].map(|accept| header(&page(&server, "fx", "fx-pkg", accept), "etag"));
    let server = server.restart();
    let r = page(&server, "fx", "fx-pkg", JSON);
    assert_eq!(header(&r, "etag"), tags[0]);
    let body: Value = r.json().unwrap();
    assert_json_fields(&body, &expected, &ssha);
    assert_eq!(
        header(&page(&server, "fx", "fx-pkg", "text/html"), "etag"),
        tags[1]
    );
    assert_eq!(upstream.accepts_of("/simple/fx-pkg/").len(), 1);
}

#[test]
fn pages_and_files_revalidate_with_their_entity_tags() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    make_dist(&packages, "wheel", "tiny-lib", "1.0", &[]);
    make_dist(&packages, "wheel", "tiny-app", "1.0", &["tiny-lib>=1.0"]);
    let upstream = PyPiServer::start(&packages);
    let server = Entrepot::start();
    server.create_python("up", Some(&upstream.index_url()), json!({}));

    // Real installers through the cache first.
    let out = pip_install(
        &server.python_index("up"),
        &work.path().join("pip"),
        &["tiny-app"],
    );
    assert!(out.status.success(), "pip: {}", text(&out));
    let out = uv_install(
        &server.python_index("up"),
        &work.path().join("uv"),
        &["tiny-app"],
    );
    assert!(out.status.success(), "uv: {}", text(&out));

    let r = page(&server, "up", "tiny-lib", JSON);
    assert_eq!(r.status(), 200);
    let etag = header(&r, "etag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_eq!(header(&r, "vary"), "Accept");
    assert!(header(&r, "cache-control").contains("max-age="));
    let body = r.bytes().unwrap();
    assert_eq!(etag, format!("\"{}\"", hex(&body)));

    let conditional = |accept: &str, tag: &str| {
        server
            .request(Method::GET, "/pypi/default/up/simple/tiny-lib/")
            .header("Accept", accept)
            .header("If-None-Match", tag)
            .send()
            .unwrap()
    };
    let r = conditional(JSON, &etag);
    assert_eq!(r.status(), 304);
    assert_eq!(header(&r, "etag"), etag);
    assert_eq!(header(&r, "vary"), "Accept");
    assert!(r.bytes().unwrap().is_empty());
    // A weak form of the tag, and a list holding it, match too.
    assert_eq!(conditional(JSON, &format!("\"x\", W/{etag}")).status(), 304);
    // The HTML form is another representation, with another tag.
    let r = conditional("text/html", &etag);
    assert_eq!(r.status(), 200);
    let html_tag = header(&r, "etag");
    assert_ne!(html_tag, etag);
    assert!(r.text().unwrap().contains("tiny_lib-1.0"));
    assert_eq!(conditional("text/html", &html_tag).status(), 304);
    // A tag of some other page gets the page.
    assert_eq!(conditional(JSON, "\"0000\"").status(), 200);
    // The project list is tagged as well.
    let r = server
        .request(Method::GET, "/pypi/default/up/simple/")
        .header("Accept", JSON)
        .send()
        .unwrap();
    let list_tag = header(&r, "etag");
    let r = server
        .request(Method::GET, "/pypi/default/up/simple/")
        .header("Accept", JSON)
        .header("If-None-Match", &list_tag)
        .send()
        .unwrap();
    assert_eq!(r.status(), 304);

    // Files are named by their sha256: tagged by it, cacheable for good.
    let page: Value = serde_json::from_slice(&body).unwrap();
    let url = page["files"][0]["url"].as_str().unwrap().to_owned();
    let sha = page["files"][0]["hashes"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = server.get(&url);
    assert_eq!(r.status(), 200);
    let file_tag = header(&r, "etag");
    assert_eq!(file_tag, format!("\"sha256:{sha}\""));
    assert!(header(&r, "cache-control").contains("immutable"));
    let r = server
        .request(Method::GET, &url)
        .header("If-None-Match", &file_tag)
        .send()
        .unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.bytes().unwrap().is_empty());
    // curl, as a script would revalidate.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg("-H")
        .arg(format!("If-None-Match: {file_tag}"))
        .arg("-H")
        .arg(format!("Authorization: Bearer {}", server.admin_token))
        .arg(format!("http://{}{url}", server.addr))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "304");
    // The whole file was fetched from the upstream once.
    assert_eq!(
        upstream.gets_of("/packages/tiny_lib"),
        1,
        "{}",
        upstream.log_text()
    );
}

#[test]
fn a_cached_sdist_offers_its_pkg_info_as_a_metadata_file() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    let sdist_path = make_dist(&packages, "sdist", "sdist-only", "0.5", &["tiny-lib"]);
    make_dist(&packages, "wheel", "tiny-lib", "1.0", &[]);
    let sdist = std::fs::read(&sdist_path).unwrap();
    let upstream = PyPiServer::start(&packages);
    let server = Entrepot::start();
    server.create_python("up", Some(&upstream.index_url()), json!({}));

    // pip builds the sdist from the cache, which caches it.
    let out = pip_install(
        &server.python_index("up"),
        &work.path().join("pip"),
        &["sdist-only"],
    );
    assert!(out.status.success(), "pip: {}", text(&out));
    assert!(installed(&work.path().join("pip"), "sdist_only"));

    // pypiserver has no metadata files: entrepot offers the PKG-INFO it
    // extracted from the cached sdist.
    let offered = eventually(Duration::from_secs(30), || {
        let body: Value = page(&server, "up", "sdist-only", JSON).json().unwrap();
        body["files"][0]["core-metadata"]["sha256"].is_string()
    });
    assert!(offered, "no metadata offered:\n{}", server.log_text());
    let body: Value = page(&server, "up", "sdist-only", JSON).json().unwrap();
    let file = &body["files"][0];
    let filename = sdist_path.file_name().unwrap().to_string_lossy();
    assert_eq!(file["filename"], filename.as_ref());
    assert_eq!(file["hashes"]["sha256"], hex(&sdist));
    assert_eq!(file["size"], sdist.len());
    let advertised = file["core-metadata"]["sha256"].as_str().unwrap().to_owned();
    assert_eq!(file["dist-info-metadata"]["sha256"], advertised.as_str());

    let r = server.get(&format!("{}.metadata", file["url"].as_str().unwrap()));
    assert_eq!(r.status(), 200);
    let tag = header(&r, "etag");
    let metadata = r.bytes().unwrap();
    assert_eq!(hex(&metadata), advertised);
    let text = String::from_utf8_lossy(&metadata);
    assert!(text.contains("Name: sdist-only"), "{text}");
    assert!(text.contains("Version: 0.5"), "{text}");
    // The metadata file's tag is not its distribution's.
    assert_ne!(tag, format!("\"sha256:{}\"", hex(&sdist)));
    let html = page(&server, "up", "sdist-only", "text/html")
        .text()
        .unwrap();
    assert!(
        html.contains(&format!("data-core-metadata=\"sha256={advertised}\"")),
        "{html}"
    );
    // Only the sdist itself came from the upstream, once.
    assert_eq!(
        upstream.gets_of("/packages/sdist"),
        1,
        "{}",
        upstream.log_text()
    );
}

#[test]
fn the_python_index_ttl_is_a_setting_of_its_own() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    make_dist(&packages, "wheel", "tiny-lib", "1.0", &[]);
    let upstream = PyPiServer::start(&packages);
    let server = Entrepot::start();
    let host = upstream.addr.clone();
    server.allow_upstream(&host);

    // Tags are never trusted (TTL 0), index pages for an hour.
    let out = server.cli(&[
        "repositories",
        "create",
        "cached",
        "--repository-format=python",
        "--mode=remote-repository",
        &format!("--remote-python-repo={}", upstream.index_url()),
        "--remote-tag-ttl=0s",
        "--remote-python-index-ttl=1h",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let repo: Value = server
        .get("/v1/projects/default/repositories/cached")
        .json()
        .unwrap();
    assert_eq!(repo["remoteRepositoryConfig"]["pythonIndexTtlSecs"], 3600);
    assert_eq!(repo["remoteRepositoryConfig"]["tagTtlSecs"], 0);
    for _ in 0..3 {
        assert_eq!(page(&server, "cached", "tiny-lib", JSON).status(), 200);
    }
    // pypiserver's access log is written after it answers: wait for it.
    assert!(eventually(Duration::from_secs(10), || {
        upstream.gets_of("/simple/tiny-lib/") >= 1
    }));
    assert_eq!(
        upstream.gets_of("/simple/tiny-lib/"),
        1,
        "{}",
        upstream.log_text()
    );

    // Set to zero with `update`: every page request asks the upstream again.
    let out = server.cli(&[
        "repositories",
        "update",
        "cached",
        "--remote-python-index-ttl=0s",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    for _ in 0..2 {
        assert_eq!(page(&server, "cached", "tiny-lib", JSON).status(), 200);
    }
    // pypiserver's access log is written after it answers: wait for it.
    assert!(eventually(Duration::from_secs(10), || {
        upstream.gets_of("/simple/tiny-lib/") >= 3
    }));
    assert_eq!(
        upstream.gets_of("/simple/tiny-lib/"),
        3,
        "{}",
        upstream.log_text()
    );
}

#[test]
fn a_page_cached_by_an_earlier_version_is_served_after_the_upgrade_without_asking_the_upstream() {
    let fx = fx_index();
    let server = Entrepot::start();
    server.create_python(
        "fx",
        Some(&fx.upstream.index_url()),
        json!({ "pythonIndexTtlSecs": 3600 }),
    );
    let tags =
        [JSON, "text/html"].map(|accept| header(&page(&server, "fx", "fx-pkg", accept), "etag"));

    // The row as an earlier version stored it: the upstream's bytes, as sent.
    let data_dir = server.data_dir.clone();
    let builder = server.into_builder();
    let db = data_dir.join("metadata.db").display().to_string();
    let upstream_bytes = fx.json_page.to_string();
    run_python(&format!(
        r#"
import sqlite3
db = sqlite3.connect({db:?})
n = db.execute("UPDATE python_index_pages SET content_type = ?, content = ? WHERE name = 'fx-pkg'", ("{JSON}", {upstream_bytes:?}.encode())).rowcount
assert n == 1, n
db.commit()
"#
    ));
    let server = builder.start();

    // Served from that row, every field there, the same bytes as before:
    // read once and rewritten as the record.
    let r = page(&server, "fx", "fx-pkg", JSON);
    assert_eq!(header(&r, "x-cache"), "HIT");
    assert_eq!(header(&r, "etag"), tags[0]);
    let body: Value = r.json().unwrap();
    assert_json_fields(&body, &fx.wheel, &fx.sdist_sha);
    assert_eq!(
        header(&page(&server, "fx", "fx-pkg", "text/html"), "etag"),
        tags[1]
    );
    assert_eq!(fx.upstream.accepts_of("/simple/fx-pkg/").len(), 1);
    run_python(&format!(
        r#"
import sqlite3
db = sqlite3.connect({db:?})
(ct,) = db.execute("SELECT content_type FROM python_index_pages WHERE name = 'fx-pkg'").fetchone()
assert ct == "application/vnd.entrepot.python-page-record.v1+json", ct
"#
    ));
}
