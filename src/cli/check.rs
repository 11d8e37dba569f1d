//! `phi-guard check`: judge manifest files offline with the same engine the webhook runs, so a
//! developer or a CI pipeline learns every finding before deploying.
//!
//! Inputs: the manifests under review (`-f`), optional PhiPolicies (`--policy`) and optional
//! cluster state (`--cluster-state`: StorageClasses, Namespaces, NetworkPolicies, ...). Cluster
//! objects among the manifests count as cluster state too, and so do PhiPolicies; when no policy
//! is given anywhere, the built-in hipaa-baseline applies.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;

use crate::cluster::files::{self, Document, FileError};
use crate::cluster::ClusterState;
use crate::engine;
use crate::object::{Kind, Object};
use crate::policy::exception::{self, PhiException};
use crate::policy::PolicySet;
use crate::policy::{hipaa_baseline, Mode, PhiPolicy, Policy};
use crate::verdict::Decision;

/// Namespace of manifests that do not set one (as `kubectl apply` without `-n`).
const DEFAULT_NAMESPACE: &str = "default";

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Without a PhiPolicy (--policy, or among the -f and --cluster-state files) \
the built-in hipaa-baseline applies.\n\nExit status: 0 every object would be admitted, 1 some \
object would be denied, 2 the inputs could not be judged (missing or unreadable file, YAML \
or JSON error, duplicate key, an object that does not decode, namespace conflict with -n, \
invalid policy, no Kubernetes object at all). Objects of kinds phi-guard does not judge are \
listed as skipped and do not change the exit status."
)]
pub struct CheckArgs {
    /// Manifest file or directory to judge (multi-document YAML or JSON, `kind: List` too;
    /// directories are read recursively, *.yaml, *.yml and *.json in name order; `-` reads
    /// standard input). Repeatable.
    /// Cluster objects found here (Namespaces, StorageClasses, NetworkPolicies, PVCs, Services,
    /// PeerAuthentications, Certificates, PhiPolicies) also count as cluster state.
    #[arg(
        short = 'f',
        long = "filename",
        env = "PHI_GUARD_CHECK_FILENAME",
        value_name = "PATH",
        required = true
    )]
    pub files: Vec<PathBuf>,

    /// PhiPolicy file or directory to judge against, instead of the built-in hipaa-baseline.
    /// Repeatable. Every document must be a PhiPolicy; an invalid one fails the run (exit 2).
    #[arg(long = "policy", env = "PHI_GUARD_CHECK_POLICY", value_name = "FILE")]
    pub policies: Vec<PathBuf>,

    /// File or directory with the cluster objects rules consult but that are not judged
    /// themselves: Namespaces (labels and annotations), StorageClasses, PersistentVolumes,
    /// PVCs, NetworkPolicies, Istio PeerAuthentications, cert-manager Certificates, Services.
    /// PhiPolicies found here apply too. Repeatable.
    #[arg(
        long = "cluster-state",
        env = "PHI_GUARD_CHECK_CLUSTER_STATE",
        value_name = "FILE"
    )]
    pub cluster_state: Vec<PathBuf>,

    /// Namespace for objects that set none, as with `kubectl apply -n`; an object whose own
    /// namespace differs is an error (exit 2), as kubectl makes it. Default: `default`, and
    /// then objects may name any namespace.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespace: Option<String>,

    /// Output format: `text` for people, `json` for pipelines.
    #[arg(
        short = 'o',
        long = "output",
        env = "PHI_GUARD_CHECK_OUTPUT",
        value_enum,
        default_value_t = OutputFormat::Text
    )]
    pub output: OutputFormat,
}

/// How `check` prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A verdict line per object, a line per finding with its citation and fix, a summary.
    Text,
    /// `{"results":[{"kind","namespace","name","phi","allowed","findings":[...]}]}`.
    Json,
}

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
    pub citation: &'static str,
    pub path: String,
    pub message: String,
    pub remediation: String,
    pub mode: &'static str,
}

impl Report {
    /// True when every object would be admitted.
    pub fn all_allowed(&self) -> bool {
        self.results.iter().all(|r| r.allowed)
    }
}

/// Run `check`: 0 when everything would be admitted, 1 when something would be denied, 2 when
/// the inputs could not be judged.
pub fn run(args: CheckArgs) -> ExitCode {
    let report = match check(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match args.output {
        OutputFormat::Text => render_text(&report),
        OutputFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("error: cannot encode the report: {e}");
                return ExitCode::from(2);
            }
        },
    };
    // A closed pipe (`phi-guard check ... | head`) is not an error worth a panic; the verdict
    // still decides the exit code.
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the report: {e}");
            return ExitCode::from(2);
        }
    }
    if report.all_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Read the inputs, build cluster state and policies, judge every checkable object.
