//! Istio: sidecar and ambient enrolment signals, and the effective PeerAuthentication
//! (workload > namespace > mesh root, port-level overrides) that decides whether mTLS is STRICT.

use super::*;

/// The injector's yes values (`pkg/kube/inject/webhook.go` `injectRequired`: YAML 1.1 booleans);
/// any other non-empty value says no.
const INJECT_YES: [&str; 4] = ["y", "yes", "true", "on"];

/// Istio sidecar injection, as Istio decides it. The mutating webhook is called for pods in a
/// namespace labeled `istio-injection=enabled` or `istio.io/rev` (unless the pod's
/// `sidecar.istio.io/inject` label is `false`), and in other namespaces for pods labeled
/// `sidecar.istio.io/inject: "true"` or `istio.io/rev`; `istio-injection=disabled` on the
/// namespace keeps it away. Once called, the injector reads `sidecar.istio.io/inject` from the
/// label, else from the annotation (the label wins when both are set): a yes value injects, any
/// other non-empty value does not. Host-network pods are never injected. The mesh-wide
/// `neverInjectSelector`/`alwaysInjectSelector` and the injection policy live in the injector's
/// ConfigMap, which phi-guard does not read. An injected proxy still leaves plaintext where
/// inbound capture is narrowed or off ([`inbound_capture`]).
pub(super) fn istio_sidecar_signal(f: &PodFacts, ns: Option<&NamespaceInfo>) -> Signal {
    let signal = injection(f, ns);
    match signal {
        Signal::Present(_) => inbound_capture(f).unwrap_or(signal),
        other => other,
    }
}

fn injection(f: &PodFacts, ns: Option<&NamespaceInfo>) -> Signal {
    if f.has_container(ISTIO_PROXY) {
        return Signal::Present("an istio-proxy container".into());
    }
    if f.host_network {
        return Signal::OptedOut("the pod uses the host network (never injected)".into());
    }
    let (value, source) = match (f.label(ISTIO_INJECT), f.annotation(ISTIO_INJECT)) {
        (Some(v), _) => (Some(v.trim()), "pod label"),
        (None, Some(v)) => (Some(v), "pod annotation"),
        (None, None) => (None, ""),
    };
    let value = value.filter(|v| !v.is_empty());
    if let Some(v) = value {
        let lower = v.to_ascii_lowercase();
        if !INJECT_YES.contains(&lower.as_str()) {
            // The usual switches are quoted; anything else is not echoed.
            return Signal::OptedOut(
                if ["false", "no", "n", "off", "disabled"].contains(&lower.as_str()) {
                    format!("{source} {ISTIO_INJECT}: \"{lower}\"")
                } else {
                    format!("{source} {ISTIO_INJECT} is set to a value the injector reads as no")
                },
            );
        }
    }
    if ns_label(ns, "istio-injection") == Some("disabled") {
        return Signal::OptedOut("namespace label istio-injection=disabled".into());
    }
    if ns_label(ns, "istio-injection") == Some("enabled") {
        return Signal::Present("namespace label istio-injection=enabled".into());
    }
    if ns_label(ns, "istio.io/rev").is_some_and(|v| !v.is_empty()) {
        return Signal::Present("namespace label istio.io/rev".into());
    }
    // Outside an injection namespace only the pod's labels call the webhook.
    if f.label(ISTIO_INJECT) == Some("true") {
        return Signal::Present(format!("pod label {ISTIO_INJECT}: \"true\""));
    }
    if f.label("istio.io/rev").is_some_and(|v| !v.is_empty()) {
        return Signal::Present("pod label istio.io/rev".into());
    }
    if source == "pod annotation" {
        return Signal::OptedOut(format!(
            "pod annotation {ISTIO_INJECT} alone does not call the injector outside a namespace \
             labeled istio-injection=enabled or istio.io/rev (the label does)"
        ));
    }
    Signal::Absent
}

/// Ports listed in an Istio or Linkerd port annotation (`8080,8443`, `*`, ranges `80-90`).
pub(super) fn listed_ports(value: &str) -> (bool, Vec<(u32, u32)>) {
    let mut all = false;
    let mut ranges = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part == "*" {
            all = true;
            continue;
        }
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u32>(), hi.trim().parse::<u32>()) {
            ranges.push((lo, hi));
        }
    }
    (all, ranges)
}

fn in_ranges(port: u32, ranges: &[(u32, u32)]) -> bool {
    ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&port))
}

