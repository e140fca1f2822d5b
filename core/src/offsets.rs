//! Committed offsets: the log `__consumer_offsets`, with one record per commit in
//! Kafka's `OffsetCommitKey`/`OffsetCommitValue` layout, read by every process. The
//! latest record for a (group, topic, partition) is the committed offset.
//!
//! The log stays bounded however often offsets are committed: once it spans a few
//! segments, a process appends, under the append lock, a snapshot of every latest
//! commit and deletes the segments wholly before it (a compaction that never needs
//! to rewrite a file). Offsets committed through a transaction count once its
//! COMMIT marker is read (never after an ABORT), without holding back anyone
//! else's commits meanwhile.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{bail, Error, ErrorKind, Result};
use crate::log::partition::now_ms;
use crate::partition::{AppendOptions, Partition};
use crate::record::{ControlRecordType, Record};
use crate::store::Store;
use crate::topic::CONSUMER_OFFSETS;
use crate::wire::{put_str, Cursor};
use crate::Reader;

/// A committed offset: the next offset the group will consume from a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The offset.
    pub offset: i64,
    /// The metadata string committed with it.
    pub metadata: String,
    /// When it was committed (ms since the Unix epoch).
    pub timestamp: i64,
}

type Key = (String, String, u32);

/// Config of `__consumer_offsets`: 1 MiB segments, kept forever (compaction bounds it).
const LOG_CONFIG: [(&str, &str); 3] = [
    ("segment.bytes", "1048576"),
    ("retention.ms", "-1"),
    ("retention.bytes", "-1"),
];
/// Segments at which a commit compacts the log.
const COMPACT_AT_SEGMENTS: usize = 3;
/// Records per snapshot batch.
const SNAPSHOT_BATCH: usize = 2000;

struct Cache {
    map: HashMap<Key, CommittedOffset>,
    /// Offsets of open transactions, by producer id, until their marker.
    pending: HashMap<i64, Vec<(Key, CommittedOffset)>>,
    reader: Option<Reader>,
}

/// This process's view of `__consumer_offsets`, shared by its consumers.
pub struct OffsetStore {
    partition: Partition,
    cache: Mutex<Cache>,
}

impl OffsetStore {
    /// Opens (creating on first use) the store's offsets log.
    pub fn open(store: &Store) -> Result<OffsetStore> {
        Ok(OffsetStore {
            partition: log_partition(store)?,
            cache: Mutex::new(Cache {
                map: HashMap::new(),
                pending: HashMap::new(),
                reader: None,
            }),
        })
    }

