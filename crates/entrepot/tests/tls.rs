//! HTTPS as an operator runs it: a private CA made for the test, the server
//! started with `ENTREPOT_TLS_CERT`/`ENTREPOT_TLS_KEY`, and skopeo, podman,
//! the docker CLI (against a real dockerd) and curl over HTTP/1.1 and HTTP/2
//! pushing and pulling with the CA trusted the way each client expects;
//! the certificate replaced while a client keeps pulling; client
//! certificates required by `ENTREPOT_TLS_CLIENT_CA`.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::fs;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::Digest as _;
use support::{
    assert_skopeo_ok, cert_dir, eventually, https_server, image_layout, ClientTls, Dockerd,
    Entrepot, Podman, ServerFiles, TestCa,
};

const MIB: usize = 1024 * 1024;

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().unwrap()
}

fn assert_ok(output: &Output, what: &str, server: &Entrepot) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}{}\n--- server log ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        server.log_text()
    );
}

/// The subject curl reports for the certificate the server presents to a new
/// connection (curl checks it against `ca` too).
fn presented_subject(server: &Entrepot, ca_file: &Path) -> String {
    let output = run(Command::new("curl")
        .args(["-sS", "-v", "-o", "/dev/null", "--cacert"])
        .arg(ca_file)
        .arg(format!("{}/healthz", server.base)));
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .lines()
        .find_map(|l| l.trim_start_matches(['*', ' ']).strip_prefix("subject: "))
        .unwrap_or_default()
        .to_owned()
}

fn layer_digest(server: &Entrepot, image: &str, tag: &str) -> String {
    let manifest: serde_json::Value = server
        .get(&format!("/v2/{image}/manifests/{tag}"))
        .json()
        .unwrap();
    manifest["layers"][0]["digest"].as_str().unwrap().to_owned()
}

#[test]
fn skopeo_and_podman_push_and_pull_over_https_with_a_private_ca() {
    let ca = TestCa::new("entrepot test CA");
    let files = ServerFiles::new(&ca.server("entrepot"));
    let server = https_server(&ca, &files, &[]);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    server.create_repository("images");
    let work = tempfile::tempdir().unwrap();
    let certs = cert_dir(work.path(), &ca, None);
    let layout = work.path().join("src");
    let manifest = image_layout(&layout, "1.0", &[2 * MIB]);
    let creds = server.creds();

    // Verification is on: without the CA, skopeo refuses the certificate.
    let untrusted = server.skopeo(&[
        "copy",
        "--dest-creds",
        &creds,
        &format!("oci:{}:1.0", layout.display()),
        &server.docker_ref("default/images/app:1.0"),
    ]);
    assert!(!untrusted.status.success());
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        stderr.contains("certificate") || stderr.contains("x509"),
        "{stderr}"
    );

    let cert_dir_arg = certs.display().to_string();
    let pushed = server.skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-cert-dir",
        &cert_dir_arg,
        "--dest-creds",
        &creds,
        &format!("oci:{}:1.0", layout.display()),
        &server.docker_ref("default/images/app:1.0"),
    ]);
    assert_skopeo_ok(&pushed, "skopeo push over https");
    let pulled = work.path().join("pulled");
    let copied = server.skopeo(&[
        "copy",
        "--preserve-digests",
        "--src-cert-dir",
        &cert_dir_arg,
        "--src-creds",
        &creds,
        &server.docker_ref("default/images/app:1.0"),
        &format!("oci:{}:1.0", pulled.display()),
    ]);
    assert_skopeo_ok(&copied, "skopeo pull over https");
    assert_eq!(support::layout_ref(&pulled, "1.0"), manifest);

    let podman = Podman::new();
    let reference = format!("{}/default/images/app:1.0", server.addr);
    let pull = run(podman
        .command()
        .args(["pull", "--tls-verify=true", "--cert-dir", &cert_dir_arg])
        .args(["--creds", &creds, &reference]));
    assert_ok(&pull, "podman pull over https", &server);
    let again = format!("{}/default/images/app:podman", server.addr);
    let push = run(podman
        .command()
        .args(["push", "--tls-verify=true", "--cert-dir", &cert_dir_arg])
        .args(["--creds", &creds, &reference, &again]));
    assert_ok(&push, "podman push over https", &server);
    let tag = server.get("/v2/default/images/app/manifests/podman");
    assert_eq!(tag.status(), 200);
}

