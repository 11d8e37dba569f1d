//! The `network-segmentation` rule (45 CFR 164.312(a)(1), (e)(1)): PHI pods are isolated by a
//! NetworkPolicy in their own namespace for ingress (and, configurably, egress), optionally
//! behind a namespace-wide default deny.
//!
//! Isolation that allows everything is not segmentation. NetworkPolicies add up, so one
//! selecting policy whose rule allows any source (no peers, `namespaceSelector: {}` without a
//! pod restriction, an ipBlock of prefix length 0) opens the pods whatever the others deny; the
//! finding names the policy and the rule (`NetworkPolicy db/allow-db ingress[0] allows any
//! source (the rule names no peers) on port 5432/TCP`). A port restriction does not make such a
//! rule segmentation: the database port of a bitnami-style policy is open to every caller, which
//! is exactly what segmentation is meant to prevent. Egress rules open only to DNS (port 53) are
//! the usual DNS allowance and are not counted.
//!
//! Host networking escapes segmentation: a `hostNetwork: true` pod shares the node's network
//! namespace, and most CNIs do not apply NetworkPolicies to it (Kubernetes leaves their effect on
//! host-network pods undefined); a `hostPort` exposes the container on every address of its
//! node, where the source a policy sees may already be rewritten (also undefined by Kubernetes).
//! Each is a finding on its field, DaemonSets included.

use std::sync::Arc;

use crate::object::{Object, PodView};
use crate::policy::{Mode, SegmentationConfig};
use crate::rules::RuleContext;
use crate::verdict::{Finding, Reason};
use crate::view::NetworkPolicyInfo;

/// A direction of traffic a NetworkPolicy can isolate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        }
    }

    /// The reason when no NetworkPolicy isolates the pods this way.
    fn not_isolated(self) -> Reason {
        match self {
            Direction::Ingress => Reason::IngressNotIsolated,
            Direction::Egress => Reason::EgressNotIsolated,
        }
    }

    fn other(self) -> Direction {
        match self {
            Direction::Ingress => Direction::Egress,
            Direction::Egress => Direction::Ingress,
        }
    }

    fn isolated_by(self, np: &NetworkPolicyInfo) -> bool {
        match self {
            Direction::Ingress => np.isolates_ingress,
            Direction::Egress => np.isolates_egress,
        }
    }

    fn rules_field(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    fn peers_field(self) -> &'static str {
        match self {
            Direction::Ingress => "from",
            Direction::Egress => "to",
        }
    }
}

/// Every network-segmentation finding for the workload.
pub(crate) fn check(w: &Object, ctx: &RuleContext, cfg: &SegmentationConfig) -> Vec<Finding> {
    let operated = crate::rules::operated::pods_for_segmentation(w);
    let Some(pod) = w.pods().or(operated.as_ref()) else {
        return Vec::new();
    };
    // The cluster view lists policies by namespace, and a podSelector only ever selects pods in
    // the policy's own namespace, so policies elsewhere never count.
    let policies = ctx.cluster.network_policies(&w.namespace);
    let selecting = ctx
        .cluster
        .network_policies_selecting(&w.namespace, &pod.labels);
    let sets = Policies {
        all: &policies,
        selecting: selecting.iter().map(Arc::as_ref).collect(),
    };
    let mut out = host_network_findings(w, pod, cfg.mode);
    if let Some(f) = direction_finding(w, pod, &sets, Direction::Ingress, cfg.mode) {
        out.push(f);
    }
    if let Some(mode) = cfg.egress_isolation {
        if let Some(f) = direction_finding(w, pod, &sets, Direction::Egress, mode) {
            out.push(f);
        }
    }
    if let Some(mode) = cfg.namespace_default_deny {
        if !policies.iter().any(|p| p.is_default_deny()) {
            out.push(default_deny_finding(w, &policies, mode));
        }
    }
    out
}

