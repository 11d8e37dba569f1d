//! What judging documents produces, for `check` and `report` and for the renderers (`sarif`,
//! `junit`): the verdict per object, what was not judged and why, and why nothing could be
//! judged. Plain data, so the renderers and the judging need not import `check`.

use std::sync::Arc;

use serde::Serialize;

use crate::cluster::files::{self, FileError};
use crate::object::Object;
use crate::verdict::Decision;

/// Why `check` could not judge the inputs (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{source_ref}: {message}")]
    Input { source_ref: String, message: String },
    #[error("{source_ref}: invalid policy: {message}")]
    InvalidPolicy { source_ref: String, message: String },
    #[error("PhiPolicy {name:?} is defined more than once ({first} and {second})")]
    DuplicatePolicy {
        name: String,
        first: String,
        second: String,
    },
    #[error("{}: the namespace from the provided object {namespace:?} does not match the namespace {flag:?}. You must pass '--namespace={namespace}' to perform this operation.", files::object_ref(source_ref, kind, name))]
    NamespaceMismatch {
        source_ref: String,
        kind: String,
        name: String,
        namespace: String,
        flag: String,
    },
    #[error("no Kubernetes objects in the given files")]
    NothingToCheck,
}

/// The verdicts on every checkable object, in input order, and what was not judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub results: Vec<ObjectResult>,
    /// Every input object without a verdict and every file skipped, with why.
    pub skipped: Vec<Skipped>,
    /// What the verdicts assumed of cluster state the inputs did not give (e.g. ingress-nginx's
    /// controller ConfigMap at its defaults).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assumed: Vec<String>,
    /// Standard input as read, kept for `-o sarif` to locate findings in it.
    #[serde(skip)]
    pub stdin: Option<String>,
}

/// Why an input has no verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// Read as cluster state (Namespaces, NetworkPolicies, StorageClasses, ...) or a PhiPolicy.
    ClusterState,
    /// A kind phi-guard does not judge.
    KindNotJudged,
    /// A file (or document) that is not a Kubernetes manifest, found walking a directory.
    FileSkipped,
}

/// An input without a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub kind: String,
    pub api_version: String,
    pub namespace: String,
    pub name: String,
    /// `file#document`, or the file.
    pub source: String,
    pub reason: SkipReason,
    pub message: String,
}

/// The verdict on one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectResult {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Some policy considers the object PHI.
    pub phi: bool,
    /// The webhook would admit it (no Enforce finding).
    pub allowed: bool,
    pub findings: Vec<FindingResult>,
    /// `file#document` the object came from (text output only).
    #[serde(skip)]
    pub source: String,
}

/// One finding, as `check` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingResult {
    pub rule: &'static str,
    /// The finding's stable reason code (`verdict::Reason`), added after `rule`: consumers of
    /// the JSON output that ignore unknown fields read it unchanged.
    pub reason: &'static str,
    pub citation: &'static str,
    pub path: String,
    /// Shared between findings that say the same (a report of 20,000 objects repeats a few
    /// hundred distinct messages and fixes: tens of megabytes held once each).
    pub message: Arc<str>,
    pub remediation: Arc<str>,
    pub mode: &'static str,
    /// Waived by a PhiException (the message says until when): for the evidence report.
    #[serde(skip)]
    pub excepted: bool,
}

impl Report {
    /// True when every object would be admitted.
    pub fn all_allowed(&self) -> bool {
        self.results.iter().all(|r| r.allowed)
    }
}

/// One copy of each distinct text of a report.
#[derive(Default)]
pub(crate) struct Interner(std::collections::HashSet<Arc<str>>);

impl Interner {
    pub(crate) fn get(&mut self, text: &str) -> Arc<str> {
        if let Some(t) = self.0.get(text) {
            return t.clone();
        }
        let t: Arc<str> = Arc::from(text);
        self.0.insert(t.clone());
        t
    }
}

pub(crate) fn object_result(
    w: &Object,
    d: &Decision,
    source: &str,
    texts: &mut Interner,
) -> ObjectResult {
    ObjectResult {
        kind: w.kind.as_str().to_string(),
        namespace: w.namespace.clone(),
        name: w.name.clone(),
        phi: d.phi,
        allowed: d.allowed,
        findings: d
            .findings
            .iter()
            .map(|f| FindingResult {
                rule: f.rule.as_str(),
                reason: f.reason.as_str(),
                citation: f.citation,
                path: f.path.clone(),
                message: texts.get(&f.message),
                remediation: texts.get(&f.remediation),
                mode: f.mode.as_str(),
                excepted: f.excepted.is_some(),
            })
            .collect(),
        source: source.to_string(),
    }
}
