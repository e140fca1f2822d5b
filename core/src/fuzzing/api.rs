//! The `api_sequence` target: random sequences of API calls on one store, checked
//! against a model of what was acknowledged.
//!
//! The model: every acknowledged record, by partition and offset, with its value
//! and the transaction it belongs to (and how that ended). Checks: a record read is
//! the one acknowledged at its offset; a read_committed reader never shows a record
//! of an aborted or open transaction; a consumer's offsets increase between seeks;
//! a read_uncommitted walk of a partition finds every acknowledged record still
//! inside the log's range.

use arbitrary::{Arbitrary, Unstructured};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::scratch::ScratchDir;
use super::template::{self, GROUP, PARTITIONS, TOPIC};
use crate::consumer::TopicPartition;
use crate::{
    Consumer, ConsumerConfig, Partition, Producer, ProducerConfig, ProducerRecord, Record, Store,
    TopicConfig,
};

/// Calls one input may make.
const MAX_OPS: usize = 64;

/// One API call.
#[derive(Arbitrary, Debug)]
enum Op {
    /// `send` on the plain (0) or idempotent (1) producer.
    Send {
        idempotent: bool,
        partition: u8,
        value: u8,
        len: u8,
    },
    /// `send_batch` of `count` records.
    SendBatch {
        idempotent: bool,
        partition: u8,
        value: u8,
        count: u8,
    },
    /// `begin_transaction`.
    Begin,
    /// `send` in the transaction.
    TxnSend { partition: u8, value: u8 },
    /// `send_offsets_to_transaction`.
    TxnOffsets { partition: u8, offset: u8 },
    /// `commit_transaction`.
    Commit,
    /// `abort_transaction`.
    Abort,
    /// `poll` on the read_committed (true) or read_uncommitted consumer.
    Poll { committed: bool },
    /// `seek` on a consumer.
    Seek {
        committed: bool,
        partition: u8,
        offset: u8,
    },
    /// `commit` of a consumer's positions.
    ConsumerCommit { committed: bool },
    /// `subscribe` of the read_committed consumer (instead of `assign`).
    Subscribe,
    /// Walks a partition from its start with a fresh reader, through the session's
    /// store handle or a second one (which attaches to the open store).
    ReadAll {
        partition: u8,
        committed: bool,
        second: bool,
    },
    /// Drops the second store handle.
    DropSecond,
    /// `apply_retention` on a partition.
    Retention { partition: u8 },
    /// Closes everything, reopens the store.
    Reopen,
}

/// How a transaction ended, as far as the caller was told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Open,
    Committed,
    Aborted,
    /// A commit or abort failed: either may have happened.
    Unknown,
}

/// An acknowledged record.
#[derive(Debug)]
struct Acked {
    value: Vec<u8>,
    txn: Option<usize>,
}

/// What the caller was told.
#[derive(Default)]
struct Model {
    records: BTreeMap<(u32, i64), Acked>,
    txns: Vec<Outcome>,
}

impl Model {
    fn open_txn(&self) -> Option<usize> {
        self.txns.iter().rposition(|o| *o == Outcome::Open)
    }

    fn end_open(&mut self, outcome: Outcome) {
        for o in &mut self.txns {
            if *o == Outcome::Open {
                *o = outcome;
            }
        }
    }

    /// Checks a record read at `offset` of `partition`.
    fn check_read(&self, partition: u32, offset: i64, value: Option<&[u8]>, committed: bool) {
        let acked = self
            .records
            .get(&(partition, offset))
            .unwrap_or_else(|| panic!("{TOPIC}-{partition}@{offset} was never acknowledged"));
        assert_eq!(
            Some(acked.value.as_slice()),
            value,
            "{TOPIC}-{partition}@{offset}"
        );
        if committed {
            if let Some(t) = acked.txn {
                let outcome = self.txns[t];
                assert!(
                    matches!(outcome, Outcome::Committed | Outcome::Unknown),
                    "read_committed shows {TOPIC}-{partition}@{offset} of a transaction {outcome:?}"
                );
            }
        }
    }
}

/// The open handles on the store.
struct Session {
    store: Store,
    plain: Producer,
    idempotent: Producer,
    txn: Option<Producer>,
    consumers: [Consumer; 2],
    /// A second handle on the same store, opened on demand: it attaches to the
    /// control blocks the first one created, as another process would.
    second: Option<Store>,
    /// Last offset each consumer handed out per partition, since its last seek.
    last: [HashMap<u32, i64>; 2],
}

