//! `check -o junit`: the report as JUnit XML, the format CI systems (GitLab merge request test
//! reports, Jenkins, Azure Pipelines) render. One `<testsuite>` per input file (as Checkov
//! groups by file), one `<testcase>` per object: `classname` is `Kind/namespace`, `name` the
//! object's name. An object the webhook would deny has a `<failure>` whose message counts the
//! Enforce findings and whose text lists every finding (rule, reason code, path, citation,
//! message, fix); Warn and
//! Audit findings of an admitted object go to `<system-out>`. Objects without a verdict (read as
//! cluster state, kinds not judged) and skipped files are `<skipped/>` test cases.

use std::fmt::Write as _;

use super::results::{FindingResult, ObjectResult, Report, SkipReason, Skipped};
use super::sarif::file_of;
use crate::report::markup::{escape, escape_text};

/// One test case, before it is written.
struct Case<'a> {
    classname: String,
    name: String,
    file: &'a str,
    outcome: JudgedOrSkipped<'a>,
}

enum JudgedOrSkipped<'a> {
    Judged(&'a ObjectResult),
    Skipped(&'a Skipped),
}

/// The whole JUnit XML document.
pub(crate) fn render(report: &Report) -> String {
    // Files in the order they were read; cases in input order within each.
    let mut suites: Vec<(&str, Vec<Case<'_>>)> = Vec::new();
    for r in &report.results {
        push(
            &mut suites,
            Case {
                classname: classname(&r.kind, &r.namespace),
                name: r.name.clone(),
                file: file_of(&r.source),
                outcome: JudgedOrSkipped::Judged(r),
            },
        );
    }
    for s in &report.skipped {
        let (classname, name) = match s.reason {
            SkipReason::FileSkipped => ("file".to_string(), s.source.clone()),
            _ => (classname(&s.kind, &s.namespace), s.name.clone()),
        };
        push(
            &mut suites,
            Case {
                classname,
                name,
                file: file_of(&s.source),
                outcome: JudgedOrSkipped::Skipped(s),
            },
        );
    }

    let count = |cases: &[Case<'_>]| {
        let failures = cases
            .iter()
            .filter(|c| matches!(c.outcome, JudgedOrSkipped::Judged(r) if !r.allowed))
            .count();
        let skipped = cases
            .iter()
            .filter(|c| matches!(c.outcome, JudgedOrSkipped::Skipped(_)))
            .count();
        (cases.len(), failures, skipped)
    };
    let (mut tests, mut failures, mut skipped) = (0, 0, 0);
    for (_, cases) in &suites {
        let (t, f, s) = count(cases);
        tests += t;
        failures += f;
        skipped += s;
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"phi-guard check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"0\">"
    );
    for (file, cases) in &suites {
        let (t, f, s) = count(cases);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{t}\" failures=\"{f}\" errors=\"0\" skipped=\"{s}\" time=\"0\" file=\"{}\">",
            escape(file),
            escape(file)
        );
        for c in cases {
            write_case(&mut out, c);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn push<'a>(suites: &mut Vec<(&'a str, Vec<Case<'a>>)>, case: Case<'a>) {
    match suites.iter_mut().find(|(f, _)| *f == case.file) {
        Some((_, cases)) => cases.push(case),
        None => suites.push((case.file, vec![case])),
    }
}

fn classname(kind: &str, namespace: &str) -> String {
    if namespace.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}/{namespace}")
    }
}

fn write_case(out: &mut String, c: &Case<'_>) {
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" time=\"0\"",
        escape(&c.classname),
        escape(&c.name),
        escape(c.file)
    );
    match c.outcome {
        JudgedOrSkipped::Skipped(s) => {
            let _ = writeln!(
                out,
                ">\n      <skipped message=\"{}\"/>",
                escape(&s.message)
            );
        }
        JudgedOrSkipped::Judged(r) if !r.allowed => {
            let enforce = r.findings.iter().filter(|f| f.mode == "Enforce").count();
            let message = format!(
                "denied: {enforce} Enforce finding{}",
                if enforce == 1 { "" } else { "s" }
            );
            let body: String = r.findings.iter().map(finding_text).collect();
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"phi-guard\">{}</failure>",
                escape(&message),
                escape_text(&body)
            );
        }
        JudgedOrSkipped::Judged(r) if !r.findings.is_empty() => {
            let body: String = r.findings.iter().map(finding_text).collect();
            let _ = writeln!(
                out,
                ">\n      <system-out>{}</system-out>",
                escape_text(&body)
            );
        }
        JudgedOrSkipped::Judged(_) => {
            out.push_str("/>\n");
            return;
        }
    }
    out.push_str("    </testcase>\n");
}

fn finding_text(f: &FindingResult) -> String {
    format!(
        "{} {} [{}] ({}) at {}: {}\n  fix: {}\n",
        f.mode, f.rule, f.reason, f.citation, f.path, f.message, f.remediation
    )
}
