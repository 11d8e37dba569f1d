//! (d) `phi-guard check`'s reader: YAML or JSON text, one or many documents, into objects
//! (read as `-f -` input, judged, and as `--cluster-state`) or an error naming the input and
//! where; never a panic, never a value in an error.
//!
//! Two kinds of input: raw text (any bytes the fuzzer finds), and real manifests from
//! tests/fixtures and examples edited as trees, in which one or more values carry a marker; the
//! marker must never appear in an error (names, kinds and keys may, values may not).
//!
//! The target's body: `fuzz_targets/check_reader.rs` hands it libFuzzer's inputs, and the main
//! crate's `tests/fuzz_replay.rs` replays the committed corpus and regressions through it on
//! stable Rust (`make unit`).

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use phi_guard::fuzz_api;

use crate::common::{self, Edit, Step, Val, J};

const MARKER: &str = "Zq7VALUEqZ";

#[derive(Debug, Arbitrary)]
enum Input {
    Raw(String),
    Edited {
        /// Documents taken from the seed manifests, with edits each.
        docs: Vec<(u8, Vec<Edit>)>,
        /// Values set to a marked string, at paths that are not names.
        marks: Vec<(u8, Vec<Step>, Option<Val>)>,
        style: Style,
    },
}

#[derive(Debug, Arbitrary)]
enum Style {
    /// `---`-separated YAML documents (flow style).
    Yaml,
    /// Concatenated JSON objects.
    Json,
    /// One `kind: List` with the documents as items.
    List,
}

/// Every document of the seed manifests, as JSON trees.
fn seeds() -> &'static [J] {
    static S: OnceLock<Vec<J>> = OnceLock::new();
    S.get_or_init(|| {
        let r = common::repo();
        let mut out = Vec::new();
        for dir in ["tests/fixtures/check", "tests/fixtures/cluster", "examples"] {
            for p in common::files(&r.join(dir), &["yaml", "yml", "json"]) {
                let text = std::fs::read_to_string(&p).unwrap();
                for d in fuzz_api::documents(&text) {
                    out.push(J::parse(d.as_bytes()));
                }
            }
        }
        assert!(out.len() > 20, "only {} seed documents", out.len());
        out
    })
}

/// A key under which a value may be echoed: names (objects, containers, volumes and what
/// refers to them), kinds and versions identify things and are not values.
fn names_something(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with("name") || k == "namespace" || k == "kind" || k == "apiversion"
}

/// Set a marked value at `path` unless the path goes through a name.
fn mark(doc: &mut J, path: &[Step], val: &Option<Val>) {
    let mut keys = Vec::new();
    {
        let mut at: &J = doc;
        for step in path.iter().take(12) {
            match step {
                Step::Key(k) => {
                    let key = k.resolve(at);
                    keys.push(key.clone());
                    match at {
                        J::Obj(v) => match v.iter().rev().find(|(x, _)| *x == key) {
                            Some((_, x)) => at = x,
                            None => break,
                        },
                        _ => break,
                    }
                }
                Step::Index(i) => match at {
                    J::Arr(v) if !v.is_empty() => at = &v[*i as usize % v.len()],
                    _ => break,
                },
            }
        }
    }
    if keys.iter().any(|k| names_something(k)) || path.is_empty() {
        return;
    }
    let marked = match val.as_ref().map(|v| v.build(0)) {
        Some(J::Str(s)) => J::Str(format!("{MARKER}{s}")),
        Some(J::Arr(mut v)) => {
            v.push(J::Str(MARKER.into()));
            J::Arr(v)
        }
        _ => J::Str(MARKER.into()),
    };
    if let Some(at) = common::walk(doc, path, true) {
        *at = marked;
    }
}

/// No marker anywhere but in values: keys the fuzzer wrote may not carry it.
fn scrub_keys(j: &mut J) {
    match j {
        J::Obj(v) => {
            for (k, x) in v {
                if k.contains(MARKER) {
                    *k = k.replace(MARKER, "k");
                }
                scrub_keys(x);
            }
        }
        J::Arr(v) => v.iter_mut().for_each(scrub_keys),
        J::Str(s) if s.contains(MARKER) => *s = s.replace(MARKER, "v"),
        _ => {}
    }
}

fn render(docs: &[J], style: &Style) -> String {
    match style {
        Style::Yaml => docs.iter().map(|d| format!("---\n{}\n", d)).collect(),
        Style::Json => docs.iter().map(|d| d.to_string() + "\n").collect(),
        Style::List => J::Obj(vec![
            ("apiVersion".into(), J::Str("v1".into())),
            ("kind".into(), J::Str("List".into())),
            ("items".into(), J::Arr(docs.to_vec())),
        ])
        .to_string(),
    }
}

/// An error names the input (and for syntax errors the line), unless it is about the whole
/// set: nothing to check, a policy given twice.
fn located(e: &str) {
    assert!(
        e.starts_with("<stdin>")
            || e == "no Kubernetes objects in the given files"
            || (e.starts_with("PhiPolicy ") && e.contains("is defined more than once")),
        "an error that does not say where: {e}"
    );
}

/// One input, as libFuzzer's `fuzz_target!` hands it over: the bytes read as `Input`
/// (`arbitrary_take_rest`); bytes that do not make one are skipped, as libFuzzer does.
pub fn run(data: &[u8]) {
    let Ok(input) =
        <Input as arbitrary::Arbitrary>::arbitrary_take_rest(arbitrary::Unstructured::new(data))
    else {
        return;
    };
    match input {
        Input::Raw(text) => {
            if let Err(e) = fuzz_api::check_text(&text) {
                located(&e);
            }
        }
        Input::Edited { docs, marks, style } => {
            let seeds = seeds();
            let mut trees: Vec<J> = Vec::new();
            for (i, edits) in docs.iter().take(4) {
                let mut d = seeds[*i as usize % seeds.len()].clone();
                for e in edits.iter().take(8) {
                    e.apply(&mut d);
                }
                scrub_keys(&mut d);
                trees.push(d);
            }
            if trees.is_empty() {
                return;
            }
            let n = trees.len();
            for (i, path, val) in marks.iter().take(4) {
                mark(&mut trees[*i as usize % n], path, val);
            }
            let text = render(&trees, &style);
            if let Err(e) = fuzz_api::check_text(&text) {
                located(&e);
                assert!(
                    !e.contains(MARKER),
                    "a value is echoed in an error: {e}\n--- input ---\n{text}"
                );
            }
        }
    }
}
