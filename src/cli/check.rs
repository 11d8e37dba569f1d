//! `phi-guard check`: judge manifest files offline with the same engine the webhook runs, so a
//! developer or a CI pipeline learns every finding before deploying.
//!
//! Inputs: the manifests under review (`-f`), optional PhiPolicies (`--policy`) and optional
//! cluster state (`--cluster-state`: StorageClasses, Namespaces, NetworkPolicies, ...). Cluster
//! objects among the manifests count as cluster state too, and so do PhiPolicies; when no policy
//! is given anywhere, the built-in hipaa-baseline applies.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

pub(crate) use super::judging::Judged;
use super::judging::{Judging, DEFAULT_NAMESPACE};
pub use super::results::{CheckError, FindingResult, ObjectResult, Report, SkipReason, Skipped};
use crate::cluster::files::{self, Document, FileError};
use crate::policy::Mode;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Without a PhiPolicy (--policy, or among the -f and --cluster-state files) \
the built-in hipaa-baseline applies.\n\nExit status: 0 every object would be admitted, 1 some \
object would be denied, 2 the inputs could not be judged (missing or unreadable file, YAML \
or JSON error, duplicate key, an object that does not decode, namespace conflict with -n, \
invalid policy, no Kubernetes object at all). Objects of kinds phi-guard does not judge are \
listed as skipped and do not change the exit status.\n\nWhat-if for a policy change: \
`--from-cluster --policy proposed.yaml` (the cluster's workloads), or `-f ... --proposed \
proposed.yaml` (files), judges every workload under the PhiPolicies in force and again with \
the proposed ones replacing those of the same name, and lists what changes. Exit status: 0 no \
workload would newly be denied, 1 some would, 2 the inputs could not be judged."
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
        required_unless_present = "from_cluster",
        conflicts_with = "from_cluster"
    )]
    pub files: Vec<PathBuf>,

    /// Judge the live cluster's workloads (KUBECONFIG, or the in-cluster service account),
    /// with its state, PhiPolicies and PhiExceptions, as `report --from-cluster` reads them.
    /// With `--policy`, a what-if: the given PhiPolicies are the proposal, judged next to the
    /// ones in force.
    #[arg(long, conflicts_with = "cluster_state")]
    pub from_cluster: bool,

    /// Proposed PhiPolicy file or directory (what-if): every workload is judged under the
    /// policies in force (the -f, --policy and --cluster-state ones, else the built-in
    /// baseline) and again with these replacing the ones of the same name (or added), and
    /// what changes is listed. Repeatable.
    #[arg(
        long = "proposed",
        env = "PHI_GUARD_CHECK_PROPOSED",
        value_name = "FILE"
    )]
    pub proposed: Vec<PathBuf>,

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

    /// Output format: `text` for people, `json` for pipelines, `sarif` for code scanning
    /// (GitHub), `junit` for CI test reports (GitLab, Jenkins).
    #[arg(
        short = 'o',
        long = "output",
        env = "PHI_GUARD_CHECK_OUTPUT",
        value_enum,
        default_value_t = OutputFormat::Text
    )]
    pub output: OutputFormat,

    /// Largest input read, in MiB: each file (-f, --policy, --cluster-state) and standard
    /// input, and so each document in them. Far above any real manifest; a larger input is an
    /// error (exit 2), as is a FIFO, device or socket, named or found in a directory.
    #[arg(
        long = "max-file-mib",
        env = "PHI_GUARD_CHECK_MAX_FILE_MIB",
        value_name = "MIB",
        default_value_t = files::DEFAULT_MAX_FILE_MIB
    )]
    pub max_file_mib: u64,
}

/// How `check` prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A verdict line per object, a line per finding with its citation and fix, a summary.
    Text,
    /// `{"results":[{"kind","namespace","name","phi","allowed","findings":[...]}]}`.
    Json,
    /// SARIF 2.1.0 (GitHub code scanning): a result per finding at its file, line and column.
    Sarif,
    /// JUnit XML (GitLab, Jenkins): a test suite per file, a test case per object.
    Junit,
}

