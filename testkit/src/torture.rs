//! The crash torture role: one process of a torture run, playing one of five kinds
//! on a shared store, printing a history line for everything it does and is told.
//! The parent (`tests/torture.rs`) kills these processes with SIGKILL at random
//! instants, restarts them, and hands the histories to [`crate::torture_check`].
//!
//! `torture --kind K --id I --life L [--seed S] [--pace-us P] [--acks A]`
//! (`--acks` for the producing kinds `plain`, `idem`, `txn` and `eos`), or
//! `torture --kind setup [--segment-bytes B]`, which creates the topics and exits:
//!
//! | kind | topic | does |
//! | --- | --- | --- |
//! | `plain` | `plain` (2 partitions) | non-idempotent producer (`enable.idempotence=false`) |
//! | `idem` | `idem` (2 partitions) | idempotent producer |
//! | `txn` | `tx` (2 partitions) | transactional producer (`transactional.id = tx-I`), commits or aborts |
//! | `eos` | `tx` -> `eos-out` | exactly-once consume-transform-produce member of group `eos` (`transactional.id = eos-I`) |
//! | `reader` | `tx`, `eos-out` | read_committed consumer of group `rc-I`, committing after processing |
//!
//! Producers write testkit payloads ([`crate::payload`]) of writer
//! [`writer_id`]`(kind, I, L)`, sequence numbers from 0 in each life. The `eos`
//! member writes the value `<partition>:<offset>` of each input record it transforms.
//!
//! History lines (a line printed before the kill is what the process was told):
//!
//! * producers: `ack <partition> <seq> <offset>` per delivered record (from a
//!   delivery report or from `send_batch`);
//! * `txn`: `begin <n> <first seq>`, `committing <n>` / `committed <n>`,
//!   `aborting <n>` / `aborted <n>`;
//! * `eos`: `rd <topic> <partition> <offset> <digest>` per polled record,
//!   `committed <n>` per transaction, `rewind` after an abort and
//!   `seek_to_committed`;
//! * `reader`: `rd <topic> <partition> <offset> <digest>` per polled record;
//! * all: `ready` once set up, `err <kind> <message>` before a failure exit;
//!   producing kinds print `acks <level>` first.
//!
//! `torture --kind close` opens the store and closes it (a clean shutdown if it is
//! the last process out).

use std::collections::BTreeMap;
use std::time::Duration;

use oncelog::{
    Consumer, ConsumerConfig, ErrorKind, Producer, ProducerConfig, ProducerRecord, Record, Store,
    StoreOptions, TopicPartition,
};

use crate::args::Args;
use crate::payload;
use crate::rng::XorShift;
use crate::roles::{say, Failure};

/// Partitions of each input topic (`plain`, `idem`, `tx`).
pub const PARTITIONS: u32 = 2;
/// The process kinds, in the order of [`writer_id`]'s kind number.
pub const KINDS: [&str; 5] = ["plain", "idem", "txn", "eos", "reader"];

/// The writer id of the records of process `id` of `kind` in life `life`: unique per
/// process life, so that a record names the life that sent it.
pub fn writer_id(kind: usize, id: u32, life: u32) -> u32 {
    ((kind as u32) << 28) | ((id & 0xff) << 20) | (life & 0xf_ffff)
}

/// The topics of a torture store: `(name, partitions)`.
pub const TOPICS: [(&str, u32); 4] = [
    ("plain", PARTITIONS),
    ("idem", PARTITIONS),
    ("tx", PARTITIONS),
    ("eos-out", 1),
];

/// Runs the `torture` role.
pub fn run(args: &Args) -> Result<(), Failure> {
    let store = Store::open(args.str("store")?, StoreOptions::default())?;
    let kind: String = args.get("kind")?;
    if kind == "setup" {
        return setup(&store, args.get_or("segment-bytes", 256 * 1024)?);
    }
    if kind == "close" {
        say("ready");
        return Ok(store.close()?);
    }
    let id: u32 = args.get("id")?;
    let life: u32 = args.get("life")?;
    let seed: u64 = args.get_or("seed", 1)?;
    let mut rng = XorShift::new(seed ^ (u64::from(id) << 32) ^ u64::from(life));
    let pace = Duration::from_micros(args.get_or("pace-us", 2000)?);
    let acks: String = args.get_or("acks", "written".to_string())?;
    if ["plain", "idem", "txn", "eos"].contains(&kind.as_str()) {
        say(&format!("acks {acks}"));
    }
    match kind.as_str() {
        "plain" | "idem" => {
            let k = if kind == "plain" { 0 } else { 1 };
            producer(&store, k, id, life, &acks, &mut rng, pace)
        }
        "txn" => transactional(&store, id, life, &acks, &mut rng, pace),
        "eos" => eos_member(&store, id, &acks),
        "reader" => reader(&store, id),
        _ => Err(format!("unknown --kind {kind:?}").into()),
    }
}

