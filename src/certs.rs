//! Self-managed webhook TLS: phi-guard creates its own CA and serving certificate, keeps them in a
//! Secret shared by all replicas, rotates them well before expiry, writes the PEM files the
//! listener hot-reloads, and keeps the ValidatingWebhookConfiguration's `caBundle` current.
//!
//! Why not Helm-generated certificates: GitOps tools re-render `genCA` on every sync (a new CA
//! each time, breaking in-flight trust), and nothing rotates them before their one-year expiry.
//!
//! Lifecycle (all times in the Secret's annotations, so no X.509 parser is needed):
//! - CA: ECDSA P-256, valid [`DEFAULT_CA_VALIDITY`] (5 years), rotated at 2/3 of its life. The
//!   old CA is kept as `previous-ca.crt` and stays in the `caBundle` next to the new one, so
//!   certificates signed by either verify while the API server catches up.
//! - Serving certificate for `<service>.<namespace>.svc`: valid 90 days, renewed 30 days before
//!   expiry, always signed by the current CA — but not within [`DEFAULT_PROPAGATION_GRACE`] of a
//!   CA rotation, so the new CA has reached the API server's `caBundle` first.
//! - Ordering in one pass: Secret written (optimistic concurrency on `resourceVersion`, so two
//!   replicas never fight: the loser re-reads and adopts), then the `caBundle` patched, then the
//!   files swapped. The bundle always trusts what is served.
//!
//! Files in `cert_dir` follow the kubelet Secret-volume layout (`tls.crt -> ..data/tls.crt`,
//! `..data` an atomically swapped symlink), so the listener's reload logic sees the same thing
//! for a mounted Secret and for self-managed TLS, and never a new certificate with an old key.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// Default CA lifetime: 5 years (rotated after 2/3 of it, ~3.3 years).
pub const DEFAULT_CA_VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);
/// Default serving certificate lifetime: 90 days.
pub const DEFAULT_SERVING_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);
/// Default: renew the serving certificate 30 days before it expires.
pub const DEFAULT_SERVING_RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default: after a CA rotation, wait this long before signing with the new CA, so the API
/// server has seen the new `caBundle` (webhook configurations reach it through an informer).
pub const DEFAULT_PROPAGATION_GRACE: Duration = Duration::from_secs(120);
/// Certificates start this long in the past, to tolerate clock skew between nodes.
const BACKDATE_SECS: i64 = 3600;

/// Secret data keys.
pub const KEY_TLS_CRT: &str = "tls.crt";
pub const KEY_TLS_KEY: &str = "tls.key";
pub const KEY_CA_CRT: &str = "ca.crt";
pub const KEY_CA_KEY: &str = "ca.key";
pub const KEY_PREVIOUS_CA_CRT: &str = "previous-ca.crt";

/// Secret annotations carrying what an X.509 parser would otherwise have to read.
pub const ANN_CA_GENERATION: &str = "phiguard.io/ca-generation";
pub const ANN_CA_ISSUED_AT: &str = "phiguard.io/ca-issued-at";
pub const ANN_CA_NOT_AFTER: &str = "phiguard.io/ca-not-after";
pub const ANN_PREVIOUS_CA_NOT_AFTER: &str = "phiguard.io/previous-ca-not-after";
pub const ANN_SERVING_NOT_AFTER: &str = "phiguard.io/serving-not-after";
pub const ANN_SERVING_CA_GENERATION: &str = "phiguard.io/serving-ca-generation";
pub const ANN_SERVING_DNS_NAMES: &str = "phiguard.io/serving-names";

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

/// Self-managed TLS settings; each field is a `phi-guard serve` flag (and `PHI_GUARD_*` env var).
/// Flatten this into `ServeArgs`; when `enabled`, point `--tls-cert-file`/`--tls-key-file` at
/// `<cert-dir>/tls.crt` and `<cert-dir>/tls.key` and spawn [`run`].
#[derive(Debug, Clone, clap::Args)]
pub struct SelfManagedTls {
    /// phi-guard creates, rotates and publishes its own CA and serving certificate.
    #[arg(long = "self-managed-tls", env = "PHI_GUARD_SELF_MANAGED_TLS")]
    pub enabled: bool,
    /// phi-guard's own namespace (holds the TLS Secret and the Service).
    #[arg(
        long = "namespace",
        env = "PHI_GUARD_NAMESPACE",
        default_value = "phi-guard"
    )]
    pub namespace: String,
    /// Secret (type kubernetes.io/tls) holding the CA, its key and the serving certificate.
    #[arg(
        long = "tls-secret-name",
        env = "PHI_GUARD_TLS_SECRET_NAME",
        default_value = "phi-guard-tls"
    )]
    pub secret_name: String,
    /// ValidatingWebhookConfiguration whose webhooks' caBundle phi-guard keeps current.
    #[arg(
        long = "webhook-config-name",
        env = "PHI_GUARD_WEBHOOK_CONFIG_NAME",
        default_value = "phi-guard"
    )]
    pub webhook_config_name: String,
    /// Service the API server calls; the certificate is for `<service>.<namespace>.svc`.
    #[arg(
        long = "service-name",
        env = "PHI_GUARD_SERVICE_NAME",
        default_value = "phi-guard"
    )]
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
    #[arg(
        long = "cert-dir",
        env = "PHI_GUARD_CERT_DIR",
        default_value = "/var/run/phi-guard/tls"
    )]
    pub cert_dir: PathBuf,
    /// Seconds between checks of the Secret, the certificates' ages and the caBundle.
    #[arg(
        long = "tls-check-interval-seconds",
        env = "PHI_GUARD_TLS_CHECK_INTERVAL_SECONDS",
        default_value_t = 60
    )]
    pub check_interval_secs: u64,
    /// CA lifetime in seconds (rotated after 2/3 of it). Default 5 years.
    #[arg(
        long = "tls-ca-validity-seconds",
        env = "PHI_GUARD_TLS_CA_VALIDITY_SECONDS",
        default_value_t = DEFAULT_CA_VALIDITY.as_secs()
    )]
    pub ca_validity_secs: u64,
    /// Serving certificate lifetime in seconds. Default 90 days.
    #[arg(
        long = "tls-serving-validity-seconds",
        env = "PHI_GUARD_TLS_SERVING_VALIDITY_SECONDS",
        default_value_t = DEFAULT_SERVING_VALIDITY.as_secs()
    )]
    pub serving_validity_secs: u64,
    /// Renew the serving certificate this many seconds before it expires. Default 30 days.
    #[arg(
        long = "tls-serving-renew-before-seconds",
        env = "PHI_GUARD_TLS_SERVING_RENEW_BEFORE_SECONDS",
        default_value_t = DEFAULT_SERVING_RENEW_BEFORE.as_secs()
    )]
    pub serving_renew_before_secs: u64,
}

