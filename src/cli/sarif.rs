//! `check -o sarif`: the report as SARIF 2.1.0, as GitHub code scanning and other SARIF viewers
//! read it. One run; one rule per [`RuleId`]; one result per finding, located at the file, line
//! and column of the offending field, so the viewer annotates the manifest itself. Only field
//! paths, object names and rule texts go out, as in every other output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{json, Value};

use super::results::{ObjectResult, Report, SkipReason};
use crate::cluster::files::{FileLocator, Position, SourceRef};
use crate::fix::edit::Edit;
use crate::fix::Plan;
use crate::verdict::RuleId;

/// Where the rules are explained (the README's sections).
const HOME: &str = "https://github.com/phi-guard/phi-guard";

/// What the text of a standard-input source is (`None`: it was not kept).
pub(crate) type StdinText<'a> = Option<&'a str>;

/// The name standard input gets in SARIF (`<stdin>` in the other outputs).
const STDIN_URI: &str = "stdin";

/// The whole SARIF log.
pub(crate) fn render(report: &Report, stdin: StdinText<'_>, plan: &Plan) -> Value {
    let rules: Vec<Value> = RuleId::ALL.iter().map(|r| descriptor(*r)).collect();
    let positions = locate_findings(&report.results, stdin);
    let fixes = fixes(plan);
    let mut results = Vec::new();
    for (i, r) in report.results.iter().enumerate() {
        let file = file_of(&r.source);
        for (j, f) in r.findings.iter().enumerate() {
            let at = positions
                .get(&(i, j))
                .copied()
                .unwrap_or(Position { line: 1, column: 1 });
            let rule_index = RuleId::ALL.iter().position(|id| id.as_str() == f.rule);
            let level = match f.mode {
                "Enforce" => "error",
                "Warn" => "warning",
                _ => "note",
            };
            let object = object_name(r);
            let mut result = json!({
                "ruleId": f.rule,
                "ruleIndex": rule_index,
                "level": level,
                "message": {
                    "text": format!(
                        "{object}: {}: {} Fix: {} ({}, {})",
                        f.path, f.message, f.remediation, f.citation, f.mode
                    ),
                },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": artifact_uri(file) },
                        "region": { "startLine": at.line, "startColumn": at.column },
                    },
                    "logicalLocations": [{
                        "name": r.name,
                        "fullyQualifiedName": object,
                        "kind": "resource",
                    }],
                }],
                "partialFingerprints": {
                    "phiGuardFinding/v1": fingerprint(&[&r.kind, &r.namespace, &r.name, f.rule, &f.path]),
                },
                "properties": {
                    "reason": f.reason,
                    "path": f.path,
                    "mode": f.mode,
                    "citation": f.citation,
                    "kind": r.kind,
                    "namespace": r.namespace,
                    "name": r.name,
                    "source": r.source,
                },
            });
            if let (Some(f), Some(obj)) = (fixes.get(&(i, j)), result.as_object_mut()) {
                obj.insert("fixes".into(), Value::Array(f.clone()));
            }
            results.push(result);
        }
    }
    // Objects and files without a verdict: execution notes, so nothing is dropped silently.
    let notes: Vec<Value> = report
        .skipped
        .iter()
        .filter(|s| s.reason != SkipReason::ClusterState)
        .map(|s| {
            let what = match (s.kind.is_empty(), s.namespace.is_empty()) {
                (true, _) => s.source.clone(),
                (false, true) => format!("{} {}", s.kind, s.name),
                (false, false) => format!("{} {}/{}", s.kind, s.namespace, s.name),
            };
            json!({
                "level": "note",
                "message": { "text": format!("skipped {what}: {}", s.message) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": artifact_uri(file_of(&s.source)) },
                    },
                }],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "phi-guard",
                    "version": env!("CARGO_PKG_VERSION"),
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "informationUri": HOME,
                    "rules": rules,
                },
            },
            "columnKind": "unicodeCodePoints",
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": notes,
            }],
            "results": results,
        }],
    })
}

/// The SARIF `fixes` of each finding `fix` can write (SARIF 2.1.0 section 3.55: an
/// `artifactChange` per file, `replacements` with a `deletedRegion` in bytes and the
/// `insertedContent`); a new file is an insertion at its byte 0.
fn fixes(plan: &Plan) -> BTreeMap<(usize, usize), Vec<Value>> {
    let mut out: BTreeMap<(usize, usize), Vec<Value>> = BTreeMap::new();
    let change = |file: &str, edits: &[Edit]| {
        let replacements: Vec<Value> = edits
            .iter()
            .map(|e| {
                json!({
                    "deletedRegion": {
                        "byteOffset": e.start,
                        "byteLength": e.end.saturating_sub(e.start),
                    },
                    "insertedContent": { "text": e.text },
                })
            })
            .collect();
        json!({
            "artifactLocation": { "uri": artifact_uri(file) },
            "replacements": replacements,
        })
    };
    for f in &plan.fixes {
        out.entry(f.id).or_default().push(json!({
            "description": { "text": f.description },
            "artifactChanges": [change(&f.file, &f.edits)],
        }));
    }
    for n in &plan.new_files {
        let insert = [Edit {
            start: 0,
            end: 0,
            text: n.content.clone(),
        }];
        for id in &n.ids {
            out.entry(*id).or_default().push(json!({
                "description": { "text": format!("create {} with a default deny and an allow rule from the same app (a starting point: review it)", n.path) },
                "artifactChanges": [change(&n.path, &insert)],
            }));
        }
    }
    out
}

