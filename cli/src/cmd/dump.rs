//! `dump`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::error::CliError;

/// Arguments of `dump`.
#[derive(Args)]
pub struct Dump {
    /// A segment's `.log` file.
    pub segment: PathBuf,
    /// Print every record of each batch too.
    #[arg(long)]
    pub records: bool,
}

/// Prints the segment's batches.
pub fn run(_args: Dump) -> Result<ExitCode, CliError> {
    Err(CliError::failed("dump is not built yet"))
}
