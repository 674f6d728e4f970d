//! entrepot behind Debian's nginx terminating TLS, with the server block
//! shipped in `packaging/nginx/entrepot.conf` (the one docs/deploy.md
//! shows), only its listen address, certificate paths and upstream port
//! replaced: skopeo pushes and pulls through it over HTTPS with a test CA,
//! the token realm names the proxy's `https://` address, a 128 MiB blob
//! goes up and down through it, and a proxy that is not in
//! `trusted_proxies` gets its `X-Forwarded-*` headers ignored.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use support::*;

const SHIPPED: &str = include_str!("../../../packaging/nginx/entrepot.conf");

/// The address nginx connects from in the untrusted server block
/// (`proxy_bind`): on loopback, but not in `trusted_proxies`.
const UNTRUSTED_SOURCE: &str = "127.0.0.3";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Replace `from` in `text`, insisting it is there exactly once (so a
/// change to the shipped file cannot silently leave the test's values out).
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "packaging/nginx/entrepot.conf should contain {from:?} once"
    );
    text.replacen(from, to, 1)
}

/// Debian's nginx on loopback, one server block per port, killed on drop.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

/// One server block of the shipped file.
struct Block {
    port: u16,
    upstream: String,
    /// `proxy_bind` address, for a proxy entrepot does not trust.
    bind: Option<&'static str>,
}

