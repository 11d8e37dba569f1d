//! `admission.k8s.io/v1` AdmissionReview on the wire (only the fields phi-guard reads; unknown
//! fields are ignored), and the translation of a [`Decision`] into an AdmissionResponse:
//! deny with every Enforce finding listed, Warn findings as `warnings`, Audit findings as
//! `auditAnnotations`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::engine::{Decision, Finding};
use crate::policy::Mode;

/// The only AdmissionReview version served (the API server sends the first version a webhook
/// configuration lists; the chart lists v1 only).
pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// Longest `warnings` entry; the API server truncates longer ones (256 characters).
pub const MAX_WARNING_CHARS: usize = 250;
/// Longest audit annotation value.
pub const MAX_AUDIT_VALUE_CHARS: usize = 500;

/// An incoming AdmissionReview. Objects stay raw JSON text, decoded once by the workload view.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview<'a> {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default, borrow)]
    pub request: Option<AdmissionRequest<'a>>,
}

/// `request` of an AdmissionReview.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest<'a> {
    pub uid: String,
    /// The kind of the object (as converted to the version the webhook registered for).
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: Operation,
    #[serde(default)]
    pub dry_run: Option<bool>,
    #[serde(default, borrow)]
    pub object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub old_object: Option<&'a RawValue>,
}

impl AdmissionRequest<'_> {
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
    pub fn dry_run(&self) -> bool {
        self.dry_run.unwrap_or(false)
    }
}

/// `request.kind`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

/// `request.operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// Just enough of a review to answer one that failed to decode with its own uid.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LenientReview {
    #[serde(default)]
    pub api_version: Option<serde_json::Value>,
    #[serde(default)]
    pub kind: Option<serde_json::Value>,
    #[serde(default)]
    pub request: Option<LenientRequest>,
}

/// See [`LenientReview`].
#[derive(Debug, Deserialize)]
pub struct LenientRequest {
    #[serde(default)]
    pub uid: Option<serde_json::Value>,
}

/// The outgoing AdmissionReview.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: AdmissionResponse,
}

/// `response` of an AdmissionReview.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
}

/// metav1.Status as an AdmissionResponse carries it; kubectl prints `message`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub status: String,
    pub code: u16,
    pub reason: String,
    pub message: String,
}

