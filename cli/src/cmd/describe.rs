//! `describe`: every topic and partition of a store with its offsets, size,
//! segments and the producers it remembers, and the transactions still open.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use oncelog::txn::{Coordinator, TxnState, TxnStatus};
use oncelog::{Durability, ProducerState, Store, TopicConfig};

use crate::error::CliError;
use crate::output::{age, flock_held, human_bytes, json_str, open_store, table, Out};

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

/// One partition as described.
struct PartitionView {
    id: u32,
    start: i64,
    end: i64,
    stable: i64,
    segments: usize,
    bytes: u64,
    producers: Vec<ProducerState>,
    /// The last first-open recovery cut a damaged or torn tail.
    recovery_cut: bool,
}

/// One topic as described.
struct TopicView {
    name: String,
    internal: bool,
    config: TopicConfig,
    partitions: Vec<PartitionView>,
}

/// Where an open transaction stands in one of its partitions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InPartition {
    /// Its data starts at this offset and no marker ended it yet.
    OpenFrom(i64),
    /// Recorded with the coordinator, nothing written there yet (or the partition
    /// forgot the producer).
    NotWritten,
    /// Its marker was written: the transaction ended here.
    Ended,
}

/// A transaction the coordinator knows as open.
struct OpenTxn {
    id: String,
    state: TxnState,
    /// Its holder's process is alive (holds its liveness lock).
    holder_alive: bool,
    partitions: Vec<(String, u32, InPartition)>,
}

/// Prints the store's topics and partitions.
pub fn run(store: &Path, args: Describe) -> Result<ExitCode, CliError> {
    let s = open_store(store)?;
    let metas = match &args.topic {
        Some(t) => vec![s.topic(t)?],
        None => s.topics()?,
    };
    let mut topics = Vec::with_capacity(metas.len());
    for meta in metas {
        let mut partitions = Vec::with_capacity(meta.partitions as usize);
        for p in 0..meta.partitions {
            let partition = s.partition(&meta.name, p)?;
            let segments = partition.segment_info()?;
            partitions.push(PartitionView {
                id: p,
                start: partition.start_offset(),
                end: partition.end_offset(),
                stable: partition.last_stable_offset(),
                segments: segments.len(),
                bytes: segments.iter().map(|x| x.log_bytes).sum(),
                producers: partition.producers()?,
                recovery_cut: partition.metrics().recovery_truncations > 0,
            });
        }
        topics.push(TopicView {
            internal: oncelog::topic::is_internal(&meta.name),
            name: meta.name,
            config: meta.config,
            partitions,
        });
    }
    let open = open_transactions(&s, &topics, args.topic.as_deref())?;
    let mut out = Out::new();
    if args.json {
        out.line(&json(&topics, &open))?;
    } else {
        out.write(text(&topics, &open).as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The transactions the coordinator knows as open (Ongoing or preparing) and
/// that some partition has not ended yet: a holder's completed state is written
/// with its next record, so the last record may still say Ongoing for a
/// transaction whose markers ended it. With `only_topic`, the transactions that
/// touch that topic.
fn open_transactions(
    s: &Store,
    topics: &[TopicView],
    only_topic: Option<&str>,
) -> Result<Vec<OpenTxn>, CliError> {
    // Opening the coordinator would create its log: only look if it exists.
    if s.topic(oncelog::topic::TRANSACTION_STATE).is_err() {
        return Ok(Vec::new());
    }
    let coordinator = Coordinator::open(s, Durability::Written)?;
    let mut known: HashMap<(String, u32), Vec<ProducerState>> = topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| ((t.name.clone(), p.id), p.producers.clone()))
        })
        .collect();
    let mut open = Vec::new();
    for (id, state) in coordinator.states()? {
        if !matches!(
            state.status,
            TxnStatus::Ongoing | TxnStatus::PrepareCommit | TxnStatus::PrepareAbort
        ) {
            continue;
        }
        if only_topic.is_some_and(|t| !state.partitions.iter().any(|(pt, _)| pt == t)) {
            continue;
        }
        let mut partitions = Vec::new();
        for (topic, p) in &state.partitions {
            let key = (topic.clone(), *p);
            if !known.contains_key(&key) {
                let producers = s.partition(topic, *p)?.producers()?;
                known.insert(key.clone(), producers);
            }
            let entry = known[&key]
                .iter()
                .find(|e| e.producer_id == state.producer_id);
            let here = match entry {
                Some(e) if e.epoch > state.epoch => InPartition::Ended,
                Some(ProducerState {
                    open_transaction: Some(first),
                    ..
                }) => InPartition::OpenFrom(*first),
                _ => InPartition::NotWritten,
            };
            partitions.push((topic.clone(), *p, here));
        }
        if partitions.iter().all(|(_, _, h)| *h == InPartition::Ended) {
            continue;
        }
        let liveness = s
            .path()
            .join("transactions")
            .join(format!("{:016x}.live", state.owner));
        open.push(OpenTxn {
            id,
            holder_alive: flock_held(&liveness),
            state,
            partitions,
        });
    }
    Ok(open)
}

