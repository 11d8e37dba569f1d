//! What-if for policy changes: every workload judged under the PhiPolicies in force and again
//! with a proposed PhiPolicy replacing the one of the same name (or added next to them), and
//! what changes listed per workload: newly denied, no longer denied, newly or no longer PHI,
//! findings added, resolved or changing mode. From a live cluster (`check --from-cluster
//! --policy proposed.yaml`, the same snapshot `report --from-cluster` reads) or from files
//! (`check -f ... --proposed proposed.yaml`), so a security team learns what a tightened policy
//! breaks before rollouts do.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use serde::Serialize;

use super::check::{self, CheckArgs, CheckError, OutputFormat};
use super::judging::{read_policy, Compared, Judging};
use crate::cluster::files;
use crate::policy::{Policy, UpdateMode};
use crate::verdict::{Decision, Mode};

/// What a workload's verdict is: refused, admitted as PHI, or out of PHI scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Denied,
    Admitted,
    NotPhi,
}

impl Verdict {
    fn of(d: &Decision) -> Verdict {
        if !d.allowed {
            Verdict::Denied
        } else if d.phi {
            Verdict::Admitted
        } else {
            Verdict::NotPhi
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Verdict::Denied => "DENIED",
            Verdict::Admitted => "ADMITTED",
            Verdict::NotPhi => "NOT PHI",
        }
    }
}

/// The change a proposed policy makes to one workload, most consequential first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// Admitted now, refused under the proposal: its next creation is denied.
    NewlyDenied,
    /// Refused now, admitted under the proposal.
    NoLongerDenied,
    /// Out of PHI scope now, in scope under the proposal (and admitted).
    NewlyPhi,
    /// In PHI scope now, out of it under the proposal.
    NoLongerPhi,
    /// Same verdict; findings added, resolved or in another mode.
    FindingsChanged,
}

impl Effect {
    fn as_str(self) -> &'static str {
        match self {
            Effect::NewlyDenied => "NEWLY DENIED",
            Effect::NoLongerDenied => "NO LONGER DENIED",
            Effect::NewlyPhi => "NEWLY PHI",
            Effect::NoLongerPhi => "NO LONGER PHI",
            Effect::FindingsChanged => "FINDINGS CHANGE",
        }
    }
}

/// What happens to a newly denied workload already running when it is next updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NextRollout {
    /// A policy that refuses it judges people's updates in full (`spec.updates: Enforce`): its
    /// next rollout is denied.
    Denied,
    /// Its findings exist already, so an update that does not introduce them is admitted with
    /// warnings (`pre-existing`); re-creating it (a new namespace, a restore, a GitOps
    /// re-create) is denied.
    AdmittedWithWarnings,
}

/// One finding that differs: present in one judgment only, or in another mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingChange {
    pub rule: &'static str,
    /// The finding's reason code (`verdict::Reason`).
    pub reason: &'static str,
    pub path: String,
    pub message: String,
    /// Its mode in force (`null`: not found now).
    pub before: Option<&'static str>,
    /// Its mode under the proposal (`null`: resolved).
    pub after: Option<&'static str>,
}

/// A workload the proposal judges differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub effect: Effect,
    pub before: Verdict,
    pub after: Verdict,
    /// For a newly denied workload: what its next update meets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_rollout: Option<NextRollout>,
    pub findings: Vec<FindingChange>,
}

/// The what-if: policies on both sides, every workload judged differently, and how many not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WhatIf {
    /// Where the workloads came from: `cluster (...)` or the files.
    pub source: String,
    /// The PhiPolicies in force, `name (Mode)`.
    pub in_force: Vec<String>,
    /// The PhiPolicies with the proposal applied, `name (Mode)`.
    pub proposed: Vec<String>,
    pub changes: Vec<Change>,
    /// Workloads judged alike.
    pub unchanged: usize,
}

