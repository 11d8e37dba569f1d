//! NetworkPolicies for PHI pods that none selects: a new file per namespace with a default deny
//! and, per workload, an allow rule from the same app's pods, written as a starting point and
//! commented as one. Existing policies are never changed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::edit::scalar;
use super::{value_at, NewFile, Target};
use crate::cluster::files::Step;

/// Pods to isolate: whose, and the labels that select them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Isolate {
    namespace: String,
    kind: String,
    name: String,
    labels: BTreeMap<String, String>,
}

/// Kinds whose `spec.selector.matchLabels` names their pods.
const SELECTING: [&str; 4] = ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"];

impl Isolate {
    /// The pods of `t` whose labels are at `labels` (the finding's path); `None` without labels.
    pub(crate) fn new(t: &Target<'_>, labels: &[Step]) -> Option<Isolate> {
        let selector = SELECTING
            .contains(&t.kind)
            .then(|| t.value.pointer("/spec/selector/matchLabels"))
            .flatten();
        let map = selector
            .or_else(|| value_at(t.value, labels))?
            .as_object()?;
        let labels: BTreeMap<String, String> = map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        (!labels.is_empty()).then(|| Isolate {
            namespace: t.namespace.to_string(),
            kind: t.kind.to_string(),
            name: t.name.to_string(),
            labels,
        })
    }
}

/// A namespace's new file: its directory, the findings it fixes, the pods it isolates.
type Wanted = (String, Vec<(usize, usize)>, Vec<Isolate>);

/// The new files: one per namespace, beside the first file that asked for it.
pub(crate) fn files(
    wanted: Vec<((usize, usize), String, Isolate)>,
    notes: &mut Vec<String>,
) -> Vec<NewFile> {
    let mut by_ns: BTreeMap<String, Wanted> = BTreeMap::new();
    for (id, file, i) in wanted {
        let dir = Path::new(&file)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let slot = by_ns
            .entry(i.namespace.clone())
            .or_insert_with(|| (dir, Vec::new(), Vec::new()));
        slot.1.push(id);
        if !slot.2.contains(&i) {
            slot.2.push(i);
        }
    }
    let mut out = Vec::new();
    for (ns, (dir, ids, pods)) in by_ns {
        let name = format!("phi-guard-network-policies-{ns}.yaml");
        let path = if dir.is_empty() {
            name
        } else {
            Path::new(&dir).join(name).to_string_lossy().into_owned()
        };
        for p in &pods {
            notes.push(format!(
                "{} {}/{}: NetworkPolicies written to {path} (a default deny and an allow from the same app: review before applying)",
                p.kind, p.namespace, p.name
            ));
        }
        out.push(NewFile {
            content: content(&ns, &pods),
            path,
            ids,
        });
    }
    out
}

/// The file: a default deny for the namespace, then one allow rule per workload.
fn content(ns: &str, pods: &[Isolate]) -> String {
    let ns_q = scalar(ns);
    let mut out = format!(
        "# Written by `phi-guard fix` as a starting point: review it before applying.\n\
         # Default deny for every pod in namespace {ns}, both directions: nothing reaches or\n\
         # leaves a pod until a NetworkPolicy allows it. Pods that resolve names need an egress\n\
         # rule to DNS (port 53, UDP and TCP, to kube-dns) and to what they call.\n\
         apiVersion: networking.k8s.io/v1\n\
         kind: NetworkPolicy\n\
         metadata:\n  name: phi-guard-default-deny\n  namespace: {ns_q}\n\
         spec:\n  podSelector: {{}}\n  policyTypes: [Ingress, Egress]\n"
    );
    for p in pods {
        let labels: String = p.labels.iter().fold(String::new(), |mut s, (k, v)| {
            let _ = write!(s, "\n      {}: {}", scalar(k), scalar(v));
            s
        });
        let from: String = labels.replace("\n      ", "\n              ");
        let _ = write!(
            out,
            "---\n\
             # {kind} {name}: only its own pods may call it. Add the callers that need access\n\
             # (podSelector, namespaceSelector) and the ports they use; never `from: [{{}}]`.\n\
             apiVersion: networking.k8s.io/v1\n\
             kind: NetworkPolicy\n\
             metadata:\n  name: {np}\n  namespace: {ns_q}\n\
             spec:\n  podSelector:\n    matchLabels:{labels}\n  policyTypes: [Ingress]\n  ingress:\n\
             \x20   - from:\n        - podSelector:\n            matchLabels:{from}\n",
            kind = p.kind,
            name = p.name,
            np = scalar(&format!("{}-allow-same-app", p.name)),
        );
    }
    out
}