/// The reporting descriptor of a rule.
fn descriptor(rule: RuleId) -> Value {
    let m = rule.meta();
    let (name, short, full, anchor, severity) = (
        m.name,
        m.title,
        m.description,
        m.doc_anchor,
        m.security_severity,
    );
    let help = format!("{full} HIPAA Security Rule: {}.", rule.citation());
    json!({
        "id": rule.as_str(),
        "name": name,
        "shortDescription": { "text": short },
        "fullDescription": { "text": full },
        "help": { "text": help, "markdown": help },
        "helpUri": format!("{HOME}#{anchor}"),
        "defaultConfiguration": { "level": "error" },
        "properties": {
            "tags": ["security", "hipaa", "kubernetes"],
            "security-severity": severity,
            "precision": "high",
            "hipaa-citation": rule.citation(),
        },
    })
}

/// `Kind namespace/name` (or `Kind name` for cluster-scoped objects).
fn object_name(r: &ObjectResult) -> String {
    if r.namespace.is_empty() {
        format!("{} {}", r.kind, r.name)
    } else {
        format!("{} {}/{}", r.kind, r.namespace, r.name)
    }
}

/// The file part of a `file#document` source.
pub(crate) fn file_of(source: &str) -> &str {
    SourceRef::parse(source).map_or(source, |s| s.file)
}

/// The position of every finding, keyed by (result, finding): files are read again one at a
/// time, parsing only the documents that have findings.
fn locate_findings(
    results: &[ObjectResult],
    stdin: StdinText<'_>,
) -> BTreeMap<(usize, usize), Position> {
    let mut by_file: BTreeMap<&str, Vec<(usize, SourceRef<'_>)>> = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        if r.findings.is_empty() {
            continue;
        }
        if let Some(s) = SourceRef::parse(&r.source) {
            by_file.entry(s.file).or_default().push((i, s));
        }
    }
    let mut out = BTreeMap::new();
    for (file, objects) in by_file {
        let text = if file == "<stdin>" {
            stdin.map(str::to_string)
        } else {
            std::fs::read_to_string(file).ok()
        };
        let Some(text) = text else { continue };
        let wanted: BTreeSet<usize> = objects.iter().map(|(_, s)| s.document).collect();
        let locator = FileLocator::new(&text, &wanted);
        for (i, s) in objects {
            for (j, f) in results[i].findings.iter().enumerate() {
                out.insert((i, j), locator.locate(&s, &f.path));
            }
        }
    }
    out
}

/// The file as a relative URI reference where it can be (relative to the current directory),
/// percent-encoded; standard input as `stdin`.
pub(crate) fn artifact_uri(file: &str) -> String {
    if file == "<stdin>" {
        return STDIN_URI.to_string();
    }
    let path = Path::new(file);
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf());
    let text = relative.to_string_lossy();
    let text = text.strip_prefix("./").unwrap_or(&text);
    let mut uri = String::with_capacity(text.len());
    if path.is_absolute() && !relative.is_relative() {
        uri.push_str("file://");
    }
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                uri.push(b as char)
            }
            _ => uri.push_str(&format!("%{b:02X}")),
        }
    }
    uri
}

/// A stable fingerprint (FNV-1a, 64 bits) of a finding's identity, so a viewer matches a finding
/// across runs when lines move.
fn fingerprint(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_relative_and_encoded() {
        assert_eq!(artifact_uri("<stdin>"), "stdin");
        assert_eq!(artifact_uri("./a/b c.yaml"), "a/b%20c.yaml");
        let cwd = std::env::current_dir().unwrap();
        let inside = cwd.join("x").join("y.yaml");
        assert_eq!(artifact_uri(&inside.display().to_string()), "x/y.yaml");
        assert_eq!(
            artifact_uri("/nowhere/#1.yaml"),
            "file:///nowhere/%231.yaml"
        );
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        assert_eq!(fingerprint(&["a", "b"]), fingerprint(&["a", "b"]));
        assert_ne!(fingerprint(&["ab", ""]), fingerprint(&["a", "b"]));
    }

    #[test]
    fn every_rule_has_a_descriptor() {
        for r in RuleId::ALL {
            let d = descriptor(r);
            assert_eq!(d["id"], r.as_str());
            assert_eq!(d["properties"]["hipaa-citation"], r.citation());
        }
    }
}