impl SelfManagedTls {
    /// Settings with every default, for `service` in `namespace`.
    pub fn new(namespace: &str, service: &str) -> Self {
        SelfManagedTls {
            enabled: true,
            namespace: namespace.to_string(),
            secret_name: format!("{service}-tls"),
            webhook_config_name: service.to_string(),
            service_name: service.to_string(),
            extra_sans: Vec::new(),
            cert_dir: PathBuf::from("/var/run/phi-guard/tls"),
            check_interval_secs: 60,
            ca_validity_secs: DEFAULT_CA_VALIDITY.as_secs(),
            serving_validity_secs: DEFAULT_SERVING_VALIDITY.as_secs(),
            serving_renew_before_secs: DEFAULT_SERVING_RENEW_BEFORE.as_secs(),
        }
    }

    /// The serving certificate's names: `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`, then extras.
    pub fn dns_names(&self) -> Vec<String> {
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
    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            ca_validity: Duration::from_secs(self.ca_validity_secs),
            serving_validity: Duration::from_secs(self.serving_validity_secs),
            serving_renew_before: Duration::from_secs(self.serving_renew_before_secs),
            propagation_grace: DEFAULT_PROPAGATION_GRACE
                .min(Duration::from_secs(self.serving_renew_before_secs / 2)),
        }
    }

    /// Reject settings that could never produce a working certificate.
    pub fn validate(&self) -> Result<()> {
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
        if self.check_interval_secs == 0
            || self.check_interval_secs >= l.serving_renew_before.as_secs()
        {
            return bad("the check interval must be shorter than the serving renew-before window");
        }
        Ok(())
    }
}

/// How long certificates live and when they are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
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

/// The CA, its predecessor and the serving certificate: what the Secret holds.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsMaterial {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    /// 1 for the first CA, +1 per rotation (part of the CA's subject).
    pub ca_generation: u64,
    pub ca_issued_at: Timestamp,
    pub ca_not_after: Timestamp,
    pub previous_ca_cert_pem: Option<String>,
    pub previous_ca_not_after: Option<Timestamp>,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub serving_not_after: Timestamp,
    /// The generation of the CA that signed the serving certificate.
    pub serving_ca_generation: u64,
    pub serving_dns_names: Vec<String>,
}

impl std::fmt::Debug for TlsMaterial {
    // Never print private keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_generation", &self.ca_generation)
            .field("ca_issued_at", &self.ca_issued_at)
            .field("ca_not_after", &self.ca_not_after)
            .field("has_previous_ca", &self.previous_ca_cert_pem.is_some())
            .field("serving_not_after", &self.serving_not_after)
            .field("serving_ca_generation", &self.serving_ca_generation)
            .field("serving_dns_names", &self.serving_dns_names)
            .finish_non_exhaustive()
    }
}

/// What the material needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Nothing to do.
    None,
    /// The CA is past 2/3 of its life (or expired): make a new CA, keep the old as previous.
    RotateCa,
    /// The serving certificate is due (expiry window, other names, or a CA no longer trusted).
    RenewServing,
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    Timestamp::from_second(t.as_second().saturating_add(secs)).unwrap_or(Timestamp::MAX)
}

fn sub(t: Timestamp, secs: i64) -> Timestamp {
    Timestamp::from_second(t.as_second().saturating_sub(secs)).unwrap_or(Timestamp::MIN)
}

fn ca_params(generation: u64) -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    // The subject is rebuilt from the generation to sign with a stored CA (no X.509 parser):
    // keep it deterministic.
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "phi-guard");
    dn.push(
        DnType::CommonName,
        format!("phi-guard webhook CA {generation}"),
    );
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

