//! Audit results in the ecosystem's format: `wgpolicyk8s.io/v1alpha2` PolicyReports, the
//! format Kyverno and Kubewarden write and Policy Reporter reads (OpenReports'
//! `openreports.io/v1alpha1` Report carries the same results; its adoption is still partial).
//!
//! Bounded for etcd, whatever the namespace's size: one report per namespace while it holds at
//! most [`MAX_RESULTS`] results, else the namespace's objects are spread over a power of two of
//! reports by a stable hash of kind and name (an object stays in its report as others come and
//! go), and a report is cut to [`MAX_REPORT_BYTES`] with the cut said in its summary. Results
//! carry the time they took their current value, so an unchanged namespace renders to the
//! same report and is never rewritten. Pure: results in, JSON out.

pub(crate) mod evidence;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::object::Kind;
use crate::policy::{Mode, Policy};
use crate::verdict::{Decision, RuleId};

/// Results per report before a namespace is split.
pub(crate) const MAX_RESULTS: usize = 400;
/// A report's serialized size cap (the API server's limit is about 1.5 MiB).
pub(crate) const MAX_REPORT_BYTES: usize = 1024 * 1024;
/// The label on every report phi-guard writes.
pub(crate) const MANAGED_LABEL: &str = "app.kubernetes.io/managed-by";
pub(crate) const MANAGED_VALUE: &str = "phi-guard";
/// The rules a report speaks for (the classification guard only judges changes).
pub(crate) fn reported_rules() -> impl Iterator<Item = RuleId> {
    crate::verdict::RULES
        .iter()
        .filter(|m| m.reported)
        .map(|m| m.id)
}

/// The outcome of one rule of one policy for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Outcome {
    Pass,
    /// A finding at Warn.
    Warn,
    /// A finding at Enforce or Audit: the object does not meet the safeguard (the policy's mode
    /// only decides what admission does about it).
    Fail,
    /// Every finding of the rule is waived by a PhiException (the message says until when and
    /// under which ticket).
    Skip,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
        }
    }
}

/// One result: an object, a policy, a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleResult {
    pub(crate) policy: String,
    pub(crate) rule: RuleId,
    pub(crate) outcome: Outcome,
    /// The strictest mode among the rule's findings (`None` for a pass).
    pub(crate) mode: Option<Mode>,
    /// The first finding's message, and how many more there are.
    pub(crate) message: String,
    /// Field paths of the findings.
    pub(crate) paths: Vec<String>,
}

/// The results a decision gives, per policy and rule: a result for every rule with findings,
/// and (with `passes`) a pass for every rule the policy checks that found nothing. A finding at
/// the policy's own mode is a `fail` (the object does not meet the safeguard; the mode only
/// decides what admission does about it); a finding a policy downgraded below its mode (a
/// sub-check set to Warn or Audit) is a `warn`.
pub(crate) fn results_of(
    decision: &Decision,
    policies: &[Arc<Policy>],
    passes: bool,
) -> Vec<RuleResult> {
    let mut out = Vec::new();
    for policy in &decision.policies {
        let Some(p) = policies.iter().find(|p| &p.name == policy) else {
            continue;
        };
        for rule in reported_rules() {
            let found: Vec<_> = decision
                .findings
                .iter()
                .filter(|f| f.rule == rule && (&f.policy == policy || f.policy.is_empty()))
                .collect();
            if found.is_empty() {
                if passes && p.rule_enabled(rule) {
                    out.push(RuleResult {
                        policy: policy.clone(),
                        rule,
                        outcome: Outcome::Pass,
                        mode: None,
                        message: format!("meets {} ({})", rule.as_str(), rule.citation()),
                        paths: Vec::new(),
                    });
                }
                continue;
            }
            let mode = found.iter().map(|f| f.mode).max();
            let outcome = if found.iter().all(|f| f.excepted.is_some()) {
                Outcome::Skip
            } else if mode.is_some_and(|m| m >= p.mode) {
                Outcome::Fail
            } else {
                Outcome::Warn
            };
            let mut message = found.first().map(|f| f.message.clone()).unwrap_or_default();
            if found.len() > 1 {
                message.push_str(&format!(" (and {} more)", found.len() - 1));
            }
            out.push(RuleResult {
                policy: policy.clone(),
                rule,
                outcome,
                mode,
                message,
                paths: found.iter().map(|f| f.path.clone()).collect(),
            });
        }
    }
    out
}