/// Run `check`: 0 when everything would be admitted, 1 when something would be denied, 2 when
/// the inputs could not be judged.
pub fn run(args: CheckArgs) -> ExitCode {
    let judged = match check_judged(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // SARIF carries the mechanical fixes, as `phi-guard fix` would write them.
    let plan = match args.output {
        OutputFormat::Sarif => {
            super::fix_plan::plan_for_report(&args.files, args.max_file_mib, &judged)
        }
        _ => Default::default(),
    };
    let report = judged.report;
    let written = match args.output {
        OutputFormat::Text => print_text(&report),
        // Streamed to standard output: a report of tens of thousands of objects is never
        // held as one string (it is several times the size of its input).
        OutputFormat::Json => print_json(&report),
        OutputFormat::Sarif => print_json(&super::sarif::render(
            &report,
            report.stdin.as_deref(),
            &plan,
        )),
        OutputFormat::Junit => print(&super::junit::render(&report)),
    };
    if !written {
        return ExitCode::from(2);
    }
    if report.all_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Write `text` to standard output; false (said on standard error) when it could not be
/// written. A closed pipe (`phi-guard check ... | head`) is not an error worth a panic: the
/// verdict still decides the exit code.
pub(crate) fn print(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the report: {e}");
            return false;
        }
    }
    true
}

/// Write `value` as pretty JSON to standard output as it is encoded, then a newline; false
/// (said on standard error) when it could not be encoded or written. A closed pipe is not an
/// error, as in [`print`].
pub(crate) fn print_json(value: &impl serde::Serialize) -> bool {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let written = match serde_json::to_writer_pretty(&mut out, value) {
        Ok(()) => out.write_all(b"\n").and_then(|()| out.flush()),
        Err(e) => match e.io_error_kind() {
            Some(kind) => Err(std::io::Error::from(kind)),
            None => {
                eprintln!("error: cannot encode the report: {e}");
                return false;
            }
        },
    };
    written_or_said(written)
}

/// Whether the report was written; a closed pipe counts as written, any other error is said
/// on standard error.
fn written_or_said(written: std::io::Result<()>) -> bool {
    match written {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => true,
        Err(e) => {
            eprintln!("error: cannot write the report: {e}");
            false
        }
    }
}

/// Read the inputs, build cluster state and policies, judge every checkable object.
///
/// The `-f` inputs are read one document at a time: each is loaded as cluster state, kept as
/// a policy or exception, listed as skipped or decoded into the lean object that is judged,
/// and its tree is dropped (memory stays near the cluster state, not the parsed repository).
/// Judging waits until everything is read, so an object is judged against every policy and
/// all the state.
pub fn check(args: &CheckArgs) -> Result<Report, CheckError> {
    check_judged(args).map(|j| j.report)
}

/// [`check`], with the policies and cluster state the objects were judged against.
pub(crate) fn check_judged(args: &CheckArgs) -> Result<Judged, CheckError> {
    let (judging, skipped_files, stdin) = read_all(args)?;
    let mut judged = judging.finish()?;
    judged.report.skipped.extend(skipped_files);
    judged.report.stdin = stdin.filter(|_| args.output == OutputFormat::Sarif);
    Ok(judged)
}

