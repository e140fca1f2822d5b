//! The `open_store` target: a valid store with damaged files is opened, read,
//! appended to and reopened. Only clean errors are allowed; and whatever was
//! appended after the damage is read back after reopening.

use arbitrary::{Arbitrary, Unstructured};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use super::scratch::ScratchDir;
use super::template::{self, GROUP, PARTITIONS, TOPIC};
use crate::consumer::TopicPartition;
use crate::offsets::OffsetStore;
use crate::topic::{CONSUMER_OFFSETS, TRANSACTION_STATE};
use crate::txn::Coordinator;
use crate::{
    Consumer, ConsumerConfig, Durability, Partition, Producer, ProducerConfig, ProducerRecord,
    Record, Store,
};

/// Largest number of bytes one edit adds.
const MAX_EDIT_BYTES: usize = 4096;
/// Partitions of a topic that are read (damaged metadata may claim thousands).
const MAX_PARTITIONS_READ: u32 = 4;
/// Batches read from one partition before moving on.
const MAX_BATCHES_READ: usize = 10_000;

/// One change to one file of the template.
#[derive(Arbitrary, Debug)]
struct Edit {
    /// Which file, modulo the number of files.
    file: u16,
    what: EditKind,
}

#[derive(Arbitrary, Debug)]
enum EditKind {
    /// Writes bytes at a position (modulo the file's length + 1).
    Overwrite { at: u32, bytes: Vec<u8> },
    /// Writes a big-endian integer at a position: lengths, offsets, counts.
    Integer { at: u32, value: i64, width: u8 },
    /// Flips one bit.
    FlipBit { at: u32, bit: u8 },
    /// Cuts the file at a position.
    Truncate { at: u32 },
    /// Appends bytes.
    Extend { bytes: Vec<u8> },
    /// Removes the file.
    Delete,
    /// Renames a segment file (or copies it, leaving the original) to another base
    /// offset: a stray or misplaced segment.
    MoveSegment { base: i64, keep: bool },
}

/// Damages a copy of the template store as `data` says, then opens it, reads every
/// partition, appends, commits, runs a transaction, closes and reopens it.
pub fn open_store(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(edits) = Vec::<Edit>::arbitrary(&mut u) else {
        return;
    };
    let dir = ScratchDir::new("open");
    template::write_to(dir.path());
    let files = template::files();
    for edit in edits.iter().take(16) {
        let (rel, _) = &files[usize::from(edit.file) % files.len()];
        apply(&dir.path().join(rel), &edit.what);
    }
    let Ok(store) = Store::open(dir.path(), template::options()) else {
        return;
    };
    read_everything(&store);
    let appended = append_and_commit(&store);
    drop(store);
    let store = Store::open(dir.path(), template::options())
        .expect("a store that opened once reopens after a clean close");
    read_everything(&store);
    for (partition, offset, value) in appended {
        let p = store.partition(TOPIC, partition).expect("the partition");
        if offset < p.start_offset() {
            // Retention (damaged topic config may ask for little) deleted it.
            continue;
        }
        assert_eq!(
            value_at(&p, offset),
            Some(value),
            "{TOPIC}-{partition}@{offset}"
        );
    }
}

/// The value of the record at `offset`, read after reopening.
fn value_at(p: &Partition, offset: i64) -> Option<Vec<u8>> {
    let mut reader = p
        .reader(offset)
        .expect("a reader at an acknowledged offset");
    let batch = reader.next_batch().expect("read").expect("a batch");
    let record = batch
        .records()
        .filter_map(std::result::Result::ok)
        .find(|r| r.offset == offset)?;
    record.value.map(<[u8]>::to_vec)
}

/// Applies one edit to the file at `path`, ignoring files that are gone.
fn apply(path: &Path, what: &EditKind) {
    let Ok(file) = OpenOptions::new().read(true).write(true).open(path) else {
        return;
    };
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return;
    };
    let pos = |at: u32| u64::from(at) % (len + 1);
    let _ = match what {
        EditKind::Overwrite { at, bytes } => {
            let bytes = &bytes[..bytes.len().min(MAX_EDIT_BYTES)];
            file.write_all_at(bytes, pos(*at))
        }
        EditKind::Integer { at, value, width } => {
            let bytes = value.to_be_bytes();
            let width = [1, 2, 4, 8][usize::from(*width % 4)];
            file.write_all_at(&bytes[8 - width..], pos(*at))
        }
        EditKind::FlipBit { at, bit } => {
            let at = pos(*at).min(len.saturating_sub(1));
            let mut b = [0u8];
            match file.read_exact_at(&mut b, at) {
                Ok(()) => file.write_all_at(&[b[0] ^ (1 << (bit % 8))], at),
                Err(e) => Err(e),
            }
        }
        EditKind::Truncate { at } => file.set_len(pos(*at)),
        EditKind::Extend { bytes } => {
            let bytes = &bytes[..bytes.len().min(MAX_EDIT_BYTES)];
            file.write_all_at(bytes, len)
        }
        EditKind::Delete => std::fs::remove_file(path),
        EditKind::MoveSegment { base, keep } => move_segment(path, *base, *keep),
    };
}