/// An audited object with its results and, per result, the Unix second it took its value.
#[derive(Debug, Clone)]
pub(crate) struct ObjectResults {
    pub(crate) kind: Kind,
    pub(crate) api_version: &'static str,
    pub(crate) name: String,
    pub(crate) results: Vec<(RuleResult, i64)>,
}

/// The API version of a judged kind.
pub(crate) fn api_version(kind: Kind) -> &'static str {
    match kind {
        Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet | Kind::ReplicaSet => "apps/v1",
        Kind::Job | Kind::CronJob => "batch/v1",
        Kind::Ingress | Kind::NetworkPolicy => "networking.k8s.io/v1",
        _ => "v1",
    }
}

/// FNV-1a: a hash that is the same in every process and release (report placement must not
/// move between restarts).
fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn severity(rule: RuleId, mode: Option<Mode>) -> &'static str {
    match (mode, rule) {
        (None, _) => "info",
        (Some(Mode::Enforce), RuleId::EncryptionAtRest | RuleId::EncryptionInTransit) => "high",
        (Some(Mode::Enforce), _) => "medium",
        (Some(_), _) => "low",
    }
}

fn result_json(ns: &str, o: &ObjectResults, r: &RuleResult, since: i64) -> Value {
    let mut props = serde_json::Map::new();
    props.insert("citation".into(), json!(r.rule.citation()));
    if let Some(m) = r.mode {
        props.insert("mode".into(), json!(m.as_str()));
    }
    if !r.paths.is_empty() {
        props.insert("paths".into(), json!(r.paths.join(", ")));
    }
    json!({
        "source": "phi-guard",
        "policy": r.policy,
        "rule": r.rule.as_str(),
        "category": "HIPAA Security Rule",
        "severity": severity(r.rule, r.mode),
        "result": r.outcome.as_str(),
        "message": r.message,
        "scored": true,
        "timestamp": {"seconds": since, "nanos": 0},
        "resources": [{"apiVersion": o.api_version, "kind": o.kind.as_str(), "namespace": ns, "name": o.name}],
        "properties": Value::Object(props),
    })
}

/// The name of report `i` of `n` in a namespace.
pub(crate) fn report_name(i: usize, n: usize) -> String {
    if n <= 1 {
        "phi-guard".to_string()
    } else {
        format!("phi-guard-{i}-of-{n}")
    }
}

