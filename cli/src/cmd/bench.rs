//! `bench`.

use std::process::ExitCode;

use clap::Args;

use crate::error::CliError;

/// Arguments of `bench`.
#[derive(Args)]
pub struct Bench {
    /// Tiny sizes: a smoke test, not a measurement.
    #[arg(long)]
    pub quick: bool,
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark.
pub fn run(_args: Bench) -> Result<ExitCode, CliError> {
    Err(CliError::failed("bench is not built yet"))
}
