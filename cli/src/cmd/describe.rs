//! `describe`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use crate::error::CliError;

/// Arguments of `describe`.
#[derive(Args)]
pub struct Describe {
    /// Only this topic.
    #[arg(long)]
    pub topic: Option<String>,
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Prints the store's topics and partitions.
pub fn run(_store: &Path, _args: Describe) -> Result<ExitCode, CliError> {
    Err(CliError::failed("describe is not built yet"))
}
