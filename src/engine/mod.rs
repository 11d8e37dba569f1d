//! Match policies to an object, run the rules, combine every finding into one decision.
//! Pure: plain data in, a [`Decision`] out; no I/O.

pub(crate) mod network_policies;
pub(crate) mod operator_made;
pub(crate) mod owners;
pub(crate) use network_policies::{network_policy_change, network_policy_create};
mod namespace_labeling;
// Shared evaluation against judging each policy alone (`tests.rs`: a test-only file).
#[cfg(test)]
#[path = "tests.rs"]
mod sharing_tests;

use std::sync::Arc;

pub(crate) use namespace_labeling::namespace_labeling;

use crate::object::Object;
use crate::policy::in_scope;
use crate::policy::{Mode, Policy, UpdateMode};
use crate::rules::{self, RuleContext};
use crate::verdict::{Decision, Finding, Reason};
use crate::view::ClusterView;

/// Judge an object against every policy that covers it.
///
/// Policies share work: the scope is matched once per distinct scope, and the rules run once
/// per distinct rule settings (`Policy::rules_key`), and once per scope too when a rule read it.
/// A policy whose findings an earlier one already produced adds nothing to the decision (the
/// merge keeps the first of equal findings, and these have equal modes), so it is only named.
/// The keys are compared by pointer: `PolicySet::build` interns them, and a policy parsed on
/// its own simply shares nothing.
pub(crate) fn evaluate(
    w: &Object,
    cluster: &dyn ClusterView,
    policies: &[Arc<Policy>],
) -> Decision {
    let ns = if w.namespace.is_empty() {
        None
    } else {
        cluster.namespace(&w.namespace)
    };
    let mut findings = Vec::new();
    let mut names = Vec::new();
    let mut scopes = KeyMap::default();
    // Rule settings already run: (rules key, the scope key when a rule read the scope).
    let mut judged: Vec<(*const u8, Option<*const u8>)> = Vec::new();
    for policy in policies {
        let scope = key_ptr(&policy.scope_key);
        let covered = match scopes.get(scope) {
            Some(c) => c,
            None => {
                let c = in_scope(w, policy, cluster, ns.as_deref());
                scopes.insert(scope, c);
                c
            }
        };
        if !covered {
            continue;
        }
        names.push(policy.name.clone());
        let rules_key = key_ptr(&policy.rules_key);
        if judged
            .iter()
            .any(|&(r, s)| r == rules_key && s.is_none_or(|s| s == scope))
        {
            continue;
        }
        let ctx = RuleContext::new(cluster, policy, ns.clone());
        let start = findings.len();
        rules::run_all(w, &ctx, &mut findings);
        for f in &mut findings[start..] {
            f.policy.clone_from(&policy.name);
        }
        judged.push((rules_key, ctx.read_scope().then_some(scope)));
    }
    Decision::from_findings(!names.is_empty(), names, findings)
}

fn key_ptr(key: &Arc<str>) -> *const u8 {
    Arc::as_ptr(key).cast::<u8>()
}

/// A small map from key pointers to whether the scope covers the object: a vector while the
/// distinct scopes are few (the usual case), a hash map past that.
#[derive(Default)]
struct KeyMap {
    few: Vec<(*const u8, bool)>,
    many: std::collections::HashMap<*const u8, bool>,
}

impl KeyMap {
    const FEW: usize = 16;

    fn get(&self, k: *const u8) -> Option<bool> {
        if self.many.is_empty() {
            self.few.iter().find(|(p, _)| *p == k).map(|&(_, c)| c)
        } else {
            self.many.get(&k).copied()
        }
    }

    fn insert(&mut self, k: *const u8, c: bool) {
        if self.many.is_empty() && self.few.len() < Self::FEW {
            self.few.push((k, c));
        } else {
            if self.many.is_empty() {
                self.many.extend(self.few.drain(..));
            }
            self.many.insert(k, c);
        }
    }
}

/// Who made an UPDATE, as far as judging it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Actor {
    /// A person or a tool acting for one (kubectl, Helm, Argo CD).
    Person,
    /// One of Kubernetes' own controllers (`system:kube-controller-manager` or a
    /// `system:serviceaccount:kube-system:*` controller account): it finishes what was already
    /// admitted (rollouts, finalizers, garbage collection) and is never blocked by old findings.
    Controller,
}

impl Actor {
    /// Recognise Kubernetes' controllers by the identity the API server authenticated.
    pub(crate) fn from_username(user: &str) -> Actor {
        if user == "system:kube-controller-manager"
            || user.starts_with("system:serviceaccount:kube-system:")
        {
            Actor::Controller
        } else {
            Actor::Person
        }
    }
}