impl Session {
    fn open(dir: &std::path::Path) -> crate::Result<Session> {
        let store = Store::open(dir, template::options())?;
        let mut plain = ProducerConfig::default();
        plain.set("enable.idempotence", "false")?;
        let mut txn = ProducerConfig::default();
        txn.set("transactional.id", "api")?;
        let txn = Producer::new(&store, txn)?;
        let txn = txn.init_transactions().ok().map(|()| txn);
        let consumer = |committed: bool| -> crate::Result<Consumer> {
            let mut c = ConsumerConfig::default();
            c.set("auto.offset.reset", "earliest")?;
            c.set("enable.auto.commit", "false")?;
            if committed {
                c.set("group.id", GROUP)?;
                c.set("isolation.level", "read_committed")?;
            }
            let mut consumer = Consumer::new(&store, c)?;
            let tps: Vec<TopicPartition> = (0..PARTITIONS)
                .map(|p| TopicPartition::new(TOPIC, p))
                .collect();
            consumer.assign(&tps)?;
            Ok(consumer)
        };
        Ok(Session {
            plain: Producer::new(&store, plain)?,
            idempotent: Producer::new(&store, ProducerConfig::default())?,
            txn,
            consumers: [consumer(false)?, consumer(true)?],
            last: Default::default(),
            second: None,
            store,
        })
    }
}

/// Runs the calls `data` describes on a fresh store and checks each outcome.
pub fn api_sequence(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(ops) = Vec::<Op>::arbitrary(&mut u) else {
        return;
    };
    let dir = ScratchDir::new("api");
    {
        let store = Store::open(dir.path(), template::options()).expect("open a new store");
        let config = TopicConfig {
            retention_bytes: 2048,
            ..template::topic_config()
        };
        store
            .create_topic(TOPIC, PARTITIONS, config)
            .expect("create the topic");
    }
    let mut model = Model::default();
    let mut session = Session::open(dir.path()).expect("open the store");
    for op in ops.into_iter().take(MAX_OPS) {
        if let Op::Reopen = op {
            drop(session);
            // A transaction left open is aborted by the next holder of its id.
            session = Session::open(dir.path()).expect("reopen the store");
            if session.txn.is_some() {
                model.end_open(Outcome::Aborted);
            }
            continue;
        }
        run(&mut session, &mut model, op);
    }
    for p in 0..PARTITIONS {
        read_all(&session.store, &model, p, false);
        read_all(&session.store, &model, p, true);
    }
}

fn partition_of(p: u8) -> u32 {
    u32::from(p) % PARTITIONS
}

