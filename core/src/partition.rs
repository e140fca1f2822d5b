//! [`Partition`]: append to and read one partition of a topic.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Durability;
use crate::error::{bail, Result};
use crate::log::partition::PartitionLog;
use crate::log::reader::Reader;
use crate::record::{control_record, BatchOptions, ControlRecordType, ProducerInfo, Record};
use crate::store::Store;

pub use crate::log::partition::{AppendInfo, AppendOptions};

/// A handle on one partition. Cheap to clone and safe to share between threads; it
/// keeps its store open.
#[derive(Clone)]
pub struct Partition {
    store: Store,
    log: Arc<PartitionLog>,
}

/// A point-in-time copy of a partition's shared counters, as any process sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionMetrics {
    /// Records appended since the store was last opened by a first opener.
    pub records_appended: u64,
    /// Batches appended.
    pub batches_appended: u64,
    /// Bytes appended.
    pub bytes_appended: u64,
    /// Lock acquisitions that had to wait.
    pub lock_waits: u64,
    /// Repairs after a dead lock holder.
    pub repairs: u64,
    /// `fdatasync` calls for durability.
    pub syncs: u64,
    /// Segments rolled.
    pub segments_rolled: u64,
    /// Segments deleted by retention.
    pub segments_deleted: u64,
    /// Wake-ups sent to waiting readers.
    pub wakeups: u64,
    /// Idempotent retries recognised as duplicates and not appended.
    pub duplicates: u64,
    /// Batches whose CRC the last first-open recovery verified: the unsynced tail
    /// past the recovery point (0 after a clean close).
    pub recovery_verified_batches: u64,
    /// 1 if that recovery cut off a damaged or torn tail.
    pub recovery_truncations: u64,
}

/// What a partition remembers of one idempotent producer: its entry in the
/// partition's producer table (DESIGN.md, idempotent producer), as
/// [`Partition::producers`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerState {
    /// The producer id.
    pub producer_id: i64,
    /// Its current epoch in this partition.
    pub epoch: i16,
    /// Sequence number of its last remembered record, or -1 if no batch of this
    /// epoch is remembered (right after a transaction marker, for example).
    pub last_sequence: i32,
    /// Offset of its last remembered record, or -1.
    pub last_offset: i64,
    /// First offset of its transaction open in this partition, if one is.
    pub open_transaction: Option<i64>,
}

/// One segment of a partition, as [`Partition::segment_info`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The segment's base offset (its files are named by it).
    pub base_offset: i64,
    /// Bytes of record batches in its `.log`: the file length of a sealed segment,
    /// the published end position of the active one (not its reserved length).
    pub log_bytes: u64,
    /// Whether this is the active segment (the last one, being appended to).
    pub active: bool,
}

impl Partition {
    pub(crate) fn new(store: Store, log: Arc<PartitionLog>) -> Partition {
        Partition { store, log }
    }

    /// The log behind the handle, for the crate's internal logs.
    pub(crate) fn log(&self) -> &PartitionLog {
        &self.log
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        self.log.topic()
    }

    /// The partition number.
    pub fn id(&self) -> u32 {
        self.log.partition()
    }