#[test]
fn curl_gets_a_blob_over_http2_and_http1_1() {
    let ca = TestCa::new("entrepot test CA");
    let files = ServerFiles::new(&ca.server("entrepot"));
    let server = https_server(&ca, &files, &[]);
    server.create_repository("images");
    let work = tempfile::tempdir().unwrap();
    let certs = cert_dir(work.path(), &ca, None);
    let layout = work.path().join("src");
    image_layout(&layout, "1.0", &[8 * MIB]);
    let pushed = server.skopeo(&[
        "copy",
        "--dest-cert-dir",
        &certs.display().to_string(),
        "--dest-creds",
        &server.creds(),
        &format!("oci:{}:1.0", layout.display()),
        &server.docker_ref("default/images/app:1.0"),
    ]);
    assert_skopeo_ok(&pushed, "skopeo push over https");
    let digest = layer_digest(&server, "default/images/app", "1.0");
    let url = format!("{}/v2/default/images/app/blobs/{digest}", server.base);

    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1"), ("--tlsv1.2", "2")] {
        let body = work.path().join("blob");
        let mut command = Command::new("curl");
        command
            .args(["-sS", "--fail", flag, "-w", "%{http_version}", "-o"])
            .arg(&body)
            .arg("--cacert")
            .arg(certs.join("ca.crt"))
            .args(["-u", &server.creds(), &url]);
        if flag == "--tlsv1.2" {
            // TLS 1.2 only: still HTTP/2 by ALPN.
            command.args(["--tls-max", "1.2"]);
        }
        let output = run(&mut command);
        assert_ok(&output, &format!("curl {flag}"), &server);
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            version,
            "curl {flag}"
        );
        let bytes = fs::read(&body).unwrap();
        assert!(bytes.len() > 8 * MIB, "{}", bytes.len());
        assert_eq!(
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes))),
            digest
        );
    }

    // Docker clients are sent to an https:// token realm, whatever scheme an
    // untrusted client claims in X-Forwarded-Proto.
    for http in ["--http2", "--http1.1"] {
        let output = run(Command::new("curl")
            .args(["-sS", http, "-o", "/dev/null", "-D", "-"])
            .args(["-H", "X-Forwarded-Proto: http", "--cacert"])
            .arg(certs.join("ca.crt"))
            .arg(format!("{}/v2/", server.base)));
        let head = String::from_utf8_lossy(&output.stdout).to_lowercase();
        let realm = format!("realm=\"https://{}/v2/token\"", server.addr);
        assert!(head.contains(&realm), "{http}: {head}");
    }

    // An error answer crosses HTTP/2 as it does HTTP/1.1: status and OCI body.
    let output = run(Command::new("curl")
        .args(["-sS", "--http2", "-w", "\n%{http_code} %{http_version}"])
        .arg("--cacert")
        .arg(certs.join("ca.crt"))
        .args(["-u", &server.creds()])
        .arg(format!(
            "{}/v2/default/images/app/manifests/missing",
            server.base
        )));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.ends_with("404 2"), "{text}");
    assert!(text.contains("MANIFEST_UNKNOWN"), "{text}");
}

