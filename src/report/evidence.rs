//! An auditor's evidence report: per HIPAA Security Rule citation, what phi-guard checks and
//! the status of every PHI workload, the exceptions with their tickets and expiry, and the
//! policies in force. One self-contained HTML page (inline CSS, printable, no scripts) and the
//! same content as JSON. Pure: results in, text out. Names objects, rules and tickets; never
//! object contents.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

use super::markup::escape;
use crate::policy::exception::Exception;
use crate::policy::Policy;
use crate::report::reported_rules;
use crate::verdict::RuleId;

/// What one rule says of one workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Status {
    Pass,
    Fail,
    Excepted,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Excepted => "excepted",
        }
    }
}

/// A finding as the evidence lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Item {
    pub(crate) path: String,
    pub(crate) mode: String,
    pub(crate) message: String,
}

/// A PHI workload and its status per rule.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Workload {
    pub(crate) kind: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) rules: BTreeMap<&'static str, Status>,
    pub(crate) findings: BTreeMap<&'static str, Vec<Item>>,
}

/// A finding of a judged object, as the judging step reports it.
pub(crate) struct Found<'a> {
    pub(crate) rule: &'a str,
    pub(crate) path: &'a str,
    pub(crate) mode: &'a str,
    pub(crate) message: &'a str,
    /// Waived by a PhiException.
    pub(crate) excepted: bool,
}

/// One judged object.
pub(crate) struct Judged<'a> {
    pub(crate) kind: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) name: &'a str,
    pub(crate) phi: bool,
    pub(crate) findings: Vec<Found<'a>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PolicyRow {
    pub(crate) name: String,
    pub(crate) generation: Option<i64>,
    pub(crate) mode: String,
    pub(crate) rules: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExceptionRow {
    pub(crate) name: String,
    pub(crate) namespaces: Vec<String>,
    pub(crate) objects: String,
    pub(crate) rules: Vec<String>,
    pub(crate) ticket: String,
    pub(crate) expires_at: String,
    pub(crate) active: bool,
    pub(crate) approved_by: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Section {
    pub(crate) rule: &'static str,
    pub(crate) citation: &'static str,
    pub(crate) safeguard: &'static str,
    pub(crate) checks: &'static str,
    pub(crate) pass: usize,
    pub(crate) fail: usize,
    pub(crate) excepted: usize,
}

/// The evidence, as JSON serializes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Evidence {
    pub(crate) generated_at: String,
    pub(crate) phi_guard_version: &'static str,
    pub(crate) source: String,
    pub(crate) sections: Vec<Section>,
    pub(crate) workloads: Vec<Workload>,
    pub(crate) exceptions: Vec<ExceptionRow>,
    pub(crate) policies: Vec<PolicyRow>,
}

/// Is the rule part of the evidence? The four requirements always are (they are never off); the
/// optional safeguards only when some policy enables them, so a disabled safeguard is never
/// reported as passed.
fn in_evidence(rule: RuleId, policies: &[Arc<Policy>]) -> bool {
    rule.meta().requirement || policies.iter().any(|p| p.rule_enabled(rule))
}

fn describe(rule: RuleId) -> (&'static str, &'static str) {
    let m = rule.meta();
    (m.safeguard, m.evidence)
}

