//! The table of rule metadata: one row per rule with everything the outputs say about it
//! (SARIF descriptors, the evidence report, PolicyReports, JUnit), so a rule is described once.
//! A rule's identity lives here too: its [`RuleId`] variant and its row are all `verdict` needs of
//! a new rule. A leaf, like the rest of `verdict`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How much a rule's finding matters, whatever the policy's mode (the mode says what admission
/// does; the severity says how urgent the fix is). The PolicyReport `severity` values.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// The value as PolicyReports and policies write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// The requirement a finding belongs to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
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
    /// Pod Security "restricted", no automounted token, not the default ServiceAccount.
    #[serde(rename = "least-privilege")]
    LeastPrivilege,
    /// Digest-pinned images and read-only root filesystems.
    #[serde(rename = "integrity")]
    Integrity,
    /// A mesh authorization policy selecting meshed PHI pods.
    #[serde(rename = "entity-authentication")]
    EntityAuthentication,
    /// Replicas, PodDisruptionBudgets and backups.
    #[serde(rename = "contingency")]
    Contingency,
}

impl RuleId {
    /// Every rule, in the order reports list them (the order of [`RULES`]).
    pub const ALL: [RuleId; RULES.len()] = {
        let mut all = [RuleId::EncryptionAtRest; RULES.len()];
        let mut i = 0;
        while i < RULES.len() {
            all[i] = RULES[i].id;
            i += 1;
        }
        all
    };

    /// This rule's row of [`RULES`].
    pub fn meta(self) -> &'static RuleMeta {
        // RULES holds the variants in declaration order (tested), so the discriminant is the row.
        &RULES[self as usize]
    }

    /// The id as policies and findings write it.
    pub fn as_str(self) -> &'static str {
        self.meta().code
    }

    /// The HIPAA Security Rule section the requirement serves.
    pub fn citation(self) -> &'static str {
        self.meta().citation
    }
}

/// What every output says about one rule.
#[derive(Debug, Clone, Copy)]
pub struct RuleMeta {
    pub id: RuleId,
    /// The id as policies, findings and reports write it (`encryption-at-rest`); equals the
    /// variant's serde name (tested).
    pub code: &'static str,
    /// The HIPAA Security Rule section the rule serves.
    pub citation: &'static str,
    /// PascalCase name (SARIF `name`).
    pub name: &'static str,
    /// One line: what the rule holds.
    pub title: &'static str,
    /// What is checked, for code-scanning UIs.
    pub description: &'static str,
    /// The README section that explains it.
    pub doc_anchor: &'static str,
    /// SARIF `security-severity` (0-10).
    pub security_severity: &'static str,
    /// The HIPAA Security Rule standard it serves, as the evidence report names it.
    pub safeguard: &'static str,
    /// What the evidence report says is checked.
    pub evidence: &'static str,
    /// One of the four requirements (always in the evidence); the others are optional
    /// safeguards, in the evidence only when a policy enables them.
    pub requirement: bool,
    /// Judged per object and reported in PolicyReports (the classification guard only judges
    /// changes).
    pub reported: bool,
    /// The PolicyReport severity of its results unless a policy's `spec.severity` overrides it.
    pub severity: Severity,
}