fn new_ca(generation: u64, now: Timestamp, l: &Lifetimes) -> Result<(String, String, Timestamp)> {
    let key = KeyPair::generate()?;
    let mut p = ca_params(generation)?;
    let not_after = add(now, l.ca_validity);
    p.not_before = std::time::SystemTime::from(sub(now, BACKDATE_SECS)).into();
    p.not_after = std::time::SystemTime::from(not_after).into();
    let cert = p.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem(), not_after))
}

/// Sign a serving certificate for `names` with the stored CA of `generation`.
fn new_serving(
    ca_key_pem: &str,
    ca_generation: u64,
    ca_not_after: Timestamp,
    names: &[String],
    now: Timestamp,
    l: &Lifetimes,
) -> Result<(String, String, Timestamp)> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let issuer = Issuer::new(ca_params(ca_generation)?, ca_key);
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(names.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "phi-guard");
    dn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_else(|| "phi-guard".into()),
    );
    p.distinguished_name = dn;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    // Never outlive the issuing CA.
    let not_after = add(now, l.serving_validity).min(ca_not_after);
    p.not_before = std::time::SystemTime::from(sub(now, BACKDATE_SECS)).into();
    p.not_after = std::time::SystemTime::from(not_after).into();
    let cert = p.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem(), not_after))
}

/// A brand-new CA (generation 1) and serving certificate for `names`.
pub fn generate(names: &[String], now: Timestamp, l: &Lifetimes) -> Result<TlsMaterial> {
    generate_after(None, names, now, l)
}

/// New material, keeping an old CA certificate (if any) trusted as the previous CA.
fn generate_after(
    old: Option<(u64, String, Option<Timestamp>)>,
    names: &[String],
    now: Timestamp,
    l: &Lifetimes,
) -> Result<TlsMaterial> {
    let generation = old.as_ref().map_or(1, |(g, _, _)| g.saturating_add(1));
    let (ca_cert_pem, ca_key_pem, ca_not_after) = new_ca(generation, now, l)?;
    let (serving_cert_pem, serving_key_pem, serving_not_after) =
        new_serving(&ca_key_pem, generation, ca_not_after, names, now, l)?;
    let (previous_ca_cert_pem, previous_ca_not_after) = match old {
        Some((_, pem, not_after)) if pem.contains("BEGIN CERTIFICATE") => (Some(pem), not_after),
        _ => (None, None),
    };
    Ok(TlsMaterial {
        ca_cert_pem,
        ca_key_pem,
        ca_generation: generation,
        ca_issued_at: now,
        ca_not_after,
        previous_ca_cert_pem,
        previous_ca_not_after,
        serving_cert_pem,
        serving_key_pem,
        serving_not_after,
        serving_ca_generation: generation,
        serving_dns_names: names.to_vec(),
    })
}

impl TlsMaterial {
    /// What is due at `now` for a serving certificate covering `names`.
    pub fn needs_renewal(&self, names: &[String], now: Timestamp, l: &Lifetimes) -> Renewal {
        let ca_life = self.ca_not_after.as_second() - self.ca_issued_at.as_second();
        let ca_rotate_at = self.ca_issued_at.as_second() + ca_life.max(0) * 2 / 3;
        if now.as_second() >= ca_rotate_at || now >= self.ca_not_after {
            return Renewal::RotateCa;
        }
        let trusted_signer = self.serving_ca_generation == self.ca_generation
            || (self.previous_ca_cert_pem.is_some()
                && self.serving_ca_generation.saturating_add(1) == self.ca_generation
                && self.previous_ca_not_after.is_none_or(|t| now < t));
        let unusable = now >= self.serving_not_after || !trusted_signer;
        let due = unusable
            || now
                >= sub(
                    self.serving_not_after,
                    i64::try_from(l.serving_renew_before.as_secs()).unwrap_or(i64::MAX),
                )
            || self.serving_dns_names != names
            || self.serving_ca_generation != self.ca_generation;
        if !due {
            return Renewal::None;
        }
        // Give a fresh CA time to reach the API server's caBundle, unless what is served is
        // already broken.
        let ca_settled = now >= add(self.ca_issued_at, l.propagation_grace);
        if ca_settled || unusable || self.serving_dns_names != names {
            Renewal::RenewServing
        } else {
            Renewal::None
        }
    }

    /// A new CA; the current one becomes the previous CA. The serving certificate is kept (its
    /// signer stays in the bundle) and renewed by a later pass, after the grace period.
    pub fn rotate_ca(&self, now: Timestamp, l: &Lifetimes) -> Result<TlsMaterial> {
        let generation = self.ca_generation.saturating_add(1);
        let (ca_cert_pem, ca_key_pem, ca_not_after) = new_ca(generation, now, l)?;
        let mut next = TlsMaterial {
            ca_cert_pem,
            ca_key_pem,
            ca_generation: generation,
            ca_issued_at: now,
            ca_not_after,
            previous_ca_cert_pem: Some(self.ca_cert_pem.clone()),
            previous_ca_not_after: Some(self.ca_not_after),
            ..self.clone()
        };
        // A serving certificate signed by the CA that just fell out of the bundle (or expired)
        // must be replaced now: nothing would trust it anyway.
        if self.serving_ca_generation != self.ca_generation || now >= self.serving_not_after {
            next = next.renew_serving(&self.serving_dns_names, now, l)?;
        }
        Ok(next)
    }

