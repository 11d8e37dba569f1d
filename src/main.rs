#![forbid(unsafe_code)]
//! The phi-guard binary: parse arguments, install the rustls crypto provider, run a subcommand.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // One process-wide TLS provider (ring), for the webhook listener and the kube client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    phi_guard::cli::run(phi_guard::cli::Cli::parse())
}
