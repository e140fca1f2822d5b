//! `create-topic`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use crate::error::CliError;

/// Arguments of `create-topic`.
#[derive(Args)]
pub struct CreateTopic {
    /// The topic name (Kafka's rules: letters, digits, '.', '_', '-').
    pub name: String,
    /// Number of partitions.
    #[arg(long, default_value_t = 1)]
    pub partitions: u32,
    /// A topic config entry, Kafka's names (repeatable), e.g. segment.bytes=1048576.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
}

/// Creates the topic.
pub fn create(_store: &Path, _args: CreateTopic) -> Result<ExitCode, CliError> {
    Err(CliError::failed("create-topic is not built yet"))
}