    /// A new serving certificate for `names`, signed by the current CA.
    pub fn renew_serving(
        &self,
        names: &[String],
        now: Timestamp,
        l: &Lifetimes,
    ) -> Result<TlsMaterial> {
        let (serving_cert_pem, serving_key_pem, serving_not_after) = new_serving(
            &self.ca_key_pem,
            self.ca_generation,
            self.ca_not_after,
            names,
            now,
            l,
        )?;
        Ok(TlsMaterial {
            serving_cert_pem,
            serving_key_pem,
            serving_not_after,
            serving_ca_generation: self.ca_generation,
            serving_dns_names: names.to_vec(),
            ..self.clone()
        })
    }

    /// One step forward: `Some(new material)` when something was due, `None` when current.
    pub fn advance(
        &self,
        names: &[String],
        now: Timestamp,
        l: &Lifetimes,
    ) -> Result<Option<TlsMaterial>> {
        match self.needs_renewal(names, now, l) {
            Renewal::None => Ok(None),
            Renewal::RotateCa => self.rotate_ca(now, l).map(Some),
            Renewal::RenewServing => self.renew_serving(names, now, l).map(Some),
        }
    }

    /// The `caBundle`: the current CA, then the previous CA while it is still valid.
    pub fn bundle(&self, now: Timestamp) -> String {
        let mut out = ensure_newline(&self.ca_cert_pem);
        if let Some(prev) = &self.previous_ca_cert_pem {
            if self.previous_ca_not_after.is_none_or(|t| now < t) {
                out.push_str(&ensure_newline(prev));
            }
        }
        out
    }

    /// Secret data and annotations for this material.
    pub fn to_secret_parts(&self) -> (BTreeMap<String, ByteString>, BTreeMap<String, String>) {
        let b = |s: &str| ByteString(s.as_bytes().to_vec());
        let mut data = BTreeMap::from([
            (KEY_TLS_CRT.to_string(), b(&self.serving_cert_pem)),
            (KEY_TLS_KEY.to_string(), b(&self.serving_key_pem)),
            (KEY_CA_CRT.to_string(), b(&self.ca_cert_pem)),
            (KEY_CA_KEY.to_string(), b(&self.ca_key_pem)),
        ]);
        if let Some(prev) = &self.previous_ca_cert_pem {
            data.insert(KEY_PREVIOUS_CA_CRT.to_string(), b(prev));
        }
        let mut ann = BTreeMap::from([
            (
                ANN_CA_GENERATION.to_string(),
                self.ca_generation.to_string(),
            ),
            (ANN_CA_ISSUED_AT.to_string(), self.ca_issued_at.to_string()),
            (ANN_CA_NOT_AFTER.to_string(), self.ca_not_after.to_string()),
            (
                ANN_SERVING_NOT_AFTER.to_string(),
                self.serving_not_after.to_string(),
            ),
            (
                ANN_SERVING_CA_GENERATION.to_string(),
                self.serving_ca_generation.to_string(),
            ),
            (
                ANN_SERVING_DNS_NAMES.to_string(),
                self.serving_dns_names.join(","),
            ),
        ]);
        if let Some(t) = self.previous_ca_not_after {
            ann.insert(ANN_PREVIOUS_CA_NOT_AFTER.to_string(), t.to_string());
        }
        (data, ann)
    }

    /// Read material back from a Secret written by [`TlsMaterial::to_secret_parts`].
    pub fn from_secret(secret: &Secret) -> Result<TlsMaterial> {
        let (no_data, no_ann) = (BTreeMap::new(), BTreeMap::new());
        let data = secret.data.as_ref().unwrap_or(&no_data);
        let ann = secret.metadata.annotations.as_ref().unwrap_or(&no_ann);
        let text = |k: &str| -> Result<String> {
            let bytes = data
                .get(k)
                .filter(|v| !v.0.is_empty())
                .ok_or_else(|| CertError::InvalidSecret(format!("missing data key {k}")))?;
            String::from_utf8(bytes.0.clone())
                .map_err(|_| CertError::InvalidSecret(format!("data key {k} is not PEM text")))
        };
        let note = |k: &str| -> Result<&String> {
            ann.get(k)
                .ok_or_else(|| CertError::InvalidSecret(format!("missing annotation {k}")))
        };
        let time = |k: &str| -> Result<Timestamp> {
            note(k)?
                .parse()
                .map_err(|e| CertError::InvalidSecret(format!("annotation {k}: {e}")))
        };
        let number = |k: &str| -> Result<u64> {
            note(k)?
                .parse()
                .map_err(|e| CertError::InvalidSecret(format!("annotation {k}: {e}")))
        };
        let previous_ca_cert_pem = text(KEY_PREVIOUS_CA_CRT).ok();
        let previous_ca_not_after = match ann.get(ANN_PREVIOUS_CA_NOT_AFTER) {
            Some(_) => Some(time(ANN_PREVIOUS_CA_NOT_AFTER)?),
            None => None,
        };
        let m = TlsMaterial {
            ca_cert_pem: text(KEY_CA_CRT)?,
            ca_key_pem: text(KEY_CA_KEY)?,
            ca_generation: number(ANN_CA_GENERATION)?,
            ca_issued_at: time(ANN_CA_ISSUED_AT)?,
            ca_not_after: time(ANN_CA_NOT_AFTER)?,
            previous_ca_cert_pem,
            previous_ca_not_after,
            serving_cert_pem: text(KEY_TLS_CRT)?,
            serving_key_pem: text(KEY_TLS_KEY)?,
            serving_not_after: time(ANN_SERVING_NOT_AFTER)?,
            serving_ca_generation: number(ANN_SERVING_CA_GENERATION)?,
            serving_dns_names: note(ANN_SERVING_DNS_NAMES)?
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        };
        // The keys must at least parse, or signing would fail on every pass.
        KeyPair::from_pem(&m.ca_key_pem)
            .map_err(|e| CertError::InvalidSecret(format!("{KEY_CA_KEY}: {e}")))?;
        KeyPair::from_pem(&m.serving_key_pem)
            .map_err(|e| CertError::InvalidSecret(format!("{KEY_TLS_KEY}: {e}")))?;
        Ok(m)
    }
}

