//! The `encryption-in-transit` rule (45 CFR 164.312(e)(1), (e)(2)(ii)): PHI pods are meshed with
//! enforced mTLS (Istio sidecar or ambient with an effective STRICT PeerAuthentication, Linkerd
//! with an authenticated default inbound policy) or mount cert-manager TLS material; mesh bypass
//! annotations are refused; Ingresses to PHI pods cover every host with TLS; Services in front
//! of unmeshed PHI pods expose no plaintext ports. Port names are never evidence.

use crate::object::{Body, IngressTlsView, IngressView, Object, PodView, VolumeSource};
use crate::policy::{InTransitConfig, TransitEvidence, LINKERD_INBOUND_POLICIES};
use crate::rules::RuleContext;
use crate::selector::Labels;
use crate::verdict::{Finding, RuleId};
use crate::view::{MtlsMode, NamespaceInfo, PeerAuthInfo, PodInfo, ServiceInfo};

/// Pod annotations that make traffic bypass the mesh proxy.
pub const MESH_BYPASS_ANNOTATIONS: [&str; 5] = [
    "traffic.sidecar.istio.io/excludeInboundPorts",
    "traffic.sidecar.istio.io/excludeOutboundPorts",
    "traffic.sidecar.istio.io/excludeOutboundIPRanges",
    "config.linkerd.io/skip-inbound-ports",
    "config.linkerd.io/skip-outbound-ports",
];

/// Service port protocols (appProtocol, or the port name prefix) that carry TLS.
const ENCRYPTED_PROTOCOLS: [&str; 5] = ["https", "tls", "grpcs", "wss", "kubernetes.io/wss"];

const CERT_MANAGER_CSI_DRIVER: &str = "csi.cert-manager.io";
const ISTIO_PROXY: &str = "istio-proxy";
const LINKERD_PROXY: &str = "linkerd-proxy";
const LINKERD_INJECT: &str = "linkerd.io/inject";
const LINKERD_INBOUND_POLICY: &str = "config.linkerd.io/default-inbound-policy";

/// Every encryption-in-transit finding for the workload.
pub fn check(w: &Object, ctx: &RuleContext, cfg: &InTransitConfig) -> Vec<Finding> {
    let mut out = Vec::new();
    match &w.body {
        Body::Pods(p) => {
            check_pod(w, p, ctx, cfg, &mut out);
            if cfg.forbid_mesh_bypass {
                check_bypass(p, cfg, &mut out);
            }
        }
        Body::Ingress(ing) if cfg.require_ingress_tls => check_ingress(w, ing, ctx, cfg, &mut out),
        Body::Service(svc) if cfg.forbid_plaintext_service_ports => {
            check_service(w, svc, ctx, cfg, &mut out)
        }
        _ => {}
    }
    out
}

fn finding(
    cfg: &InTransitConfig,
    path: impl Into<String>,
    message: String,
    fix: String,
) -> Finding {
    Finding::new(RuleId::EncryptionInTransit, cfg.mode, path, message, fix)
}

/// What mesh detection reads of a pod, from a pod spec under review or a cached [`PodInfo`].
struct PodFacts<'a> {
    namespace: &'a str,
    labels: &'a Labels,
    annotations: &'a Labels,
    /// Containers that run for the pod's lifetime: app containers and native sidecars.
    containers: Vec<&'a str>,
    /// Container ports of the app containers (for port-level PeerAuthentication).
    ports: Vec<u32>,
}

impl<'a> PodFacts<'a> {
    fn from_view(namespace: &'a str, p: &'a PodView) -> Self {
        PodFacts {
            namespace,
            labels: &p.labels,
            annotations: &p.annotations,
            containers: p
                .spec
                .containers
                .iter()
                .chain(
                    p.spec
                        .init_containers
                        .iter()
                        .filter(|c| c.is_native_sidecar()),
                )
                .map(|c| c.name.as_str())
                .collect(),
            ports: p
                .spec
                .containers
                .iter()
                .flat_map(|c| c.ports.iter())
                .filter_map(|port| u32::try_from(port.container_port).ok())
                .collect(),
        }
    }

    fn from_info(p: &'a PodInfo) -> Self {
        PodFacts {
            namespace: &p.namespace,
            labels: &p.labels,
            annotations: &p.annotations,
            // Cached pods keep container and init container names together; a proxy among
            // init containers is a native sidecar in practice.
            containers: p.container_names.iter().map(String::as_str).collect(),
            ports: Vec::new(),
        }
    }

    fn has_container(&self, name: &str) -> bool {
        self.containers.contains(&name)
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(|v| v.trim())
    }
}

/// Is a mesh (or TLS) signal there, switched off, or absent? The strings say which field.
enum Signal {
    Present(String),
    OptedOut(String),
    Absent,
}

/// One kind of evidence, judged: accepted, or what was seen and how to fix it.
enum Evidence {
    Holds,
    Missing { observed: String, fix: String },
}

fn ns_label<'n>(ns: Option<&'n NamespaceInfo>, key: &str) -> Option<&'n str> {
    ns.and_then(|n| n.labels.get(key)).map(String::as_str)
}

fn ns_annotation<'n>(ns: Option<&'n NamespaceInfo>, key: &str) -> Option<&'n str> {
    ns.and_then(|n| n.annotations.get(key)).map(|v| v.trim())
}