/// Every rule, in the order reports list them.
pub const RULES: [RuleMeta; 9] = [
    RuleMeta {
        id: RuleId::EncryptionAtRest,
        code: "encryption-at-rest",
        citation: "45 CFR 164.312(a)(2)(iv)",
        name: "EncryptionAtRest",
        title: "PHI is stored only on encrypting storage",
        description: "Every claim-backed volume of a PHI workload uses a StorageClass known to encrypt; inline volumes outside the restricted Pod Security set are violations, an on-disk emptyDir is a warning.",
        doc_anchor: "the-four-requirements",
        security_severity: "8.0",
        safeguard: "Encryption and decryption of ePHI (addressable)",
        evidence: "Every volume a PHI workload mounts is provably encrypted: a PersistentVolumeClaim whose StorageClass or PersistentVolume encrypts (read as its CSI driver reads it), or attested provider or node-disk encryption; no hostPath, no disk-backed scratch without attestation.",
        requirement: true,
        reported: true,
        // PHI readable from a disk, a snapshot or a node: the breach the HIPAA safe harbor for encrypted data exists for.
        severity: Severity::High,
    },
    RuleMeta {
        id: RuleId::EncryptionInTransit,
        code: "encryption-in-transit",
        citation: "45 CFR 164.312(e)(1), (e)(2)(ii)",
        name: "EncryptionInTransit",
        title: "PHI traffic is encrypted in transit",
        description: "A PHI pod is in a mesh with enforced mutual TLS or mounts TLS material; an Ingress routing to PHI pods covers every host with TLS; a Service in front of unmeshed PHI pods exposes no plaintext ports.",
        doc_anchor: "the-four-requirements",
        security_severity: "8.0",
        safeguard: "Transmission security: integrity controls and encryption",
        evidence: "Traffic to PHI pods is encrypted: a service mesh with strict mutual TLS (Istio, Linkerd), or application TLS with certificate material; Services and Ingresses in front of PHI pods serve TLS only.",
        requirement: true,
        reported: true,
        // PHI readable on the wire by anything on the network path.
        severity: Severity::High,
    },
    RuleMeta {
        id: RuleId::NetworkSegmentation,
        code: "network-segmentation",
        citation: "45 CFR 164.312(a)(1), (e)(1)",
        name: "NetworkSegmentation",
        title: "PHI pods are isolated by NetworkPolicies",
        description: "A NetworkPolicy in the pod's namespace selects the PHI pod and isolates it for ingress (egress isolation is a warning).",
        doc_anchor: "the-four-requirements",
        security_severity: "7.0",
        safeguard: "Access control; transmission security",
        evidence: "PHI pods are isolated by NetworkPolicies that select them for ingress (and egress), with no rule that allows any source; no host networking.",
        requirement: true,
        reported: true,
        // PHI reachable from every pod of the cluster: one compromised pod anywhere reads it.
        severity: Severity::High,
    },
    RuleMeta {
        id: RuleId::AuditSidecar,
        code: "audit-sidecar",
        citation: "45 CFR 164.312(b)",
        name: "AuditSidecar",
        title: "PHI pods ship their logs through an audit sidecar",
        description: "A PHI pod runs an approved audit sidecar (Fluent Bit, Vector, OpenTelemetry Collector), as a native sidecar for Jobs and CronJobs; an image without a digest is a warning.",
        doc_anchor: "the-four-requirements",
        security_severity: "6.0",
        safeguard: "Audit controls",
        evidence: "Every PHI pod runs an approved audit/log-shipping sidecar (by registry and image path) that reads the application's logs.",
        requirement: true,
        reported: true,
        // No audit trail of access: a detective control, nothing is exposed by its absence alone.
        severity: Severity::Medium,
    },
    RuleMeta {
        id: RuleId::PhiClassification,
        code: "phi-classification",
        citation: "45 CFR 164.312(a)(1)",
        name: "PhiClassification",
        title: "The PHI classification is not dropped",
        description: "An object still in a PHI scope keeps its PHI label.",
        doc_anchor: "updates-of-existing-objects",
        security_severity: "8.0",
        safeguard: "Classification",
        evidence: "PHI labels are not silently dropped.",
        requirement: false,
        reported: false,
        // A dropped PHI label takes the object out of every safeguard.
        severity: Severity::High,
    },
    RuleMeta {
        id: RuleId::LeastPrivilege,
        code: "least-privilege",
        citation: "45 CFR 164.308(a)(3), (a)(4); 164.312(a)(1)",
        name: "LeastPrivilege",
        title: "PHI pods run with least privilege",
        description: "A PHI pod meets Pod Security restricted (or its namespace enforces it), sets automountServiceAccountToken: false and names its own ServiceAccount.",
        doc_anchor: "the-four-requirements",
        security_severity: "7.0",
        safeguard: "Workforce security; information access management; access control",
        evidence: "PHI pods meet Pod Security \"restricted\" (or run in a namespace that enforces it), mount no ServiceAccount token and run under their own ServiceAccount.",
        requirement: false,
        reported: true,
        // A compromised PHI pod gets an API token and privileges to move on with.
        severity: Severity::High,
    },
    RuleMeta {
        id: RuleId::Integrity,
        code: "integrity",
        citation: "45 CFR 164.312(c)(1)",
        name: "Integrity",
        title: "PHI pods run digest-pinned images on read-only root filesystems",
        description: "Every container image of a PHI pod is pinned by @sha256 digest and sets readOnlyRootFilesystem: true.",
        doc_anchor: "the-four-requirements",
        security_severity: "6.0",
        safeguard: "Integrity",
        evidence: "Every container image of a PHI pod is pinned by digest and every root filesystem is read-only.",
        requirement: false,
        reported: true,
        // Mutable images and writable root filesystems: tampering is possible, not exposure.
        severity: Severity::Medium,
    },
    RuleMeta {
        id: RuleId::EntityAuthentication,
        code: "entity-authentication",
        citation: "45 CFR 164.312(d)",
        name: "EntityAuthentication",
        title: "Meshed PHI pods authorize authenticated identities",
        description: "A meshed PHI pod is selected by an Istio AuthorizationPolicy or a Linkerd AuthorizationPolicy requiring a MeshTLSAuthentication.",
        doc_anchor: "the-four-requirements",
        security_severity: "6.0",
        safeguard: "Person or entity authentication",
        evidence: "Meshed PHI pods are selected by a mesh authorization policy (Istio AuthorizationPolicy, Linkerd AuthorizationPolicy requiring MeshTLSAuthentication).",
        requirement: false,
        reported: true,
        // Meshed PHI pods accept any peer of the mesh: encrypted, but not authorized.
        severity: Severity::Medium,
    },
    RuleMeta {
        id: RuleId::Contingency,
        code: "contingency",
        citation: "45 CFR 164.308(a)(7)",
        name: "Contingency",
        title: "PHI workloads are redundant and backed up",
        description: "A PHI Deployment or StatefulSet runs enough replicas under a PodDisruptionBudget; with Velero installed, a Schedule covers it and no PHI volume is excluded.",
        doc_anchor: "the-four-requirements",
        security_severity: "5.0",
        safeguard: "Contingency plan",
        evidence: "PHI Deployments and StatefulSets run several replicas under a PodDisruptionBudget; with Velero installed, a Schedule backs up the namespace and no PHI volume is excluded.",
        requirement: false,
        reported: true,
        // Availability and backups: lost or unavailable PHI, no disclosure.
        severity: Severity::Medium,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_rule_once_in_order() {
        assert_eq!(RULES.len(), RuleId::ALL.len());
        for (row, id) in RULES.iter().zip(RuleId::ALL) {
            assert_eq!(row.id, id);
            assert_eq!(id.meta().id, id);
            assert!(!row.title.is_empty() && !row.evidence.is_empty());
        }
        // Row i is the variant with discriminant i, whatever order the enum is written in.
        for (i, row) in RULES.iter().enumerate() {
            assert_eq!(row.id as usize, i, "{:?} is not row {i}", row.id);
        }
    }

    #[test]
    fn each_code_is_the_name_policies_and_json_use() {
        for row in RULES {
            assert_eq!(
                serde_json::to_value(row.id).unwrap(),
                serde_json::Value::from(row.code)
            );
            let back: RuleId = serde_json::from_value(row.code.into()).unwrap();
            assert_eq!(back, row.id);
            assert!(row.citation.starts_with("45 CFR 164."), "{}", row.citation);
        }
    }

    #[test]
    fn severities_agree_with_the_sarif_scores() {
        // GitHub code scanning's bands of `security-severity`: the two outputs must not tell a
        // team different urgencies for the same rule.
        for row in RULES {
            let score: f64 = row.security_severity.parse().unwrap();
            let band = match score {
                s if s >= 9.0 => Severity::Critical,
                s if s >= 7.0 => Severity::High,
                s if s >= 4.0 => Severity::Medium,
                s if s > 0.0 => Severity::Low,
                _ => Severity::Info,
            };
            assert_eq!(row.severity, band, "{:?}", row.id);
        }
    }
}
