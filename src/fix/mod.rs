//! `phi-guard fix`: the findings whose fix is mechanical, written into the user's files as text
//! edits that keep comments, key order and formatting (never a document serialized again).
//! Pure: it takes the files' text, the objects with their findings, the policies and the
//! cluster state, and returns a [`Plan`]: edits per file (byte ranges at the positions `check -o
//! sarif` locates), new files (NetworkPolicies) and notes on what stays a finding and why. The
//! CLI (`cli/fix.rs`) prints the plan as a unified diff or writes it; `check -o sarif` carries
//! the edits of each finding as SARIF `fixes`.
//!
//! Mechanical: an encrypting `storageClassName`, the approved audit sidecar with its log volume,
//! in-transit evidence in the form the policy accepts, a default-deny and same-app NetworkPolicy
//! in a new file, and the removal of mesh-bypass annotations and `ssl-redirect: "false"`.
//! Everything else (hostNetwork, an allow-all rule someone wrote, a plaintext protocol, inline
//! volume types ...) is a judgement and stays a finding.

mod actions;
pub(crate) mod edit;
mod network;
pub(crate) mod tree;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::cluster::files::{steps, Step};
use crate::policy::Policy;
use crate::view::ClusterView;
pub(crate) use actions::TransitForm;
use edit::{Edit, Patch, Style};
use tree::Node;

/// Choices the user makes on the command line.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// The audit sidecar's image (must be approved by the policies); default: the first
    /// approved image the policies name without a wildcard.
    pub(crate) sidecar_image: Option<String>,
    /// The form of in-transit evidence to add; default: the first the policy accepts.
    pub(crate) transit: Option<TransitForm>,
    /// `Kind/name` of the cert-manager issuer for a csi.cert-manager.io volume.
    pub(crate) tls_issuer: Option<String>,
}

/// What fix reads: the policies in force, the cluster state, the user's choices.
pub(crate) struct Context<'a> {
    pub policies: &'a [Arc<Policy>],
    pub cluster: &'a dyn ClusterView,
    pub options: &'a Options,
}

/// A judged object with its findings, where it is in its file.
pub(crate) struct Target<'a> {
    pub file: &'a str,
    pub document: usize,
    /// Item indices (from 1) through nested `kind: List` documents.
    pub items: &'a [usize],
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// The object as read.
    pub value: &'a Value,
    pub findings: Vec<FindingRef<'a>>,
}

/// A finding by rule, reason code and path; `id` is the caller's (report indices for SARIF).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FindingRef<'a> {
    pub id: (usize, usize),
    pub rule: &'a str,
    /// The reason code (`verdict::Reason::as_str`): which shortfall, whatever the wording.
    pub reason: &'a str,
    pub path: &'a str,
}

/// The edits of one finding's fix (for SARIF `fixes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fix {
    pub id: (usize, usize),
    pub file: String,
    pub description: String,
    pub edits: Vec<Edit>,
}

/// A file `fix` creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewFile {
    pub path: String,
    pub content: String,
    /// The findings it fixes.
    pub ids: Vec<(usize, usize)>,
}

/// Everything `fix` would do.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Every edit of a file, merged, by file.
    pub files: BTreeMap<String, Vec<Edit>>,
    /// Each fixable finding's own edits.
    pub fixes: Vec<Fix>,
    pub new_files: Vec<NewFile>,
    /// What was changed and chosen, and what stays a finding and why.
    pub notes: Vec<String>,
}

/// One finding's fix before it becomes text.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Lay a patch over the object (from its root).
    Patch { patch: Patch, what: String },
    /// Delete the entry `key` of the mapping at `map`.
    Delete {
        map: Vec<Step>,
        key: String,
        what: String,
    },
    /// A NetworkPolicy selecting these pods, in a new file.
    Isolate(network::Isolate),
    /// Not changed: why.
    Keep(String),
}

