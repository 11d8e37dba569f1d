//! `phi-guard check`: judge manifests offline (TODO).

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Manifest file or directory (multi-document YAML, `kind: List` too). Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
}

/// Run `check`.
pub fn run(_args: CheckArgs) -> ExitCode {
    ExitCode::from(2)
}