/// Read every input of a files run: the judging to finish, the files skipped, standard input.
pub(crate) fn read_all(
    args: &CheckArgs,
) -> Result<(Judging, Vec<Skipped>, Option<String>), CheckError> {
    let max_bytes = args.max_file_mib.saturating_mul(files::MIB);
    let state_docs = files::read_documents(&args.cluster_state, max_bytes)?;
    let policy_docs = files::read_documents(&args.policies, max_bytes)?;
    let mut judging = Judging::new(&state_docs, &policy_docs)?;
    drop(state_docs);
    let mut first_error: Option<CheckError> = None;
    let read = read_inputs(&args.files, max_bytes, &mut |mut d| {
        if first_error.is_some() {
            return Ok(());
        }
        let outcome = apply_namespace(std::slice::from_mut(&mut d), args.namespace.as_deref())
            .and_then(|()| judging.take(d));
        if let Err(e) = outcome {
            first_error = Some(e);
        }
        Ok(())
    });
    if let Some(e) = first_error {
        return Err(e);
    }
    let (skipped_files, stdin) = read?;
    let skipped = skipped_files
        .into_iter()
        .map(|s| Skipped {
            kind: String::new(),
            api_version: String::new(),
            namespace: String::new(),
            name: String::new(),
            source: s.source,
            reason: SkipReason::FileSkipped,
            message: s.reason,
        })
        .collect();
    Ok((judging, skipped, stdin))
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

/// Read the `-f` inputs in order, handing each document to `f`; `-` is standard input (e.g.
/// `helm template ... | phi-guard check -f -`). Returns what was skipped and the text of
/// standard input.
fn read_inputs(
    paths: &[PathBuf],
    max_bytes: u64,
    f: &mut dyn FnMut(Document) -> Result<(), FileError>,
) -> Result<(Vec<files::SkippedInput>, Option<String>), CheckError> {
    let mut reader = files::Reader::with_max_bytes(max_bytes);
    let mut stdin = None;
    for p in paths {
        if p.as_os_str() == "-" {
            let bytes = files::read_bounded(std::io::stdin().lock(), "<stdin>", max_bytes)?;
            let text = String::from_utf8(bytes).map_err(|_| FileError::Io {
                path: "<stdin>".into(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
            })?;
            reader.read_text_each("<stdin>", &text, files::Origin::Named, f)?;
            stdin = Some(text);
        } else {
            reader.read_path_each(p, f)?;
        }
    }
    Ok((reader.skipped, stdin))
}

/// `Kind namespace/name` for the text output; an object without a name (`name: ""`, or only
/// `generateName`) says so instead of ending in a bare `namespace/`.
fn object_label(kind: &str, namespace: &str, name: &str) -> String {
    let name = if name.is_empty() {
        "(no metadata.name)"
    } else {
        name
    };
    if namespace.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {namespace}/{name}")
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The report as a developer reads it in a terminal.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    write_text(report, &mut out);
    out
}

/// Write the text report to standard output as it is rendered (a report of 20,000 objects
/// is tens of megabytes: never held whole); false (said on standard error) when it could not
/// be written. A closed pipe is not an error, as in [`print`].
fn print_text(report: &Report) -> bool {
    struct Out<W: std::io::Write> {
        w: W,
        error: Option<std::io::Error>,
    }
    impl<W: std::io::Write> std::fmt::Write for Out<W> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            if self.error.is_some() {
                return Err(std::fmt::Error);
            }
            self.w.write_all(s.as_bytes()).map_err(|e| {
                self.error = Some(e);
                std::fmt::Error
            })
        }
    }
    let mut out = Out {
        w: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock()),
        error: None,
    };
    write_text(report, &mut out);
    let result = match out.error.take() {
        Some(e) => Err(e),
        None => std::io::Write::flush(&mut out.w),
    };
    written_or_said(result)
}

fn write_text(report: &Report, out: &mut impl std::fmt::Write) {
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
        let object = object_label(&r.kind, &r.namespace, &r.name);
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
                "  {:<7}  {}/{}  {}  {}: {}",
                f.mode, f.rule, f.reason, f.citation, f.path, f.message
            );
            let _ = writeln!(out, "           fix: {}", f.remediation);
        }
    }
    for s in &report.skipped {
        match s.reason {
            SkipReason::ClusterState => {}
            SkipReason::KindNotJudged => {
                let object = object_label(&s.kind, &s.namespace, &s.name);
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
    let _ = out.write_char('\n');
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
    for a in &report.assumed {
        let _ = writeln!(out, "Assumed: {a}");
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
    let _ = out.write_char('\n');
}