pub fn check(args: &CheckArgs) -> Result<Report, CheckError> {
    let (mut inputs, skipped_files) = read_inputs(&args.files)?;
    apply_namespace(&mut inputs, args.namespace.as_deref())?;
    let state_docs = files::read_documents(&args.cluster_state)?;
    let policy_docs = files::read_documents(&args.policies)?;
    let mut judged = judge_documents(&inputs, &state_docs, &policy_docs)?;
    judged
        .report
        .skipped
        .extend(skipped_files.into_iter().map(|s| Skipped {
            kind: String::new(),
            api_version: String::new(),
            namespace: String::new(),
            name: String::new(),
            source: s.source,
            reason: SkipReason::FileSkipped,
            message: s.reason,
        }));
    Ok(judged.report)
}

/// What judging a set of documents gives: the report, and the policies and exceptions applied.
pub(crate) struct Judged {
    pub(crate) report: Report,
    pub(crate) policies: Vec<Arc<Policy>>,
    pub(crate) exceptions: Vec<Arc<exception::Exception>>,
}

/// Judge `inputs` against the policies and cluster state among all the documents, as the
/// webhook would (used by `check` on files and by `report` on files or a cluster's objects).
pub(crate) fn judge_documents(
    inputs: &[Document],
    state_docs: &[Document],
    policy_docs: &[Document],
) -> Result<Judged, CheckError> {
    // Policies: --policy files, plus PhiPolicies among the cluster state and the inputs.
    let mut given: Vec<(String, PhiPolicy)> = Vec::new();
    for d in policy_docs {
        if !files::is_phi_policy(d) {
            return Err(CheckError::Input {
                source_ref: d.source.clone(),
                message: format!(
                    "--policy expects PhiPolicy objects (apiVersion phiguard.io/v1alpha1), found {} {:?}",
                    d.kind,
                    d.name()
                ),
            });
        }
        given.push((d.source.clone(), read_policy(d)?));
    }
    for d in state_docs.iter().chain(inputs) {
        if files::is_phi_policy(d) {
            given.push((d.source.clone(), read_policy(d)?));
        }
    }
    let policies = policy_set(given)?;

    // PhiExceptions among the cluster state and the inputs: applied as the webhook applies them,
    // compared with the time of this run (an expired one waives nothing).
    let mut exceptions = Vec::new();
    for d in state_docs.iter().chain(inputs) {
        if d.kind == "PhiException" && d.api_version.starts_with("phiguard.io/") {
            let x: PhiException =
                serde_json::from_value(d.value.clone()).map_err(|e| CheckError::Input {
                    source_ref: d.source.clone(),
                    message: format!(
                        "not a valid PhiException: {}",
                        crate::telemetry::redact(&e.to_string())
                    ),
                })?;
            let e = exception::parse(&x).map_err(|m| CheckError::Input {
                source_ref: files::object_ref(&d.source, &d.kind, &d.name()),
                message: m,
            })?;
            exceptions.push(Arc::new(e));
        }
    }
    let now = k8s_openapi::jiff::Timestamp::now().as_second();

    // Cluster state: --cluster-state first, then the inputs (which win on a name clash).
    let state = ClusterState::new();
    for d in state_docs.iter().chain(inputs) {
        if !files::is_phi_policy(d) && d.kind != "PhiException" {
            files::load_state(std::slice::from_ref(d), &state)?;
        }
    }

    let mut results = Vec::new();
    let mut skipped = Vec::new();
    for d in inputs {
        let group = d.group();
        let skip = |reason, message: String| Skipped {
            kind: d.kind.clone(),
            api_version: d.api_version.clone(),
            namespace: d.namespace(),
            name: d.name(),
            source: d.source.clone(),
            reason,
            message,
        };
        let kind = match files::judged_kind(group, &d.kind) {
            Some(Kind::Namespace | Kind::NetworkPolicy) => None,
            other => other,
        };
        let Some(kind) = kind else {
            skipped.push(if files::is_phi_policy(d) || files::is_state_kind(group, &d.kind) {
                skip(SkipReason::ClusterState, "read as cluster state".into())
            } else if let Some(path) = files::pod_spec_path(&d.value) {
                skip(
                    SkipReason::KindNotJudged,
                    format!(
                        "kind not judged, though it runs pods ({path}): the webhook judges the Pods it creates"
                    ),
                )
            } else {
                skip(SkipReason::KindNotJudged, "kind not judged".into())
            });
            continue;
        };
        if let Some(message) = no_own_pods(d) {
            skipped.push(skip(SkipReason::KindNotJudged, message));
            continue;
        }
        let w = files::decode_object(kind, &d.value, Some(DEFAULT_NAMESPACE)).map_err(|m| {
            CheckError::Input {
                source_ref: files::object_ref(&d.source, &d.kind, &d.name()),
                message: m,
            }
        })?;
        let decision = engine::evaluate(&w, &state, &policies);
        let decision = exception::apply(decision, &w, &exceptions, now);
        let mut r = object_result(&w, &decision, &d.source);
        if d.kind != kind.as_str() {
            // A custom resource judged as the built-in kind it mirrors: name it as written.
            let (judged, own) = (
                w.display(),
                format!("{} {}/{}", d.kind, w.namespace, w.name),
            );
            r.kind = d.kind.clone();
            for f in &mut r.findings {
                f.message = f.message.replace(&judged, &own);
                f.remediation = f.remediation.replace(&judged, &own);
            }
        }
        results.push(r);
    }
    if inputs.is_empty() {
        return Err(CheckError::NothingToCheck);
    }
    Ok(Judged {
        report: Report { results, skipped },
        policies,
        exceptions,
    })
}

