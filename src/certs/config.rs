//! Self-managed TLS settings (plain data; the `serve` flags that fill them are in `cli::tls`) and
//! their defaults, written once here for both the flags and [`Config::new`].

use std::path::PathBuf;
use std::time::Duration;

use super::{CertError, Result};

const DAY: u64 = 24 * 3600;

/// Default CA lifetime: 5 years (rotated after 2/3 of it, ~3.3 years).
pub(crate) const DEFAULT_CA_VALIDITY: Duration = Duration::from_secs(5 * 365 * DAY);
/// Default serving certificate lifetime: 90 days.
pub(crate) const DEFAULT_SERVING_VALIDITY: Duration = Duration::from_secs(90 * DAY);
/// Default: renew the serving certificate 30 days before it expires.
pub(crate) const DEFAULT_SERVING_RENEW_BEFORE: Duration = Duration::from_secs(30 * DAY);
/// Default: after a CA rotation, wait this long before signing with the new CA, so the API
/// server has seen the new `caBundle` (webhook configurations reach it through an informer).
pub(crate) const DEFAULT_PROPAGATION_GRACE: Duration = Duration::from_secs(120);
/// Default time between two checks of the Secret, the certificates' ages and the caBundle.
pub(crate) const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(60);
/// Default directory (an emptyDir in the chart) the PEM files are written to.
pub(crate) const DEFAULT_CERT_DIR: &str = "/var/run/phi-guard/tls";

/// How long certificates live and when they are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lifetimes {
    pub ca_validity: Duration,
    pub serving_validity: Duration,
    pub serving_renew_before: Duration,
    pub propagation_grace: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            ca_validity: DEFAULT_CA_VALIDITY,
            serving_validity: DEFAULT_SERVING_VALIDITY,
            serving_renew_before: DEFAULT_SERVING_RENEW_BEFORE,
            propagation_grace: DEFAULT_PROPAGATION_GRACE,
        }
    }
}

/// Self-managed TLS settings. `phi-guard serve --self-managed-tls` builds one from its flags;
/// point the listener at `<cert_dir>/tls.crt` and `<cert_dir>/tls.key` and spawn `run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// phi-guard's own namespace (holds the TLS Secret and the Service).
    pub namespace: String,
    /// Secret (type kubernetes.io/tls) holding the CA, its key and the serving certificate.
    pub secret_name: String,
    /// ValidatingWebhookConfiguration whose webhooks' caBundle phi-guard keeps current.
    pub webhook_config_name: String,
    /// Service the API server calls; the certificate is for `<service>.<namespace>.svc`.
    pub service_name: String,
    /// Extra subject alternative names (DNS names or IP addresses).
    pub extra_sans: Vec<String>,
    /// Directory where tls.crt, tls.key and ca.crt are written.
    pub cert_dir: PathBuf,
    /// Time between checks of the Secret, the certificates' ages and the caBundle.
    pub check_interval: Duration,
    /// CA lifetime (rotated after 2/3 of it).
    pub ca_validity: Duration,
    /// Serving certificate lifetime.
    pub serving_validity: Duration,
    /// Renew the serving certificate this long before it expires.
    pub serving_renew_before: Duration,
}

impl Config {
    /// Settings with every default, for `service` in `namespace`.
    pub fn new(namespace: &str, service: &str) -> Self {
        Config {
            namespace: namespace.to_string(),
            secret_name: format!("{service}-tls"),
            webhook_config_name: service.to_string(),
            service_name: service.to_string(),
            extra_sans: Vec::new(),
            cert_dir: PathBuf::from(DEFAULT_CERT_DIR),
            check_interval: DEFAULT_CHECK_INTERVAL,
            ca_validity: DEFAULT_CA_VALIDITY,
            serving_validity: DEFAULT_SERVING_VALIDITY,
            serving_renew_before: DEFAULT_SERVING_RENEW_BEFORE,
        }
    }

    /// The serving certificate's names: `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`, then extras.
    pub(crate) fn dns_names(&self) -> Vec<String> {
        let (svc, ns) = (&self.service_name, &self.namespace);
        let mut names = vec![
            format!("{svc}.{ns}.svc"),
            format!("{svc}.{ns}"),
            svc.clone(),
        ];
        for extra in &self.extra_sans {
            if !names.contains(extra) {
                names.push(extra.clone());
            }
        }
        names
    }

    /// The lifetimes these settings ask for.
    pub(crate) fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            ca_validity: self.ca_validity,
            serving_validity: self.serving_validity,
            serving_renew_before: self.serving_renew_before,
            propagation_grace: DEFAULT_PROPAGATION_GRACE
                .min(Duration::from_secs(self.serving_renew_before.as_secs() / 2)),
        }
    }

    /// Reject settings that could never produce a working certificate.
    pub(crate) fn validate(&self) -> Result<()> {
        let l = self.lifetimes();
        let bad = |m: &str| Err(CertError::Config(m.to_string()));
        if self.namespace.is_empty() || self.service_name.is_empty() {
            return bad("--namespace and --service-name must not be empty");
        }
        if self.secret_name.is_empty() || self.webhook_config_name.is_empty() {
            return bad("--tls-secret-name and --webhook-config-name must not be empty");
        }
        if l.serving_validity.is_zero() || l.serving_renew_before >= l.serving_validity {
            return bad("the serving certificate's renew-before must be shorter than its validity");
        }
        if l.ca_validity <= l.serving_validity {
            return bad("the CA must outlive the serving certificate");
        }
        if self.check_interval.is_zero() || self.check_interval >= l.serving_renew_before {
            return bad("the check interval must be shorter than the serving renew-before window");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_the_service_dns_name_the_api_server_uses() {
        let mut c = Config::new("guard", "pg");
        c.extra_sans = vec!["127.0.0.1".into(), "pg".into()];
        assert_eq!(
            c.dns_names(),
            ["pg.guard.svc", "pg.guard", "pg", "127.0.0.1"]
        );
    }

    #[test]
    fn defaults_validate_and_bad_lifetimes_do_not() {
        assert!(Config::new("a", "b").validate().is_ok());
        let mut c = Config::new("a", "b");
        c.serving_renew_before = c.serving_validity;
        assert!(c.validate().is_err());
        let mut c = Config::new("a", "b");
        c.ca_validity = c.serving_validity;
        assert!(c.validate().is_err());
        let mut c = Config::new("", "b");
        c.namespace.clear();
        assert!(c.validate().is_err());
        let mut c = Config::new("a", "b");
        c.check_interval = Duration::ZERO;
        assert!(c.validate().is_err());
        let mut c = Config::new("a", "b");
        c.check_interval = c.serving_renew_before;
        assert!(c.validate().is_err());
    }
}