fn ensure_newline(pem: &str) -> String {
    let mut s = pem.to_string();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// What one reconcile pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// This replica wrote the Secret (created or renewed something).
    pub secret_written: bool,
    /// The webhook configuration exists (it is installed after the Deployment).
    pub webhook_found: bool,
    /// This replica patched the caBundle.
    pub webhook_patched: bool,
    /// The files in the cert dir changed.
    pub files_written: bool,
    /// When the served certificate expires (for the cert-expiry metric).
    pub serving_not_after: Timestamp,
}

const MAX_CONFLICTS: usize = 5;

/// One pass: settle the Secret, publish the caBundle, then write the files. Call it before
/// starting the listener so the certificate files exist; [`run`] repeats it.
pub async fn reconcile_once(
    client: &kube::Client,
    cfg: &SelfManagedTls,
    now: Timestamp,
) -> Result<Outcome> {
    cfg.validate()?;
    let names = cfg.dns_names();
    let l = cfg.lifetimes();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &cfg.namespace);

    let mut settled = None;
    for _ in 0..MAX_CONFLICTS {
        match settle_secret(&secrets, cfg, &names, now, &l).await {
            Ok(done) => {
                settled = Some(done);
                break;
            }
            Err(CertError::Kube(kube::Error::Api(s)))
                if s.is_conflict() || s.is_already_exists() =>
            {
                // Another replica won the write: re-read and adopt what it wrote.
                tracing::debug!(secret = %cfg.secret_name, "TLS Secret changed concurrently; re-reading");
            }
            Err(e) => return Err(e),
        }
    }
    let (material, secret_written) = settled.ok_or(CertError::Contended(MAX_CONFLICTS))?;

    let bundle = material.bundle(now);
    let (webhook_found, webhook_patched) =
        publish_ca_bundle(client, &cfg.webhook_config_name, bundle.as_bytes()).await?;

    let files = [
        (KEY_TLS_CRT, material.serving_cert_pem.clone()),
        (KEY_TLS_KEY, material.serving_key_pem.clone()),
        (KEY_CA_CRT, bundle),
    ];
    let dir = cfg.cert_dir.clone();
    let files_written = tokio::task::spawn_blocking(move || write_cert_dir(&dir, &files))
        .await
        .map_err(|e| CertError::Io {
            path: cfg.cert_dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })??;
    if secret_written || webhook_patched || files_written {
        tracing::info!(
            ca_generation = material.ca_generation,
            serving_not_after = %material.serving_not_after,
            secret_written, webhook_patched, files_written,
            "self-managed TLS updated"
        );
    }
    Ok(Outcome {
        secret_written,
        webhook_found,
        webhook_patched,
        files_written,
        serving_not_after: material.serving_not_after,
    })
}

/// Read the Secret, create or advance the material, write it back with the read
/// resourceVersion. Returns the material in force and whether this call wrote it.
async fn settle_secret(
    secrets: &Api<Secret>,
    cfg: &SelfManagedTls,
    names: &[String],
    now: Timestamp,
    l: &Lifetimes,
) -> Result<(TlsMaterial, bool)> {
    let Some(existing) = secrets.get_opt(&cfg.secret_name).await? else {
        let material = generate(names, now, l)?;
        let secret = secret_for(cfg, &material, None);
        secrets.create(&PostParams::default(), &secret).await?;
        return Ok((material, true));
    };
    let next = match TlsMaterial::from_secret(&existing) {
        Ok(current) => match current.advance(names, now, l)? {
            None => return Ok((current, false)),
            Some(next) => next,
        },
        Err(e) => {
            // Unreadable (hand-edited, truncated): start over, still trusting its old CA.
            tracing::warn!(secret = %cfg.secret_name, error = %e, "TLS Secret unusable; generating a new CA");
            let old_ca = existing
                .data
                .as_ref()
                .and_then(|d| d.get(KEY_CA_CRT))
                .and_then(|b| String::from_utf8(b.0.clone()).ok());
            let old_gen = existing
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANN_CA_GENERATION))
                .and_then(|g| g.parse::<u64>().ok())
                .unwrap_or(0);
            generate_after(old_ca.map(|pem| (old_gen, pem, None)), names, now, l)?
        }
    };
    let secret = secret_for(cfg, &next, Some(&existing));
    secrets
        .replace(&cfg.secret_name, &PostParams::default(), &secret)
        .await?;
    Ok((next, true))
}