/// The PolicyReports of one namespace, by name. Objects without results give none; a namespace
/// without results gives no report (its old ones are deleted by the writer).
pub(crate) fn namespace_reports(ns: &str, objects: &[ObjectResults]) -> BTreeMap<String, Value> {
    let total: usize = objects.iter().map(|o| o.results.len()).sum();
    let mut out = BTreeMap::new();
    if total == 0 {
        return out;
    }
    let buckets = total.div_ceil(MAX_RESULTS).next_power_of_two();
    let mut split: Vec<Vec<&ObjectResults>> = vec![Vec::new(); buckets];
    for o in objects.iter().filter(|o| !o.results.is_empty()) {
        let key = format!("{}/{}", o.kind.as_str(), o.name);
        let b = usize::try_from(stable_hash(&key) % buckets as u64).unwrap_or(0);
        if let Some(v) = split.get_mut(b) {
            v.push(o);
        }
    }
    for (i, mut objs) in split.into_iter().enumerate() {
        if objs.is_empty() {
            continue;
        }
        objs.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        let mut results = Vec::new();
        let mut bytes = 0usize;
        let mut cut = 0usize;
        let mut summary: BTreeMap<&str, u64> = BTreeMap::new();
        for o in &objs {
            for (r, since) in &o.results {
                let v = result_json(ns, o, r, *since);
                let size = v.to_string().len();
                if bytes + size > MAX_REPORT_BYTES {
                    cut += 1;
                    continue;
                }
                bytes += size;
                *summary.entry(r.outcome.as_str()).or_default() += 1;
                results.push(v);
            }
        }
        let name = report_name(i, buckets);
        let mut report = json!({
            "apiVersion": "wgpolicyk8s.io/v1alpha2",
            "kind": "PolicyReport",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": {MANAGED_LABEL: MANAGED_VALUE},
            },
            "summary": {
                "pass": summary.get("pass").copied().unwrap_or(0),
                "fail": summary.get("fail").copied().unwrap_or(0),
                "warn": summary.get("warn").copied().unwrap_or(0),
                "error": cut,
                "skip": 0,
            },
            "results": results,
        });
        if cut > 0 {
            report["metadata"]["annotations"] = json!({
                "phiguard.io/results-cut": format!(
                    "{cut} results left out to stay under {MAX_REPORT_BYTES} bytes (counted as error)"
                )
            });
        }
        out.insert(name, report);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Finding;

    fn finding(rule: RuleId, mode: Mode, path: &str) -> Finding {
        let mut f = Finding::new(
            rule,
            mode,
            path,
            format!("{} missing", rule.as_str()),
            "fix it",
        );
        f.policy = "p".into();
        f
    }

    fn decision(findings: Vec<Finding>) -> Decision {
        Decision::from_findings(true, vec!["p".into()], findings)
    }

    #[test]
    fn findings_become_fail_and_warn_and_passes_come_on_request() {
        let d = decision(vec![
            finding(
                RuleId::AuditSidecar,
                Mode::Enforce,
                "spec.template.spec.containers",
            ),
            finding(RuleId::NetworkSegmentation, Mode::Warn, "metadata"),
            finding(RuleId::NetworkSegmentation, Mode::Warn, "spec"),
        ]);
        let p = |f: fn(&mut crate::policy::PhiPolicySpec)| {
            let mut p = crate::fixtures::policy_with(f);
            p.name = "p".into();
            vec![Arc::new(p)]
        };
        let all = p(|_| {});
        let r = results_of(&d, &all, false);
        assert_eq!(r.len(), 2);
        let seg = r
            .iter()
            .find(|r| r.rule == RuleId::NetworkSegmentation)
            .expect("segmentation result");
        assert_eq!(
            seg.outcome,
            Outcome::Warn,
            "below the policy's Enforce mode"
        );
        let sidecar = r
            .iter()
            .find(|r| r.rule == RuleId::AuditSidecar)
            .expect("sidecar result");
        assert_eq!(sidecar.outcome, Outcome::Fail);
        assert!(seg.message.ends_with("(and 1 more)"), "{}", seg.message);
        assert_eq!(seg.paths.len(), 2);
        let with_passes = results_of(&d, &all, true);
        assert_eq!(with_passes.len(), 4);
        let warn_policy = p(|s| s.mode = Mode::Warn);
        let under_warn = results_of(&d, &warn_policy, false);
        assert!(
            under_warn.iter().all(|r| r.outcome == Outcome::Fail),
            "findings at a Warn policy's own mode fail: {under_warn:?}"
        );
    }

    fn objects(n: usize) -> Vec<ObjectResults> {
        (0..n)
            .map(|i| ObjectResults {
                kind: Kind::Deployment,
                api_version: "apps/v1",
                name: format!("app-{i}"),
                results: vec![(
                    RuleResult {
                        policy: "p".into(),
                        rule: RuleId::AuditSidecar,
                        outcome: Outcome::Fail,
                        mode: Some(Mode::Enforce),
                        message: "no audit sidecar".into(),
                        paths: vec!["spec.template.spec.containers".into()],
                    },
                    1_700_000_000,
                )],
            })
            .collect()
    }

    #[test]
    fn a_small_namespace_gets_one_report_with_a_summary() {
        let reports = namespace_reports("db", &objects(3));
        assert_eq!(reports.keys().collect::<Vec<_>>(), ["phi-guard"]);
        let r = &reports["phi-guard"];
        assert_eq!(r["summary"]["fail"], 3);
        assert_eq!(r["results"][0]["resources"][0]["name"], "app-0");
        assert_eq!(
            r["results"][0]["properties"]["citation"],
            "45 CFR 164.312(b)"
        );
        assert!(namespace_reports("db", &[]).is_empty());
        // Same input, same report: nothing to rewrite.
        assert_eq!(reports, namespace_reports("db", &objects(3)));
    }

    #[test]
    fn a_large_namespace_is_split_stably_and_every_report_stays_small() {
        let many = objects(5_000);
        let reports = namespace_reports("big", &many);
        assert_eq!(
            reports.len(),
            16,
            "{:?}",
            reports.keys().collect::<Vec<_>>()
        );
        let total: u64 = reports
            .values()
            .map(|r| r["summary"]["fail"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(total, 5_000);
        for r in reports.values() {
            assert!(r.to_string().len() < MAX_REPORT_BYTES);
        }
        // Removing one object changes only the report that held it.
        let fewer = namespace_reports("big", &many[1..]);
        let changed = reports
            .iter()
            .filter(|(k, v)| fewer.get(*k) != Some(*v))
            .count();
        assert_eq!(changed, 1);
    }
}
