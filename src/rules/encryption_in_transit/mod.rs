//! The `encryption-in-transit` rule (45 CFR 164.312(e)(1), (e)(2)(ii)): PHI pods are meshed with
//! enforced mTLS (Istio sidecar or ambient with an effective STRICT PeerAuthentication, Linkerd
//! with an authenticated default inbound policy, and where the policy lists them Consul, Kuma or the
//! CNI's node-to-node encryption: `platform.rs`) or mount cert-manager or Pod Certificate TLS
//! material; mesh bypass
//! annotations are refused; Ingresses to PHI pods cover every host with TLS; Services in front
//! of unmeshed PHI pods expose no plaintext ports.
//!
//! Mesh evidence never counts for `hostNetwork: true` pods: the Istio and Linkerd injectors skip
//! them and ambient mode does not capture them, whatever labels say; only their own TLS can
//! protect their traffic. (A `hostPort` alone does not defeat a mesh: the node DNATs the traffic
//! into the pod's network namespace, where the proxy captures it.)
//!
//! What a Service port's `appProtocol` (else its name prefix, Istio's convention: `https-api`)
//! proves: only what the port is declared to carry. It is required to be a TLS protocol on a
//! Service in front of unmeshed PHI pods, and it never stands in for the pods' own evidence:
//! those pods are judged on their mesh enrolment or mounted TLS material, whatever the Service
//! in front of them says.
//!
//! Protocols that negotiate TLS inside the protocol (PostgreSQL, MySQL, SMTP, LDAP, IMAP, POP3:
//! STARTTLS-style) cannot truthfully declare `appProtocol: tls`. Such a port is accepted only
//! when three things hold: its `appProtocol` names the protocol (`postgresql`, `mysql`, `smtp`,
//! `ldap`, ... or `kubernetes.io/`-prefixed), every unmeshed PHI pod it selects mounts
//! cert-manager TLS material, and the Service carries the attestation
//! `phiguard.io/tls-required: "<port name or number>[,...]"` that the server refuses clients
//! that do not negotiate TLS (PostgreSQL `hostssl` only in pg_hba.conf, MySQL
//! `require_secure_transport`, ...). phi-guard cannot observe the negotiation, so it relies on
//! the attestation and says so; the port name alone still proves nothing.

mod app_tls;
mod config;
mod facts;
mod ingress;
mod istio;
mod linkerd;
mod membership;
mod platform;
mod service;
#[cfg(test)]
mod tests;

use app_tls::*;
use config::*;
use facts::*;
pub(crate) use ingress::redirect_rests_on_global;
use ingress::*;
use istio::*;
use linkerd::*;
pub(crate) use membership::{meshes, Mesh};
use platform::*;
use service::*;

use crate::object::{Body, IngressTlsView, IngressView, Object, PodView, VolumeSource};
use crate::policy::{InTransitConfig, TransitEvidence, LINKERD_INBOUND_POLICIES};
use crate::rules::RuleContext;
use crate::selector::Labels;
use crate::verdict::{Finding, Reason};
use crate::view::{MtlsMode, NamespaceInfo, PeerAuthInfo, PodInfo, ServiceInfo};

/// Pod annotations that make traffic bypass the mesh proxy.
pub(crate) const MESH_BYPASS_ANNOTATIONS: [&str; 5] = [
    "traffic.sidecar.istio.io/excludeInboundPorts",
    "traffic.sidecar.istio.io/excludeOutboundPorts",
    "traffic.sidecar.istio.io/excludeOutboundIPRanges",
    "config.linkerd.io/skip-inbound-ports",
    "config.linkerd.io/skip-outbound-ports",
];

/// Service port protocols (appProtocol, or the port name prefix) that carry TLS.
const ENCRYPTED_PROTOCOLS: [&str; 5] = ["https", "tls", "grpcs", "wss", "kubernetes.io/wss"];

/// `appProtocol` values (IANA service names, optionally `kubernetes.io/`-prefixed) of protocols
/// that negotiate TLS in-band, accepted only with TLS material and the attestation below.
const IN_BAND_TLS_PROTOCOLS: [&str; 9] = [
    "postgresql",
    "postgres",
    "mysql",
    "smtp",
    "submission",
    "ldap",
    "imap",
    "pop3",
    "xmpp-client",
];

/// What the finding says when a pod holds no accepted in-transit evidence
/// (`Reason::NoTransitEvidence`, which `engine::operator_made` and `fix` read, not this text).
const NOT_PROVEN_IN_TRANSIT: &str = "are not proven to encrypt traffic in transit";

