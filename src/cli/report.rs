//! `phi-guard report`: the auditor's evidence. Judges what a cluster runs (`--from-cluster`,
//! through the kubeconfig or the in-cluster account) or manifest files (as `check` does) and
//! writes `phi-guard-evidence.html` and `phi-guard-evidence.json` (and a PDF through headless
//! Chromium with `--pdf`): per HIPAA citation what phi-guard checks, every PHI workload's status
//! per rule, the exceptions with ticket and expiry, and the policies in force.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::judging::{judge_documents, Judged};
use super::what_if;
use crate::cluster::files::{self, Document};
use crate::report::evidence;

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Manifest file or directory to report on (as `check -f`); repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// PhiPolicy files (files mode; default: the PhiPolicies among the files, else the
    /// built-in hipaa-baseline). With --from-cluster, the proposed PhiPolicies of a what-if
    /// (as --proposed).
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<PathBuf>,
    /// Proposed PhiPolicy files (what-if): also write phi-guard-what-if.txt and
    /// phi-guard-what-if.json, every workload judged under the policies in force and with
    /// these replacing the ones of the same name (as `check --proposed`).
    #[arg(long = "proposed", value_name = "FILE")]
    pub proposed: Vec<PathBuf>,
    /// Cluster objects rules consult (files mode), as `check --cluster-state`.
    #[arg(long = "cluster-state", value_name = "FILE")]
    pub cluster_state: Vec<PathBuf>,
    /// Read everything from the cluster (KUBECONFIG, or the in-cluster service account):
    /// workloads, the objects rules consult, PhiPolicies and PhiExceptions.
    #[arg(long)]
    pub from_cluster: bool,
    /// Directory for phi-guard-evidence.html and phi-guard-evidence.json.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Also write phi-guard-evidence.pdf with headless Chromium (auditors file PDFs).
    #[arg(long)]
    pub pdf: bool,
    /// The Chromium binary for --pdf.
    #[arg(long, env = "PHI_GUARD_CHROMIUM", default_value = "chromium")]
    pub chromium: PathBuf,
}

/// Run `report`: 0 written, 2 the inputs could not be read or the report not written.
pub fn run(args: ReportArgs) -> ExitCode {
    match report(&args) {
        Ok(paths) => {
            for p in paths {
                println!("{}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn report(args: &ReportArgs) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut extra = Vec::new();
    let (judged, generations, source) = match (args.from_cluster, args.files.is_empty()) {
        (true, true) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let (docs, generations, context) = rt.block_on(crate::cluster::snapshot::documents())?;
            let source = format!("cluster ({context})");
            let mut proposed = args.policies.clone();
            proposed.extend(args.proposed.iter().cloned());
            if !proposed.is_empty() {
                let w = what_if::from_documents(docs.clone(), &[], &[], &proposed, &source)?;
                extra.extend(what_if::write(&args.out, &w)?);
            }
            let judged = judge_documents(docs, &[], &[])?;
            (judged, generations, source)
        }
        (false, false) => {
            let mut reader = files::Reader::new();
            for p in &args.files {
                reader.read_path(p)?;
            }
            let max = files::DEFAULT_MAX_FILE_MIB * files::MIB;
            let state = files::read_documents(&args.cluster_state, max)?;
            let policies = files::read_documents(&args.policies, max)?;
            let generations = generations_of(&reader.docs);
            let names: Vec<String> = args.files.iter().map(|p| p.display().to_string()).collect();
            let source = format!("files {}", names.join(", "));
            if !args.proposed.is_empty() {
                let w = what_if::from_documents(
                    reader.docs.clone(),
                    &state,
                    &policies,
                    &args.proposed,
                    &source,
                )?;
                extra.extend(what_if::write(&args.out, &w)?);
            }
            let judged = judge_documents(reader.docs, &state, &policies)?;
            (judged, generations, source)
        }
        _ => anyhow::bail!("give either -f files or --from-cluster"),
    };
    let now = k8s_openapi::jiff::Timestamp::now();
    let e = evidence_of(
        &judged,
        &generations,
        now.as_second(),
        now.to_string(),
        source,
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let html = args.out.join("phi-guard-evidence.html");
    let json = args.out.join("phi-guard-evidence.json");
    std::fs::write(&html, evidence::to_html(&e))
        .with_context(|| format!("writing {}", html.display()))?;
    std::fs::write(&json, serde_json::to_string_pretty(&e)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let mut written = vec![html.clone(), json];
    written.append(&mut extra);
    if args.pdf {
        let pdf = args.out.join("phi-guard-evidence.pdf");
        let abs = std::fs::canonicalize(&html)?;
        let status = std::process::Command::new(&args.chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-pdf-header-footer",
            ])
            .arg(format!("--print-to-pdf={}", pdf.display()))
            .arg(format!("file://{}", abs.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .with_context(|| format!("running {} for --pdf", args.chromium.display()))?;
        anyhow::ensure!(
            status.success() && pdf.is_file(),
            "Chromium did not print the PDF ({status})"
        );
        written.push(pdf);
    }
    Ok(written)
}

fn generations_of(docs: &[Document]) -> BTreeMap<String, i64> {
    docs.iter()
        .filter(|d| files::is_phi_policy(d))
        .filter_map(|d| Some((d.name(), d.value.pointer("/metadata/generation")?.as_i64()?)))
        .collect()
}

fn evidence_of(
    j: &Judged,
    generations: &BTreeMap<String, i64>,
    now: i64,
    generated_at: String,
    source: String,
) -> evidence::Evidence {
    let judged: Vec<evidence::Judged<'_>> = j
        .report
        .results
        .iter()
        .map(|r| evidence::Judged {
            kind: &r.kind,
            namespace: &r.namespace,
            name: &r.name,
            phi: r.phi,
            findings: r
                .findings
                .iter()
                .map(|f| evidence::Found {
                    rule: f.rule,
                    path: &f.path,
                    mode: f.mode,
                    message: &f.message,
                    excepted: f.excepted,
                })
                .collect(),
        })
        .collect();
    evidence::build(
        &judged,
        &j.policies,
        generations,
        &j.exceptions,
        now,
        generated_at,
        source,
    )
}