/// The config entries that differ from the defaults, as `key=value`.
fn non_default_config(config: &TopicConfig) -> Vec<String> {
    let defaults = TopicConfig::default();
    config
        .entries()
        .into_iter()
        .filter(|(k, v)| defaults.get(k).as_ref() != Some(v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

fn text(topics: &[TopicView], open: &[OpenTxn]) -> String {
    let mut s = String::new();
    if topics.is_empty() {
        s.push_str("no topics\n");
    }
    for t in topics {
        let plural = if t.partitions.len() == 1 { "" } else { "s" };
        let config = non_default_config(&t.config);
        let _ = writeln!(
            s,
            "topic {}{}: {} partition{plural}, config {}",
            t.name,
            if t.internal { " (internal)" } else { "" },
            t.partitions.len(),
            if config.is_empty() {
                "defaults".to_string()
            } else {
                config.join(" ")
            }
        );
        let mut rows = vec![[
            "PARTITION".to_string(),
            "START".to_string(),
            "END".to_string(),
            "STABLE".to_string(),
            "SEGMENTS".to_string(),
            "SIZE".to_string(),
            "PRODUCERS".to_string(),
        ]];
        for p in &t.partitions {
            rows.push([
                p.id.to_string(),
                p.start.to_string(),
                p.end.to_string(),
                p.stable.to_string(),
                p.segments.to_string(),
                human_bytes(p.bytes),
                p.producers.len().to_string(),
            ]);
        }
        table(&mut s, &rows);
        for p in &t.partitions {
            if p.recovery_cut {
                let _ = writeln!(
                    s,
                    "  {}-{}: the last recovery cut off a damaged or torn tail",
                    t.name, p.id
                );
            }
            for e in &p.producers {
                let _ = write!(
                    s,
                    "  {}-{} producer {}: epoch {}",
                    t.name, p.id, e.producer_id, e.epoch
                );
                if e.last_offset >= 0 {
                    let _ = write!(
                        s,
                        ", last sequence {} at offset {}",
                        e.last_sequence, e.last_offset
                    );
                }
                if let Some(first) = e.open_transaction {
                    let _ = write!(s, ", transaction open from offset {first}");
                }
                s.push('\n');
            }
        }
    }
    if open.is_empty() {
        s.push_str("open transactions: none\n");
    } else {
        let _ = writeln!(s, "open transactions: {}", open.len());
        let now = now_ms();
        for t in open {
            let since = if t.state.started_ms > 0 {
                format!(" for {}", age(now - t.state.started_ms))
            } else {
                String::new()
            };
            let parts: Vec<String> = t
                .partitions
                .iter()
                .map(|(topic, p, here)| match here {
                    InPartition::OpenFrom(o) => format!("{topic}-{p} (open from offset {o})"),
                    InPartition::NotWritten => format!("{topic}-{p} (nothing written yet)"),
                    InPartition::Ended => format!("{topic}-{p} (ended)"),
                })
                .collect();
            let gone = if t.holder_alive {
                ""
            } else {
                ", its holder is gone (the next read_committed reader or init_transactions ends it)"
            };
            let _ = writeln!(
                s,
                "  {}: producer {} epoch {}, {:?}{since}{gone}: {}",
                t.id,
                t.state.producer_id,
                t.state.epoch,
                t.state.status,
                parts.join(", ")
            );
        }
    }
    s
}

fn json(topics: &[TopicView], open: &[OpenTxn]) -> String {
    let mut s = String::from("{\"topics\":[");
    for (i, t) in topics.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let config: Vec<String> = t
            .config
            .entries()
            .into_iter()
            .map(|(k, v)| format!("{}:{}", json_str(k), json_str(&v)))
            .collect();
        let _ = write!(
            s,
            "{{\"name\":{},\"internal\":{},\"config\":{{{}}},\"partitions\":[",
            json_str(&t.name),
            t.internal,
            config.join(",")
        );
        for (j, p) in t.partitions.iter().enumerate() {
            if j > 0 {
                s.push(',');
            }
            let producers: Vec<String> = p
                .producers
                .iter()
                .map(|e| {
                    format!(
                        "{{\"producer_id\":{},\"epoch\":{},\"last_sequence\":{},\"last_offset\":{},\"open_transaction_from\":{}}}",
                        e.producer_id,
                        e.epoch,
                        e.last_sequence,
                        e.last_offset,
                        e.open_transaction.map_or("null".to_string(), |o| o.to_string())
                    )
                })
                .collect();
            let _ = write!(
                s,
                "{{\"partition\":{},\"start_offset\":{},\"end_offset\":{},\"last_stable_offset\":{},\"segments\":{},\"size_bytes\":{},\"recovery_cut_tail\":{},\"producers\":[{}]}}",
                p.id,
                p.start,
                p.end,
                p.stable,
                p.segments,
                p.bytes,
                p.recovery_cut,
                producers.join(",")
            );
        }
        s.push_str("]}");
    }
    s.push_str("],\"open_transactions\":[");
    for (i, t) in open.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let parts: Vec<String> = t
            .partitions
            .iter()
            .map(|(topic, p, here)| {
                let (state, from) = match here {
                    InPartition::OpenFrom(o) => ("open", o.to_string()),
                    InPartition::NotWritten => ("not_written", "null".to_string()),
                    InPartition::Ended => ("ended", "null".to_string()),
                };
                format!(
                    "{{\"topic\":{},\"partition\":{p},\"state\":\"{state}\",\"open_from\":{from}}}",
                    json_str(topic)
                )
            })
            .collect();
        let _ = write!(
            s,
            "{{\"transactional_id\":{},\"producer_id\":{},\"epoch\":{},\"status\":\"{:?}\",\"started_ms\":{},\"updated_ms\":{},\"timeout_ms\":{},\"holder_alive\":{},\"partitions\":[{}]}}",
            json_str(&t.id),
            t.state.producer_id,
            t.state.epoch,
            t.state.status,
            t.state.started_ms,
            t.state.updated_ms,
            t.state.timeout_ms,
            t.holder_alive,
            parts.join(",")
        );
    }
    s.push_str("]}");
    s
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
