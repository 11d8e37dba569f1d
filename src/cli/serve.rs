//! `phi-guard serve`: the admission webhook (TODO).

use std::process::ExitCode;

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Run `serve`.
pub fn run(_args: ServeArgs) -> ExitCode {
    ExitCode::from(2)
}
