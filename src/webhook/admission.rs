//! `admission.k8s.io/v1` AdmissionReview on the wire (only the fields phi-guard reads; unknown
//! fields are ignored), and the translation of a [`Decision`] into an AdmissionResponse:
//! deny with every Enforce finding listed, Warn findings as `warnings`, Audit findings as
//! `auditAnnotations`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use super::one_line::{single_line, single_line_owned};
use crate::object::{Kind, Object};
use crate::policy::Mode;
use crate::verdict::{Decision, Finding, RuleId};

/// The only AdmissionReview version served (the API server sends the first version a webhook
/// configuration lists; the chart lists v1 only).
pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// Longest `warnings` entry; the API server truncates longer ones (256 characters).
pub const MAX_WARNING_CHARS: usize = 250;
/// Longest audit annotation value.
pub const MAX_AUDIT_VALUE_CHARS: usize = 500;

/// An incoming AdmissionReview, read in one pass: `request.object` and `request.oldObject` are
/// decoded into [`Object`] views while the envelope is read, when the request's `kind` came
/// first (kube-apiserver always sends it first). Use [`AdmissionReview::parse`].
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

impl<'a> AdmissionReview<'a> {
    /// Read a review. The one-pass read fails as a whole when an object does not decode as its
    /// kind; the review is then read again with the objects kept as raw JSON, so that `judge`
    /// can name what was wrong with them (a slow path only malformed objects take).
    pub fn parse(bytes: &'a [u8]) -> Result<AdmissionReview<'a>, serde_json::Error> {
        // JSON is UTF-8 (RFC 8259), and serde_json checks it only in the strings it keeps: a
        // skipped field could carry invalid bytes past the one-pass read that the raw read then
        // refuses (found by fuzzing). Checked once, up front, for both.
        let text = std::str::from_utf8(bytes).map_err(|e| {
            <serde_json::Error as de::Error>::custom(format_args!(
                "the body is not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ))
        })?;
        serde_json::from_str::<AdmissionReview<'a>>(text).or_else(|_| {
            let raw: RawReview<'a> = serde_json::from_str(text)?;
            Ok(AdmissionReview {
                api_version: raw.api_version,
                kind: raw.kind,
                request: raw.request.map(|r| AdmissionRequest {
                    uid: r.uid,
                    kind: r.kind,
                    sub_resource: r.sub_resource,
                    name: r.name,
                    namespace: r.namespace,
                    operation: r.operation,
                    dry_run: r.dry_run,
                    user: r.user_info.username.unwrap_or_default(),
                    object: r.object.map(ObjectField::Raw),
                    old_object: r.old_object.map(ObjectField::Raw),
                }),
            })
        })
    }
}

/// `request.object` or `request.oldObject`.
#[derive(Debug)]
pub enum ObjectField<'a> {
    /// Decoded in the envelope's pass.
    Decoded(Box<Object>),
    /// Raw JSON text, for kinds phi-guard does not judge, subresources, and objects that came
    /// before the request's `kind` or failed to decode in the first pass.
    Raw(&'a RawValue),
}

/// `request` of an AdmissionReview.
#[derive(Debug)]
pub struct AdmissionRequest<'a> {
    pub uid: String,
    /// The kind of the object (as converted to the version the webhook registered for).
    pub kind: GroupVersionKind,
    pub sub_resource: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub operation: Operation,
    pub dry_run: Option<bool>,
    /// `userInfo.username` of whoever made the request (to recognise Kubernetes' own
    /// controllers; never logged).
    pub user: String,
    pub object: Option<ObjectField<'a>>,
    pub old_object: Option<ObjectField<'a>>,
}

/// `request.userInfo`: only the username is read.
#[derive(Deserialize, Default)]
struct UserInfo {
    #[serde(default)]
    username: Option<String>,
}

/// The review with objects as raw JSON (the fallback read of [`AdmissionReview::parse`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawReview<'a> {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default, borrow)]
    request: Option<RawRequest<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRequest<'a> {
    uid: String,
    kind: GroupVersionKind,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    operation: Operation,
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(default)]
    user_info: UserInfo,
    #[serde(default, borrow)]
    object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    old_object: Option<&'a RawValue>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(field_identifier, rename_all = "camelCase")]
