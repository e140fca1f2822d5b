//! `produce`.

use std::collections::BTreeSet;
use std::io::{self, BufRead};
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use indicatif::ProgressBar;
use oncelog::{Durability, Header, Producer, ProducerConfig, ProducerRecord, Record};

use crate::error::CliError;
use crate::output::{counter, key_value, open_store};

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
    /// Produce all lines in one transaction with this transactional id: committed
    /// at the end of stdin, aborted if anything fails (it may stay open up to 15
    /// minutes, Kafka's longest transaction.timeout.ms, while stdin is read).
    #[arg(long)]
    pub transactional_id: Option<String>,
}

/// How many sent records may wait for their delivery reports to be read.
const REPORT_EVERY: u64 = 4096;

/// Produces stdin's lines.
pub fn run(store: &Path, args: Produce) -> Result<ExitCode, CliError> {
    let headers = args
        .headers
        .iter()
        .map(|h| key_value(h, "--header"))
        .collect::<Result<Vec<_>, _>>()?;
    let header_views: Vec<Header<'_>> = headers
        .iter()
        .map(|(k, v)| Header {
            key: k,
            value: Some(v.as_bytes()),
        })
        .collect();
    let acks: Durability = args.acks.parse().map_err(CliError::argument)?;
    let separator = match args.key_separator.as_deref() {
        Some("") => return Err(CliError::usage("--key-separator must not be empty")),
        other => other.map(str::as_bytes),
    };
    let s = open_store(store)?;
    let meta = s.topic(&args.topic)?;
    if oncelog::topic::is_internal(&meta.name) {
        return Err(CliError::usage(format!(
            "{} is one of oncelog's own topics: produce to it through the API only",
            meta.name
        )));
    }
    if let Some(p) = args.partition.filter(|p| *p >= meta.partitions) {
        return Err(CliError::failed(format!(
            "topic {} has {} partitions; there is no partition {p}",
            meta.name, meta.partitions
        )));
    }
    let mut config = ProducerConfig {
        acks,
        // Lines typed at a terminal go out at once; piped input is batched.
        linger_ms: 5,
        batch_size: 256 * 1024,
        ..ProducerConfig::default()
    };
    config.transactional_id = args.transactional_id.clone();
    // Stdin may be slow (a person typing): Kafka's transaction.max.timeout.ms. A
    // killed produce is noticed at once anyway (its liveness lock).
    config.transaction_timeout_ms = 15 * 60 * 1000;
    config.validate().map_err(CliError::argument)?;
    let producer = Producer::new(&s, config)?;
    let transactional = args.transactional_id.is_some();
    if transactional {
        producer.init_transactions()?;
        producer.begin_transaction()?;
    }

    let bar = counter("producing", "records", false);
    let mut sent = Sent::default();
    let result = send_lines(&producer, &args, separator, &header_views, &bar, &mut sent);
    let result = result.and_then(|()| {
        producer.flush()?;
        sent.take_reports(&producer);
        match sent.failure.take() {
            Some(e) => Err(CliError::failed(e)),
            None => Ok(()),
        }
    });
    let result = result.and_then(|()| {
        if transactional {
            producer.commit_transaction()?;
        }
        Ok(())
    });
    bar.finish_and_clear();
    if let Err(e) = result {
        let what = if transactional {
            let _ = producer.abort_transaction();
            "the transaction was aborted: nothing was produced".to_string()
        } else {
            format!("{} records were produced before it", sent.delivered)
        };
        let _ = producer.close();
        return Err(CliError::failed(format!("{}; {what}", e.one_line())));
    }
    producer.close()?;
    let partitions: Vec<String> = sent.partitions.iter().map(u32::to_string).collect();
    let plural = |n: usize, one: &str, many: &str| if n == 1 { one } else { many }.to_string();
    let mut summary = format!(
        "produced {} {} to {}",
        sent.delivered,
        plural(sent.delivered as usize, "record", "records"),
        meta.name
    );
    if !partitions.is_empty() {
        summary.push_str(&format!(
            " ({} {})",
            plural(partitions.len(), "partition", "partitions"),
            partitions.join(", ")
        ));
    }
    if let Some(id) = &args.transactional_id {
        summary.push_str(&format!(" in one committed transaction ({id})"));
    }
    eprintln!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// What was sent, as delivery reports tell it.
#[derive(Default)]
struct Sent {
    /// Records sent (not all reported yet).
    sent: u64,
    /// Records appended.
    delivered: u64,
    partitions: BTreeSet<u32>,
    /// The first failed delivery.
    failure: Option<String>,
}

impl Sent {
    fn take_reports(&mut self, producer: &Producer) {
        for report in producer.poll() {
            match report.result {
                Ok(_) => {
                    self.delivered += 1;
                    self.partitions.insert(report.partition);
                }
                Err(e) => {
                    self.failure.get_or_insert_with(|| {
                        format!("record {} of stdin: {e}", report.token + 1)
                    });
                }
            }
        }
    }
}

/// Sends one record per line of stdin.
fn send_lines(
    producer: &Producer,
    args: &Produce,
    separator: Option<&[u8]>,
    headers: &[Header<'_>],
    bar: &ProgressBar,
    sent: &mut Sent,
) -> Result<(), CliError> {
    let stdin = io::stdin().lock();
    for (n, line) in stdin.split(b'\n').enumerate() {
        let mut line = line.map_err(|e| CliError::failed(format!("read stdin: {e}")))?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let (key, value) = match separator {
            None => (None, &line[..]),
            Some(sep) => match find(&line, sep) {
                Some(at) => (Some(&line[..at]), &line[at + sep.len()..]),
                None => {
                    return Err(CliError::failed(format!(
                        "line {} has no key separator {:?}",
                        n + 1,
                        String::from_utf8_lossy(sep)
                    )))
                }
            },
        };
        let record = ProducerRecord {
            topic: &args.topic,
            partition: args.partition,
            record: Record {
                key,
                value: Some(value),
                headers,
                timestamp: None,
            },
        };
        producer
            .send(record)
            .map_err(|e| CliError::failed(format!("line {}: {e}", n + 1)))?;
        sent.sent += 1;
        bar.inc(1);
        if sent.sent % REPORT_EVERY == 0 {
            sent.take_reports(producer);
            if let Some(e) = sent.failure.take() {
                return Err(CliError::failed(e));
            }
        }
    }
    Ok(())
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