/// An Argo Rollout that takes its pods from a Deployment (`spec.workloadRef`) has no pod
/// template of its own: judging it would report an empty pod. Say where the pods are judged.
fn no_own_pods(d: &files::Document) -> Option<String> {
    if d.kind != "Rollout" {
        return None;
    }
    let spec = d.value.get("spec")?;
    if spec.get("template").is_some() {
        return None;
    }
    let r = spec.get("workloadRef")?;
    let kind = r
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or("Deployment");
    let name = r.get("name").and_then(|k| k.as_str()).unwrap_or_default();
    Some(format!(
        "takes its pods from spec.workloadRef ({kind} {name:?}): that {kind} is judged instead"
    ))
}

/// Give objects that name no namespace the `-n` one (or `default`), as `kubectl apply` does;
/// with `-n`, an object naming another namespace is an error, as it is for kubectl.
fn apply_namespace(docs: &mut [Document], flag: Option<&str>) -> Result<(), CheckError> {
    let ns = flag.unwrap_or(DEFAULT_NAMESPACE);
    for d in docs {
        if files::is_cluster_scoped(d.group(), &d.kind) {
            continue;
        }
        let own = d.namespace();
        if own.is_empty() {
            if let Some(meta) = d.value.as_object_mut().map(|o| {
                o.entry("metadata")
                    .or_insert_with(|| serde_json::Value::Object(Default::default()))
            }) {
                if let Some(m) = meta.as_object_mut() {
                    m.insert("namespace".into(), ns.into());
                }
            }
        } else if let Some(flag) = flag.filter(|f| *f != own) {
            return Err(CheckError::NamespaceMismatch {
                source_ref: d.source.clone(),
                kind: d.kind.clone(),
                name: d.name(),
                namespace: own,
                flag: flag.to_string(),
            });
        }
    }
    Ok(())
}

/// Read the `-f` inputs in order; `-` is standard input (e.g. `helm template ... | phi-guard check -f -`).
fn read_inputs(paths: &[PathBuf]) -> Result<(Vec<Document>, Vec<files::SkippedInput>), CheckError> {
    let mut reader = files::Reader::new();
    for p in paths {
        if p.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| FileError::Io {
                    path: "<stdin>".into(),
                    source: e,
                })?;
            let text = String::from_utf8(bytes).map_err(|_| FileError::Io {
                path: "<stdin>".into(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
            })?;
            reader.read_text("<stdin>", &text, files::Origin::Named)?;
        } else {
            reader.read_path(p)?;
        }
    }
    Ok((reader.docs, reader.skipped))
}

/// Decode a PhiPolicy document, naming the field when its shape is wrong (an unknown mode, a
/// string where a list belongs), as the API server's schema validation would.
fn read_policy(d: &Document) -> Result<PhiPolicy, CheckError> {
    files::decode::<PhiPolicy>(&d.value).map_err(|m| CheckError::InvalidPolicy {
        source_ref: d.source.clone(),
        message: format!("PhiPolicy {:?}: {m}", d.name()),
    })
}

