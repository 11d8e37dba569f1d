//! Self-managed webhook TLS: phi-guard creates its own CA and serving certificate, keeps them in a
//! Secret shared by all replicas, rotates them well before expiry, writes the PEM files the
//! listener hot-reloads, and keeps the ValidatingWebhookConfiguration's `caBundle` current.
//!
//! Why not Helm-generated certificates: GitOps tools re-render `genCA` on every sync (a new CA
//! each time, breaking in-flight trust), and nothing rotates them before their one-year expiry.
//!
//! Lifecycle (all times in the Secret's annotations, so no X.509 parser is needed):
//! - CA: ECDSA P-256, valid `DEFAULT_CA_VALIDITY` (5 years), rotated at 2/3 of its life. The
//!   old CA is kept as `previous-ca.crt` and stays in the `caBundle` next to the new one, so
//!   certificates signed by either verify while the API server catches up.
//! - Serving certificate for `<service>.<namespace>.svc`: valid 90 days, renewed 30 days before
//!   expiry, always signed by the current CA — but not within `DEFAULT_PROPAGATION_GRACE` of a
//!   CA rotation, so the new CA has reached the API server's `caBundle` first.
//! - Ordering in one pass: Secret written (optimistic concurrency on `resourceVersion`, so two
//!   replicas never fight: the loser re-reads and adopts), then the `caBundle` patched, then the
//!   files swapped. The bundle always trusts what is served.
//!
//! Files in `cert_dir` follow the kubelet Secret-volume layout (`tls.crt -> ..data/tls.crt`,
//! `..data` an atomically swapped symlink), so the listener's reload logic sees the same thing
//! for a mounted Secret and for self-managed TLS, and never a new certificate with an old key.
//!
//! One file per concern: `config` (settings and their defaults), `lifecycle` (generation and
//! renewal decisions, pure), `secret` (Secret encoding), `reconcile` (the Kubernetes side),
//! `files` (atomic cert-dir writes). The `serve` flags that fill [`Config`] are in `cli::tls`.

mod config;
mod files;
mod lifecycle;
mod reconcile;
mod secret;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

pub use config::Config;
pub(crate) use config::{
    DEFAULT_CA_VALIDITY, DEFAULT_CERT_DIR, DEFAULT_CHECK_INTERVAL, DEFAULT_SERVING_RENEW_BEFORE,
    DEFAULT_SERVING_VALIDITY,
};
pub use lifecycle::TlsMaterial;
pub use reconcile::{reconcile_once, Reconciled};

/// Errors of self-managed TLS. None is fatal to `run`: it logs and retries.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("writing certificate files in {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS Secret content: {0}")]
    InvalidSecret(String),
    #[error("invalid self-managed TLS configuration: {0}")]
    Config(String),
    #[error("could not settle the TLS Secret after {0} conflicting writes")]
    Contended(usize),
}

/// Result alias of this module.
pub type Result<T, E = CertError> = std::result::Result<T, E>;

/// Keep TLS current until `shutdown` resolves: [`reconcile_once`] every check interval, sooner
/// after an error or while the webhook configuration is missing. Errors are logged, never fatal
/// (the listener keeps serving the last good files); only an invalid configuration returns.
pub(crate) async fn run(
    client: kube::Client,
    cfg: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    cfg.validate()?;
    tokio::pin!(shutdown);
    let interval = cfg.check_interval;
    let mut failures: u32 = 0;
    loop {
        let delay = match reconcile_once(&client, &cfg, Timestamp::now()).await {
            Ok(o) => {
                failures = 0;
                if o.webhook_found {
                    interval
                } else {
                    interval.min(Duration::from_secs(5))
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, failures, "self-managed TLS pass failed; retrying");
                let backoff = Duration::from_secs(2u64.saturating_pow(failures.min(6)));
                interval.min(backoff)
            }
        };
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Helpers shared by the tests of the certs files.
#[cfg(test)]
mod testing {
    use k8s_openapi::jiff::Timestamp;

    pub(super) const DAY: i64 = 24 * 3600;

    /// The serving names of the default configuration.
    pub(super) fn names() -> Vec<String> {
        super::Config::new("phi-guard", "phi-guard").dns_names()
    }

    /// A fixed instant plus `secs`.
    pub(super) fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }
}