fn secret_for(cfg: &SelfManagedTls, m: &TlsMaterial, existing: Option<&Secret>) -> Secret {
    let (data, ours) = m.to_secret_parts();
    let mut annotations = existing
        .and_then(|s| s.metadata.annotations.clone())
        .unwrap_or_default();
    annotations.retain(|k, _| !k.starts_with("phiguard.io/"));
    annotations.extend(ours);
    let mut labels = existing
        .and_then(|s| s.metadata.labels.clone())
        .unwrap_or_default();
    labels.insert("app.kubernetes.io/managed-by".into(), "phi-guard".into());
    labels.insert("app.kubernetes.io/component".into(), "webhook-tls".into());
    Secret {
        metadata: ObjectMeta {
            name: Some(cfg.secret_name.clone()),
            namespace: Some(cfg.namespace.clone()),
            // Optimistic concurrency: the replace fails with 409 if another replica wrote first.
            resource_version: existing.and_then(|s| s.metadata.resource_version.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    }
}

/// Set `caBundle` on every webhook of the configuration that does not have it yet.
/// Returns (configuration found, patched).
async fn publish_ca_bundle(
    client: &kube::Client,
    name: &str,
    bundle: &[u8],
) -> Result<(bool, bool)> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let Some(vwc) = api.get_opt(name).await? else {
        tracing::warn!(webhook_config = %name, "ValidatingWebhookConfiguration not found yet; caBundle not published");
        return Ok((false, false));
    };
    let Some(patch) = ca_bundle_patch(&vwc, bundle) else {
        return Ok((true, false));
    };
    // Strategic merge: webhooks are merged by name, so only caBundle changes and no concurrent
    // edit of other fields is lost. Idempotent, so replicas may race freely.
    api.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await?;
    Ok((true, true))
}

/// The strategic-merge patch that sets `bundle` on every webhook lacking it; `None` if all
/// webhooks already carry it.
pub fn ca_bundle_patch(
    vwc: &ValidatingWebhookConfiguration,
    bundle: &[u8],
) -> Option<serde_json::Value> {
    let encoded = serde_json::to_value(ByteString(bundle.to_vec())).ok()?;
    let stale: Vec<serde_json::Value> = vwc
        .webhooks
        .iter()
        .flatten()
        .filter(|w| w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) != Some(bundle))
        .map(|w| {
            serde_json::json!({
                "name": w.name,
                "clientConfig": { "caBundle": encoded },
            })
        })
        .collect();
    if stale.is_empty() {
        None
    } else {
        Some(serde_json::json!({ "webhooks": stale }))
    }
}

/// Write `files` into `dir` the way the kubelet fills a Secret volume: a fresh `..<stamp>`
/// directory, an atomic rename of the `..data` symlink onto it, and `name -> ..data/name`
/// links. Returns false (and writes nothing) when the content is already there.
pub fn write_cert_dir(dir: &Path, files: &[(&str, String)]) -> Result<bool> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertError::Io { path, source }
    };
    let data_link = dir.join("..data");
    let unchanged = files.iter().all(|(name, content)| {
        std::fs::read_to_string(data_link.join(name)).is_ok_and(|old| &old == content)
    });
    if unchanged {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let stamp = format!(
        "..{}_{}",
        Timestamp::now().as_nanosecond(),
        std::process::id()
    );
    let fresh = dir.join(&stamp);
    std::fs::create_dir(&fresh).map_err(io(&fresh))?;
    for (name, content) in files {
        let path = fresh.join(name);
        write_private(&path, content.as_bytes()).map_err(io(&path))?;
    }
    let old_target = std::fs::read_link(&data_link).ok();
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    symlink(Path::new(&stamp), &tmp_link).map_err(io(&tmp_link))?;
    std::fs::rename(&tmp_link, &data_link).map_err(io(&data_link))?;
    for (name, _) in files {
        let link = dir.join(name);
        let target = Path::new("..data").join(name);
        if std::fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
            // Replace whatever is there (a plain file from an older layout) atomically.
            let tmp = dir.join(format!("..{name}.tmp"));
            let _ = std::fs::remove_file(&tmp);
            symlink(&target, &tmp).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &link).map_err(io(&link))?;
        }
    }
    if let Some(old) = old_target {
        let old = dir.join(old);
        if old != fresh && old.starts_with(dir) {
            let _ = std::fs::remove_dir_all(old);
        }
    }
    Ok(true)
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "self-managed TLS needs symlinks (unix)",
    ))
}

fn write_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(content)?;
    f.sync_all()
}