/// `hostNetwork: true` and every `hostPort`: traffic NetworkPolicies do not reliably see.
fn host_network_findings(w: &Object, pod: &PodView, mode: Mode) -> Vec<Finding> {
    let sp = pod.spec_path;
    let mut out = Vec::new();
    if pod.spec.host_network {
        out.push(Finding::new(
            Reason::HostNetworkUnsegmented,
            mode,
            format!("{sp}.hostNetwork"),
            format!(
                "{}: the pods run with hostNetwork: true, in the node's network namespace: \
                 NetworkPolicies do not isolate host-network pods on most CNIs (Kubernetes leaves \
                 it undefined), so no policy can segment them, and service meshes do not inject \
                 or capture them.",
                w.display()
            ),
            format!(
                "Remove `hostNetwork: true` from {sp} and reach the pods through a Service; a PHI \
                 workload that truly needs the host network (a node agent) needs a policy exception \
                 and host-level firewalling outside Kubernetes."
            ),
        ));
    }
    let groups = [
        ("containers", &pod.spec.containers),
        ("initContainers", &pod.spec.init_containers),
    ];
    for (field, containers) in groups {
        for (i, c) in containers.iter().enumerate() {
            for (j, p) in c.ports.iter().enumerate() {
                if p.host_port.is_none_or(|h| h <= 0) {
                    continue;
                }
                out.push(Finding::new(
                    Reason::HostPortUnsegmented,
                    mode,
                    format!("{sp}.{field}[{i}].ports[{j}].hostPort"),
                    format!(
                        "{}: container {} exposes port {} on its node's addresses (hostPort): \
                         whether NetworkPolicies apply to traffic arriving there depends on the CNI \
                         (Kubernetes leaves it undefined), so the port is not proven segmented.",
                        w.display(),
                        c.name,
                        p.container_port
                    ),
                    format!(
                        "Remove `hostPort` from {sp}.{field}[{i}].ports[{j}] and expose the port \
                         through a Service (ClusterIP, or a LoadBalancer with \
                         loadBalancerSourceRanges) that NetworkPolicies govern."
                    ),
                ));
            }
        }
    }
    out
}

/// The namespace's NetworkPolicies, and those selecting the pods (name order).
struct Policies<'a> {
    all: &'a [Arc<NetworkPolicyInfo>],
    selecting: Vec<&'a NetworkPolicyInfo>,
}

/// A finding when no policy in the namespace selects the pods and isolates `dir`.
fn direction_finding(
    w: &Object,
    pod: &PodView,
    sets: &Policies<'_>,
    dir: Direction,
    mode: Mode,
) -> Option<Finding> {
    let policies = sets.all;
    let selecting = &sets.selecting;
    if selecting.iter().any(|p| dir.isolated_by(p)) {
        return open_finding(w, pod, selecting, dir, mode);
    }
    let ns = &w.namespace;
    let mut message = format!(
        "{}: no NetworkPolicy in namespace {ns} selects these pods for {} ({});",
        w.display(),
        dir.as_str(),
        count_policies(policies.len()),
    );
    if selecting.is_empty() {
        message.push_str(" none of them selects the pods' labels");
    } else {
        let names: Vec<&str> = selecting.iter().map(|p| p.name.as_str()).collect();
        message.push_str(&format!(
            " {} {} the pods only for {}",
            names_list(&names),
            if names.len() == 1 {
                "selects"
            } else {
                "select"
            },
            dir.other().as_str()
        ));
    }
    let invalid: Vec<&str> = policies
        .iter()
        .filter(|p| p.invalid_selector)
        .map(|p| p.name.as_str())
        .collect();
    if !invalid.is_empty() {
        message.push_str(&format!(
            "; {} {} an invalid podSelector and select nothing",
            names_list(&invalid),
            if invalid.len() == 1 { "has" } else { "have" }
        ));
    }
    message.push('.');
    let remediation = match dir {
        Direction::Ingress => format!(
            "Isolate the pods for ingress in namespace {ns}: add a default deny NetworkPolicy \
             (`podSelector: {{}}`, `policyTypes: [Ingress, Egress]`, no rules) and a NetworkPolicy \
             whose `podSelector.matchLabels` matches the labels at {}.labels with \
             `policyTypes: [Ingress]` and an `ingress` allow list naming only the callers and ports \
             that need access (`from: [{{podSelector: ...}}]`, `ports: [{{port: ...}}]`).",
            pod.meta_path
        ),
        Direction::Egress => format!(
            "Isolate the pods for egress in namespace {ns}: add a default deny NetworkPolicy \
             (`podSelector: {{}}`, `policyTypes: [Ingress, Egress]`, no rules), or list `Egress` in \
             `policyTypes` of a NetworkPolicy selecting the labels at {}.labels, with an `egress` \
             allow list for the destinations the pods need (DNS: port 53 UDP/TCP to kube-dns; \
             databases and APIs by podSelector, namespaceSelector or ipBlock).",
            pod.meta_path
        ),
    };
    Some(Finding::new(
        dir.not_isolated(),
        mode,
        format!("{}.labels", pod.meta_path),
        message,
        remediation,
    ))
}

