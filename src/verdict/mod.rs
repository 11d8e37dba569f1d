//! What judging produces: the enforcement [`Mode`], the requirement a finding serves
//! ([`RuleId`] with its HIPAA citation), the [`Finding`] itself and the [`Decision`] on one
//! object. A leaf: the engine, the rules, the webhook, `check` and reports all import it, and it
//! imports nothing of the crate, so no module cycles through it.

pub mod notes;
pub mod reason;
pub mod rules;
pub use reason::Reason;
pub use rules::{RuleId, RuleMeta, Severity, RULES};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Enforcement mode of a policy or rule.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    JsonSchema,
)]
pub enum Mode {
    /// Record findings as audit annotations; admit.
    Audit,
    /// Return findings as warnings; admit.
    Warn,
    /// Deny the request and list every finding.
    #[default]
    Enforce,
}

impl Mode {
    /// The mode's name as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Audit => "Audit",
            Mode::Warn => "Warn",
            Mode::Enforce => "Enforce",
        }
    }
}

/// Findings of one rule shown in an admission response, per kind (denial lines, warnings,
/// audit annotations); the rest are counted in one "and N more" line. An object with thousands
/// of volumes yields thousands of findings: the response stays small (the API server stores
/// warnings and audit annotations with the request) and `phi-guard check` lists them all.
pub const MAX_FINDINGS_PER_RULE: usize = 10;

/// One reason an object falls short, with where and how to fix it. Messages name objects and
/// fields, never data values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: RuleId,
    /// Why, as a stable code of the rule (`unencrypted-storage-class`): what machines and
    /// tests read; the message is for people.
    pub reason: Reason,
    pub citation: &'static str,
    /// Field path in the object, e.g. `spec.template.spec.volumes[2]`.
    pub path: String,
    /// What the finding is about when the path alone does not say it (a container named in an
    /// annotation, a workload of a namespace): with rule, reason and path, what tells two
    /// shortfalls apart. Empty when the path suffices.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subject: String,
    pub message: String,
    pub remediation: String,
    pub mode: Mode,
    /// The PhiPolicy that produced it.
    pub policy: String,
    /// Waived by a PhiException: `excepted until DATE (ticket X, PhiException N)`. An excepted
    /// finding is never enforced and never silent.
    pub excepted: Option<String>,
}

impl Finding {
    /// A finding for `reason` (of its rule); the engine fills in the policy name.
    pub fn new(
        reason: Reason,
        mode: Mode,
        path: impl Into<String>,
        message: impl Into<String>,
        remediation: impl Into<String>,
    ) -> Finding {
        let rule = reason.rule();
        Finding {
            rule,
            reason,
            citation: rule.citation(),
            path: path.into(),
            subject: String::new(),
            message: message.into(),
            remediation: remediation.into(),
            mode,
            policy: String::new(),
            excepted: None,
        }
    }

    /// The same finding about `subject` (see [`Finding::subject`]).
    pub fn about(mut self, subject: impl Into<String>) -> Finding {
        self.subject = subject.into();
        self
    }

    /// What identifies the shortfall, whatever the wording: two policies finding it are one
    /// finding, and an UPDATE that keeps it keeps a pre-existing finding.
    pub fn key(&self) -> (RuleId, Reason, &str, &str) {
        (self.rule, self.reason, &self.path, &self.subject)
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
        // Linear in the findings (an index by `Finding::key`: rule, reason, path and subject, not
        // the wording), not quadratic: an object with tens of thousands of volumes yields as many
        // findings, and a review must not slow down with its size.
        let mut merged: Vec<Finding> = Vec::with_capacity(findings.len());
        let mut index: std::collections::HashMap<(RuleId, Reason, String, String), usize> =
            std::collections::HashMap::with_capacity(findings.len());
        for f in findings {
            let key = (f.rule, f.reason, f.path.clone(), f.subject.clone());
            match index.get(&key) {
                Some(&i) => {
                    if let Some(m) = merged.get_mut(i) {
                        if f.mode > m.mode {
                            *m = f;
                        }
                    }
                }
                None => {
                    index.insert(key, merged.len());
                    merged.push(f);
                }
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

    /// Combine two decisions on the same request.
    pub fn merge(a: Decision, b: Decision) -> Decision {
        let mut policies = a.policies;
        for p in b
            .policies
            .into_iter()
            .chain(b.findings.iter().map(|f| f.policy.clone()))
        {
            if !p.is_empty() && !policies.contains(&p) {
                policies.push(p);
            }
        }
        let mut findings = a.findings;
        findings.extend(b.findings);
        Decision::from_findings(a.phi || b.phi, policies, findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// De-duplication keeps the strictest mode of equal findings, in first-seen order, and stays
    /// linear: 100,000 findings (an object with 50,000 volumes, judged by two policies) merge
    /// in well under a second even in a debug build (quadratic: minutes).
    #[test]
    fn duplicates_merge_to_the_strictest_mode_in_linear_time() {
        let f = |i: usize, mode| {
            Finding::new(
                Reason::NodeDiskVolume,
                mode,
                format!("spec.volumes[{i}]"),
                "emptyDir on node disk",
                "use a PVC",
            )
        };
        let mut all: Vec<Finding> = (0..50_000).map(|i| f(i, Mode::Warn)).collect();
        all.extend((0..50_000).map(|i| f(i, if i == 7 { Mode::Enforce } else { Mode::Audit })));
        let started = std::time::Instant::now();
        let d = Decision::from_findings(true, vec!["a".into(), "b".into()], all);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(d.findings.len(), 50_000);
        assert_eq!(d.findings[7].mode, Mode::Enforce);
        assert_eq!(d.findings[8].mode, Mode::Warn);
        assert_eq!(d.findings[0].path, "spec.volumes[0]");
        assert!(!d.allowed);
    }
}
