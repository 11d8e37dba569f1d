//! App-level TLS: cert-manager material mounted by the pod (csi driver or an issued Secret), or
//! a Kubernetes Pod Certificate (projected `podCertificate`, beta in 1.35).

use super::*;

/// App-level TLS: a mounted csi.cert-manager.io volume, a mounted projected volume with a
/// `podCertificate` source (the kubelet writes a key and a certificate chain issued by a
/// PodCertificateRequest signer, the same role as cert-manager's csi driver), or a mounted
/// Secret (plain or projected) that a cert-manager Certificate issues. Secret data is never
/// read.
pub(super) fn app_tls_evidence(
    namespace: &str,
    p: &PodView,
    ctx: &RuleContext,
) -> Evidence<'static> {
    // One pass over the mounts (not one per volume): review cost stays linear in pod size.
    // Only serving containers count: a volume mounted into no container, or into an init
    // container that runs to completion, is not the server's TLS material.
    let mounted_names = p.spec.serving_mounts();
    let mounted = |vol: &str| mounted_names.contains(vol);
    let mut unissued: Vec<&str> = Vec::new();
    for v in p.spec.volumes.iter().filter(|v| mounted(&v.name)) {
        let secrets: Vec<&str> = match &v.source {
            VolumeSource::Csi { driver } if driver == CERT_MANAGER_CSI_DRIVER => {
                return Evidence::Holds
            }
            VolumeSource::Secret { secret_name } => vec![secret_name.as_str()],
            VolumeSource::Projected {
                pod_certificate: true,
                ..
            } => return Evidence::Holds,
            VolumeSource::Projected { secret_names, .. } => {
                secret_names.iter().map(String::as_str).collect()
            }
            _ => Vec::new(),
        };
        for s in secrets {
            if ctx.cluster.secret_issued_by_certificate(namespace, s) {
                return Evidence::Holds;
            }
            unissued.push(s);
        }
    }
    let mut observed = "no app-level TLS material mounted into a serving container (a csi.cert-manager.io volume, a projected podCertificate, or a Secret issued by a cert-manager Certificate, with its private key: items that leave out tls.key do not count)".to_string();
    if !unissued.is_empty() {
        let names: Vec<String> = unissued.iter().map(|s| format!("{s:?}")).collect();
        observed.push_str(&format!(
            "; mounted Secret(s) {} are not issued by any cert-manager Certificate phi-guard knows",
            names.join(", ")
        ));
    }
    Evidence::missing(move || {
        (observed, "mount a certificate from cert-manager (a csi.cert-manager.io volume, or the Secret of a Certificate) or a Kubernetes Pod Certificate (a projected volume with a podCertificate source) and serve TLS with it".into())
    })
}
