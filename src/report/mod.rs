//! Audit results in the ecosystem's format: `wgpolicyk8s.io/v1alpha2` PolicyReports, the
//! format Kyverno and Kubewarden write and Policy Reporter reads (OpenReports'
//! `openreports.io/v1alpha1` Report carries the same results; see the README for why phi-guard
//! does not write it yet).
//!
//! Bounded for etcd, whatever the namespace's size, and stable for consumers that key results
//! by ID (Policy Reporter keeps one row per result ID and drops a report's rows with the report):
//! a namespace's objects are placed by a stable hash into shards, a binary trie on the hash's
//! low bits. A shard holding more than `max_results` results splits in two by its next bit; the
//! half whose bit is 0 keeps the shard's name, so a split moves half of one report's objects to
//! a new report and no other object moves. Every result carries the object's uid and a
//! `properties.resultID` unique per object, policy, rule and outcome. A report is cut to
//! [`MAX_REPORT_BYTES`] with the cut shown as an `error` result. Results carry the time they took
//! their current value, so an unchanged namespace renders to the same report and is never
//! rewritten. Pure: results in, JSON out, and the order of writes ([`write_order`]).

pub(crate) mod evidence;
pub(crate) mod markup;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::object::Kind;
use crate::policy::{Mode, Policy};
use crate::verdict::{Decision, Reason, RuleId, Severity};

/// Results per report before its shard splits (the default of `--audit-report-max-results`).
pub(crate) const MAX_RESULTS: usize = 400;
/// A report's serialized size cap (the API server's limit is about 1.5 MiB).
pub(crate) const MAX_REPORT_BYTES: usize = 1024 * 1024;
/// Room kept under the cap for the `error` result that says what was cut.
const CUT_NOTE_BYTES: usize = 1024;
/// The deepest split: 2^20 reports per namespace, far beyond any namespace.
const MAX_DEPTH: u32 = 20;
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
pub(crate) enum PolicyResult {
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

impl PolicyResult {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PolicyResult::Pass => "pass",
            PolicyResult::Warn => "warn",
            PolicyResult::Fail => "fail",
            PolicyResult::Skip => "skip",
        }
    }

    /// A finding that stands (fail or warn): what status and metrics count as a violation.
    pub(crate) fn is_violation(self) -> bool {
        matches!(self, PolicyResult::Fail | PolicyResult::Warn)
    }
}

/// One result: an object, a policy, a rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RuleResult {
    pub(crate) policy: String,
    pub(crate) rule: RuleId,
    pub(crate) outcome: PolicyResult,
    /// The strictest mode among the rule's findings (`None` for a pass).
    pub(crate) mode: Option<Mode>,
    /// The policy's severity for the rule (its override or the rule's default).
    pub(crate) severity: Severity,
    /// The first finding's message, and how many more there are.
    pub(crate) message: String,
    /// Field paths of the findings.
    pub(crate) paths: Vec<String>,
    /// The findings' distinct reason codes, first seen first (the first is the message's).
    pub(crate) reasons: Vec<Reason>,
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
                        outcome: PolicyResult::Pass,
                        mode: None,
                        severity: p.severity(rule),
                        message: format!("meets {} ({})", rule.as_str(), rule.citation()),
                        paths: Vec::new(),
                        reasons: Vec::new(),
                    });
                }
                continue;
            }
            let mode = found.iter().map(|f| f.mode).max();
            let outcome = if found.iter().all(|f| f.excepted.is_some()) {
                PolicyResult::Skip
            } else if mode.is_some_and(|m| m >= p.mode) {
                PolicyResult::Fail
            } else {
                PolicyResult::Warn
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
                severity: p.severity(rule),
                message,
                paths: found.iter().map(|f| f.path.clone()).collect(),
                reasons: found.iter().fold(Vec::new(), |mut v, f| {
                    if !v.contains(&f.reason) {
                        v.push(f.reason);
                    }
                    v
                }),
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
    /// `metadata.uid`: consumers tell objects of the same name apart by it.
    pub(crate) uid: String,
    pub(crate) results: Vec<(RuleResult, i64)>,
}

