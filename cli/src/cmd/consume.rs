//! `consume`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use oncelog::{Consumer, ConsumerConfig, ConsumerRecord, Store, TopicPartition};

use crate::error::CliError;
use crate::output::{counter, hex, json_str, open_store, Out};

/// How records are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The value as it is, one record per line (with `--print-key`, the key, a tab,
    /// then the value); a null key or value prints as `null`.
    Text,
    /// One JSON object per line: topic, partition, offset, timestamp, key, value,
    /// headers. Bytes that are not UTF-8 come as `key_hex` / `value_hex` instead.
    Json,
    /// As text, with key and value in hex.
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
    /// Start at the first record (with --group: when the group has no committed
    /// offset). Without --from-beginning, --offset, --timestamp or --group, only
    /// records appended from now on are printed (as kafka-console-consumer does).
    #[arg(long, conflicts_with_all = ["offset", "timestamp"])]
    pub from_beginning: bool,
    /// Start at this offset (needs --partition).
    #[arg(long, requires = "partition", conflicts_with_all = ["timestamp", "group"])]
    pub offset: Option<i64>,
    /// Start at the first record at or after this time (ms since the Unix epoch).
    #[arg(long, conflicts_with = "group")]
    pub timestamp: Option<i64>,
    /// Start at this consumer group's committed position, and commit the position
    /// past the records printed as it goes (after each batch it prints). Joins the
    /// group (its live members share the partitions) unless --partition is given.
    #[arg(long)]
    pub group: Option<String>,
    /// Keep waiting for new records (otherwise exit at the end of the data: the
    /// end offset, or the last stable offset with read_committed).
    #[arg(long)]
    pub follow: bool,
    /// read_committed or read_uncommitted.
    #[arg(long, default_value = "read_uncommitted")]
    pub isolation: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Print keys too (text and hex formats).
    #[arg(long)]
    pub print_key: bool,
    /// Stop after N records.
    #[arg(long)]
    pub max: Option<u64>,
}

/// How long one poll waits for records.
const POLL: Duration = Duration::from_millis(200);

/// Prints the topic's records.
pub fn run(store: &Path, args: Consume) -> Result<ExitCode, CliError> {
    let isolation = match args.isolation.as_str() {
        "read_committed" | "read_uncommitted" => args.isolation.as_str(),
        other => {
            return Err(CliError::usage(format!(
                "--isolation must be read_committed or read_uncommitted, not {other:?}"
            )))
        }
    };
    if args.max == Some(0) {
        return Ok(ExitCode::SUCCESS);
    }
    let s = open_store(store)?;
    let meta = s.topic(&args.topic)?;
    if let Some(p) = args.partition.filter(|p| *p >= meta.partitions) {
        return Err(CliError::failed(format!(
            "topic {} has {} partitions; there is no partition {p}",
            meta.name, meta.partitions
        )));
    }
    let tps: Vec<TopicPartition> = match args.partition {
        Some(p) => vec![TopicPartition::new(&meta.name, p)],
        None => (0..meta.partitions)
            .map(|p| TopicPartition::new(&meta.name, p))
            .collect(),
    };
    let mut pairs = vec![("isolation.level", isolation)];
    if let Some(group) = &args.group {
        pairs.push(("group.id", group));
        pairs.push(("enable.auto.commit", "false"));
        pairs.push((
            "auto.offset.reset",
            if args.from_beginning {
                "earliest"
            } else {
                "latest"
            },
        ));
    }
    let config = ConsumerConfig::from_pairs(pairs).map_err(CliError::argument)?;
    let read_committed = isolation == "read_committed";
    let mut consumer = Consumer::new(&s, config)?;
    match (&args.group, args.partition) {
        (Some(_), None) => consumer.subscribe(&[meta.name.as_str()])?,
        _ => consumer.assign(&tps)?,
    }
    if args.group.is_none() {
        for tp in &tps {
            let p = s.partition(&tp.topic, tp.partition)?;
            let start = if args.from_beginning {
                p.start_offset()
            } else if let Some(o) = args.offset {
                o
            } else if let Some(t) = args.timestamp {
                p.offset_for_timestamp(t)?.unwrap_or_else(|| p.end_offset())
            } else {
                p.end_offset()
            };
            consumer.seek(tp, start)?;
        }
    }

    let mut out = Out::new();
    let bar = counter("consumed", "records", true);
    let mut printed = 0u64;
    let max = args.max.unwrap_or(u64::MAX);
    // Without --follow, polls take what is there without waiting, and wait only
    // when one found nothing although the end is not reached (a read_committed
    // consumer held back by an open transaction, a partition not owned yet).
    let mut idle = false;
    let mut waited_for_transactions = false;
    loop {
        let timeout = if args.follow || idle {
            POLL
        } else {
            Duration::ZERO
        };
        let records = consumer.poll(timeout)?;
        idle = records.is_empty();
        // The next offset of each partition after what was printed.
        let mut next: Vec<(TopicPartition, i64)> = Vec::new();
        for r in &records {
            if printed >= max {
                break;
            }
            print(&mut out, args.format, args.print_key, r)?;
            printed += 1;
            bar.inc(1);
            match next
                .iter_mut()
                .find(|(tp, _)| tp.topic == r.topic && tp.partition == r.partition)
            {
                Some((_, o)) => *o = r.offset + 1,
                None => next.push((TopicPartition::new(&r.topic, r.partition), r.offset + 1)),
            }
        }
        out.flush()?;
        if args.group.is_some() && !next.is_empty() {
            consumer.commit_offsets(&next)?;
        }
        if printed >= max || out.closed() {
            break;
        }
        if !args.follow && at_end(&s, &mut consumer, read_committed)? {
            // Held back by an open transaction: one poll that waits lets the
            // consumer finish it if its holder is gone (or timed out); a live
            // one still ends the run here, at the last stable offset.
            if read_committed && !waited_for_transactions && held_back(&s, &consumer)? {
                waited_for_transactions = true;
                idle = true;
                continue;
            }
            break;
        }
    }
    bar.finish_and_clear();
    consumer.close()?;
    Ok(ExitCode::SUCCESS)
}

