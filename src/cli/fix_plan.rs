//! The plan of edits for a judged report, shared by `phi-guard fix` (fix.rs) and
//! `check -o sarif`'s `fixes` (check.rs): a leaf both import, so neither imports the other.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::judging::Judged;
use super::results::{CheckError, Report};
use crate::cluster::files::{self, FileError, SourceRef};
use crate::fix::{self, FindingRef, Options, Plan, Target};

pub(crate) fn read(path: &str) -> Result<String, CheckError> {
    std::fs::read_to_string(path).map_err(|source| {
        FileError::Io {
            path: path.into(),
            source,
        }
        .into()
    })
}

/// The plan for `check -o sarif` (default choices); a file that cannot be read again gives no
/// fixes, never a failed run.
pub(crate) fn plan_for_report(files_given: &[PathBuf], max_file_mib: u64, judged: &Judged) -> Plan {
    let max_bytes = max_file_mib.saturating_mul(files::MIB);
    let paths: Vec<PathBuf> = files_given
        .iter()
        .filter(|f| f.as_os_str() != "-")
        .cloned()
        .collect();
    let Ok(docs) = files::read_documents(&paths, max_bytes) else {
        return Plan::default();
    };
    let values: BTreeMap<&str, &serde_json::Value> =
        docs.iter().map(|d| (d.source.as_str(), &d.value)).collect();
    plan(&judged.report, &values, judged, &Options::default()).unwrap_or_default()
}

/// The plan for a judged report: the findings of every object read from a file.
pub(crate) fn plan(
    report: &Report,
    values: &BTreeMap<&str, &serde_json::Value>,
    judged: &Judged,
    options: &Options,
) -> Result<Plan, CheckError> {
    let sources: Vec<Option<SourceRef<'_>>> = report
        .results
        .iter()
        .map(|r| SourceRef::parse(&r.source))
        .collect();
    let mut texts = BTreeMap::new();
    let mut targets = Vec::new();
    for (i, (r, s)) in report.results.iter().zip(&sources).enumerate() {
        let (Some(s), Some(value)) = (s, values.get(r.source.as_str())) else {
            continue;
        };
        if s.file == "<stdin>" {
            continue;
        }
        if r.findings.is_empty() {
            continue;
        }
        if !texts.contains_key(s.file) {
            texts.insert(s.file.to_string(), read(s.file)?);
        }
        targets.push(Target {
            file: s.file,
            document: s.document,
            items: &s.items,
            kind: &r.kind,
            namespace: &r.namespace,
            name: &r.name,
            value,
            findings: r
                .findings
                .iter()
                .enumerate()
                .map(|(j, f)| FindingRef {
                    id: (i, j),
                    rule: f.rule,
                    reason: f.reason,
                    path: &f.path,
                })
                .collect(),
        });
    }
    let ctx = fix::Context {
        policies: &judged.policies,
        cluster: &judged.state,
        options,
    };
    Ok(fix::plan(&texts, &targets, &ctx))
}