/// Isolated for `dir`, but a selecting policy's rule allows everything: say which rules.
fn open_finding(
    w: &Object,
    pod: &PodView,
    selecting: &[&NetworkPolicyInfo],
    dir: Direction,
    mode: Mode,
) -> Option<Finding> {
    let ingress = dir == Direction::Ingress;
    let opening: Vec<String> = selecting
        .iter()
        .flat_map(|p| {
            p.open_rules(ingress).iter().map(move |r| {
                let at = match r.peer {
                    Some(j) => format!(
                        "{}[{}].{}[{j}]",
                        dir.rules_field(),
                        r.index,
                        dir.peers_field()
                    ),
                    None => format!("{}[{}]", dir.rules_field(), r.index),
                };
                format!(
                    "NetworkPolicy {}/{} {at} allows {} on {}",
                    p.namespace, p.name, r.allows, r.ports
                )
            })
        })
        .collect();
    if opening.is_empty() {
        return None;
    }
    let others = if ingress { "source" } else { "destination" };
    Some(Finding::new(
        if ingress { Reason::AllowAllIngress } else { Reason::AllowAllEgress },
        mode,
        format!("{}.labels", pod.meta_path),
        format!(
            "{}: the pods are selected for {} but not segmented: {}. NetworkPolicies add up, so \
             a rule that allows any {others} opens the pods whatever other policies deny, even when \
             it is restricted to some ports.",
            w.display(),
            dir.as_str(),
            opening.join("; "),
        ),
        format!(
            "Replace each rule named with an allow list of the callers that need access \
             (`{}: [{{podSelector: {{matchLabels: ...}}}}]`, with a `namespaceSelector` naming \
             their namespace when they live elsewhere, or an ipBlock of the specific CIDRs), and \
             keep the `ports` restriction.",
            dir.peers_field()
        ),
    ))
}

fn default_deny_finding(w: &Object, policies: &[Arc<NetworkPolicyInfo>], mode: Mode) -> Finding {
    let ns = &w.namespace;
    Finding::new(
        Reason::NoDefaultDeny,
        mode,
        "metadata.namespace",
        format!(
            "{}: namespace {ns} has no default deny NetworkPolicy ({}; a default deny selects \
             all pods with `podSelector: {{}}`, lists Ingress and Egress in policyTypes and allows nothing).",
            w.display(),
            count_policies(policies.len()),
        ),
        format!(
            "Add to namespace {ns}: `apiVersion: networking.k8s.io/v1`, `kind: NetworkPolicy`, \
             `metadata: {{name: default-deny-all}}`, `spec: {{podSelector: {{}}, policyTypes: [Ingress, Egress]}}`; \
             then allow needed traffic with narrower NetworkPolicies."
        ),
    )
}

