//! Istio: sidecar and ambient enrolment signals, and the effective PeerAuthentication
//! (workload > namespace > mesh root, port-level overrides) that decides whether mTLS is STRICT.

use super::*;

/// Istio sidecar injection, as the injector decides it: a disabled label on either the pod or
/// the namespace wins, then an enabled one; an injected `istio-proxy` settles it.
pub(super) fn istio_sidecar_signal(f: &PodFacts, ns: Option<&NamespaceInfo>) -> Signal {
    if f.has_container(ISTIO_PROXY) {
        return Signal::Present("an istio-proxy container".into());
    }
    if f.label("sidecar.istio.io/inject") == Some("false") {
        return Signal::OptedOut("pod label sidecar.istio.io/inject: \"false\"".into());
    }
    if ns_label(ns, "istio-injection") == Some("disabled") {
        return Signal::OptedOut("namespace label istio-injection=disabled".into());
    }
    if f.label("sidecar.istio.io/inject") == Some("true") {
        return Signal::Present("pod label sidecar.istio.io/inject: \"true\"".into());
    }
    if ns_label(ns, "istio-injection") == Some("enabled") {
        return Signal::Present("namespace label istio-injection=enabled".into());
    }
    if ns_label(ns, "istio.io/rev").is_some_and(|v| !v.is_empty()) {
        return Signal::Present("namespace label istio.io/rev".into());
    }
    if f.label("istio.io/rev").is_some_and(|v| !v.is_empty()) {
        return Signal::Present("pod label istio.io/rev".into());
    }
    Signal::Absent
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
pub(super) fn istio_evidence(
    what: &str,
    signal: Signal,
    f: &PodFacts,
    ctx: &RuleContext,
    cfg: &InTransitConfig,
    enable_fix: &str,
) -> Evidence {
    let strict_fix = format!(
        "apply a PeerAuthentication with spec.mtls.mode: STRICT (mesh-wide in {}, namespace-wide in {}, or selecting these pods)",
        cfg.istio_root_namespace, f.namespace
    );
    match signal {
        Signal::Absent => Evidence::Missing {
            observed: format!("no {what}"),
            fix: format!("{enable_fix} and {strict_fix}"),
        },
        Signal::OptedOut(why) => Evidence::Missing {
            observed: format!("{what} is switched off ({why})"),
            fix: format!("remove the opt-out, {enable_fix} and {strict_fix}"),
        },
        Signal::Present(_) if !cfg.require_strict_peer_authentication => Evidence::Holds,
        Signal::Present(why) => {
            let eff = effective_peer_auth(f, ctx, &cfg.istio_root_namespace);
            if eff.strict() {
                return Evidence::Holds;
            }
            match eff.port_override {
                Some((pa, port, m)) if eff.mode == MtlsMode::Strict => Evidence::Missing {
                    observed: format!(
                        "{what} is enabled ({why}) and mTLS is STRICT, but workload PeerAuthentication {pa} sets portLevelMtls {} for container port {port}",
                        mode_name(m)
                    ),
                    fix: format!(
                        "remove the portLevelMtls override for port {port} from PeerAuthentication {pa} (or set it to STRICT)"
                    ),
                },
                _ => Evidence::Missing {
                    observed: format!(
                        "{what} is enabled ({why}) but no STRICT PeerAuthentication applies (effective mode {}, from {})",
                        mode_name(eff.mode),
                        eff.source
                    ),
                    fix: strict_fix,
                },
            }
        }
    }
}
