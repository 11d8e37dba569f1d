//! Evidence from the platform (CNI transparent encryption: Cilium, Calico, Antrea, Flannel) and
//! from meshes recognized by their injection annotations (Consul).
//!
//! CNI encryption is read from the watch cache (`ClusterView::platform_encryption`); it is
//! cluster-wide and covers traffic between nodes only: two pods on the same node talk through
//! the node's own network stack, unencrypted. Every message about it says so, and none of these
//! kinds is in the default accepted list.

use super::*;
use crate::view::PlatformSource;

#[cfg(test)]
mod tests;

/// Said of every CNI evidence, held or missing.
const NODE_TO_NODE_ONLY: &str =
    "node-to-node only: traffic between pods on the same node is not encrypted";

/// The platform source a CNI evidence kind reads, with the product name and how to turn it on.
fn platform_of(e: TransitEvidence) -> Option<(PlatformSource, &'static str, &'static str)> {
    match e {
        TransitEvidence::CiliumEncryption => Some((
            PlatformSource::Cilium,
            "Cilium transparent encryption",
            "set enable-wireguard: \"true\" (or enable-ipsec: \"true\" with its keys) in ConfigMap kube-system/cilium-config (helm: encryption.enabled=true, encryption.type=wireguard) and restart the Cilium agents",
        )),
        TransitEvidence::CalicoWireGuard => Some((
            PlatformSource::Calico,
            "Calico WireGuard encryption",
            "set spec.wireguardEnabled: true (and wireguardEnabledV6 for IPv6) in FelixConfiguration default",
        )),
        TransitEvidence::AntreaEncryption => Some((
            PlatformSource::Antrea,
            "Antrea traffic encryption",
            "set trafficEncryptionMode: wireGuard (or ipsec) in antrea-agent.conf of ConfigMap kube-system/antrea-config and restart the Antrea agents",
        )),
        TransitEvidence::FlannelEncryption => Some((
            PlatformSource::Flannel,
            "Flannel encrypted backend",
            "set Backend.Type to wireguard in net-conf.json of ConfigMap kube-flannel/kube-flannel-cfg and restart the Flannel daemons",
        )),
        _ => None,
    }
}

/// The CNI evidence kinds, in the order they are judged.
pub(super) const PLATFORM_EVIDENCE: [TransitEvidence; 4] = [
    TransitEvidence::CiliumEncryption,
    TransitEvidence::CalicoWireGuard,
    TransitEvidence::AntreaEncryption,
    TransitEvidence::FlannelEncryption,
];

/// Judge one kind of CNI evidence: what phi-guard saw of its object, and what is missing.
pub(super) fn platform_evidence<'a>(e: TransitEvidence, ctx: &RuleContext) -> Evidence<'a> {
    let Some((source, product, fix)) = platform_of(e) else {
        return Evidence::missing(|| ("not a platform evidence kind".into(), String::new()));
    };
    let fix = move || format!("{fix} ({product} is {NODE_TO_NODE_ONLY})");
    match ctx.cluster.platform_encryption(source) {
        Some(p) if p.encrypts() => Evidence::Holds,
        Some(_) => Evidence::missing(move || {
            (
                format!(
                    "{product} is off: {} enables none of its encryption settings ({product} would be {NODE_TO_NODE_ONLY})",
                    source.object()
                ),
                fix(),
            )
        }),
        None => Evidence::missing(move || {
            (
                format!(
                    "{product} is not proven: phi-guard has not seen {} (not installed, not readable by phi-guard, or not yet in its cache)",
                    source.object()
                ),
                fix(),
            )
        }),
    }
}

pub(super) const CONSUL_INJECT_STATUS: &str = "consul.hashicorp.com/connect-inject-status";
pub(super) const CONSUL_INJECT: &str = "consul.hashicorp.com/connect-inject";

/// Consul service mesh: the injector's `connect-inject-status: injected` on the pod, or the
/// request annotation `connect-inject: "true"` on the pod template (`"false"` opts out). The
/// mTLS mode lives in Consul's Mesh/ServiceDefaults/ProxyDefaults, which phi-guard does not
/// read; the policy's listing of Consul attests it is not permissive.
pub(super) fn consul_evidence<'a>(f: &PodFacts) -> Evidence<'a> {
    let fix = || {
        format!(
            "annotate the pod template {CONSUL_INJECT}: \"true\" (Consul connect injection) and keep mutualTLSMode strict (Mesh allowEnablingPermissiveMutualTLS: false)"
        )
    };
    if f.annotation(CONSUL_INJECT_STATUS) == Some("injected") {
        return Evidence::Holds;
    }
    match f.annotation(CONSUL_INJECT) {
        Some(v) if v.eq_ignore_ascii_case("true") => Evidence::Holds,
        Some(v) if v.eq_ignore_ascii_case("false") => Evidence::missing(move || {
            (
                format!("Consul connect injection is switched off (pod annotation {CONSUL_INJECT}: \"false\")"),
                format!("remove the opt-out and {}", fix()),
            )
        }),
        _ => Evidence::missing(move || {
            (
                format!(
                    "no Consul connect injection (neither {CONSUL_INJECT_STATUS}: injected nor {CONSUL_INJECT}: \"true\")"
                ),
                fix(),
            )
        }),
    }
}