/// The Service annotation attesting that the server requires TLS on the listed ports.
pub(crate) const TLS_REQUIRED_ANNOTATION: &str = "phiguard.io/tls-required";

const CERT_MANAGER_CSI_DRIVER: &str = "csi.cert-manager.io";
const ISTIO_PROXY: &str = "istio-proxy";
const ISTIO_INJECT: &str = "sidecar.istio.io/inject";
const AMBIENT_REDIRECTION: &str = "ambient.istio.io/redirection";
const LINKERD_PROXY: &str = "linkerd-proxy";
const LINKERD_INJECT: &str = "linkerd.io/inject";
const LINKERD_INBOUND_POLICY: &str = "config.linkerd.io/default-inbound-policy";

/// Every encryption-in-transit finding for the workload.
pub(crate) fn check(w: &Object, ctx: &RuleContext, cfg: &InTransitConfig) -> Vec<Finding> {
    let mut out = Vec::new();
    match &w.body {
        Body::Pods(p) => {
            check_pod(w, p, ctx, cfg, &mut out);
            if cfg.forbid_mesh_bypass {
                check_bypass(p, cfg, &mut out);
            }
        }
        Body::Operated(v) => {
            for p in &v.plaintext {
                out.push(finding(
                    Reason::OperatorPlaintext,
                    cfg,
                    p.path.clone(),
                    format!("{}: {}", w.display(), p.message),
                    p.fix.clone(),
                ));
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
    reason: Reason,
    cfg: &InTransitConfig,
    path: impl Into<String>,
    message: String,
    fix: String,
) -> Finding {
    Finding::new(reason, cfg.mode, path, message, fix)
}

/// Judge mesh evidence (everything but app TLS) for a pod: `Ok` when one accepted kind holds,
/// else, per accepted kind, what writes what was seen and how to fix it (called only when a
/// finding is made).
fn mesh_evidence<'a>(
    f: &'a PodFacts,
    ctx: &'a RuleContext,
    cfg: &'a InTransitConfig,
) -> Result<(), Vec<Explain<'a>>> {
    let ns = ctx.namespace.as_deref();
    let mut missing = Vec::new();
    let mut judge = |e: Evidence<'a>| match e {
        Evidence::Holds => true,
        Evidence::Missing(explain) => {
            missing.push(explain);
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
    if cfg.accepts(TransitEvidence::Consul) && judge(consul_evidence(f)) {
        return Ok(());
    }
    if cfg.accepts(TransitEvidence::Kuma) && judge(kuma_evidence(f, ns, ctx)) {
        return Ok(());
    }
    for e in PLATFORM_EVIDENCE {
        if cfg.accepts(e) && judge(platform_evidence(e, ctx)) {
            return Ok(());
        }
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
    // Judged once: config settings are read against it too.
    let mesh = (!p.spec.host_network).then(|| mesh_evidence(&facts, ctx, cfg));
    check_config(w, p, ctx, cfg, matches!(mesh, Some(Ok(()))), out);
    let mut missing = if let Some(mesh) = mesh {
        match mesh {
            Ok(()) => return,
            Err(m) => m,
        }
    } else {
        let cni = if PLATFORM_EVIDENCE.iter().any(|e| cfg.accepts(*e)) {
            " (nor is CNI encryption: a host-network pod's traffic is the node's own, which \
             pod-traffic encryption does not cover)"
        } else {
            ""
        };
        let host: Explain = Box::new(move || {
            (
                format!(
                    "{}.hostNetwork is true: service meshes (Istio sidecar and ambient, Linkerd) \
                     do not inject or capture host-network pods, so mesh labels are not \
                     evidence{cni}",
                    p.spec_path
                ),
                format!("remove hostNetwork: true from {}", p.spec_path),
            )
        });
        vec![host]
    };
    if cfg.accepts(TransitEvidence::AppTls) {
        match app_tls_evidence(&w.namespace, p, ctx) {
            Evidence::Holds => return,
            Evidence::Missing(explain) => missing.push(explain),
        }
    }
    let missing: Vec<(String, String)> = missing.into_iter().map(|explain| explain()).collect();
    let observed: Vec<&str> = missing.iter().map(|(o, _)| o.as_str()).collect();
    let fixes: Vec<String> = missing
        .iter()
        .enumerate()
        .map(|(i, (_, fix))| format!("({}) {fix}", i + 1))
        .collect();
    out.push(finding(
        Reason::NoTransitEvidence,
        cfg,
        p.meta_path,
        format!(
            "the pods of {} {NOT_PROVEN_IN_TRANSIT}: {}",
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
                Reason::MeshBypassAnnotation,
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