impl Status {
    pub fn failure(code: u16, reason: &str, message: impl Into<String>) -> Status {
        Status {
            status: "Failure".into(),
            code,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

impl ReviewResponse {
    pub fn new(response: AdmissionResponse) -> ReviewResponse {
        ReviewResponse {
            api_version: API_VERSION,
            kind: KIND,
            response,
        }
    }
}

impl AdmissionResponse {
    /// Admit.
    pub fn allow(uid: &str) -> AdmissionResponse {
        AdmissionResponse {
            uid: uid.to_string(),
            allowed: true,
            ..Default::default()
        }
    }

    /// Refuse with a status (decode failures, not ready, policy denials).
    pub fn refuse(uid: &str, status: Status) -> AdmissionResponse {
        AdmissionResponse {
            uid: uid.to_string(),
            allowed: false,
            status: Some(status),
            ..Default::default()
        }
    }

    /// The response for a decision on `object` (e.g. `Deployment payments/api`).
    pub fn from_decision(uid: &str, object: &str, d: &Decision) -> AdmissionResponse {
        let mut r = AdmissionResponse::allow(uid);
        r.allowed = d.allowed;
        if !d.allowed {
            r.status = Some(Status::failure(403, "Forbidden", deny_message(object, d)));
        }
        r.warnings = d.with_mode(Mode::Warn).map(warning).collect();
        r.audit_annotations = audit_annotations(d);
        r
    }
}

/// The denial message: a header naming the object, then one line per Enforce finding.
pub fn deny_message(object: &str, d: &Decision) -> String {
    let enforce: Vec<&Finding> = d.with_mode(Mode::Enforce).collect();
    let n = enforce.len();
    let mut policies: Vec<&str> = enforce.iter().map(|f| f.policy.as_str()).collect();
    policies.sort_unstable();
    policies.dedup();
    let mut m = format!(
        "phi-guard denied {object}: {n} HIPAA finding{} (policy {}):",
        if n == 1 { "" } else { "s" },
        policies.join(", ")
    );
    for f in enforce {
        m.push('\n');
        write_finding(&mut m, f);
    }
    let warn = d.with_mode(Mode::Warn).count();
    if warn > 0 {
        let _ = write!(
            m,
            "\n(and {warn} warning{})",
            if warn == 1 { "" } else { "s" }
        );
    }
    m
}

fn write_finding(m: &mut String, f: &Finding) {
    let _ = write!(m, "[{}]", f.rule.as_str());
    if !f.path.is_empty() {
        let _ = write!(m, " {}", f.path);
    }
    let _ = write!(m, " ({}): {}", f.citation, f.message.trim_end());
    if !f.remediation.is_empty() {
        if !m.ends_with(['.', '!', '?']) {
            m.push('.');
        }
        let _ = write!(m, " Fix: {}", f.remediation.trim_end());
    }
}

/// One `warnings` entry: single line, under the API server's per-warning limit.
pub fn warning(f: &Finding) -> String {
    let mut s = String::from("phi-guard ");
    write_finding(&mut s, f);
    single_line(&s, MAX_WARNING_CHARS)
}

/// Audit findings as annotations `<rule>-<n>` (the API server prefixes the webhook name, so
/// keys are plain name segments).
pub fn audit_annotations(d: &Decision) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for f in d.with_mode(Mode::Audit) {
        let n = counts.entry(f.rule.as_str()).or_default();
        *n += 1;
        // Policy first so truncation never drops it; no fix (auditors need what, not how).
        let mut v = String::new();
        if !f.policy.is_empty() {
            let _ = write!(v, "policy {}: ", f.policy);
        }
        let _ = write!(v, "[{}]", f.rule.as_str());
        if !f.path.is_empty() {
            let _ = write!(v, " {}", f.path);
        }
        let _ = write!(v, " ({}): {}", f.citation, f.message.trim_end());
        out.insert(
            format!("{}-{}", f.rule.as_str(), n),
            single_line(&v, MAX_AUDIT_VALUE_CHARS),
        );
    }
    out
}

/// Collapse control characters and cut to at most `max` characters (on a char boundary).
pub fn single_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    let mut count = 0;
    let mut chars = s.chars().map(|c| if c.is_control() { ' ' } else { c });
    while let Some(c) = chars.next() {
        if count + 1 == max && chars.clone().next().is_some() {
            out.push('…');
            break;
        }
        out.push(c);
        count += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RuleId;

    fn finding(rule: RuleId, mode: Mode, path: &str) -> Finding {
        let mut f = Finding::new(
            rule,
            mode,
            path,
            "volume \"data\" is a hostPath volume, which cannot be proven encrypted",
            "use a PersistentVolumeClaim on an encrypting StorageClass",
        );
        f.policy = "hipaa-baseline".into();
        f
    }

    #[test]
    fn deny_lists_every_enforce_finding() {
        let d = Decision::from_findings(
            true,
            vec!["hipaa-baseline".into()],
            vec![
                finding(
                    RuleId::EncryptionAtRest,
                    Mode::Enforce,
                    "spec.template.spec.volumes[0]",
                ),
                finding(
                    RuleId::AuditSidecar,
                    Mode::Enforce,
                    "spec.template.spec.containers",
                ),
                finding(
                    RuleId::NetworkSegmentation,
                    Mode::Warn,
                    "metadata.namespace",
                ),
                finding(
                    RuleId::EncryptionInTransit,
                    Mode::Audit,
                    "spec.template.metadata",
                ),
            ],
        );
        let r = AdmissionResponse::from_decision("u1", "Deployment payments/api", &d);
        assert!(!r.allowed);
        let st = r.status.unwrap();
        assert_eq!(st.code, 403);
        assert!(st.message.starts_with(
            "phi-guard denied Deployment payments/api: 2 HIPAA findings (policy hipaa-baseline):\n[encryption-at-rest] spec.template.spec.volumes[0] (45 CFR 164.312(a)(2)(iv)): volume"
        ), "{}", st.message);
        assert!(st.message.contains(". Fix: use a PersistentVolumeClaim"));
        assert!(st
            .message
            .contains("\n[audit-sidecar] spec.template.spec.containers (45 CFR 164.312(b))"));
        assert!(st.message.ends_with("(and 1 warning)"));
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].starts_with("phi-guard [network-segmentation] metadata.namespace"));
        assert!(r.warnings[0].chars().count() <= MAX_WARNING_CHARS);
        assert_eq!(
            r.audit_annotations.keys().collect::<Vec<_>>(),
            vec!["encryption-in-transit-1"]
        );
    }

    #[test]
    fn single_line_cuts_on_char_boundaries() {
        assert_eq!(single_line("a\nb", 10), "a b");
        let long = "é".repeat(300);
        let cut = single_line(&long, 250);
        assert_eq!(cut.chars().count(), 250);
        assert!(cut.ends_with('…'));
        assert_eq!(single_line(&"x".repeat(250), 250).chars().count(), 250);
    }

    #[test]
    fn request_ignores_unknown_fields_and_borrows_objects() {
        let body = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","extra":1,
          "request":{"uid":"abc","kind":{"group":"apps","version":"v1","kind":"Deployment"},
          "resource":{"group":"apps","version":"v1","resource":"deployments"},
          "operation":"CREATE","userInfo":{"username":"x"},"object":{"a":[1,2]},"oldObject":null}}"#;
        let r: AdmissionReview = serde_json::from_str(body).unwrap();
        let req = r.request.unwrap();
        assert_eq!(req.uid, "abc");
        assert_eq!(req.object.unwrap().get(), r#"{"a":[1,2]}"#);
        assert!(req.old_object.is_none());
        assert_eq!(req.operation, Operation::Create);
    }
}
