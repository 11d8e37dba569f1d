//! A Namespace labeled into a policy's scope, judged with what runs in it: every workload the
//! label makes PHI is judged as the audit will judge it once the label is stored (the pure
//! engine, through a view in which the namespace carries its new labels, PhiExceptions
//! applied), and the answer names those that fail. Under `namespaceLabeling: Warn` the label is
//! admitted with warnings; under `Refuse` it is answered as creating those workloads now would
//! be (a workload that would be denied refuses the label). Never beyond the policy's mode.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::object::{Kind, Object};
use crate::policy::exception::{self, Exception};
use crate::policy::{in_scope, Mode, NamespaceLabeling, Policy};
use crate::verdict::notes::fails_under;
use crate::verdict::{Finding, Reason, RuleId, MAX_FINDINGS_PER_RULE};
use crate::view::relabeled::Relabeled;
use crate::view::ClusterView;

/// Workloads named one per finding: the cap of one rule's findings in a response, less the
/// summary and the "and N more" line, so the response names as many as it can show.
const NAMED: usize = MAX_FINDINGS_PER_RULE - 2;

/// A workload that fails a policy once the namespace is labeled.
struct Failing {
    /// `Deployment ledger (3 pods)` (the namespace is the request's).
    name: String,
    /// The strictest mode of its findings: what creating it now would meet.
    mode: Mode,
    findings: usize,
    rules: BTreeSet<RuleId>,
}

/// UPDATE of a Namespace: for every policy whose namespaceSelector the new labels match and the
/// old ones did not, the workloads in it that would fail that policy, as findings on
/// `metadata.labels` (a summary with counts per mode, then one per workload, strictest first).
pub(crate) fn namespace_labeling(
    old: &Object,
    new: &Object,
    cluster: &dyn ClusterView,
    policies: &[Arc<Policy>],
    exceptions: &[Arc<Exception>],
    now: i64,
) -> Vec<Finding> {
    if old.kind != Kind::Namespace || new.kind != Kind::Namespace {
        return Vec::new();
    }
    let name = new.name.as_str();
    let entering: Vec<&Arc<Policy>> = policies
        .iter()
        .filter(|p| {
            let sel = &p.scope.namespace_selector;
            !p.scope.excludes_namespace(name)
                && !sel.matches(&old.labels)
                && sel.matches(&new.labels)
        })
        .collect();
    if entering.is_empty() {
        return Vec::new();
    }
    let Some(objects) = cluster.namespace_objects(name) else {
        return entering.iter().map(|p| unreadable(name, p)).collect();
    };
    let before = Relabeled::new(cluster, name, &old.labels);
    let after = Relabeled::new(cluster, name, &new.labels);
    let before_ns = before.namespace(name);
    let workloads: Vec<(Object, usize)> = objects
        .iter()
        .filter_map(|raw| {
            let kind = Kind::from_group_kind(&raw.group, &raw.kind)?;
            // One the audit cannot decode either is skipped there too (and logged by its watch).
            let w = Object::from_value(kind, &raw.json, Some(name)).ok()?;
            Some((w, raw.pods))
        })
        .collect();
    let mut failing: Vec<Vec<Failing>> = entering.iter().map(|_| Vec::new()).collect();
    for (w, pods) in &workloads {
        let d = super::evaluate(w, &after, policies);
        if d.findings.is_empty() {
            continue;
        }
        let d = exception::apply(d, w, exceptions, now);
        for (policy, out) in entering.iter().zip(failing.iter_mut()) {
            if !d.policies.contains(&policy.name)
                || in_scope(w, policy, &before, before_ns.as_deref())
            {
                continue;
            }
            let mine: Vec<&Finding> = d
                .findings
                .iter()
                .filter(|f| f.policy == policy.name && f.excepted.is_none())
                .collect();
            let Some(mode) = mine.iter().map(|f| f.mode).max() else {
                continue;
            };
            out.push(Failing {
                name: match pods {
                    0 => format!("{} {}", w.kind, w.name),
                    n => format!("{} {} ({})", w.kind, w.name, plural(*n, "pod", "pods")),
                },
                mode,
                findings: mine.len(),
                rules: mine.iter().map(|f| f.rule).collect(),
            });
        }
    }
    let mut out = Vec::new();
    for (policy, mut list) in entering.into_iter().zip(failing) {
        if list.is_empty() {
            continue;
        }
        list.sort_by(|a, b| b.mode.cmp(&a.mode).then_with(|| a.name.cmp(&b.name)));
        out.extend(findings_for(name, policy, &list));
    }
    out
}

