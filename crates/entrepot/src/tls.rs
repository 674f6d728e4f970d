//! TLS on the listener: a certificate chain and its private key from PEM
//! files, optionally a CA whose client certificates are required (mutual
//! TLS), reloaded without a restart on SIGHUP and when the files change.
//!
//! TLS 1.2 and 1.3 only, ALPN `h2` then `http/1.1`. A reload builds a whole new
//! server configuration and swaps it in: connections already open keep the
//! one they were accepted with, new ones get the new certificate. A reload
//! that fails (a half-written file, a key that does not match) is logged and
//! the previous configuration stays in use.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// How often the certificate, key and client CA files are checked for changes.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// The files TLS is configured from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the first certificate.
    pub key: PathBuf,
    /// PEM CA certificates; when set, clients must present a certificate
    /// signed by one of them.
    pub client_ca: Option<PathBuf>,
}

/// Why a TLS configuration cannot be built from its files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the TLS {what} {path}: {source}")]
    Read {
        /// `certificate`, `private key` or `client CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file is not the PEM it should be.
    #[error("the TLS {what} {path} is not usable: {message}")]
    Pem {
        /// `certificate`, `private key` or `client CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The certificate and key do not fit together, or rustls refused them.
    #[error("TLS certificate {cert} with key {key}: {source}")]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason (for example a key that does not match the certificate).
        source: rustls::Error,
    },
    /// The client CA cannot verify client certificates.
    #[error("TLS client CA {path}: {message}")]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The server's TLS configuration, swapped as a whole on reload.
pub struct ReloadableTls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl ReloadableTls {
    /// Build the configuration from `files`; fails naming the file at fault.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let config = build(&files)?;
        Ok(Arc::new(Self {
            files,
            current: RwLock::new(Arc::new(config)),
        }))
    }

    /// An acceptor with the configuration in force now.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        TlsAcceptor::from(config)
    }

    /// Read the files again and use them for new connections; on error the
    /// configuration in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Arc::new(build(&self.files)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = config;
        Ok(())
    }

    /// Reload on SIGHUP and when a file changes (checked every
    /// [`WATCH_INTERVAL`]), until the process ends.
    pub fn watch(self: &Arc<Self>) {
        let tls = self.clone();
        tokio::spawn(async move {
            let mut loaded = Fingerprint::of(&tls.files);
            let mut failed: Option<Fingerprint> = None;
            let mut hangup = hangup_signal();
            let mut tick = tokio::time::interval(WATCH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let forced = tokio::select! {
                    () = next_hangup(&mut hangup) => true,
                    _ = tick.tick() => false,
                };
                let now = Fingerprint::of(&tls.files);
                // A failed attempt is retried only once the files change
                // again, so a broken file is reported once, not every tick.
                if !forced && (now == loaded || failed.as_ref() == Some(&now)) {
                    continue;
                }
                let why = if forced { "SIGHUP" } else { "files changed" };
                match tls.reload() {
                    Ok(()) => {
                        tracing::info!(cert = %tls.files.cert.display(), reason = why, "TLS certificate reloaded");
                        loaded = now;
                        failed = None;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, reason = why, "TLS reload failed; keeping the certificate in use");
                        failed = Some(now);
                    }
                }
            }
        });
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

fn hangup_signal() -> Hangup {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; TLS files are still reloaded when they change");
                None
            }
        }
    }
    #[cfg(not(unix))]
    None
}

async fn next_hangup(hangup: &mut Hangup) {
    #[cfg(unix)]
    if let Some(signal) = hangup {
        if signal.recv().await.is_some() {
            return;
        }
    }
    #[cfg(not(unix))]
    let _ = hangup;
    std::future::pending::<()>().await;
}

/// What identifies a version of the files: size, modification time and inode
/// of each (following symbolic links, so a Kubernetes secret volume's
/// `..data` swap counts).
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint(Vec<Option<(u64, SystemTime, u64)>>);

impl Fingerprint {
    fn of(files: &TlsFiles) -> Self {
        let paths = [
            Some(&files.cert),
            Some(&files.key),
            files.client_ca.as_ref(),
        ];
        Self(
            paths
                .into_iter()
                .flatten()
                .map(|p| {
                    let m = std::fs::metadata(p).ok()?;
                    Some((m.len(), m.modified().ok()?, inode(&m)))
                })
                .collect(),
        )
    }
}

#[cfg(unix)]
fn inode(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

fn build(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs(&files.cert, "certificate")?;
    let key = read_key(&files.key)?;
    let config_error = |source| TlsError::Config {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(config_error)?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(path, "client CA")? {
                roots.add(cert).map_err(|e| TlsError::ClientCa {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::ClientCa {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    // Checks that the key is the certificate's.
    let mut config = builder.with_single_cert(certs, key).map_err(config_error)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            path: path.to_owned(),
            message: "no CERTIFICATE block in it".into(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        what: "private key",
        path: path.to_owned(),
        message: format!("no PEM private key in it ({e})"),
    })
}