/// Creates the [`TOPICS`] with segments of `segment_bytes`.
fn setup(store: &Store, segment_bytes: u64) -> Result<(), Failure> {
    for (topic, partitions) in TOPICS {
        let config = oncelog::TopicConfig {
            segment_bytes,
            ..oncelog::TopicConfig::default()
        };
        store.create_topic(topic, partitions, config)?;
    }
    say("ready");
    Ok(())
}

fn record(writer: u32, seq: u64, rng: &mut XorShift) -> (Vec<u8>, Vec<u8>) {
    let len = 40 + rng.range(0, 200) as usize;
    (payload::key(writer, seq), payload::value(writer, seq, len))
}

/// Prints the delivery reports gathered so far; `tokens` maps a token to its
/// `(partition, seq)`.
fn report(producer: &Producer, tokens: &mut BTreeMap<u64, (u32, u64)>) -> Result<(), Failure> {
    for r in producer.poll() {
        let (partition, seq) = tokens
            .remove(&r.token)
            .ok_or_else(|| format!("delivery report for unknown token {}", r.token))?;
        match r.result {
            Ok(offset) => say(&format!("ack {partition} {seq} {offset}")),
            Err(e) => say(&format!("nack {partition} {seq} {}", e.kind())),
        }
    }
    Ok(())
}

/// A plain (`k == 0`) or idempotent (`k == 1`) producer: single sends and
/// synchronous batches, forever.
fn producer(
    store: &Store,
    k: usize,
    id: u32,
    life: u32,
    acks: &str,
    rng: &mut XorShift,
    pace: Duration,
) -> Result<(), Failure> {
    let (topic, idempotence) = if k == 0 {
        ("plain", "false")
    } else {
        ("idem", "true")
    };
    let producer = Producer::new(
        store,
        ProducerConfig::from_pairs([("enable.idempotence", idempotence), ("acks", acks)])?,
    )?;
    let writer = writer_id(k, id, life);
    let mut tokens = BTreeMap::new();
    say("ready");
    let mut seq = 0u64;
    loop {
        let partition = rng.range(0, u64::from(PARTITIONS) - 1) as u32;
        if rng.chance(30) {
            let n = rng.range(1, 5);
            let batch: Vec<_> = (seq..seq + n).map(|s| record(writer, s, rng)).collect();
            let records: Vec<Record> = batch.iter().map(|(k, v)| Record::keyed(k, v)).collect();
            let info = producer.send_batch(topic, partition, &records)?;
            for (i, offset) in (info.base_offset..=info.last_offset).enumerate() {
                say(&format!("ack {partition} {} {offset}", seq + i as u64));
            }
            seq += n;
        } else {
            let (key, value) = record(writer, seq, rng);
            let token = producer.send(
                ProducerRecord::new(topic, &value)
                    .key(&key)
                    .partition(partition),
            )?;
            tokens.insert(token, (partition, seq));
            producer.flush()?;
            report(&producer, &mut tokens)?;
            seq += 1;
        }
        std::thread::sleep(pace);
    }
}