#[test]
fn a_replaced_certificate_is_presented_while_a_client_keeps_pulling() {
    let ca = TestCa::new("entrepot test CA");
    let files = ServerFiles::new(&ca.server("first"));
    let server = https_server(&ca, &files, &[]);
    server.create_repository("images");
    let work = tempfile::tempdir().unwrap();
    let certs = cert_dir(work.path(), &ca, None);
    let ca_file = certs.join("ca.crt");
    let layout = work.path().join("src");
    image_layout(&layout, "1.0", &[4 * MIB]);
    let pushed = server.skopeo(&[
        "copy",
        "--dest-cert-dir",
        &certs.display().to_string(),
        "--dest-creds",
        &server.creds(),
        &format!("oci:{}:1.0", layout.display()),
        &server.docker_ref("default/images/app:1.0"),
    ]);
    assert_skopeo_ok(&pushed, "skopeo push over https");
    assert_eq!(presented_subject(&server, &ca_file), "CN=first");
    let digest = layer_digest(&server, "default/images/app", "1.0");

    // A client pulling in a loop, each pull a new skopeo process (new TLS
    // connections), while the certificate changes under it.
    let stop = Arc::new(AtomicBool::new(false));
    let pulls = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let puller = {
        let (stop, pulls, failures) = (stop.clone(), pulls.clone(), failures.clone());
        let source = server.docker_ref("default/images/app:1.0");
        let (creds, certs) = (server.creds(), certs.display().to_string());
        let out = work.path().join("pulls");
        std::thread::spawn(move || {
            fs::create_dir_all(&out).unwrap();
            let dest = format!("oci:{}:1.0", out.join("layout").display());
            while !stop.load(Ordering::Relaxed) {
                let _ = fs::remove_dir_all(out.join("layout"));
                let output = support::skopeo(&[
                    "copy",
                    "--src-cert-dir",
                    &certs,
                    "--src-creds",
                    &creds,
                    &source,
                    &dest,
                ]);
                if output.status.success() {
                    pulls.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(String::from_utf8_lossy(&output.stderr).into_owned());
                    return;
                }
            }
        })
    };
    // A keep-alive client reading the blob on and on, across the swaps.
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (stop, reads, failures) = (stop.clone(), reads.clone(), failures.clone());
        let http = reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
            .build()
            .unwrap();
        let url = format!("{}/v2/default/images/app/blobs/{digest}", server.base);
        let token = server.admin_token.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let result = http
                    .get(&url)
                    .basic_auth("admin", Some(&token))
                    .send()
                    .and_then(|r| r.error_for_status())
                    .and_then(|r| r.bytes());
                match result {
                    Ok(bytes) if bytes.len() > 4 * MIB => {
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(bytes) => {
                        failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!("short blob: {} bytes", bytes.len()));
                        return;
                    }
                    Err(e) => {
                        failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!("blob GET: {e}"));
                        return;
                    }
                }
            }
        })
    };
    let progress = |pulls_before: usize, reads_before: usize| {
        eventually(Duration::from_secs(120), || {
            pulls.load(Ordering::Relaxed) > pulls_before
                && reads.load(Ordering::Relaxed) > reads_before
        })
    };
    assert!(
        progress(0, 0),
        "no pull completed: {:?}",
        failures.lock().unwrap()
    );

    // SIGHUP: the new certificate at once.
    files.replace(&ca.server("second"));
    let hup = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    assert!(
        eventually(Duration::from_secs(10), || presented_subject(
            &server, &ca_file
        ) == "CN=second"),
        "after SIGHUP the server presents {:?}\n{}",
        presented_subject(&server, &ca_file),
        server.log_text()
    );
    let (p, r) = (pulls.load(Ordering::Relaxed), reads.load(Ordering::Relaxed));
    assert!(
        progress(p, r),
        "no pull after SIGHUP: {:?}",
        failures.lock().unwrap()
    );

    // No signal: the changed files are noticed on their own.
    files.replace(&ca.server("third"));
    assert!(
        eventually(Duration::from_secs(30), || presented_subject(
            &server, &ca_file
        ) == "CN=third"),
        "after the files changed the server presents {:?}\n{}",
        presented_subject(&server, &ca_file),
        server.log_text()
    );
    let (p, r) = (pulls.load(Ordering::Relaxed), reads.load(Ordering::Relaxed));
    assert!(
        progress(p, r),
        "no pull after the file change: {:?}",
        failures.lock().unwrap()
    );

    // A broken replacement is refused and the certificate in use stays.
    fs::write(files.key(), "not a key").unwrap();
    Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(eventually(Duration::from_secs(10), || server
        .log_text()
        .contains("TLS reload failed")));
    assert_eq!(presented_subject(&server, &ca_file), "CN=third");

    stop.store(true, Ordering::Relaxed);
    puller.join().unwrap();
    reader.join().unwrap();
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "pulls failed during the swaps: {failures:?}"
    );
}

