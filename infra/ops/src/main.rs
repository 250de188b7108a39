//! `clerk-sync-ops`: parses the command line, resolves the target, runs one subcommand, prints
//! its one-line summary and exits with its code (see `--help`).

use std::process::ExitCode;

use clap::Parser;
use clerk_sync_ops::cli::Cli;
use clerk_sync_ops::{exit, run};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    let code = match run::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("clerk-sync-ops: {e:#}");
            exit::ERROR
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Warnings and errors on stderr (`RUST_LOG` for more).
fn init_logs() {
    use std::io::IsTerminal;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|d| tracing_subscriber::EnvFilter::try_new(d).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