    /// The store this partition belongs to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Appends `records` as one batch with the store's default durability: one call,
    /// one lock, one batch. Returns the offsets it got.
    pub fn append(&self, records: &[Record<'_>]) -> Result<AppendInfo> {
        self.log.append(records, &AppendOptions::default())
    }

    /// Appends with explicit options (durability, producer identity, flags).
    pub fn append_with(
        &self,
        records: &[Record<'_>],
        options: &AppendOptions,
    ) -> Result<AppendInfo> {
        self.log.append(records, options)
    }

    /// Appends a transaction marker (a COMMIT or ABORT control batch) for
    /// `producer`'s transaction in this partition: it ends the transaction here,
    /// moves the last stable offset, and an ABORT is recorded in the segment's
    /// `.txnindex`. A marker from an epoch older than the partition knows is
    /// `producer_fenced`. This is the step the transaction coordinator takes for
    /// every partition of a transaction.
    pub fn append_marker(
        &self,
        producer: ProducerInfo,
        kind: ControlRecordType,
        coordinator_epoch: i32,
    ) -> Result<AppendInfo> {
        self.append_marker_with(producer, kind, coordinator_epoch, None)
    }

    /// [`append_marker`](Self::append_marker) with an explicit durability (the
    /// coordinator syncs markers of transactions committed with `acks=synced`).
    pub fn append_marker_with(
        &self,
        producer: ProducerInfo,
        kind: ControlRecordType,
        coordinator_epoch: i32,
        durability: Option<Durability>,
    ) -> Result<AppendInfo> {
        let (key, value) = control_record(kind, coordinator_epoch);
        let options = AppendOptions {
            batch: BatchOptions {
                producer: ProducerInfo {
                    base_sequence: -1,
                    ..producer
                },
                transactional: true,
                control: true,
                ..BatchOptions::default()
            },
            durability,
        };
        self.log.append(&[Record::keyed(&key, &value)], &options)
    }

    /// Under the append lock: if `producer_id` has a transaction open in this
    /// partition and `decide` returns a marker type and epoch for the open epoch,
    /// ends it with that marker. Returns the marker's offset if it wrote one. The coordinator's way
    /// to end a transaction that may have ended here already (a holder that died
    /// between its markers and its completed state, or a second finisher), so that
    /// no marker is written twice, and to abort an orphan.
    pub(crate) fn end_open_txn(
        &self,
        producer_id: i64,
        decide: impl FnOnce(i16) -> Option<(ControlRecordType, i16)>,
    ) -> Result<Option<i64>> {
        let guard = self.log.lock()?;
        let open = self
            .log
            .block()
            .producers
            .get(producer_id)
            .filter(|e| e.txn_first_offset >= 0);
        let Some((kind, epoch)) = open.and_then(|e| decide(e.epoch)) else {
            return Ok(None);
        };
        let (key, value) = control_record(kind, 0);
        let options = AppendOptions {
            batch: BatchOptions {
                producer: ProducerInfo {
                    producer_id,
                    producer_epoch: epoch,
                    base_sequence: -1,
                },
                transactional: true,
                control: true,
                ..BatchOptions::default()
            },
            durability: None,
        };
        let info = self
            .log
            .append_under_lock(&guard, &[Record::keyed(&key, &value)], &options)?;
        Ok(Some(info.base_offset))
    }

    /// Blocks until every offset below `offset` is on stable storage.
    pub(crate) fn sync_to(&self, offset: i64) -> Result<()> {
        self.log.check_fork()?;
        self.log.sync_to(offset)
    }

    /// The producers with a transaction open in this partition and its epoch, read
    /// without the append lock (a hint: check again under the lock before acting).
    pub(crate) fn open_transactions(&self) -> Vec<(i64, i16)> {
        self.log
            .block()
            .producers
            .entries()
            .into_iter()
            .filter(|e| e.txn_first_offset >= 0)
            .map(|e| (e.producer_id, e.epoch))
            .collect()
    }

    /// A reader starting at `offset` (between [`start_offset`](Self::start_offset)
    /// and [`end_offset`](Self::end_offset), inclusive).
    pub fn reader(&self, offset: i64) -> Result<Reader> {
        Reader::new(self.log.clone(), offset, Some(self.store.clone()))
    }

    /// The offset the next appended record will get.
    pub fn end_offset(&self) -> i64 {
        self.log.end_offset()
    }

    /// The last stable offset: every transaction below it has committed or aborted
    /// (equal to the end offset when no transaction is open). `read_committed`
    /// readers stop here.
    pub fn last_stable_offset(&self) -> i64 {
        self.log.last_stable_offset()
    }

    /// The first offset still in the log.
    pub fn start_offset(&self) -> i64 {
        self.log.start_offset()
    }

    /// Every offset below this one is on stable storage.
    pub fn synced_offset(&self) -> i64 {
        self.log.block().sync.synced_offset.load(Ordering::Acquire)
    }

    /// Blocks until everything appended so far is on stable storage.
    pub fn sync(&self) -> Result<()> {
        self.log.check_fork()?;
        self.log.sync_to(self.end_offset())
    }

    /// Waits until the end offset passes `offset` (a record at `offset` exists), at
    /// most `timeout`. Sleeps on the partition's futex: costs nothing to writers while
    /// nobody waits. Returns whether data arrived.
    pub fn wait_for(&self, offset: i64, timeout: Duration) -> Result<bool> {
        self.log.wait_for(offset, timeout, Duration::ZERO)
    }

    /// As [`wait_for`](Self::wait_for), spinning up to `spin` before sleeping: lower
    /// latency when data comes soon, at the price of a busy core meanwhile.
    pub fn wait_for_spinning(
        &self,
        offset: i64,
        timeout: Duration,
        spin: Duration,
    ) -> Result<bool> {
        self.log.wait_for(offset, timeout, spin)
    }

    /// The first offset whose record has a timestamp at or after `timestamp_ms`, or
    /// `None` if every record is older (Kafka's `offsetsForTimes`).
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<i64>> {
        self.log.check_fork()?;
        let list = self.log.segments()?;
        let tail = &self.log.block().tail;
        let mut start = None;
        for (i, entry) in list.segments.iter().enumerate() {
            let newest = match entry.sealed {
                Some(s) => s.max_timestamp,
                None => tail.max_timestamp.load(Ordering::Acquire),
            };
            if newest >= timestamp_ms || entry.sealed.is_none() {
                let hint = match entry.sealed {
                    Some(s) => list
                        .seg(i)?
                        .time_index
                        .lookup_time(s.time_entries, timestamp_ms),
                    None => None,
                };
                start = Some(hint.map_or(entry.base, |h| h.offset + 1));
                break;
            }
        }
        let Some(start) = start else { return Ok(None) };
        let start = start.max(self.start_offset()).min(self.end_offset());
        let mut reader = self.reader(start)?;
        while let Some(batch) = reader.next_batch()? {
            if batch.header().max_timestamp < timestamp_ms {
                continue;
            }
            for record in batch.records() {
                let record = record?;
                if record.timestamp >= timestamp_ms {
                    return Ok(Some(record.offset));
                }
            }
        }
        Ok(None)
    }

    /// The producers this partition remembers (at most 48, the least recently
    /// active forgotten first), with their epoch, last sequence and open
    /// transaction, sorted by producer id. Takes the append lock for a moment, so
    /// that no append changes the table while it is read.
    pub fn producers(&self) -> Result<Vec<ProducerState>> {
        let _guard = self.log.lock()?;
        let mut out: Vec<ProducerState> = self
            .log
            .block()
            .producers
            .entries()
            .into_iter()
            .map(|e| {
                let last = e.batches.last();
                ProducerState {
                    producer_id: e.producer_id,
                    epoch: e.epoch,
                    last_sequence: last.map_or(-1, |b| b.last_seq),
                    last_offset: last.map_or(-1, |b| b.last_offset),
                    open_transaction: (e.txn_first_offset >= 0).then_some(e.txn_first_offset),
                }
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        Ok(out)
    }

    /// The partition's segments, oldest first, with the bytes of batches each
    /// holds; the last one is the active segment. Takes the append lock for a
    /// moment: a roll resets the active segment's position before it moves to the
    /// new segment, so only the lock gives a consistent picture.
    pub fn segment_info(&self) -> Result<Vec<SegmentInfo>> {
        self.log.check_fork()?;
        let _guard = self.log.lock()?;
        let list = self.log.segments()?;
        let end_position = self.log.block().tail.end_position.load(Ordering::Acquire);
        Ok(list
            .segments
            .iter()
            .map(|s| SegmentInfo {
                base_offset: s.base,
                log_bytes: s.sealed.map_or(end_position, |x| x.log_len),
                active: s.sealed.is_none(),
            })
            .collect())
    }

    /// Deletes whole old segments beyond `retention.bytes` / `retention.ms` now
    /// (it also runs at every segment roll). Returns how many were deleted.
    pub fn apply_retention(&self) -> Result<usize> {
        self.log.apply_retention()
    }

    /// The partition's shared counters.
    pub fn metrics(&self) -> PartitionMetrics {
        let m = &self.log.block().metrics;
        let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        PartitionMetrics {
            records_appended: l(&m.records_appended),
            batches_appended: l(&m.batches_appended),
            bytes_appended: l(&m.bytes_appended),
            lock_waits: l(&m.lock_waits),
            repairs: l(&m.repairs),
            syncs: l(&m.syncs),
            segments_rolled: l(&m.segments_rolled),
            segments_deleted: l(&m.segments_deleted),
            wakeups: l(&m.wakeups),
            duplicates: l(&m.duplicates),
            recovery_verified_batches: l(&m.recovery_verified_batches),
            recovery_truncations: l(&m.recovery_truncations),
        }
    }

    /// Appends records one batch at a time until `records` is exhausted; a
    /// convenience for tools. Each batch holds at most `per_batch` records.
    pub fn append_all(&self, records: &[Record<'_>], per_batch: usize) -> Result<Vec<AppendInfo>> {
        if per_batch == 0 {
            bail!(InvalidArgument, "per_batch must be at least 1");
        }
        records.chunks(per_batch).map(|c| self.append(c)).collect()
    }
}
