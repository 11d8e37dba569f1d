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
object would be denied, 2 the inputs could not be judged (missing file, YAML error, invalid \
policy)."
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
    #[error("no objects to check in the given files (phi-guard judges Pods, pod controllers, PersistentVolumeClaims, Services and Ingresses)")]
    NothingToCheck,
}

/// The verdicts on every checkable object, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub results: Vec<ObjectResult>,
}

/// The verdict on one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectResult {
    pub kind: &'static str,
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
    let inputs = read_inputs(&args.files)?;
    let state_docs = files::read_documents(&args.cluster_state)?;
    let policy_docs = files::read_documents(&args.policies)?;

    // Policies: --policy files, plus PhiPolicies among the cluster state and the inputs.
    let mut given: Vec<(String, PhiPolicy)> = Vec::new();
    for d in &policy_docs {
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
    for d in state_docs.iter().chain(&inputs) {
        if files::is_phi_policy(d) {
            given.push((d.source.clone(), read_policy(d)?));
        }
    }
    let policies = policy_set(given)?;

    // Cluster state: --cluster-state first, then the inputs (which win on a name clash).
    let state = ClusterState::new();
    let not_policy = |d: &&Document| !files::is_phi_policy(d);
    let cluster_docs: Vec<Document> = state_docs
        .iter()
        .chain(&inputs)
        .filter(not_policy)
        .cloned()
        .collect();
    files::load_state(&cluster_docs, &state)?;

    let mut results = Vec::new();
    for d in &inputs {
        let Some(kind) = Kind::from_api_version_kind(&d.api_version, &d.kind) else {
            continue;
        };
        if matches!(kind, Kind::Namespace | Kind::NetworkPolicy) {
            continue; // cluster state, judged only as changes by the webhook
        }
        let w = Object::from_value(kind, &d.value, Some(DEFAULT_NAMESPACE)).map_err(|e| {
            CheckError::Input {
                source_ref: d.source.clone(),
                message: e.to_string(),
            }
        })?;
        let decision = engine::evaluate(&w, &state, &policies);
        results.push(object_result(&w, &decision, &d.source));
    }
    if results.is_empty() {
        return Err(CheckError::NothingToCheck);
    }
    Ok(Report { results })
}

/// Read the `-f` inputs in order; `-` is standard input (e.g. `helm template ... | phi-guard check -f -`).
fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Document>, CheckError> {
    let mut docs = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| FileError::Io {
                    path: "<stdin>".into(),
                    source: e,
                })?;
            files::parse_documents("<stdin>", &text, &mut docs)?;
        } else {
            docs.extend(files::read_documents(std::slice::from_ref(p))?);
        }
    }
    Ok(docs)
}

/// Decode a PhiPolicy document, naming the field when its shape is wrong (an unknown mode, a
/// string where a list belongs), as the API server's schema validation would.
fn read_policy(d: &Document) -> Result<PhiPolicy, CheckError> {
    serde_path_to_error::deserialize::<_, PhiPolicy>(&d.value).map_err(|e| {
        CheckError::InvalidPolicy {
            source_ref: d.source.clone(),
            message: format!("PhiPolicy {:?}: {}: {}", d.name(), e.path(), e.inner()),
        }
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
        kind: w.kind.as_str(),
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
    let total: usize = by_mode.iter().map(|(_, n)| n).sum();
    let modes: Vec<String> = by_mode
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(m, n)| format!("{n} {}", m.as_str()))
        .collect();
    let _ = write!(
        out,
        "\n{}: {admitted} admitted, {denied} denied, {not_phi} not PHI; {}",
        plural(report.results.len(), "object", "objects"),
        plural(total, "finding", "findings"),
    );
    if !modes.is_empty() {
        let _ = write!(out, " ({})", modes.join(", "));
    }
    out.push('\n');
    out
}