/// Validate the given policies with the one parser; none given means the built-in baseline.
fn policy_set(given: Vec<(String, PhiPolicy)>) -> Result<Vec<Arc<Policy>>, CheckError> {
    if given.is_empty() {
        let set = PolicySet::build(&[hipaa_baseline()]);
        return Ok(set.policies);
    }
    let mut sources: HashMap<String, String> = HashMap::new();
    for (source, p) in &given {
        let name = p.metadata.name.clone().unwrap_or_default();
        if let Some(first) = sources.insert(name.clone(), source.clone()) {
            return Err(CheckError::DuplicatePolicy {
                name,
                first,
                second: source.clone(),
            });
        }
    }
    let policies: Vec<PhiPolicy> = given.into_iter().map(|(_, p)| p).collect();
    let set = PolicySet::build(&policies);
    if let Some(r) = set.rejected.first() {
        return Err(CheckError::InvalidPolicy {
            source_ref: sources.get(&r.name).cloned().unwrap_or_default(),
            message: r.error.clone(),
        });
    }
    Ok(set.policies)
}

fn object_result(w: &Object, d: &Decision, source: &str) -> ObjectResult {
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
                citation: f.citation,
                path: f.path.clone(),
                message: f.message.clone(),
                remediation: f.remediation.clone(),
                mode: f.mode.as_str(),
            })
            .collect(),
        source: source.to_string(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The report as a developer reads it in a terminal.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let (mut admitted, mut denied, mut not_phi) = (0, 0, 0);
    let mut by_mode: [(Mode, usize); 3] = [(Mode::Enforce, 0), (Mode::Warn, 0), (Mode::Audit, 0)];
    for r in &report.results {
        let verdict = if !r.allowed {
            denied += 1;
            "DENIED"
        } else if r.phi {
            admitted += 1;
            "ADMITTED"
        } else {
            not_phi += 1;
            "NOT PHI"
        };
        let object = if r.namespace.is_empty() {
            format!("{} {}", r.kind, r.name)
        } else {
            format!("{} {}/{}", r.kind, r.namespace, r.name)
        };
        let count = if r.findings.is_empty() {
            String::new()
        } else {
            format!("  ({})", plural(r.findings.len(), "finding", "findings"))
        };
        let _ = writeln!(out, "{verdict:<8} {object}{count}  [{}]", r.source);
        for f in &r.findings {
            if let Some(slot) = by_mode.iter_mut().find(|(m, _)| m.as_str() == f.mode) {
                slot.1 += 1;
            }
            let _ = writeln!(
                out,
                "  {:<7}  {}  {}  {}: {}",
                f.mode, f.rule, f.citation, f.path, f.message
            );
            let _ = writeln!(out, "           fix: {}", f.remediation);
        }
    }
    for s in &report.skipped {
        match s.reason {
            SkipReason::ClusterState => {}
            SkipReason::KindNotJudged => {
                let object = if s.namespace.is_empty() {
                    format!("{} {}", s.kind, s.name)
                } else {
                    format!("{} {}/{}", s.kind, s.namespace, s.name)
                };
                let _ = writeln!(
                    out,
                    "SKIPPED  {object}  [{}]  {} ({})",
                    s.source, s.message, s.api_version
                );
            }
            SkipReason::FileSkipped => {
                let _ = writeln!(out, "SKIPPED  {}  {}", s.source, s.message);
            }
        }
    }
    let mut state: Vec<(&str, usize)> = Vec::new();
    for s in report
        .skipped
        .iter()
        .filter(|s| s.reason == SkipReason::ClusterState)
    {
        match state.iter_mut().find(|(k, _)| *k == s.kind) {
            Some(slot) => slot.1 += 1,
            None => state.push((&s.kind, 1)),
        }
    }
    let count = |r| report.skipped.iter().filter(|s| s.reason == r).count();
    let (not_judged, files) = (
        count(SkipReason::KindNotJudged),
        count(SkipReason::FileSkipped),
    );
    out.push('\n');
    if !state.is_empty() {
        state.sort();
        let kinds: Vec<String> = state.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = writeln!(out, "Read as cluster state: {}", kinds.join(", "));
    }
    if not_judged + files > 0 {
        let _ = writeln!(
            out,
            "Skipped: {} of kinds phi-guard does not judge, {} not Kubernetes manifests",
            plural(not_judged, "object", "objects"),
            plural(files, "file", "files"),
        );
    }
    let total: usize = by_mode.iter().map(|(_, n)| n).sum();
    let modes: Vec<String> = by_mode
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(m, n)| format!("{n} {}", m.as_str()))
        .collect();
    let _ = write!(
        out,
        "{}: {admitted} admitted, {denied} denied, {not_phi} not PHI; {}",
        plural(report.results.len(), "object", "objects"),
        plural(total, "finding", "findings"),
    );
    if !modes.is_empty() {
        let _ = write!(out, " ({})", modes.join(", "));
    }
    out.push('\n');
    out
}
