//! Exceptions that expire: the `PhiException` resource, its validation, and its effect on a
//! decision. A separate, cluster-scoped object that only the security team may write (the
//! chart's RBAC), never a label on the workload: a developer can label their own Deployment,
//! and a label neither expires nor names who approved it or why.
//!
//! An excepted finding is not enforced but never silent: it stays in the decision, downgraded
//! from Enforce to Warn, its message starting `excepted until DATE (ticket X, PhiException N)`;
//! the webhook also writes it as an audit annotation and the reports mark it `skip`. At
//! `expiresAt` it stops applying, because every decision compares with the time it is made.
//! Pure: the time comes in as an argument.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::object::Object;
use crate::selector::Selector;
use crate::verdict::{Decision, Mode, RuleId};

/// PhiExceptionSpec: which findings of which objects are waived, until when, and why.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "phiguard.io",
    version = "v1alpha1",
    kind = "PhiException",
    plural = "phiexceptions",
    singular = "phiexception",
    shortname = "phix",
    category = "phiguard",
    doc = "PhiException: a time-limited, ticketed waiver of named phi-guard findings for named objects. Only the security team should be allowed to write these (see the chart's RBAC).",
    printcolumn = r#"{"name":"Ticket","type":"string","jsonPath":".spec.ticket"}"#,
    printcolumn = r#"{"name":"Expires","type":"string","format":"date-time","jsonPath":".spec.expiresAt"}"#,
    printcolumn = r#"{"name":"Approved By","type":"string","jsonPath":".spec.approvedBy"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PhiExceptionSpec {
    /// The objects whose findings are waived.
    #[serde(rename = "match")]
    pub matches: ExceptionMatch,
    /// The rules (and optionally one field path within a rule) waived. At least one.
    #[schemars(length(min = 1))]
    pub rules: Vec<ExceptedRule>,
    /// When the exception stops applying (RFC 3339, e.g. `2027-03-01T00:00:00Z`). Required; it
    /// must be in the future when written and no further ahead than the shortest
    /// `maxExceptionDays` of the PhiPolicies in force.
    pub expires_at: String,
    /// The ticket that approved it (e.g. `SEC-1234`). Required; shown in every warning.
    #[schemars(length(min = 1))]
    pub ticket: String,
    /// Why the finding is acceptable for now (the compensating control, the plan). Required.
    #[schemars(length(min = 1))]
    pub justification: String,
    /// Who approved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

/// Which objects an exception covers: in these namespaces, of these kinds, with these names
/// or matching this selector (at least one of names or selector).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionMatch {
    /// Namespaces of the objects. At least one.
    #[schemars(length(min = 1))]
    pub namespaces: Vec<String>,
    /// Kinds (`Deployment`, `StatefulSet`, `Pod`, `PersistentVolumeClaim`, `Service`,
    /// `Ingress` ...). Empty: every judged kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Object names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Labels of the objects (their own or their pod template's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// A waived rule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExceptedRule {
    /// `encryption-at-rest`, `encryption-in-transit`, `network-segmentation` or `audit-sidecar`.
    pub rule: RuleId,
    /// Only findings at this field path or below (e.g. `spec.template.spec.volumes[1]`): one
    /// check within the rule. Empty: every finding of the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A validated exception.
#[derive(Debug, Clone, PartialEq)]
pub struct Exception {
    pub name: String,
    pub namespaces: BTreeSet<String>,
    pub kinds: BTreeSet<String>,
    pub names: BTreeSet<String>,
    pub selector: Option<Selector>,
    pub rules: Vec<(RuleId, Option<String>)>,
    /// Unix seconds.
    pub expires_at: i64,
    /// As written, for messages.
    pub expires_text: String,
    pub ticket: String,
    pub approved_by: Option<String>,
}

/// Read an exception, naming the field that is wrong.
pub fn parse(x: &PhiException) -> Result<Exception, String> {
    let s = &x.spec;
    let name = x.metadata.name.clone().unwrap_or_default();
    if s.ticket.trim().is_empty() {
        return Err("spec.ticket: required (the ticket that approved the exception)".into());
    }
    if s.justification.trim().is_empty() {
        return Err("spec.justification: required (why the finding is acceptable for now)".into());
    }
    let expires: Timestamp = s.expires_at.parse().map_err(|_| {
        "spec.expiresAt: not an RFC 3339 time (e.g. 2027-03-01T00:00:00Z)".to_string()
    })?;
    if s.matches.namespaces.is_empty() {
        return Err("spec.match.namespaces: at least one namespace is required".into());
    }
    if s.matches.names.is_empty() && s.matches.selector.is_none() {
        return Err(
            "spec.match: name the objects (names) or select them (selector); an exception for \
             every object of a namespace is not accepted"
                .into(),
        );
    }
    if s.rules.is_empty() {
        return Err("spec.rules: at least one rule is required".into());
    }
    if let Some(r) = s.rules.iter().find(|r| r.rule == RuleId::PhiClassification) {
        return Err(format!(
            "spec.rules: {} cannot be excepted (it guards the classification itself)",
            r.rule.as_str()
        ));
    }
    let selector = match &s.matches.selector {
        Some(sel) => Some(Selector::try_from(sel).map_err(|e| format!("spec.match.selector.{e}"))?),
        None => None,
    };
    Ok(Exception {
        name,
        namespaces: s.matches.namespaces.iter().cloned().collect(),
        kinds: s.matches.kinds.iter().cloned().collect(),
        names: s.matches.names.iter().cloned().collect(),
        selector,
        rules: s.rules.iter().map(|r| (r.rule, r.path.clone())).collect(),
        expires_at: expires.as_second(),
        expires_text: expires.to_string(),
        ticket: s.ticket.trim().to_string(),
        approved_by: s.approved_by.clone(),
    })
}

