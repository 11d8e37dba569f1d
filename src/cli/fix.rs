//! `phi-guard fix`: judge the files as `check` does, then write the fixes that are mechanical
//! into them (see [`crate::fix`]): a unified diff on standard output by default, the files
//! changed with `--write`. What is a judgement stays a finding, listed on standard error.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::check::{self, CheckArgs, CheckError, OutputFormat};
use super::fix_plan::{plan, read};
use crate::cluster::files::{self, FileError};
use crate::fix::{self, Options, Plan, TransitForm};

/// Arguments of `fix`: `check`'s inputs, and the choices a fix needs.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Prints a unified diff (apply it with `git apply` or `patch -p1`), or \
changes the files with --write. New NetworkPolicies go to a new file beside the manifests. \
Findings that are a judgement (hostNetwork, an allow-all rule, a plaintext protocol ...) are \
listed on standard error and stay findings. Exit status: 0 done (or nothing to fix), 2 the \
inputs could not be judged or a file could not be written."
)]
pub struct FixArgs {
    /// Manifest file or directory to fix (YAML; JSON files are judged but not edited).
    /// Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,
    /// PhiPolicy file or directory, as for `check`. Repeatable.
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<PathBuf>,
    /// Cluster state, as for `check` (encrypting StorageClasses are chosen from it). Repeatable.
    #[arg(long = "cluster-state", value_name = "FILE")]
    pub cluster_state: Vec<PathBuf>,
    /// Namespace for objects that set none, as for `check`.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespace: Option<String>,
    /// Change the files instead of printing a diff.
    #[arg(long)]
    pub write: bool,
    /// The audit sidecar's image (approved by the policy; pin it by digest). Default: the first
    /// approved image the policy names without a wildcard.
    #[arg(long, value_name = "IMAGE")]
    pub sidecar_image: Option<String>,
    /// The in-transit evidence to add. Default: the first form the policy accepts (istio,
    /// ambient, linkerd, cert-manager, in that order).
    #[arg(long, value_enum, value_name = "FORM")]
    pub transit: Option<Transit>,
    /// The cert-manager issuer for `--transit cert-manager`, as `Kind/name`
    /// (e.g. `ClusterIssuer/clinic-ca`).
    #[arg(long, value_name = "KIND/NAME")]
    pub tls_issuer: Option<String>,
    /// Largest input read, in MiB, as for `check`.
    #[arg(long = "max-file-mib", value_name = "MIB", default_value_t = files::DEFAULT_MAX_FILE_MIB)]
    pub max_file_mib: u64,
}

/// `--transit` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transit {
    Istio,
    Ambient,
    Linkerd,
    CertManager,
}

/// Run `fix`.
pub fn run(args: FixArgs) -> ExitCode {
    match fix_files(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// What the run changes: each file's new text (or a new file's), by path.
pub(crate) struct Changes {
    pub plan: Plan,
    /// `(path, old text or None for a new file, new text)`.
    pub files: Vec<(String, Option<String>, String)>,
}

fn fix_files(args: &FixArgs) -> Result<(), CheckError> {
    let changes = changes(args)?;
    for n in &changes.plan.notes {
        eprintln!("{n}");
    }
    let mut out = std::io::stdout().lock();
    for (path, old, new) in &changes.files {
        if args.write {
            std::fs::write(path, new).map_err(|source| FileError::Io {
                path: path.into(),
                source,
            })?;
            eprintln!("wrote {path}");
        } else {
            let diff = unified_diff(path, old.as_deref(), new);
            if let Err(e) = out.write_all(diff.as_bytes()) {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(());
                }
                return Err(FileError::Io {
                    path: "<stdout>".into(),
                    source: e,
                }
                .into());
            }
        }
    }
    if changes.files.is_empty() {
        eprintln!("nothing to change");
    }
    Ok(())
}

/// Judge, plan and apply in memory.
pub(crate) fn changes(args: &FixArgs) -> Result<Changes, CheckError> {
    if args.files.iter().any(|f| f.as_os_str() == "-") {
        return Err(CheckError::Input {
            source_ref: "<stdin>".into(),
            message: "fix edits files: standard input cannot be fixed".into(),
        });
    }
    let check_args = CheckArgs {
        files: args.files.clone(),
        policies: args.policies.clone(),
        cluster_state: args.cluster_state.clone(),
        namespace: args.namespace.clone(),
        output: OutputFormat::Json,
        max_file_mib: args.max_file_mib,
        from_cluster: false,
        proposed: Vec::new(),
    };
    let judged = check::check_judged(&check_args)?;
    let options = Options {
        sidecar_image: args.sidecar_image.clone(),
        transit: args.transit.map(|t| match t {
            Transit::Istio => TransitForm::Istio,
            Transit::Ambient => TransitForm::Ambient,
            Transit::Linkerd => TransitForm::Linkerd,
            Transit::CertManager => TransitForm::CertManager,
        }),
        tls_issuer: args.tls_issuer.clone(),
    };
    let max_bytes = args.max_file_mib.saturating_mul(files::MIB);
    let docs = files::read_documents(&args.files, max_bytes)?;
    let values: BTreeMap<&str, &serde_json::Value> =
        docs.iter().map(|d| (d.source.as_str(), &d.value)).collect();
    let plan = plan(&judged.report, &values, &judged, &options)?;
    let mut files = Vec::new();
    for (path, edits) in &plan.files {
        let old = read(path)?;
        if let Some(new) = fix::edit::apply(&old, edits) {
            if new != old {
                files.push((path.clone(), Some(old), new));
            }
        }
    }
    let mut plan = plan;
    for n in &plan.new_files {
        match std::fs::read_to_string(&n.path) {
            Ok(existing) if existing == n.content => {}
            Ok(_) => plan.notes.push(format!(
                "{} exists with other content: not overwritten (the NetworkPolicies it would hold are above)",
                n.path
            )),
            Err(_) => files.push((n.path.clone(), None, n.content.clone())),
        }
    }
    Ok(Changes { plan, files })
}

/// A unified diff of one file (`--- a/path`, `+++ b/path`; a new file from /dev/null).
pub(crate) fn unified_diff(path: &str, old: Option<&str>, new: &str) -> String {
    let path = path.strip_prefix("./").unwrap_or(path);
    let from = match old {
        Some(_) => format!("a/{path}"),
        None => "/dev/null".to_string(),
    };
    similar::TextDiff::from_lines(old.unwrap_or(""), new)
        .unified_diff()
        .context_radius(3)
        .header(&from, &format!("b/{path}"))
        .to_string()
}