enum RequestField {
    Uid,
    UserInfo,
    Kind,
    SubResource,
    Name,
    Namespace,
    Operation,
    DryRun,
    Object,
    OldObject,
    #[serde(other)]
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for AdmissionRequest<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RequestVisitor(PhantomData))
    }
}

struct RequestVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for RequestVisitor<'a> {
    type Value = AdmissionRequest<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an AdmissionReview request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        fn once<T, E: de::Error>(slot: &mut Option<T>, v: T, name: &'static str) -> Result<(), E> {
            if slot.is_some() {
                return Err(E::duplicate_field(name));
            }
            *slot = Some(v);
            Ok(())
        }
        let mut uid = None;
        let mut kind: Option<GroupVersionKind> = None;
        let mut sub_resource: Option<Option<String>> = None;
        let mut name: Option<Option<String>> = None;
        let mut namespace: Option<Option<String>> = None;
        let mut operation = None;
        let mut dry_run: Option<Option<bool>> = None;
        let mut user_info: Option<UserInfo> = None;
        let mut object: Option<Option<ObjectField<'a>>> = None;
        let mut old_object: Option<Option<ObjectField<'a>>> = None;
        while let Some(key) = map.next_key::<RequestField>()? {
            match key {
                RequestField::Uid => once(&mut uid, map.next_value::<String>()?, "uid")?,
                RequestField::Kind => once(&mut kind, map.next_value()?, "kind")?,
                RequestField::SubResource => {
                    once(&mut sub_resource, map.next_value()?, "subResource")?;
                }
                RequestField::Name => once(&mut name, map.next_value()?, "name")?,
                RequestField::Namespace => once(&mut namespace, map.next_value()?, "namespace")?,
                RequestField::Operation => once(&mut operation, map.next_value()?, "operation")?,
                RequestField::DryRun => once(&mut dry_run, map.next_value()?, "dryRun")?,
                RequestField::UserInfo => once(&mut user_info, map.next_value()?, "userInfo")?,
                RequestField::Object | RequestField::OldObject => {
                    // Decode in this pass when the kind is known and judged, and the request
                    // is not for a subresource (those carry other object types).
                    let judged = kind
                        .as_ref()
                        .and_then(|k| Kind::from_group_kind(&k.group, &k.kind))
                        .filter(|_| {
                            sub_resource
                                .as_ref()
                                .is_none_or(|s| s.as_deref().is_none_or(str::is_empty))
                        });
                    let value = match judged {
                        Some(k) => map
                            .next_value_seed(WorkloadSeed(k))?
                            .map(|w| ObjectField::Decoded(Box::new(w))),
                        None => map
                            .next_value::<Option<&'de RawValue>>()?
                            .map(ObjectField::Raw),
                    };
                    if key == RequestField::Object {
                        once(&mut object, value, "object")?;
                    } else {
                        once(&mut old_object, value, "oldObject")?;
                    }
                }
                RequestField::Other => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        let namespace = namespace.flatten();
        let mut object = object.flatten();
        let mut old_object = old_object.flatten();
        if let Some(ns) = namespace.as_deref() {
            for field in [&mut object, &mut old_object] {
                if let Some(ObjectField::Decoded(w)) = field {
                    w.default_namespace(ns);
                }
            }
        }
        Ok(AdmissionRequest {
            uid: uid.ok_or_else(|| de::Error::missing_field("uid"))?,
            kind: kind.ok_or_else(|| de::Error::missing_field("kind"))?,
            sub_resource: sub_resource.flatten(),
            name: name.flatten(),
            namespace,
            operation: operation.ok_or_else(|| de::Error::missing_field("operation"))?,
            dry_run: dry_run.flatten(),
            user: user_info.unwrap_or_default().username.unwrap_or_default(),
            object,
            old_object,
        })
    }
}

/// Decodes an optional object as a [`Object`] of a known kind.
struct WorkloadSeed(Kind);