/// A transactional producer: transactions of 1..=6 records over both partitions,
/// a quarter of them aborted, forever.
fn transactional(
    store: &Store,
    id: u32,
    life: u32,
    acks: &str,
    rng: &mut XorShift,
    pace: Duration,
) -> Result<(), Failure> {
    let txn_id = format!("tx-{id}");
    let producer = Producer::new(
        store,
        ProducerConfig::from_pairs([
            ("transactional.id", txn_id.as_str()),
            ("transaction.timeout.ms", "10000"),
            ("acks", acks),
        ])?,
    )?;
    producer.init_transactions()?;
    let writer = writer_id(2, id, life);
    let mut tokens = BTreeMap::new();
    say("ready");
    let (mut seq, mut n) = (0u64, 0u64);
    loop {
        producer.begin_transaction()?;
        say(&format!("begin {n} {seq}"));
        for _ in 0..rng.range(1, 6) {
            let partition = rng.range(0, u64::from(PARTITIONS) - 1) as u32;
            let (key, value) = record(writer, seq, rng);
            let token = producer.send(
                ProducerRecord::new("tx", &value)
                    .key(&key)
                    .partition(partition),
            )?;
            tokens.insert(token, (partition, seq));
            seq += 1;
            report(&producer, &mut tokens)?;
            std::thread::sleep(pace);
        }
        producer.flush()?;
        report(&producer, &mut tokens)?;
        if rng.chance(25) {
            say(&format!("aborting {n}"));
            producer.abort_transaction()?;
            say(&format!("aborted {n}"));
        } else {
            say(&format!("committing {n}"));
            producer.commit_transaction()?;
            say(&format!("committed {n}"));
        }
        // Reports of records dropped by an abort name no offset.
        report(&producer, &mut tokens)?;
        n += 1;
    }
}

fn rd_line(topic: &str, partition: u32, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
    say(&format!(
        "rd {topic} {partition} {offset} {}",
        payload::digest(key, value)
    ));
}

/// An exactly-once consume-transform-produce member of group `eos`, forever.
fn eos_member(store: &Store, id: u32, acks: &str) -> Result<(), Failure> {
    let txn_id = format!("eos-{id}");
    let new_producer = || -> Result<Producer, oncelog::Error> {
        let producer = Producer::new(
            store,
            ProducerConfig::from_pairs([
                ("transactional.id", txn_id.as_str()),
                ("transaction.timeout.ms", "10000"),
                ("acks", acks),
            ])?,
        )?;
        producer.init_transactions()?;
        Ok(producer)
    };
    let mut producer = new_producer()?;
    let mut consumer = Consumer::new(
        store,
        ConsumerConfig::from_pairs([
            ("group.id", "eos"),
            ("delivery", "exactly-once"),
            ("auto.offset.reset", "earliest"),
            ("max.poll.records", "20"),
            ("session.timeout.ms", "10000"),
        ])?,
    )?;
    consumer.subscribe(&["tx"])?;
    say("ready");
    let mut n = 0u64;
    loop {
        let records = consumer.poll(Duration::from_millis(50))?;
        if records.is_empty() {
            continue;
        }
        let group = consumer.group_metadata()?;
        producer.begin_transaction()?;
        let mut next: BTreeMap<u32, i64> = BTreeMap::new();
        for r in &records {
            rd_line(
                &r.topic,
                r.partition,
                r.offset,
                r.key.as_deref(),
                r.value.as_deref(),
            );
            let value = format!("{}:{}", r.partition, r.offset);
            producer.send(ProducerRecord::new("eos-out", value.as_bytes()).partition(0))?;
            next.insert(r.partition, r.offset + 1);
        }
        let offsets: Vec<(TopicPartition, i64)> = next
            .into_iter()
            .map(|(p, o)| (TopicPartition::new("tx", p), o))
            .collect();
        match producer
            .send_offsets_to_transaction_for(&offsets, &group)
            .and_then(|()| producer.commit_transaction())
        {
            Ok(()) => {
                say(&format!("committed {n}"));
                n += 1;
            }
            Err(e) if e.txn_requires_abort() || e.kind() == ErrorKind::ProducerFenced => {
                say(&format!("refused {}", e.kind()));
                if producer.abort_transaction().is_err() {
                    producer = new_producer()?;
                }
                consumer.seek_to_committed()?;
                say("rewind");
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A read_committed consumer of `tx` and `eos-out` in its own group, committing
/// after processing, forever.
fn reader(store: &Store, id: u32) -> Result<(), Failure> {
    let group = format!("rc-{id}");
    let mut consumer = Consumer::new(
        store,
        ConsumerConfig::from_pairs([
            ("group.id", group.as_str()),
            ("delivery", "at-least-once"),
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "earliest"),
            ("max.poll.records", "50"),
        ])?,
    )?;
    let mut tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new("tx", p))
        .collect();
    tps.push(TopicPartition::new("eos-out", 0));
    consumer.assign(&tps)?;
    say("ready");
    loop {
        for r in consumer.poll(Duration::from_millis(50))? {
            rd_line(
                &r.topic,
                r.partition,
                r.offset,
                r.key.as_deref(),
                r.value.as_deref(),
            );
        }
    }
}
