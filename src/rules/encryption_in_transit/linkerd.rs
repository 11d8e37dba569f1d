//! Linkerd: proxy injection and the default inbound policy that must require authentication.

use super::*;

/// Linkerd proxy injection: a `linkerd-proxy` container, or `linkerd.io/inject: enabled` on the
/// pod template or namespace (`disabled` on the pod opts out).
pub(super) fn linkerd_signal(f: &PodFacts, ns: Option<&NamespaceInfo>) -> Signal {
    let signal = linkerd_injection(f, ns);
    match signal {
        Signal::Present(_) => linkerd_skipped_ports(f).unwrap_or(signal),
        other => other,
    }
}

/// Ports in `config.linkerd.io/skip-inbound-ports` bypass the proxy (linkerd2-proxy-init's
/// iptables rules): plaintext. (`opaque-ports` are still proxied and mutually authenticated.)
fn linkerd_skipped_ports(f: &PodFacts) -> Option<Signal> {
    let skip = f.annotation("config.linkerd.io/skip-inbound-ports")?;
    let (_, ranges) = super::istio::listed_ports(skip);
    let bypassed: Vec<String> = f
        .ports
        .iter()
        .filter(|p| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(*p)))
        .map(u32::to_string)
        .collect();
    (!bypassed.is_empty()).then(|| {
        Signal::OptedOut(format!(
            "pod annotation config.linkerd.io/skip-inbound-ports bypasses the proxy for container port(s) {}",
            bypassed.join(", ")
        ))
    })
}

fn linkerd_injection(f: &PodFacts, ns: Option<&NamespaceInfo>) -> Signal {
    if f.has_container(LINKERD_PROXY) {
        return Signal::Present("a linkerd-proxy container".into());
    }
    match f.annotation(LINKERD_INJECT) {
        Some("disabled") => {
            return Signal::OptedOut("pod annotation linkerd.io/inject: disabled".into())
        }
        Some("enabled") => {
            return Signal::Present("pod annotation linkerd.io/inject: enabled".into())
        }
        _ => {}
    }
    if ns_annotation(ns, LINKERD_INJECT) == Some("enabled") {
        return Signal::Present("namespace annotation linkerd.io/inject: enabled".into());
    }
    Signal::Absent
}

/// Judge Linkerd evidence: injected, with an accepted default inbound policy
/// (pod annotation > namespace annotation > cluster default).
pub(super) fn linkerd_evidence<'a>(
    f: &PodFacts,
    ns: Option<&NamespaceInfo>,
    cfg: &'a InTransitConfig,
) -> Evidence<'a> {
    let accepted = move || {
        cfg.linkerd_accepted_inbound_policies
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let enable_fix = move || {
        format!(
            "annotate the pod template or namespace linkerd.io/inject: enabled with {LINKERD_INBOUND_POLICY} set to one of {}",
            accepted()
        )
    };
    match linkerd_signal(f, ns) {
        Signal::Absent => {
            Evidence::missing(move || ("no Linkerd proxy injection".into(), enable_fix()))
        }
        Signal::OptedOut(why) => Evidence::missing(move || {
            (
                format!("Linkerd proxy injection is switched off ({why})"),
                format!("remove the opt-out and {}", enable_fix()),
            )
        }),
        Signal::Present(why) => {
            let (policy, source) = if let Some(v) = f.annotation(LINKERD_INBOUND_POLICY) {
                (v, "pod annotation")
            } else if let Some(v) = ns_annotation(ns, LINKERD_INBOUND_POLICY) {
                (v, "namespace annotation")
            } else {
                (
                    cfg.linkerd_cluster_default_inbound_policy.as_str(),
                    "the cluster default",
                )
            };
            if cfg
                .linkerd_accepted_inbound_policies
                .iter()
                .any(|a| a == policy)
            {
                return Evidence::Holds;
            }
            // Annotation values are echoed only when they are one of Linkerd's known policies.
            let shown = LINKERD_INBOUND_POLICIES
                .iter()
                .find(|known| **known == policy)
                .copied()
                .unwrap_or("an unrecognized value");
            Evidence::missing(move || {
                let accepted = accepted();
                (
                    format!(
                        "Linkerd proxy injection is enabled ({why}) but the default inbound policy is {shown} (from {source}), not one of {accepted}"
                    ),
                    format!(
                        "set annotation {LINKERD_INBOUND_POLICY} to one of {accepted} on the pod template or namespace"
                    ),
                )
            })
        }
    }
}