/// Check an exception being written: well formed, expiring in the future, and no further
/// ahead than `max_days`.
pub fn validate_new(x: &PhiException, now: i64, max_days: u32) -> Result<Exception, String> {
    let e = parse(x)?;
    if e.expires_at <= now {
        return Err(format!(
            "spec.expiresAt: {} is not in the future; an expired exception waives nothing",
            e.expires_text
        ));
    }
    let max = i64::from(max_days) * 86_400;
    if e.expires_at - now > max {
        return Err(format!(
            "spec.expiresAt: {} is more than {max_days} days ahead, the longest exception the \
             PhiPolicies in force allow (maxExceptionDays); renew it instead",
            e.expires_text
        ));
    }
    Ok(e)
}

impl Exception {
    /// Does this exception, at `now`, waive a finding of `rule` at `path` of `o`?
    fn covers(&self, o: &Object, rule: RuleId, path: &str, now: i64) -> bool {
        now < self.expires_at
            && self.namespaces.contains(&o.namespace)
            && (self.kinds.is_empty() || self.kinds.contains(o.kind.as_str()))
            && (self.names.contains(&o.name)
                || self
                    .selector
                    .as_ref()
                    .is_some_and(|s| o.label_sets().iter().any(|l| s.matches(l))))
            && self
                .rules
                .iter()
                .any(|(r, p)| *r == rule && p.as_deref().is_none_or(|p| path.starts_with(p)))
    }

    /// What every excepted finding says.
    pub fn note(&self) -> String {
        crate::verdict::notes::excepted_until(&self.expires_text, &self.ticket, &self.name)
    }
}

/// Apply the exceptions in force at `now` to a decision about `o`.
pub fn apply(d: Decision, o: &Object, exceptions: &[Arc<Exception>], now: i64) -> Decision {
    apply_with_owners(d, o, &[], exceptions, now)
}

/// A finding's path as it lies in an owner's template: `spec.containers[0]` of a Pod is
/// `spec.template.spec.containers[0]` of its ReplicaSet.
fn path_in(owner: &Object, child: &Object, path: &str) -> String {
    let (Some(c), Some(o)) = (child.pods(), owner.pods()) else {
        return path.to_string();
    };
    for (from, to) in [(c.spec_path, o.spec_path), (c.meta_path, o.meta_path)] {
        if let Some(rest) = path.strip_prefix(from) {
            if rest.is_empty() || rest.starts_with('.') || rest.starts_with('[') {
                return format!("{to}{rest}");
            }
        }
    }
    path.to_string()
}

/// Apply the exceptions to a decision about `o`, a child made by the verified `owners`
/// (`engine::owners`): an exception naming an owner covers what its template gave the child,
/// so a waiver on a Deployment gets it ReplicaSets and Pods.
pub fn apply_with_owners(
    d: Decision,
    o: &Object,
    owners: &[Object],
    exceptions: &[Arc<Exception>],
    now: i64,
) -> Decision {
    if exceptions.is_empty() || d.findings.is_empty() {
        return d;
    }
    let mut findings = d.findings;
    let mut any = false;
    for f in &mut findings {
        if f.rule == RuleId::PhiClassification {
            continue;
        }
        let Some(e) = exceptions.iter().find(|e| {
            e.covers(o, f.rule, &f.path, now)
                || owners
                    .iter()
                    .any(|w| e.covers(w, f.rule, &path_in(w, o, &f.path), now))
        }) else {
            continue;
        };
        any = true;
        let note = e.note();
        f.message = format!("{note}: {}", f.message);
        f.excepted = Some(note);
        if f.mode == Mode::Enforce {
            f.mode = Mode::Warn;
        }
    }
    if !any {
        return Decision { findings, ..d };
    }
    Decision::from_findings(d.phi, d.policies, findings)
}

