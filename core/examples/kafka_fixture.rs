//! Writes a store whose segments an independent Kafka parser must read back, and a
//! JSON manifest of every record as it was appended.
//!
//! ```text
//! cargo run -p oncelog --example kafka_fixture -- <store-dir> <manifest.json>
//! ```
//!
//! `<store-dir>` must not exist or be empty. The program creates topic `interop`
//! (one partition, `segment.bytes=16384`, so several segments roll), appends a varied
//! set of batches to partition 0 — single and multi-record batches; null, empty and
//! binary keys and values; a value holding every byte 0..=255; headers with repeated
//! keys, empty and null values and non-ASCII keys; explicit timestamps (0, a negative
//! delta inside a batch) and default ones; varint length boundaries; producer
//! identities and leader epochs — closes the store cleanly (which trims the active
//! segment to its logical end), and writes the manifest:
//!
//! ```text
//! { "topic": "interop", "partition": 0, "segment_bytes": 16384, "end_offset": N,
//!   "batches": [ { "base_offset", "last_offset", "record_count", "producer_id",
//!                  "producer_epoch", "base_sequence", "leader_epoch",
//!                  "max_timestamp" }, ... ],
//!   "records": [ { "offset", "key": hex|null, "value": hex|null,
//!                  "headers": [[key, hex|null], ...], "timestamp" }, ... ] }
//! ```
//!
//! `tests/python/test_kafka_python_reads_segments.py` runs it and parses every
//! segment with kafka-python; `make example` runs it as a first taste of the engine.

use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;

use oncelog::record::{BatchOptions, OwnedRecord, ProducerInfo};
use oncelog::{AppendOptions, Store, StoreOptions};

const TOPIC: &str = "interop";
const SEGMENT_BYTES: u64 = 16384;

/// One record as the fixture wants it appended (owned, so batches can be built up
/// front and lent out as borrowed records).
type Rec = OwnedRecord;

/// A record with a key, a value and a timestamp (`None`: the append time).
fn kv(key: Option<&[u8]>, value: Option<&[u8]>, timestamp: Option<i64>) -> Rec {
    Rec {
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
        headers: Vec::new(),
        timestamp,
    }
}

/// Adds a header to a record under construction.
trait WithHeader {
    fn header(self, key: &str, value: Option<&[u8]>) -> Self;
}

impl WithHeader for Rec {
    fn header(mut self, key: &str, value: Option<&[u8]>) -> Rec {
        self.headers
            .push((key.to_string(), value.map(<[u8]>::to_vec)));
        self
    }
}

/// One batch to append and the batch options to append it with.
struct Plan {
    records: Vec<Rec>,
    options: BatchOptions,
}

impl Plan {
    fn plain(records: Vec<Rec>) -> Plan {
        Plan {
            records,
            options: BatchOptions::default(),
        }
    }
}

/// A batch as written, for the manifest.
struct Written {
    base_offset: i64,
    last_offset: i64,
    max_timestamp: i64,
    options: BatchOptions,
    /// The records with every timestamp resolved.
    records: Vec<Rec>,
}

/// xorshift64*: a fixed sequence, so every run writes the same bytes (except the
/// default timestamps).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Up to `max_len - 1` random bytes.
    fn some_bytes(&mut self, max_len: u64) -> Vec<u8> {
        let len = self.below(max_len) as usize;
        self.bytes(len)
    }
}

/// Producer identities for the batches that carry one: sequences start at 0 and are
/// contiguous per producer, as an idempotent producer writes them.
struct Producer {
    id: i64,
    epoch: i16,
    next_sequence: i32,
}

impl Producer {
    fn batch(&mut self, records: Vec<Rec>, leader_epoch: i32) -> Plan {
        let options = BatchOptions {
            producer: ProducerInfo {
                producer_id: self.id,
                producer_epoch: self.epoch,
                base_sequence: self.next_sequence,
            },
            partition_leader_epoch: leader_epoch,
            ..BatchOptions::default()
        };
        self.next_sequence += records.len() as i32;
        Plan { records, options }
    }
}

