//! NetworkPolicies judged with the others that select the same pods: they add up, so a new
//! policy with an allow-all rule, a loosened one, or the deletion of an isolating one can open
//! running PHI pods that every other policy isolates. Pure.

use std::sync::Arc;

use super::first_names;
use crate::policy::Policy;
use crate::verdict::{Decision, Finding, Reason};
use crate::view::{ClusterView, NetworkPolicyInfo};

/// DELETE (`new` = None) or UPDATE of a NetworkPolicy: denied when it is the only ingress
/// isolation of running PHI pods.
pub(crate) fn network_policy_change(
    old: &NetworkPolicyInfo,
    new: Option<&NetworkPolicyInfo>,
    cluster: &dyn ClusterView,
    policies: &[Arc<Policy>],
) -> Decision {
    judge(Some(old), new, cluster, policies)
}

/// CREATE of a NetworkPolicy in PHI scope: NetworkPolicies add up, so a new one with a rule
/// that allows any source opens the running PHI pods it selects whatever the isolating
/// policies deny. Refused like loosening an existing policy, naming the pods it would open.
pub(crate) fn network_policy_create(
    new: &NetworkPolicyInfo,
    cluster: &dyn ClusterView,
    policies: &[Arc<Policy>],
) -> Decision {
    judge(None, Some(new), cluster, policies)
}

