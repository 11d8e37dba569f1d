//! (b) The webhook's `POST /validate` on structure-aware mutations of real AdmissionReviews
//! (tests/fixtures/admission): edits of the JSON tree that keep it JSON (and so reach the
//! decoders and `judge` instead of stopping at a syntax error), with key order and duplicate
//! keys under the fuzzer's control, checked with the invariants of `crate::common::check_review`.
//!
//! The target's body: `fuzz_targets/admission_structured.rs` hands it libFuzzer's inputs, and the main
//! crate's `tests/fuzz_replay.rs` replays the committed corpus and regressions through it on
//! stable Rust (`make unit`).

use std::sync::OnceLock;

use arbitrary::Arbitrary;

use crate::common::{self, Edit, Val, J};

/// Request kinds: the judged ones, one not judged, PhiException.
const KINDS: &[(&str, &str)] = &[
    ("", "Pod"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
    ("", "ReplicationController"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("", "PersistentVolumeClaim"),
    ("", "Service"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("", "Namespace"),
    ("", "ConfigMap"),
    ("phiguard.io", "PhiException"),
];
const OPERATIONS: &[&str] = &["CREATE", "UPDATE", "DELETE", "CONNECT", "create", ""];

#[derive(Debug, Arbitrary)]
enum Op {
    /// An edit anywhere in the review.
    Edit(Edit),
    /// An edit inside `request.object` (or `oldObject`).
    Object(bool, Edit),
    /// `request.kind` set to one of KINDS.
    Kind(u8),
    Operation(u8),
    SubResource(Option<String>),
    /// `request.object` copied to `oldObject` (an UPDATE that changes nothing) or swapped.
    CopyToOld,
    Swap,
    /// The object marked PHI (the default label, on the object and its pod template).
    Phi(bool),
    /// A field of `request` moved before `kind` (the one-pass decoder's order dependence).
    FirstInRequest(u8),
    Uid(Val),
}

#[derive(Debug, Arbitrary)]
struct Input {
    seed: u8,
    ops: Vec<Op>,
}

fn seeds() -> &'static [J] {
    static S: OnceLock<Vec<J>> = OnceLock::new();
    S.get_or_init(|| {
        let dir = common::repo().join("tests/fixtures/admission");
        common::files(&dir, &["json"])
            .iter()
            .map(|p| J::parse(&std::fs::read(p).unwrap()))
            .collect()
    })
}

fn request(root: &mut J) -> &mut J {
    root.entry("request")
}

fn apply(root: &mut J, op: &Op) {
    match op {
        Op::Edit(e) => e.apply(root),
        Op::Object(old, e) => {
            e.apply(request(root).entry(if *old { "oldObject" } else { "object" }))
        }
        Op::Kind(i) => {
            let (g, k) = KINDS[*i as usize % KINDS.len()];
            let kind = request(root).entry("kind");
            *kind.entry("group") = J::Str(g.into());
            *kind.entry("kind") = J::Str(k.into());
        }
        Op::Operation(i) => {
            *request(root).entry("operation") =
                J::Str(OPERATIONS[*i as usize % OPERATIONS.len()].into())
        }
        Op::SubResource(s) => match s {
            Some(s) => *request(root).entry("subResource") = J::Str(s.clone()),
            None => {
                if let J::Obj(v) = request(root) {
                    v.retain(|(k, _)| k != "subResource");
                }
            }
        },
        Op::CopyToOld => {
            let r = request(root);
            let o = r.entry("object").clone();
            *r.entry("oldObject") = o;
        }
        Op::Swap => {
            let r = request(root);
            let o = r.entry("object").clone();
            let old = std::mem::replace(r.entry("oldObject"), o);
            *r.entry("object") = old;
        }
        Op::Phi(template) => {
            let o = request(root).entry("object");
            let at = if *template {
                o.entry("spec").entry("template")
            } else {
                o
            };
            *at.entry("metadata")
                .entry("labels")
                .entry("phiguard.io/data-classification") = J::Str("phi".into());
        }
        Op::FirstInRequest(i) => {
            if let J::Obj(v) = request(root) {
                if !v.is_empty() {
                    let n = v.len();
                    let e = v.remove(*i as usize % n);
                    v.insert(0, e);
                }
            }
        }
        Op::Uid(v) => *request(root).entry("uid") = v.build(0),
    }
}

/// One input, as libFuzzer's `fuzz_target!` hands it over: the bytes read as `Input`
/// (`arbitrary_take_rest`); bytes that do not make one are skipped, as libFuzzer does.
pub fn run(data: &[u8]) {
    let Ok(input) =
        <Input as arbitrary::Arbitrary>::arbitrary_take_rest(arbitrary::Unstructured::new(data))
    else {
        return;
    };
    let seeds = seeds();
    let mut review = seeds[input.seed as usize % seeds.len()].clone();
    for op in input.ops.iter().take(16) {
        apply(&mut review, op);
    }
    crate::common::check_review(review.to_string().as_bytes());
}
