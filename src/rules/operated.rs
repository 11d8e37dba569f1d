//! What the requirements ask of a database, broker or search cluster an operator runs
//! (`object::operated`), beyond its storage classes (`encryption_at_rest`) and TLS settings
//! (`encryption_in_transit`): that the PHI label reaches the operator's pods (else the pods
//! escape judging), that NetworkPolicies select those pods by the labels the operator gives
//! them, and where the audit sidecar must come from. Whatever the resource cannot settle is
//! judged again on each Pod the operator creates; findings say so.

use crate::object::operated::OperatedView;
use crate::object::{Body, Object, PodSpec, PodView};
use crate::policy::{AuditSidecarConfig, Mode};
use crate::rules::RuleContext;
use crate::verdict::{Finding, Reason};

fn view(w: &Object) -> Option<&OperatedView> {
    match &w.body {
        Body::Operated(v) => Some(v),
        _ => None,
    }
}

/// A resource labeled PHI itself (not through its namespace) whose operator would run pods
/// without the label: those pods would be judged as not PHI at creation, so the resource's
/// judgement and its pods' would disagree.
pub(crate) fn label_reaches_pods(w: &Object, ctx: &RuleContext) -> Option<Finding> {
    let v = view(w)?;
    let scope = ctx.scope();
    let ns_labels = ctx.namespace_labels();
    if scope.covers(&w.namespace, ns_labels, &[&v.pod_labels])
        || !scope.covers(&w.namespace, ns_labels, &[&w.labels])
    {
        return None;
    }
    let what = match v.operator {
        crate::object::operated::Operator::Strimzi => "copies only some of the resource's labels",
        _ => "does not copy the resource's own labels",
    };
    Some(Finding::new(
        Reason::OperatorDropsPhiLabel,
        ctx.policy.mode,
        format!("{}.labels", v.pod_meta_path),
        format!(
            "{} is labeled PHI, but {} {what} to the pods it runs, so they would not carry the PHI label and would not be judged as PHI",
            w.display(),
            v.operator.name()
        ),
        format!(
            "Set the PHI label in {}.labels (or label the namespace PHI).",
            v.pod_meta_path
        ),
    ))
}

/// NetworkPolicies selecting the operator's pods by the labels it gives them (its selector
/// labels and the propagated ones), judged as for any pod.
pub(crate) fn pods_for_segmentation(w: &Object) -> Option<PodView> {
    let v = view(w)?;
    if v.operator_labels.is_empty() {
        return None;
    }
    let mut labels = v.pod_labels.clone();
    labels.extend(
        v.operator_labels
            .iter()
            .map(|(k, x)| (k.to_string(), x.to_string())),
    );
    Some(PodView {
        spec_path: "spec",
        meta_path: v.pod_meta_path,
        labels,
        annotations: crate::selector::Labels::new(),
        spec: Box::new(PodSpec::default()),
        claim_templates: Vec::new(),
        run_to_completion: false,
        replicas: None,
    })
}

/// The audit sidecar of an operator's pods: present in every group of pods the resource
/// describes (ECK node sets, MariaDB `sidecarContainers`), or a warning saying where it must
/// come from. Never an Enforce finding on the resource: the Pods the operator creates are
/// judged for it with the rule's mode (a mutating webhook may inject the sidecar there).
pub(crate) fn audit_sidecar(w: &Object, cfg: &AuditSidecarConfig) -> Vec<Finding> {
    let Some(v) = view(w) else {
        return Vec::new();
    };
    let mode = cfg.mode.min(Mode::Warn);
    let approved = |c: &crate::object::Container| {
        c.image.as_deref().is_some_and(|i| cfg.image_approved(i)) && cfg.name_approved(&c.name)
    };
    match v.sidecar_field {
        None => vec![Finding::new(
            Reason::OperatorNoSidecarField,
            mode,
            "spec",
            format!(
                "{}: {}'s {} has no field for a sidecar container, so the audit sidecar is judged on each Pod the operator creates, and those Pods are refused unless a mutating webhook injects an approved sidecar",
                w.display(),
                v.operator.name(),
                w.kind
            ),
            "Inject an approved log-shipping sidecar into the operator's pods with a mutating webhook (e.g. a sidecar injector selecting them by label), or record a PhiException for them.".to_string(),
        )],
        Some(field) => v
            .sidecar_groups
            .iter()
            .filter(|(_, cs)| !cs.iter().any(approved))
            .map(|(path, _)| {
                Finding::new(
                    Reason::OperatorNoSidecar,
                    mode,
                    path.clone(),
                    format!(
                        "{}: no approved audit sidecar in {path}; the Pods {} creates from it are judged when they are created and refused without one",
                        w.display(),
                        v.operator.name()
                    ),
                    format!(
                        "Add an approved log-shipping sidecar container in {field} (images: {}).",
                        cfg.approved_image_patterns.join(", ")
                    ),
                )
            })
            .collect(),
    }
}