/// Whether the consumer has read everything there is: its position in every
/// partition is at the end offset (at the last stable offset with read_committed).
fn at_end(s: &Store, consumer: &mut Consumer, read_committed: bool) -> Result<bool, CliError> {
    for tp in consumer.assignment() {
        let p = s.partition(&tp.topic, tp.partition)?;
        let end = if read_committed {
            p.last_stable_offset()
        } else {
            p.end_offset()
        };
        if consumer.position(&tp)? < end {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether an open transaction keeps records of an assigned partition from a
/// read_committed consumer.
fn held_back(s: &Store, consumer: &Consumer) -> Result<bool, CliError> {
    for tp in consumer.assignment() {
        let p = s.partition(&tp.topic, tp.partition)?;
        if p.last_stable_offset() < p.end_offset() {
            return Ok(true);
        }
    }
    Ok(false)
}

fn print(
    out: &mut Out,
    format: Format,
    print_key: bool,
    r: &ConsumerRecord,
) -> Result<(), CliError> {
    let show = |b: &Option<Vec<u8>>| -> Vec<u8> {
        match (b, format) {
            (None, _) => b"null".to_vec(),
            (Some(b), Format::Hex) => hex(b).into_bytes(),
            (Some(b), _) => b.clone(),
        }
    };
    match format {
        Format::Text | Format::Hex => {
            if print_key {
                out.write(&show(&r.key))?;
                out.write(b"\t")?;
            }
            out.write(&show(&r.value))?;
            out.write(b"\n")
        }
        Format::Json => {
            let headers: Vec<String> = r
                .headers
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{{\"key\":{},{}}}",
                        json_str(k),
                        json_bytes("value", v.as_deref())
                    )
                })
                .collect();
            out.line(&format!(
                "{{\"topic\":{},\"partition\":{},\"offset\":{},\"timestamp\":{},{},{},\"headers\":[{}]}}",
                json_str(&r.topic),
                r.partition,
                r.offset,
                r.timestamp,
                json_bytes("key", r.key.as_deref()),
                json_bytes("value", r.value.as_deref()),
                headers.join(",")
            ))
        }
    }
}

/// A JSON member for bytes: `"name":"text"` for UTF-8, `"name":null` for null,
/// `"name_hex":"..."` otherwise.
fn json_bytes(name: &str, bytes: Option<&[u8]>) -> String {
    match bytes {
        None => format!("\"{name}\":null"),
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => format!("\"{name}\":{}", json_str(text)),
            Err(_) => format!("\"{name}_hex\":\"{}\"", hex(b)),
        },
    }
}