const KUMA_INJECTION: &str = "kuma.io/sidecar-injection";
const KUMA_MESH: &str = "kuma.io/mesh";

fn kuma_on(v: Option<&str>) -> Option<bool> {
    match v? {
        "enabled" | "true" => Some(true),
        "disabled" | "false" => Some(false),
        _ => None,
    }
}

/// Kuma sidecar injection (kumahq/kuma pkg/plugins/runtime/k8s/metadata/annotations.go): a
/// `kuma-sidecar` container or `kuma.io/sidecar-injected: "true"`; `kuma.io/sidecar-injection`
/// as a label (or, deprecated, an annotation) on the pod, then on the namespace.
fn kuma_signal(f: &PodFacts, ns: Option<&NamespaceInfo>) -> Signal {
    let pod = kuma_on(f.label(KUMA_INJECTION)).or(kuma_on(f.annotation(KUMA_INJECTION)));
    if pod == Some(false) {
        return Signal::OptedOut(format!("pod {KUMA_INJECTION}: disabled"));
    }
    if f.has_container("kuma-sidecar") || f.annotation("kuma.io/sidecar-injected") == Some("true") {
        return Signal::Present("a kuma-sidecar container".into());
    }
    if pod == Some(true) {
        return Signal::Present(format!("pod {KUMA_INJECTION}: enabled"));
    }
    match kuma_on(ns_label(ns, KUMA_INJECTION)).or(kuma_on(ns_annotation(ns, KUMA_INJECTION))) {
        Some(true) => Signal::Present(format!("namespace {KUMA_INJECTION}: enabled")),
        _ => Signal::Absent,
    }
}

/// Kuma / Kong Mesh: injected, in a Mesh (`kuma.io/mesh` on the pod or namespace, else
/// `default`) whose `spec.mtls.enabledBackend` is set and not PERMISSIVE, with no MeshTLS policy
/// of that Mesh setting `mode: Permissive` (their `targetRef`s are not resolved: a permissive
/// one counts against every workload of the Mesh, which errs on the safe side).
pub(super) fn kuma_evidence<'a>(
    f: &'a PodFacts,
    ns: Option<&'a NamespaceInfo>,
    ctx: &RuleContext,
) -> Evidence<'a> {
    let enable = || format!("label the namespace {KUMA_INJECTION}=enabled");
    let why = match kuma_signal(f, ns) {
        Signal::Absent => {
            return Evidence::missing(move || {
                (
                    "no Kuma sidecar injection".into(),
                    format!(
                        "{} in a Mesh with mTLS (spec.mtls.enabledBackend) in STRICT mode",
                        enable()
                    ),
                )
            })
        }
        Signal::OptedOut(why) => {
            return Evidence::missing(move || {
                (
                    format!("Kuma sidecar injection is switched off ({why})"),
                    format!("remove the opt-out and {}", enable()),
                )
            })
        }
        Signal::Present(why) => why,
    };
    let mesh = f
        .label(KUMA_MESH)
        .or(f.annotation(KUMA_MESH))
        .or(ns_label(ns, KUMA_MESH))
        .or(ns_annotation(ns, KUMA_MESH))
        .filter(|m| !m.is_empty())
        .unwrap_or("default");
    let fix = move || {
        format!(
            "set spec.mtls.enabledBackend on Mesh {mesh:?} to a backend in STRICT mode (Kuma's default)"
        )
    };
    match ctx.cluster.kuma_mesh(mesh) {
        Some(m) if m.mtls_enabled && !m.permissive => {
            let permissive: Vec<String> = ctx
                .cluster
                .kuma_mesh_tls(mesh)
                .iter()
                .filter(|t| t.permissive)
                .map(|t| format!("{}/{}", t.namespace, t.name))
                .collect();
            if permissive.is_empty() {
                return Evidence::Holds;
            }
            Evidence::missing(move || {
                (
                    format!(
                        "Kuma sidecar injection is enabled ({why}) and Mesh {mesh:?} has mTLS, but MeshTLS {} sets mode: Permissive (plaintext accepted; phi-guard does not resolve its targetRef)",
                        permissive.join(", ")
                    ),
                    "set mode: Strict in those MeshTLS policies (or delete them)".into(),
                )
            })
        }
        Some(m) if m.mtls_enabled => Evidence::missing(move || {
            (
                format!("Kuma sidecar injection is enabled ({why}) but Mesh {mesh:?} runs its mTLS backend in PERMISSIVE mode (plaintext accepted)"),
                fix(),
            )
        }),
        Some(_) => Evidence::missing(move || {
            (
                format!("Kuma sidecar injection is enabled ({why}) but Mesh {mesh:?} has no spec.mtls.enabledBackend: its traffic is not encrypted"),
                fix(),
            )
        }),
        None => Evidence::missing(move || {
            (
                format!("Kuma sidecar injection is enabled ({why}) but phi-guard does not know Mesh {mesh:?}, so mTLS is not proven"),
                fix(),
            )
        }),
    }
}