/// Build the evidence from judged objects (only PHI ones are listed).
pub(crate) fn build(
    judged: &[Judged<'_>],
    policies: &[Arc<Policy>],
    generations: &BTreeMap<String, i64>,
    exceptions: &[Arc<Exception>],
    now: i64,
    generated_at: String,
    source: String,
) -> Evidence {
    let mut workloads = Vec::new();
    for j in judged.iter().filter(|j| j.phi) {
        let mut rules = BTreeMap::new();
        let mut findings: BTreeMap<&'static str, Vec<Item>> = BTreeMap::new();
        for rule in reported_rules().filter(|r| in_evidence(*r, policies)) {
            let found: Vec<&Found<'_>> = j
                .findings
                .iter()
                .filter(|f| f.rule == rule.as_str())
                .collect();
            let status = if found.is_empty() {
                Status::Pass
            } else if found.iter().all(|f| f.excepted) {
                Status::Excepted
            } else {
                Status::Fail
            };
            rules.insert(rule.as_str(), status);
            if !found.is_empty() {
                findings.insert(
                    rule.as_str(),
                    found
                        .iter()
                        .map(|f| Item {
                            path: f.path.to_string(),
                            mode: f.mode.to_string(),
                            message: f.message.to_string(),
                        })
                        .collect(),
                );
            }
        }
        workloads.push(Workload {
            kind: j.kind.to_string(),
            namespace: j.namespace.to_string(),
            name: j.name.to_string(),
            rules,
            findings,
        });
    }
    workloads
        .sort_by(|a, b| (&a.namespace, &a.kind, &a.name).cmp(&(&b.namespace, &b.kind, &b.name)));
    let sections = reported_rules()
        .filter(|r| in_evidence(*r, policies))
        .map(|r| {
            let (safeguard, checks) = describe(r);
            let count = |s: Status| {
                workloads
                    .iter()
                    .filter(|w| w.rules.get(r.as_str()) == Some(&s))
                    .count()
            };
            Section {
                rule: r.as_str(),
                citation: r.citation(),
                safeguard,
                checks,
                pass: count(Status::Pass),
                fail: count(Status::Fail),
                excepted: count(Status::Excepted),
            }
        })
        .collect();
    let exceptions = exceptions
        .iter()
        .map(|e| ExceptionRow {
            name: e.name.clone(),
            namespaces: e.namespaces.iter().cloned().collect(),
            objects: {
                let mut o = Vec::new();
                if !e.kinds.is_empty() {
                    o.push(e.kinds.iter().cloned().collect::<Vec<_>>().join(", "));
                }
                if !e.names.is_empty() {
                    o.push(e.names.iter().cloned().collect::<Vec<_>>().join(", "));
                }
                if e.selector.is_some() {
                    o.push("by label selector".into());
                }
                o.join(" / ")
            },
            rules: e
                .rules
                .iter()
                .map(|(r, p)| match p {
                    Some(p) => format!("{} at {p}", r.as_str()),
                    None => r.as_str().to_string(),
                })
                .collect(),
            ticket: e.ticket.clone(),
            expires_at: e.expires_text.clone(),
            active: now < e.expires_at,
            approved_by: e.approved_by.clone(),
        })
        .collect();
    let policies = policies
        .iter()
        .map(|p| PolicyRow {
            name: p.name.clone(),
            generation: generations.get(&p.name).copied(),
            mode: p.mode.as_str().to_string(),
            rules: reported_rules()
                .filter(|r| p.rule_enabled(*r))
                .map(|r| r.as_str())
                .collect(),
        })
        .collect();
    Evidence {
        generated_at,
        phi_guard_version: env!("CARGO_PKG_VERSION"),
        source,
        sections,
        workloads,
        exceptions,
        policies,
    }
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#1b1f24;max-width:1100px}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}\
table{border-collapse:collapse;width:100%;margin:.6rem 0;font-size:.9rem;table-layout:fixed}td{overflow-wrap:anywhere}th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}.pass{background:#dafbe1}.fail{background:#ffebe9}.excepted{background:#fff8c5}\
.meta{color:#57606a}.small{font-size:.8rem;color:#57606a}@media print{body{margin:0}h2{break-after:avoid}tr{break-inside:avoid}}";

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The evidence as one self-contained HTML page.
pub(crate) fn to_html(e: &Evidence) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>phi-guard HIPAA evidence</title><style>{CSS}</style></head><body>"
    );
    let _ = write!(
        h,
        "<h1>HIPAA Security Rule: technical safeguards evidence</h1><p class=\"meta\">Generated {} by phi-guard {} from {}. {}, {}, {} in force.</p>",
        escape(&e.generated_at),
        escape(e.phi_guard_version),
        escape(&e.source),
        plural(e.workloads.len(), "PHI workload", "PHI workloads"),
        plural(e.exceptions.len(), "exception", "exceptions"),
        plural(e.policies.len(), "policy", "policies")
    );
    h.push_str("<h2>Safeguards checked</h2><table><tr><th>Citation</th><th>Safeguard</th><th>What phi-guard checks</th><th>Pass</th><th>Fail</th><th>Excepted</th></tr>");
    for s in &e.sections {
        let _ = write!(
            h,
            "<tr><td>{}<br><span class=\"small\">{}</span></td><td>{}</td><td>{}</td><td class=\"pass\">{}</td><td class=\"fail\">{}</td><td class=\"excepted\">{}</td></tr>",
            escape(s.citation),
            escape(s.rule),
            escape(s.safeguard),
            escape(s.checks),
            s.pass,
            s.fail,
            s.excepted
        );
    }
    h.push_str("</table><h2>PHI workloads</h2><table><tr><th>Workload</th>");
    for s in &e.sections {
        let _ = write!(
            h,
            "<th>{}<br><span class=\"small\">{}</span></th>",
            escape(s.rule),
            escape(s.citation)
        );
    }
    h.push_str("</tr>");
    for w in &e.workloads {
        let _ = write!(
            h,
            "<tr><td>{} <b>{}/{}</b></td>",
            escape(&w.kind),
            escape(&w.namespace),
            escape(&w.name)
        );
        for s in &e.sections {
            let st = w.rules.get(s.rule).copied().unwrap_or(Status::Pass);
            let detail: String = w
                .findings
                .get(s.rule)
                .into_iter()
                .flatten()
                .map(|i| {
                    format!(
                        "<div class=\"small\">{}: {}</div>",
                        escape(&i.path),
                        escape(&i.message)
                    )
                })
                .collect();
            let _ = write!(h, "<td class=\"{0}\">{0}{1}</td>", st.as_str(), detail);
        }
        h.push_str("</tr>");
    }
    h.push_str("</table><h2>Exceptions</h2>");
    if e.exceptions.is_empty() {
        h.push_str("<p>None.</p>");
    } else {
        h.push_str("<table><tr><th>Exception</th><th>Objects</th><th>Rules waived</th><th>Ticket</th><th>Expires</th><th>Approved by</th></tr>");
        for x in &e.exceptions {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}: {}</td><td>{}</td><td><b>{}</b></td><td class=\"{}\">{}{}</td><td>{}</td></tr>",
                escape(&x.name),
                escape(&x.namespaces.join(", ")),
                escape(&x.objects),
                escape(&x.rules.join(", ")),
                escape(&x.ticket),
                if x.active { "excepted" } else { "fail" },
                escape(&x.expires_at),
                if x.active { "" } else { " (expired)" },
                escape(x.approved_by.as_deref().unwrap_or("-"))
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Policies in force</h2><table><tr><th>PhiPolicy</th><th>Generation</th><th>Mode</th><th>Rules</th></tr>");
    for p in &e.policies {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&p.name),
            p.generation
                .map_or("built-in".to_string(), |g| g.to_string()),
            escape(&p.mode),
            escape(&p.rules.join(", "))
        );
    }
    h.push_str("</table><p class=\"small\">Status per rule: pass (no finding), fail (a finding, at any mode), excepted (every finding waived by an unexpired PhiException). Findings name objects and fields, never their values.</p></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::baseline;

    #[test]
    fn evidence_lists_phi_workloads_per_rule_and_escapes_text() {
        let judged = vec![
            Judged {
                kind: "Deployment",
                namespace: "clinic",
                name: "records-<api>",
                phi: true,
                findings: vec![Found {
                    rule: "audit-sidecar",
                    path: "spec.template.spec.containers",
                    mode: "Warn",
                    message: "excepted until 2027-01-01T00:00:00Z (ticket SEC-1, PhiException x): no sidecar",
                    excepted: true,
                }],
            },
            Judged {
                kind: "Deployment",
                namespace: "web",
                name: "shop",
                phi: false,
                findings: vec![],
            },
        ];
        let e = build(
            &judged,
            &[Arc::new(baseline())],
            &BTreeMap::new(),
            &[],
            0,
            "2026-12-01T10:00:00Z".into(),
            "files".into(),
        );
        assert_eq!(e.workloads.len(), 1, "only PHI workloads");
        assert_eq!(e.workloads[0].rules["audit-sidecar"], Status::Excepted);
        assert_eq!(e.workloads[0].rules["encryption-at-rest"], Status::Pass);
        let sidecar = e
            .sections
            .iter()
            .find(|s| s.rule == "audit-sidecar")
            .expect("section");
        assert_eq!((sidecar.pass, sidecar.fail, sidecar.excepted), (0, 0, 1));
        let html = to_html(&e);
        assert!(html.contains("records-&lt;api&gt;") && !html.contains("records-<api>"));
        assert!(html.contains("45 CFR 164.312(b)"));
        assert!(html.contains("hipaa-baseline"));
        assert!(!html.contains("<script"), "no scripts in an evidence file");
    }

    /// A safeguard no policy enables is neither a section nor a "pass" (it was never checked);
    /// one a policy enables is reported like the four requirements.
    #[test]
    fn safeguards_are_evidence_only_where_a_policy_enables_them() {
        let judged = vec![Judged {
            kind: "Deployment",
            namespace: "clinic",
            name: "records",
            phi: true,
            findings: vec![Found {
                rule: "integrity",
                path: "spec.template.spec.containers[0].image",
                mode: "Enforce",
                message: "the image of container api is not pinned by digest",
                excepted: false,
            }],
        }];
        let build_with = |p: crate::policy::Policy| {
            build(
                &judged,
                &[Arc::new(p)],
                &BTreeMap::new(),
                &[],
                0,
                "2026-12-01T10:00:00Z".into(),
                "files".into(),
            )
        };
        let e = build_with(baseline());
        assert!(!e.workloads[0].rules.contains_key("integrity"));
        assert!(!e.workloads[0].rules.contains_key("least-privilege"));
        assert!(!e.sections.iter().any(|s| s.rule == "contingency"));
        assert_eq!(e.sections.len(), 4);

        let e = build_with(crate::fixtures::policy_with(|s| {
            s.integrity.enabled = true;
        }));
        assert_eq!(e.workloads[0].rules["integrity"], Status::Fail);
        assert!(!e.workloads[0].rules.contains_key("contingency"));
        let s = e
            .sections
            .iter()
            .find(|s| s.rule == "integrity")
            .expect("integrity section");
        assert_eq!((s.citation, s.fail), ("45 CFR 164.312(c)(1)", 1));
        assert_eq!(e.policies[0].rules.last(), Some(&"integrity"));
    }
}
