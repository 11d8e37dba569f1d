#![forbid(unsafe_code)]
//! The phi-guard binary: parse arguments, install the rustls crypto provider, run a subcommand.

use std::process::ExitCode;

use clap::Parser;

// mimalloc returns freed memory to the OS promptly (the relist and file-load peaks do not stay
// resident) and is faster than glibc malloc for the many small allocations of a review.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // One process-wide TLS provider (ring), for the webhook listener and the kube client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    phi_guard::cli::run(phi_guard::cli::Cli::parse())
}
