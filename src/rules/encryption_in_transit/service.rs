//! Services in front of unmeshed PHI pods: no plaintext ports.

use super::*;

/// Is a Service port declared as TLS? `appProtocol` first, else the port name's prefix.
pub(super) fn port_protocol(
    name: Option<&str>,
    app_protocol: Option<&str>,
) -> Option<(String, &'static str)> {
    if let Some(ap) = app_protocol.map(str::trim).filter(|a| !a.is_empty()) {
        return Some((ap.to_ascii_lowercase(), "appProtocol"));
    }
    let n = name.map(str::trim).filter(|n| !n.is_empty())?;
    let prefix = n.split('-').next().unwrap_or(n);
    Some((prefix.to_ascii_lowercase(), "port name prefix"))
}

pub(super) fn check_service(
    w: &Object,
    svc: &ServiceInfo,
    ctx: &RuleContext,
    cfg: &InTransitConfig,
    out: &mut Vec<Finding>,
) {
    let Some(selector) = &svc.selector else {
        return;
    };
    let ns = w.namespace.as_str();
    let ns_labels = ctx.namespace_labels();
    let scope = ctx.scope();
    // A Service labeled PHI makes every pod it selects PHI traffic.
    let service_phi = scope.covers(ns, ns_labels, &[&w.labels]);
    let pods = crate::policy::scope::pods_selected(ctx.cluster, ns, selector);
    let unmeshed_pods: Vec<&PodInfo> = pods
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| service_phi || scope.covers(ns, ns_labels, &[&p.labels]))
        .filter(|p| p.host_network || mesh_evidence(&PodFacts::from_info(p), ctx, cfg).is_err())
        .collect();
    let unmeshed: Vec<&str> = unmeshed_pods.iter().map(|p| p.name.as_str()).collect();
    if unmeshed.is_empty() {
        return;
    }
    // Pods that mount no cert-manager TLS material (for in-band TLS protocols).
    let without_tls: Vec<&str> = unmeshed_pods
        .iter()
        .filter(|p| {
            !p.cert_manager_csi
                && !p
                    .mounted_secrets
                    .iter()
                    .any(|s| ctx.cluster.secret_issued_by_certificate(ns, s))
        })
        .map(|p| p.name.as_str())
        .collect();
    let attested: Vec<&str> = w
        .annotations
        .get(TLS_REQUIRED_ANNOTATION)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut shown: Vec<String> = unmeshed.iter().take(5).map(|n| format!("{n:?}")).collect();
    if unmeshed.len() > 5 {
        shown.push(format!("and {} more", unmeshed.len() - 5));
    }
    let pods_text = shown.join(", ");
    for (i, port) in svc.ports.iter().enumerate() {
        let proto = port_protocol(port.name.as_deref(), port.app_protocol.as_deref());
        if proto
            .as_ref()
            .is_some_and(|(p, _)| ENCRYPTED_PROTOCOLS.contains(&p.as_str()))
        {
            continue;
        }
        let in_band = port
            .app_protocol
            .as_deref()
            .map(|a| a.trim().to_ascii_lowercase())
            .map(|a| {
                a.strip_prefix("kubernetes.io/")
                    .map(String::from)
                    .unwrap_or(a)
            })
            .filter(|a| IN_BAND_TLS_PROTOCOLS.contains(&a.as_str()));
        let port_attested = attested
            .iter()
            .any(|a| port.name.as_deref() == Some(*a) || *a == port.port.to_string().as_str());
        if in_band.is_some() && port_attested && without_tls.is_empty() {
            // Accepted on the attestation, with TLS material mounted by every pod.
            continue;
        }
        let label = match &port.name {
            Some(n) if !n.is_empty() => format!("{n:?} ({})", port.port),
            _ => port.port.to_string(),
        };
        let declared = match (&in_band, &proto) {
            (Some(p), _) => {
                let mut missing = Vec::new();
                if !port_attested {
                    missing.push(format!(
                        "the Service has no {TLS_REQUIRED_ANNOTATION} attestation naming this port"
                    ));
                }
                if !without_tls.is_empty() {
                    let names: Vec<String> = without_tls
                        .iter()
                        .take(5)
                        .map(|n| format!("{n:?}"))
                        .collect();
                    missing.push(format!(
                        "pod(s) {} mount no cert-manager TLS material",
                        names.join(", ")
                    ));
                }
                format!(
                    "its appProtocol {p:?} negotiates TLS in-band, which phi-guard cannot observe: it accepts such a port only on the Service's attestation that the server requires TLS, with cert-manager TLS material mounted by the pods, and here {}",
                    missing.join(" and ")
                )
            }
            (None, Some((p, source))) => format!("its {source} says {p:?}, not a TLS protocol"),
            (None, None) => {
                "it declares neither appProtocol nor a name, so it cannot be shown to carry TLS"
                    .into()
            }
        };
        out.push(finding(
            Reason::PlaintextServicePort,
            cfg,
            format!("spec.ports[{i}]"),
            format!(
                "Service {:?} port {label} is plaintext ({declared}) and selects PHI pods that are not meshed: {pods_text}",
                w.name
            ),
            format!(
                "Mesh the selected pods (Istio with a STRICT PeerAuthentication, or Linkerd with an authenticated default inbound policy), or serve TLS on port {} and declare it with appProtocol: https (or tls). For a protocol that negotiates TLS in-band (PostgreSQL, MySQL, SMTP, LDAP), set appProtocol to its name (e.g. postgresql), mount a cert-manager certificate in the pods, make the server refuse non-TLS clients (PostgreSQL: only hostssl lines in pg_hba.conf; MySQL: require_secure_transport=ON) and attest it with the Service annotation {TLS_REQUIRED_ANNOTATION}: \"{}\"; phi-guard relies on that attestation.",
                port.port,
                port.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| port.port.to_string())
            ),
        ));
    }
}