impl Nginx {
    fn start(tls: &ServerFiles, blocks: &[Block]) -> Nginx {
        require_tool("nginx", "nginx");
        let dir = tempfile::tempdir().unwrap();
        let servers: Vec<String> = blocks
            .iter()
            .map(|b| {
                let s = replace_once(
                    SHIPPED,
                    "listen 443 ssl http2;",
                    &format!("listen 127.0.0.1:{} ssl http2;", b.port),
                );
                let s = replace_once(
                    &s,
                    "/etc/letsencrypt/live/registry.example.com/fullchain.pem",
                    &tls.cert().display().to_string(),
                );
                let s = replace_once(
                    &s,
                    "/etc/letsencrypt/live/registry.example.com/privkey.pem",
                    &tls.key().display().to_string(),
                );
                let mut upstream = format!("proxy_pass http://{};", b.upstream);
                if let Some(bind) = b.bind {
                    upstream.push_str(&format!("\n        proxy_bind {bind};"));
                }
                replace_once(&s, "proxy_pass http://127.0.0.1:8080;", &upstream)
            })
            .collect();
        let d = dir.path().display();
        // One process (no workers changing to an unprivileged user that
        // could not read the test's files), everything under the test's dir.
        let conf = format!(
            "master_process off;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n    access_log {d}/access.log;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n{}\n}}\n",
            servers.join("\n")
        );
        fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start nginx");
        let nginx = Nginx { child, dir };
        for b in blocks {
            let up = eventually(Duration::from_secs(30), || {
                std::net::TcpStream::connect(("127.0.0.1", b.port)).is_ok()
            });
            assert!(
                up,
                "nginx does not listen on {}:\n{}",
                b.port,
                nginx.error_log()
            );
        }
        nginx
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// entrepot trusting only 127.0.0.1, nginx in front of it: `trusted` on
/// one port, `untrusted` (connecting from [`UNTRUSTED_SOURCE`]) on another.
struct Setup {
    server: Entrepot,
    nginx: Nginx,
    _tls: ServerFiles,
    certs: PathBuf,
    work: tempfile::TempDir,
    trusted: String,
    untrusted: String,
}

fn setup() -> Setup {
    let server = Entrepot::builder()
        .env("ENTREPOT_TRUSTED_PROXIES", "127.0.0.1")
        .start();
    let ca = TestCa::new("entrepot proxy test CA");
    let tls = ServerFiles::new(&ca.server("nginx"));
    let (p1, p2) = (free_port(), free_port());
    let nginx = Nginx::start(
        &tls,
        &[
            Block {
                port: p1,
                upstream: server.addr.clone(),
                bind: None,
            },
            Block {
                port: p2,
                upstream: server.addr.clone(),
                bind: Some(UNTRUSTED_SOURCE),
            },
        ],
    );
    let work = tempfile::tempdir().unwrap();
    let certs = cert_dir(work.path(), &ca, None);
    Setup {
        server,
        nginx,
        _tls: tls,
        certs,
        work,
        trusted: format!("127.0.0.1:{p1}"),
        untrusted: format!("127.0.0.1:{p2}"),
    }
}

impl Setup {
    /// curl over HTTPS trusting the test CA; `-D -` so the head is on stdout.
    fn curl(&self, args: &[&str]) -> Output {
        Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(self.certs.join("ca.crt"))
            .args(args)
            .output()
            .unwrap()
    }

    fn challenge(&self, proxy: &str) -> String {
        let out = self.curl(&[
            "-o",
            "/dev/null",
            "-D",
            "-",
            &format!("https://{proxy}/v2/"),
        ]);
        let head = text(&out.stdout);
        assert!(
            out.status.success(),
            "curl through nginx: {}\n{}",
            text(&out.stderr),
            self.nginx.error_log()
        );
        header_of(&head, "www-authenticate")
            .unwrap_or_else(|| panic!("no challenge through {proxy}: {head}"))
    }

    fn skopeo(&self, args: &[&str]) -> Output {
        self.server.skopeo(args)
    }
}

#[test]
fn skopeo_pushes_and_pulls_through_nginx_over_https_and_the_realm_names_the_proxy() {
    let s = setup();
    s.server.create_repository("images");
    assert_eq!(
        s.challenge(&s.trusted),
        format!(
            "Bearer realm=\"https://{}/v2/token\",service=\"entrepot\"",
            s.trusted
        ),
        "behind the trusted proxy the realm is the proxy's HTTPS address"
    );

    let layout = s.work.path().join("pushed");
    let digest = image_layout(&layout, "1.0", &[1024 * 1024, 4096]);
    let creds = s.server.creds();
    let certs = s.certs.display().to_string();
    let image = format!("docker://{}/default/images/app:1.0", s.trusted);
    let pushed = s.skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-cert-dir",
        &certs,
        "--dest-creds",
        &creds,
        &format!("oci:{}:1.0", layout.display()),
        &image,
    ]);
    assert!(
        pushed.status.success(),
        "skopeo push through nginx: {}\n--- nginx ---\n{}\n--- entrepot ---\n{}",
        text(&pushed.stderr),
        s.nginx.error_log(),
        s.server.log_text()
    );
    let pulled_layout = s.work.path().join("pulled");
    let pulled = s.skopeo(&[
        "copy",
        "--preserve-digests",
        "--src-cert-dir",
        &certs,
        "--src-creds",
        &creds,
        &image,
        &format!("oci:{}:1.0", pulled_layout.display()),
    ]);
    assert_skopeo_ok(&pulled, "skopeo pull through nginx");
    assert_eq!(assert_same_content(&layout, &pulled_layout, &digest), 4);

    // skopeo followed the realm to the proxy (not to entrepot's own
    // address), and the upload's Location stayed on the proxy too.
    let access = s.nginx.access_log();
    assert!(access.contains("GET /v2/token?"), "{access}");
    assert!(
        access.contains("PUT /v2/default/images/app/blobs/uploads/"),
        "{access}"
    );
    assert!(
        access.contains("PUT /v2/default/images/app/manifests/1.0"),
        "{access}"
    );
}