/// The first time after `now` at which an exception stops applying.
pub fn next_expiry(exceptions: &[Arc<Exception>], now: i64) -> Option<i64> {
    exceptions
        .iter()
        .map(|e| e.expires_at)
        .filter(|t| *t > now)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use crate::verdict::Finding;
    use serde_json::json;

    fn exception(v: serde_json::Value) -> PhiException {
        serde_json::from_value(json!({
            "apiVersion": "phiguard.io/v1alpha1", "kind": "PhiException",
            "metadata": {"name": "legacy-db"}, "spec": v}))
        .expect("exception")
    }

    fn spec(expires: &str) -> serde_json::Value {
        json!({
            "match": {"namespaces": ["db"], "kinds": ["Deployment"], "names": ["api"]},
            "rules": [{"rule": "audit-sidecar"}],
            "expiresAt": expires, "ticket": "SEC-42", "justification": "sidecar rollout in Q1",
        })
    }

    const NOW: i64 = 1_800_000_000; // 2027-01-15T08:00:00Z

    #[test]
    fn an_exception_is_refused_naming_the_field() {
        let future = "2027-02-01T00:00:00Z";
        assert!(validate_new(&exception(spec(future)), NOW, 90).is_ok());
        let mut no_ticket = spec(future);
        no_ticket["ticket"] = json!(" ");
        let e = validate_new(&exception(no_ticket), NOW, 90).unwrap_err();
        assert!(e.starts_with("spec.ticket"), "{e}");
        let e = validate_new(&exception(spec("2026-01-01T00:00:00Z")), NOW, 90).unwrap_err();
        assert!(
            e.starts_with("spec.expiresAt") && e.contains("not in the future"),
            "{e}"
        );
        let e = validate_new(&exception(spec("2027-12-01T00:00:00Z")), NOW, 90).unwrap_err();
        assert!(e.contains("more than 90 days"), "{e}");
        let e = validate_new(&exception(spec("next week")), NOW, 90).unwrap_err();
        assert!(e.starts_with("spec.expiresAt"), "{e}");
        let mut blanket = spec(future);
        blanket["match"] = json!({"namespaces": ["db"]});
        assert!(validate_new(&exception(blanket), NOW, 90)
            .unwrap_err()
            .starts_with("spec.match"));
    }

    #[test]
    fn excepted_findings_are_warned_with_the_ticket_until_they_expire() {
        let w = deployment("db", json!({}), json!({}), app_spec());
        let mut f = Finding::new(
            crate::verdict::Reason::NoAuditSidecar,
            Mode::Enforce,
            "spec.template.spec.containers",
            "no audit sidecar",
            "add one",
        );
        f.policy = "p".into();
        let mut g = Finding::new(
            crate::verdict::Reason::NodeDiskVolume,
            Mode::Enforce,
            "spec.template.spec.volumes[0]",
            "hostPath",
            "use a PVC",
        );
        g.policy = "p".into();
        let d = Decision::from_findings(true, vec!["p".into()], vec![f, g]);
        assert!(!d.allowed);
        let e = Arc::new(parse(&exception(spec("2027-02-01T00:00:00Z"))).expect("valid"));
        let before = apply(d.clone(), &w, std::slice::from_ref(&e), NOW);
        assert!(!before.allowed, "encryption-at-rest is not excepted");
        let sidecar = before
            .findings
            .iter()
            .find(|f| f.rule == RuleId::AuditSidecar)
            .expect("kept, never silent");
        assert_eq!(sidecar.mode, Mode::Warn);
        assert!(
            sidecar
                .message
                .starts_with("excepted until 2027-02-01T00:00:00Z (ticket SEC-42"),
            "{}",
            sidecar.message
        );
        assert!(sidecar.excepted.is_some());
        // At expiry it stops applying, no restart involved.
        let after = apply(d.clone(), &w, std::slice::from_ref(&e), e.expires_at);
        assert!(after
            .findings
            .iter()
            .all(|f| f.mode == Mode::Enforce && f.excepted.is_none()));
        // Another object, another namespace or a path outside the excepted one: not covered.
        let other = deployment("web", json!({}), json!({}), app_spec());
        assert!(apply(d.clone(), &other, std::slice::from_ref(&e), NOW)
            .findings
            .iter()
            .all(|f| f.excepted.is_none()));
        let mut narrow = spec("2027-02-01T00:00:00Z");
        narrow["rules"] =
            json!([{"rule": "audit-sidecar", "path": "spec.template.spec.initContainers"}]);
        let narrow = Arc::new(parse(&exception(narrow)).expect("valid"));
        assert!(apply(d, &w, &[narrow], NOW)
            .findings
            .iter()
            .all(|f| f.excepted.is_none()));
        assert_eq!(
            next_expiry(std::slice::from_ref(&e), NOW),
            Some(e.expires_at)
        );
        assert_eq!(next_expiry(std::slice::from_ref(&e), e.expires_at), None);
    }
}