fn plans() -> Vec<Plan> {
    const T: i64 = 1_700_000_000_000;
    let every_byte: Vec<u8> = (0..=255u8).collect();
    let every_byte_reversed: Vec<u8> = (0..=255u8).rev().collect();
    let mut rng = Rng(0x6f6e_6365_6c6f_6721);
    let mut idem = Producer {
        id: 1000,
        epoch: 3,
        next_sequence: 0,
    };
    let mut big_id = Producer {
        id: (1 << 40) + 7,
        epoch: i16::MAX,
        next_sequence: 0,
    };

    let mut plans = vec![
        // Single records: the plain case, then null/empty/binary keys and values.
        Plan::plain(vec![kv(Some(b"hello"), Some(b"world"), Some(T))]),
        Plan::plain(vec![kv(None, None, Some(0))]),
        Plan::plain(vec![kv(Some(b""), Some(b""), Some(1))]),
        Plan::plain(vec![kv(None, Some(b"null key"), Some(T + 1))]),
        Plan::plain(vec![kv(Some(b"tombstone"), None, Some(T + 2))]),
        Plan::plain(vec![kv(
            Some(&[0x00, 0xff, 0x80, 0x7f, 0x00]),
            Some(&every_byte),
            Some(T + 3),
        )]),
        Plan::plain(vec![kv(
            Some(&every_byte),
            Some(&every_byte_reversed),
            Some(T + 4),
        )]),
        // Headers: repeated keys, empty and null values, non-ASCII and empty keys.
        Plan::plain(vec![kv(Some(b"h"), Some(b"headers"), Some(T + 5))
            .header("dup", Some(b"first"))
            .header("dup", Some(b"second"))
            .header("empty", Some(b""))
            .header("null", None)
            .header("clé", Some(&every_byte))
            .header("日本語", Some("値".as_bytes()))
            .header("🦀", None)
            .header("", Some(b"empty key"))
            .header("dup", None)]),
        // A multi-record batch whose timestamps go backwards (negative deltas), one of
        // them all the way to 0.
        Plan::plain(vec![
            kv(Some(b"k0"), Some(b"ts base"), Some(T + 500)),
            kv(Some(b"k1"), Some(b"ts -500"), Some(T)),
            kv(Some(b"k2"), Some(b"ts +500"), Some(T + 1000)),
            kv(Some(b"k3"), Some(b"ts zero"), Some(0)),
            kv(None, None, Some(T + 1)).header("only", Some(b"headers")),
        ]),
        // Default timestamps: the append time.
        Plan::plain(vec![
            kv(Some(b"d0"), Some(b"default ts"), None),
            kv(Some(b"d1"), Some(b"default ts"), None),
            kv(None, Some(b"default ts"), None),
        ]),
        // Mixed: a default base timestamp then explicit old ones (large negative
        // deltas), and an explicit 0 base then a default (large positive delta).
        Plan::plain(vec![
            kv(Some(b"m0"), Some(b"default"), None),
            kv(Some(b"m1"), Some(b"zero"), Some(0)),
            kv(Some(b"m2"), Some(b"1000"), Some(1000)),
        ]),
        Plan::plain(vec![
            kv(Some(b"z0"), Some(b"zero base"), Some(0)),
            kv(Some(b"z1"), Some(b"default after zero"), None),
        ]),
        // Varint length boundaries: zigzag(63) takes 1 byte, zigzag(64) takes 2;
        // zigzag(8191) takes 2, zigzag(8192) takes 3.
        Plan::plain(vec![
            kv(Some(&[b'k'; 63]), Some(&[1u8; 63]), Some(T + 6)),
            kv(Some(&[b'k'; 64]), Some(&[2u8; 64]), Some(T + 7)),
        ]),
        Plan::plain(vec![kv(None, Some(&[3u8; 8191]), Some(T + 8))]),
        Plan::plain(vec![kv(None, Some(&[4u8; 8192]), Some(T + 9))]),
    ];

    // Producer identities and leader epochs (the latter are outside the CRC).
    plans.push(idem.batch(vec![kv(Some(b"p"), Some(b"seq 0"), Some(T + 10))], 0));
    plans.push(idem.batch(
        vec![
            kv(Some(b"p"), Some(b"seq 1"), Some(T + 11)),
            kv(Some(b"p"), Some(b"seq 2"), Some(T + 12)),
        ],
        5,
    ));
    plans.push(big_id.batch(
        vec![kv(Some(b"big"), Some(b"large producer id"), None)],
        i32::MAX,
    ));

    // Many records in one batch: offset deltas past 63 take two varint bytes.
    plans.push(Plan::plain(
        (0..300)
            .map(|i| kv(None, Some(&[i as u8]), Some(T + 100 + i)))
            .collect(),
    ));
    // A batch that nearly fills a segment by itself: forces a roll.
    plans.push(Plan::plain(vec![kv(
        Some(b"big"),
        Some(&rng.bytes(15_000)),
        Some(T + 20),
    )]));

    // Bulk: enough varied batches to roll several more segments.
    for b in 0..80i64 {
        let count = 1 + rng.below(8) as usize;
        let mut records = Vec::with_capacity(count);
        for r in 0..count {
            let key = match rng.below(4) {
                0 => None,
                1 => Some(Vec::new()),
                _ => Some(format!("key-{}", rng.below(50)).into_bytes()),
            };
            let value = match rng.below(10) {
                0 => None,
                _ => Some(rng.some_bytes(500)),
            };
            let timestamp = match rng.below(5) {
                0 => None,
                _ => Some(T + 1_000 * b + r as i64 - rng.below(3) as i64 * 7),
            };
            let mut rec = Rec {
                key,
                value,
                headers: Vec::new(),
                timestamp,
            };
            for h in 0..rng.below(4) {
                let hv = match rng.below(3) {
                    0 => None,
                    _ => Some(rng.some_bytes(40)),
                };
                rec = rec.header(&format!("h{h}-{}", rng.below(3)), hv.as_deref());
            }
            records.push(rec);
        }
        if b % 10 == 3 {
            plans.push(idem.batch(records, 5));
        } else {
            plans.push(Plan::plain(records));
        }
    }
    plans.push(Plan::plain(vec![kv(
        Some(b"last"),
        Some(b"the end"),
        Some(T + 999_999),
    )]));
    plans
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Appends every planned batch and returns them as written.
fn write_store(dir: &Path) -> Result<Vec<Written>, Box<dyn Error>> {
    let store = Store::open(dir, StoreOptions::default())?;
    store.create_topic_with(
        TOPIC,
        1,
        &[
            ("segment.bytes", &SEGMENT_BYTES.to_string()),
            ("retention.ms", "-1"),
        ],
    )?;
    let partition = store.partition(TOPIC, 0)?;
    let mut written = Vec::new();
    for plan in plans() {
        let headers = OwnedRecord::header_views(&plan.records);
        let records = OwnedRecord::views(&plan.records, &headers);
        let before = now_ms();
        let options = AppendOptions {
            batch: plan.options,
            durability: None,
        };
        let info = partition.append_with(&records, &options)?;
        let after = now_ms();
        let expected_last =
            written.last().map_or(0, |w: &Written| w.last_offset + 1) + records.len() as i64 - 1;
        if info.last_offset != expected_last {
            return Err(format!(
                "append returned offsets {}..={}, expected last offset {expected_last}",
                info.base_offset, info.last_offset
            )
            .into());
        }
        // Records without a timestamp took the append time. Every batch that has
        // one keeps its explicit timestamps below the wall clock, so the batch's max
        // timestamp is that append time.
        let mut resolved = plan.records.clone();
        if resolved.iter().any(|r| r.timestamp.is_none()) {
            let append_time = info.max_timestamp;
            if !(before..=after).contains(&append_time) {
                return Err(format!(
                    "batch at {}: max timestamp {append_time} is not the append time (between {before} and {after})",
                    info.base_offset
                )
                .into());
            }
            for r in &mut resolved {
                r.timestamp.get_or_insert(append_time);
            }
        }
        written.push(Written {
            base_offset: info.base_offset,
            last_offset: info.last_offset,
            max_timestamp: info.max_timestamp,
            options: plan.options,
            records: resolved,
        });
    }
    // A clean close (the last handle) trims the active segment to its logical end.
    drop(partition);
    store.close()?;
    Ok(written)
}

fn hex_or_null(out: &mut String, bytes: Option<&[u8]>) {
    match bytes {
        None => out.push_str("null"),
        Some(b) => {
            out.push('"');
            for byte in b {
                let _ = write!(out, "{byte:02x}");
            }
            out.push('"');
        }
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn manifest(written: &[Written]) -> String {
    let end_offset = written.last().map_or(0, |w| w.last_offset + 1);
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\n  \"topic\": \"{TOPIC}\",\n  \"partition\": 0,\n  \"segment_bytes\": {SEGMENT_BYTES},\n  \"end_offset\": {end_offset},\n  \"batches\": ["
    );
    for (i, w) in written.iter().enumerate() {
        let p = w.options.producer;
        let _ = write!(
            out,
            "{}\n    {{\"base_offset\": {}, \"last_offset\": {}, \"record_count\": {}, \"producer_id\": {}, \"producer_epoch\": {}, \"base_sequence\": {}, \"leader_epoch\": {}, \"max_timestamp\": {}}}",
            if i == 0 { "" } else { "," },
            w.base_offset,
            w.last_offset,
            w.records.len(),
            p.producer_id,
            p.producer_epoch,
            p.base_sequence,
            w.options.partition_leader_epoch,
            w.max_timestamp,
        );
    }
    out.push_str("\n  ],\n  \"records\": [");
    let mut first = true;
    for w in written {
        for (delta, r) in w.records.iter().enumerate() {
            out.push_str(if first { "\n    " } else { ",\n    " });
            first = false;
            let _ = write!(
                out,
                "{{\"offset\": {}, \"key\": ",
                w.base_offset + delta as i64
            );
            hex_or_null(&mut out, r.key.as_deref());
            out.push_str(", \"value\": ");
            hex_or_null(&mut out, r.value.as_deref());
            out.push_str(", \"headers\": [");
            for (j, (k, v)) in r.headers.iter().enumerate() {
                out.push_str(if j == 0 { "[" } else { ", [" });
                json_string(&mut out, k);
                out.push_str(", ");
                hex_or_null(&mut out, v.as_deref());
                out.push(']');
            }
            let _ = write!(
                out,
                "], \"timestamp\": {}}}",
                r.timestamp.expect("every timestamp was resolved")
            );
        }
    }
    out.push_str("\n  ]\n}\n");
    out
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, store_dir, manifest_path] = args.as_slice() else {
        eprintln!("usage: kafka_fixture <store-dir> <manifest.json>");
        std::process::exit(2);
    };
    let store_dir = Path::new(store_dir);
    if store_dir.exists() && std::fs::read_dir(store_dir)?.next().is_some() {
        return Err(format!(
            "{} is not empty; give a new or empty directory",
            store_dir.display()
        )
        .into());
    }
    let written = write_store(store_dir)?;
    std::fs::write(manifest_path, manifest(&written))?;

    let partition_dir = store_dir.join(format!("{TOPIC}-0"));
    let segments = std::fs::read_dir(&partition_dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .count();
    let records: usize = written.iter().map(|w| w.records.len()).sum();
    println!(
        "kafka_fixture: {records} records in {} batches, {segments} segments in {}; manifest {manifest_path}",
        written.len(),
        partition_dir.display()
    );
    Ok(())
}