/// Istio sidecar injection, as the injector decides it: a disabled label on either the pod or
/// the namespace wins, then an enabled one; an injected `istio-proxy` settles it.
fn istio_sidecar_signal(f: &PodFacts, ns: Option<&NamespaceInfo>) -> Signal {
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

/// Istio ambient mode: `istio.io/dataplane-mode=ambient` on the pod or namespace; `none` on the
/// pod opts out.
fn istio_ambient_signal(f: &PodFacts, ns: Option<&NamespaceInfo>) -> Signal {
    match f.label("istio.io/dataplane-mode") {
        Some("none") => Signal::OptedOut("pod label istio.io/dataplane-mode=none".into()),
        Some("ambient") => Signal::Present("pod label istio.io/dataplane-mode=ambient".into()),
        _ if ns_label(ns, "istio.io/dataplane-mode") == Some("ambient") => {
            Signal::Present("namespace label istio.io/dataplane-mode=ambient".into())
        }
        _ => Signal::Absent,
    }
}

/// Linkerd proxy injection: a `linkerd-proxy` container, or `linkerd.io/inject: enabled` on the
/// pod template or namespace (`disabled` on the pod opts out).
fn linkerd_signal(f: &PodFacts, ns: Option<&NamespaceInfo>) -> Signal {
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

fn mode_name(m: MtlsMode) -> &'static str {
    match m {
        MtlsMode::Unset => "UNSET",
        MtlsMode::Disable => "DISABLE",
        MtlsMode::Permissive => "PERMISSIVE",
        MtlsMode::Strict => "STRICT",
    }
}

/// Weaker modes rank lower (UNSET never reaches a comparison: it is resolved first).
fn strength(m: MtlsMode) -> u8 {
    match m {
        MtlsMode::Disable => 0,
        MtlsMode::Unset | MtlsMode::Permissive => 1,
        MtlsMode::Strict => 2,
    }
}

/// The effective PeerAuthentication for a pod.
#[derive(Debug, Clone, PartialEq)]
struct EffectivePeerAuth {
    mode: MtlsMode,
    /// Where the mode comes from, for messages.
    source: String,
    /// A port-level override weaker than STRICT on one of the pod's ports: (PA, port, mode).
    port_override: Option<(String, u32, MtlsMode)>,
}

impl EffectivePeerAuth {
    fn strict(&self) -> bool {
        self.mode == MtlsMode::Strict && self.port_override.is_none()
    }
}

/// Resolve one level: each candidate's mode, UNSET inheriting the parent; when several apply
/// (Istio would pick the oldest, which phi-guard cannot see) the weakest counts.
fn resolve_level(
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
fn effective_peer_auth(f: &PodFacts, ctx: &RuleContext, root: &str) -> EffectivePeerAuth {
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
fn istio_evidence(
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

/// Judge Linkerd evidence: injected, with an accepted default inbound policy
/// (pod annotation > namespace annotation > cluster default).
fn linkerd_evidence(f: &PodFacts, ns: Option<&NamespaceInfo>, cfg: &InTransitConfig) -> Evidence {
    let accepted = cfg
        .linkerd_accepted_inbound_policies
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let enable_fix = format!(
        "annotate the pod template or namespace linkerd.io/inject: enabled with {LINKERD_INBOUND_POLICY} set to one of {accepted}"
    );
    match linkerd_signal(f, ns) {
        Signal::Absent => Evidence::Missing {
            observed: "no Linkerd proxy injection".into(),
            fix: enable_fix,
        },
        Signal::OptedOut(why) => Evidence::Missing {
            observed: format!("Linkerd proxy injection is switched off ({why})"),
            fix: format!("remove the opt-out and {enable_fix}"),
        },
        Signal::Present(why) => {
            let (policy, source) = if let Some(v) = f.annotation(LINKERD_INBOUND_POLICY) {
                (v.to_string(), "pod annotation")
            } else if let Some(v) = ns_annotation(ns, LINKERD_INBOUND_POLICY) {
                (v.to_string(), "namespace annotation")
            } else {
                (
                    cfg.linkerd_cluster_default_inbound_policy.clone(),
                    "the cluster default",
                )
            };
            if cfg.linkerd_accepted_inbound_policies.contains(&policy) {
                return Evidence::Holds;
            }
            // Annotation values are echoed only when they are one of Linkerd's known policies.
            let shown = if LINKERD_INBOUND_POLICIES.contains(&policy.as_str()) {
                policy
            } else {
                "an unrecognized value".into()
            };
            Evidence::Missing {
                observed: format!(
                    "Linkerd proxy injection is enabled ({why}) but the default inbound policy is {shown} (from {source}), not one of {accepted}"
                ),
                fix: format!(
                    "set annotation {LINKERD_INBOUND_POLICY} to one of {accepted} on the pod template or namespace"
                ),
            }
        }
    }
}

/// App-level TLS: a mounted csi.cert-manager.io volume, or a mounted Secret (plain or projected)
/// that a cert-manager Certificate issues. Secret data is never read.
fn app_tls_evidence(namespace: &str, p: &PodView, ctx: &RuleContext) -> Evidence {
    let mounted = |vol: &str| {
        p.spec
            .containers
            .iter()
            .chain(p.spec.init_containers.iter())
            .any(|c| c.volume_mounts.iter().any(|m| m.name == vol))
    };
    let mut unissued: Vec<&str> = Vec::new();
    for v in p.spec.volumes.iter().filter(|v| mounted(&v.name)) {
        let secrets: Vec<&str> = match &v.source {
            VolumeSource::Csi { driver } if driver == CERT_MANAGER_CSI_DRIVER => {
                return Evidence::Holds
            }
            VolumeSource::Secret { secret_name } => vec![secret_name.as_str()],
            VolumeSource::Projected { secret_names } => {
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
    let mut observed = "no app-level TLS material mounted (a csi.cert-manager.io volume or a Secret issued by a cert-manager Certificate)".to_string();
    if !unissued.is_empty() {
        let names: Vec<String> = unissued.iter().map(|s| format!("{s:?}")).collect();
        observed.push_str(&format!(
            "; mounted Secret(s) {} are not issued by any cert-manager Certificate phi-guard knows",
            names.join(", ")
        ));
    }
    Evidence::Missing {
        observed,
        fix: "mount a certificate from cert-manager (a csi.cert-manager.io volume, or the Secret of a Certificate) and serve TLS with it".into(),
    }
}

/// Judge mesh evidence (everything but app TLS) for a pod: `Ok` when one accepted kind holds,
/// else what was seen and how to fix it, per accepted kind.
fn mesh_evidence(
    f: &PodFacts,
    ctx: &RuleContext,
    cfg: &InTransitConfig,
) -> Result<(), Vec<(String, String)>> {
    let ns = ctx.namespace.as_deref();
    let mut missing = Vec::new();
    let mut judge = |e: Evidence| match e {
        Evidence::Holds => true,
        Evidence::Missing { observed, fix } => {
            missing.push((observed, fix));
            false
        }
    };
    if cfg.accepts(TransitEvidence::IstioSidecar)
        && judge(istio_evidence(
            "Istio sidecar injection",
            istio_sidecar_signal(f, ns),
            f,
            ctx,
            cfg,
            "label the namespace istio-injection=enabled (or the pod template sidecar.istio.io/inject: \"true\")",
        ))
    {
        return Ok(());
    }
    if cfg.accepts(TransitEvidence::IstioAmbient)
        && judge(istio_evidence(
            "Istio ambient mode",
            istio_ambient_signal(f, ns),
            f,
            ctx,
            cfg,
            "label the namespace istio.io/dataplane-mode=ambient",
        ))
    {
        return Ok(());
    }
    if cfg.accepts(TransitEvidence::Linkerd) && judge(linkerd_evidence(f, ns, cfg)) {
        return Ok(());
    }
    Err(missing)
}

fn check_pod(
    w: &Object,
    p: &PodView,
    ctx: &RuleContext,
    cfg: &InTransitConfig,
    out: &mut Vec<Finding>,
) {
    let facts = PodFacts::from_view(&w.namespace, p);
    let mut missing = match mesh_evidence(&facts, ctx, cfg) {
        Ok(()) => return,
        Err(m) => m,
    };
    if cfg.accepts(TransitEvidence::AppTls) {
        match app_tls_evidence(&w.namespace, p, ctx) {
            Evidence::Holds => return,
            Evidence::Missing { observed, fix } => missing.push((observed, fix)),
        }
    }
    let observed: Vec<&str> = missing.iter().map(|(o, _)| o.as_str()).collect();
    let fixes: Vec<String> = missing
        .iter()
        .enumerate()
        .map(|(i, (_, fix))| format!("({}) {fix}", i + 1))
        .collect();
    out.push(finding(
        cfg,
        p.meta_path,
        format!(
            "the pods of {} are not proven to encrypt traffic in transit: {}",
            w.display(),
            observed.join("; ")
        ),
        format!(
            "Do one of: {}. Port names are not evidence of TLS.",
            fixes.join("; ")
        ),
    ));
}

fn check_bypass(p: &PodView, cfg: &InTransitConfig, out: &mut Vec<Finding>) {
    for key in MESH_BYPASS_ANNOTATIONS {
        // An empty value excludes nothing. The value is never echoed.
        if p.annotations.get(key).is_some_and(|v| !v.trim().is_empty()) {
            out.push(finding(
                cfg,
                format!("{}.annotations[\"{key}\"]", p.meta_path),
                format!(
                    "annotation {key} makes some of the pod's traffic bypass the mesh proxy, unencrypted"
                ),
                format!(
                    "Remove annotation {key}; traffic that must skip the proxy has to carry its own TLS, and needs a policy exception."
                ),
            ));
        }
    }
}

/// Does a TLS host entry cover a rule host? `*.example.com` covers exactly one extra label.
fn tls_host_covers(tls_host: &str, host: &str) -> bool {
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

fn check_ingress(
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

/// Is a Service port declared as TLS? `appProtocol` first, else the port name's prefix.
fn port_protocol(name: Option<&str>, app_protocol: Option<&str>) -> Option<(String, &'static str)> {
    if let Some(ap) = app_protocol.map(str::trim).filter(|a| !a.is_empty()) {
        return Some((ap.to_ascii_lowercase(), "appProtocol"));
    }
    let n = name.map(str::trim).filter(|n| !n.is_empty())?;
    let prefix = n.split('-').next().unwrap_or(n);
    Some((prefix.to_ascii_lowercase(), "port name prefix"))
}

fn check_service(
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
        .filter(|p| mesh_evidence(&PodFacts::from_info(p), ctx, cfg).is_err())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterState;
    use crate::object::Kind;
    use crate::policy::{EncryptionInTransitSpec, Mode, PhiPolicySpec, Policy};
    use crate::view::{CertificateInfo, ClusterView};
    use serde_json::{json, Value};

    const NS: &str = "phi";
    const PHI: (&str, &str) = ("phiguard.io/data-classification", "phi");

    fn policy_with(f: impl FnOnce(&mut EncryptionInTransitSpec)) -> Policy {
        let mut spec = PhiPolicySpec::default();
        f(&mut spec.encryption_in_transit);
        Policy::from_spec("test", &spec).expect("valid policy")
    }

    fn labels(v: Value) -> Labels {
        serde_json::from_value(v).expect("labels")
    }

    fn state_with_ns(ns_labels: Value, ns_annotations: Value) -> ClusterState {
        let s = ClusterState::new();
        s.namespaces.insert(
            NS.into(),
            NamespaceInfo {
                name: NS.into(),
                labels: labels(ns_labels),
                annotations: labels(ns_annotations),
            },
        );
        s
    }

    fn add_pa(s: &ClusterState, v: Value) {
        let pa = PeerAuthInfo::from_value(&v).expect("peer authentication");
        s.peer_authentications
            .insert(pa.namespace.clone(), pa.name.clone(), pa);
    }

    fn pa(ns: &str, name: &str, spec: Value) -> Value {
        json!({ "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                "metadata": { "name": name, "namespace": ns }, "spec": spec })
    }

    fn mesh_strict(s: &ClusterState) {
        add_pa(
            s,
            pa(
                "istio-system",
                "default",
                json!({ "mtls": { "mode": "STRICT" } }),
            ),
        );
    }

    /// A PHI Pod with extra labels, annotations and spec fields merged in.
    fn pod(extra_labels: Value, annotations: Value, spec: Value) -> Object {
        let mut l = json!({ "app": "api", PHI.0: PHI.1 });
        if let (Some(l), Some(e)) = (l.as_object_mut(), extra_labels.as_object()) {
            l.extend(e.clone());
        }
        let mut sp = json!({ "containers": [{ "name": "app", "image": "app:1", "ports": [{ "name": "https", "containerPort": 8080 }] }] });
        if let (Some(sp), Some(e)) = (sp.as_object_mut(), spec.as_object()) {
            sp.extend(e.clone());
        }
        let v = json!({ "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "api", "labels": l, "annotations": annotations }, "spec": sp });
        Object::from_value(Kind::Pod, &v, Some(NS)).expect("pod")
    }

    fn plain_pod() -> Object {
        pod(json!({}), json!({}), json!({}))
    }

    fn run_with(w: &Object, s: &ClusterState, p: &Policy) -> Vec<Finding> {
        let ctx = RuleContext {
            cluster: s,
            policy: p,
            namespace: s.namespace(&w.namespace),
        };
        check(w, &ctx, p.encryption_in_transit.as_ref().expect("enabled"))
    }

    fn run(w: &Object, s: &ClusterState) -> Vec<Finding> {
        run_with(w, s, &policy_with(|_| {}))
    }

    fn one(f: &[Finding]) -> &Finding {
        assert_eq!(f.len(), 1, "{f:#?}");
        &f[0]
    }

    #[test]
    fn unmeshed_pod_gets_one_finding_listing_what_was_looked_for() {
        let s = state_with_ns(json!({}), json!({}));
        let f = run(&plain_pod(), &s);
        let f = one(&f);
        assert_eq!(f.rule, RuleId::EncryptionInTransit);
        assert_eq!(f.mode, Mode::Enforce);
        assert_eq!(f.path, "metadata");
        assert!(f.message.contains("Pod phi/api"));
        assert!(f.message.contains("no Istio sidecar injection"));
        assert!(f.message.contains("no Istio ambient mode"));
        assert!(f.message.contains("no Linkerd proxy injection"));
        assert!(f.message.contains("no app-level TLS material"));
        assert!(f
            .remediation
            .contains("(1) label the namespace istio-injection=enabled"));
        assert!(f
            .remediation
            .contains("(4) mount a certificate from cert-manager"));
        assert!(f.remediation.contains("Port names are not evidence"));
    }

    #[test]
    fn injection_without_strict_peer_authentication_is_not_enough() {
        let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
        let f = run(&plain_pod(), &s);
        assert!(
            one(&f).message.contains("Istio sidecar injection is enabled (namespace label istio-injection=enabled) but no STRICT PeerAuthentication applies (effective mode PERMISSIVE, from Istio's default, as no PeerAuthentication applies)"),
            "{}",
            f[0].message
        );
        assert!(f[0]
            .remediation
            .contains("spec.mtls.mode: STRICT (mesh-wide in istio-system, namespace-wide in phi"));

        mesh_strict(&s);
        assert!(run(&plain_pod(), &s).is_empty());

        // Without the STRICT requirement the injection label alone counts.
        let s = state_with_ns(json!({ "istio.io/rev": "1-24" }), json!({}));
        let lenient = policy_with(|c| c.require_strict_peer_authentication = false);
        assert!(run_with(&plain_pod(), &s, &lenient).is_empty());
        assert_eq!(run(&plain_pod(), &s).len(), 1);
    }

    #[test]
    fn mesh_root_namespace_is_configurable() {
        let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
        add_pa(
            &s,
            pa(
                "istio-config",
                "default",
                json!({ "mtls": { "mode": "STRICT" } }),
            ),
        );
        assert_eq!(run(&plain_pod(), &s).len(), 1);
        let p = policy_with(|c| c.istio_root_namespace = "istio-config".into());
        assert!(run_with(&plain_pod(), &s, &p).is_empty());
    }

    #[test]
    fn peer_authentication_scopes_namespace_overrides_mesh_and_workload_overrides_namespace() {
        let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
        mesh_strict(&s);
        add_pa(
            &s,
            pa(NS, "ns-wide", json!({ "mtls": { "mode": "PERMISSIVE" } })),
        );
        let f = run(&plain_pod(), &s);
        assert!(
            one(&f).message.contains(
                "effective mode PERMISSIVE, from namespace-wide PeerAuthentication phi/ns-wide"
            ),
            "{}",
            f[0].message
        );

        // A workload policy for other pods changes nothing.
        add_pa(
            &s,
            pa(
                NS,
                "other",
                json!({ "selector": { "matchLabels": { "app": "other" } }, "mtls": { "mode": "STRICT" } }),
            ),
        );
        assert_eq!(run(&plain_pod(), &s).len(), 1);

        add_pa(
            &s,
            pa(
                NS,
                "api",
                json!({ "selector": { "matchLabels": { "app": "api" } }, "mtls": { "mode": "STRICT" } }),
            ),
        );
        assert!(run(&plain_pod(), &s).is_empty());

        // ...and a workload DISABLE beats a STRICT namespace.
        let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
        add_pa(
            &s,
            pa(NS, "ns-wide", json!({ "mtls": { "mode": "STRICT" } })),
        );
        add_pa(
            &s,
            pa(
                NS,
                "api",
                json!({ "selector": { "matchLabels": { "app": "api" } }, "mtls": { "mode": "DISABLE" } }),
            ),
        );
        assert!(one(&run(&plain_pod(), &s))
            .message
            .contains("effective mode DISABLE, from workload PeerAuthentication phi/api"));
    }

    #[test]
    fn unset_inherits_from_the_next_level() {
        // Workload UNSET -> namespace STRICT.
        let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
        add_pa(
            &s,
            pa(NS, "ns-wide", json!({ "mtls": { "mode": "STRICT" } })),
        );
        add_pa(
            &s,
            pa(
                NS,
                "api",
                json!({ "selector": { "matchLabels": { "app": "api" } }, "mtls": { "mode": "UNSET" } }),
            ),
        );
        assert!(run(&plain_pod(), &s).is_empty());

        // Namespace UNSET (no mtls at all) -> mesh PERMISSIVE.
        let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
        add_pa(
            &s,
            pa(
                "istio-system",
                "default",
                json!({ "mtls": { "mode": "PERMISSIVE" } }),
            ),
        );
        add_pa(&s, pa(NS, "ns-wide", json!({})));
        let f = run(&plain_pod(), &s);
        assert!(one(&f).message.contains("effective mode PERMISSIVE, from mesh-wide PeerAuthentication istio-system/default (inherited through namespace-wide PeerAuthentication phi/ns-wide with mode UNSET)"), "{}", f[0].message);

        // Namespace UNSET -> mesh STRICT.
        let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
        mesh_strict(&s);
        add_pa(
            &s,
            pa(NS, "ns-wide", json!({ "mtls": { "mode": "UNSET" } })),
        );
        assert!(run(&plain_pod(), &s).is_empty());

        // Mesh UNSET -> PERMISSIVE.
        let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
        add_pa(
            &s,
            pa(
                "istio-system",
                "default",
                json!({ "mtls": { "mode": "UNSET" } }),
            ),
        );
        assert_eq!(run(&plain_pod(), &s).len(), 1);
    }

    #[test]
    fn port_level_override_on_a_pod_port_breaks_strict() {
        let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
        add_pa(
            &s,
            pa(
                NS,
                "api",
                json!({
                    "selector": { "matchLabels": { "app": "api" } },
                    "mtls": { "mode": "STRICT" },
                    "portLevelMtls": { "8080": { "mode": "PERMISSIVE" }, "9443": { "mode": "STRICT" } },
                }),
            ),
        );
        let f = run(&plain_pod(), &s);
        let f = one(&f);
        assert!(
            f.message
                .contains("sets portLevelMtls PERMISSIVE for container port 8080"),
            "{}",
            f.message
        );
        assert!(f.remediation.contains(
            "remove the portLevelMtls override for port 8080 from PeerAuthentication phi/api"
        ));

        // Same policy, pod listening elsewhere: fine.
        let other_port = pod(
            json!({}),
            json!({}),
            json!({ "containers": [{ "name": "app", "ports": [{ "containerPort": 9443 }] }] }),
        );
        assert!(run(&other_port, &s).is_empty());

        // Port-level settings of a namespace-wide policy are ignored, as in Istio.
        let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
        add_pa(
            &s,
            pa(
                NS,
                "ns-wide",
                json!({ "mtls": { "mode": "STRICT" }, "portLevelMtls": { "8080": { "mode": "DISABLE" } } }),
            ),
        );
        assert!(run(&plain_pod(), &s).is_empty());
    }

    #[test]
    fn sidecar_opt_outs_and_injected_containers() {
        let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
        mesh_strict(&s);
        let opted_out = pod(
            json!({ "sidecar.istio.io/inject": "false" }),
            json!({}),
            json!({}),
        );
        assert!(one(&run(&opted_out, &s)).message.contains("Istio sidecar injection is switched off (pod label sidecar.istio.io/inject: \"false\")"));

        let s = state_with_ns(json!({ "istio-injection": "disabled" }), json!({}));
        mesh_strict(&s);
        let asks = pod(
            json!({ "sidecar.istio.io/inject": "true" }),
            json!({}),
            json!({}),
        );
        assert_eq!(run(&asks, &s).len(), 1, "a disabled namespace wins");

        let s = state_with_ns(json!({}), json!({}));
        mesh_strict(&s);
        assert!(run(&asks, &s).is_empty(), "pod label enables injection");
        let injected = pod(
            json!({}),
            json!({}),
            json!({ "containers": [{ "name": "app" }, { "name": "istio-proxy" }] }),
        );
        assert!(run(&injected, &s).is_empty());
        let native = pod(
            json!({}),
            json!({}),
            json!({ "initContainers": [{ "name": "istio-proxy", "restartPolicy": "Always" }] }),
        );
        assert!(run(&native, &s).is_empty());
        let plain_init = pod(
            json!({}),
            json!({}),
            json!({ "initContainers": [{ "name": "istio-proxy" }] }),
        );
        assert_eq!(
            run(&plain_init, &s).len(),
            1,
            "an init container that exits is no sidecar"
        );
    }

    #[test]
    fn ambient_mode_and_its_opt_out() {
        let s = state_with_ns(json!({ "istio.io/dataplane-mode": "ambient" }), json!({}));
        mesh_strict(&s);
        assert!(run(&plain_pod(), &s).is_empty());
        let out = pod(
            json!({ "istio.io/dataplane-mode": "none" }),
            json!({}),
            json!({}),
        );
        assert!(one(&run(&out, &s)).message.contains(
            "Istio ambient mode is switched off (pod label istio.io/dataplane-mode=none)"
        ));

        let s = state_with_ns(json!({}), json!({}));
        let pod_ambient = pod(
            json!({ "istio.io/dataplane-mode": "ambient" }),
            json!({}),
            json!({}),
        );
        assert!(one(&run(&pod_ambient, &s)).message.contains("Istio ambient mode is enabled (pod label istio.io/dataplane-mode=ambient) but no STRICT"));
        mesh_strict(&s);
        assert!(run(&pod_ambient, &s).is_empty());

        let only_sidecar =
            policy_with(|c| c.accepted_evidence = vec![TransitEvidence::IstioSidecar]);
        assert_eq!(run_with(&pod_ambient, &s, &only_sidecar).len(), 1);
    }

    #[test]
    fn linkerd_inbound_policy_precedence() {
        // Namespace injection, Linkerd's own default (all-unauthenticated): not accepted.
        let s = state_with_ns(json!({}), json!({ "linkerd.io/inject": "enabled" }));
        let f = run(&plain_pod(), &s);
        assert!(one(&f).message.contains("Linkerd proxy injection is enabled (namespace annotation linkerd.io/inject: enabled) but the default inbound policy is all-unauthenticated (from the cluster default)"), "{}", f[0].message);

        let cluster_auth = policy_with(|c| {
            c.linkerd_cluster_default_inbound_policy = "cluster-authenticated".into()
        });
        assert!(run_with(&plain_pod(), &s, &cluster_auth).is_empty());

        // Namespace annotation beats the cluster default.
        let s = state_with_ns(
            json!({}),
            json!({ "linkerd.io/inject": "enabled", LINKERD_INBOUND_POLICY: "all-authenticated" }),
        );
        assert!(run(&plain_pod(), &s).is_empty());

        // Pod annotation beats the namespace.
        let weak = pod(
            json!({}),
            json!({ LINKERD_INBOUND_POLICY: "all-unauthenticated" }),
            json!({}),
        );
        assert!(one(&run(&weak, &s))
            .message
            .contains("all-unauthenticated (from pod annotation)"));
        let strong = pod(
            json!({}),
            json!({ "linkerd.io/inject": "enabled", LINKERD_INBOUND_POLICY: "deny" }),
            json!({}),
        );
        let s2 = state_with_ns(
            json!({}),
            json!({ LINKERD_INBOUND_POLICY: "all-unauthenticated" }),
        );
        assert!(run(&strong, &s2).is_empty());

        // An injected proxy container counts as injection; odd values are not echoed.
        let odd = pod(
            json!({}),
            json!({ LINKERD_INBOUND_POLICY: "patient-42" }),
            json!({ "containers": [{ "name": "app" }, { "name": "linkerd-proxy" }] }),
        );
        let f = run(&odd, &s2);
        assert!(one(&f).message.contains(
            "(a linkerd-proxy container) but the default inbound policy is an unrecognized value"
        ));
        assert!(!f[0].message.contains("patient-42"));

        // Pod opt-out.
        let s = state_with_ns(
            json!({}),
            json!({ "linkerd.io/inject": "enabled", LINKERD_INBOUND_POLICY: "all-authenticated" }),
        );
        let off = pod(
            json!({}),
            json!({ "linkerd.io/inject": "disabled" }),
            json!({}),
        );
        assert!(one(&run(&off, &s))
            .message
            .contains("Linkerd proxy injection is switched off"));
    }

    #[test]
    fn cert_manager_tls_material_is_app_level_evidence() {
        let s = state_with_ns(json!({}), json!({}));
        s.certificates.insert(
            NS.into(),
            "api-cert".into(),
            CertificateInfo {
                namespace: NS.into(),
                name: "api-cert".into(),
                secret_name: "api-tls".into(),
            },
        );
        let mounts =
            json!([{ "name": "app", "volumeMounts": [{ "name": "tls", "mountPath": "/tls" }] }]);
        let csi = pod(
            json!({}),
            json!({}),
            json!({ "containers": mounts, "volumes": [{ "name": "tls", "csi": { "driver": "csi.cert-manager.io" } }] }),
        );
        assert!(run(&csi, &s).is_empty());
        let issued = pod(
            json!({}),
            json!({}),
            json!({ "containers": mounts, "volumes": [{ "name": "tls", "secret": { "secretName": "api-tls" } }] }),
        );
        assert!(run(&issued, &s).is_empty());
        let projected = pod(
            json!({}),
            json!({}),
            json!({ "containers": mounts, "volumes": [{ "name": "tls", "projected": { "sources": [{ "secret": { "name": "api-tls" } }] } }] }),
        );
        assert!(run(&projected, &s).is_empty());

        let hand_made = pod(
            json!({}),
            json!({}),
            json!({ "containers": mounts, "volumes": [{ "name": "tls", "secret": { "secretName": "db-password" } }] }),
        );
        let f = run(&hand_made, &s);
        assert!(one(&f).message.contains(
            "mounted Secret(s) \"db-password\" are not issued by any cert-manager Certificate"
        ));

        let unmounted = pod(
            json!({}),
            json!({}),
            json!({ "volumes": [{ "name": "tls", "secret": { "secretName": "api-tls" } }] }),
        );
        assert_eq!(run(&unmounted, &s).len(), 1, "declared but not mounted");

        let mesh_only = policy_with(|c| {
            c.accepted_evidence = vec![TransitEvidence::IstioSidecar, TransitEvidence::Linkerd]
        });
        let f = run_with(&csi, &s, &mesh_only);
        assert!(
            !one(&f).message.contains("app-level TLS"),
            "AppTls not looked for"
        );
        assert!(!f[0].message.contains("ambient"));
    }

    #[test]
    fn mesh_bypass_annotations_are_findings_without_values() {
        let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
        mesh_strict(&s);
        let v = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "api" },
            "spec": { "template": {
                "metadata": { "labels": { PHI.0: PHI.1 }, "annotations": {
                    "traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.99.0.0/16",
                    "config.linkerd.io/skip-inbound-ports": "5432",
                    "traffic.sidecar.istio.io/excludeInboundPorts": " ",
                    "prometheus.io/port": "9090",
                } },
                "spec": { "containers": [{ "name": "app" }] },
            } },
        });
        let w = Object::from_value(Kind::Deployment, &v, Some(NS)).expect("deployment");
        let f = run(&w, &s);
        let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, [
            "spec.template.metadata.annotations[\"traffic.sidecar.istio.io/excludeOutboundIPRanges\"]",
            "spec.template.metadata.annotations[\"config.linkerd.io/skip-inbound-ports\"]",
        ]);
        for x in &f {
            assert!(!x.message.contains("10.99") && !x.message.contains("5432"));
            assert!(x.remediation.starts_with("Remove annotation"));
        }
        let allowed = policy_with(|c| c.forbid_mesh_bypass = false);
        assert!(run_with(&w, &s, &allowed).is_empty());
    }

    #[test]
    fn cronjob_finding_points_at_the_job_template_metadata() {
        let s = state_with_ns(json!({}), json!({}));
        let v = json!({
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": { "name": "export" },
            "spec": { "jobTemplate": { "spec": { "template": {
                "metadata": { "labels": { PHI.0: PHI.1, "sidecar.istio.io/inject": "true" } },
                "spec": { "containers": [{ "name": "job" }] },
            } } } },
        });
        let w = Object::from_value(Kind::CronJob, &v, Some(NS)).expect("cronjob");
        let f = run(&w, &s);
        assert_eq!(one(&f).path, "spec.jobTemplate.spec.template.metadata");
        assert!(f[0].message.contains("CronJob phi/export"));
        mesh_strict(&s);
        assert!(run(&w, &s).is_empty());
    }

    fn ingress(spec: Value) -> Object {
        let v = json!({ "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": { "name": "web" }, "spec": spec });
        Object::from_value(Kind::Ingress, &v, Some(NS)).expect("ingress")
    }

    fn rule(host: Option<&str>) -> Value {
        let mut r = json!({ "http": { "paths": [{ "path": "/", "pathType": "Prefix",
            "backend": { "service": { "name": "api", "port": { "number": 443 } } } }] } });
        if let Some(h) = host {
            r["host"] = json!(h);
        }
        r
    }

    #[test]
    fn ingress_hosts_must_be_covered_by_tls_with_a_secret() {
        let s = state_with_ns(json!({}), json!({}));
        let f = run(
            &ingress(json!({ "rules": [rule(Some("a.example.com"))] })),
            &s,
        );
        let f0 = one(&f);
        assert_eq!(f0.path, "spec.tls");
        assert!(f0
            .message
            .contains("no spec.tls, so host(s) \"a.example.com\""));

        let ok = ingress(json!({
            "rules": [rule(Some("a.example.com")), rule(Some("B.example.org"))],
            "tls": [{ "hosts": ["*.example.com"], "secretName": "wild" }, { "hosts": ["b.example.org"], "secretName": "b" }],
        }));
        assert!(run(&ok, &s).is_empty());

        let bad = ingress(json!({
            "rules": [rule(Some("a.b.example.com")), rule(Some("example.com")), rule(Some("c.example.net")), rule(None), rule(Some("d.example.io"))],
            "tls": [{ "hosts": ["*.example.com"], "secretName": "wild" }, { "hosts": ["c.example.net"] }],
        }));
        let f = run(&bad, &s);
        let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.rules[0].host",
                "spec.rules[1].host",
                "spec.rules[2].host",
                "spec.rules[3]",
                "spec.rules[4].host"
            ],
            "{f:#?}"
        );
        assert!(
            f[0].message.contains("\"a.b.example.com\" is not covered"),
            "wildcard covers one label only"
        );
        assert!(f[1].message.contains("\"example.com\" is not covered"));
        assert!(f[2]
            .message
            .contains("listed in spec.tls[1], which has no secretName"));
        assert!(f[2].remediation.contains("spec.tls[1].secretName"));
        assert!(f[3].message.contains("has no host"));

        let off = policy_with(|c| c.require_ingress_tls = false);
        assert!(run_with(&bad, &s, &off).is_empty());
    }

    #[test]
    fn ingress_default_backend_to_phi_pods_is_a_catch_all() {
        let s = state_with_ns(json!({}), json!({}));
        s.services.insert(
            NS.into(),
            "api".into(),
            ServiceInfo {
                namespace: NS.into(),
                name: "api".into(),
                selector: Some(labels(json!({ "app": "api" }))),
                ports: vec![],
            },
        );
        s.services.insert(
            NS.into(),
            "404".into(),
            ServiceInfo {
                namespace: NS.into(),
                name: "404".into(),
                selector: Some(labels(json!({ "app": "404" }))),
                ports: vec![],
            },
        );
        s.pods.insert(
            NS.into(),
            "api".into(),
            PodInfo {
                namespace: NS.into(),
                name: "api".into(),
                labels: labels(json!({ "app": "api", PHI.0: PHI.1 })),
                ..Default::default()
            },
        );
        s.pods.insert(
            NS.into(),
            "404".into(),
            PodInfo {
                namespace: NS.into(),
                name: "404".into(),
                labels: labels(json!({ "app": "404" })),
                ..Default::default()
            },
        );
        let tls = json!([{ "hosts": ["a.example.com"], "secretName": "a" }]);
        let to_phi = ingress(
            json!({ "defaultBackend": { "service": { "name": "api", "port": { "number": 80 } } }, "rules": [rule(Some("a.example.com"))], "tls": tls }),
        );
        assert_eq!(one(&run(&to_phi, &s)).path, "spec.defaultBackend");
        let to_404 = ingress(
            json!({ "defaultBackend": { "service": { "name": "404", "port": { "number": 80 } } }, "rules": [rule(Some("a.example.com"))], "tls": tls }),
        );
        assert!(run(&to_404, &s).is_empty());
    }

    fn service(svc_labels: Value, ports: Value) -> Object {
        let v = json!({ "apiVersion": "v1", "kind": "Service",
            "metadata": { "name": "api", "labels": svc_labels },
            "spec": { "selector": { "app": "api" }, "ports": ports } });
        Object::from_value(Kind::Service, &v, Some(NS)).expect("service")
    }

    fn add_pod(
        s: &ClusterState,
        name: &str,
        pod_labels: Value,
        annotations: Value,
        containers: &[&str],
    ) {
        s.pods.insert(
            NS.into(),
            name.into(),
            PodInfo {
                namespace: NS.into(),
                name: name.into(),
                labels: labels(pod_labels),
                annotations: labels(annotations),
                container_names: containers.iter().map(|c| c.to_string()).collect(),
            },
        );
    }

    fn ports() -> Value {
        json!([
            { "name": "http", "port": 80 },
            { "name": "web", "port": 8443, "appProtocol": "HTTPS" },
            { "name": "tls-db", "port": 5432 },
            { "port": 9000 },
            { "name": "grpcs", "port": 9443 },
            { "name": "metrics", "port": 9090, "appProtocol": "http" },
        ])
    }

    #[test]
    fn service_plaintext_ports_to_unmeshed_phi_pods() {
        let s = state_with_ns(json!({}), json!({}));
        add_pod(
            &s,
            "deployment/api",
            json!({ "app": "api", PHI.0: PHI.1 }),
            json!({}),
            &["app"],
        );
        let f = run(&service(json!({}), ports()), &s);
        let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["spec.ports[0]", "spec.ports[3]", "spec.ports[5]"],
            "{f:#?}"
        );
        assert!(f[0].message.contains("Service \"api\" port \"http\" (80) is plaintext (its port name prefix says \"http\", not a TLS protocol) and selects PHI pods that are not meshed: \"deployment/api\""), "{}", f[0].message);
        assert!(f[1]
            .message
            .contains("declares neither appProtocol nor a name"));
        assert!(f[2].message.contains("appProtocol says \"http\""));
        assert!(f[0].remediation.contains("appProtocol: https"));

        let off = policy_with(|c| c.forbid_plaintext_service_ports = false);
        assert!(run_with(&service(json!({}), ports()), &s, &off).is_empty());
    }

    #[test]
    fn service_ports_are_fine_when_the_phi_pods_are_meshed_or_not_phi() {
        // Not PHI pods, Service not labeled: nothing to protect.
        let s = state_with_ns(json!({}), json!({}));
        add_pod(
            &s,
            "deployment/api",
            json!({ "app": "api" }),
            json!({}),
            &["app"],
        );
        assert!(run(&service(json!({}), ports()), &s).is_empty());
        // The Service itself labeled PHI makes its pods' traffic PHI.
        assert_eq!(run(&service(json!({ PHI.0: PHI.1 }), ports()), &s).len(), 3);

        // Istio-injected PHI pods with a STRICT mesh.
        let s = state_with_ns(json!({}), json!({}));
        add_pod(
            &s,
            "api-1",
            json!({ "app": "api", PHI.0: PHI.1 }),
            json!({}),
            &["app", "istio-proxy"],
        );
        assert_eq!(
            run(&service(json!({}), ports()), &s).len(),
            3,
            "sidecar without STRICT"
        );
        mesh_strict(&s);
        assert!(run(&service(json!({}), ports()), &s).is_empty());

        // Linkerd-annotated PHI pods with an authenticated inbound policy.
        let s = state_with_ns(json!({ PHI.0: PHI.1 }), json!({}));
        add_pod(
            &s,
            "api-1",
            json!({ "app": "api" }),
            json!({ "linkerd.io/inject": "enabled", LINKERD_INBOUND_POLICY: "all-authenticated" }),
            &["app"],
        );
        assert!(run(&service(json!({}), ports()), &s).is_empty());
        // One unmeshed pod among meshed ones is enough.
        add_pod(&s, "api-2", json!({ "app": "api" }), json!({}), &["app"]);
        let f = run(&service(json!({}), ports()), &s);
        assert_eq!(f.len(), 3);
        assert!(
            f[0].message.ends_with("not meshed: \"api-2\""),
            "{}",
            f[0].message
        );
    }
}
