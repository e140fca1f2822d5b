//! `consume`.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::error::CliError;

/// How records are printed.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// The value (with `--print-key`, key and value separated by a tab).
    Text,
    /// One JSON object per record.
    Json,
    /// Key and value in hex.
    Hex,
}

/// Arguments of `consume`.
#[derive(Args)]
pub struct Consume {
    /// The topic.
    pub topic: String,
    /// Only this partition (default: all).
    #[arg(long)]
    pub partition: Option<u32>,
    /// Start at the first record.
    #[arg(long, conflicts_with_all = ["offset", "timestamp", "group"])]
    pub from_beginning: bool,
    /// Start at this offset (needs --partition).
    #[arg(long, requires = "partition", conflicts_with_all = ["timestamp", "group"])]
    pub offset: Option<i64>,
    /// Start at the first record at or after this time (ms since the Unix epoch).
    #[arg(long, conflicts_with = "group")]
    pub timestamp: Option<i64>,
    /// Start at this consumer group's committed position (and commit as it reads).
    #[arg(long)]
    pub group: Option<String>,
    /// Keep waiting for new records.
    #[arg(long)]
    pub follow: bool,
    /// read_committed or read_uncommitted.
    #[arg(long, default_value = "read_uncommitted")]
    pub isolation: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Print keys too (text format).
    #[arg(long)]
    pub print_key: bool,
    /// Stop after N records.
    #[arg(long)]
    pub max: Option<u64>,
}

/// Prints the topic's records.
pub fn run(_store: &Path, _args: Consume) -> Result<ExitCode, CliError> {
    Err(CliError::failed("consume is not built yet"))
}