    /// The committed offset of `group` for `topic`/`partition`, as every process sees
    /// it: the log is read up to its end first.
    pub fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<CommittedOffset>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        self.catch_up(&mut cache)?;
        Ok(cache
            .map
            .get(&(group.to_string(), topic.to_string(), partition))
            .cloned())
    }

    /// Every committed offset, as `(group, topic, partition, offset)`, sorted by
    /// group, topic and partition; the log is read up to its end first. Offsets
    /// sent in a transaction that is still open are not among them.
    pub fn all_committed(&self) -> Result<Vec<(String, String, u32, CommittedOffset)>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        self.catch_up(&mut cache)?;
        let mut all: Vec<(String, String, u32, CommittedOffset)> = cache
            .map
            .iter()
            .map(|((g, t, p), c)| (g.clone(), t.clone(), *p, c.clone()))
            .collect();
        all.sort_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
        Ok(all)
    }

    /// Whether a transaction that is still open sent offsets of `group` for
    /// `topic`/`partition` (Kafka's unstable offset commit): the committed offset may
    /// still move when it ends.
    pub fn has_pending(&self, group: &str, topic: &str, partition: u32) -> Result<bool> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        self.catch_up(&mut cache)?;
        let key = (group.to_string(), topic.to_string(), partition);
        Ok(cache
            .pending
            .values()
            .any(|offsets| offsets.iter().any(|(k, _)| *k == key)))
    }

    /// Commits `offsets` (topic, partition, offset, metadata) for `group`, as one
    /// batch: all or none become visible.
    pub fn commit(&self, group: &str, offsets: &[(&str, u32, i64, &str)]) -> Result<()> {
        if group.is_empty() {
            bail!(InvalidArgument, "a commit needs a group id");
        }
        crate::wire::check_str("the group id", group)?;
        for (_, _, _, metadata) in offsets {
            crate::wire::check_str("offset metadata", metadata)?;
        }
        if offsets.is_empty() {
            return Ok(());
        }
        if let Some((t, p, o, _)) = offsets.iter().find(|(_, _, o, _)| *o < 0) {
            bail!(InvalidArgument, "cannot commit offset {o} for {t}-{p}");
        }
        let now = now_ms();
        let encoded: Vec<(Vec<u8>, Vec<u8>)> = offsets
            .iter()
            .map(|(t, p, o, m)| (encode_key(group, t, *p), encode_value(*o, m, now)))
            .collect();
        let records: Vec<Record<'_>> = encoded.iter().map(|(k, v)| Record::keyed(k, v)).collect();
        self.partition.append(&records)?;
        if self.partition.log().segments()?.segments.len() >= COMPACT_AT_SEGMENTS {
            self.compact()?;
        }
        Ok(())
    }

    /// Reads what was committed since the last look.
    fn catch_up(&self, cache: &mut Cache) -> Result<()> {
        loop {
            let reader = match cache.reader.as_mut() {
                Some(r) => r,
                None => {
                    cache.map.clear();
                    cache.pending.clear();
                    let reader = self.partition.reader(self.partition.start_offset())?;
                    cache.reader.insert(reader)
                }
            };
            match read_into(reader, &mut cache.map, &mut cache.pending) {
                Ok(()) => return Ok(()),
                // Compacted under us: the log now starts with a snapshot; reread it.
                Err(e) if e.kind() == ErrorKind::OffsetOutOfRange => cache.reader = None,
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends a snapshot of every latest commit and deletes the segments before it.
    fn compact(&self) -> Result<()> {
        let log = self.partition.log();
        let guard = log.lock()?;
        // Under the lock the log cannot grow: the snapshot misses nothing.
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        self.catch_up(&mut cache)?;
        let encoded: Vec<(Vec<u8>, Vec<u8>)> = cache
            .map
            .iter()
            .map(|((g, t, p), c)| {
                (
                    encode_key(g, t, *p),
                    encode_value(c.offset, &c.metadata, c.timestamp),
                )
            })
            .collect();
        let mut first = None;
        for chunk in encoded.chunks(SNAPSHOT_BATCH) {
            let records: Vec<Record<'_>> = chunk.iter().map(|(k, v)| Record::keyed(k, v)).collect();
            let info = log.append_under_lock(&guard, &records, &AppendOptions::default())?;
            first.get_or_insert(info.base_offset);
        }
        if let Some(first) = first {
            // Not past the last stable offset: an open transaction's commits there
            // are not in the snapshot and must stay until it ends.
            log.delete_segments_below(&guard, first.min(log.last_stable_offset()))?;
        }
        Ok(())
    }
}

/// The partition of `__consumer_offsets`, created on first use.
pub(crate) fn log_partition(store: &Store) -> Result<Partition> {
    store.internal_partition(CONSUMER_OFFSETS, &LOG_CONFIG)
}

/// Reads new records into `map`. Offsets committed outside transactions apply at
/// once; those of a transaction wait in `pending` (per producer) for its marker:
/// applied on COMMIT, dropped on ABORT (as Kafka's group coordinator does), so an
/// open transaction never holds back other groups' commits.
fn read_into(
    reader: &mut Reader,
    map: &mut HashMap<Key, CommittedOffset>,
    pending: &mut HashMap<i64, Vec<(Key, CommittedOffset)>>,
) -> Result<()> {
    while let Some(batch) = reader.next_batch()? {
        let header = *batch.header();
        if header.is_control() {
            let commit = matches!(batch.batch().control(), Ok((ControlRecordType::Commit, _)));
            if let Some(done) = pending.remove(&header.producer_id) {
                if commit {
                    map.extend(done);
                }
            }
            continue;
        }
        for record in batch.records() {
            let record = record?;
            let (Some(k), Some(v)) = (record.key, record.value) else {
                continue;
            };
            let Some(key) = decode_key(k) else { continue };
            let value = decode_value(v).ok_or_else(|| {
                Error::new(
                    ErrorKind::Corrupt,
                    format!(
                        "{CONSUMER_OFFSETS} offset {}: bad commit value",
                        record.offset
                    ),
                )
            })?;
            if header.is_transactional() {
                pending
                    .entry(header.producer_id)
                    .or_default()
                    .push((key, value));
            } else {
                map.insert(key, value);
            }
        }
    }
    Ok(())
}

/// Kafka's `OffsetCommitKey` (version 1): group, topic, partition.
pub(crate) fn encode_key(group: &str, topic: &str, partition: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + group.len() + topic.len());
    out.extend_from_slice(&1i16.to_be_bytes());
    put_str(&mut out, group);
    put_str(&mut out, topic);
    out.extend_from_slice(&(partition as i32).to_be_bytes());
    out
}

/// Kafka's `OffsetCommitValue` (version 3): offset, leader epoch (-1), metadata,
/// commit timestamp.
pub(crate) fn encode_value(offset: i64, metadata: &str, timestamp: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + metadata.len());
    out.extend_from_slice(&3i16.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    put_str(&mut out, metadata);
    out.extend_from_slice(&timestamp.to_be_bytes());
    out
}

/// An offset-commit key; `None` for other key versions (group metadata).
pub(crate) fn decode_key(bytes: &[u8]) -> Option<Key> {
    let mut c = Cursor(bytes);
    if !matches!(c.i16()?, 0 | 1) {
        return None;
    }
    let group = c.string()?;
    let topic = c.string()?;
    let partition = u32::try_from(c.i32()?).ok()?;
    c.is_empty().then_some((group, topic, partition))
}

pub(crate) fn decode_value(bytes: &[u8]) -> Option<CommittedOffset> {
    let mut c = Cursor(bytes);
    if c.i16()? != 3 {
        return None;
    }
    let offset = c.i64()?;
    let _leader_epoch = c.i32()?;
    let metadata = c.string()?;
    let timestamp = c.i64()?;
    Some(CommittedOffset {
        offset,
        metadata,
        timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchOptions, ProducerInfo};
    use crate::{StoreOptions, TopicConfig};

    #[test]
    fn offsets_committed_in_a_transaction_count_once_it_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store.create_topic("t", 1, TopicConfig::default()).unwrap();
        let offsets = OffsetStore::open(&store).unwrap();
        offsets.commit("g", &[("t", 0, 5, "")]).unwrap();
        let log = store.partition(CONSUMER_OFFSETS, 0).unwrap();
        let producer = ProducerInfo {
            producer_id: 77,
            producer_epoch: 0,
            base_sequence: 0,
        };
        let send_in_txn = |offset: i64, seq: i32| {
            let (k, v) = (encode_key("g", "t", 0), encode_value(offset, "", 0));
            let options = AppendOptions {
                batch: BatchOptions {
                    producer: ProducerInfo {
                        base_sequence: seq,
                        ..producer
                    },
                    transactional: true,
                    ..BatchOptions::default()
                },
                durability: None,
            };
            log.append_with(&[Record::keyed(&k, &v)], &options).unwrap();
        };
        let committed = || offsets.committed("g", "t", 0).unwrap().map(|c| c.offset);
        send_in_txn(9, 0);
        assert_eq!(
            committed(),
            Some(5),
            "invisible while the transaction is open"
        );
        log.append_marker(producer, ControlRecordType::Commit, 0)
            .unwrap();
        assert_eq!(committed(), Some(9), "visible once it commits");
        send_in_txn(12, 1);
        log.append_marker(producer, ControlRecordType::Abort, 0)
            .unwrap();
        assert_eq!(committed(), Some(9), "an aborted commit never counts");
    }

    #[test]
    fn commit_records_round_trip_in_kafkas_layout() {
        let key = encode_key("g", "orders", 7);
        assert_eq!(
            key,
            [0, 1, 0, 1, b'g', 0, 6, b'o', b'r', b'd', b'e', b'r', b's', 0, 0, 0, 7]
        );
        assert_eq!(decode_key(&key), Some(("g".into(), "orders".into(), 7)));
        let value = encode_value(42, "meta", 1_700_000_000_000);
        let c = decode_value(&value).unwrap();
        assert_eq!(
            (c.offset, c.metadata.as_str(), c.timestamp),
            (42, "meta", 1_700_000_000_000)
        );
        assert_eq!(decode_key(&key[..key.len() - 1]), None);
        assert_eq!(decode_value(&value[..5]), None);
        let mut group_metadata_key = key.clone();
        group_metadata_key[1] = 2;
        assert_eq!(
            decode_key(&group_metadata_key),
            None,
            "other key versions are skipped"
        );
    }
}
