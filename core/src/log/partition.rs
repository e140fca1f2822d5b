//! One partition's log as this process sees it: the control block, the mapped
//! segments, and the append path (lock, roll, reserve, encode in place, index,
//! publish, wake).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::background::Background;
use super::group_commit::{self, yield_while, SyncGroup, GATHER_FRACTION, MAX_SPIN};
use super::index::{self, IndexKind, OffsetEntry, TimeEntry};
use super::producer_state::{self, AbortedTxn, ProducerEntry, Verdict};
use super::segment::{self, MappedSegment};
use super::sync_cpu::SyncCpus;
use super::walk::IndexCursor;
use crate::config::{Durability, StoreOptions, TopicConfig};
use crate::error::{bail, Error, ErrorKind, Result};
use crate::fork;
use crate::record::{
    encode_batch, encoded_batch_len, BatchOptions, ControlRecordType, ProducerInfo, Record,
};
use crate::shm::control::{ControlBlock, ControlFile};
use crate::shm::mutex::{Acquired, LockError};

pub use crate::clock::now_ms;

/// Where an appended batch landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// Largest timestamp in the batch (-1 for a duplicate).
    pub max_timestamp: i64,
    /// True when the batch was an idempotent producer's retry of a batch already in
    /// the log: nothing was appended, and the offsets are the original ones.
    pub duplicate: bool,
}

/// Options of one append beyond the records themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendOptions {
    /// Producer identity and batch flags written into the batch header.
    pub batch: BatchOptions,
    /// Durability for this append; `None` takes the store's default.
    pub durability: Option<Durability>,
}

/// A sealed segment's fixed facts, read once when it first appears sealed.
#[derive(Clone, Copy, Debug)]
pub struct Sealed {
    /// Bytes of batches in the `.log`.
    pub log_len: u64,
    /// Entries in the `.index`.
    pub index_entries: usize,
    /// Entries in the `.timeindex`.
    pub time_entries: usize,
    /// Largest timestamp in the segment (its last time-index entry).
    pub max_timestamp: i64,
}

impl Sealed {
    fn read(dir: &Path, base: i64) -> Result<Sealed> {
        let len = |ext| file_len(&segment::file_path(dir, base, ext));
        let time_len = len(segment::TIME_INDEX_EXT)?;
        let max_timestamp = if time_len >= 12 {
            let path = segment::file_path(dir, base, segment::TIME_INDEX_EXT);
            let mut entry = [0u8; 8];
            std::fs::File::open(&path)
                .and_then(|f| {
                    std::os::unix::fs::FileExt::read_exact_at(
                        &f,
                        &mut entry,
                        time_len / 12 * 12 - 12,
                    )
                })
                .map_err(|e| Error::io("read", &path, e))?;
            i64::from_be_bytes(entry)
        } else {
            i64::MIN
        };
        Ok(Sealed {
            log_len: len(segment::LOG_EXT)?,
            index_entries: (len(segment::INDEX_EXT)? / 8) as usize,
            time_entries: (time_len / 12) as usize,
            max_timestamp,
        })
    }
}

/// One segment of a [`SegmentList`]. Sealed segments are mapped on first use only.
pub struct SegEntry {
    /// Base offset.
    pub base: i64,
    /// Facts when sealed; `None` for the active segment.
    pub sealed: Option<Sealed>,
    map: OnceLock<Arc<MappedSegment>>,
}

impl SegEntry {
    /// The mapped files, mapping a sealed segment (read-only) on first use.
    pub fn seg(&self, dir: &Path) -> Result<&Arc<MappedSegment>> {
        if let Some(m) = self.map.get() {
            return Ok(m);
        }
        let mapped = MappedSegment::open(dir, self.base, None).map_err(|e| {
            if e.os_error() == Some(libc::ENOENT) {
                Error::new(
                    ErrorKind::OffsetOutOfRange,
                    format!(
                        "segment {} of {} was deleted by retention",
                        self.base,
                        dir.display()
                    ),
                )
            } else {
                e
            }
        })?;
        Ok(self.map.get_or_init(|| Arc::new(mapped)))
    }
}

/// The segments of a partition at one segment generation, oldest first; the last
/// one is the active segment (always mapped).
pub struct SegmentList {
    /// The `segment_gen` this list was built at.
    pub gen: u64,
    /// The partition directory.
    pub dir: PathBuf,
    /// The segments.
    pub segments: Vec<Arc<SegEntry>>,
    active: Arc<MappedSegment>,
}

impl SegmentList {
    /// The active (last) segment's entry.
    pub fn active(&self) -> &SegEntry {
        self.segments.last().expect("a segment list is never empty")
    }

    /// The active segment's mapping.
    pub fn active_seg(&self) -> &Arc<MappedSegment> {
        &self.active
    }

    /// The mapping of segment `i`.
    pub fn seg(&self, i: usize) -> Result<&Arc<MappedSegment>> {
        self.segments[i].seg(&self.dir)
    }

    /// Index of the segment holding `offset` (the last one whose base is <= it).
    pub fn find(&self, offset: i64) -> Option<usize> {
        let i = self.segments.partition_point(|s| s.base <= offset);
        i.checked_sub(1)
    }
}