// The note a finding carries when an UPDATE does not enforce it.
pub(crate) use crate::verdict::notes::PRE_EXISTING;
/// The note for updates of an object whose deletion has begun.
pub(crate) const BEING_DELETED: &str =
    "not enforced: the object is being deleted (its finalizers must be able to finish)";

/// Judge an UPDATE by what it changes. Findings the old object already had (judged under the
/// same policies and cluster state) are not enforced unless the policy says `updates: Enforce`
/// and a person made a change phi-guard judges; updates of an object being deleted are never
/// denied. Findings the update introduces are enforced at their mode, as on CREATE.
pub(crate) fn evaluate_update(
    old: &Object,
    new: &Object,
    cluster: &dyn ClusterView,
    policies: &[Arc<Policy>],
    actor: Actor,
) -> Decision {
    evaluate_against(
        old,
        new,
        cluster,
        policies,
        PRE_EXISTING,
        actor == Actor::Person,
    )
}

/// Judge `new` by what it adds to `old`: findings `old` already had are not enforced (they
/// carry `note`), unless `strict_person` and the policy says `updates: Enforce` and something
/// phi-guard judges changed. The UPDATE semantics, and a controller's child judged against its
/// owner's template (`owners`).
pub(crate) fn evaluate_against(
    old: &Object,
    new: &Object,
    cluster: &dyn ClusterView,
    policies: &[Arc<Policy>],
    note: &str,
    strict_person: bool,
) -> Decision {
    let mut d = evaluate(new, cluster, policies);
    if d.allowed {
        return d;
    }
    // Nothing phi-guard reads changed (finalizers, owner references, replicas, status ...).
    let bookkeeping = old.same_but_replicas(new) || (old.deleting && new.deleting);
    let old_findings = evaluate(old, cluster, policies).findings;
    for f in d.findings.iter_mut().filter(|f| f.mode == Mode::Enforce) {
        let note = if new.deleting {
            BEING_DELETED
        } else {
            let pre_existing = old_findings.iter().any(|o| o.key() == f.key());
            if !pre_existing {
                continue;
            }
            let strict = policies
                .iter()
                .find(|p| p.name == f.policy)
                .is_some_and(|p| p.updates == UpdateMode::Enforce);
            if strict && strict_person && !bookkeeping {
                continue;
            }
            note
        };
        f.mode = Mode::Warn;
        f.message = format!("{note}: {}", f.message);
    }
    Decision::from_findings(d.phi, d.policies, d.findings)
}

/// UPDATE of a workload or Namespace: findings when a PHI label is dropped while the object is
/// still covered (by its namespace or another policy), so classification can't be silently lost.
/// Leaving scope entirely is allowed with a warning; a Namespace that drops its PHI label while
/// pods in it would lose their classification is held at the policy's mode.
pub(crate) fn classification_change(
    old: &Object,
    new: &Object,
    cluster: &dyn ClusterView,
    policies: &[Arc<Policy>],
) -> Vec<Finding> {
    if old.kind != new.kind {
        return Vec::new();
    }
    if new.kind == crate::object::Kind::Namespace {
        return namespace_classification_change(old, new, cluster, policies);
    }
    let ns_name = new.namespace.as_str();
    let ns = if ns_name.is_empty() {
        None
    } else {
        cluster.namespace(ns_name)
    };
    let ns_labels = ns.as_deref().map(|n| &n.labels);
    let new_sets = new.label_sets();
    // The first policy that still considers the new object PHI, if any.
    let still = policies
        .iter()
        .find(|p| p.scope.covers(ns_name, ns_labels, &new_sets));
    let mut out = Vec::new();
    for policy in policies {
        if policy.scope.excludes_namespace(ns_name) {
            continue;
        }
        let sel = &policy.scope.workload_selector;
        if new_sets.iter().any(|l| sel.matches(l)) {
            continue;
        }
        for (path, _) in labeled_paths(old)
            .into_iter()
            .filter(|(_, l)| sel.matches(l))
        {
            let what = format!(
                "{}: the labels at {path} no longer match the workloadSelector of PhiPolicy {}",
                new.display(),
                policy.name
            );
            let mut f = match still {
                Some(p2) => {
                    let why = if ns_labels.is_some_and(|l| p2.scope.namespace_selector.matches(l)) {
                        format!(
                            "namespace {ns_name} still classifies it as PHI (namespaceSelector of PhiPolicy {})",
                            p2.name
                        )
                    } else {
                        format!("PhiPolicy {} still classifies it as PHI", p2.name)
                    };
                    Finding::new(
                        Reason::PhiLabelRemoved,
                        policy.mode,
                        path.clone(),
                        format!("{what}: the PHI label was removed while {why}."),
                        format!(
                            "Keep the PHI label at {path}. If the workload no longer handles PHI, \
                             move it out of the PHI namespace (or change the classification) \
                             through the security team."
                        ),
                    )
                }
                None => Finding::new(
                    Reason::PhiLabelRemovedUncovered,
                    policy.mode.min(Mode::Warn),
                    path.clone(),
                    format!(
                        "{what}: the PHI label was removed and no PhiPolicy covers the workload \
                         anymore, so phi-guard no longer checks its encryption, network \
                         segmentation or audit sidecar."
                    ),
                    format!(
                        "If the workload still handles PHI, restore the PHI label at {path}; \
                         otherwise confirm the declassification with the security team."
                    ),
                ),
            };
            f.policy = policy.name.clone();
            out.push(f);
        }
    }
    out
}