/// Keep TLS current until `shutdown` resolves: [`reconcile_once`] every check interval, sooner
/// after an error or while the webhook configuration is missing. Errors are logged, never fatal
/// (the listener keeps serving the last good files); only an invalid configuration returns.
pub async fn run(
    client: kube::Client,
    cfg: SelfManagedTls,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    cfg.validate()?;
    tokio::pin!(shutdown);
    let interval = Duration::from_secs(cfg.check_interval_secs);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        SelfManagedTls::new("phi-guard", "phi-guard").dns_names()
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    const DAY: i64 = 24 * 3600;

    #[test]
    fn names_cover_the_service_dns_name_the_api_server_uses() {
        let mut c = SelfManagedTls::new("guard", "pg");
        c.extra_sans = vec!["127.0.0.1".into(), "pg".into()];
        assert_eq!(
            c.dns_names(),
            ["pg.guard.svc", "pg.guard", "pg", "127.0.0.1"]
        );
    }

    #[test]
    fn defaults_validate_and_bad_lifetimes_do_not() {
        assert!(SelfManagedTls::new("a", "b").validate().is_ok());
        let mut c = SelfManagedTls::new("a", "b");
        c.serving_renew_before_secs = c.serving_validity_secs;
        assert!(c.validate().is_err());
        let mut c = SelfManagedTls::new("a", "b");
        c.ca_validity_secs = c.serving_validity_secs;
        assert!(c.validate().is_err());
        let mut c = SelfManagedTls::new("", "b");
        c.namespace.clear();
        assert!(c.validate().is_err());
    }

    #[test]
    fn fresh_material_needs_nothing_and_serving_is_90_days() {
        let l = Lifetimes::default();
        let m = generate(&names(), t(0), &l).unwrap();
        assert_eq!(m.ca_generation, 1);
        assert_eq!(m.serving_not_after, t(90 * DAY));
        assert_eq!(m.needs_renewal(&names(), t(0), &l), Renewal::None);
        assert_eq!(m.needs_renewal(&names(), t(59 * DAY), &l), Renewal::None);
        assert!(m.bundle(t(0)).contains("BEGIN CERTIFICATE"));
        assert!(m.previous_ca_cert_pem.is_none());
    }

    #[test]
    fn serving_renews_30_days_before_expiry() {
        let l = Lifetimes::default();
        let m = generate(&names(), t(0), &l).unwrap();
        assert_eq!(
            m.needs_renewal(&names(), t(60 * DAY), &l),
            Renewal::RenewServing
        );
        let n = m.advance(&names(), t(60 * DAY), &l).unwrap().unwrap();
        assert_eq!(n.serving_not_after, t(150 * DAY));
        assert_eq!(n.ca_cert_pem, m.ca_cert_pem, "CA unchanged");
        assert_ne!(n.serving_cert_pem, m.serving_cert_pem);
        assert_eq!(n.needs_renewal(&names(), t(61 * DAY), &l), Renewal::None);
        verify_chain(&n, t(61 * DAY));
    }

    #[test]
    fn changed_service_name_renews_at_once() {
        let l = Lifetimes::default();
        let m = generate(&names(), t(0), &l).unwrap();
        let other = SelfManagedTls::new("phi-guard", "renamed").dns_names();
        assert_eq!(m.needs_renewal(&other, t(DAY), &l), Renewal::RenewServing);
    }

    #[test]
    fn ca_rotates_at_two_thirds_keeping_the_old_ca_in_the_bundle() {
        let l = Lifetimes::default();
        let life = i64::try_from(l.ca_validity.as_secs()).unwrap();
        let mut m = generate(&names(), t(0), &l).unwrap();
        // Keep the serving cert fresh until just before the rotation point.
        let before = life * 2 / 3 - DAY;
        m = m.renew_serving(&names(), t(before), &l).unwrap();
        assert_eq!(m.needs_renewal(&names(), t(before), &l), Renewal::None);
        let at = life * 2 / 3;
        assert_eq!(m.needs_renewal(&names(), t(at), &l), Renewal::RotateCa);
        let r = m.advance(&names(), t(at), &l).unwrap().unwrap();
        assert_eq!(r.ca_generation, 2);
        assert_eq!(
            r.previous_ca_cert_pem.as_deref(),
            Some(m.ca_cert_pem.as_str())
        );
        // Serving cert kept: its signer (the previous CA) is still in the bundle.
        assert_eq!(r.serving_cert_pem, m.serving_cert_pem);
        let bundle = r.bundle(t(at));
        assert!(bundle.starts_with(&r.ca_cert_pem));
        assert!(bundle.contains(&m.ca_cert_pem));
        verify_with_bundle(&r.serving_cert_pem, &bundle, t(at));
        // Within the grace period the serving cert is not moved to the new CA yet...
        assert_eq!(r.needs_renewal(&names(), t(at + 10), &l), Renewal::None);
        // ...after it, it is.
        let later = at + i64::try_from(l.propagation_grace.as_secs()).unwrap();
        assert_eq!(
            r.needs_renewal(&names(), t(later), &l),
            Renewal::RenewServing
        );
        let s = r.advance(&names(), t(later), &l).unwrap().unwrap();
        assert_eq!(s.serving_ca_generation, 2);
        verify_chain(&s, t(later));
        verify_with_bundle(&s.serving_cert_pem, &s.bundle(t(later)), t(later));
    }

    #[test]
    fn expired_serving_cert_is_replaced_even_during_grace() {
        let l = Lifetimes {
            ca_validity: Duration::from_secs(300 * 86400),
            ..Lifetimes::default()
        };
        let m = generate(&names(), t(0), &l).unwrap();
        // Expired serving certificate right after a CA rotation.
        let r = m.rotate_ca(t(200 * DAY), &l).unwrap();
        assert_eq!(
            r.serving_ca_generation, 2,
            "expired serving cert replaced on rotation"
        );
        verify_chain(&r, t(200 * DAY));
    }

    #[test]
    fn previous_ca_leaves_the_bundle_once_expired() {
        let l = Lifetimes::default();
        let m = generate(&names(), t(0), &l).unwrap();
        let r = m.rotate_ca(t(DAY), &l).unwrap();
        assert!(r.bundle(t(DAY)).contains(&m.ca_cert_pem));
        let after = m.ca_not_after.as_second() - t(0).as_second() + 1;
        assert!(!r.bundle(t(after)).contains(&m.ca_cert_pem));
    }

    #[test]
    fn secret_round_trip() {
        let l = Lifetimes::default();
        let m = generate(&names(), t(0), &l)
            .unwrap()
            .rotate_ca(t(DAY), &l)
            .unwrap();
        let (data, annotations) = m.to_secret_parts();
        let secret = Secret {
            metadata: ObjectMeta {
                annotations: Some(annotations),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        };
        let back = TlsMaterial::from_secret(&secret).unwrap();
        assert_eq!(back, m);
        let dbg = format!("{back:?}");
        assert!(!dbg.contains("PRIVATE KEY"), "Debug must not print keys");
    }

    #[test]
    fn broken_secret_is_an_error_not_a_panic() {
        let secret = Secret {
            data: Some(BTreeMap::from([(
                KEY_CA_CRT.to_string(),
                ByteString(vec![0xff, 0xfe]),
            )])),
            ..Default::default()
        };
        assert!(TlsMaterial::from_secret(&secret).is_err());
        assert!(TlsMaterial::from_secret(&Secret::default()).is_err());
        let l = Lifetimes::default();
        let m = generate(&names(), t(0), &l).unwrap();
        let (mut data, ann) = m.to_secret_parts();
        data.insert(KEY_CA_KEY.into(), ByteString(b"not a key".to_vec()));
        let secret = Secret {
            metadata: ObjectMeta {
                annotations: Some(ann),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        };
        assert!(TlsMaterial::from_secret(&secret).is_err());
    }

    #[test]
    fn ca_bundle_patch_only_for_stale_webhooks() {
        use k8s_openapi::api::admissionregistration::v1::{ValidatingWebhook, WebhookClientConfig};
        let hook = |name: &str, ca: Option<&[u8]>| ValidatingWebhook {
            name: name.into(),
            client_config: WebhookClientConfig {
                ca_bundle: ca.map(|c| ByteString(c.to_vec())),
                ..Default::default()
            },
            ..Default::default()
        };
        let vwc = ValidatingWebhookConfiguration {
            webhooks: Some(vec![
                hook("a.phiguard.io", Some(b"NEW")),
                hook("b.phiguard.io", None),
            ]),
            ..Default::default()
        };
        let patch = ca_bundle_patch(&vwc, b"NEW").unwrap();
        assert_eq!(
            patch,
            serde_json::json!({"webhooks": [{"name": "b.phiguard.io", "clientConfig": {"caBundle": "TkVX"}}]})
        );
        let current = ValidatingWebhookConfiguration {
            webhooks: Some(vec![hook("a.phiguard.io", Some(b"NEW"))]),
            ..Default::default()
        };
        assert!(ca_bundle_patch(&current, b"NEW").is_none());
    }

    #[test]
    fn cert_dir_swaps_atomically_and_skips_unchanged_content() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("tls");
        let v1 = [("tls.crt", "c1".to_string()), ("tls.key", "k1".to_string())];
        assert!(write_cert_dir(&d, &v1).unwrap());
        assert_eq!(std::fs::read_to_string(d.join("tls.crt")).unwrap(), "c1");
        assert!(!write_cert_dir(&d, &v1).unwrap(), "unchanged: no write");
        let first = std::fs::read_link(d.join("..data")).unwrap();
        let v2 = [("tls.crt", "c2".to_string()), ("tls.key", "k2".to_string())];
        assert!(write_cert_dir(&d, &v2).unwrap());
        assert_eq!(std::fs::read_to_string(d.join("tls.key")).unwrap(), "k2");
        assert!(
            std::fs::read_link(d.join("tls.key")).is_ok(),
            "a symlink into ..data"
        );
        assert!(!d.join(first).exists(), "old generation removed");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.join("tls.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key not readable by others");
        }
    }

    /// The serving certificate verifies against its CA for the in-cluster service name.
    fn verify_chain(m: &TlsMaterial, now: Timestamp) {
        verify_with_bundle(&m.serving_cert_pem, &m.ca_cert_pem, now);
    }

    fn verify_with_bundle(leaf_pem: &str, bundle_pem: &str, now: Timestamp) {
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(bundle_pem.as_bytes()) {
            roots.add(ca.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .unwrap();
        let leaf = CertificateDer::from_pem_slice(leaf_pem.as_bytes()).unwrap();
        let name = ServerName::try_from("phi-guard.phi-guard.svc").unwrap();
        let when = UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(now.as_second()).unwrap(),
        ));
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], when)
            .expect("serving certificate verifies against the CA bundle");
    }
}