/// Plan the fixes of `targets`; `texts` are the files' contents by name.
pub(crate) fn plan(
    texts: &BTreeMap<String, String>,
    targets: &[Target<'_>],
    ctx: &Context<'_>,
) -> Plan {
    let mut plan = Plan::default();
    let mut isolate = Vec::new();
    let mut trees: BTreeMap<&str, Vec<(usize, Node)>> = BTreeMap::new();
    for t in targets {
        let Some(text) = texts.get(t.file) else {
            continue;
        };
        let object = format!("{} {}/{}", t.kind, t.namespace, t.name);
        if text.trim_start().starts_with(['{', '[']) {
            plan.notes
                .push(format!("{object}: JSON files are not edited ({})", t.file));
            continue;
        }
        let docs = trees.entry(t.file).or_insert_with(|| tree::documents(text));
        let Some(root) = object_node(docs, t) else {
            plan.notes
                .push(format!("{object}: not found in {} as read", t.file));
            continue;
        };
        let style = Style::of(text, root);
        let mut merged: Option<Patch> = None;
        let mut deletes: Vec<(Vec<Step>, String)> = Vec::new();
        for f in &t.findings {
            let action = actions::action(t, f, ctx);
            match action {
                Action::Keep(why) => plan
                    .notes
                    .push(format!("{object}: {} {}: {why}", f.rule, f.path)),
                Action::Isolate(i) => isolate.push((f.id, t.file.to_string(), i)),
                Action::Patch { patch, what } => {
                    let mut edits = Vec::new();
                    match edit::lay(text, root, &patch, style, &mut edits) {
                        Ok(()) if edits.is_empty() => {}
                        Ok(()) => {
                            plan.notes.push(format!("{object}: {what}"));
                            plan.fixes.push(fix(f, t.file, &what, edits));
                            match &mut merged {
                                Some(m) => m.merge(patch),
                                None => merged = Some(patch),
                            }
                        }
                        Err(why) => plan.notes.push(format!(
                            "{object}: {} {}: not changed: {why}",
                            f.rule, f.path
                        )),
                    }
                }
                Action::Delete { map, key, what } => match delete(text, root, &map, &key) {
                    Ok(e) => {
                        plan.notes.push(format!("{object}: {what}"));
                        plan.fixes.push(fix(f, t.file, &what, vec![e]));
                        deletes.push((map, key));
                    }
                    Err(why) => plan.notes.push(format!(
                        "{object}: {} {}: not changed: {why}",
                        f.rule, f.path
                    )),
                },
            }
        }
        let mut edits = Vec::new();
        if let Some(m) = merged {
            if let Err(why) = edit::lay(text, root, &m, style, &mut edits) {
                plan.notes.push(format!("{object}: not changed: {why}"));
                edits.clear();
            }
        }
        edits.extend(deletions(text, root, &deletes));
        let all = plan.files.entry(t.file.to_string()).or_default();
        let mut candidate = all.clone();
        candidate.extend(edits);
        if edit::apply(text, &candidate).is_some() {
            *all = candidate;
        } else {
            plan.notes
                .push(format!("{object}: its fixes overlap; not changed"));
        }
    }
    plan.files.retain(|_, e| !e.is_empty());
    plan.new_files = network::files(isolate, &mut plan.notes);
    plan
}

fn fix(f: &FindingRef<'_>, file: &str, what: &str, edits: Vec<Edit>) -> Fix {
    Fix {
        id: f.id,
        file: file.to_string(),
        description: what.to_string(),
        edits,
    }
}

/// The object's node: its document, then its `items` through `kind: List` documents.
fn object_node<'n>(docs: &'n [(usize, Node)], t: &Target<'_>) -> Option<&'n Node> {
    let mut node = &docs.iter().find(|(i, _)| *i == t.document)?.1;
    for i in t.items {
        node = node.get("items")?.item(i.checked_sub(1)?)?;
    }
    Some(node)
}

/// The node at `path` under `node`.
pub(crate) fn node_at<'n>(node: &'n Node, path: &[Step]) -> Option<&'n Node> {
    path.iter().try_fold(node, |n, s| match s {
        Step::Key(k) => n.get(k),
        Step::Index(i) => n.item(*i),
    })
}

/// The value at `path` under `value`.
pub(crate) fn value_at<'v>(value: &'v Value, path: &[Step]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, s| match s {
        Step::Key(k) => v.get(k.as_str()),
        Step::Index(i) => v.get(*i),
    })
}

/// `patch` under `path` (keys and item indices).
pub(crate) fn patch_at(path: &[Step], patch: Patch) -> Patch {
    path.iter().rev().fold(patch, |p, s| match s {
        Step::Key(k) => Patch::Map(vec![(k.clone(), p)]),
        Step::Index(i) => Patch::items(vec![(*i, p)]),
    })
}

/// A finding's path as steps.
pub(crate) fn path_steps(path: &str) -> Vec<Step> {
    steps(path)
}

/// The edit deleting one entry alone (for its SARIF fix); a mapping left empty is deleted with
/// its key.
fn delete(text: &str, root: &Node, map: &[Step], key: &str) -> Result<Edit, String> {
    let node = node_at(root, map).ok_or("not there")?;
    if node.entries().len() == 1 {
        if let Some((Step::Key(parent_key), parent)) = map.split_last() {
            if let Some(parent) = node_at(root, parent) {
                return edit::delete_entry(text, parent, parent_key);
            }
        }
    }
    edit::delete_entry(text, node, key)
}

/// The edits of all deletions of an object: a mapping whose every entry goes is deleted with
/// its key.
fn deletions(text: &str, root: &Node, deletes: &[(Vec<Step>, String)]) -> Vec<Edit> {
    let mut by_map: BTreeMap<String, (&[Step], Vec<&str>)> = BTreeMap::new();
    for (map, key) in deletes {
        let slot = by_map
            .entry(format!("{map:?}"))
            .or_insert((map.as_slice(), Vec::new()));
        if !slot.1.contains(&key.as_str()) {
            slot.1.push(key);
        }
    }
    let mut out = Vec::new();
    for (map, keys) in by_map.into_values() {
        let Some(node) = node_at(root, map) else {
            continue;
        };
        if keys.len() >= node.entries().len() {
            if let Some((Step::Key(parent_key), parent)) = map.split_last() {
                if let Some(e) =
                    node_at(root, parent).and_then(|p| edit::delete_entry(text, p, parent_key).ok())
                {
                    out.push(e);
                    continue;
                }
            }
        }
        out.extend(
            keys.iter()
                .filter_map(|k| edit::delete_entry(text, node, k).ok()),
        );
    }
    out
}