/// The label sets that can mark a workload PHI, by field path (a Pod's own labels are its pods').
fn labeled_paths(w: &Object) -> Vec<(String, &crate::selector::Labels)> {
    let mut v = vec![("metadata.labels".to_string(), &w.labels)];
    if let Some(p) = w.pods() {
        let path = format!("{}.labels", p.meta_path);
        if path != v[0].0 {
            v.push((path, &p.labels));
        }
    }
    v
}

fn namespace_classification_change(
    old: &Object,
    new: &Object,
    cluster: &dyn ClusterView,
    policies: &[Arc<Policy>],
) -> Vec<Finding> {
    let name = new.name.as_str();
    let mut out = Vec::new();
    for policy in policies {
        let sel = &policy.scope.namespace_selector;
        if policy.scope.excludes_namespace(name)
            || !sel.matches(&old.labels)
            || sel.matches(&new.labels)
        {
            continue;
        }
        // Pods that no policy would consider PHI once the namespace label is gone.
        let declassified: Vec<String> = cluster
            .pods(name)
            .iter()
            .filter(|pod| {
                !policies
                    .iter()
                    .any(|p| p.scope.covers(name, Some(&new.labels), &[&pod.labels]))
            })
            .map(|pod| pod.name.clone())
            .collect();
        let lost = format!(
            "Namespace {name}: its labels no longer match the namespaceSelector of PhiPolicy {}",
            policy.name
        );
        let mut f = if declassified.is_empty() {
            Finding::new(
                Reason::NamespaceLabelRemoved,
                policy.mode.min(Mode::Warn),
                "metadata.labels",
                format!(
                    "{lost}; no running pod in it loses its PHI classification, but workloads created \
                     in it later are no longer PHI by namespace."
                ),
                "If the namespace still holds PHI workloads, restore its PHI label; otherwise confirm \
                 the declassification with the security team.",
            )
        } else {
            Finding::new(
                Reason::NamespaceDeclassifiesPods,
                policy.mode,
                "metadata.labels",
                format!(
                    "{lost}: this drops the PHI classification of {} running {} ({}) that no \
                     PhiPolicy would cover anymore.",
                    declassified.len(),
                    if declassified.len() == 1 { "pod" } else { "pods" },
                    first_names(&declassified)
                ),
                "Keep the namespace's PHI label. To declassify, the security team first moves or \
                 removes its PHI workloads (or labels them PHI individually), then removes the label.",
            )
        };
        f.policy = policy.name.clone();
        out.push(f);
    }
    out
}