/// A partition log opened in this process.
pub struct PartitionLog {
    topic: String,
    partition: u32,
    dir: PathBuf,
    config: TopicConfig,
    options: Arc<StoreOptions>,
    ctl: ControlFile,
    cache: Mutex<Option<Arc<SegmentList>>>,
    background: Arc<Background>,
    fork_gen: u64,
    last_checkpoint: Mutex<Option<Instant>>,
    /// The group commit of this process's threads (see `sync_to`).
    sync_group: Mutex<SyncGroup>,
    /// Signalled when a leader's sync ends.
    sync_done: Condvar,
    /// Signalled when a thread joins the group of a leader asleep in its gathering.
    sync_joined: Condvar,
    /// Whether appends go through `pwrite` instead of the mapping: set once a
    /// thread of this process appends for a sync or waits for one (see
    /// `expect_syncs`). Writeback
    /// write-protects every page written through a writable mapping, with a TLB
    /// shoot-down on each CPU that runs this process; pages written with `pwrite`
    /// have no writable, dirty entry to clean. Costs a copy and a system call per
    /// batch, nothing next to a sync, too much for unsynced appends.
    file_writes: AtomicBool,
    /// The buffer batches are encoded into before a `pwrite`.
    encode_buf: Mutex<Vec<u8>>,
    /// Where this process's syncs of the disk complete fastest, unless
    /// `steer_syncs` is off (see `sync_cpu`).
    sync_cpus: Option<&'static SyncCpus>,
    me: Weak<PartitionLog>,
}

/// Holds the append lock; releases it when dropped.
pub struct AppendGuard<'a> {
    log: &'a PartitionLog,
}

impl Drop for AppendGuard<'_> {
    fn drop(&mut self) {
        self.log.block().mutex.unlock();
    }
}

impl PartitionLog {
    /// Wraps an attached (or freshly initialised) control block.
    pub fn new(
        topic: &str,
        partition: u32,
        dir: PathBuf,
        config: TopicConfig,
        options: Arc<StoreOptions>,
        ctl: ControlFile,
        background: Arc<Background>,
    ) -> Result<Arc<PartitionLog>> {
        let sync_cpus = if options.steer_syncs {
            SyncCpus::for_dir(&dir)
        } else {
            None
        };
        let log = Arc::new_cyclic(|me| PartitionLog {
            topic: topic.to_string(),
            partition,
            dir,
            config,
            options,
            ctl,
            cache: Mutex::new(None),
            background,
            fork_gen: fork::generation(),
            last_checkpoint: Mutex::new(None),
            sync_group: Mutex::new(SyncGroup::default()),
            sync_done: Condvar::new(),
            sync_joined: Condvar::new(),
            file_writes: AtomicBool::new(false),
            encode_buf: Mutex::new(Vec::new()),
            sync_cpus,
            me: me.clone(),
        });
        log.segments()?;
        Ok(log)
    }