fn count_policies(n: usize) -> String {
    match n {
        0 => "the namespace has no NetworkPolicies".to_string(),
        1 => "the namespace has 1 NetworkPolicy".to_string(),
        n => format!("the namespace has {n} NetworkPolicies"),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn names_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterState;
    use crate::fixtures::{self, assert_names, names, PHI};
    use crate::object::Kind;
    use crate::verdict::RuleId;

    use serde_json::{json, Value};

    fn np(state: &ClusterState, ns: &str, name: &str, spec: Value) {
        fixtures::add_network_policy(state, fixtures::network_policy(ns, name, spec));
    }

    fn pod(ns: &str, labels: Value) -> Object {
        Object::from_value(
            Kind::Pod,
            &json!({
                "metadata": {"name": "api", "labels": labels},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            }),
            Some(ns),
        )
        .expect("pod")
    }

    fn deployment(ns: &str, labels: Value) -> Object {
        fixtures::deployment(ns, json!({PHI.0: PHI.1}), labels, fixtures::app_spec())
    }

    fn config(egress: Option<Mode>, default_deny: Option<Mode>) -> SegmentationConfig {
        SegmentationConfig {
            mode: Mode::Enforce,
            egress_isolation: egress,
            namespace_default_deny: default_deny,
            protect_isolating_policies: true,
            generate_default_deny: false,
        }
    }

    fn run(state: &ClusterState, w: &Object, cfg: &SegmentationConfig) -> Vec<Finding> {
        fixtures::judge(w, state, &fixtures::baseline(), |w, ctx| check(w, ctx, cfg))
    }

    fn ingress_only() -> SegmentationConfig {
        config(None, None)
    }

    #[test]
    fn no_policies_is_an_ingress_finding_on_the_pod_labels() {
        let state = ClusterState::new();
        let f = run(&state, &pod("phi", json!({"app": "api"})), &ingress_only());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, RuleId::NetworkSegmentation);
        assert_eq!(f[0].mode, Mode::Enforce);
        assert_eq!(f[0].path, "metadata.labels");
        assert_eq!(
            f[0].reason,
            crate::verdict::Reason::IngressNotIsolated,
            "{}",
            f[0].message
        );
        assert_names(&f[0].message, "phi");
        // Where to add the policy, and the fields it sets.
        for named in ["phi", "metadata.labels", "podSelector", "policyTypes"] {
            assert_names(&f[0].remediation, named);
        }
    }

    #[test]
    fn match_labels_selection_isolates_ingress() {
        let state = ClusterState::new();
        np(
            &state,
            "phi",
            "api-ingress",
            json!({"podSelector": {"matchLabels": {"app": "api"}},
                   "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]}),
        );
        assert!(run(&state, &pod("phi", json!({"app": "api"})), &ingress_only()).is_empty());
        let f = run(&state, &pod("phi", json!({"app": "web"})), &ingress_only());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].reason, Reason::IngressNotIsolated);
        // A policy that does not select the pods is not blamed.
        assert!(!names(&f[0].message, "api-ingress"), "{}", f[0].message);
    }

    #[test]
    fn match_expressions_selection() {
        let state = ClusterState::new();
        np(
            &state,
            "phi",
            "tiers",
            json!({"podSelector": {"matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["api", "db"]},
                {"key": "debug", "operator": "DoesNotExist"},
            ]}}),
        );
        let cfg = ingress_only();
        assert!(run(&state, &pod("phi", json!({"tier": "db"})), &cfg).is_empty());
        assert_eq!(
            run(&state, &pod("phi", json!({"tier": "web"})), &cfg).len(),
            1
        );
        assert_eq!(
            run(
                &state,
                &pod("phi", json!({"tier": "db", "debug": "1"})),
                &cfg
            )
            .len(),
            1
        );
    }

    #[test]
    fn empty_pod_selector_selects_every_pod() {
        let state = ClusterState::new();
        np(&state, "phi", "all", json!({"podSelector": {}}));
        assert!(run(&state, &pod("phi", json!({"x": "y"})), &ingress_only()).is_empty());
    }

    #[test]
    fn egress_only_policy_does_not_isolate_ingress_and_is_named() {
        let state = ClusterState::new();
        np(
            &state,
            "phi",
            "egress-lockdown",
            json!({"podSelector": {}, "policyTypes": ["Egress"],
                   "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}),
        );
        let f = run(
            &state,
            &pod("phi", json!({"app": "api"})),
            &config(Some(Mode::Warn), None),
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].mode, Mode::Enforce);
        assert_eq!(
            f[0].reason,
            crate::verdict::Reason::IngressNotIsolated,
            "{}",
            f[0].message
        );
        // The selecting policy is named, with the only direction it isolates.
        assert_names(&f[0].message, "egress-lockdown");
        assert_names(&f[0].message, "Egress");
    }

    #[test]
    fn policy_types_default_egress_only_with_egress_rules() {
        let state = ClusterState::new();
        // No policyTypes, no egress rules: Ingress only.
        np(&state, "a", "ingress", json!({"podSelector": {}}));
        let f = run(
            &state,
            &pod("a", json!({})),
            &config(Some(Mode::Warn), None),
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].mode, Mode::Warn);
        assert_eq!(
            f[0].reason,
            crate::verdict::Reason::EgressNotIsolated,
            "{}",
            f[0].message
        );
        assert_names(&f[0].message, "ingress");
        assert_names(&f[0].message, "Ingress");
        assert_names(&f[0].remediation, "Egress");

        // No policyTypes but egress rules: both directions isolated.
        np(
            &state,
            "b",
            "both",
            json!({"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}),
        );
        assert!(run(
            &state,
            &pod("b", json!({})),
            &config(Some(Mode::Warn), None)
        )
        .is_empty());
    }

    #[test]
    fn egress_check_off_ignores_egress() {
        let state = ClusterState::new();
        np(&state, "a", "ingress", json!({"podSelector": {}}));
        assert!(run(&state, &pod("a", json!({})), &ingress_only()).is_empty());
    }

    #[test]
    fn policies_in_other_namespaces_do_not_count() {
        let state = ClusterState::new();
        np(
            &state,
            "other",
            "deny-all",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        );
        let f = run(
            &state,
            &pod("phi", json!({})),
            &config(Some(Mode::Warn), Some(Mode::Warn)),
        );
        let reasons: Vec<Reason> = f.iter().map(|f| f.reason).collect();
        assert_eq!(
            reasons,
            [
                Reason::IngressNotIsolated,
                Reason::EgressNotIsolated,
                Reason::NoDefaultDeny
            ],
            "{f:?}"
        );
        assert!(f.iter().all(|f| !names(&f.message, "deny-all")), "{f:?}");
    }

    #[test]
    fn default_deny_satisfies_everything() {
        let state = ClusterState::new();
        np(
            &state,
            "phi",
            "deny-all",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        );
        let cfg = config(Some(Mode::Warn), Some(Mode::Enforce));
        assert!(run(&state, &pod("phi", json!({"app": "api"})), &cfg).is_empty());
    }

    #[test]
    fn a_default_deny_may_allow_dns_and_nothing_else() {
        let state = ClusterState::new();
        np(
            &state,
            "phi",
            "deny-but-dns",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                   "egress": [{"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}),
        );
        let cfg = config(None, Some(Mode::Warn));
        assert!(run(&state, &pod("phi", json!({})), &cfg).is_empty());
        // One more egress rule to anything else: no longer a default deny.
        np(
            &state,
            "phi",
            "deny-but-dns",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                   "egress": [{"ports": [{"protocol": "UDP", "port": 53}]},
                              {"ports": [{"protocol": "TCP", "port": 443}]}]}),
        );
        let f = run(&state, &pod("phi", json!({})), &cfg);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "metadata.namespace");
    }

    #[test]
    fn namespace_default_deny_requires_a_real_default_deny() {
        let state = ClusterState::new();
        // Selects everything and isolates both ways, but allows ingress: not a default deny.
        np(
            &state,
            "phi",
            "allow-some",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                   "ingress": [{"from": [{"podSelector": {}}]}]}),
        );
        let f = run(
            &state,
            &pod("phi", json!({})),
            &config(None, Some(Mode::Warn)),
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].mode, Mode::Warn);
        assert_eq!(f[0].path, "metadata.namespace");
        assert_eq!(
            f[0].reason,
            crate::verdict::Reason::NoDefaultDeny,
            "{}",
            f[0].message
        );
        assert_names(&f[0].remediation, "phi");
        assert_names(&f[0].remediation, "default-deny-all");
    }

    #[test]
    fn template_path_for_controllers() {
        let state = ClusterState::new();
        let f = run(
            &state,
            &deployment("phi", json!({"app": "api"})),
            &ingress_only(),
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "spec.template.metadata.labels");
        assert_names(&f[0].message, "phi/api");
        // The workload's own labels are not what a NetworkPolicy selects: the template's are.
        np(
            &state,
            "phi",
            "by-owner-label",
            json!({"podSelector": {"matchLabels": {"phiguard.io/data-classification": "phi"}}}),
        );
        assert_eq!(
            run(
                &state,
                &deployment("phi", json!({"app": "api"})),
                &ingress_only()
            )
            .len(),
            1
        );
    }

    #[test]
    fn invalid_selectors_are_reported_and_select_nothing() {
        let state = ClusterState::new();
        np(
            &state,
            "phi",
            "broken",
            json!({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Has"}]}}),
        );
        let f = run(&state, &pod("phi", json!({"a": "b"})), &ingress_only());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].reason, Reason::IngressNotIsolated);
        assert_names(&f[0].message, "broken");
    }

    // ---- isolation that allows everything is not segmentation ----

    #[test]
    fn allow_all_ingress_is_not_segmentation_and_names_the_rule() {
        for (spec, at) in [
            (json!({"podSelector": {}, "ingress": [{}]}), "ingress[0]"),
            (
                json!({"podSelector": {"matchLabels": {"app": "api"}}, "ingress": [
                    {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]},
                    {"from": [{"podSelector": {"matchLabels": {"app": "x"}}}, {"namespaceSelector": {}}]},
                ]}),
                "ingress[1].from[1]",
            ),
            (
                json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {}}]}]}),
                "ingress[0].from[0]",
            ),
            (
                json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]}),
                "ingress[0].from[0]",
            ),
            (
                json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "::/0"}}]}]}),
                "ingress[0].from[0]",
            ),
        ] {
            let state = ClusterState::new();
            np(&state, "db", "allow-db", spec.clone());
            let f = run(&state, &pod("db", json!({"app": "api"})), &ingress_only());
            assert_eq!(f.len(), 1, "{spec}: {f:?}");
            assert_eq!(f[0].rule, RuleId::NetworkSegmentation);
            assert_eq!(f[0].rule.citation(), "45 CFR 164.312(a)(1), (e)(1)");
            assert_eq!(f[0].mode, Mode::Enforce);
            assert_eq!(f[0].path, "metadata.labels");
            assert_eq!(f[0].reason, Reason::AllowAllIngress, "{spec}");
            // The policy and the rule (or peer) that allows everything.
            assert_names(&f[0].message, "db/allow-db");
            assert_names(&f[0].message, at);
        }
    }

    #[test]
    fn a_port_restricted_allow_from_anywhere_still_opens_that_port() {
        // The bitnami PostgreSQL chart's policy: the database port, from any source.
        let state = ClusterState::new();
        np(
            &state,
            "db",
            "postgresql",
            json!({"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"],
                   "ingress": [{"ports": [{"port": 5432, "protocol": "TCP"}]}]}),
        );
        let f = run(&state, &pod("db", json!({"app": "api"})), &ingress_only());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].reason, Reason::AllowAllIngress);
        for named in ["db/postgresql", "ingress[0]", "5432/TCP"] {
            assert_names(&f[0].message, named);
        }
        // An allow-all policy next to a default deny still opens the pods: policies add up.
        np(
            &state,
            "db",
            "deny-all",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        );
        assert_eq!(
            run(&state, &pod("db", json!({"app": "api"})), &ingress_only()).len(),
            1
        );
        // Narrow peers are segmentation.
        let state = ClusterState::new();
        np(
            &state,
            "db",
            "postgresql",
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": 5432}], "from": [
                {"podSelector": {"matchLabels": {"app": "api"}}},
                {"namespaceSelector": {"matchLabels": {"team": "records"}}},
                {"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "backup"}}},
                {"ipBlock": {"cidr": "10.20.0.0/16"}},
            ]}]}),
        );
        assert!(run(&state, &pod("db", json!({"app": "api"})), &ingress_only()).is_empty());
    }

    #[test]
    fn allow_all_egress_does_not_silence_the_egress_warning_but_dns_does_not_count() {
        let state = ClusterState::new();
        np(
            &state,
            "phi",
            "egress",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
            "egress": [
                {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}]},
            ]}),
        );
        let f = run(
            &state,
            &pod("phi", json!({})),
            &config(Some(Mode::Warn), None),
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].mode, Mode::Warn);
        assert_eq!(f[0].reason, Reason::AllowAllEgress);
        // The DNS rule egress[0] is not counted; the rule open to any address is.
        for named in ["phi/egress", "egress[1].to[0]", "443/TCP"] {
            assert_names(&f[0].message, named);
        }
        assert!(!names(&f[0].message, "egress[0]"), "{}", f[0].message);
        np(
            &state,
            "phi",
            "egress",
            json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}),
        );
        let f = run(
            &state,
            &pod("phi", json!({})),
            &config(Some(Mode::Warn), None),
        );
        assert!(
            f.iter()
                .any(|f| f.reason == Reason::AllowAllEgress && names(&f.message, "egress[0]")),
            "{f:?}"
        );
    }

    #[test]
    fn host_network_and_host_ports_are_not_segmented() {
        // Isolated by a default deny, yet on the host network: NetworkPolicies do not apply.
        let state = ClusterState::new();
        np(
            &state,
            "mon",
            "deny-all",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        );
        let ds = fixtures::object(
            Kind::DaemonSet,
            Some("mon"),
            json!({"metadata": {"name": "node-exporter"}, "spec": {"template": {
                "metadata": {"labels": {"app": "node-exporter"}},
                "spec": {"hostNetwork": true, "containers": [{"name": "exporter", "image": "e:1",
                    "ports": [{"name": "metrics", "containerPort": 9100, "hostPort": 9100}]}],
                    "initContainers": [{"name": "init", "image": "i:1",
                    "ports": [{"containerPort": 80}]}]}}}}),
        );
        let f = run(&state, &ds, &config(Some(Mode::Warn), None));
        let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.template.spec.hostNetwork",
                "spec.template.spec.containers[0].ports[0].hostPort"
            ],
            "{f:?}"
        );
        assert!(f
            .iter()
            .all(|f| f.mode == Mode::Enforce && f.rule == RuleId::NetworkSegmentation));
        assert_eq!(f[0].reason, Reason::HostNetworkUnsegmented);
        assert_names(&f[0].message, "mon/node-exporter");
        assert_eq!(f[1].reason, Reason::HostPortUnsegmented);
        assert_names(&f[1].message, "exporter");
        assert_names(&f[1].message, "9100");
        assert_names(
            &f[1].remediation,
            "spec.template.spec.containers[0].ports[0]",
        );

        // A Pod with a hostPort only.
        let p = fixtures::object(
            Kind::Pod,
            Some("mon"),
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app", "image": "a:1",
                "ports": [{"containerPort": 8080}, {"containerPort": 8443, "hostPort": 443}]}]}}),
        );
        let f = run(&state, &p, &ingress_only());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "spec.containers[0].ports[1].hostPort");
    }

    #[test]
    fn non_pod_objects_are_ignored() {
        let state = ClusterState::new();
        let svc = Object::from_value(
            Kind::Service,
            &json!({"metadata": {"name": "s"}, "spec": {"selector": {"a": "b"}}}),
            Some("phi"),
        )
        .expect("service");
        assert!(run(&state, &svc, &config(Some(Mode::Warn), Some(Mode::Warn))).is_empty());
    }
}