/// Up to three names, then how many more.
fn first_names(names: &[String]) -> String {
    let shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        format!("{shown} and {} more", names.len() - 3)
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterState;
    use crate::fixtures::{self, assert_names, names, PHI};
    use crate::object::Kind;
    use crate::policy::{hipaa_baseline, PhiPolicy};
    use crate::verdict::RuleId;

    use crate::view::NetworkPolicyInfo;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use serde_json::{json, Value};

    fn baseline() -> Arc<Policy> {
        Arc::new(fixtures::baseline())
    }

    /// A second policy that marks `team: billing` workloads PHI and no namespaces.
    fn billing_policy() -> Arc<Policy> {
        let mut p: PhiPolicy = hipaa_baseline();
        p.metadata.name = Some("billing".into());
        p.spec.scope.workload_selector = LabelSelector {
            match_labels: Some([("team".to_string(), "billing".to_string())].into()),
            match_expressions: None,
        };
        p.spec.scope.namespace_selector = LabelSelector {
            match_labels: Some([("never".to_string(), "x".to_string())].into()),
            match_expressions: None,
        };
        Arc::new(Policy::try_from(&p).expect("valid"))
    }

    fn namespace(state: &ClusterState, name: &str, l: &[(&str, &str)]) {
        fixtures::add_namespace(state, name, json!(fixtures::label_pairs(l)), json!({}));
    }

    fn deployment(ns: &str, own: Value, template: Value) -> Object {
        fixtures::deployment(ns, own, template, fixtures::app_spec())
    }

    fn ns_object(name: &str, l: Value) -> Object {
        Object::from_value(
            Kind::Namespace,
            &json!({"metadata": {"name": name, "labels": l}}),
            None,
        )
        .expect("namespace")
    }

    // ---- evaluate_update: judging the change, not the history ----

    fn phi_deployment(extra_labels: Value, spec: Value) -> Object {
        let mut own = json!({PHI.0: PHI.1});
        if let (Some(o), Some(e)) = (own.as_object_mut(), extra_labels.as_object()) {
            o.extend(e.clone());
        }
        fixtures::deployment("phi", own, json!({PHI.0: PHI.1, "app": "api"}), spec)
    }

    fn strict_updates() -> Arc<Policy> {
        Arc::new(fixtures::policy_with(|s| s.updates = UpdateMode::Enforce))
    }

    #[test]
    fn an_update_that_adds_nothing_wrong_is_admitted_with_pre_existing_warnings() {
        let state = ClusterState::new();
        let old = phi_deployment(json!({}), fixtures::app_spec());
        let new = phi_deployment(json!({"team": "billing"}), fixtures::app_spec());
        let create = evaluate(&new, &state, &[baseline()]);
        assert!(
            !create.allowed,
            "the object itself falls short: {create:#?}"
        );
        let d = evaluate_update(&old, &new, &state, &[baseline()], Actor::Person);
        assert!(d.allowed, "{d:#?}");
        assert_eq!(
            d.findings.len(),
            create.findings.len(),
            "nothing is dropped"
        );
        for f in d
            .findings
            .iter()
            .filter(|f| f.message.starts_with(PRE_EXISTING))
        {
            assert_eq!(f.mode, Mode::Warn);
        }
        assert!(d
            .findings
            .iter()
            .any(|f| f.message.starts_with(PRE_EXISTING)));
    }

    #[test]
    fn an_update_that_introduces_a_finding_is_denied_for_that_finding_only() {
        let state = ClusterState::new();
        let old = phi_deployment(json!({}), fixtures::app_spec());
        let spec = json!({"containers": [{"name": "app", "image": "app:1"}],
                          "volumes": [{"name": "host", "hostPath": {"path": "/var/data"}}]});
        let new = phi_deployment(json!({}), spec);
        let d = evaluate_update(&old, &new, &state, &[baseline()], Actor::Person);
        assert!(!d.allowed);
        let enforced: Vec<&Finding> = d.with_mode(Mode::Enforce).collect();
        assert!(!enforced.is_empty());
        assert!(
            enforced
                .iter()
                .all(|f| f.rule == RuleId::EncryptionAtRest && f.path.contains("volumes[0]")),
            "{enforced:#?}"
        );
        // A controller does not get a pass for what the update introduces either.
        let d = evaluate_update(&old, &new, &state, &[baseline()], Actor::Controller);
        assert!(!d.allowed);
    }

    #[test]
    fn strict_updates_bind_people_but_never_controllers_or_bookkeeping() {
        let state = ClusterState::new();
        let old = phi_deployment(json!({}), fixtures::app_spec());
        let labeled = phi_deployment(json!({"team": "billing"}), fixtures::app_spec());
        let strict = [strict_updates()];
        assert!(!evaluate_update(&old, &labeled, &state, &strict, Actor::Person).allowed);
        assert!(evaluate_update(&old, &labeled, &state, &strict, Actor::Controller).allowed);
        // Same object as phi-guard reads it (e.g. a finalizer or replicas changed).
        let same = old.clone();
        assert!(evaluate_update(&old, &same, &state, &strict, Actor::Person).allowed);
    }

    #[test]
    fn updates_of_an_object_being_deleted_are_never_denied() {
        let state = ClusterState::new();
        let old = phi_deployment(json!({}), fixtures::app_spec());
        let mut new = old.clone();
        new.deleting = true;
        let d = evaluate_update(&old, &new, &state, &[strict_updates()], Actor::Person);
        assert!(d.allowed, "{d:#?}");
        assert_eq!(d.with_mode(Mode::Enforce).count(), 0);
        assert!(d
            .findings
            .iter()
            .any(|f| f.message.starts_with(BEING_DELETED)));
    }

    #[test]
    fn pre_existing_findings_of_a_namespace_scoped_policy_are_warnings() {
        let state = ClusterState::new();
        fixtures::add_namespace(&state, "clinic", json!({"scope": "x"}), json!({}));
        let mut p = fixtures::policy_with(|s| {
            s.scope.namespace_selector = LabelSelector {
                match_labels: Some([("scope".to_string(), "x".to_string())].into()),
                match_expressions: None,
            };
            s.scope.workload_selector = LabelSelector {
                match_labels: Some([("scope".to_string(), "x".to_string())].into()),
                match_expressions: None,
            };
        });
        p.name = "scoped".into();
        let old = fixtures::deployment(
            "clinic",
            json!({"app": "api"}),
            json!({"app": "api"}),
            fixtures::app_spec(),
        );
        let new = fixtures::deployment(
            "clinic",
            json!({"app": "api", "team": "billing"}),
            json!({"app": "api"}),
            fixtures::app_spec(),
        );
        let policies = [Arc::new(p)];
        assert!(!evaluate(&new, &state, &policies).allowed);
        let d = evaluate_update(&old, &new, &state, &policies, Actor::Person);
        assert!(d.allowed, "{d:#?}");
    }

    #[test]
    fn controllers_are_recognised_by_their_identity() {
        for u in [
            "system:kube-controller-manager",
            "system:serviceaccount:kube-system:deployment-controller",
            "system:serviceaccount:kube-system:pvc-protection-controller",
        ] {
            assert_eq!(Actor::from_username(u), Actor::Controller, "{u}");
        }
        for u in [
            "alice",
            "system:serviceaccount:apps:deployer",
            "",
            "system:admin",
        ] {
            assert_eq!(Actor::from_username(u), Actor::Person, "{u}");
        }
    }

    // ---- classification_change: workloads ----

    #[test]
    fn label_removed_in_phi_namespace_is_enforced_on_each_label_set() {
        let state = ClusterState::new();
        namespace(&state, "records", &[PHI]);
        let old = deployment(
            "records",
            json!({PHI.0: PHI.1}),
            json!({PHI.0: PHI.1, "app": "api"}),
        );
        let new = deployment("records", json!({}), json!({"app": "api"}));
        let f = classification_change(&old, &new, &state, &[baseline()]);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f.iter().all(|f| f.mode == Mode::Enforce
            && f.rule == RuleId::PhiClassification
            && f.policy == "hipaa-baseline"));
        assert_eq!(f[0].path, "metadata.labels");
        assert_eq!(f[1].path, "spec.template.metadata.labels");
        assert!(f.iter().all(|f| f.reason == Reason::PhiLabelRemoved));
        // Still PHI by the namespace (its selector), and where to put the label back.
        assert_names(&f[0].message, "records");
        assert_names(&f[0].message, "namespaceSelector");
        assert_names(&f[0].remediation, "metadata.labels");
        let d = Decision::from_findings(true, vec![], f);
        assert!(!d.allowed);
    }

    #[test]
    fn label_removed_from_template_only_uses_the_template_path() {
        let state = ClusterState::new();
        namespace(&state, "records", &[PHI]);
        let old = deployment("records", json!({}), json!({PHI.0: PHI.1}));
        let new = deployment("records", json!({}), json!({}));
        let f = classification_change(&old, &new, &state, &[baseline()]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "spec.template.metadata.labels");
    }

    #[test]
    fn pod_label_removal_has_one_path() {
        let state = ClusterState::new();
        namespace(&state, "records", &[PHI]);
        let pod = |l: Value| {
            Object::from_value(
                Kind::Pod,
                &json!({"metadata": {"name": "p", "labels": l}, "spec": {"containers": []}}),
                Some("records"),
            )
            .expect("pod")
        };
        let f = classification_change(
            &pod(json!({PHI.0: PHI.1})),
            &pod(json!({})),
            &state,
            &[baseline()],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "metadata.labels");
        assert_eq!(f[0].mode, Mode::Enforce);
    }

    #[test]
    fn label_removed_leaving_scope_is_a_warning() {
        let state = ClusterState::new();
        namespace(&state, "apps", &[]);
        let old = deployment("apps", json!({PHI.0: PHI.1}), json!({PHI.0: PHI.1}));
        let new = deployment("apps", json!({}), json!({}));
        let f = classification_change(&old, &new, &state, &[baseline()]);
        assert_eq!(f.len(), 2);
        assert!(f
            .iter()
            .all(|f| f.mode == Mode::Warn && f.reason == Reason::PhiLabelRemovedUncovered));
        assert!(Decision::from_findings(false, vec![], f).allowed);
    }

    #[test]
    fn label_kept_on_one_set_is_fine() {
        let state = ClusterState::new();
        namespace(&state, "records", &[PHI]);
        let old = deployment("records", json!({PHI.0: PHI.1}), json!({PHI.0: PHI.1}));
        let new = deployment("records", json!({PHI.0: PHI.1}), json!({}));
        assert!(classification_change(&old, &new, &state, &[baseline()]).is_empty());
        // Never labeled: nothing to say.
        let plain = deployment("records", json!({}), json!({}));
        assert!(classification_change(&plain, &plain, &state, &[baseline()]).is_empty());
    }

    #[test]
    fn another_policy_still_covering_is_enforced_and_named() {
        let state = ClusterState::new();
        namespace(&state, "apps", &[]);
        let old = deployment("apps", json!({}), json!({PHI.0: PHI.1, "team": "billing"}));
        let new = deployment("apps", json!({}), json!({"team": "billing"}));
        let f = classification_change(&old, &new, &state, &[baseline(), billing_policy()]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].mode, Mode::Enforce);
        assert_eq!(f[0].reason, Reason::PhiLabelRemoved);
        // Still PHI by the other policy's workloadSelector, not by a namespace.
        assert_names(&f[0].message, "billing");
        assert!(
            !names(&f[0].message, "namespaceSelector"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn system_and_excluded_namespaces_are_ignored() {
        let state = ClusterState::new();
        namespace(&state, "kube-system", &[PHI]);
        let old = deployment("kube-system", json!({PHI.0: PHI.1}), json!({}));
        let new = deployment("kube-system", json!({}), json!({}));
        assert!(classification_change(&old, &new, &state, &[baseline()]).is_empty());
    }

    #[test]
    fn warn_mode_policy_never_denies_a_label_removal() {
        let state = ClusterState::new();
        namespace(&state, "records", &[PHI]);
        let mut p = hipaa_baseline();
        p.spec.mode = Mode::Warn;
        let policy = Arc::new(Policy::try_from(&p).expect("valid"));
        let old = deployment("records", json!({PHI.0: PHI.1}), json!({}));
        let new = deployment("records", json!({}), json!({}));
        let f = classification_change(&old, &new, &state, &[policy]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].mode, Mode::Warn);
    }

    // ---- classification_change: namespaces ----

    #[test]
    fn namespace_label_removed_with_running_pods_is_enforced() {
        let state = ClusterState::new();
        for name in ["pod-a", "pod-b", "pod-c", "pod-d"] {
            fixtures::add_pod(&state, "records", name, &[("app", "api")]);
        }
        let f = classification_change(
            &ns_object("records", json!({PHI.0: PHI.1})),
            &ns_object("records", json!({})),
            &state,
            &[baseline()],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].mode, Mode::Enforce);
        assert_eq!(f[0].path, "metadata.labels");
        assert_eq!(f[0].reason, Reason::NamespaceDeclassifiesPods);
        assert_names(&f[0].message, "records");
        // The first three declassified pods by name, not all of them.
        for named in ["pod-a", "pod-b", "pod-c"] {
            assert_names(&f[0].message, named);
        }
        assert!(!names(&f[0].message, "pod-d"), "{}", f[0].message);
    }

    #[test]
    fn namespace_label_removed_without_pods_or_with_labeled_pods_is_a_warning() {
        let state = ClusterState::new();
        let old = ns_object("records", json!({PHI.0: PHI.1}));
        let new = ns_object("records", json!({"team": "x"}));
        let f = classification_change(&old, &new, &state, &[baseline()]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].mode, Mode::Warn);
        // Pods that stay PHI by their own labels are not declassified.
        fixtures::add_pod(&state, "records", "p", &[PHI]);
        let f = classification_change(&old, &new, &state, &[baseline()]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].mode, Mode::Warn);
        // Pods elsewhere do not matter.
        fixtures::add_pod(&state, "other", "q", &[]);
        let f = classification_change(&old, &new, &state, &[baseline()]);
        assert_eq!(f[0].mode, Mode::Warn);
        // A pod in it without its own label does.
        fixtures::add_pod(&state, "records", "unlabeled", &[]);
        let f = classification_change(&old, &new, &state, &[baseline()]);
        assert_eq!(f[0].mode, Mode::Enforce);
        assert_eq!(f[0].reason, Reason::NamespaceDeclassifiesPods);
        assert_names(&f[0].message, "unlabeled");
    }

    #[test]
    fn namespace_label_kept_or_system_namespace_is_silent() {
        let state = ClusterState::new();
        fixtures::add_pod(&state, "records", "a", &[]);
        fixtures::add_pod(&state, "kube-system", "a", &[]);
        let labeled = ns_object("records", json!({PHI.0: PHI.1}));
        let relabeled = ns_object("records", json!({PHI.0: PHI.1, "x": "y"}));
        assert!(classification_change(&labeled, &relabeled, &state, &[baseline()]).is_empty());
        let old = ns_object("kube-system", json!({PHI.0: PHI.1}));
        let new = ns_object("kube-system", json!({}));
        assert!(classification_change(&old, &new, &state, &[baseline()]).is_empty());
    }

    // ---- network_policy_change ----

    fn isolating(ns: &str, name: &str, app: &str) -> NetworkPolicyInfo {
        fixtures::network_policy(
            ns,
            name,
            json!({"podSelector": {"matchLabels": {"app": app}}}),
        )
    }

    #[test]
    fn deleting_the_only_ingress_isolation_of_phi_pods_is_denied() {
        let state = ClusterState::new();
        namespace(&state, "records", &[PHI]);
        for name in ["api-1", "api-2", "api-3", "api-4"] {
            fixtures::add_pod(&state, "records", name, &[("app", "api")]);
        }
        fixtures::add_pod(&state, "records", "web", &[("app", "web")]);
        let old = isolating("records", "api-ingress", "api");
        fixtures::add_network_policy(&state, old.clone());
        let d = network_policy_change(&old, None, &state, &[baseline()]);
        assert!(!d.allowed);
        assert!(d.phi);
        assert_eq!(d.policies, vec!["hipaa-baseline".to_string()]);
        assert_eq!(d.findings.len(), 1);
        let f = &d.findings[0];
        assert_eq!(f.rule, RuleId::NetworkSegmentation);
        assert_eq!(f.path, "metadata.name");
        assert_eq!(f.reason, Reason::IsolationRemoved);
        assert_names(&f.message, "records/api-ingress");
        // The first three exposed PHI pods, never the non-PHI one.
        for named in ["api-1", "api-2", "api-3"] {
            assert_names(&f.message, named);
        }
        for unnamed in ["api-4", "web"] {
            assert!(!names(&f.message, unnamed), "{unnamed}: {}", f.message);
        }
        assert_names(&f.remediation, "api-ingress");
        assert_names(&f.remediation, "records");
    }

    #[test]
    fn delete_is_allowed_when_another_policy_isolates_ingress() {
        let state = ClusterState::new();
        namespace(&state, "records", &[PHI]);
        fixtures::add_pod(&state, "records", "api-1", &[("app", "api")]);
        let old = isolating("records", "api-ingress", "api");
        fixtures::add_network_policy(&state, old.clone());
        fixtures::add_network_policy(
            &state,
            fixtures::network_policy(
                "records",
                "default-deny",
                json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
            ),
        );
        let d = network_policy_change(&old, None, &state, &[baseline()]);
        assert!(d.allowed, "{d:?}");
        assert!(d.findings.is_empty());
    }

    #[test]
    fn an_egress_only_replacement_or_other_namespace_policy_does_not_count() {
        let state = ClusterState::new();
        namespace(&state, "records", &[PHI]);
        fixtures::add_pod(&state, "records", "api-1", &[("app", "api")]);
        let old = isolating("records", "api-ingress", "api");
        fixtures::add_network_policy(&state, old.clone());
        fixtures::add_network_policy(
            &state,
            fixtures::network_policy(
                "records",
                "egress",
                json!({"podSelector": {}, "policyTypes": ["Egress"]}),
            ),
        );
        fixtures::add_network_policy(
            &state,
            fixtures::network_policy("elsewhere", "deny", json!({"podSelector": {}})),
        );
        let d = network_policy_change(&old, None, &state, &[baseline()]);
        assert!(!d.allowed);
        assert_eq!(d.findings[0].reason, Reason::IsolationRemoved);
        assert_names(&d.findings[0].message, "api-1");
    }

    #[test]
    fn delete_of_policy_over_non_phi_pods_is_allowed() {
        let state = ClusterState::new();
        namespace(&state, "apps", &[]);
        fixtures::add_pod(&state, "apps", "api-1", &[("app", "api")]);
        let old = isolating("apps", "api-ingress", "api");
        fixtures::add_network_policy(&state, old.clone());
        let d = network_policy_change(&old, None, &state, &[baseline()]);
        assert!(d.allowed);
        assert!(!d.phi);
        // A PHI pod by its own label in the same namespace makes it matter.
        fixtures::add_pod(&state, "apps", "api-2", &[("app", "api"), PHI]);
        let d = network_policy_change(&old, None, &state, &[baseline()]);
        assert!(!d.allowed);
        assert_eq!(d.findings[0].reason, Reason::IsolationRemoved);
        assert_names(&d.findings[0].message, "api-2");
        assert!(
            !names(&d.findings[0].message, "api-1"),
            "{}",
            d.findings[0].message
        );
    }

    #[test]
    fn egress_only_policy_delete_is_allowed() {
        let state = ClusterState::new();
        namespace(&state, "records", &[PHI]);
        fixtures::add_pod(&state, "records", "api-1", &[("app", "api")]);
        let old = fixtures::network_policy(
            "records",
            "egress",
            json!({"podSelector": {}, "policyTypes": ["Egress"]}),
        );
        fixtures::add_network_policy(&state, old.clone());
        assert!(network_policy_change(&old, None, &state, &[baseline()]).allowed);
    }

    #[test]
    fn updates_that_keep_or_drop_isolation() {
        let state = ClusterState::new();
        namespace(&state, "records", &[PHI]);
        fixtures::add_pod(
            &state,
            "records",
            "api-1",
            &[("app", "api"), ("tier", "db")],
        );
        let old = isolating("records", "api-ingress", "api");
        fixtures::add_network_policy(&state, old.clone());

        // Same selection, more rules: fine.
        let keep = fixtures::network_policy(
            "records",
            "api-ingress",
            json!({"podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]},
                   "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]}),
        );
        assert!(network_policy_change(&old, Some(&keep), &state, &[baseline()]).allowed);

        // Narrowed selector no longer selects the pod.
        let narrowed = isolating("records", "api-ingress", "other");
        let d = network_policy_change(&old, Some(&narrowed), &state, &[baseline()]);
        assert!(!d.allowed);
        assert_eq!(d.findings[0].reason, Reason::IsolationRemoved);
        assert_names(&d.findings[0].message, "records/api-ingress");
        assert_names(&d.findings[0].remediation, "api-ingress");

        // Turned into an egress-only policy.
        let egress_only = fixtures::network_policy(
            "records",
            "api-ingress",
            json!({"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Egress"]}),
        );
        assert!(!network_policy_change(&old, Some(&egress_only), &state, &[baseline()]).allowed);
    }

    #[test]
    fn protection_can_be_turned_off() {
        let state = ClusterState::new();
        namespace(&state, "records", &[PHI]);
        fixtures::add_pod(&state, "records", "api-1", &[("app", "api")]);
        let old = isolating("records", "api-ingress", "api");
        fixtures::add_network_policy(&state, old.clone());
        let mut p = hipaa_baseline();
        p.spec.network_segmentation.protect_isolating_policies = false;
        let policy = Arc::new(Policy::try_from(&p).expect("valid"));
        assert!(network_policy_change(&old, None, &state, &[policy]).allowed);
        let mut p = hipaa_baseline();
        p.spec.network_segmentation.enabled = false;
        let policy = Arc::new(Policy::try_from(&p).expect("valid"));
        assert!(network_policy_change(&old, None, &state, &[policy]).allowed);
    }

    #[test]
    fn an_allow_all_replacement_loosens_isolation() {
        let state = ClusterState::new();
        namespace(&state, "records", &[PHI]);
        fixtures::add_pod(&state, "records", "api-1", &[("app", "api")]);
        let old = isolating("records", "api-ingress", "api");
        fixtures::add_network_policy(&state, old.clone());
        fixtures::add_network_policy(
            &state,
            fixtures::network_policy(
                "records",
                "default-deny",
                json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
            ),
        );
        // Each names the rule (or peer) of the new version that opens the pods.
        for (spec, at) in [
            (
                json!({"podSelector": {"matchLabels": {"app": "api"}}, "ingress": [{}]}),
                &["ingress[0]"][..],
            ),
            (
                json!({"podSelector": {"matchLabels": {"app": "api"}},
                       "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 5432}]}]}),
                &["ingress[0].from[0]", "5432/TCP"][..],
            ),
            (
                json!({"podSelector": {}, "policyTypes": ["Ingress"],
                       "ingress": [{"from": [{"namespaceSelector": {}}]}]}),
                &["ingress[0].from[0]"][..],
            ),
        ] {
            let open = fixtures::network_policy("records", "api-ingress", spec.clone());
            let d = network_policy_change(&old, Some(&open), &state, &[baseline()]);
            assert!(!d.allowed, "{spec}");
            let f = &d.findings[0];
            assert_eq!(f.rule, RuleId::NetworkSegmentation);
            assert_eq!(f.reason, Reason::IsolationOpened, "{spec}");
            for named in ["records/api-ingress", "api-1"].iter().chain(at) {
                assert_names(&f.message, named);
            }
        }
        // An egress-only policy turned into an allow-all ingress policy opens the pods as well,
        // although the default deny still isolates them.
        let egress_only = fixtures::network_policy(
            "records",
            "egress",
            json!({"podSelector": {}, "policyTypes": ["Egress"]}),
        );
        fixtures::add_network_policy(&state, egress_only.clone());
        let opened = fixtures::network_policy(
            "records",
            "egress",
            json!({"podSelector": {}, "ingress": [{}]}),
        );
        assert!(!network_policy_change(&egress_only, Some(&opened), &state, &[baseline()]).allowed);
        // Pods already open before the change are not made worse by it.
        let already = fixtures::network_policy(
            "records",
            "allow-all",
            json!({"podSelector": {}, "ingress": [{}]}),
        );
        fixtures::add_network_policy(&state, already);
        let open = fixtures::network_policy(
            "records",
            "api-ingress",
            json!({"podSelector": {}, "ingress": [{}]}),
        );
        assert!(network_policy_change(&old, Some(&open), &state, &[baseline()]).allowed);
    }
}
