//! The serving certificate: PEM loading (ECDSA, RSA, Ed25519 keys; PKCS#8, PKCS#1, SEC1), a
//! rustls `ResolvesServerCert` over an atomically swapped key, and the poller that reloads the
//! files when they change. A Kubernetes Secret volume updates by swapping its `..data` symlink,
//! so the poller re-reads the paths (following symlinks) and compares contents, rather than
//! trusting inotify on a file that is never written in place.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::telemetry::Metrics;

/// The certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no PEM CERTIFICATE block")]
    NoCertificate { path: String },
    #[error("{path}: invalid PEM certificate: {message}")]
    BadCertificate { path: String, message: String },
    #[error("{path}: no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {message}")]
    BadKey { path: String, message: String },
    #[error("certificate {cert} and key {key} do not belong together: {message}")]
    Mismatch {
        cert: String,
        key: String,
        message: String,
    },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The crypto provider phi-guard serves with (ring), independent of any process default.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A parsed certificate chain and key, with the leaf's expiry.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    pub key: Arc<CertifiedKey>,
    /// notAfter of the leaf, Unix seconds (None when the leaf could not be parsed as X.509).
    pub not_after: Option<i64>,
}

/// Parse a PEM certificate chain and private key. `cert_name`/`key_name` are used in errors.
pub fn parse_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_name: &str,
    key_name: &str,
) -> Result<LoadedCert, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::BadCertificate {
            path: cert_name.to_string(),
            message: e.to_string(),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate {
            path: cert_name.to_string(),
        });
    };
    let not_after = x509_parser::parse_x509_certificate(leaf.as_ref())
        .ok()
        .map(|(_, c)| c.validity().not_after.timestamp());
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::BadKey {
        path: key_name.to_string(),
        message: e.to_string(),
    })?;
    let certified = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
            cert: cert_name.to_string(),
            key: key_name.to_string(),
            message: e.to_string(),
        },
        other => TlsError::BadKey {
            path: key_name.to_string(),
            message: other.to_string(),
        },
    })?;
    Ok(LoadedCert {
        key: Arc::new(certified),
        not_after,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.display().to_string(),
        source: e,
    })
}

/// Serves the current certificate to every new TLS handshake; [`CertStore::reload`] swaps it.
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The file contents last tried (loaded or refused), so an unchanged pair is not re-parsed
    /// and a broken pair is reported once, not every poll.
    last_seen: parking_lot::Mutex<(Vec<u8>, Vec<u8>)>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Swapped,
    /// The files changed but could not be used; the previous certificate stays.
    Refused,
}

impl CertStore {
    /// Load the pair once; an error here is fatal for startup (no certificate, no server).
    pub fn load(
        cert_path: PathBuf,
        key_path: PathBuf,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<CertStore>, TlsError> {
        let cert = read(&cert_path)?;
        let key = read(&key_path)?;
        let loaded = parse_pem(
            &cert,
            &key,
            &cert_path.display().to_string(),
            &key_path.display().to_string(),
        )
        .inspect_err(|_| metrics.cert_reload(false))?;
        metrics.cert_reload(true);
        if let Some(t) = loaded.not_after {
            metrics.cert_expiry.set(t);
        }
        Ok(Arc::new(CertStore {
            cert_path,
            key_path,
            current: RwLock::new(loaded.key),
            last_seen: parking_lot::Mutex::new((cert, key)),
            metrics,
        }))
    }

    /// The key served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().clone()
    }

    /// Re-read both files; swap in the new pair when it changed and parses.
    pub fn reload(&self) -> Reload {
        let (cert, key) = match (read(&self.cert_path), read(&self.key_path)) {
            (Ok(c), Ok(k)) => (c, k),
            (Err(e), _) | (_, Err(e)) => {
                // Mid-rotation a file may be briefly missing; keep serving and retry next poll.
                tracing::debug!(error = %e, "serving certificate not readable; keeping the current one");
                return Reload::Unchanged;
            }
        };
        let mut last = self.last_seen.lock();
        if last.0 == cert && last.1 == key {
            return Reload::Unchanged;
        }
        let result = parse_pem(
            &cert,
            &key,
            &self.cert_path.display().to_string(),
            &self.key_path.display().to_string(),
        );
        *last = (cert, key);
        drop(last);
        match result {
            Ok(loaded) => {
                *self.current.write() = loaded.key;
                if let Some(t) = loaded.not_after {
                    self.metrics.cert_expiry.set(t);
                }
                self.metrics.cert_reload(true);
                tracing::info!(
                    cert = %self.cert_path.display(),
                    not_after = loaded.not_after,
                    "serving certificate reloaded"
                );
                Reload::Swapped
            }
            Err(e) => {
                self.metrics.cert_reload(false);
                tracing::warn!(error = %e, "new serving certificate refused; keeping the current one");
                Reload::Refused
            }
        }
    }

    /// Poll the files every `interval` until `stop` resolves.
    pub async fn poll(
        self: Arc<Self>,
        interval: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => {
                    let store = self.clone();
                    // File reads and PEM parsing are blocking work; keep them off the workers.
                    let _ = tokio::task::spawn_blocking(move || store.reload()).await;
                }
            }
        }
    }
}

/// rustls asks this for the certificate of each handshake.
#[derive(Debug)]
pub struct Resolver(pub Arc<CertStore>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}

/// The rustls server configuration: TLS 1.2 and 1.3, ALPN h2 and http/1.1, certificate from
/// the store.
pub fn server_config(store: Arc<CertStore>) -> Result<rustls::ServerConfig, TlsError> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver(store)));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn parses_ecdsa_and_ed25519_pairs() {
        for alg in [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_ED25519,
        ] {
            let (c, k) = pair(alg);
            let loaded = parse_pem(c.as_bytes(), k.as_bytes(), "c", "k").unwrap();
            assert!(loaded.not_after.is_some());
        }
    }

    #[test]
    fn refuses_mismatched_and_garbage() {
        let (c1, _) = pair(&rcgen::PKCS_ECDSA_P256_SHA256);
        let (_, k2) = pair(&rcgen::PKCS_ECDSA_P256_SHA256);
        assert!(matches!(
            parse_pem(c1.as_bytes(), k2.as_bytes(), "c", "k"),
            Err(TlsError::Mismatch { .. })
        ));
        assert!(matches!(
            parse_pem(b"nope", k2.as_bytes(), "c", "k"),
            Err(TlsError::NoCertificate { .. })
        ));
        assert!(matches!(
            parse_pem(c1.as_bytes(), b"nope", "c", "k"),
            Err(TlsError::BadKey { .. })
        ));
    }
}
