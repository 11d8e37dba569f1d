//! Ingresses that route to PHI pods: every host covered by TLS.

use super::*;

/// Does a TLS host entry cover a rule host? `*.example.com` covers exactly one extra label.
pub(super) fn tls_host_covers(tls_host: &str, host: &str) -> bool {
    if tls_host.eq_ignore_ascii_case(host) {
        return true;
    }
    match (tls_host.strip_prefix("*."), host.split_once('.')) {
        (Some(suffix), Some((label, rest))) => {
            !label.is_empty() && label != "*" && rest.eq_ignore_ascii_case(suffix)
        }
        _ => false,
    }
}

pub(super) fn check_ingress(
    w: &Object,
    ing: &IngressView,
    ctx: &RuleContext,
    cfg: &InTransitConfig,
    out: &mut Vec<Finding>,
) {
    let name = &w.name;
    if ing.tls.is_empty() {
        let hosts: Vec<String> = ing
            .rules
            .iter()
            .filter_map(|r| r.host.as_ref())
            .map(|h| format!("{h:?}"))
            .collect();
        let served = if hosts.is_empty() {
            String::new()
        } else {
            format!(
                ", so host(s) {} are served over plaintext HTTP",
                hosts.join(", ")
            )
        };
        out.push(finding(
            cfg,
            "spec.tls",
            format!("Ingress {name:?} routes to PHI pods but has no spec.tls{served}"),
            "Add spec.tls entries listing every rule host with a secretName (e.g. a cert-manager Certificate's Secret).".into(),
        ));
    }
    for (i, r) in ing.rules.iter().enumerate() {
        let Some(host) = &r.host else {
            out.push(finding(
                cfg,
                format!("spec.rules[{i}]"),
                format!(
                    "Ingress {name:?} spec.rules[{i}] has no host, so it matches every host and no spec.tls entry can cover it"
                ),
                format!(
                    "Set spec.rules[{i}].host and list that host under spec.tls[].hosts with a secretName."
                ),
            ));
            continue;
        };
        if ing.tls.is_empty() {
            continue; // Reported once above.
        }
        let listed: Vec<(usize, &IngressTlsView)> = ing
            .tls
            .iter()
            .enumerate()
            .filter(|(_, t)| t.hosts.iter().any(|th| tls_host_covers(th, host)))
            .collect();
        if listed.iter().any(|(_, t)| t.has_secret) {
            continue;
        }
        let (message, fix) = match listed.first() {
            Some((j, _)) => (
                format!(
                    "Ingress {name:?} host {host:?} is listed in spec.tls[{j}], which has no secretName"
                ),
                format!("Set spec.tls[{j}].secretName to the Secret holding the certificate for {host:?}."),
            ),
            None => (
                format!("Ingress {name:?} host {host:?} is not covered by any spec.tls entry, so it is served over plaintext HTTP"),
                format!("Add {host:?} to spec.tls[].hosts of an entry with a secretName (a wildcard *.domain covers one label)."),
            ),
        };
        out.push(finding(cfg, format!("spec.rules[{i}].host"), message, fix));
    }
    if let Some(svc) = &ing.default_backend {
        if crate::policy::service_routes_to_phi(svc, &w.namespace, ctx.policy, ctx.cluster) {
            out.push(finding(
                cfg,
                "spec.defaultBackend",
                format!(
                    "Ingress {name:?} spec.defaultBackend sends requests for any host to Service {svc:?}, which selects PHI pods; TLS hosts cannot cover a catch-all"
                ),
                "Point spec.defaultBackend at a non-PHI Service (or remove it) and route PHI traffic only through rules whose hosts are listed under spec.tls.".into(),
            ));
        }
    }
}
