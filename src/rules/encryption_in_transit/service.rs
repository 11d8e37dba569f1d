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
    let scope = &ctx.policy.scope;
    // A Service labeled PHI makes every pod it selects PHI traffic.
    let service_phi = scope.covers(ns, ns_labels, &[&w.labels]);
    let pods = ctx.cluster.pods(ns);
    let unmeshed: Vec<&str> = pods
        .iter()
        .filter(|p| selector.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
        .filter(|p| service_phi || scope.covers(ns, ns_labels, &[&p.labels]))
        .filter(|p| p.host_network || mesh_evidence(&PodFacts::from_info(p), ctx, cfg).is_err())
        .map(|p| p.name.as_str())
        .collect();
    if unmeshed.is_empty() {
        return;
    }
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
        let label = match &port.name {
            Some(n) if !n.is_empty() => format!("{n:?} ({})", port.port),
            _ => port.port.to_string(),
        };
        let declared = match &proto {
            Some((p, source)) => format!("its {source} says {p:?}, not a TLS protocol"),
            None => {
                "it declares neither appProtocol nor a name, so it cannot be shown to carry TLS"
                    .into()
            }
        };
        out.push(finding(
            cfg,
            format!("spec.ports[{i}]"),
            format!(
                "Service {:?} port {label} is plaintext ({declared}) and selects PHI pods that are not meshed: {pods_text}",
                w.name
            ),
            format!(
                "Mesh the selected pods (Istio with a STRICT PeerAuthentication, or Linkerd with an authenticated default inbound policy), or serve TLS on port {} and declare it with appProtocol: https (or tls).",
                port.port
            ),
        ));
    }
}