fn judge(
    old: Option<&NetworkPolicyInfo>,
    new: Option<&NetworkPolicyInfo>,
    cluster: &dyn ClusterView,
    policies: &[Arc<Policy>],
) -> Decision {
    let Some(subject) = old.or(new) else {
        return Decision::allow();
    };
    // A new version that opens the pods to any source loosens isolation as much as a delete.
    let new_opening: Vec<String> = new
        .map(|n| {
            n.open_rules(true)
                .iter()
                .map(|r| match r.peer {
                    Some(j) => format!(
                        "ingress[{}].from[{j}] allows {} on {}",
                        r.index, r.allows, r.ports
                    ),
                    None => format!("ingress[{}] allows {} on {}", r.index, r.allows, r.ports),
                })
                .collect()
        })
        .unwrap_or_default();
    if !old.is_some_and(|o| o.isolates_ingress) && new_opening.is_empty() {
        return Decision::allow();
    }
    let ns_name = subject.namespace.as_str();
    let ns = cluster.namespace(ns_name);
    let ns_labels = ns.as_deref().map(|n| &n.labels);
    // The namespace's policies before the change, and after it: every other policy, plus the
    // new version.
    let others = cluster.network_policies(ns_name);
    let before: Vec<&NetworkPolicyInfo> = others
        .iter()
        .map(Arc::as_ref)
        .filter(|p| p.name != subject.name)
        .chain(old)
        .collect();
    let remaining: Vec<&NetworkPolicyInfo> = others
        .iter()
        .map(Arc::as_ref)
        .filter(|p| p.name != subject.name)
        .chain(new)
        .collect();
    // Segmented for ingress: some policy isolates the pod and none opens it to any source.
    let segmented = |set: &[&NetworkPolicyInfo], labels: &crate::selector::Labels| {
        set.iter()
            .any(|np| np.isolates_ingress && np.selects(labels))
            && !set
                .iter()
                .any(|np| np.selects(labels) && !np.open_rules(true).is_empty())
    };
    let pods = cluster.pods(ns_name);
    let mut names = Vec::new();
    let mut findings = Vec::new();
    for policy in policies {
        if !policy
            .network_segmentation
            .as_ref()
            .is_some_and(|c| c.protect_isolating_policies)
        {
            continue;
        }
        let isolated: Vec<&Arc<crate::view::PodInfo>> = pods
            .iter()
            .filter(|p| {
                (old.is_some_and(|o| o.selects(&p.labels))
                    || new.is_some_and(|n| n.selects(&p.labels)))
                    && policy.scope.covers(ns_name, ns_labels, &[&p.labels])
            })
            .collect();
        if isolated.is_empty() {
            continue;
        }
        names.push(policy.name.clone());
        let exposed: Vec<String> = isolated
            .iter()
            .filter(|p| segmented(&before, &p.labels) && !segmented(&remaining, &p.labels))
            .map(|p| p.name.clone())
            .collect();
        if exposed.is_empty() {
            continue;
        }
        let mode = policy
            .network_segmentation
            .as_ref()
            .map_or(policy.mode, |c| c.mode);
        let action = match (old, new) {
            (None, _) => "Creating",
            (Some(_), Some(_)) => "Changing",
            (Some(_), None) => "Deleting",
        };
        let mut f = Finding::new(
            if new_opening.is_empty() {
                Reason::IsolationRemoved
            } else {
                Reason::IsolationOpened
            },
            mode,
            "metadata.name",
            if new_opening.is_empty() {
                format!(
                    "{action} NetworkPolicy {ns_name}/{} would leave {} PHI {} ({}) without ingress \
                     isolation: no other NetworkPolicy in namespace {ns_name} selects {} for Ingress.",
                    subject.name,
                    exposed.len(),
                    if exposed.len() == 1 { "pod" } else { "pods" },
                    first_names(&exposed),
                    if exposed.len() == 1 { "it" } else { "them" },
                )
            } else {
                format!(
                    "{action} NetworkPolicy {ns_name}/{} would leave {} PHI {} ({}) without ingress \
                     segmentation: its new {}; NetworkPolicies add up, so an allow-all rule opens \
                     the pods whatever other policies deny.",
                    subject.name,
                    exposed.len(),
                    if exposed.len() == 1 { "pod" } else { "pods" },
                    first_names(&exposed),
                    new_opening.join("; "),
                )
            },
            if new_opening.is_empty() {
                format!(
                    "Create the replacement NetworkPolicy first (selecting these pods, with Ingress in \
                     policyTypes, e.g. a default deny `podSelector: {{}}`, `policyTypes: [Ingress, Egress]`), \
                     then {} NetworkPolicy {}; or move the PHI workloads out of namespace {ns_name} first.",
                    if new.is_some() { "change" } else { "delete" },
                    subject.name
                )
            } else {
                format!(
                    "Allow only the callers that need access in NetworkPolicy {}: `from: \
                     [{{podSelector: {{matchLabels: ...}}}}]` (with a namespaceSelector for callers in \
                     other namespaces) or specific ipBlock CIDRs, keeping the `ports` restriction.",
                    subject.name
                )
            },
        );
        f.policy = policy.name.clone();
        findings.push(f);
    }
    Decision::from_findings(!names.is_empty(), names, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterState;
    use crate::fixtures::{self, assert_names, PHI};
    use crate::verdict::RuleId;
    use serde_json::json;

    fn state_with_isolated_pods() -> ClusterState {
        let state = ClusterState::new();
        fixtures::add_namespace(&state, "records", json!({PHI.0: PHI.1}), json!({}));
        fixtures::add_namespace(&state, "web", json!({}), json!({}));
        fixtures::add_pod(&state, "records", "api-1", &[("app", "api")]);
        fixtures::add_pod(&state, "records", "api-2", &[("app", "api")]);
        fixtures::add_pod(&state, "web", "site-1", &[("app", "site")]);
        for ns in ["records", "web"] {
            fixtures::add_network_policy(
                &state,
                fixtures::network_policy(
                    ns,
                    "default-deny",
                    json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
                ),
            );
        }
        state
    }

    #[test]
    fn a_new_allow_all_policy_over_running_phi_pods_is_refused_naming_them() {
        let state = state_with_isolated_pods();
        let policies = [Arc::new(fixtures::baseline())];
        let open = fixtures::network_policy(
            "records",
            "allow-all",
            json!({"podSelector": {"matchLabels": {"app": "api"}}, "ingress": [{}]}),
        );
        let d = network_policy_create(&open, &state, &policies);
        assert!(!d.allowed, "{d:?}");
        assert_eq!(d.findings.len(), 1);
        let f = &d.findings[0];
        assert_eq!(f.rule, RuleId::NetworkSegmentation);
        assert_eq!(f.reason, Reason::IsolationOpened);
        // The new policy, the PHI pods it exposes, and its rule that opens them.
        for named in ["records/allow-all", "api-1", "api-2", "ingress[0]"] {
            assert_names(&f.message, named);
        }
    }

    #[test]
    fn new_policies_that_open_nothing_phi_are_admitted() {
        let state = state_with_isolated_pods();
        let policies = [Arc::new(fixtures::baseline())];
        // Allow-all over pods that are not PHI.
        let open = fixtures::network_policy(
            "web",
            "allow-all",
            json!({"podSelector": {}, "ingress": [{}]}),
        );
        assert!(network_policy_create(&open, &state, &policies).allowed);
        // A narrow allow rule over PHI pods.
        let narrow = fixtures::network_policy(
            "records",
            "from-web",
            json!({"podSelector": {"matchLabels": {"app": "api"}},
                   "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]}),
        );
        assert!(network_policy_create(&narrow, &state, &policies).allowed);
        // Allow-all over PHI pods that no policy isolated before opens nothing new.
        let bare = ClusterState::new();
        fixtures::add_namespace(&bare, "records", json!({PHI.0: PHI.1}), json!({}));
        fixtures::add_pod(&bare, "records", "api-1", &[("app", "api")]);
        let open = fixtures::network_policy(
            "records",
            "allow-all",
            json!({"podSelector": {}, "ingress": [{}]}),
        );
        assert!(network_policy_create(&open, &bare, &policies).allowed);
    }
}
