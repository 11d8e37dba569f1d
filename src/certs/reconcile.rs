//! The Kubernetes side of self-managed TLS: settle the shared Secret (optimistic concurrency, so
//! replicas never fight), publish the `caBundle` on the ValidatingWebhookConfiguration, then write
//! the files the listener serves.

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kube::api::{Api, Patch, PatchParams, PostParams};

use super::config::Lifetimes;
use super::files::write_cert_dir;
use super::lifecycle::{generate, generate_after, TlsMaterial};
use super::secret::{secret_for, ANN_CA_GENERATION, KEY_CA_CRT, KEY_TLS_CRT, KEY_TLS_KEY};
use super::{CertError, Config, Result};

/// What one reconcile pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
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
/// starting the listener so the certificate files exist; `certs::run` repeats it.
pub async fn reconcile_once(
    client: &kube::Client,
    cfg: &Config,
    now: Timestamp,
) -> Result<Reconciled> {
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
    Ok(Reconciled {
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
    cfg: &Config,
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
pub(crate) fn ca_bundle_patch(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