/// Inbound traffic the sidecar does not capture stays plaintext (`tools/istio-iptables`):
/// `sidecar.istio.io/interceptionMode: NONE` installs no redirection at all; an empty
/// `traffic.sidecar.istio.io/includeInboundPorts` captures nothing, a list captures only those
/// ports; `excludeInboundPorts` bypasses the ports it lists. `Some` names what is left plaintext.
fn inbound_capture(f: &PodFacts) -> Option<Signal> {
    if f.annotation("sidecar.istio.io/interceptionMode")
        .is_some_and(|m| m.eq_ignore_ascii_case("NONE"))
    {
        return Some(Signal::OptedOut(
            "pod annotation sidecar.istio.io/interceptionMode: NONE (no inbound traffic is redirected to the sidecar)".into(),
        ));
    }
    if let Some(include) = f.annotation("traffic.sidecar.istio.io/includeInboundPorts") {
        let (all, ranges) = listed_ports(include);
        if !all {
            if ranges.is_empty() {
                return Some(Signal::OptedOut(
                    "pod annotation traffic.sidecar.istio.io/includeInboundPorts is empty (no inbound port is captured)".into(),
                ));
            }
            let missed: Vec<String> = f
                .ports
                .iter()
                .filter(|p| !in_ranges(**p, &ranges))
                .map(u32::to_string)
                .collect();
            if !missed.is_empty() {
                return Some(Signal::OptedOut(format!(
                    "pod annotation traffic.sidecar.istio.io/includeInboundPorts leaves container port(s) {} uncaptured",
                    missed.join(", ")
                )));
            }
        }
    }
    if let Some(exclude) = f.annotation("traffic.sidecar.istio.io/excludeInboundPorts") {
        let (_, ranges) = listed_ports(exclude);
        let bypassed: Vec<String> = f
            .ports
            .iter()
            .filter(|p| in_ranges(**p, &ranges))
            .map(u32::to_string)
            .collect();
        if !bypassed.is_empty() {
            return Some(Signal::OptedOut(format!(
                "pod annotation traffic.sidecar.istio.io/excludeInboundPorts bypasses the sidecar for container port(s) {}",
                bypassed.join(", ")
            )));
        }
    }
    None
}

/// Istio ambient mode: `istio.io/dataplane-mode=ambient` on the pod or namespace, or the pod
/// annotation `ambient.istio.io/redirection: enabled` that the Istio CNI writes when it has
/// enrolled the pod (its traffic redirected to ztunnel); `none` on the pod opts out.
pub(super) fn istio_ambient_signal(f: &PodFacts, ns: Option<&NamespaceInfo>) -> Signal {
    match f.label("istio.io/dataplane-mode") {
        Some("none") => Signal::OptedOut("pod label istio.io/dataplane-mode=none".into()),
        Some("ambient") => Signal::Present("pod label istio.io/dataplane-mode=ambient".into()),
        _ if f.annotation(AMBIENT_REDIRECTION) == Some("enabled") => Signal::Present(format!(
            "pod annotation {AMBIENT_REDIRECTION}: enabled (the Istio CNI enrolled the pod)"
        )),
        _ if ns_label(ns, "istio.io/dataplane-mode") == Some("ambient") => {
            Signal::Present("namespace label istio.io/dataplane-mode=ambient".into())
        }
        _ => Signal::Absent,
    }
}

pub(super) fn mode_name(m: MtlsMode) -> &'static str {
    match m {
        MtlsMode::Unset => "UNSET",
        MtlsMode::Disable => "DISABLE",
        MtlsMode::Permissive => "PERMISSIVE",
        MtlsMode::Strict => "STRICT",
    }
}

/// Weaker modes rank lower (UNSET never reaches a comparison: it is resolved first).
pub(super) fn strength(m: MtlsMode) -> u8 {
    match m {
        MtlsMode::Disable => 0,
        MtlsMode::Unset | MtlsMode::Permissive => 1,
        MtlsMode::Strict => 2,
    }
}

/// The effective PeerAuthentication for a pod.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct EffectivePeerAuth {
    pub(super) mode: MtlsMode,
    /// Where the mode comes from, for messages.
    pub(super) source: String,
    /// A port-level override weaker than STRICT on one of the pod's ports: (PA, port, mode).
    pub(super) port_override: Option<(String, u32, MtlsMode)>,
}

impl EffectivePeerAuth {
    fn strict(&self) -> bool {
        self.mode == MtlsMode::Strict && self.port_override.is_none()
    }
}

