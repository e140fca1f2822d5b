//! `produce`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use crate::error::CliError;

/// Arguments of `produce`.
#[derive(Args)]
pub struct Produce {
    /// The topic.
    pub topic: String,
    /// The partition (default: Kafka's partitioner: the key's hash, or sticky).
    #[arg(long)]
    pub partition: Option<u32>,
    /// Split each line at the first SEP into key and value.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header on every record (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Durability: none, written or synced (Kafka's 0, 1, all).
    #[arg(long, default_value = "written")]
    pub acks: String,
    /// Produce all lines in one transaction with this transactional id.
    #[arg(long)]
    pub transactional_id: Option<String>,
}

/// Produces stdin's lines.
pub fn run(_store: &Path, _args: Produce) -> Result<ExitCode, CliError> {
    Err(CliError::failed("produce is not built yet"))
}
