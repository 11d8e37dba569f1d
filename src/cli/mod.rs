//! Command line: `serve` (the webhook), `check` (offline, for CI pipelines), `crd`.

pub mod check;
pub mod duration;
mod junit;
mod sarif;
pub mod serve;
pub mod tls;

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
    /// Print the PhiPolicy CustomResourceDefinition as YAML.
    Crd,
}

/// Run the chosen subcommand; the exit code is the process's.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Check(args) => check::run(args),
        Command::Crd => match crd_yaml() {
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

/// The PhiPolicy CRD as YAML, exactly what `crds/` holds.
pub fn crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    use kube::CustomResourceExt;
    let crd = crate::policy::PhiPolicy::crd();
    // Multi-line descriptions as literal blocks, long lines never folded: what kubectl and a
    // diff read best (and what `crds/` has always held).
    let options = serde_saphyr::ser_options! { folded_wrap_chars: 100_000 };
    serde_saphyr::to_string_with_options(&crd, options)
}
