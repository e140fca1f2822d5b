//! The demo's child processes (`oncelog __demo-child`): a producer of numbered
//! records and a consumer that turns each into an output record, behaving as each
//! delivery mode says. Both may be killed at any instant and restarted; each picks
//! up from what it recorded or committed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use oncelog::{
    Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord, Store, StoreOptions,
    TopicPartition,
};

use super::{Mode, Role, INPUT, OUTPUT};
use crate::error::CliError;

/// Records per producer step (one transaction in exactly-once mode).
const CHUNK: u64 = 100;

/// Arguments of the hidden `__demo-child` subcommand.
#[derive(Args)]
pub struct Child {
    /// The store.
    #[arg(long)]
    dir: PathBuf,
    /// The delivery mode.
    #[arg(long, value_enum)]
    mode: Mode,
    /// The role.
    #[arg(long, value_enum)]
    role: Role,
    /// Input records in all.
    #[arg(long)]
    records: u64,
    /// Process the first record twice (see `Demo::sabotage`).
    #[arg(long)]
    sabotage: bool,
}

/// Runs one child until its work is done.
pub fn child(args: Child) -> Result<ExitCode, CliError> {
    let store = Store::open(&args.dir, StoreOptions::default())?;
    match args.role {
        Role::Producer => produce(&store, &args.dir, args.mode, args.records)?,
        Role::Consumer => consume(&store, &args.dir, args.mode, args.sabotage)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes records `0..records` to `input`, each value its number.
///
/// * at-most-once: notes the next chunk as sent *before* sending it, and does not
///   retry: a chunk interrupted by a kill is skipped on restart (lost).
/// * at-least-once: notes a chunk as sent *after* it was acknowledged: a chunk
///   acknowledged but not yet noted is sent again on restart (duplicated).
/// * exactly-once: each chunk is a transaction; on restart `init_transactions`
///   aborts an interrupted one and the log says where to go on.
fn produce(store: &Store, dir: &Path, mode: Mode, records: u64) -> Result<(), CliError> {
    let progress = dir.join("producer.next");
    let mut config = vec![("delivery", mode.name())];
    if mode == Mode::ExactlyOnce {
        config.push(("transactional.id", "demo-producer"));
    }
    let producer = Producer::new(store, ProducerConfig::from_pairs(config)?)?;
    let mut next = match mode {
        Mode::ExactlyOnce => {
            producer.init_transactions()?;
            committed_input(store)?
        }
        _ => read_number(&progress)?,
    };
    while next < records {
        let end = (next + CHUNK).min(records);
        let values: Vec<String> = (next..end).map(|i| i.to_string()).collect();
        let send = |p: &Producer| -> Result<(), CliError> {
            for v in &values {
                p.send(ProducerRecord::new(INPUT, v.as_bytes()).partition(0))?;
            }
            p.flush()?;
            Ok(())
        };
        match mode {
            Mode::AtMostOnce => {
                write_number(&progress, end)?;
                // Whatever happens to this chunk, it is not sent again.
                let _ = send(&producer);
            }
            Mode::AtLeastOnce => {
                send(&producer)?;
                write_number(&progress, end)?;
            }
            Mode::ExactlyOnce => {
                producer.begin_transaction()?;
                send(&producer)?;
                producer.commit_transaction()?;
            }
        }
        next = end;
    }
    producer.close()?;
    std::fs::write(dir.join("producer.done"), b"")?;
    Ok(())
}

/// Reads `input` and appends each record's value to `output` (its processing),
/// committing the input offsets as the mode says, until the producer is done and
/// everything it wrote was consumed.
fn consume(store: &Store, dir: &Path, mode: Mode, sabotage: bool) -> Result<(), CliError> {
    let config = ConsumerConfig::from_pairs([
        ("group.id", "demo"),
        ("delivery", mode.name()),
        ("auto.offset.reset", "earliest"),
        ("max.poll.records", "100"),
    ])?;
    let mut consumer = Consumer::new(store, config)?;
    let tp = TopicPartition::new(INPUT, 0);
    consumer.assign(std::slice::from_ref(&tp))?;
    let mut out_config = vec![("delivery", mode.name())];
    if mode == Mode::ExactlyOnce {
        out_config.push(("transactional.id", "demo-consumer"));
    }
    let producer = Producer::new(store, ProducerConfig::from_pairs(out_config)?)?;
    if mode == Mode::ExactlyOnce {
        producer.init_transactions()?;
    }
    let input = store.partition(INPUT, 0)?;
    let done_file = dir.join("producer.done");
    loop {
        let mut batch = consumer.poll(Duration::from_millis(20))?;
        if sabotage && batch.first().is_some_and(|r| r.offset == 0) {
            batch.insert(0, batch[0].clone());
        }
        if batch.is_empty() {
            if done_file.exists() && consumer.position(&tp)? >= input.end_offset() {
                break;
            }
            continue;
        }
        match mode {
            Mode::AtMostOnce | Mode::AtLeastOnce => {
                // at-most-once: the offsets were committed by `poll`, before this;
                // at-least-once: they are committed by the next `poll`, after it.
                for r in &batch {
                    let value = r.value.as_deref().unwrap_or_default();
                    producer.send(ProducerRecord::new(OUTPUT, value).partition(0))?;
                }
                producer.flush()?;
            }
            Mode::ExactlyOnce => {
                let group = consumer.group_metadata()?;
                producer.begin_transaction()?;
                for r in &batch {
                    let value = r.value.as_deref().unwrap_or_default();
                    producer.send(ProducerRecord::new(OUTPUT, value).partition(0))?;
                }
                let next = batch.last().map_or(0, |r| r.offset + 1);
                let sent = producer
                    .send_offsets_to_transaction_for(&[(tp.clone(), next)], &group)
                    .and_then(|()| producer.commit_transaction());
                if let Err(e) = sent {
                    if !e.txn_requires_abort() {
                        return Err(e.into());
                    }
                    producer.abort_transaction()?;
                    consumer.seek_to_committed()?;
                }
            }
        }
    }
    consumer.close()?;
    producer.close()?;
    Ok(())
}

/// How many input records committed transactions hold (the exactly-once
/// producer's progress: its records are written in order, each once).
fn committed_input(store: &Store) -> Result<u64, CliError> {
    let mut reader = store.partition(INPUT, 0)?.reader(0)?.read_committed(true);
    let mut n = 0u64;
    while let Some(batch) = reader.next_batch()? {
        if !batch.header().is_control() {
            n += batch.records().count() as u64;
        }
    }
    Ok(n)
}

fn read_number(path: &Path) -> Result<u64, CliError> {
    match std::fs::read_to_string(path) {
        Ok(s) => s
            .trim()
            .parse()
            .map_err(|_| CliError::failed(format!("{}: not a number: {s:?}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Replaces the number in `path` (a rename, so a kill leaves the old or the new).
fn write_number(path: &Path, n: u64) -> Result<(), CliError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, n.to_string())?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