    /// An owning reference to this log, for background work.
    pub fn me(&self) -> Option<Arc<PartitionLog>> {
        self.me.upgrade()
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition number.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The topic config.
    pub fn config(&self) -> &TopicConfig {
        &self.config
    }

    /// The shared control block.
    pub fn block(&self) -> &ControlBlock {
        self.ctl.block()
    }

    /// Fails if this handle crossed a `fork()`.
    pub fn check_fork(&self) -> Result<()> {
        fork::check(self.fork_gen)
    }

    /// Bytes reserved for one `.index` file.
    pub fn index_file_len(&self) -> u64 {
        index::index_file_len(IndexKind::Offset, &self.config)
    }

    /// Bytes reserved for one `.timeindex` file.
    pub fn time_file_len(&self) -> u64 {
        index::index_file_len(IndexKind::Time, &self.config)
    }

    /// The current segment list, rebuilt when the segment generation moved.
    pub fn segments(&self) -> Result<Arc<SegmentList>> {
        let tail = &self.block().tail;
        let gen = tail.segment_gen.load(Ordering::Acquire);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = cache.as_ref().filter(|l| l.gen == gen) {
            return Ok(list.clone());
        }
        let mut attempts = 0;
        loop {
            let gen = tail.segment_gen.load(Ordering::Acquire);
            match self.build_list(gen, cache.as_deref()) {
                Ok(list) => {
                    let list = Arc::new(list);
                    *cache = Some(list.clone());
                    return Ok(list);
                }
                // A segment vanished between listing and reading it (retention in
                // another process): list again.
                Err(e) if e.kind() == ErrorKind::Io && attempts < 100 => {
                    attempts += 1;
                    std::thread::yield_now();
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn build_list(&self, gen: u64, old: Option<&SegmentList>) -> Result<SegmentList> {
        let active_base = self.block().tail.active_base.load(Ordering::Acquire);
        let bases = segment::list_bases(&self.dir, segment::LOG_EXT)?;
        let mut segments = Vec::with_capacity(bases.len());
        let mut old_sealed = old
            .map(|l| l.segments.iter().filter(|s| s.sealed.is_some()).peekable())
            .into_iter()
            .flatten()
            .peekable();
        for base in bases.into_iter().filter(|b| *b < active_base) {
            // Sealed segments never change: reuse what an earlier list learnt.
            while old_sealed.next_if(|s| s.base < base).is_some() {}
            if let Some(s) = old_sealed.next_if(|s| s.base == base) {
                segments.push(s.clone());
                continue;
            }
            segments.push(Arc::new(SegEntry {
                base,
                sealed: Some(Sealed::read(&self.dir, base)?),
                map: OnceLock::new(),
            }));
        }
        // The active segment is remapped on every generation change: a repair may
        // have resized its index files.
        let active = Arc::new(MappedSegment::open(
            &self.dir,
            active_base,
            Some(self.config.segment_bytes),
        )?);
        segments.push(Arc::new(SegEntry {
            base: active_base,
            sealed: None,
            map: OnceLock::from(active.clone()),
        }));
        Ok(SegmentList {
            gen,
            dir: self.dir.clone(),
            segments,
            active,
        })
    }

    /// Takes the append lock, repairing the partition first if a holder died.
    pub fn lock(&self) -> Result<AppendGuard<'_>> {
        self.check_fork()?;
        let block = self.block();
        let mutex = &block.mutex;
        let tried = match mutex.try_lock() {
            Ok(None) => match mutex.try_lock_spinning(LOCK_SPINS) {
                Ok(None) => mutex.try_lock_yielding(Instant::now() + LOCK_YIELD),
                other => other,
            },
            other => other,
        };
        let acquired = match tried {
            Ok(Some(a)) => a,
            Ok(None) => {
                block.metrics.lock_waits.fetch_add(1, Ordering::Relaxed);
                match mutex.lock(self.options.lock_timeout) {
                    Ok(a) => a,
                    Err(LockError::TimedOut) => bail!(
                        Timeout,
                        "append lock of {}-{} still held after {:?}",
                        self.topic,
                        self.partition,
                        self.options.lock_timeout
                    ),
                    Err(LockError::Os(e)) => return Err(Error::io("lock", self.ctl.path(), e)),
                }
            }
            Err(LockError::Os(e)) => return Err(Error::io("lock", self.ctl.path(), e)),
            Err(LockError::TimedOut) => unreachable!("try_lock does not time out"),
        };
        let guard = AppendGuard { log: self };
        if acquired == Acquired::OwnerDied {
            block.needs_repair.store(1, Ordering::Release);
            block
                .mutex
                .mark_consistent()
                .map_err(|e| Error::io("mark consistent", self.ctl.path(), e))?;
        }
        if block.needs_repair.load(Ordering::Acquire) != 0 {
            super::recovery::repair(self, &guard)?;
            block.metrics.repairs.fetch_add(1, Ordering::Relaxed);
            block.needs_repair.store(0, Ordering::Release);
        }
        Ok(guard)
    }

    /// Appends `records` as one batch and returns where it landed.
    pub fn append(&self, records: &[Record<'_>], opts: &AppendOptions) -> Result<AppendInfo> {
        if records.is_empty() {
            bail!(InvalidArgument, "a batch needs at least one record");
        }
        if records.len() > i32::MAX as usize {
            bail!(InvalidArgument, "too many records in one batch");
        }
        let now = now_ms();
        let len = encoded_batch_len(records, now);
        let limit = u64::from(self.config.max_message_bytes).min(self.config.segment_bytes);
        if len as u64 > limit {
            bail!(
                RecordTooLarge,
                "batch of {len} bytes exceeds the limit of {limit} bytes (max.message.bytes {}, segment.bytes {}) of {}-{}",
                self.config.max_message_bytes,
                self.config.segment_bytes,
                self.topic,
                self.partition
            );
        }
        let durability = opts.durability.unwrap_or(self.options.durability);
        if durability == Durability::Synced {
            self.expect_syncs();
        }
        let guard = self.lock()?;
        let info = self.append_locked(&guard, records, len, now, opts)?;
        drop(guard);
        // Wake readers after unlocking: a futex wake is a syscall, and no other
        // appender should wait for it.
        let block = self.block();
        block.wait.notify_after_publish(&block.metrics);
        match durability {
            Durability::Synced => self.sync_to(info.last_offset + 1)?,
            Durability::None | Durability::Written => {}
        }
        Ok(info)
    }

    /// Appends as [`append`](Self::append) does, for a caller that already holds the
    /// lock (to build a batch from state that must not change meanwhile). Readers
    /// are woken; the durability option is ignored (`written`).
    pub fn append_under_lock(
        &self,
        guard: &AppendGuard<'_>,
        records: &[Record<'_>],
        opts: &AppendOptions,
    ) -> Result<AppendInfo> {
        if records.is_empty() {
            bail!(InvalidArgument, "a batch needs at least one record");
        }
        let now = now_ms();
        let len = encoded_batch_len(records, now);
        if len as u64 > self.config.segment_bytes {
            bail!(
                RecordTooLarge,
                "batch of {len} bytes exceeds segment.bytes {}",
                self.config.segment_bytes
            );
        }
        let info = self.append_locked(guard, records, len, now, opts)?;
        let block = self.block();
        block.wait.notify_after_publish(&block.metrics);
        Ok(info)
    }

    fn append_locked(
        &self,
        guard: &AppendGuard<'_>,
        records: &[Record<'_>],
        len: usize,
        now: i64,
        opts: &AppendOptions,
    ) -> Result<AppendInfo> {
        let block = self.block();
        if block.sync.poisoned.load(Ordering::Acquire) != 0 {
            bail!(
                Poisoned,
                "an earlier fsync of {}-{} failed; reopen the store",
                self.topic,
                self.partition
            );
        }
        let tail = &block.tail;
        let producer = opts.batch.producer;
        let idempotent = producer.producer_id >= 0 && !opts.batch.control;
        let marker = if opts.batch.control {
            Some(self.check_marker(records, producer)?)
        } else {
            None
        };
        if opts.batch.transactional && !opts.batch.control && !idempotent {
            bail!(
                InvalidArgument,
                "a transactional batch needs a producer id, epoch and sequence"
            );
        }
        let mut entry = None;
        if idempotent {
            entry = block.producers.get(producer.producer_id);
            match ProducerEntry::check(entry.as_ref(), producer, records.len() as i32)? {
                Verdict::Append => {}
                Verdict::Duplicate(b) => {
                    block.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                    return Ok(AppendInfo {
                        base_offset: b.base_offset,
                        last_offset: b.last_offset,
                        max_timestamp: -1,
                        duplicate: true,
                    });
                }
            }
        }
        let mut list = self.segments()?;
        let base_offset = tail.end_offset.load(Ordering::Relaxed);
        let count = records.len() as i64;
        if base_offset.checked_add(count).is_none() {
            // Only a damaged store gets here (a segment file named near i64::MAX):
            // the end offset after the batch must still be an i64.
            bail!(
                OffsetOutOfRange,
                "{}-{}: no offsets left past {base_offset} for {count} records",
                self.topic,
                self.partition
            );
        }
        if self.must_roll(&list, len, count, records, now) {
            self.roll(guard, &list)?;
            list = self.segments()?;
        }
        let seg = list.active_seg();
        let pos = tail.end_position.load(Ordering::Relaxed);
        let needed = pos + len as u64;
        let file_writes = self.file_writes.load(Ordering::Relaxed);
        self.reserve_ahead(seg, needed, file_writes)?;
        crate::failpoint::hit("append.before_encode");
        let encoded = if file_writes {
            let mut buf = self.encode_buf.lock().unwrap_or_else(|p| p.into_inner());
            if buf.len() < len {
                buf.resize(len, 0);
            }
            let encoded = encode_batch(&mut buf[..len], base_offset, records, now, &opts.batch);
            crate::fs::write_at(seg.log_file()?, seg.log_path(), &buf[..len], pos)?;
            encoded
        } else {
            // SAFETY: we hold the append lock; [pos, pos + len) is reserved on disk,
            // lies in the writable mapping of the active segment, and is past the
            // published end.
            let out = unsafe { seg.bytes_mut(pos as usize, len) };
            encode_batch(out, base_offset, records, now, &opts.batch)
        };
        debug_assert_eq!(encoded.len, len);
        let last_offset = base_offset + i64::from(encoded.last_offset_delta);

        let mut cursor = self.cursor(seg);
        let add = cursor.on_batch(pos as u32, last_offset, encoded.max_timestamp);
        self.write_index_additions(seg, add.offset, add.time);
        tail.max_timestamp
            .store(cursor.max_timestamp, Ordering::Relaxed);
        tail.offset_of_max_timestamp
            .store(cursor.offset_of_max_timestamp, Ordering::Relaxed);
        if pos == 0 {
            tail.first_batch_timestamp
                .store(encoded.max_timestamp, Ordering::Relaxed);
        }
        // The producer table before publishing: a holder that dies in between leaves
        // the table ahead of the log, and repair rebuilds it from the log.
        let mut txn_closed = false;
        if idempotent {
            let mut e = entry.unwrap_or_default();
            let opened = e.record(
                producer,
                encoded.record_count,
                base_offset,
                last_offset,
                opts.batch.transactional,
            );
            block.producers.put(&e);
            if opened {
                // The last stable offset stops here before the batch is visible.
                let floor = tail.txn_floor.load(Ordering::Relaxed).min(base_offset);
                tail.txn_floor.store(floor, Ordering::Release);
            }
        }
        if let Some(kind) = marker {
            txn_closed = self.close_txn(seg, producer, kind, last_offset)?;
        }
        crate::failpoint::hit("append.before_publish");
        tail.end_position.store(needed, Ordering::Relaxed);
        tail.end_offset.store(last_offset + 1, Ordering::Release);
        if txn_closed {
            tail.txn_floor
                .store(block.producers.txn_floor(), Ordering::Release);
        }
        crate::failpoint::hit("append.after_publish");

        let m = &block.metrics;
        m.records_appended
            .fetch_add(encoded.record_count as u64, Ordering::Relaxed);
        m.batches_appended.fetch_add(1, Ordering::Relaxed);
        m.bytes_appended.fetch_add(len as u64, Ordering::Relaxed);
        if self.options.prefault_bytes > 0 && !file_writes {
            self.background
                .prefault_after(seg, pos, needed, &self.options, tail);
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            max_timestamp: encoded.max_timestamp,
            duplicate: false,
        })
    }

    /// Makes sure the active segment `seg` has its bytes up to `needed` reserved on
    /// disk, and reserves more ahead of the writer when it runs short. Under the lock.
    ///
    /// With mapped writes, `fallocate` reserves, and at least `prefault_bytes` (and
    /// half a reservation) stay reserved past the batch, so that the pre-faulter,
    /// which may only touch reserved bytes, is never held back to the writer's
    /// position. With `file_writes`, zeros are written instead, [`FILE_WRITES_AHEAD`]
    /// at a time: `fallocate` leaves extents unwritten, and a sync that writes into an
    /// unwritten extent also writes the metadata of its conversion (190 µs instead of
    /// 110-130 µs for a few pages here); zeros written ahead are converted once, by
    /// the first sync after them.
    fn reserve_ahead(&self, seg: &MappedSegment, needed: u64, file_writes: bool) -> Result<()> {
        let tail = &self.block().tail;
        let reserved = tail.reserved_len.load(Ordering::Relaxed);
        let (ahead, step) = if file_writes {
            (FILE_WRITES_AHEAD / 2, FILE_WRITES_AHEAD)
        } else {
            let ahead = self
                .options
                .prefault_bytes
                .max(self.options.reserve_bytes / 2);
            (ahead, self.options.reserve_bytes)
        };
        let want = (needed + ahead).min(self.config.segment_bytes).max(needed);
        if want <= reserved {
            return Ok(());
        }
        let reserve = |len: u64| {
            let (file, path) = (seg.log_file()?, seg.log_path());
            if file_writes {
                crate::fs::reserve_by_writing(file, path, reserved, len)
            } else {
                crate::fs::reserve(file, path, reserved, len)
            }
        };
        let grow_to = (reserved + step)
            .max(want)
            .min(self.config.segment_bytes)
            .max(needed);
        match reserve(grow_to - reserved) {
            Ok(()) => tail.reserved_len.store(grow_to, Ordering::Relaxed),
            // The head start failed (disk nearly full, file-size limit): this batch's
            // own bytes may still fit.
            Err(_) if needed > reserved => {
                reserve(needed - reserved)?;
                tail.reserved_len.store(needed, Ordering::Relaxed);
            }
            Err(_) => {}
        }
        Ok(())
    }

    /// Checks a transaction marker batch: one control record from a producer whose
    /// epoch is not older than the partition knows. Returns its type.
    fn check_marker(
        &self,
        records: &[Record<'_>],
        producer: ProducerInfo,
    ) -> Result<ControlRecordType> {
        let kind = match (records, producer.producer_id >= 0) {
            ([r], true) => r.key.and_then(|k| match k {
                [0, 0, 0, 0] => Some(ControlRecordType::Abort),
                [0, 0, 0, 1] => Some(ControlRecordType::Commit),
                _ => None,
            }),
            _ => None,
        };
        let Some(kind) = kind else {
            bail!(
                InvalidArgument,
                "a control batch is one COMMIT or ABORT marker from a producer"
            );
        };
        if let Some(e) = self.block().producers.get(producer.producer_id) {
            if producer.producer_epoch < e.epoch {
                bail!(
                    ProducerFenced,
                    "marker of producer {} epoch {} is fenced: epoch {} is current",
                    producer.producer_id,
                    producer.producer_epoch,
                    e.epoch
                );
            }
        }
        Ok(kind)
    }

    /// Ends `producer`'s transaction in this partition for a marker at `offset`
    /// (written, not yet published); an aborted one goes to the active segment's
    /// `.txnindex`. Returns whether a transaction was open.
    fn close_txn(
        &self,
        seg: &MappedSegment,
        producer: ProducerInfo,
        kind: ControlRecordType,
        offset: i64,
    ) -> Result<bool> {
        let block = self.block();
        let mut e = block
            .producers
            .get(producer.producer_id)
            .unwrap_or(ProducerEntry {
                producer_id: producer.producer_id,
                epoch: producer.producer_epoch,
                ..ProducerEntry::default()
            });
        let first = e.end_txn(producer.producer_epoch);
        block.producers.put(&e);
        let (Some(first), ControlRecordType::Abort) = (first, kind) else {
            return Ok(first.is_some());
        };
        let aborted = AbortedTxn {
            producer_id: producer.producer_id,
            first_offset: first,
            last_offset: offset,
            last_stable_offset: block.producers.txn_floor().min(offset + 1),
        };
        let path = segment::file_path(&self.dir, seg.base, segment::TXN_INDEX_EXT);
        let written = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &aborted.encode()))
            .map_err(|e| Error::io("append to", &path, e));
        if written.is_err() {
            // The table already closed the transaction: rebuild it from the log.
            block.needs_repair.store(1, Ordering::Release);
        }
        written.map(|()| true)
    }

    /// The index cursor of the active segment, rebuilt from the control block and
    /// the last index entries. Only valid under the append lock.
    pub fn cursor(&self, active: &MappedSegment) -> IndexCursor {
        let tail = &self.block().tail;
        let ic = tail.index_entries.load(Ordering::Relaxed) as usize;
        let tc = tail.time_entries.load(Ordering::Relaxed) as usize;
        IndexCursor {
            interval: self.config.index_interval_bytes,
            last_index_position: ic
                .checked_sub(1)
                .and_then(|i| active.index.offset_entry(i))
                .map(|e| e.position),
            last_time_timestamp: tc
                .checked_sub(1)
                .and_then(|i| active.time_index.time_entry(i))
                .map(|e| e.timestamp),
            max_timestamp: tail.max_timestamp.load(Ordering::Relaxed),
            offset_of_max_timestamp: tail.offset_of_max_timestamp.load(Ordering::Relaxed),
        }
    }

    /// Writes new index entries of the active segment and publishes their counts
    /// (release, after the entry bytes). Under the append lock.
    pub fn write_index_additions(
        &self,
        active: &MappedSegment,
        offset: Option<OffsetEntry>,
        time: Option<TimeEntry>,
    ) {
        let tail = &self.block().tail;
        if let Some(e) = offset {
            let i = tail.index_entries.load(Ordering::Relaxed) as usize;
            if active.index.write_offset_entry(i, e) {
                tail.index_entries.store(i as u32 + 1, Ordering::Release);
            }
        }
        if let Some(e) = time {
            let i = tail.time_entries.load(Ordering::Relaxed) as usize;
            if active.time_index.write_time_entry(i, e) {
                tail.time_entries.store(i as u32 + 1, Ordering::Release);
            }
        }
    }

    fn must_roll(
        &self,
        list: &SegmentList,
        len: usize,
        count: i64,
        records: &[Record<'_>],
        now: i64,
    ) -> bool {
        let tail = &self.block().tail;
        let pos = tail.end_position.load(Ordering::Relaxed);
        if pos == 0 {
            return false;
        }
        if pos + len as u64 > self.config.segment_bytes {
            return true;
        }
        let active = list.active_seg();
        let end = tail.end_offset.load(Ordering::Relaxed);
        if end + count - active.base > i64::from(i32::MAX) {
            return true;
        }
        if tail.index_entries.load(Ordering::Relaxed) as usize + 1 >= active.index.capacity()
            || tail.time_entries.load(Ordering::Relaxed) as usize + 2
                >= active.time_index.capacity()
        {
            return true;
        }
        let first = tail.first_batch_timestamp.load(Ordering::Relaxed);
        if first != i64::MIN {
            let newest = records
                .iter()
                .map(|r| r.timestamp.unwrap_or(now))
                .max()
                .unwrap_or(now);
            if newest.saturating_sub(first) > self.config.segment_ms {
                return true;
            }
        }
        false
    }

    /// Seals the active segment and starts a new one at the end offset. Under the
    /// append lock. Order matters for a holder killed half-way: the old segment is
    /// trimmed before the new `.log` exists, and the control block moves last.
    pub fn roll(&self, guard: &AppendGuard<'_>, list: &SegmentList) -> Result<()> {
        let result = self.roll_steps(guard, list);
        if result.is_err() {
            // The old segment may be trimmed with no new one in place (a full disk
            // while creating it): the next lock holder re-derives the tail.
            self.block().needs_repair.store(1, Ordering::Release);
        }
        result
    }

    fn roll_steps(&self, _guard: &AppendGuard<'_>, list: &SegmentList) -> Result<()> {
        let block = self.block();
        let tail = &block.tail;
        let seg = list.active_seg();
        let mut cursor = self.cursor(seg);
        let final_time = cursor.maybe_time_entry();
        self.write_index_additions(seg, None, final_time);
        let ic = u64::from(tail.index_entries.load(Ordering::Relaxed));
        let tc = u64::from(tail.time_entries.load(Ordering::Relaxed));
        let end_pos = tail.end_position.load(Ordering::Relaxed);
        segment::truncate(seg.index.path(), ic * 8)?;
        segment::truncate(seg.time_index.path(), tc * 12)?;
        segment::truncate(seg.log_path(), end_pos)?;
        crate::failpoint::hit("roll.after_trim");
        let new_base = tail.end_offset.load(Ordering::Relaxed);
        // The producer state as of the new segment's base: recovery and repair start
        // from it instead of re-reading older segments.
        let snapshot = producer_state::encode_snapshot(&block.producers.entries());
        crate::fs::write_atomic(
            &producer_state::snapshot_path(&self.dir, new_base),
            &snapshot,
        )?;
        segment::create_files(
            &self.dir,
            new_base,
            self.index_file_len(),
            self.time_file_len(),
        )?;
        // The new files' directory entries must be durable before anything synced
        // into them counts as durable.
        crate::fs::sync_dir(&self.dir)?;
        self.start_active_segment(new_base, 0);
        block
            .metrics
            .segments_rolled
            .fetch_add(1, Ordering::Relaxed);
        // Sync the sealed segment in the background and move the recovery point.
        self.background
            .sync_sealed_async(self, seg.clone(), new_base);
        self.apply_retention_locked(now_ms())?;
        Ok(())
    }

    /// Points the control block at a new, empty active segment at `base` with
    /// `reserved` bytes on disk, then bumps the segment generation. Under the lock.
    pub fn start_active_segment(&self, base: i64, reserved: u64) {
        let tail = &self.block().tail;
        tail.index_entries.store(0, Ordering::Release);
        tail.time_entries.store(0, Ordering::Release);
        tail.max_timestamp.store(i64::MIN, Ordering::Relaxed);
        tail.offset_of_max_timestamp.store(-1, Ordering::Relaxed);
        tail.first_batch_timestamp
            .store(i64::MIN, Ordering::Relaxed);
        tail.reserved_len.store(reserved, Ordering::Relaxed);
        tail.end_position.store(0, Ordering::Relaxed);
        tail.active_base.store(base, Ordering::Release);
        tail.segment_gen.fetch_add(1, Ordering::Release);
    }

    /// Deletes whole sealed segments past `retention.bytes` or `retention.ms`.
    /// Returns how many were deleted.
    pub fn apply_retention(&self) -> Result<usize> {
        let _guard = self.lock()?;
        self.apply_retention_locked(now_ms())
    }

    fn apply_retention_locked(&self, now: i64) -> Result<usize> {
        let c = &self.config;
        if c.retention_bytes < 0 && c.retention_ms < 0 {
            return Ok(0);
        }
        let list = self.segments()?;
        let tail = &self.block().tail;
        let mut total: u64 = list
            .segments
            .iter()
            .map(|s| {
                s.sealed
                    .map_or(tail.end_position.load(Ordering::Relaxed), |x| x.log_len)
            })
            .sum();
        let mut deleted = 0;
        for entry in &list.segments {
            let Some(sealed) = entry.sealed else { break };
            let by_size =
                c.retention_bytes >= 0 && total - sealed.log_len >= c.retention_bytes as u64;
            let by_time =
                c.retention_ms >= 0 && sealed.max_timestamp < now.saturating_sub(c.retention_ms);
            if !(by_size || by_time) {
                break;
            }
            total -= sealed.log_len;
            deleted += 1;
        }
        self.delete_oldest_segments(&list, deleted)?;
        Ok(deleted)
    }

    /// Deletes the sealed segments that lie wholly below `offset`, under the lock
    /// (compaction of internal logs). Returns how many were deleted.
    pub fn delete_segments_below(&self, _guard: &AppendGuard<'_>, offset: i64) -> Result<usize> {
        let list = self.segments()?;
        let n = list
            .segments
            .windows(2)
            .take_while(|w| w[0].sealed.is_some() && w[1].base <= offset)
            .count();
        self.delete_oldest_segments(&list, n)?;
        Ok(n)
    }

    /// Deletes the `n` oldest (sealed) segments of `list`: the log start moves and
    /// the segment generation is bumped before any file goes.
    fn delete_oldest_segments(&self, list: &SegmentList, n: usize) -> Result<()> {
        let tail = &self.block().tail;
        for i in 0..n.min(list.segments.len().saturating_sub(1)) {
            tail.log_start_offset
                .store(list.segments[i + 1].base, Ordering::Release);
            tail.segment_gen.fetch_add(1, Ordering::Release);
            segment::remove_files(&self.dir, list.segments[i].base)?;
            self.block()
                .metrics
                .segments_deleted
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The published end offset (acquire).
    pub fn end_offset(&self) -> i64 {
        self.block().tail.end_offset.load(Ordering::Acquire)
    }

    /// The last stable offset: every transaction below it is complete. Readers in
    /// `read_committed` stop here.
    pub fn last_stable_offset(&self) -> i64 {
        let tail = &self.block().tail;
        let end = tail.end_offset.load(Ordering::Acquire);
        tail.txn_floor.load(Ordering::Acquire).min(end)
    }

    /// The first offset still in the log.
    pub fn start_offset(&self) -> i64 {
        self.block().tail.log_start_offset.load(Ordering::Acquire)
    }

    /// Waits until the end offset is past `offset`, at most `timeout`, spinning up to
    /// `spin` before sleeping. Returns whether data arrived.
    pub fn wait_for(&self, offset: i64, timeout: Duration, spin: Duration) -> Result<bool> {
        self.check_fork()?;
        let block = self.block();
        Ok(block.wait.wait_until(timeout, spin, || {
            block.tail.end_offset.load(Ordering::SeqCst) > offset
        }))
    }

    /// Tells the log that this process will wait for syncs of its appends: from now
    /// on they are written with `pwrite` (see `file_writes`).
    pub fn expect_syncs(&self) {
        if !self.file_writes.load(Ordering::Relaxed) {
            self.file_writes.store(true, Ordering::Relaxed);
        }
    }

    /// Blocks until every offset below `target` is on stable storage.
    ///
    /// Group commit among this process's threads: the first thread to ask becomes
    /// the leader and syncs itself (no hand-off to another thread, whose wake-up
    /// would cost more than the sync on a small machine); threads asking meanwhile
    /// wait for its sync, which covers whatever was appended before it started, and
    /// sync again only if theirs was not. When the previous sync served a group of
    /// threads, the leader first gives the others of that group a moment to join (a
    /// quarter of the previous sync's duration at most), so that one sync covers
    /// them all. Waiting threads yield in a loop rather than sleep while the CPUs
    /// are otherwise free (see [`yield_while`]). Across processes, the leaders take
    /// turns in the same way ([`group_commit::sync_for_all`]): a sync of another
    /// process covers this one's data too. The recovery point moves later, in the
    /// flusher thread.
    pub fn sync_to(&self, target: i64) -> Result<()> {
        self.expect_syncs();
        let synced = || self.block().sync.synced_offset.load(Ordering::Acquire) >= target;
        if synced() {
            return Ok(());
        }
        let lock = || self.sync_group.lock().unwrap_or_else(|p| p.into_inner());
        let mut group = lock();
        let mut joined = false;
        loop {
            if synced() {
                return Ok(());
            }
            if !group.syncing {
                break;
            }
            if !joined {
                joined = true;
                group.joined += 1;
                if group.leader_asleep && group.joined + 1 >= group.last_size {
                    self.sync_joined.notify_one();
                }
            }
            let epoch = group.epoch;
            if group.may_spin() {
                let until = Instant::now() + (group.last_took * 2).min(MAX_SPIN);
                drop(group);
                let contended = yield_while(|| !synced(), until);
                group = lock();
                group.note_spin(contended);
                if group.epoch != epoch {
                    continue;
                }
            }
            group = self
                .sync_done
                .wait_while(group, |g| g.epoch == epoch)
                .unwrap_or_else(|p| p.into_inner());
        }
        group.syncing = true;
        group.joined = 0;
        let deadline = Instant::now() + group.last_took / GATHER_FRACTION;
        let spin = group
            .may_spin()
            .then(|| (group.last_took * 2).min(MAX_SPIN));
        let gathered = |g: &SyncGroup| g.joined + 1 >= g.last_size;
        if spin.is_some() {
            drop(group);
            let contended = yield_while(|| !gathered(&lock()), deadline);
            lock().note_spin(contended);
        } else {
            group.leader_asleep = true;
            while !gathered(&group) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                group = self
                    .sync_joined
                    .wait_timeout(group, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            group.leader_asleep = false;
            drop(group);
        }
        let leading = Leading(self, Instant::now());
        // Everything published by now, this group's appends among it.
        let need = self.block().tail.end_offset.load(Ordering::Acquire);
        let result = group_commit::sync_for_all(
            &self.block().sync,
            self.ctl.path(),
            need,
            spin.map(|d| Instant::now() + d),
            || match self.sync_cpus {
                Some(cpus) => cpus.run(|| self.sync_segments(false, None)),
                None => self.sync_segments(false, None),
            },
        );
        if let Ok(true) = result {
            lock().note_spin(true);
        }
        drop(leading);
        result?;
        if self.checkpoint_due() {
            self.background.sync_async(self);
        }
        Ok(())
    }

    /// Syncs every segment that may hold unsynced bytes below the current end,
    /// advances the shared synced offset, and moves the recovery point when it is
    /// due (or `force_checkpoint`). Called by the flusher thread.
    pub fn sync_now(&self, force_checkpoint: bool) -> Result<()> {
        self.sync_segments(force_checkpoint, None)?;
        self.maybe_checkpoint(force_checkpoint)
    }

    /// Syncs the segments below `next_base`, which a roll just sealed, with their
    /// indexes, and moves the recovery point to `next_base` if it is behind. The
    /// active segment is not synced: that would write-protect, page by page, the
    /// pages its writer is filling. Called by the flusher thread.
    pub fn checkpoint_sealed(&self, next_base: i64) -> Result<()> {
        self.sync_segments(true, Some(next_base))?;
        let mut last = self
            .last_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if super::checkpoint::read(&self.dir).ok().flatten() < Some(next_base) {
            super::checkpoint::write(&self.dir, next_base)?;
        }
        *last = Some(Instant::now());
        Ok(())
    }

    /// The syncing part of [`sync_now`](Self::sync_now): everything below the end,
    /// or only the sealed segments below `sealed_below`.
    fn sync_segments(&self, force_checkpoint: bool, sealed_below: Option<i64>) -> Result<()> {
        let block = self.block();
        if block.sync.poisoned.load(Ordering::Acquire) != 0 {
            bail!(
                Poisoned,
                "an earlier fsync of {}-{} failed",
                self.topic,
                self.partition
            );
        }
        let end = sealed_below.unwrap_or_else(|| block.tail.end_offset.load(Ordering::Acquire));
        let from = block.sync.synced_offset.load(Ordering::Acquire);
        if from < end || force_checkpoint {
            let list = self.segments()?;
            let mut first = list.find(from).unwrap_or(0);
            if force_checkpoint {
                // Before moving the recovery point: segments sealed since it last moved
                // may have had their data synced while active, but not their indexes.
                let rp = super::checkpoint::read(&self.dir)
                    .ok()
                    .flatten()
                    .unwrap_or(0);
                first = first.min(list.find(rp).unwrap_or(0));
            }
            for entry in &list.segments[first..] {
                if sealed_below.is_some_and(|below| entry.base >= below) {
                    break;
                }
                let active = entry.sealed.is_none();
                if active {
                    let seg = list.active_seg();
                    self.sync_or_poison(seg.log_file()?, seg.log_path())?;
                    if !force_checkpoint {
                        continue;
                    }
                }
                // Indexes with the `.txnindex`: recovery trusts the `.txnindex` of
                // every segment before the recovery point (read_committed readers skip
                // aborted batches by it). The active segment's too when the point
                // moves: it may land on this segment's end, the next segment's base
                // once it rolls, and then recovery does not walk this segment.
                let indexes = [
                    segment::INDEX_EXT,
                    segment::TIME_INDEX_EXT,
                    segment::TXN_INDEX_EXT,
                ];
                let log = (!active).then_some(segment::LOG_EXT);
                for ext in log.into_iter().chain(indexes) {
                    let path = segment::file_path(&self.dir, entry.base, ext);
                    // Gone means deleted by retention meanwhile: nothing to sync.
                    if let Some(file) = crate::fs::open_for_sync(&path)? {
                        self.sync_or_poison(&file, &path)?;
                    }
                }
            }
            block.sync.synced_offset.fetch_max(end, Ordering::AcqRel);
            block.metrics.syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// `fdatasync`; a failure poisons the partition: the page cache may have dropped
    /// the data, so further writes are refused rather than silently lost.
    fn sync_or_poison(&self, file: &std::fs::File, path: &Path) -> Result<()> {
        crate::fs::sync_data(file, path).inspect_err(|_| {
            self.block().sync.poisoned.store(1, Ordering::Release);
        })
    }

    /// Whether the recovery point was last moved more than a second ago.
    fn checkpoint_due(&self) -> bool {
        !self
            .last_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| t.elapsed() < CHECKPOINT_INTERVAL)
    }

    fn maybe_checkpoint(&self, force: bool) -> Result<()> {
        let mut last = self
            .last_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !force && last.is_some_and(|t| t.elapsed() < CHECKPOINT_INTERVAL) {
            return Ok(());
        }
        let synced = self.block().sync.synced_offset.load(Ordering::Acquire);
        super::checkpoint::write(&self.dir, synced)?;
        *last = Some(Instant::now());
        Ok(())
    }
}

/// The sync of the thread that leads a group commit (see `PartitionLog::sync_to`):
/// when it ends, however it ends, the waiting threads look again.
struct Leading<'a>(&'a PartitionLog, Instant);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut group = self.0.sync_group.lock().unwrap_or_else(|p| p.into_inner());
        group.syncing = false;
        group.epoch += 1;
        group.last_size = group.joined + 1;
        group.last_took = self.1.elapsed();
        drop(group);
        self.0.sync_done.notify_all();
    }
}

/// How far appends written with `pwrite` keep the segment reserved (with zeros)
/// ahead of the writer, at most; half of it at least.
const FILE_WRITES_AHEAD: u64 = 1024 * 1024;

/// Tries of a contended append lock before yielding for it (a few microseconds).
const LOCK_SPINS: u32 = 100;

/// How long a contended append lock is tried between yields before sleeping on it.
const LOCK_YIELD: Duration = Duration::from_micros(50);

/// How often a partition that is synced moves its recovery point at most.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

fn file_len(path: &Path) -> Result<u64> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| Error::io("stat", path, e))
}