#[test]
fn client_certificates_are_required_when_a_client_ca_is_set() {
    let ca = TestCa::new("entrepot test CA");
    let clients = TestCa::new("entrepot clients CA");
    let client = clients.client("build-agent");
    let stranger = TestCa::new("someone else's CA").client("stranger");
    let files = ServerFiles::new(&ca.server("entrepot"));
    let work = tempfile::tempdir().unwrap();
    let client_ca = work.path().join("clients-ca.pem");
    fs::write(&client_ca, clients.pem()).unwrap();
    let mut builder = Entrepot::builder().client_tls(ClientTls {
        ca_pem: ca.pem(),
        identity_pem: Some(format!("{}{}", client.cert, client.key)),
    });
    for (k, v) in files.env() {
        builder = builder.env(&k, &v);
    }
    let server = builder
        .env("ENTREPOT_TLS_CLIENT_CA", &client_ca.display().to_string())
        .start();
    // The harness presents its certificate: the admin API works.
    server.create_repository("images");

    let certs = cert_dir(work.path(), &ca, None);
    let curl = |extra: &[&Path]| {
        let mut command = Command::new("curl");
        command
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(certs.join("ca.crt"));
        if let [cert, key] = extra {
            command.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        run(command.arg(format!("{}/healthz", server.base)))
    };
    let without = curl(&[]);
    assert!(
        !without.status.success(),
        "a client without a certificate got in"
    );
    assert_ne!(String::from_utf8_lossy(&without.stdout), "200");

    let stranger_cert = work.path().join("stranger.crt");
    let stranger_key = work.path().join("stranger.key");
    fs::write(&stranger_cert, &stranger.cert).unwrap();
    fs::write(&stranger_key, &stranger.key).unwrap();
    let refused = curl(&[&stranger_cert, &stranger_key]);
    assert!(
        !refused.status.success(),
        "a certificate of another CA got in"
    );

    let mtls = cert_dir(&work.path().join("mtls"), &ca, Some(&client));
    let accepted = curl(&[&mtls.join("client.cert"), &mtls.join("client.key")]);
    assert_ok(&accepted, "curl with the client certificate", &server);
    assert_eq!(String::from_utf8_lossy(&accepted.stdout), "200");

    // skopeo presents the pair found in its certificate directory.
    let layout = work.path().join("src");
    image_layout(&layout, "1.0", &[64 * 1024]);
    let src = format!("oci:{}:1.0", layout.display());
    let dst = server.docker_ref("default/images/app:1.0");
    let creds = server.creds();
    let no_pair = server.skopeo(&[
        "copy",
        "--dest-cert-dir",
        &certs.display().to_string(),
        "--dest-creds",
        &creds,
        &src,
        &dst,
    ]);
    assert!(
        !no_pair.status.success(),
        "skopeo without a client certificate got in"
    );
    let pushed = server.skopeo(&[
        "copy",
        "--dest-cert-dir",
        &mtls.display().to_string(),
        "--dest-creds",
        &creds,
        &src,
        &dst,
    ]);
    assert_skopeo_ok(&pushed, "skopeo push with a client certificate");
}

#[test]
fn a_client_that_never_completes_its_handshake_is_disconnected() {
    let ca = TestCa::new("entrepot test CA");
    let files = ServerFiles::new(&ca.server("entrepot"));
    let server = https_server(&ca, &files, &[]);
    let mut silent = std::net::TcpStream::connect(&server.addr).unwrap();
    // Bounded wait, not a timing assertion: the server closes it once the
    // handshake deadline passes; a server without one leaves it open and
    // this read times out.
    silent
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut buf = [0u8; 16];
    match silent.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("the server sent {n} bytes to a client that sent none"),
        Err(e) => assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset,
            "the connection stayed open: {e}"
        ),
    }
    // The server still serves others.
    assert_eq!(
        server
            .bare_request(reqwest::Method::GET, "/healthz")
            .send()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn the_docker_cli_pushes_and_pulls_over_https_with_certs_d() {
    let ca = TestCa::new("entrepot test CA");
    let files = ServerFiles::new(&ca.server("entrepot"));
    let server = https_server(&ca, &files, &[]);
    server.create_repository("images");
    let dockerd = match Dockerd::start(&server.addr, &ca.pem()) {
        Ok(d) => d,
        Err(why) => {
            println!("SKIPPED: dockerd cannot run here: {why}");
            return;
        }
    };
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("src");
    image_layout(&layout, "1.0", &[MIB]);
    let archive = work.path().join("app.tar");
    let exported = support::skopeo(&[
        "copy",
        &format!("oci:{}:1.0", layout.display()),
        &format!("docker-archive:{}:app:1.0", archive.display()),
    ]);
    assert_skopeo_ok(&exported, "skopeo copy to a docker archive");
    let loaded = dockerd.docker(&["load", "-i", &archive.display().to_string()]);
    assert_ok(&loaded, "docker load", &server);

    let mut login =
        dockerd.docker_command(&["login", &server.addr, "-u", "admin", "--password-stdin"]);
    login
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = login.spawn().unwrap();
    {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(server.admin_token.as_bytes())
            .unwrap();
    }
    let login = child.wait_with_output().unwrap();
    assert!(
        login.status.success(),
        "docker login over https: {}\n{}",
        String::from_utf8_lossy(&login.stderr),
        dockerd.log()
    );

    let remote = format!("{}/default/images/app:1.0", server.addr);
    assert_ok(
        &dockerd.docker(&["tag", "app:1.0", &remote]),
        "docker tag",
        &server,
    );
    let push = dockerd.docker(&["push", &remote]);
    assert!(
        push.status.success(),
        "docker push over https: {}{}\n--- dockerd ---\n{}\n--- server ---\n{}",
        String::from_utf8_lossy(&push.stdout),
        String::from_utf8_lossy(&push.stderr),
        dockerd.log(),
        server.log_text()
    );
    assert_eq!(
        server.get("/v2/default/images/app/manifests/1.0").status(),
        200
    );
    assert_ok(
        &dockerd.docker(&["rmi", &remote, "app:1.0"]),
        "docker rmi",
        &server,
    );
    let pull = dockerd.docker(&["pull", &remote]);
    assert!(
        pull.status.success(),
        "docker pull over https: {}{}\n--- dockerd ---\n{}",
        String::from_utf8_lossy(&pull.stdout),
        String::from_utf8_lossy(&pull.stderr),
        dockerd.log()
    );
    let inspect = dockerd.docker(&["image", "inspect", &remote]);
    assert_ok(&inspect, "docker image inspect", &server);
}

#[test]
fn print_config_shows_file_environment_and_flags_and_reads_back() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/entrepot.toml");
    let cwd = tempfile::tempdir().unwrap();
    let output = run(Command::new(support::BIN)
        .current_dir(cwd.path())
        .args(["serve", "--print-config", "--config"])
        .arg(&sample)
        .args(["--tls-cert", "/etc/entrepot/tls/fullchain.pem"])
        .args(["--tls-key", "/etc/entrepot/tls/privkey.pem"])
        .env("ENTREPOT_MAX_CONNECTIONS", "512")
        .env_remove("ENTREPOT_LISTEN")
        .env_remove("ENTREPOT_DATA_DIR"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    let config: entrepot::config::Config = toml::from_str(&printed).unwrap();
    assert_eq!(config.max_connections, 512);
    assert_eq!(
        config.tls_key.as_deref(),
        Some(Path::new("/etc/entrepot/tls/privkey.pem"))
    );
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.to_toml(), printed);
    // It starts nothing: no data directory appears.
    assert!(!cwd.path().join("entrepot-data").exists());
}

#[test]
fn the_cli_trusts_the_ca_that_entrepot_ca_cert_names() {
    let ca = TestCa::new("entrepot test CA");
    let files = ServerFiles::new(&ca.server("entrepot"));
    let server = https_server(&ca, &files, &[]);
    let home = tempfile::tempdir().unwrap();
    let ca_file = home.path().join("ca.crt");
    fs::write(&ca_file, ca.pem()).unwrap();
    let cli = |ca: Option<&Path>| {
        let mut command = Command::new(support::BIN);
        command
            .args(["repositories", "list", "--server", &server.base])
            .args(["--token", &server.admin_token])
            .env("HOME", home.path())
            .env_remove("ENTREPOT_SERVER")
            .env_remove("ENTREPOT_TOKEN")
            .env_remove("ENTREPOT_CA_CERT");
        if let Some(ca) = ca {
            command.env("ENTREPOT_CA_CERT", ca);
        }
        run(&mut command)
    };
    let untrusted = cli(None);
    assert!(!untrusted.status.success());
    let trusted = cli(Some(&ca_file));
    assert_ok(&trusted, "entrepot repositories list over https", &server);
    assert!(
        String::from_utf8_lossy(&trusted.stdout).contains("docker-hub"),
        "{}",
        String::from_utf8_lossy(&trusted.stdout)
    );
}
