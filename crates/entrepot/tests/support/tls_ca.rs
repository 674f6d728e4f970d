//! TLS material of a test: a private certificate authority made for it,
//! server and client certificates it issues, the server's certificate files
//! (replaced as an operator would), a containers-style certificate
//! directory, and an HTTPS `entrepot` trusting it.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use super::server::{ClientTls, Entrepot};

/// A certificate authority made for one test.
pub struct TestCa {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
}

/// A PEM certificate and its PEM private key.
pub struct Issued {
    pub cert: String,
    pub key: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for 127.0.0.1 and localhost named `name`.
    pub fn server(&self, name: &str) -> Issued {
        self.issue(
            name,
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate named `name`.
    pub fn client(&self, name: &str) -> Issued {
        self.issue(name, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    pub fn issue(&self, name: &str, sans: Vec<String>, usage: ExtendedKeyUsagePurpose) -> Issued {
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// The server's TLS files in a directory of the test, replaced the way an
/// operator (or cert-manager) does: write aside, then rename over.
pub struct ServerFiles {
    dir: tempfile::TempDir,
}

impl ServerFiles {
    pub fn new(issued: &Issued) -> ServerFiles {
        let files = ServerFiles {
            dir: tempfile::tempdir().unwrap(),
        };
        files.replace(issued);
        files
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    pub fn replace(&self, issued: &Issued) {
        for (path, text) in [(self.cert(), &issued.cert), (self.key(), &issued.key)] {
            let aside = path.with_extension("new");
            fs::write(&aside, text).unwrap();
            fs::rename(&aside, &path).unwrap();
        }
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "ENTREPOT_TLS_CERT".into(),
                self.cert().display().to_string(),
            ),
            ("ENTREPOT_TLS_KEY".into(), self.key().display().to_string()),
        ]
    }
}

/// A containers-style certificate directory: `ca.crt` (and a client pair).
pub fn cert_dir(parent: &Path, ca: &TestCa, client: Option<&Issued>) -> PathBuf {
    let dir = parent.join("certs");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    if let Some(client) = client {
        fs::write(dir.join("client.cert"), &client.cert).unwrap();
        fs::write(dir.join("client.key"), &client.key).unwrap();
    }
    dir
}

/// An HTTPS server with a certificate from `ca`, the harness trusting `ca`.
pub fn https_server(ca: &TestCa, files: &ServerFiles, extra_env: &[(&str, &str)]) -> Entrepot {
    let mut builder = Entrepot::builder().client_tls(ClientTls {
        ca_pem: ca.pem(),
        identity_pem: None,
    });
    for (k, v) in files.env() {
        builder = builder.env(&k, &v);
    }
    builder.envs(extra_env).start()
}
