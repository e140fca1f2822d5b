//! `verify`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use crate::error::CliError;

/// Arguments of `verify`.
#[derive(Args)]
pub struct Verify {
    /// Only this topic.
    #[arg(long)]
    pub topic: Option<String>,
}

/// Checks every batch and index.
pub fn run(_store: &Path, _args: Verify) -> Result<ExitCode, CliError> {
    Err(CliError::failed("verify is not built yet"))
}
