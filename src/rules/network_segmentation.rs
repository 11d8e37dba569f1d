//! The `network-segmentation` rule (45 CFR 164.312(a)(1), (e)(1)): PHI pods are isolated by a
//! NetworkPolicy in their own namespace for ingress (and, configurably, egress), optionally
//! behind a namespace-wide default deny.

use std::sync::Arc;

use crate::object::{Object, PodView};
use crate::policy::{Mode, SegmentationConfig};
use crate::rules::RuleContext;
use crate::verdict::{Finding, RuleId};
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
}

/// Every network-segmentation finding for the workload.
pub(crate) fn check(w: &Object, ctx: &RuleContext, cfg: &SegmentationConfig) -> Vec<Finding> {
    let Some(pod) = w.pods() else {
        return Vec::new();
    };
    // The cluster view lists policies by namespace, and a podSelector only ever selects pods in
    // the policy's own namespace, so policies elsewhere never count.
    let policies = ctx.cluster.network_policies(&w.namespace);
    let mut out = Vec::new();
    if let Some(f) = direction_finding(w, pod, &policies, Direction::Ingress, cfg.mode) {
        out.push(f);
    }
    if let Some(mode) = cfg.egress_isolation {
        if let Some(f) = direction_finding(w, pod, &policies, Direction::Egress, mode) {
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

/// A finding when no policy in the namespace selects the pods and isolates `dir`.
fn direction_finding(
    w: &Object,
    pod: &PodView,
    policies: &[Arc<NetworkPolicyInfo>],
    dir: Direction,
    mode: Mode,
) -> Option<Finding> {
    let selecting: Vec<&NetworkPolicyInfo> = policies
        .iter()
        .map(Arc::as_ref)
        .filter(|p| p.selects(&pod.labels))
        .collect();
    if selecting.iter().any(|p| dir.isolated_by(p)) {
        return None;
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
        RuleId::NetworkSegmentation,
        mode,
        format!("{}.labels", pod.meta_path),
        message,
        remediation,
    ))
}

fn default_deny_finding(w: &Object, policies: &[Arc<NetworkPolicyInfo>], mode: Mode) -> Finding {
    let ns = &w.namespace;
    Finding::new(
        RuleId::NetworkSegmentation,
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
    use crate::fixtures::{self, PHI};
    use crate::object::Kind;

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
        assert!(f[0].message.contains("namespace phi"), "{}", f[0].message);
        assert!(f[0].message.contains("for Ingress"), "{}", f[0].message);
        assert!(
            f[0].message.contains("no NetworkPolicies"),
            "{}",
            f[0].message
        );
        assert!(f[0].remediation.contains("podSelector: {}"));
        assert!(f[0].remediation.contains("policyTypes: [Ingress, Egress]"));
    }

    #[test]
    fn match_labels_selection_isolates_ingress() {
        let state = ClusterState::new();
        np(
            &state,
            "phi",
            "api-ingress",
            json!({"podSelector": {"matchLabels": {"app": "api"}}, "ingress": [{}]}),
        );
        assert!(run(&state, &pod("phi", json!({"app": "api"})), &ingress_only()).is_empty());
        let f = run(&state, &pod("phi", json!({"app": "web"})), &ingress_only());
        assert_eq!(f.len(), 1);
        assert!(
            f[0].message.contains("has 1 NetworkPolicy"),
            "{}",
            f[0].message
        );
        assert!(
            f[0].message.contains("none of them selects"),
            "{}",
            f[0].message
        );
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
            json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}),
        );
        let f = run(
            &state,
            &pod("phi", json!({"app": "api"})),
            &config(Some(Mode::Warn), None),
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].mode, Mode::Enforce);
        assert!(f[0].message.contains("for Ingress"));
        assert!(
            f[0].message
                .contains("egress-lockdown selects the pods only for Egress"),
            "{}",
            f[0].message
        );
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
        assert!(f[0].message.contains("for Egress"));
        assert!(f[0]
            .message
            .contains("ingress selects the pods only for Ingress"));
        assert!(f[0].remediation.contains("Egress"));

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
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f.iter().all(|f| f.message.contains("no NetworkPolicies")));
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
    fn namespace_default_deny_requires_a_real_default_deny() {
        let state = ClusterState::new();
        // Selects everything and isolates both ways, but allows ingress: not a default deny.
        np(
            &state,
            "phi",
            "allow-some",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}]}),
        );
        let f = run(
            &state,
            &pod("phi", json!({})),
            &config(None, Some(Mode::Warn)),
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].mode, Mode::Warn);
        assert_eq!(f[0].path, "metadata.namespace");
        assert!(f[0].message.contains("no default deny"));
        assert!(f[0].remediation.contains("default-deny-all"));
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
        assert!(f[0].message.starts_with("Deployment phi/api"));
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
        assert!(f[0].message.contains("broken has an invalid podSelector"));
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
