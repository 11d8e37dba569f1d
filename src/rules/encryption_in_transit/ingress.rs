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
        default_backend(w, svc, ctx, cfg, out);
    }
    if !ing.tls.is_empty() {
        plaintext_served(w, cfg, out);
    }
}

/// `spec.defaultBackend` answers requests for any host, which no TLS host list can cover. It is
/// acceptable only behind a Service phi-guard can show routes to no PHI pods (it selects known
/// pods, none of them PHI: a 404 page); a Service phi-guard does not know, or whose pods it does
/// not know, fails closed, like a host-less rule.
fn default_backend(
    w: &Object,
    svc: &str,
    ctx: &RuleContext,
    cfg: &InTransitConfig,
    out: &mut Vec<Finding>,
) {
    let name = &w.name;
    let ns = &w.namespace;
    let phi = crate::policy::service_routes_to_phi(svc, ns, ctx.scoped_policy(), ctx.cluster);
    // Provably not PHI: a known Service selecting known pods, none of them PHI.
    let selects_known_pods = ctx.cluster.services(ns).iter().any(|s| {
        s.name == svc
            && s.selector.as_ref().is_some_and(|sel| {
                !crate::policy::scope::pods_selected(ctx.cluster, ns, sel).is_empty()
            })
    });
    if selects_known_pods && !phi {
        return;
    }
    let why = if phi {
        "which selects PHI pods"
    } else {
        "which phi-guard cannot show routes to no PHI pods (the Service or the pods it selects are unknown)"
    };
    out.push(finding(
        cfg,
        "spec.defaultBackend",
        format!(
            "Ingress {name:?} spec.defaultBackend sends requests for any host to Service {svc:?}, {why}; TLS hosts cannot cover a catch-all, so it is served over plaintext HTTP for every host not listed under spec.tls"
        ),
        "Remove spec.defaultBackend (or point it at a non-PHI Service phi-guard can see, e.g. a 404 page) and route PHI traffic only through rules whose hosts are listed under spec.tls.".into(),
    ));
}

/// ingress-nginx annotations that decide whether plain HTTP is redirected to HTTPS.
const NGINX_SSL_REDIRECT: &str = "nginx.ingress.kubernetes.io/ssl-redirect";
const NGINX_FORCE_SSL_REDIRECT: &str = "nginx.ingress.kubernetes.io/force-ssl-redirect";

/// Go's `strconv.ParseBool`, which ingress-nginx uses for boolean annotations
/// (kubernetes/ingress-nginx internal/ingress/annotations/parser/main.go, `parseBool`): `None`
/// for anything else, which ingress-nginx replaces with its default.
fn go_bool(v: Option<&String>) -> Option<bool> {
    match v.map(String::as_str) {
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Some(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Some(false),
        _ => None,
    }
}

/// TLS is configured but plain HTTP is still served: ingress-nginx redirects HTTP to HTTPS for
/// a TLS server unless `ssl-redirect` is false, and always when `force-ssl-redirect` is true
/// (internal/ingress/annotations/rewrite/main.go; invalid values fall back to the controller's
/// defaults, redirect on). Other controllers' settings are not read.
fn plaintext_served(w: &Object, cfg: &InTransitConfig, out: &mut Vec<Finding>) {
    let redirect_off = go_bool(w.annotations.get(NGINX_SSL_REDIRECT)) == Some(false);
    let forced = go_bool(w.annotations.get(NGINX_FORCE_SSL_REDIRECT)) == Some(true);
    if !redirect_off || forced {
        return;
    }
    out.push(finding(
        cfg,
        format!("metadata.annotations[\"{NGINX_SSL_REDIRECT}\"]"),
        format!(
            "Ingress {:?} has spec.tls but annotation {NGINX_SSL_REDIRECT} is false (and {NGINX_FORCE_SSL_REDIRECT} is not true), so ingress-nginx also serves its hosts over plaintext HTTP instead of redirecting to HTTPS",
            w.name
        ),
        format!(
            "Remove annotation {NGINX_SSL_REDIRECT} (ingress-nginx redirects HTTP to HTTPS for TLS hosts by default) or set {NGINX_FORCE_SSL_REDIRECT}: \"true\"."
        ),
    ));
}