impl WhatIf {
    /// Some workload admitted now would be refused under the proposal.
    pub fn denies_more(&self) -> bool {
        self.changes.iter().any(|c| c.effect == Effect::NewlyDenied)
    }
}

fn named(policies: &[Arc<Policy>]) -> Vec<String> {
    policies
        .iter()
        .map(|p| format!("{} ({})", p.name, p.mode.as_str()))
        .collect()
}

/// Compare both judgments of every workload.
pub(crate) fn compare(c: &Compared, source: String) -> WhatIf {
    let mut changes = Vec::new();
    let mut unchanged = 0;
    for (object, before, after) in &c.objects {
        let findings = finding_changes(before, after);
        let (was, will) = (Verdict::of(before), Verdict::of(after));
        let effect = match (was, will) {
            (a, b) if a == b && findings.is_empty() => {
                unchanged += 1;
                continue;
            }
            (Verdict::Denied, Verdict::Denied) => Effect::FindingsChanged,
            (_, Verdict::Denied) => Effect::NewlyDenied,
            (Verdict::Denied, _) => Effect::NoLongerDenied,
            (Verdict::NotPhi, Verdict::Admitted) => Effect::NewlyPhi,
            (Verdict::Admitted, Verdict::NotPhi) => Effect::NoLongerPhi,
            _ => Effect::FindingsChanged,
        };
        let next_rollout = (effect == Effect::NewlyDenied).then(|| {
            let strict = after
                .findings
                .iter()
                .filter(|f| f.mode == Mode::Enforce)
                .any(|f| {
                    c.proposed
                        .iter()
                        .any(|p| p.name == f.policy && p.updates == UpdateMode::Enforce)
                });
            if strict {
                NextRollout::Denied
            } else {
                NextRollout::AdmittedWithWarnings
            }
        });
        changes.push(Change {
            kind: object.kind.clone(),
            namespace: object.namespace.clone(),
            name: object.name.clone(),
            effect,
            before: was,
            after: will,
            next_rollout,
            findings,
        });
    }
    changes.sort_by(|a, b| {
        (a.effect, &a.namespace, &a.kind, &a.name).cmp(&(b.effect, &b.namespace, &b.kind, &b.name))
    });
    WhatIf {
        source,
        in_force: named(&c.in_force),
        proposed: named(&c.proposed),
        changes,
        unchanged,
    }
}

/// Findings keyed as the UPDATE semantics match them (`Finding::key`: rule, reason, path and
/// subject, not the wording): those in one judgment only, and those whose mode differs. An
/// excepted finding counts in its mode; the message shown is the proposal's when it has one.
fn finding_changes(before: &Decision, after: &Decision) -> Vec<FindingChange> {
    type Key<'a> = (&'static str, &'static str, &'a str, &'a str);
    type Modes<'a> = (Option<&'static str>, Option<&'static str>, &'a str);
    let key = |f: &'_ crate::verdict::Finding| -> (&'static str, &'static str) {
        (f.rule.as_str(), f.reason.as_str())
    };
    let mut both: BTreeMap<Key<'_>, Modes<'_>> = BTreeMap::new();
    for f in &before.findings {
        let (rule, reason) = key(f);
        let e = both.entry((rule, reason, &f.path, &f.subject)).or_default();
        e.0 = Some(f.mode.as_str());
        e.2 = &f.message;
    }
    for f in &after.findings {
        let (rule, reason) = key(f);
        let e = both.entry((rule, reason, &f.path, &f.subject)).or_default();
        e.1 = Some(f.mode.as_str());
        e.2 = &f.message;
    }
    both.into_iter()
        .filter(|(_, (b, a, _))| b != a)
        .map(
            |((rule, reason, path, _), (before, after, message))| FindingChange {
                rule,
                reason,
                path: path.to_string(),
                message: message.to_string(),
                before,
                after,
            },
        )
        .collect()
}