/// What the answer may do for a workload failing at `mode`: Refuse answers as its creation
/// would be; Warn at most warns. Never beyond the policy's mode.
fn answer(policy: &Policy, mode: Mode) -> Mode {
    let cap = match policy.namespace_labeling {
        NamespaceLabeling::Refuse => policy.mode,
        NamespaceLabeling::Warn => policy.mode.min(Mode::Warn),
    };
    mode.min(cap)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn findings_for(ns: &str, policy: &Policy, list: &[Failing]) -> Vec<Finding> {
    let refuse = policy.namespace_labeling == NamespaceLabeling::Refuse;
    let by_mode: Vec<String> = [Mode::Enforce, Mode::Warn, Mode::Audit]
        .into_iter()
        .filter_map(|m| {
            let n = list.iter().filter(|f| f.mode == m).count();
            (n > 0).then(|| format!("{n} under {}", m.as_str()))
        })
        .collect();
    let strictest = list.iter().map(|f| answer(policy, f.mode)).max();
    let summary_mode = strictest.unwrap_or(Mode::Audit);
    let message = format!(
        "Namespace {ns} enters the scope of PhiPolicy {} with {} in it ({}){}",
        policy.name,
        plural(list.len(), "failing workload", "failing workloads"),
        by_mode.join(", "),
        if refuse && summary_mode == Mode::Enforce {
            "; refused until they are fixed (namespaceLabeling: Refuse)."
        } else {
            "; the audit will report them."
        }
    );
    let remediation = if refuse {
        "Fix the workloads named here first, then label the namespace; the findings of each are \
         what `phi-guard check` or creating it in a PHI namespace reports."
    } else {
        "Fix the workloads named here (the namespace's PolicyReport lists every finding), or move \
         them out before labelling the namespace."
    };
    // Each policy's answer stands on its own (its mode, its failing workloads): the subject
    // keeps two policies' summaries apart.
    let mut out = vec![Finding::new(
        Reason::LabelingOverFailingWorkloads,
        summary_mode,
        "metadata.labels",
        message,
        remediation,
    )
    .about(policy.name.as_str())];
    for f in list.iter().take(NAMED) {
        let rules: Vec<&str> = f.rules.iter().map(|r| r.as_str()).collect();
        out.push(
            Finding::new(
                Reason::LabelingFailingWorkload,
                answer(policy, f.mode),
                "metadata.labels",
                format!(
                    "{}: {} ({})",
                    fails_under(&f.name, f.mode, &policy.name),
                    plural(f.findings, "finding", "findings"),
                    rules.join(", ")
                ),
                "",
            )
            .about(format!("{} {}", policy.name, f.name)),
        );
    }
    if list.len() > NAMED {
        let rest = &list[NAMED..];
        let mode = rest
            .iter()
            .map(|f| answer(policy, f.mode))
            .max()
            .unwrap_or(Mode::Audit);
        out.push(
            Finding::new(
                Reason::LabelingMoreFailing,
                mode,
                "metadata.labels",
                format!(
                    "and {} more {} failing PhiPolicy {} (the namespace's PolicyReport lists them \
                 once the label is stored)",
                    rest.len(),
                    if rest.len() == 1 {
                        "workload"
                    } else {
                        "workloads"
                    },
                    policy.name
                ),
                "",
            )
            .about(policy.name.as_str()),
        );
    }
    for f in &mut out {
        f.policy = policy.name.clone();
    }
    out
}

/// The workloads could not be read: whether they comply is unknown. Refuse fails closed
/// (retryable); Warn says so and leaves them to the audit.
fn unreadable(ns: &str, policy: &Policy) -> Finding {
    let refuse = policy.namespace_labeling == NamespaceLabeling::Refuse;
    let mut f = Finding::new(
        Reason::LabelingUnreadable,
        answer(policy, Mode::Enforce),
        "metadata.labels",
        format!(
            "Namespace {ns} enters the scope of PhiPolicy {}, but phi-guard could not read the \
             workloads in it, so whether they comply is unknown{}",
            policy.name,
            if refuse {
                "; refused until they can be checked (namespaceLabeling: Refuse)."
            } else {
                "; the audit will report them."
            }
        ),
        if refuse {
            "Retry in a few seconds."
        } else {
            "Check the namespace's PolicyReport after labelling it."
        },
    )
    .about(policy.name.as_str());
    f.policy = policy.name.clone();
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterState;
    use crate::fixtures::{self, assert_names, names, PHI};
    use crate::verdict::Decision;
    use crate::view::confirm::{Fresh, Overlay};
    use crate::view::RawObject;
    use serde_json::{json, Value};

    const SIDECAR: &str = "fluent/fluent-bit:3.1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// Only the audit sidecar is checked, so a compliant pod is easy to write.
    fn policy(labeling: NamespaceLabeling, mode: Mode) -> Arc<Policy> {
        Arc::new(fixtures::policy_with(|s| {
            s.mode = mode;
            s.namespace_labeling = labeling;
            s.encryption_in_transit.enabled = false;
            s.network_segmentation.enabled = false;
        }))
    }

    fn ns(labels: Value) -> Object {
        fixtures::object(
            Kind::Namespace,
            None,
            json!({"metadata": {"name": "records", "labels": labels}}),
        )
    }

    fn spec(compliant: bool) -> Value {
        let mut containers = vec![json!({"name": "app", "image": "app:1"})];
        if compliant {
            containers.push(json!({"name": "fluent-bit", "image": SIDECAR}));
        }
        json!({"containers": containers})
    }

    fn pod(name: &str, labels: Value, compliant: bool) -> Arc<RawObject> {
        Arc::new(RawObject {
            group: String::new(),
            kind: "Pod".into(),
            json: json!({"metadata": {"name": name, "namespace": "records", "labels": labels},
                         "spec": spec(compliant)}),
            pods: 0,
        })
    }

    fn deployment(name: &str, compliant: bool, pods: usize) -> Arc<RawObject> {
        Arc::new(RawObject {
            group: "apps".into(),
            kind: "Deployment".into(),
            json: json!({"metadata": {"name": name, "namespace": "records"},
                         "spec": {"template": {"metadata": {"labels": {"app": name}},
                                               "spec": spec(compliant)}}}),
            pods,
        })
    }

    /// The namespace's objects as the webhook's confirming read provides them.
    fn fresh(objects: Vec<Arc<RawObject>>) -> Fresh {
        let mut f = Fresh::default();
        f.namespace_objects.insert("records".into(), objects.into());
        f
    }

    fn labeling(state: &ClusterState, fresh: &Fresh, policies: &[Arc<Policy>]) -> Vec<Finding> {
        let view = Overlay { base: state, fresh };
        namespace_labeling(
            &ns(json!({"team": "a"})),
            &ns(json!({PHI.0: PHI.1, "team": "a"})),
            &view,
            policies,
            &[],
            0,
        )
    }

    fn plain_namespace() -> ClusterState {
        let state = ClusterState::new();
        fixtures::add_namespace(&state, "records", json!({"team": "a"}), json!({}));
        state
    }

    #[test]
    fn labelling_over_failing_workloads_warns_naming_them_and_their_mode() {
        let state = plain_namespace();
        let fresh = fresh(vec![
            deployment("ledger", false, 3),
            pod("debug", json!({}), false),
            pod("healthy", json!({}), true),
        ]);
        let f = labeling(
            &state,
            &fresh,
            &[policy(NamespaceLabeling::Warn, Mode::Enforce)],
        );
        assert_eq!(f.len(), 3, "{f:#?}");
        assert!(f
            .iter()
            .all(|f| f.mode == Mode::Warn && f.rule == RuleId::PhiClassification));
        assert!(f
            .iter()
            .all(|f| f.policy == "test" && f.path == "metadata.labels"));
        assert_eq!(
            f[0].message,
            "Namespace records enters the scope of PhiPolicy test with 2 failing workloads in it \
             (2 under Enforce); the audit will report them."
        );
        assert_eq!(
            f[1].message,
            "Deployment ledger (3 pods) fails under Enforce (PhiPolicy test): 1 finding (audit-sidecar)"
        );
        assert_eq!(
            f[2].message,
            "Pod debug fails under Enforce (PhiPolicy test): 1 finding (audit-sidecar)"
        );
        assert!(f.iter().all(|f| !names(&f.message, "healthy")), "{f:#?}");
        let d = Decision::from_findings(true, Vec::new(), f);
        assert!(d.allowed);
    }

    #[test]
    fn refuse_denies_while_a_workload_would_be_denied() {
        let state = plain_namespace();
        let fresh = fresh(vec![
            pod("debug", json!({}), false),
            pod("ok", json!({}), true),
        ]);
        let f = labeling(
            &state,
            &fresh,
            &[policy(NamespaceLabeling::Refuse, Mode::Enforce)],
        );
        assert_eq!(f.len(), 2, "{f:#?}");
        assert_eq!(f[0].mode, Mode::Enforce);
        assert_eq!(f[0].reason, Reason::LabelingOverFailingWorkloads);
        // Refused, and the setting that refuses it is named.
        assert_names(&f[0].message, "namespaceLabeling");
        assert_eq!(f[1].mode, Mode::Enforce);
        assert_eq!(f[1].reason, Reason::LabelingFailingWorkload);
        assert_names(&f[1].message, "debug");
        assert!(!Decision::from_findings(true, Vec::new(), f).allowed);
        // Only compliant workloads: nothing to say, the label is admitted.
        let fresh = self::fresh(vec![pod("ok", json!({}), true)]);
        assert!(labeling(
            &state,
            &fresh,
            &[policy(NamespaceLabeling::Refuse, Mode::Enforce)]
        )
        .is_empty());
    }

    #[test]
    fn the_answer_never_goes_beyond_the_policy_mode() {
        let state = plain_namespace();
        let fresh = fresh(vec![pod("debug", json!({}), false)]);
        // A Warn policy never refuses; it names the workload under Warn.
        let f = labeling(
            &state,
            &fresh,
            &[policy(NamespaceLabeling::Refuse, Mode::Warn)],
        );
        assert!(f.iter().all(|f| f.mode == Mode::Warn), "{f:#?}");
        assert_eq!(f[1].reason, Reason::LabelingFailingWorkload);
        assert_names(&f[1].message, "Warn");
        assert!(!names(&f[1].message, "Enforce"), "{}", f[1].message);
        // Not refused: the summary does not invoke namespaceLabeling: Refuse.
        assert!(
            !names(&f[0].message, "namespaceLabeling"),
            "{}",
            f[0].message
        );
        // An Audit policy only records it.
        let f = labeling(
            &state,
            &fresh,
            &[policy(NamespaceLabeling::Warn, Mode::Audit)],
        );
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|f| f.mode == Mode::Audit), "{f:#?}");
        assert_eq!(f[0].reason, Reason::LabelingOverFailingWorkloads);
        assert_names(&f[0].message, "Audit");
    }

    #[test]
    fn more_failing_workloads_than_the_cap_are_counted() {
        let state = plain_namespace();
        let pods = (0..12)
            .map(|i| pod(&format!("p{i:02}"), json!({}), false))
            .collect();
        let f = labeling(
            &state,
            &fresh(pods),
            &[policy(NamespaceLabeling::Warn, Mode::Enforce)],
        );
        // The summary, the first ones by name, and how many more: one response's worth.
        assert_eq!(f.len(), MAX_FINDINGS_PER_RULE, "{f:#?}");
        assert_eq!(f[0].reason, Reason::LabelingOverFailingWorkloads);
        assert!(f[1..=NAMED]
            .iter()
            .all(|f| f.reason == Reason::LabelingFailingWorkload));
        assert_names(&f[1].message, "p00");
        assert_names(&f[NAMED].message, "p07");
        let last = &f[MAX_FINDINGS_PER_RULE - 1];
        assert_eq!(last.reason, Reason::LabelingMoreFailing);
        // Counted, not named.
        for unnamed in ["p08", "p11"] {
            assert!(f.iter().all(|f| !names(&f.message, unnamed)), "{f:#?}");
        }
        assert_eq!(last.mode, Mode::Warn);
    }

    #[test]
    fn only_what_the_label_brings_into_scope_is_named() {
        let state = plain_namespace();
        // Already PHI by its own label: judged when it was admitted, not by this label.
        let fresh = fresh(vec![pod("own", json!({PHI.0: PHI.1}), false)]);
        assert!(labeling(
            &state,
            &fresh,
            &[policy(NamespaceLabeling::Refuse, Mode::Enforce)]
        )
        .is_empty());
        // A label change that keeps the namespace in (or out of) scope says nothing.
        let fresh = self::fresh(vec![pod("debug", json!({}), false)]);
        let view = Overlay {
            base: &state,
            fresh: &fresh,
        };
        let p = [policy(NamespaceLabeling::Refuse, Mode::Enforce)];
        let phi = ns(json!({PHI.0: PHI.1}));
        let phi2 = ns(json!({PHI.0: PHI.1, "x": "y"}));
        assert!(namespace_labeling(&phi, &phi2, &view, &p, &[], 0).is_empty());
        let plain = ns(json!({"x": "y"}));
        assert!(namespace_labeling(&plain, &ns(json!({})), &view, &p, &[], 0).is_empty());
    }

    #[test]
    fn a_workload_whose_findings_are_excepted_is_not_named() {
        let state = plain_namespace();
        let fresh = fresh(vec![
            pod("debug", json!({}), false),
            pod("legacy", json!({}), false),
        ]);
        let x: exception::PhiException = serde_json::from_value(json!({
            "apiVersion": "phiguard.io/v1alpha1", "kind": "PhiException",
            "metadata": {"name": "legacy"},
            "spec": {"match": {"namespaces": ["records"], "kinds": ["Pod"], "names": ["legacy"]},
                     "rules": [{"rule": "audit-sidecar"}],
                     "expiresAt": "2027-02-01T00:00:00Z", "ticket": "SEC-1",
                     "justification": "sidecar rollout"}}))
        .expect("exception");
        let e = Arc::new(exception::parse(&x).expect("valid"));
        let view = Overlay {
            base: &state,
            fresh: &fresh,
        };
        let f = namespace_labeling(
            &ns(json!({})),
            &ns(json!({PHI.0: PHI.1})),
            &view,
            &[policy(NamespaceLabeling::Refuse, Mode::Enforce)],
            std::slice::from_ref(&e),
            e.expires_at - 1,
        );
        assert_eq!(f.len(), 2, "{f:#?}");
        assert_eq!(f[0].reason, Reason::LabelingOverFailingWorkloads);
        assert_eq!(f[1].reason, Reason::LabelingFailingWorkload);
        assert_names(&f[1].message, "debug");
        assert!(f.iter().all(|f| !names(&f.message, "legacy")), "{f:#?}");
    }

    #[test]
    fn the_answer_fits_kubernetes_warning_limits_and_keeps_the_names() {
        use crate::webhook::admission::{AdmissionResponse, MAX_WARNING_CHARS};
        let state = plain_namespace();
        // Names of most kinds are at most 63 characters (DNS labels); name and mode survive the cut.
        let long = "a-long-workload-name-of-sixty-characters-in-all-for-labels-";
        let pods = (0..12)
            .map(|i| pod(&format!("{long}{i:02}"), json!({}), false))
            .collect();
        let f = labeling(
            &state,
            &fresh(pods),
            &[policy(NamespaceLabeling::Warn, Mode::Enforce)],
        );
        let d = Decision::from_findings(true, Vec::new(), f);
        let r = AdmissionResponse::from_decision("uid", "Namespace records", &d);
        assert!(r.allowed);
        assert_eq!(
            r.warnings.len(),
            MAX_FINDINGS_PER_RULE,
            "no \"and N more findings\" line"
        );
        assert!(r
            .warnings
            .iter()
            .all(|w| w.chars().count() <= MAX_WARNING_CHARS));
        // Each warning keeps what identifies it: the namespace and policy of the summary, the
        // workload and its mode, the policy of the count.
        assert_names(&r.warnings[0], "records");
        assert_names(&r.warnings[0], "test");
        assert_names(&r.warnings[1], &format!("{long}00"));
        assert_names(&r.warnings[1], "Enforce");
        assert_names(&r.warnings[9], "test");
        assert!(
            !names(&r.warnings[9], &format!("{long}08")),
            "{}",
            r.warnings[9]
        );
        // Refused: the denial lists them.
        let pods = vec![pod("debug", json!({}), false)];
        let f = labeling(
            &state,
            &fresh(pods),
            &[policy(NamespaceLabeling::Refuse, Mode::Enforce)],
        );
        let d = Decision::from_findings(true, Vec::new(), f);
        let r = AdmissionResponse::from_decision("uid", "Namespace records", &d);
        let msg = r.status.map(|s| s.message).unwrap_or_default();
        assert!(!r.allowed);
        assert!(
            msg.starts_with("phi-guard denied Namespace records"),
            "{msg}"
        );
        assert_names(&msg, "debug");
        assert_names(&msg, "Enforce");
    }

    #[test]
    fn workloads_that_cannot_be_read_are_not_taken_as_compliant() {
        let state = plain_namespace();
        let old = ns(json!({}));
        let new = ns(json!({PHI.0: PHI.1}));
        let f = namespace_labeling(
            &old,
            &new,
            &state,
            &[policy(NamespaceLabeling::Warn, Mode::Enforce)],
            &[],
            0,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].mode, Mode::Warn);
        assert_eq!(
            f[0].reason,
            crate::verdict::Reason::LabelingUnreadable,
            "{}",
            f[0].message
        );
        let f = namespace_labeling(
            &old,
            &new,
            &state,
            &[policy(NamespaceLabeling::Refuse, Mode::Enforce)],
            &[],
            0,
        );
        assert_eq!(f[0].mode, Mode::Enforce);
    }
}
