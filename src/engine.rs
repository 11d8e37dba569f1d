//! Match policies to an object, run the rules, combine every finding into one decision.
//! Pure: plain data in, a [`Decision`] out; no I/O.

use std::sync::Arc;

use serde::Serialize;

use crate::cluster::{ClusterView, NamespaceInfo};
use crate::policy::{Mode, Policy};
use crate::rules;
use crate::workload::Workload;

/// The requirement a finding belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum RuleId {
    #[serde(rename = "encryption-at-rest")]
    EncryptionAtRest,
    #[serde(rename = "encryption-in-transit")]
    EncryptionInTransit,
    #[serde(rename = "network-segmentation")]
    NetworkSegmentation,
    #[serde(rename = "audit-sidecar")]
    AuditSidecar,
    /// Changes to the PHI classification itself (a PHI label dropped while still in scope).
    #[serde(rename = "phi-classification")]
    PhiClassification,
}

impl RuleId {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::EncryptionAtRest => "encryption-at-rest",
            RuleId::EncryptionInTransit => "encryption-in-transit",
            RuleId::NetworkSegmentation => "network-segmentation",
            RuleId::AuditSidecar => "audit-sidecar",
            RuleId::PhiClassification => "phi-classification",
        }
    }

    /// The HIPAA Security Rule section the requirement serves.
    pub fn citation(self) -> &'static str {
        match self {
            RuleId::EncryptionAtRest => "45 CFR 164.312(a)(2)(iv)",
            RuleId::EncryptionInTransit => "45 CFR 164.312(e)(1), (e)(2)(ii)",
            RuleId::NetworkSegmentation => "45 CFR 164.312(a)(1), (e)(1)",
            RuleId::AuditSidecar => "45 CFR 164.312(b)",
            RuleId::PhiClassification => "45 CFR 164.312(a)(1)",
        }
    }
}

/// One reason an object falls short, with where and how to fix it. Messages name objects and
/// fields, never data values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: RuleId,
    pub citation: &'static str,
    /// Field path in the object, e.g. `spec.template.spec.volumes[2]`.
    pub path: String,
    pub message: String,
    pub remediation: String,
    pub mode: Mode,
    /// The PhiPolicy that produced it.
    pub policy: String,
}

impl Finding {
    /// A finding of `rule`; the engine fills in the policy name.
    pub fn new(
        rule: RuleId,
        mode: Mode,
        path: impl Into<String>,
        message: impl Into<String>,
        remediation: impl Into<String>,
    ) -> Finding {
        Finding {
            rule,
            citation: rule.citation(),
            path: path.into(),
            message: message.into(),
            remediation: remediation.into(),
            mode,
            policy: String::new(),
        }
    }
}

/// The verdict on one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Some policy considers the object PHI.
    pub phi: bool,
    /// No Enforce finding.
    pub allowed: bool,
    /// Every finding, in rule order, deduplicated across policies (strictest mode kept).
    pub findings: Vec<Finding>,
    /// Names of the policies that judged the object.
    pub policies: Vec<String>,
}

impl Decision {
    /// Admit: nothing to say.
    pub fn allow() -> Decision {
        Decision {
            allowed: true,
            ..Default::default()
        }
    }

    /// Combine findings into a decision.
    pub fn from_findings(phi: bool, policies: Vec<String>, findings: Vec<Finding>) -> Decision {
        let mut merged: Vec<Finding> = Vec::with_capacity(findings.len());
        for f in findings {
            match merged
                .iter_mut()
                .find(|m| m.rule == f.rule && m.path == f.path && m.message == f.message)
            {
                Some(m) if f.mode > m.mode => *m = f,
                Some(_) => {}
                None => merged.push(f),
            }
        }
        merged.sort_by_key(|f| f.rule);
        Decision {
            phi,
            allowed: !merged.iter().any(|f| f.mode == Mode::Enforce),
            findings: merged,
            policies,
        }
    }

    /// Findings of one mode.
    pub fn with_mode(&self, mode: Mode) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.mode == mode)
    }
}

/// What a rule may read besides the object: cluster state, the policy, the object's namespace.
pub struct RuleContext<'a> {
    pub cluster: &'a dyn ClusterView,
    pub policy: &'a Policy,
    pub namespace: Option<Arc<NamespaceInfo>>,
}

impl RuleContext<'_> {
    /// Labels of the object's namespace (empty when unknown).
    pub fn namespace_labels(&self) -> Option<&crate::selector::Labels> {
        self.namespace.as_deref().map(|n| &n.labels)
    }
}

/// Does `policy` consider the workload PHI? Services and Ingresses are also PHI when they route
/// to PHI pods.
pub fn in_scope(
    w: &Workload,
    policy: &Policy,
    cluster: &dyn ClusterView,
    ns: Option<&NamespaceInfo>,
) -> bool {
    let ns_labels = ns.map(|n| &n.labels);
    if policy
        .scope
        .covers(&w.namespace, ns_labels, &w.label_sets())
    {
        return true;
    }
    if policy.scope.excludes_namespace(&w.namespace) {
        return false;
    }
    match &w.body {
        crate::workload::Body::Service(svc) => svc
            .selector
            .as_ref()
            .is_some_and(|sel| rules::selects_phi_pods(sel, &w.namespace, policy, cluster)),
        crate::workload::Body::Ingress(ing) => ing
            .rules
            .iter()
            .flat_map(|r| r.services.iter())
            .chain(ing.default_backend.iter())
            .any(|svc| rules::service_routes_to_phi(svc, &w.namespace, policy, cluster)),
        _ => false,
    }
}

/// Judge an object against every policy that covers it.
pub fn evaluate(w: &Workload, cluster: &dyn ClusterView, policies: &[Arc<Policy>]) -> Decision {
    let ns = if w.namespace.is_empty() {
        None
    } else {
        cluster.namespace(&w.namespace)
    };
    let mut findings = Vec::new();
    let mut names = Vec::new();
    for policy in policies {
        if !in_scope(w, policy, cluster, ns.as_deref()) {
            continue;
        }
        names.push(policy.name.clone());
        let ctx = RuleContext {
            cluster,
            policy,
            namespace: ns.clone(),
        };
        let start = findings.len();
        rules::run_all(w, &ctx, &mut findings);
        for f in &mut findings[start..] {
            f.policy = policy.name.clone();
        }
    }
    Decision::from_findings(!names.is_empty(), names, findings)
}

/// UPDATE of a workload or Namespace: findings when a PHI label is dropped while the object is
/// still covered (by its namespace or another policy), so classification can't be silently lost.
pub fn classification_change(
    _old: &Workload,
    _new: &Workload,
    _cluster: &dyn ClusterView,
    _policies: &[Arc<Policy>],
) -> Vec<Finding> {
    Vec::new()
}

/// DELETE (`new` = None) or UPDATE of a NetworkPolicy: denied when it is the only ingress
/// isolation of running PHI pods.
pub fn network_policy_change(
    _old: &crate::cluster::NetworkPolicyInfo,
    _new: Option<&crate::cluster::NetworkPolicyInfo>,
    _cluster: &dyn ClusterView,
    _policies: &[Arc<Policy>],
) -> Decision {
    Decision::allow()
}
