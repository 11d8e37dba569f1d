//! Ingresses that route to PHI pods: every host covered by TLS.

use super::*;
use crate::view::PlatformSource;

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
            Reason::IngressWithoutTls,
            cfg,
            "spec.tls",
            format!("Ingress {name:?} routes to PHI pods but has no spec.tls{served}"),
            "Add spec.tls entries listing every rule host with a secretName (e.g. a cert-manager Certificate's Secret).".into(),
        ));
    }
    for (i, r) in ing.rules.iter().enumerate() {
        let Some(host) = &r.host else {
            out.push(finding(
                Reason::IngressRuleWithoutHost,
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
        let (reason, message, fix) = match listed.first() {
            Some((j, _)) => (
                Reason::IngressTlsWithoutSecret,
                format!(
                    "Ingress {name:?} host {host:?} is listed in spec.tls[{j}], which has no secretName"
                ),
                format!("Set spec.tls[{j}].secretName to the Secret holding the certificate for {host:?}."),
            ),
            None => (
                Reason::IngressHostNotCovered,
                format!("Ingress {name:?} host {host:?} is not covered by any spec.tls entry, so it is served over plaintext HTTP"),
                format!("Add {host:?} to spec.tls[].hosts of an entry with a secretName (a wildcard *.domain covers one label)."),
            ),
        };
        out.push(finding(
            reason,
            cfg,
            format!("spec.rules[{i}].host"),
            message,
            fix,
        ));
    }
    if let Some(svc) = &ing.default_backend {
        default_backend(w, svc, ctx, cfg, out);
    }
    if !ing.tls.is_empty() {
        plaintext_served(w, ing, ctx, cfg, out);
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
        Reason::IngressDefaultBackend,
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

/// Would ingress-nginx's global ConfigMap decide this Ingress's redirect? ingress-nginx serves
/// Ingresses of its class (`nginx` in the official chart) and, as the default IngressClass or
/// with `--watch-ingress-without-class`, those that name none: both count (the safe side); an
/// Ingress naming another controller's class is not served by it.
pub(crate) fn served_by_ingress_nginx(ing: &IngressView) -> bool {
    ing.class.as_deref().is_none_or(|c| c == "nginx")
}

/// The global redirect settings of ingress-nginx decide this Ingress's HTTP handling: served by
/// ingress-nginx, TLS configured, and no annotation of its own settling it (`force-ssl-redirect`
/// or `ssl-redirect` true settle it on; `ssl-redirect` false leaves the global force to decide).
pub(crate) fn redirect_rests_on_global(w: &Object, ing: &IngressView) -> bool {
    !ing.tls.is_empty()
        && served_by_ingress_nginx(ing)
        && go_bool(w.annotations.get(NGINX_FORCE_SSL_REDIRECT)).is_none()
        && go_bool(w.annotations.get(NGINX_SSL_REDIRECT)) != Some(true)
}

/// TLS is configured but plain HTTP is still served: ingress-nginx redirects HTTP to HTTPS for
/// a TLS server unless `ssl-redirect` is false, and always when `force-ssl-redirect` is true
/// (internal/ingress/annotations/rewrite/main.go: each annotation, when absent or not a Go
/// boolean, falls back to the same key of the controller's ConfigMap, whose defaults are
/// redirect on, not forced; the template redirects when `force-ssl-redirect`, or `ssl-redirect`
/// and the server has a certificate). The ConfigMap is read by name
/// (`ingress-nginx/ingress-nginx-controller`); unknown, the controller's defaults are assumed
/// (`check` says so). Other controllers' settings are not read.
fn plaintext_served(
    w: &Object,
    ing: &IngressView,
    ctx: &RuleContext,
    cfg: &InTransitConfig,
    out: &mut Vec<Finding>,
) {
    let own_redirect = go_bool(w.annotations.get(NGINX_SSL_REDIRECT));
    let own_force = go_bool(w.annotations.get(NGINX_FORCE_SSL_REDIRECT));
    let global = if served_by_ingress_nginx(ing) {
        ctx.cluster
            .platform_encryption(PlatformSource::IngressNginx)
            .and_then(|p| p.nginx_redirects())
    } else {
        None
    };
    let (global_redirect, global_force) = global.unwrap_or((true, false));
    let redirect = own_redirect.unwrap_or(global_redirect);
    let forced = own_force.unwrap_or(global_force);
    if redirect || forced {
        return;
    }
    let config_map = PlatformSource::IngressNginx.object();
    let why = match (own_redirect, own_force) {
        (Some(false), None) if !global_force => format!(
            "annotation {NGINX_SSL_REDIRECT} is false and force-ssl-redirect is not true in {config_map}"
        ),
        (Some(false), _) => format!(
            "annotation {NGINX_SSL_REDIRECT} is false (and {NGINX_FORCE_SSL_REDIRECT} is not true)"
        ),
        (None, Some(false)) => format!(
            "{config_map} sets ssl-redirect to false and annotation {NGINX_FORCE_SSL_REDIRECT} is false"
        ),
        _ => format!(
            "{config_map} sets ssl-redirect to false for every Ingress without its own annotation"
        ),
    };
    // The Ingress's own false annotation is where it goes wrong; otherwise the global is, and
    // the Ingress's force-ssl-redirect is where to put it right.
    let key = if own_redirect == Some(false) {
        NGINX_SSL_REDIRECT
    } else {
        NGINX_FORCE_SSL_REDIRECT
    };
    out.push(finding(
        Reason::IngressSslRedirectOff,
        cfg,
        format!("metadata.annotations[\"{key}\"]"),
        format!(
            "Ingress {:?} has spec.tls but {why}, so ingress-nginx also serves its hosts over plaintext HTTP instead of redirecting to HTTPS",
            w.name
        ),
        format!(
            "Set annotation {NGINX_FORCE_SSL_REDIRECT}: \"true\" on the Ingress (it wins over the controller's ConfigMap), or remove a false {NGINX_SSL_REDIRECT} annotation and set ssl-redirect: \"true\" in {config_map}."
        ),
    ));
}