impl ObjectResults {
    /// What places the object in a shard and identifies its results: the uid, or kind and name
    /// for an object read without one (files).
    fn identity(&self, ns: &str) -> String {
        identity(ns, self.kind, &self.name, &self.uid)
    }
}

/// What places an object in a shard and identifies its results: its uid, or namespace, kind and
/// name for an object read without one (files).
pub(crate) fn identity(ns: &str, kind: Kind, name: &str, uid: &str) -> String {
    if uid.is_empty() {
        format!("{ns}/{}/{name}", kind.as_str())
    } else {
        uid.to_string()
    }
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

/// FNV-1a: a hash that is the same in every process and release (report placement and result
/// IDs must not move between restarts).
fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The `properties.resultID` of a result: one per object, policy, rule and outcome. Consumers
/// take it as the result's identity, so it must not depend on the report holding the result
/// (which changes when a shard splits) nor on the wording; a new outcome is a new result (a
/// fail turned pass is news to notify about).
pub(crate) fn result_id(identity: &str, r: &RuleResult) -> String {
    result_number(identity, r).to_string()
}

/// The number a result ID is written as.
pub(crate) fn result_number(identity: &str, r: &RuleResult) -> u64 {
    stable_hash(&[identity, &r.policy, r.rule.as_str(), r.outcome.as_str()])
}

fn result_json(ns: &str, o: &ObjectResults, r: &RuleResult, since: i64) -> Value {
    let mut props = serde_json::Map::new();
    props.insert("resultID".into(), json!(result_id(&o.identity(ns), r)));
    props.insert("citation".into(), json!(r.rule.citation()));
    if let Some(m) = r.mode {
        props.insert("mode".into(), json!(m.as_str()));
    }
    if !r.paths.is_empty() {
        props.insert("paths".into(), json!(r.paths.join(", ")));
    }
    if !r.reasons.is_empty() {
        // PolicyReport properties are strings: the codes, comma-separated.
        let codes: Vec<&str> = r.reasons.iter().map(|c| c.as_str()).collect();
        props.insert("reason".into(), json!(codes.join(",")));
    }
    let mut resource = json!({
        "apiVersion": o.api_version,
        "kind": o.kind.as_str(),
        "namespace": ns,
        "name": o.name,
    });
    if !o.uid.is_empty() {
        resource["uid"] = json!(o.uid);
    }
    json!({
        "source": "phi-guard",
        "policy": r.policy,
        "rule": r.rule.as_str(),
        "category": "HIPAA Security Rule",
        "severity": r.severity.as_str(),
        "result": r.outcome.as_str(),
        "message": r.message,
        "scored": true,
        "timestamp": {"seconds": since, "nanos": 0},
        "resources": [resource],
        "properties": Value::Object(props),
    })
}

/// The `error` result standing for results cut to keep a report under its size cap.
fn cut_json(ns: &str, name: &str, cut: usize, since: i64) -> Value {
    json!({
        "source": "phi-guard",
        "policy": "phi-guard",
        "rule": "report-size",
        "category": "HIPAA Security Rule",
        "severity": "medium",
        "result": "error",
        "message": format!(
            "{cut} results left out of this report to stay under {MAX_REPORT_BYTES} bytes; PhiPolicy status and phi_guard_audit_violations count them"
        ),
        "scored": false,
        "timestamp": {"seconds": since, "nanos": 0},
        "properties": {"resultID": stable_hash(&[ns, name, "report-size"]).to_string()},
    })
}

/// One report of a namespace: the objects whose hash has `id` as its low `depth` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shard {
    id: u64,
    depth: u32,
}

impl Shard {
    /// The report's name: the first shard is `phi-guard`; a split's 0-half keeps its parent's
    /// name (its id is the parent's), so names survive splits.
    fn name(self) -> String {
        if self.id == 0 {
            "phi-guard".to_string()
        } else {
            format!("phi-guard-{:x}", self.id)
        }
    }
}

