//! `groups`.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::error::CliError;

/// Arguments of `groups`.
#[derive(Args)]
pub struct Groups {
    #[command(subcommand)]
    pub action: Action,
}

/// What to do with groups.
#[derive(Subcommand)]
pub enum Action {
    /// The groups with committed offsets or live members.
    List,
    /// A group's members, generation, and per partition its committed offset and lag.
    Describe {
        /// The group.
        group: String,
    },
    /// Move a group's committed offsets (while no member is live).
    ResetOffsets {
        /// The group.
        group: String,
        /// The topic.
        #[arg(long)]
        topic: String,
        /// To the first offset of each partition.
        #[arg(long, conflicts_with_all = ["to_latest", "to_offset"])]
        to_earliest: bool,
        /// To the end of each partition.
        #[arg(long, conflicts_with = "to_offset")]
        to_latest: bool,
        /// To this offset (needs --partition).
        #[arg(long, requires = "partition")]
        to_offset: Option<i64>,
        /// Only this partition.
        #[arg(long)]
        partition: Option<u32>,
    },
}

/// Runs the groups action.
pub fn run(_store: &Path, _args: Groups) -> Result<ExitCode, CliError> {
    Err(CliError::failed("groups is not built yet"))
}
