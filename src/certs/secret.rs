//! The TLS Secret's encoding: PEM data keys plus annotations carrying the times and generations
//! an X.509 parser would otherwise have to read, and the Secret object phi-guard writes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kube::api::ObjectMeta;
use rcgen::KeyPair;

use super::lifecycle::TlsMaterial;
use super::{CertError, Config, Result};

// Secret data keys.
pub(crate) const KEY_TLS_CRT: &str = "tls.crt";
pub(crate) const KEY_TLS_KEY: &str = "tls.key";
pub(crate) const KEY_CA_CRT: &str = "ca.crt";
pub(crate) const KEY_CA_KEY: &str = "ca.key";
pub(crate) const KEY_PREVIOUS_CA_CRT: &str = "previous-ca.crt";

// Secret annotations carrying what an X.509 parser would otherwise have to read.
pub(crate) const ANN_CA_GENERATION: &str = "phiguard.io/ca-generation";
pub(crate) const ANN_CA_ISSUED_AT: &str = "phiguard.io/ca-issued-at";
pub(crate) const ANN_CA_NOT_AFTER: &str = "phiguard.io/ca-not-after";
pub(crate) const ANN_PREVIOUS_CA_NOT_AFTER: &str = "phiguard.io/previous-ca-not-after";
pub(crate) const ANN_SERVING_NOT_AFTER: &str = "phiguard.io/serving-not-after";
pub(crate) const ANN_SERVING_CA_GENERATION: &str = "phiguard.io/serving-ca-generation";
pub(crate) const ANN_SERVING_DNS_NAMES: &str = "phiguard.io/serving-names";

impl TlsMaterial {
    /// Secret data and annotations for this material.
    pub(crate) fn to_secret_parts(
        &self,
    ) -> (BTreeMap<String, ByteString>, BTreeMap<String, String>) {
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

/// The Secret to create or replace (with `existing`'s resourceVersion) for `m`; annotations
/// and labels others set on it are kept.
pub(super) fn secret_for(cfg: &Config, m: &TlsMaterial, existing: Option<&Secret>) -> Secret {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::config::Lifetimes;
    use crate::certs::lifecycle::generate;
    use crate::certs::testing::{names, t, DAY};

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
}
