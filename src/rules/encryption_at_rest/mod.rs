//! The `encryption-at-rest` rule (45 CFR 164.312(a)(2)(iv)): every volume of a PHI workload must
//! be provably encrypted. Claims are followed PVC -> StorageClass (or bound PV) -> provisioner
//! parameters with per-driver knowledge; inline volume types outside the allowed set and inline
//! CSI drivers outside the allowlist are violations; on-disk emptyDir is reported separately.

mod claims;
mod provisioners;
#[cfg(test)]
mod tests;

use claims::*;
use provisioners::*;

use std::cell::OnceCell;
use std::collections::BTreeMap;

use crate::object::{Body, ClaimSpec, Object, Volume, VolumeSource};
use crate::policy::{AtRestConfig, Mode};
use crate::rules::RuleContext;
use crate::selector::Labels;
use crate::verdict::{Finding, Reason};
use crate::view::StorageClassInfo;

/// Every encryption-at-rest finding for the workload.
pub(crate) fn check(w: &Object, ctx: &RuleContext, cfg: &AtRestConfig) -> Vec<Finding> {
    let judge = Judge {
        ctx,
        cfg,
        namespace: &w.namespace,
        available: OnceCell::new(),
    };
    let mut out = Vec::new();
    match &w.body {
        Body::Pods(p) => {
            for (i, v) in p.spec.volumes.iter().enumerate() {
                let path = format!("{}.volumes[{i}]", p.spec_path);
                judge.volume(v, &path, &mut out);
            }
            for (i, t) in p.claim_templates.iter().enumerate() {
                let subject = || format!("volumeClaimTemplate {:?}", t.metadata.display_name());
                if let Some(pr) = judge.claim(&subject, &t.spec, &t.metadata.annotations) {
                    out.push(pr.finding(cfg.mode, format!("spec.volumeClaimTemplates[{i}]")));
                }
            }
        }
        Body::Operated(v) => judge.operated(w, v, &mut out),
        Body::PersistentVolumeClaim(spec) => {
            let subject = || format!("PersistentVolumeClaim {:?}", w.name);
            if let Some(pr) = judge.claim(&subject, spec, &w.annotations) {
                out.push(pr.finding(cfg.mode, "spec.storageClassName"));
            }
        }
        _ => {}
    }
    out
}

/// The StorageClasses of the cluster state that this rule finds encrypting (by their
/// provisioner's parameters, or listed in the policy's `encryptedStorageClasses`), by name, with
/// whether each is the cluster's default: what `phi-guard fix` may point a claim at.
pub(crate) fn encrypting_classes(ctx: &RuleContext, cfg: &AtRestConfig) -> Vec<(String, bool)> {
    let judge = Judge {
        ctx,
        cfg,
        namespace: "",
        available: OnceCell::new(),
    };
    let mut out: Vec<(String, bool)> = ctx
        .cluster
        .storage_classes()
        .iter()
        .filter(|sc| judge.class_verdict(sc, &Labels::new()) == Verdict::Encrypted)
        .map(|sc| (sc.name.clone(), sc.is_default))
        .collect();
    out.sort();
    out
}

/// A problem before it gets its path and mode.
struct Problem {
    reason: Reason,
    message: String,
    remediation: String,
}

impl Problem {
    fn finding(self, mode: Mode, path: impl Into<String>) -> Finding {
        Finding::new(self.reason, mode, path, self.message, self.remediation)
    }
}