impl<'de> DeserializeSeed<'de> for WorkloadSeed {
    type Value = Option<Object>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for WorkloadSeed {
    type Value = Option<Object>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a {} object or null", self.0)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Object::deserialize_as(self.0, None, d).map(Some)
    }
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

/// Longest uid phi-guard answers to: the API server sends UUIDs (36 bytes); a longer one comes
/// from something else and gets a 400, so no request makes phi-guard echo a large string.
pub const MAX_UID_BYTES: usize = 256;
/// Longest denial message sent: ten findings per rule fit many times over; past it the message
/// is cut at a line and says so (names in findings are bounded by Kubernetes, not by phi-guard,
/// when the request does not come from an API server).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Warnings in all: the API server keeps 4,096 characters of a response's warnings and cuts the
/// rest (k8s.io/apiserver, endpoints/filters/warning.go), so more is never read by anyone.
pub const MAX_WARNINGS_BYTES: usize = 4 * 1024;
/// Longest audit annotation value sent.
pub const MAX_ANNOTATION_BYTES: usize = 1024;

/// `s` cut to at most `max` bytes at a char boundary (preferring the last line break), with
/// `tail` appended when cut.
fn cut(s: &mut String, max: usize, tail: &str) {
    if s.len() <= max {
        return;
    }
    let mut at = max.saturating_sub(tail.len());
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    if let Some(nl) = s[..at].rfind('\n') {
        at = nl;
    }
    s.truncate(at);
    s.push_str(tail);
}

impl AdmissionResponse {
    /// The response within the sizes above (the uid is checked by the caller: it cannot be cut).
    pub fn bounded(mut self) -> AdmissionResponse {
        if let Some(st) = self.status.as_mut() {
            cut(
                &mut st.message,
                MAX_MESSAGE_BYTES,
                "\n(message cut at 16 KiB; `phi-guard check` lists every finding)",
            );
        }
        let all: usize = self.warnings.iter().map(String::len).sum();
        if all > MAX_WARNINGS_BYTES {
            // Keep whole warnings, in order, leaving room for the note that says how many went.
            let room = MAX_WARNINGS_BYTES - 160;
            let mut total = 0;
            let kept = self
                .warnings
                .iter()
                .take_while(|w| {
                    total += w.len();
                    total <= room
                })
                .count();
            let dropped = self.warnings.len() - kept;
            self.warnings.truncate(kept);
            self.warnings.push(format!(
                "phi-guard: {dropped} more warning{} cut (the API server keeps 4 KiB of \
                 warnings; `phi-guard check` lists them all)",
                if dropped == 1 { "" } else { "s" }
            ));
        }
        for v in self.audit_annotations.values_mut() {
            cut(v, MAX_ANNOTATION_BYTES, "…");
        }
        self
    }

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
        r.warnings = capped_warnings(d);
        r.audit_annotations = audit_annotations(d);
        r
    }
}

pub use crate::verdict::MAX_FINDINGS_PER_RULE;

/// Keep at most [`MAX_FINDINGS_PER_RULE`] findings of each rule; call `more(rule, n)` once per
/// rule with the number left out.
fn capped<'a>(
    findings: impl Iterator<Item = &'a Finding>,
    mut keep: impl FnMut(&'a Finding),
    mut more: impl FnMut(RuleId, usize),
) {
    let mut counts: BTreeMap<RuleId, usize> = BTreeMap::new();
    for f in findings {
        let n = counts.entry(f.rule).or_default();
        *n += 1;
        if *n <= MAX_FINDINGS_PER_RULE {
            keep(f);
        }
    }
    for (rule, n) in counts {
        if n > MAX_FINDINGS_PER_RULE {
            more(rule, n - MAX_FINDINGS_PER_RULE);
        }
    }
}

fn and_more(rule: RuleId, n: usize) -> String {
    format!(
        "[{}] and {n} more finding{} of this rule (`phi-guard check` lists them all)",
        rule.as_str(),
        if n == 1 { "" } else { "s" }
    )
}