/// Place objects (by hash, with their result counts) into shards of at most `max_results`
/// results, splitting only the shards that overflow.
fn place(items: Vec<(u64, usize, usize)>, max_results: usize) -> Vec<(Shard, Vec<usize>)> {
    let mut done = Vec::new();
    let mut todo = vec![(Shard { id: 0, depth: 0 }, items)];
    while let Some((shard, items)) = todo.pop() {
        let total: usize = items.iter().map(|(_, n, _)| n).sum();
        if total <= max_results || shard.depth >= MAX_DEPTH {
            done.push((shard, items.into_iter().map(|(_, _, i)| i).collect()));
            continue;
        }
        let bit = 1u64 << shard.depth;
        let (ones, zeros): (Vec<_>, Vec<_>) = items.into_iter().partition(|(h, _, _)| h & bit != 0);
        let depth = shard.depth + 1;
        todo.push((
            Shard {
                id: shard.id,
                depth,
            },
            zeros,
        ));
        todo.push((
            Shard {
                id: shard.id | bit,
                depth,
            },
            ones,
        ));
    }
    done
}

/// The PolicyReports of one namespace, by name. Objects without results give none; a namespace
/// without results gives no report (its old ones are deleted by the writer).
pub(crate) fn namespace_reports(
    ns: &str,
    objects: &[ObjectResults],
    max_results: usize,
) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let items: Vec<(u64, usize, usize)> = objects
        .iter()
        .enumerate()
        .filter(|(_, o)| !o.results.is_empty())
        .map(|(i, o)| (stable_hash(&[&o.identity(ns)]), o.results.len(), i))
        .collect();
    if items.is_empty() {
        return out;
    }
    for (shard, members) in place(items, max_results.max(1)) {
        if members.is_empty() {
            continue;
        }
        let mut objs: Vec<&ObjectResults> =
            members.iter().filter_map(|i| objects.get(*i)).collect();
        objs.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        let name = shard.name();
        let mut results = Vec::new();
        let mut bytes = 0usize;
        let mut cut = 0usize;
        let mut latest = 0i64;
        for o in &objs {
            for (r, since) in &o.results {
                let v = result_json(ns, o, r, *since);
                let size = v.to_string().len();
                if bytes + size > MAX_REPORT_BYTES - CUT_NOTE_BYTES {
                    cut += 1;
                    latest = latest.max(*since);
                    continue;
                }
                bytes += size;
                results.push(v);
            }
        }
        if cut > 0 {
            results.push(cut_json(ns, &name, cut, latest));
        }
        let report = json!({
            "apiVersion": "wgpolicyk8s.io/v1alpha2",
            "kind": "PolicyReport",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": {MANAGED_LABEL: MANAGED_VALUE},
            },
            "summary": summary(&results),
            "results": results,
        });
        out.insert(name, report);
    }
    out
}

/// A report's summary: exactly what its results hold.
fn summary(results: &[Value]) -> Value {
    let count = |what: &str| results.iter().filter(|r| r["result"] == what).count();
    json!({
        "pass": count("pass"),
        "fail": count("fail"),
        "warn": count("warn"),
        "error": count("error"),
        "skip": count("skip"),
    })
}

/// One write of the reports of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WriteOp {
    Delete(String),
    Apply(String),
}