/// Resolve one level: each candidate's mode, UNSET inheriting the parent; when several apply
/// (Istio would pick the oldest, which phi-guard cannot see) the weakest counts.
pub(super) fn resolve_level(
    candidates: &[&PeerAuthInfo],
    scope: &str,
    parent: (MtlsMode, String),
) -> (MtlsMode, String) {
    candidates
        .iter()
        .map(|pa| match pa.mode {
            MtlsMode::Unset => (
                parent.0,
                format!(
                    "{} (inherited through {scope} PeerAuthentication {}/{} with mode UNSET)",
                    parent.1, pa.namespace, pa.name
                ),
            ),
            m => (
                m,
                format!("{scope} PeerAuthentication {}/{}", pa.namespace, pa.name),
            ),
        })
        .min_by_key(|(m, _)| strength(*m))
        .unwrap_or(parent)
}

/// Workload-scoped PeerAuthentication (selector matches the pod) > namespace-wide > mesh-wide in
/// the root namespace; nothing at all means PERMISSIVE.
pub(super) fn effective_peer_auth(
    f: &PodFacts,
    ctx: &RuleContext,
    root: &str,
) -> EffectivePeerAuth {
    let mesh_pas = ctx.cluster.peer_authentications(root);
    let mesh: Vec<&PeerAuthInfo> = mesh_pas
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| p.selector.is_none())
        .collect();
    let default = (
        MtlsMode::Permissive,
        "Istio's default, as no PeerAuthentication applies".to_string(),
    );
    let mesh_level = resolve_level(&mesh, "mesh-wide", default);

    let ns_pas = ctx.cluster.peer_authentications(f.namespace);
    let ns_level = if f.namespace == root {
        mesh_level
    } else {
        let ns_wide: Vec<&PeerAuthInfo> = ns_pas
            .iter()
            .map(|p| p.as_ref())
            .filter(|p| p.selector.is_none())
            .collect();
        resolve_level(&ns_wide, "namespace-wide", mesh_level)
    };
    let workload: Vec<&PeerAuthInfo> = ns_pas
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| {
            p.selector
                .as_ref()
                .is_some_and(|sel| sel.iter().all(|(k, v)| f.labels.get(k) == Some(v)))
        })
        .collect();
    let (mode, source) = resolve_level(&workload, "workload", ns_level);
    // Port-level settings only apply with a workload selector (Istio ignores them otherwise).
    let port_override = workload.iter().find_map(|pa| {
        f.ports.iter().find_map(|port| {
            pa.port_level
                .get(port)
                .filter(|m| matches!(m, MtlsMode::Disable | MtlsMode::Permissive))
                .map(|m| (format!("{}/{}", pa.namespace, pa.name), *port, *m))
        })
    });
    EffectivePeerAuth {
        mode,
        source,
        port_override,
    }
}

/// Judge Istio evidence (sidecar or ambient) given its signal.
pub(super) fn istio_evidence<'a>(
    what: &'a str,
    signal: Signal,
    f: &'a PodFacts,
    ctx: &RuleContext,
    cfg: &'a InTransitConfig,
    enable_fix: &'a str,
) -> Evidence<'a> {
    let strict_fix = move || {
        format!(
            "apply a PeerAuthentication with spec.mtls.mode: STRICT (mesh-wide in {}, namespace-wide in {}, or selecting these pods)",
            cfg.istio_root_namespace, f.namespace
        )
    };
    match signal {
        Signal::Absent => Evidence::missing(move || {
            (
                format!("no {what}"),
                format!("{enable_fix} and {}", strict_fix()),
            )
        }),
        Signal::OptedOut(why) => Evidence::missing(move || {
            (
                format!("{what} is switched off ({why})"),
                format!("remove the opt-out, {enable_fix} and {}", strict_fix()),
            )
        }),
        Signal::Present(_) if !cfg.require_strict_peer_authentication => Evidence::Holds,
        Signal::Present(why) => {
            let eff = effective_peer_auth(f, ctx, &cfg.istio_root_namespace);
            if eff.strict() {
                return Evidence::Holds;
            }
            match eff.port_override {
                Some((pa, port, m)) if eff.mode == MtlsMode::Strict => {
                    Evidence::missing(move || {
                        (
                        format!(
                            "{what} is enabled ({why}) and mTLS is STRICT, but workload PeerAuthentication {pa} sets portLevelMtls {} for container port {port}",
                            mode_name(m)
                        ),
                        format!(
                            "remove the portLevelMtls override for port {port} from PeerAuthentication {pa} (or set it to STRICT)"
                        ),
                    )
                    })
                }
                _ => Evidence::missing(move || {
                    (
                        format!(
                            "{what} is enabled ({why}) but no STRICT PeerAuthentication applies (effective mode {}, from {})",
                            mode_name(eff.mode),
                            eff.source
                        ),
                        strict_fix(),
                    )
                }),
            }
        }
    }
}