#[test]
fn a_large_blob_goes_up_and_down_through_nginx_unbuffered() {
    let s = setup();
    s.server.create_repository("images");
    // 128 MiB: far over nginx's default client_max_body_size (1 MiB).
    let blob = s.work.path().join("blob");
    let mut hasher = Sha256::new();
    {
        let mut file = fs::File::create(&blob).unwrap();
        for _ in 0..128 {
            let chunk = random_bytes(1024 * 1024);
            hasher.update(&chunk);
            file.write_all(&chunk).unwrap();
        }
    }
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    let creds = s.server.creds();
    let base = format!("https://{}", s.trusted);

    let started = s.curl(&[
        "-u",
        &creds,
        "-X",
        "POST",
        "-o",
        "/dev/null",
        "-D",
        "-",
        &format!("{base}/v2/default/images/big/blobs/uploads/"),
    ]);
    let head = text(&started.stdout);
    assert!(head.contains(" 202"), "{head}{}", text(&started.stderr));
    let location = header_of(&head, "location").unwrap();
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = s.curl(&[
        "-u",
        &creds,
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--upload-file",
        &blob.display().to_string(),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{base}{location}{sep}digest={digest}"),
    ]);
    assert_eq!(
        text(&put.stdout),
        "201",
        "PUT of 128 MiB through nginx: {}\n{}",
        text(&put.stderr),
        s.nginx.error_log()
    );

    let fetched = s.work.path().join("fetched");
    let get = s.curl(&[
        "-u",
        &creds,
        "-o",
        &fetched.display().to_string(),
        "-w",
        "%{http_code}",
        &format!("{base}/v2/default/images/big/blobs/{digest}"),
    ]);
    assert_eq!(text(&get.stdout), "200", "{}", text(&get.stderr));
    assert_eq!(file_digest(&fetched), digest);
}

fn file_digest(path: &Path) -> String {
    let mut hasher = Sha256::new();
    let mut file = fs::File::open(path).unwrap();
    std::io::copy(&mut file, &mut hasher).unwrap();
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

#[test]
fn an_untrusted_proxy_s_forwarded_headers_are_ignored() {
    let s = setup();
    s.server.create_repository("images");
    // nginx says X-Forwarded-Proto: https from an address entrepot does not
    // trust: the realm falls back to the Host header and plain HTTP.
    assert_eq!(
        s.challenge(&s.untrusted),
        format!(
            "Bearer realm=\"http://{}/v2/token\",service=\"entrepot\"",
            s.untrusted
        )
    );
    // Which is why such a proxy breaks Docker logins: the token request
    // goes out in plain HTTP to nginx's HTTPS port.
    let layout = s.work.path().join("pushed");
    image_layout(&layout, "1.0", &[4096]);
    let pushed = s.skopeo(&[
        "copy",
        "--dest-cert-dir",
        &s.certs.display().to_string(),
        "--dest-creds",
        &s.server.creds(),
        &format!("oci:{}:1.0", layout.display()),
        &format!("docker://{}/default/images/app:1.0", s.untrusted),
    ]);
    assert!(
        !pushed.status.success(),
        "a push through an untrusted proxy got a usable realm"
    );
    // A client that talks to entrepot directly from another loopback
    // address cannot choose the realm either.
    let direct = Command::new("curl")
        .args([
            "-sS",
            "--interface",
            "127.0.0.4",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-H",
            "X-Forwarded-Proto: https",
            "-H",
            "X-Forwarded-Host: phish.example",
            &format!("{}/v2/", s.server.base),
        ])
        .output()
        .unwrap();
    let head = text(&direct.stdout);
    assert_eq!(
        header_of(&head, "www-authenticate").unwrap_or_default(),
        format!(
            "Bearer realm=\"http://{}/v2/token\",service=\"entrepot\"",
            s.server.addr
        ),
        "{head}{}",
        text(&direct.stderr)
    );
}

#[test]
fn docs_deploy_shows_the_nginx_configuration_the_tests_run() {
    let docs = include_str!("../../../docs/deploy.md");
    let block = SHIPPED
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        docs.contains(&block),
        "docs/deploy.md should show packaging/nginx/entrepot.conf's server block verbatim:\n{block}"
    );
}