/// The order in which to make the API server's reports (`existing`) equal `desired`: deletions
/// first, then reports that exist, then new ones. A result that moves (a shard split or merged)
/// thus leaves its old report before it enters the new one; a consumer that keeps one row per
/// result ID and ignores an ID it already holds (Policy Reporter) would otherwise skip it in the
/// new report and drop it with the old one.
pub(crate) fn write_order(
    existing: &BTreeSet<String>,
    desired: &BTreeMap<String, Value>,
) -> Vec<WriteOp> {
    let mut ops: Vec<WriteOp> = existing
        .iter()
        .filter(|n| !desired.contains_key(*n))
        .map(|n| WriteOp::Delete(n.clone()))
        .collect();
    let (old, new): (Vec<&String>, Vec<&String>) =
        desired.keys().partition(|n| existing.contains(*n));
    ops.extend(
        old.into_iter()
            .chain(new)
            .map(|n| WriteOp::Apply(n.clone())),
    );
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Finding;

    fn finding(rule: RuleId, mode: Mode, path: &str) -> Finding {
        let mut f = Finding::new(
            crate::fixtures::a_reason(rule),
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
            PolicyResult::Warn,
            "below the policy's Enforce mode"
        );
        let sidecar = r
            .iter()
            .find(|r| r.rule == RuleId::AuditSidecar)
            .expect("sidecar result");
        assert_eq!(sidecar.outcome, PolicyResult::Fail);
        assert!(seg.message.ends_with("(and 1 more)"), "{}", seg.message);
        assert_eq!(seg.paths.len(), 2);
        // Two findings of one reason: the code once.
        assert_eq!(
            seg.reasons,
            [crate::fixtures::a_reason(RuleId::NetworkSegmentation)]
        );
        let with_passes = results_of(&d, &all, true);
        assert_eq!(with_passes.len(), 4);
        let warn_policy = p(|s| s.mode = Mode::Warn);
        let under_warn = results_of(&d, &warn_policy, false);
        assert!(
            under_warn.iter().all(|r| r.outcome == PolicyResult::Fail),
            "findings at a Warn policy's own mode fail: {under_warn:?}"
        );
    }

    fn result(outcome: PolicyResult) -> RuleResult {
        RuleResult {
            policy: "p".into(),
            rule: RuleId::AuditSidecar,
            outcome,
            mode: Some(Mode::Enforce),
            severity: Severity::Medium,
            message: "no audit sidecar".into(),
            paths: vec!["spec.template.spec.containers".into()],
            reasons: vec![Reason::NoAuditSidecar],
        }
    }

    fn app(i: usize, results: Vec<RuleResult>) -> ObjectResults {
        ObjectResults {
            kind: Kind::Deployment,
            api_version: "apps/v1",
            name: format!("app-{i}"),
            uid: format!("00000000-0000-4000-8000-{i:012}"),
            results: results.into_iter().map(|r| (r, 1_700_000_000)).collect(),
        }
    }

    fn objects(n: usize) -> Vec<ObjectResults> {
        (0..n)
            .map(|i| app(i, vec![result(PolicyResult::Fail)]))
            .collect()
    }

    fn all_results(reports: &BTreeMap<String, Value>) -> Vec<&Value> {
        reports
            .values()
            .flat_map(|r| r["results"].as_array().into_iter().flatten())
            .collect()
    }

    /// resultID -> report name.
    fn placement(reports: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, r) in reports {
            for x in r["results"].as_array().into_iter().flatten() {
                let id = x["properties"]["resultID"].as_str().unwrap().to_string();
                assert!(out.insert(id, name.clone()).is_none(), "a resultID twice");
            }
        }
        out
    }

    #[test]
    fn a_small_namespace_gets_one_report_with_a_summary() {
        let reports = namespace_reports("db", &objects(3), MAX_RESULTS);
        assert_eq!(reports.keys().collect::<Vec<_>>(), ["phi-guard"]);
        let r = &reports["phi-guard"];
        assert_eq!(r["summary"]["fail"], 3);
        assert_eq!(r["results"][0]["resources"][0]["name"], "app-0");
        assert_eq!(
            r["results"][0]["properties"]["citation"],
            "45 CFR 164.312(b)"
        );
        assert_eq!(r["results"][0]["properties"]["reason"], "no-audit-sidecar");
        assert!(namespace_reports("db", &[], MAX_RESULTS).is_empty());
        // Same input, same report: nothing to rewrite.
        assert_eq!(reports, namespace_reports("db", &objects(3), MAX_RESULTS));
    }

    #[test]
    fn every_resource_names_its_object_with_uid_and_results_have_distinct_ids() {
        // The same app in two namespaces: Policy Reporter's own ID (name, uid, policy, rule,
        // result, category, message) must differ, and so must ours.
        let a = namespace_reports("clinic-a", &objects(1), MAX_RESULTS);
        let mut other = objects(1);
        other[0].uid = "11111111-0000-4000-8000-000000000000".into();
        let b = namespace_reports("clinic-b", &other, MAX_RESULTS);
        let ra = &a["phi-guard"]["results"][0];
        let rb = &b["phi-guard"]["results"][0];
        for (r, ns) in [(ra, "clinic-a"), (rb, "clinic-b")] {
            let res = &r["resources"][0];
            assert_eq!(res["apiVersion"], "apps/v1");
            assert_eq!(res["kind"], "Deployment");
            assert_eq!(res["namespace"], ns);
            assert_eq!(res["name"], "app-0");
            assert!(res["uid"].as_str().is_some_and(|u| !u.is_empty()), "{res}");
        }
        assert_ne!(ra["resources"][0]["uid"], rb["resources"][0]["uid"]);
        assert_ne!(ra["properties"]["resultID"], rb["properties"]["resultID"]);
        // Without a uid (objects read from files) the namespace tells them apart.
        let mut no_uid = objects(1);
        no_uid[0].uid.clear();
        let x = namespace_reports("x", &no_uid, MAX_RESULTS);
        let y = namespace_reports("y", &no_uid, MAX_RESULTS);
        assert_ne!(
            x["phi-guard"]["results"][0]["properties"]["resultID"],
            y["phi-guard"]["results"][0]["properties"]["resultID"]
        );
        assert!(x["phi-guard"]["results"][0]["resources"][0]
            .get("uid")
            .is_none());
        // One ID per object, policy, rule and outcome: a new outcome is a new result.
        let fail = result_id("u", &result(PolicyResult::Fail));
        assert_ne!(fail, result_id("u", &result(PolicyResult::Pass)));
        let mut reworded = result(PolicyResult::Fail);
        reworded.message = "no audit sidecar (and 1 more)".into();
        assert_eq!(fail, result_id("u", &reworded));
    }

    #[test]
    fn summaries_count_exactly_what_the_results_hold() {
        let mixed: Vec<ObjectResults> = (0..50)
            .map(|i| {
                let outcome = [
                    PolicyResult::Pass,
                    PolicyResult::Warn,
                    PolicyResult::Fail,
                    PolicyResult::Skip,
                ][i % 4];
                app(i, vec![result(outcome)])
            })
            .collect();
        let mut big = mixed.clone();
        // Results too big for one report: the cut shows as one `error` result.
        for o in big.iter_mut() {
            for (r, _) in o.results.iter_mut() {
                r.message = "m".repeat(30_000);
            }
        }
        for (objs, max) in [(&mixed, MAX_RESULTS), (&mixed, 7), (&big, MAX_RESULTS)] {
            let reports = namespace_reports("ns", objs, max);
            for r in reports.values() {
                for what in ["pass", "fail", "warn", "error", "skip"] {
                    let n = r["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|x| x["result"] == what)
                        .count();
                    assert_eq!(r["summary"][what], n, "{what} in {}", r["metadata"]["name"]);
                }
                assert!(r.to_string().len() <= MAX_REPORT_BYTES);
            }
        }
        let cut = namespace_reports("ns", &big, MAX_RESULTS);
        let r = &cut["phi-guard"];
        assert_eq!(r["summary"]["error"], 1);
        let whole = namespace_reports("ns", &mixed, MAX_RESULTS);
        assert_eq!(
            whole["phi-guard"]["summary"]["skip"], 12,
            "skip results are counted"
        );
        assert_eq!(whole["phi-guard"]["summary"]["error"], 0);
        let shown: u64 = ["pass", "fail", "warn", "skip"]
            .iter()
            .map(|k| r["summary"][*k].as_u64().unwrap())
            .sum();
        let error = r["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["result"] == "error")
            .unwrap();
        let left_out = 50 - shown;
        assert!(left_out > 0);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{left_out} results left out")),
            "{error}"
        );
    }

    #[test]
    fn severity_is_the_rules_whatever_the_mode_and_a_policy_overrides_it() {
        let d = decision(vec![
            finding(
                RuleId::EncryptionAtRest,
                Mode::Warn,
                "spec.volumes[0].hostPath",
            ),
            finding(RuleId::AuditSidecar, Mode::Warn, "spec.containers"),
        ]);
        let p = |f: fn(&mut crate::policy::PhiPolicySpec)| {
            let mut p = crate::fixtures::policy_with(f);
            p.name = "p".into();
            vec![Arc::new(p)]
        };
        for policies in [p(|s| s.mode = Mode::Warn), p(|s| s.mode = Mode::Enforce)] {
            let r = results_of(&d, &policies, true);
            let sev = |rule| r.iter().find(|x| x.rule == rule).unwrap().severity;
            assert_eq!(
                sev(RuleId::EncryptionAtRest),
                Severity::High,
                "a hostPath volume"
            );
            assert_eq!(sev(RuleId::AuditSidecar), Severity::Medium);
            assert_eq!(
                sev(RuleId::NetworkSegmentation),
                Severity::High,
                "a pass too"
            );
        }
        let overridden = p(|s| {
            s.mode = Mode::Warn;
            s.severity
                .insert("audit-sidecar".into(), Severity::Critical);
        });
        let r = results_of(&d, &overridden, false);
        let sidecar = r.iter().find(|x| x.rule == RuleId::AuditSidecar).unwrap();
        assert_eq!(sidecar.severity, Severity::Critical);
        let o = ObjectResults {
            ..app(0, vec![sidecar.clone()])
        };
        let reports = namespace_reports("ns", &[o], MAX_RESULTS);
        assert_eq!(reports["phi-guard"]["results"][0]["severity"], "critical");
    }

    /// Policy Reporter's store as v3 keeps it: one row per result ID, an ID already held is
    /// ignored on insert, a report's rows are dropped when it is updated or deleted.
    #[derive(Default)]
    struct Consumer {
        rows: BTreeMap<String, String>,
    }

    impl Consumer {
        fn apply(&mut self, name: &str, report: &Value) {
            self.rows.retain(|_, r| r != name);
            for x in report["results"].as_array().into_iter().flatten() {
                let id = x["properties"]["resultID"].as_str().unwrap().to_string();
                self.rows.entry(id).or_insert_with(|| name.to_string());
            }
        }

        fn delete(&mut self, name: &str) {
            self.rows.retain(|_, r| r != name);
        }

        /// Bring it from `before` to `after` as the writer would, with the ops in `order`.
        fn write(
            &mut self,
            before: &BTreeMap<String, Value>,
            after: &BTreeMap<String, Value>,
            order: impl Fn(Vec<WriteOp>) -> Vec<WriteOp>,
        ) {
            let existing = before.keys().cloned().collect();
            for op in order(write_order(&existing, after)) {
                match op {
                    WriteOp::Apply(n) if before.get(&n) != after.get(&n) => {
                        self.apply(&n, &after[&n])
                    }
                    WriteOp::Apply(_) => {}
                    WriteOp::Delete(n) => self.delete(&n),
                }
            }
        }
    }

    /// Grow a namespace one object at a time across several splits (and shrink it back), and
    /// compare every render with the one before.
    fn grow_and_shrink(
        mut check: impl FnMut(&BTreeMap<String, Value>, &BTreeMap<String, Value>, usize),
    ) {
        let all = objects(260);
        let mut before = BTreeMap::new();
        let sizes: Vec<usize> = (1..=260).chain((1..260).rev()).collect();
        for n in sizes {
            let after = namespace_reports("big", &all[..n], 20);
            check(&before, &after, n);
            before = after;
        }
    }

    #[test]
    fn splits_keep_every_result_and_move_only_the_split_reports_objects() {
        let mut splits = 0;
        grow_and_shrink(|before, after, n| {
            let (b, a) = (placement(before), placement(after));
            assert_eq!(a.len(), n, "one result per object");
            // No result disappears from the union of reports between two writes: growing, all
            // stay; shrinking, only the removed object's.
            let kept: Vec<&String> = b.keys().filter(|id| a.contains_key(*id)).collect();
            let grew = n > b.len();
            assert_eq!(
                b.len() - kept.len(),
                usize::from(!grew && !b.is_empty()),
                "at {n}"
            );
            // Results move only out of a report that split (to a new report) or into one that
            // absorbed a deleted report; the others stay where they were.
            let moved: Vec<&String> = kept.iter().copied().filter(|id| a[*id] != b[*id]).collect();
            if !moved.is_empty() && after.len() > before.len() {
                splits += 1;
                let from: BTreeSet<&String> = moved.iter().map(|id| &b[*id]).collect();
                let to: BTreeSet<&String> = moved.iter().map(|id| &a[*id]).collect();
                assert_eq!(from.len(), 1, "one report split at {n}: {from:?}");
                assert!(
                    to.iter().all(|t| !before.contains_key(*t)),
                    "moved into new reports only"
                );
                // At most the split report's results moved, and not all of them on average.
                assert!(moved.len() <= 21);
            }
            for r in after.values() {
                assert!(r["results"].as_array().unwrap().len() <= 20);
            }
        });
        assert!(splits >= 8, "the namespace split {splits} times");
    }

    #[test]
    fn a_consumer_keyed_by_result_id_never_loses_a_result_across_splits() {
        let mut consumer = Consumer::default();
        grow_and_shrink(|before, after, n| {
            consumer.write(before, after, |ops| ops);
            let want: BTreeSet<String> = placement(after).into_keys().collect();
            let have: BTreeSet<String> = consumer.rows.keys().cloned().collect();
            assert_eq!(have, want, "after writing {n} objects");
        });
        // The test can fail: writing new reports before the old ones shrink loses results.
        let mut naive = Consumer::default();
        let mut lost = false;
        grow_and_shrink(|before, after, _| {
            naive.write(before, after, |mut ops| {
                ops.reverse();
                ops
            });
            lost |= naive.rows.len() < placement(after).len();
        });
        assert!(
            lost,
            "the consumer model should lose results with the naive order"
        );
    }

    /// What pass results cost at 10k workloads (the figure in the chart's values.yaml):
    /// `cargo test --lib report::tests::pass_results_cost -- --nocapture`.
    #[test]
    fn pass_results_cost() {
        let mut policy = crate::fixtures::policy_with(|_| {});
        policy.name = "hipaa-baseline".into();
        let policies = vec![Arc::new(policy)];
        let cost = |passes: bool| {
            let (mut reports, mut bytes, mut results) = (0usize, 0usize, 0usize);
            // 10,000 workloads in 50 namespaces, one in five with a finding.
            for ns in 0..50 {
                let namespace = format!("clinic-{ns}");
                let objs: Vec<ObjectResults> = (0..200)
                    .map(|i| {
                        let mut findings = Vec::new();
                        if i % 5 == 0 {
                            let mut f = Finding::new(
                                crate::verdict::Reason::NoAuditSidecar,
                                Mode::Enforce,
                                "spec.template.spec.containers",
                                "Deployment records-api-123 runs no approved audit sidecar (fluent-bit, vector, otel-collector)",
                                "add a sidecar",
                            );
                            f.policy = "hipaa-baseline".into();
                            findings.push(f);
                        }
                        let d = Decision::from_findings(true, vec!["hipaa-baseline".into()], findings);
                        let mut o = app(ns * 200 + i, Vec::new());
                        o.name = format!("records-api-{i}");
                        o.results = results_of(&d, &policies, passes)
                            .into_iter()
                            .map(|r| (r, 1_765_000_000))
                            .collect();
                        o
                    })
                    .collect();
                let rendered = namespace_reports(&namespace, &objs, MAX_RESULTS);
                reports += rendered.len();
                results += all_results(&rendered).len();
                bytes += rendered
                    .values()
                    .map(|r| r.to_string().len())
                    .sum::<usize>();
            }
            (reports, results, bytes)
        };
        let (off, on) = (cost(false), cost(true));
        eprintln!(
            "pass results off: {} reports, {} results, {} bytes",
            off.0, off.1, off.2
        );
        eprintln!(
            "pass results on:  {} reports, {} results, {} bytes",
            on.0, on.1, on.2
        );
        assert_eq!(off.1, 2_000);
        assert_eq!(on.1, 40_000, "four requirements per workload");
        assert!(
            on.2 > 15 * off.2,
            "passes multiply the bytes: {} vs {}",
            on.2,
            off.2
        );
    }

    #[test]
    fn a_large_namespace_is_split_stably_and_every_report_stays_small() {
        let many = objects(5_000);
        let reports = namespace_reports("big", &many, MAX_RESULTS);
        assert!(
            reports.len() >= 13,
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
            assert!(r["results"].as_array().unwrap().len() <= MAX_RESULTS);
        }
        assert_eq!(all_results(&reports).len(), 5_000);
        // Removing one object changes only the report that held it.
        let fewer = namespace_reports("big", &many[1..], MAX_RESULTS);
        let changed = reports
            .iter()
            .filter(|(k, v)| fewer.get(*k) != Some(*v))
            .count();
        assert_eq!(changed, 1);
    }
}
