//! Command line: `serve` (the webhook), `check` (offline, for CI pipelines), `fix` (the
//! mechanical fixes of `check`'s findings), `report`, `crd`.

pub mod check;
pub mod duration;
pub mod fix;
mod fix_plan;
pub(crate) mod judging;
mod junit;
pub mod report;
mod results;
mod sarif;
pub mod serve;
pub mod tls;
pub mod what_if;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// phi-guard: HIPAA guardrails for Kubernetes workloads that handle PHI.
#[derive(Debug, Parser)]
#[command(name = "phi-guard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the validating admission webhook.
    Serve(Box<serve::ServeArgs>),
    /// Judge manifest files offline with the same engine the webhook runs.
    Check(check::CheckArgs),
    /// Write the mechanical fixes of `check`'s findings into the files (a diff, or --write).
    Fix(fix::FixArgs),
    /// Write the auditor's evidence (HTML, JSON, optionally PDF) for a cluster or files.
    Report(report::ReportArgs),
    /// Print a CustomResourceDefinition as YAML (PhiPolicy, or PhiException with `--exception`).
    Crd {
        /// The PhiException CRD instead of the PhiPolicy one.
        #[arg(long)]
        exception: bool,
    },
}

/// Run the chosen subcommand; the exit code is the process's.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        // A what-if (a proposed policy, or the live cluster) compares two judgings.
        Command::Check(args) if args.from_cluster || !args.proposed.is_empty() => {
            what_if::run(&args)
        }
        Command::Check(args) => check::run(args),
        Command::Report(args) => report::run(args),
        Command::Fix(args) => fix::run(args),
        Command::Crd { exception } => match crd_yaml(exception) {
            Ok(y) => {
                print!("{y}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// A CRD as YAML, exactly what `crds/` holds: PhiPolicy, or PhiException with `exception`.
pub fn crd_yaml(exception: bool) -> Result<String, serde_saphyr::SerializeError> {
    use kube::CustomResourceExt;
    let crd = if exception {
        crate::policy::exception::PhiException::crd()
    } else {
        crate::policy::PhiPolicy::crd()
    };
    // Multi-line descriptions as literal blocks, long lines never folded: what kubectl and a
    // diff read best (and what `crds/` has always held).
    let options = serde_saphyr::ser_options! { folded_wrap_chars: 100_000 };
    serde_saphyr::to_string_with_options(&crd, options)
}
