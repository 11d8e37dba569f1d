//! `serve` flags for the serving certificate: the files to serve ([`TlsArgs`]) and self-managed
//! TLS ([`SelfManagedTlsArgs`], which becomes a plain [`certs::Config`]).

use std::path::PathBuf;

use super::duration::HumanDuration;
use crate::certs;

/// Default of `--namespace`.
const DEFAULT_NAMESPACE: &str = "phi-guard";
/// Default of `--service-name` and `--webhook-config-name`.
const DEFAULT_SERVICE_NAME: &str = "phi-guard";
/// Default of `--tls-secret-name`.
const DEFAULT_SECRET_NAME: &str = "phi-guard-tls";

/// The serving certificate (reloaded without a restart when the files change).
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// PEM certificate chain, leaf first (e.g. the tls.crt of a mounted Secret). Required unless
    /// --self-managed-tls (then default: <cert-dir>/tls.crt).
    #[arg(long, env = "PHI_GUARD_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key: ECDSA, RSA or Ed25519; PKCS#8, PKCS#1 or SEC1 (e.g. tls.key). Required
    /// unless --self-managed-tls (then default: <cert-dir>/tls.key).
    #[arg(long, env = "PHI_GUARD_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// How often the certificate files are re-read for rotation.
    #[arg(long, env = "PHI_GUARD_TLS_RELOAD_INTERVAL", default_value_t = HumanDuration(crate::webhook::DEFAULT_CERT_RELOAD_INTERVAL))]
    pub tls_reload_interval: HumanDuration,
}

/// Self-managed TLS: phi-guard creates, rotates and publishes its own CA and serving certificate
/// (see `certs`). Converted into a [`certs::Config`] when `--self-managed-tls` is on.
#[derive(Debug, Clone, clap::Args)]
pub struct SelfManagedTlsArgs {
    /// phi-guard creates, rotates and publishes its own CA and serving certificate.
    #[arg(long = "self-managed-tls", env = "PHI_GUARD_SELF_MANAGED_TLS")]
    pub enabled: bool,
    /// phi-guard's own namespace (holds the TLS Secret and the Service).
    #[arg(long, env = "PHI_GUARD_NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// Secret (type kubernetes.io/tls) holding the CA, its key and the serving certificate.
    #[arg(long = "tls-secret-name", env = "PHI_GUARD_TLS_SECRET_NAME", default_value = DEFAULT_SECRET_NAME)]
    pub secret_name: String,
    /// ValidatingWebhookConfiguration whose webhooks' caBundle phi-guard keeps current.
    #[arg(long, env = "PHI_GUARD_WEBHOOK_CONFIG_NAME", default_value = DEFAULT_SERVICE_NAME)]
    pub webhook_config_name: String,
    /// Service the API server calls; the certificate is for `<service>.<namespace>.svc`.
    #[arg(long, env = "PHI_GUARD_SERVICE_NAME", default_value = DEFAULT_SERVICE_NAME)]
    pub service_name: String,
    /// Extra subject alternative names (DNS names or IP addresses), e.g. 127.0.0.1 for a webhook
    /// reached by URL.
    #[arg(
        long = "tls-extra-san",
        env = "PHI_GUARD_TLS_EXTRA_SANS",
        value_delimiter = ','
    )]
    pub extra_sans: Vec<String>,
    /// Directory (an emptyDir) where tls.crt, tls.key and ca.crt are written.
    #[arg(long, env = "PHI_GUARD_CERT_DIR", default_value = certs::DEFAULT_CERT_DIR)]
    pub cert_dir: PathBuf,
    /// Time between checks of the Secret, the certificates' ages and the caBundle (e.g. 60s).
    #[arg(
        long,
        env = "PHI_GUARD_TLS_CHECK_INTERVAL",
        default_value_t = HumanDuration(certs::DEFAULT_CHECK_INTERVAL)
    )]
    pub tls_check_interval: HumanDuration,
    /// CA lifetime (e.g. 1825d); the CA is rotated after 2/3 of it.
    #[arg(
        long,
        env = "PHI_GUARD_TLS_CA_VALIDITY",
        default_value_t = HumanDuration(certs::DEFAULT_CA_VALIDITY)
    )]
    pub tls_ca_validity: HumanDuration,
    /// Serving certificate lifetime (e.g. 90d).
    #[arg(
        long,
        env = "PHI_GUARD_TLS_SERVING_VALIDITY",
        default_value_t = HumanDuration(certs::DEFAULT_SERVING_VALIDITY)
    )]
    pub tls_serving_validity: HumanDuration,
    /// Renew the serving certificate this long before it expires (e.g. 30d).
    #[arg(
        long,
        env = "PHI_GUARD_TLS_SERVING_RENEW_BEFORE",
        default_value_t = HumanDuration(certs::DEFAULT_SERVING_RENEW_BEFORE)
    )]
    pub tls_serving_renew_before: HumanDuration,
}

impl SelfManagedTlsArgs {
    /// The self-managed TLS settings, when `--self-managed-tls` is on.
    pub fn config(&self) -> Option<certs::Config> {
        self.enabled.then(|| certs::Config::from(self))
    }
}

impl From<&SelfManagedTlsArgs> for certs::Config {
    fn from(a: &SelfManagedTlsArgs) -> Self {
        certs::Config {
            namespace: a.namespace.clone(),
            secret_name: a.secret_name.clone(),
            webhook_config_name: a.webhook_config_name.clone(),
            service_name: a.service_name.clone(),
            extra_sans: a.extra_sans.clone(),
            cert_dir: a.cert_dir.clone(),
            check_interval: a.tls_check_interval.into(),
            ca_validity: a.tls_ca_validity.into(),
            serving_validity: a.tls_serving_validity.into(),
            serving_renew_before: a.tls_serving_renew_before.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        tls: SelfManagedTlsArgs,
    }

    fn parse(args: &[&str]) -> Result<SelfManagedTlsArgs, clap::Error> {
        Flags::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).map(|f| f.tls)
    }

    #[test]
    fn flag_defaults_are_the_config_defaults() {
        let args = parse(&["--self-managed-tls"]).expect("defaults parse");
        assert_eq!(
            args.config(),
            Some(certs::Config::new(DEFAULT_NAMESPACE, DEFAULT_SERVICE_NAME))
        );
        assert_eq!(parse(&[]).expect("parse").config(), None);
    }

    #[test]
    fn certificate_durations_take_the_humane_form() {
        let args = parse(&[
            "--self-managed-tls",
            "--tls-check-interval=30s",
            "--tls-ca-validity=400d",
            "--tls-serving-validity=10d",
            "--tls-serving-renew-before=72h",
        ])
        .expect("parse");
        let cfg = args.config().expect("enabled");
        assert_eq!(cfg.check_interval, Duration::from_secs(30));
        assert_eq!(cfg.ca_validity, Duration::from_secs(400 * 86400));
        assert_eq!(cfg.serving_validity, Duration::from_secs(10 * 86400));
        assert_eq!(cfg.serving_renew_before, Duration::from_secs(3 * 86400));
        assert!(cfg.validate().is_ok());
        // The old `*-seconds` flags are gone: one duration form across the CLI.
        assert!(parse(&["--tls-ca-validity-seconds=100"]).is_err());
        assert!(parse(&["--tls-ca-validity=5w"]).is_err());
    }
}