/// The what-if as a security team reads it in a terminal.
pub fn render_text(w: &WhatIf) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "What-if for {}", w.source);
    let _ = writeln!(out, "  in force: {}", list(&w.in_force));
    let _ = writeln!(out, "  proposed: {}", list(&w.proposed));
    out.push('\n');
    for c in &w.changes {
        let _ = write!(
            out,
            "{:<16} {} {}/{}  ({} -> {})",
            c.effect.as_str(),
            c.kind,
            c.namespace,
            c.name,
            c.before.as_str(),
            c.after.as_str()
        );
        match c.next_rollout {
            Some(NextRollout::Denied) => {
                let _ = write!(out, "; its next rollout is denied (updates: Enforce)");
            }
            Some(NextRollout::AdmittedWithWarnings) => {
                let _ = write!(
                    out,
                    "; re-creating it is denied, its next update warns (pre-existing)"
                );
            }
            None => {}
        }
        out.push('\n');
        for f in &c.findings {
            let (sign, modes) = match (f.before, f.after) {
                (None, Some(m)) => ('+', m.to_string()),
                (Some(m), None) => ('-', m.to_string()),
                (Some(b), Some(a)) => ('~', format!("{b} -> {a}")),
                (None, None) => continue,
            };
            let _ = writeln!(
                out,
                "  {sign} {modes}  {}  {}: {}",
                f.rule, f.path, f.message
            );
        }
    }
    let count = |e| w.changes.iter().filter(|c| c.effect == e).count();
    if !w.changes.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{} judged differently ({} newly denied, {} no longer denied, {} newly PHI, {} no longer PHI, {} with other findings), {} unchanged",
        w.changes.len(),
        count(Effect::NewlyDenied),
        count(Effect::NoLongerDenied),
        count(Effect::NewlyPhi),
        count(Effect::NoLongerPhi),
        count(Effect::FindingsChanged),
        w.unchanged,
    );
    out
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Run `check --from-cluster` or `check --proposed`: 0 no workload would newly be denied (or,
/// without a proposal, every workload is admitted), 1 some would, 2 the inputs could not be
/// judged.
pub(crate) fn run(args: &CheckArgs) -> ExitCode {
    if matches!(args.output, OutputFormat::Sarif | OutputFormat::Junit) {
        eprintln!(
            "error: -o sarif and -o junit locate findings in files; a what-if and --from-cluster \
             print text or json"
        );
        return ExitCode::from(2);
    }
    match what_if(args) {
        Ok(Outcome::Compared(w)) => {
            let text = match args.output {
                OutputFormat::Json => match serde_json::to_string_pretty(&w) {
                    Ok(s) => s + "\n",
                    Err(e) => {
                        eprintln!("error: cannot encode the what-if: {e}");
                        return ExitCode::from(2);
                    }
                },
                _ => render_text(&w),
            };
            match (check::print(&text), w.denies_more()) {
                (false, _) => ExitCode::from(2),
                (true, true) => ExitCode::from(1),
                (true, false) => ExitCode::SUCCESS,
            }
        }
        Ok(Outcome::Judged(report)) => {
            let text = match args.output {
                OutputFormat::Json => match serde_json::to_string_pretty(&report) {
                    Ok(s) => s + "\n",
                    Err(e) => {
                        eprintln!("error: cannot encode the report: {e}");
                        return ExitCode::from(2);
                    }
                },
                _ => check::render_text(&report),
            };
            match (check::print(&text), report.all_allowed()) {
                (false, _) => ExitCode::from(2),
                (true, true) => ExitCode::SUCCESS,
                (true, false) => ExitCode::from(1),
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A what-if, or (`--from-cluster` without a proposal) the cluster's workloads judged.
enum Outcome {
    Compared(WhatIf),
    Judged(check::Report),
}

fn what_if(args: &CheckArgs) -> anyhow::Result<Outcome> {
    let max_bytes = args.max_file_mib.saturating_mul(files::MIB);
    if args.from_cluster {
        // From a cluster the policies in force are the cluster's: --policy is the proposal.
        let mut paths = args.policies.clone();
        paths.extend(args.proposed.iter().cloned());
        let proposal = read_proposal(&paths, max_bytes)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let (docs, _, context) = rt.block_on(crate::cluster::snapshot::documents())?;
        let mut judging = Judging::new(&[], &[])?;
        for d in docs {
            judging.take(d)?;
        }
        if proposal.is_empty() {
            return Ok(Outcome::Judged(judging.finish()?.report));
        }
        let compared = judging.finish_compared(proposal)?;
        return Ok(Outcome::Compared(compare(
            &compared,
            format!("cluster ({context})"),
        )));
    }
    let proposal = read_proposal(&args.proposed, max_bytes)?;
    let (judging, _, _) = check::read_all(args)?;
    let compared = judging.finish_compared(proposal)?;
    let names: Vec<String> = args.files.iter().map(|p| p.display().to_string()).collect();
    Ok(Outcome::Compared(compare(
        &compared,
        format!("files {}", names.join(", ")),
    )))
}

/// The what-if over documents (`report`): `inputs` judged with `state_docs` and the in-force
/// `policy_docs`, against the PhiPolicies in the `proposed` files.
pub(crate) fn from_documents(
    inputs: Vec<files::Document>,
    state_docs: &[files::Document],
    policy_docs: &[files::Document],
    proposed: &[std::path::PathBuf],
    source: &str,
) -> anyhow::Result<WhatIf> {
    let proposal = read_proposal(proposed, files::DEFAULT_MAX_FILE_MIB * files::MIB)?;
    let mut judging = Judging::new(state_docs, policy_docs)?;
    for d in inputs {
        judging.take(d)?;
    }
    Ok(compare(
        &judging.finish_compared(proposal)?,
        source.to_string(),
    ))
}

/// Write the what-if next to the evidence: phi-guard-what-if.txt and .json in `dir`.
pub(crate) fn write(dir: &std::path::Path, w: &WhatIf) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let text = dir.join("phi-guard-what-if.txt");
    let json = dir.join("phi-guard-what-if.json");
    std::fs::write(&text, render_text(w)).with_context(|| format!("writing {}", text.display()))?;
    std::fs::write(&json, serde_json::to_string_pretty(w)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    Ok(vec![text, json])
}

/// The proposed PhiPolicies: PhiPolicy documents only, each name once.
fn read_proposal(
    paths: &[std::path::PathBuf],
    max_bytes: u64,
) -> Result<Vec<(String, crate::policy::PhiPolicy)>, CheckError> {
    let docs = files::read_documents(paths, max_bytes)?;
    if docs.is_empty() && !paths.is_empty() {
        return Err(CheckError::Input {
            source_ref: paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            message: "no PhiPolicy to propose".into(),
        });
    }
    let mut proposal: Vec<(String, crate::policy::PhiPolicy)> = Vec::new();
    for d in &docs {
        if !files::is_phi_policy(d) {
            return Err(CheckError::Input {
                source_ref: d.source.clone(),
                message: format!(
                    "a proposal holds PhiPolicy objects (apiVersion phiguard.io/v1alpha1), found {} {:?}",
                    d.kind,
                    d.name()
                ),
            });
        }
        let p = read_policy(d)?;
        if let Some((first, _)) = proposal
            .iter()
            .find(|(_, q)| q.metadata.name == p.metadata.name)
        {
            return Err(CheckError::DuplicatePolicy {
                name: d.name(),
                first: first.clone(),
                second: d.source.clone(),
            });
        }
        proposal.push((d.source.clone(), p));
    }
    Ok(proposal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::check::ObjectResult;
    use crate::fixtures::policy_with;
    use crate::verdict::Finding;

    fn finding(mode: Mode) -> Finding {
        let mut f = Finding::new(
            crate::verdict::Reason::NoAuditSidecar,
            mode,
            "spec.template.spec.containers",
            "no approved audit sidecar",
            "add one",
        );
        f.policy = "test".into();
        f
    }

    fn decision(phi: bool, findings: Vec<Finding>) -> Decision {
        Decision::from_findings(phi, vec!["test".into()], findings)
    }

    fn object() -> ObjectResult {
        ObjectResult {
            kind: "Deployment".into(),
            namespace: "claims".into(),
            name: "intake".into(),
            phi: true,
            allowed: true,
            findings: Vec::new(),
            source: String::new(),
        }
    }

    fn what_if(before: Decision, after: Decision, updates: UpdateMode) -> WhatIf {
        let proposed = policy_with(|s| s.updates = updates);
        let c = Compared {
            in_force: vec![Arc::new(policy_with(|_| {}))],
            proposed: vec![Arc::new(proposed)],
            objects: vec![(object(), before, after)],
        };
        compare(&c, "files test".into())
    }

    #[test]
    fn a_finding_tightened_to_enforce_is_newly_denied_and_rollouts_go_on() {
        let w = what_if(
            decision(true, vec![finding(Mode::Warn)]),
            decision(true, vec![finding(Mode::Enforce)]),
            UpdateMode::AllowExisting,
        );
        assert!(w.denies_more());
        assert_eq!(w.unchanged, 0);
        let c = &w.changes[0];
        assert_eq!(
            (c.effect, c.before, c.after),
            (Effect::NewlyDenied, Verdict::Admitted, Verdict::Denied)
        );
        assert_eq!(c.next_rollout, Some(NextRollout::AdmittedWithWarnings));
        assert_eq!(c.findings.len(), 1);
        assert_eq!(
            (c.findings[0].before, c.findings[0].after),
            (Some("Warn"), Some("Enforce"))
        );
        let text = render_text(&w);
        assert!(
            text.contains("NEWLY DENIED     Deployment claims/intake  (ADMITTED -> DENIED)"),
            "{text}"
        );
        assert!(text.contains("~ Warn -> Enforce  audit-sidecar"), "{text}");
        assert!(
            text.contains("1 judged differently (1 newly denied"),
            "{text}"
        );
    }

    #[test]
    fn under_updates_enforce_the_next_rollout_is_denied() {
        let w = what_if(
            decision(true, vec![finding(Mode::Warn)]),
            decision(true, vec![finding(Mode::Enforce)]),
            UpdateMode::Enforce,
        );
        assert_eq!(w.changes[0].next_rollout, Some(NextRollout::Denied));
    }

    #[test]
    fn the_same_judgment_is_unchanged() {
        let d = decision(true, vec![finding(Mode::Enforce)]);
        let w = what_if(d.clone(), d, UpdateMode::AllowExisting);
        assert!(w.changes.is_empty());
        assert_eq!(w.unchanged, 1);
        assert!(!w.denies_more());
    }

    #[test]
    fn scope_and_loosening_changes_are_named() {
        let w = what_if(
            Decision::allow(),
            decision(true, vec![finding(Mode::Warn)]),
            UpdateMode::AllowExisting,
        );
        assert_eq!(w.changes[0].effect, Effect::NewlyPhi);
        assert_eq!(
            (
                w.changes[0].findings[0].before,
                w.changes[0].findings[0].after
            ),
            (None, Some("Warn"))
        );
        assert!(!w.denies_more());
        let w = what_if(
            decision(true, vec![finding(Mode::Enforce)]),
            decision(true, vec![finding(Mode::Audit)]),
            UpdateMode::AllowExisting,
        );
        assert_eq!(w.changes[0].effect, Effect::NoLongerDenied);
        assert_eq!(w.changes[0].next_rollout, None);
        assert!(!w.denies_more());
    }
}