fn capped_warnings(d: &Decision) -> Vec<String> {
    let mut out = Vec::new();
    let mut more = Vec::new();
    capped(
        d.with_mode(Mode::Warn),
        |f| out.push(warning(f)),
        |rule, n| more.push(format!("phi-guard {}", and_more(rule, n))),
    );
    out.extend(more);
    out
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
    let mut more = Vec::new();
    capped(
        enforce.into_iter(),
        |f| {
            m.push('\n');
            write_finding(&mut m, f);
        },
        |rule, n| more.push(and_more(rule, n)),
    );
    for line in more {
        m.push('\n');
        m.push_str(&line);
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
    // `rule/reason`: the reason code is what docs/rules.md lists and what tools match on.
    let _ = write!(m, "[{}/{}]", f.rule.as_str(), f.reason.as_str());
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
    single_line_owned(s, MAX_WARNING_CHARS)
}

/// Audit findings as annotations `<rule>-<n>` (the API server prefixes the webhook name, so
/// keys are plain name segments).
pub fn audit_annotations(d: &Decision) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut kept = Vec::new();
    let mut more = Vec::new();
    // Excepted findings are recorded too: an exception is never silent.
    capped(
        d.findings
            .iter()
            .filter(|f| f.mode == Mode::Audit || f.excepted.is_some()),
        |f| kept.push(f),
        |rule, n| more.push((rule, n)),
    );
    for (rule, n) in more {
        out.insert(
            format!("{}-more", rule.as_str()),
            single_line(&and_more(rule, n), MAX_AUDIT_VALUE_CHARS),
        );
    }
    for f in kept {
        let n = counts.entry(f.rule.as_str()).or_default();
        *n += 1;
        // Policy first so truncation never drops it; no fix (auditors need what, not how).
        let mut v = String::new();
        if !f.policy.is_empty() {
            let _ = write!(v, "policy {}: ", f.policy);
        }
        let _ = write!(v, "[{}/{}]", f.rule.as_str(), f.reason.as_str());
        if !f.path.is_empty() {
            let _ = write!(v, " {}", f.path);
        }
        let _ = write!(v, " ({}): {}", f.citation, f.message.trim_end());
        out.insert(
            format!("{}-{}", f.rule.as_str(), n),
            single_line_owned(v, MAX_AUDIT_VALUE_CHARS),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_stay_within_their_sizes() {
        let mut r = AdmissionResponse::refuse(
            "u",
            Status::failure(403, "Forbidden", "head\n".to_string() + &"é".repeat(20_000)),
        );
        r.warnings = (0..200)
            .map(|i| format!("warning {i}: {}", "w".repeat(90)))
            .collect();
        r.audit_annotations
            .insert("phi-guard.io/findings".into(), "a".repeat(5000));
        let b = r.bounded();
        let msg = &b.status.as_ref().unwrap().message;
        assert!(msg.len() <= MAX_MESSAGE_BYTES, "{}", msg.len());
        assert!(msg.starts_with("head\n"));
        assert!(msg.ends_with("`phi-guard check` lists every finding)"));
        let total: usize = b.warnings.iter().map(String::len).sum();
        assert!(total <= MAX_WARNINGS_BYTES, "{total}");
        assert_eq!(b.warnings[0], format!("warning 0: {}", "w".repeat(90)));
        let note = b.warnings.last().unwrap();
        let kept = b.warnings.len() - 1;
        assert!(
            note.starts_with(&format!("phi-guard: {} more warnings cut", 200 - kept)),
            "{note}"
        );
        assert!(b.audit_annotations["phi-guard.io/findings"].len() <= MAX_ANNOTATION_BYTES + 3);
        // Within the sizes: unchanged.
        let mut small = AdmissionResponse::refuse("u", Status::failure(403, "Forbidden", "m"));
        small.warnings = vec!["a".into(), "b".into()];
        assert_eq!(small.clone().bounded(), small);
    }
    use crate::verdict::RuleId;

    fn finding(rule: RuleId, mode: Mode, path: &str) -> Finding {
        let mut f = Finding::new(
            crate::fixtures::a_reason(rule),
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
        // One line per Enforce finding (rule, path, citation, the finding's message and fix),
        // between the summary and the count of warnings.
        let said = "volume \"data\" is a hostPath volume, which cannot be proven encrypted. \
                    Fix: use a PersistentVolumeClaim on an encrypting StorageClass";
        let lines: Vec<&str> = st.message.lines().collect();
        let at_rest = crate::fixtures::a_reason(RuleId::EncryptionAtRest).as_str();
        let sidecar = crate::fixtures::a_reason(RuleId::AuditSidecar).as_str();
        assert_eq!(
            lines,
            [
                "phi-guard denied Deployment payments/api: 2 HIPAA findings (policy hipaa-baseline):",
                &format!("[encryption-at-rest/{at_rest}] spec.template.spec.volumes[0] (45 CFR 164.312(a)(2)(iv)): {said}"),
                &format!("[audit-sidecar/{sidecar}] spec.template.spec.containers (45 CFR 164.312(b)): {said}"),
                "(and 1 warning)",
            ],
            "{}",
            st.message
        );
        assert_eq!(r.warnings.len(), 1);
        let segmentation = crate::fixtures::a_reason(RuleId::NetworkSegmentation).as_str();
        assert!(r.warnings[0].starts_with(&format!(
            "phi-guard [network-segmentation/{segmentation}] metadata.namespace"
        )));
        assert!(r.warnings[0].chars().count() <= MAX_WARNING_CHARS);
        assert_eq!(
            r.audit_annotations.keys().collect::<Vec<_>>(),
            vec!["encryption-in-transit-1"]
        );
    }

    /// Thousands of findings (one per volume) make a small response: ten per rule and kind,
    /// then one "and N more" line that says where the rest are.
    #[test]
    fn findings_per_rule_are_capped_in_responses() {
        let mut findings = Vec::new();
        for i in 0..2_000 {
            let path = format!("spec.template.spec.volumes[{i}]");
            findings.push(finding(RuleId::EncryptionAtRest, Mode::Enforce, &path));
            findings.push(finding(RuleId::NetworkSegmentation, Mode::Warn, &path));
            findings.push(finding(RuleId::EncryptionInTransit, Mode::Audit, &path));
        }
        findings.push(finding(RuleId::AuditSidecar, Mode::Enforce, "spec"));
        let d = Decision::from_findings(true, vec!["hipaa-baseline".into()], findings);
        let r = AdmissionResponse::from_decision("u1", "Deployment payments/api", &d);
        let msg = r.status.unwrap().message;
        assert!(msg.starts_with("phi-guard denied Deployment payments/api: 2001 HIPAA findings"));
        let at_rest = crate::fixtures::a_reason(RuleId::EncryptionAtRest).as_str();
        assert_eq!(
            msg.matches(&format!("\n[encryption-at-rest/{at_rest}] spec.template"))
                .count(),
            10
        );
        assert!(msg.contains("\n[encryption-at-rest] and 1990 more findings of this rule (`phi-guard check` lists them all)"), "{msg}");
        assert!(msg.contains("\n[audit-sidecar/"));
        assert!(msg.ends_with("(and 2000 warnings)"));
        assert!(msg.len() < 4_000, "{} bytes", msg.len());
        assert_eq!(r.warnings.len(), 11);
        assert_eq!(
            r.warnings[10],
            "phi-guard [network-segmentation] and 1990 more findings of this rule (`phi-guard check` lists them all)"
        );
        assert_eq!(r.audit_annotations.len(), 11);
        assert!(r.audit_annotations["encryption-in-transit-more"].contains("1990 more"));
        assert!(r.audit_annotations.contains_key("encryption-in-transit-10"));
        assert!(!r.audit_annotations.contains_key("encryption-in-transit-11"));
    }

    #[test]
    fn request_ignores_unknown_fields_and_keeps_unjudged_objects_raw() {
        let body = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","extra":1,
          "request":{"uid":"abc","kind":{"group":"example.com","version":"v1","kind":"Widget"},
          "resource":{"group":"example.com","version":"v1","resource":"widgets"},
          "operation":"CREATE","userInfo":{"username":"x"},"object":{"a":[1,2]},"oldObject":null}}"#;
        let r = AdmissionReview::parse(body.as_bytes()).unwrap();
        let req = r.request.unwrap();
        assert_eq!(req.uid, "abc");
        match req.object {
            Some(ObjectField::Raw(raw)) => assert_eq!(raw.get(), r#"{"a":[1,2]}"#),
            other => panic!("expected a raw object, got {other:?}"),
        }
        assert!(req.old_object.is_none());
        assert_eq!(req.operation, Operation::Create);
    }

    fn deployment_review(object: &str, old: &str) -> String {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
              "request":{{"uid":"u1","kind":{{"group":"apps","version":"v1","kind":"Deployment"}},
              "name":"web","namespace":"clinic","operation":"UPDATE","userInfo":{{"username":"x"}},
              "object":{object},"oldObject":{old},"dryRun":false}}}}"#
        )
    }

    fn decoded(field: Option<ObjectField<'_>>) -> Object {
        match field {
            Some(ObjectField::Decoded(w)) => *w,
            other => panic!("expected a decoded object, got {other:?}"),
        }
    }

    #[test]
    fn judged_objects_are_decoded_in_the_envelope_pass_with_the_request_namespace() {
        let obj = r#"{"metadata":{"name":"web","labels":{"a":"b"}},
          "spec":{"template":{"metadata":{"labels":{"app":"web"}},
          "spec":{"containers":[{"name":"app","image":"x"}]}}}}"#;
        let old = r#"{"metadata":{"name":"web","namespace":"other"},"spec":{}}"#;
        let body = deployment_review(obj, old);
        let req = AdmissionReview::parse(body.as_bytes())
            .unwrap()
            .request
            .unwrap();
        assert_eq!(req.dry_run, Some(false));
        let new = decoded(req.object);
        assert_eq!(new.kind, Kind::Deployment);
        // The object named no namespace: it takes the request's, read before it.
        assert_eq!(new.namespace, "clinic");
        assert_eq!(new.labels.get("a").map(String::as_str), Some("b"));
        let pods = new.pods().unwrap();
        assert_eq!(pods.spec_path, "spec.template.spec");
        assert_eq!(pods.spec.containers.len(), 1);
        // An object's own namespace wins.
        assert_eq!(decoded(req.old_object).namespace, "other");
    }

    #[test]
    fn one_pass_read_equals_the_two_pass_read() {
        let obj = r#"{"metadata":{"name":"web","annotations":{"k":"v"}},
          "spec":{"template":{"metadata":{"labels":{"app":"web"}},
          "spec":{"containers":[{"name":"app","image":"x","env":[{"name":"A","value":"s"}]}],
          "volumes":[{"name":"d","persistentVolumeClaim":{"claimName":"c"}}]}}}}"#;
        let body = deployment_review(obj, "null");
        let req = AdmissionReview::parse(body.as_bytes())
            .unwrap()
            .request
            .unwrap();
        let two_pass = Object::from_json(Kind::Deployment, obj, Some("clinic")).unwrap();
        assert_eq!(decoded(req.object), two_pass);
    }

    #[test]
    fn an_object_that_is_not_its_kind_falls_back_to_raw_for_a_precise_error() {
        let body = deployment_review(r#"{"spec":{"template":"nope"}}"#, "null");
        let req = AdmissionReview::parse(body.as_bytes())
            .unwrap()
            .request
            .unwrap();
        match req.object {
            Some(ObjectField::Raw(raw)) => assert!(raw.get().contains("nope")),
            other => panic!("expected the raw fallback, got {other:?}"),
        }
        assert_eq!(req.uid, "u1");
    }

    #[test]
    fn an_object_before_the_kind_stays_raw_and_subresources_are_not_decoded() {
        let body = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
          "request":{"object":{"metadata":{"name":"p"}},"uid":"u","operation":"CREATE",
          "kind":{"group":"","version":"v1","kind":"Pod"}}}"#;
        let req = AdmissionReview::parse(body.as_bytes())
            .unwrap()
            .request
            .unwrap();
        assert!(matches!(req.object, Some(ObjectField::Raw(_))));
        let body = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
          "request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},
          "subResource":"status","operation":"UPDATE","object":{"status":{}}}}"#;
        let req = AdmissionReview::parse(body.as_bytes())
            .unwrap()
            .request
            .unwrap();
        assert!(matches!(req.object, Some(ObjectField::Raw(_))));
        assert_eq!(req.sub_resource.as_deref(), Some("status"));
    }

    /// Every AdmissionReview fixture: what the one-pass read decoded equals what decoding the
    /// raw object on its own gives (the two-pass read the fallback path uses).
    #[test]
    fn one_pass_equals_two_pass_on_every_fixture() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admission");
        let mut decoded = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let Ok(review) = AdmissionReview::parse(&bytes) else {
                continue;
            };
            let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let req = review.request.unwrap();
            let kind = Kind::from_group_kind(&req.kind.group, &req.kind.kind);
            for (field, got) in [("object", &req.object), ("oldObject", &req.old_object)] {
                let raw = &value["request"][field];
                match got {
                    Some(ObjectField::Decoded(w)) => {
                        let want = Object::from_value(kind.unwrap(), raw, req.namespace.as_deref())
                            .unwrap();
                        assert_eq!(**w, want, "{} {field}", path.display());
                        decoded += 1;
                    }
                    Some(ObjectField::Raw(r)) => {
                        // Raw only when phi-guard does not judge the kind, or the object does
                        // not decode as its kind.
                        let judged = kind.and_then(|k| {
                            Object::from_json(k, r.get(), req.namespace.as_deref()).ok()
                        });
                        assert!(judged.is_none(), "{} {field} left raw", path.display());
                    }
                    None => assert!(raw.is_null(), "{} {field} lost", path.display()),
                }
            }
        }
        assert!(
            decoded >= 10,
            "only {decoded} objects decoded from {}",
            dir.display()
        );
    }

    /// Found by fuzzing (fuzz/regressions/admission_structured): a Service whose
    /// `metadata.namespace` is "" took the request's namespace in the one-pass read, but kept ""
    /// in its ServiceInfo in the two-pass read (and so was traced to no pods).
    #[test]
    fn an_empty_object_namespace_is_the_requests_in_both_reads() {
        let obj = r#"{"metadata":{"name":"api","namespace":""},"spec":{"selector":{"app":"api"}}}"#;
        let body = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
              "request":{{"uid":"u1","kind":{{"group":"","version":"v1","kind":"Service"}},
              "namespace":"clinic","operation":"CREATE","object":{obj}}}}}"#
        );
        let req = AdmissionReview::parse(body.as_bytes())
            .unwrap()
            .request
            .unwrap();
        let one = decoded(req.object);
        let two = Object::from_json(Kind::Service, obj, Some("clinic")).unwrap();
        assert_eq!(one, two);
        match &two.body {
            crate::object::Body::Service(s) => assert_eq!(s.namespace, "clinic"),
            other => panic!("expected a Service, got {other:?}"),
        }
    }

    /// Found by fuzzing (fuzz/regressions/admission_bytes): invalid UTF-8 inside a field the
    /// one-pass read skips passed it, while the raw read refused the same body.
    #[test]
    fn a_body_that_is_not_utf8_is_refused_by_both_reads() {
        let body = deployment_review(
            r#"{"metadata":{"name":"web","labels":{"phiguard.io/data-classification":"phi"}},
                "note":"n@te"}"#,
            "null",
        );
        let valid = AdmissionReview::parse(body.as_bytes()).unwrap();
        assert!(matches!(
            valid.request.unwrap().object,
            Some(ObjectField::Decoded(_))
        ));
        let bytes: Vec<u8> = body
            .bytes()
            .map(|b| if b == b'@' { 0xff } else { b })
            .collect();
        let e = AdmissionReview::parse(&bytes).unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
    }

    #[test]
    fn duplicate_and_missing_request_fields_are_errors() {
        let dup = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
          "request":{"uid":"u","uid":"v","kind":{"kind":"Pod"},"operation":"CREATE"}}"#;
        let e = AdmissionReview::parse(dup.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("duplicate field `uid`"), "{e}");
        let dup = deployment_review("null", "null").replace(r#""dryRun":false"#, r#""object":{}"#);
        let e = AdmissionReview::parse(dup.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("duplicate field `object`"), "{e}");
        let missing = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
          "request":{"uid":"u","kind":{"kind":"Pod"}}}"#;
        let e = AdmissionReview::parse(missing.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("missing field `operation`"), "{e}");
        assert!(AdmissionReview::parse(b"[1]").is_err());
    }
}