/// Runs one call and checks its outcome against the model.
fn run(s: &mut Session, model: &mut Model, op: Op) {
    match op {
        Op::Send {
            idempotent,
            partition,
            value,
            len,
        } => {
            let producer = if idempotent { &s.idempotent } else { &s.plain };
            let v = vec![value; usize::from(len % 64)];
            let record = ProducerRecord::new(TOPIC, &v).partition(partition_of(partition));
            if producer.send(record).is_ok() {
                take_reports(producer, model, &v, None);
            }
        }
        Op::SendBatch {
            idempotent,
            partition,
            value,
            count,
        } => {
            let producer = if idempotent { &s.idempotent } else { &s.plain };
            let values: Vec<Vec<u8>> = (0..count % 8 + 1).map(|i| vec![value, i]).collect();
            let records: Vec<Record<'_>> = values.iter().map(|v| Record::value(v)).collect();
            let p = partition_of(partition);
            if let Ok(info) = producer.send_batch(TOPIC, p, &records) {
                assert_eq!(info.last_offset - info.base_offset + 1, values.len() as i64);
                for (i, v) in values.into_iter().enumerate() {
                    let offset = info.base_offset + i as i64;
                    acknowledge(model, p, offset, v, None);
                }
            }
        }
        Op::Begin => {
            if let Some(t) = &s.txn {
                if t.begin_transaction().is_ok() {
                    assert!(model.open_txn().is_none(), "begin with a transaction open");
                    model.txns.push(Outcome::Open);
                }
            }
        }
        Op::TxnSend { partition, value } => {
            if let Some(t) = &s.txn {
                let v = [value; 3];
                let record = ProducerRecord::new(TOPIC, &v).partition(partition_of(partition));
                if t.send(record).is_ok() {
                    let txn = model.open_txn();
                    assert!(txn.is_some(), "a transactional send outside a transaction");
                    take_reports(t, model, &v, txn);
                }
            }
        }
        Op::TxnOffsets { partition, offset } => {
            if let Some(t) = &s.txn {
                let tp = TopicPartition::new(TOPIC, partition_of(partition));
                let _ = t.send_offsets_to_transaction(&[(tp, i64::from(offset))], GROUP);
            }
        }
        Op::Commit | Op::Abort => {
            if let Some(t) = &s.txn {
                let commit = matches!(op, Op::Commit);
                let result = if commit {
                    t.commit_transaction()
                } else {
                    t.abort_transaction()
                };
                match (result, commit) {
                    (Ok(()), true) => model.end_open(Outcome::Committed),
                    (Ok(()), false) => model.end_open(Outcome::Aborted),
                    (Err(_), _) => model.end_open(Outcome::Unknown),
                }
            }
        }
        Op::Poll { committed } => {
            let i = usize::from(committed);
            if let Ok(records) = s.consumers[i].poll(Duration::ZERO) {
                for r in records {
                    assert_eq!(r.topic, TOPIC);
                    model.check_read(r.partition, r.offset, r.value.as_deref(), committed);
                    let last = s.last[i].insert(r.partition, r.offset);
                    if let Some(last) = last {
                        assert!(r.offset > last, "a consumer's offsets increase");
                    }
                }
            }
        }
        Op::Seek {
            committed,
            partition,
            offset,
        } => {
            let i = usize::from(committed);
            let p = partition_of(partition);
            let tp = TopicPartition::new(TOPIC, p);
            if s.consumers[i].seek(&tp, i64::from(offset)).is_ok() {
                s.last[i].remove(&p);
            }
        }
        Op::ConsumerCommit { committed } => {
            let _ = s.consumers[usize::from(committed)].commit();
        }
        Op::Subscribe => {
            if s.consumers[1].subscribe(&[TOPIC]).is_ok() {
                s.last[1].clear();
            }
        }
        Op::ReadAll {
            partition,
            committed,
            second,
        } => {
            let store = if second {
                if s.second.is_none() {
                    s.second = Some(
                        Store::open(s.store.path(), template::options())
                            .expect("a second handle on an open store"),
                    );
                }
                s.second.as_ref().expect("opened above")
            } else {
                &s.store
            };
            read_all(store, model, partition_of(partition), committed);
        }
        Op::DropSecond => s.second = None,
        Op::Retention { partition } => {
            if let Ok(p) = s.store.partition(TOPIC, partition_of(partition)) {
                let _ = p.apply_retention();
            }
        }
        Op::Reopen => unreachable!("handled by the caller"),
    }
}

/// Takes a producer's delivery reports after a send of `value` with `linger.ms = 0`:
/// an offset acknowledges the record.
fn take_reports(producer: &Producer, model: &mut Model, value: &[u8], txn: Option<usize>) {
    for report in producer.poll() {
        if let Ok(offset) = report.result {
            acknowledge(model, report.partition, offset, value.to_vec(), txn);
        }
    }
}

fn acknowledge(model: &mut Model, partition: u32, offset: i64, value: Vec<u8>, txn: Option<usize>) {
    let old = model
        .records
        .insert((partition, offset), Acked { value, txn });
    assert!(
        old.is_none(),
        "{TOPIC}-{partition}@{offset} acknowledged twice"
    );
}

/// Walks a partition from its start: every record is the acknowledged one, offsets
/// increase, read_committed shows no aborted record, and read_uncommitted finds
/// every acknowledged record between the log's start and end.
fn read_all(store: &Store, model: &Model, partition: u32, committed: bool) {
    let Ok(p) = store.partition(TOPIC, partition) else {
        return;
    };
    let seen = walk(&p, model, committed);
    if committed {
        return;
    }
    let (start, end) = (p.start_offset(), p.end_offset());
    for (&(_, offset), _) in model.records.range((partition, start)..(partition, end)) {
        assert!(
            seen.contains(&offset),
            "{TOPIC}-{partition}@{offset} was acknowledged and is missing"
        );
    }
}

/// The offsets of the data records of a partition, from its start.
fn walk(p: &Partition, model: &Model, committed: bool) -> Vec<i64> {
    let mut seen = Vec::new();
    let reader = p.reader(p.start_offset()).expect("a reader at the start");
    let mut reader = reader.verify_crc(true).read_committed(committed);
    while let Some(batch) = reader.next_batch().expect("read a batch") {
        if batch.header().is_control() {
            continue;
        }
        for record in batch.records() {
            let record = record.expect("a record of a valid batch");
            if let Some(&last) = seen.last() {
                assert!(record.offset > last, "offsets increase");
            }
            model.check_read(p.id(), record.offset, record.value, committed);
            seen.push(record.offset);
        }
    }
    seen
}
