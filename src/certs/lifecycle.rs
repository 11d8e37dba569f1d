//! The certificate lifecycle, pure: generate a CA and a serving certificate, decide what is due
//! (CA rotation at 2/3 of its life, serving renewal before expiry, after a propagation grace),
//! and produce the next material. No I/O: `reconcile` stores what this decides.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use super::config::Lifetimes;
use super::Result;

/// Certificates start this long in the past, to tolerate clock skew between nodes.
const BACKDATE_SECS: i64 = 3600;

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
pub(crate) enum Renewal {
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
pub(crate) fn generate(names: &[String], now: Timestamp, l: &Lifetimes) -> Result<TlsMaterial> {
    generate_after(None, names, now, l)
}

/// New material, keeping an old CA certificate (if any) trusted as the previous CA.
pub(super) fn generate_after(
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
    pub(crate) fn needs_renewal(&self, names: &[String], now: Timestamp, l: &Lifetimes) -> Renewal {
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
    pub(crate) fn rotate_ca(&self, now: Timestamp, l: &Lifetimes) -> Result<TlsMaterial> {
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
    pub(crate) fn renew_serving(
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
    pub(crate) fn advance(
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
}

fn ensure_newline(pem: &str) -> String {
    let mut s = pem.to_string();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::testing::{names, t, DAY};
    use crate::certs::Config;

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
        let other = Config::new("phi-guard", "renamed").dns_names();
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
