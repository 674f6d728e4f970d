//! Mutual TLS gates the connection and names nobody: with
//! `ENTREPOT_TLS_CLIENT_CA`, a client certificate signed by that CA lets a
//! client connect, but requests are authenticated by their credentials only.
//! A certificate whose subject and SAN e-mail name the bootstrap admin gets
//! no more than an anonymous caller (docs/deploy.md, "Mutual TLS").

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::fs;
use std::process::{Command, Output, Stdio};

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType,
};
use support::{ClientTls, Entrepot, ServerFiles, TestCa};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A client certificate that claims to be `user:admin` every way a
/// certificate can: common name, e-mail and URI subject alternative names.
fn admin_looking_client(ca: &TestCa) -> (String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "admin");
    params.subject_alt_names = vec![
        SanType::Rfc822Name("admin".try_into().unwrap()),
        SanType::URI("user:admin".try_into().unwrap()),
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn a_client_certificate_opens_the_connection_but_is_no_principal() {
    let server_ca = TestCa::new("entrepot test CA");
    let clients = TestCa::new("entrepot clients CA");
    let (cert, key) = admin_looking_client(&clients);
    let files = ServerFiles::new(&server_ca.server("entrepot"));
    let work = tempfile::tempdir().unwrap();
    let paths = [
        ("clients-ca.pem", clients.pem()),
        ("ca.crt", server_ca.pem()),
        ("client.crt", cert.clone()),
        ("client.key", key.clone()),
    ];
    for (name, pem) in &paths {
        fs::write(work.path().join(name), pem).unwrap();
    }
    let mut builder = Entrepot::builder().client_tls(ClientTls {
        ca_pem: server_ca.pem(),
        identity_pem: Some(format!("{cert}{key}")),
    });
    for (k, v) in files.env() {
        builder = builder.env(&k, &v);
    }
    let server = builder
        .env(
            "ENTREPOT_TLS_CLIENT_CA",
            &work.path().join("clients-ca.pem").display().to_string(),
        )
        .start();
    server.create_repository("images");

    // curl with the client certificate: (status, head).
    let curl = |path: &str, creds: Option<&str>| -> (String, String) {
        let mut command = Command::new("curl");
        command
            .current_dir(work.path())
            .args(["-sS", "-o", "/dev/null", "-D", "-", "-w", "%{http_code}"])
            .args([
                "--cacert",
                "ca.crt",
                "--cert",
                "client.crt",
                "--key",
                "client.key",
            ]);
        if let Some(c) = creds {
            command.args(["-u", c]);
        }
        let out: Output = command
            .arg(format!("{}{path}", server.base))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {path} with the client certificate: {}",
            text(&out.stderr)
        );
        let all = text(&out.stdout);
        let status = all[all.len() - 3..].to_owned();
        (status, all)
    };

    // The handshake succeeded (an HTTP answer came back), and the
    // certificate authenticated nobody.
    let (status, head) = curl("/v2/", None);
    assert_eq!(status, "401", "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer realm=\"https://"),
        "{head}"
    );
    let (status, head) = curl("/v2/default/images/app/tags/list", None);
    assert_eq!(status, "401", "{head}");
    let (status, head) = curl("/v1/projects", None);
    assert_eq!(status, "401", "{head}");

    // With the admin's token as well, the same connection is the admin.
    let creds = server.creds();
    let (status, head) = curl("/v2/", Some(&creds));
    assert_eq!(status, "200", "{head}");
    let (status, head) = curl("/v1/projects", Some(&creds));
    assert_eq!(status, "200", "{head}");
}
