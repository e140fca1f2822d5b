//! `create-topic`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use oncelog::{Store, StoreOptions, TopicConfig};

use crate::error::CliError;
use crate::output::key_value;

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

/// Creates the topic, and the store directory if it is missing.
pub fn create(store: &Path, args: CreateTopic) -> Result<ExitCode, CliError> {
    let pairs = args
        .config
        .iter()
        .map(|c| key_value(c, "--config"))
        .collect::<Result<Vec<_>, _>>()?;
    // Everything the user gave is checked before anything is created on disk.
    oncelog::topic::validate_name(&args.name).map_err(CliError::argument)?;
    if oncelog::topic::is_internal(&args.name) {
        return Err(CliError::usage(format!(
            "topic name {:?} is reserved for oncelog's own use",
            args.name
        )));
    }
    TopicConfig::from_pairs(pairs.iter().copied()).map_err(CliError::argument)?;
    if args.partitions == 0 || args.partitions > oncelog::topic::MAX_PARTITIONS {
        return Err(CliError::usage(format!(
            "--partitions must be between 1 and {}, not {}",
            oncelog::topic::MAX_PARTITIONS,
            args.partitions
        )));
    }
    let is_empty_dir = |d: &Path| std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_none());
    if store.exists() && !store.join("oncelog.meta").exists() && !is_empty_dir(store) {
        return Err(CliError::failed(format!(
            "{} exists and is not an oncelog store (it has no oncelog.meta); choose a new or empty directory",
            store.display()
        )));
    }
    let s = Store::open(store, StoreOptions::default())?;
    let meta = s
        .create_topic_with(&args.name, args.partitions, &pairs)
        .map_err(CliError::argument)?;
    s.close()?;
    let plural = if meta.partitions == 1 { "" } else { "s" };
    println!(
        "created topic {} with {} partition{plural}",
        meta.name, meta.partitions
    );
    Ok(ExitCode::SUCCESS)
}