/// Renames or copies `path`, if it is a segment file (`<20 digits>.<ext>`), to the
/// same extension at base `base` (made non-negative).
fn move_segment(path: &Path, base: i64, keep: bool) -> std::io::Result<()> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(());
    };
    let Some((stem, ext)) = name.split_once('.') else {
        return Ok(());
    };
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    let to = path.with_file_name(format!("{:020}.{ext}", base & i64::MAX));
    if keep {
        std::fs::copy(path, to).map(drop)
    } else {
        std::fs::rename(path, to)
    }
}

/// Reads every partition of every topic, both isolation levels, and the internal
/// logs' views: committed offsets and transaction states. Errors are fine.
fn read_everything(store: &Store) {
    let mut partitions: Vec<(String, u32)> = vec![
        (CONSUMER_OFFSETS.to_string(), 0),
        (TRANSACTION_STATE.to_string(), 0),
    ];
    if let Ok(topics) = store.topics() {
        for t in topics {
            for p in 0..t.partitions.min(MAX_PARTITIONS_READ) {
                partitions.push((t.name.clone(), p));
            }
        }
    }
    for (topic, p) in &partitions {
        if let Ok(partition) = store.partition(topic, *p) {
            read_partition(&partition, false);
            read_partition(&partition, true);
            let _ = partition.offset_for_timestamp(0);
            let _ = partition.producers();
            let _ = partition.segment_info();
            let _ = partition.metrics();
        }
    }
    if let Ok(offsets) = OffsetStore::open(store) {
        let _ = offsets.all_committed();
    }
    if let Ok(coordinator) = Coordinator::open(store, Durability::Written) {
        let _ = coordinator.states();
    }
}

/// Reads a partition from its start: offsets increase and stay below the end.
fn read_partition(partition: &Partition, read_committed: bool) {
    let Ok(reader) = partition.reader(partition.start_offset()) else {
        return;
    };
    let mut reader = reader.verify_crc(true).read_committed(read_committed);
    let end = partition.end_offset();
    let mut last = i64::MIN;
    for _ in 0..MAX_BATCHES_READ {
        let batch = match reader.next_batch() {
            Ok(Some(batch)) => batch,
            Ok(None) | Err(_) => return,
        };
        for record in batch.records() {
            let Ok(record) = record else { break };
            assert!(record.offset > last, "offsets increase");
            assert!(record.offset < end, "a record at or past the end offset");
            last = record.offset;
        }
    }
}

/// Appends to each partition of the data topic, commits an offset, runs a
/// transaction and reads with a read_committed consumer. Returns what was
/// acknowledged: partition, offset and value.
fn append_and_commit(store: &Store) -> Vec<(u32, i64, Vec<u8>)> {
    let mut acknowledged = Vec::new();
    for p in 0..PARTITIONS {
        let Ok(partition) = store.partition(TOPIC, p) else {
            continue;
        };
        let value = format!("after-{p}").into_bytes();
        if let Ok(info) = partition.append(&[Record::keyed(b"k", &value)]) {
            acknowledged.push((p, info.base_offset, value));
        }
    }
    if let Ok(offsets) = OffsetStore::open(store) {
        let _ = offsets.commit(GROUP, &[(TOPIC, 0, 1, "m")]);
    }
    let mut config = ProducerConfig::default();
    if config.set("transactional.id", "tx").is_ok() {
        if let Ok(producer) = Producer::new(store, config) {
            let _ = producer.init_transactions().and_then(|()| {
                producer.begin_transaction()?;
                producer.send(ProducerRecord::new(TOPIC, b"txn").partition(0))?;
                producer.commit_transaction()
            });
            let _ = producer.close();
        }
    }
    let mut config = ConsumerConfig::default();
    for (k, v) in [
        ("group.id", GROUP),
        ("isolation.level", "read_committed"),
        ("auto.offset.reset", "earliest"),
    ] {
        let _ = config.set(k, v);
    }
    if let Ok(mut consumer) = Consumer::new(store, config) {
        let tps: Vec<TopicPartition> = (0..PARTITIONS)
            .map(|p| TopicPartition::new(TOPIC, p))
            .collect();
        if consumer.assign(&tps).is_ok() {
            let _ = consumer.poll(Duration::ZERO);
            let _ = consumer.commit();
        }
        let _ = consumer.close();
    }
    acknowledged
}
