//! Bringing a partition's tail back to a consistent state.
//!
//! * [`recover`]: the store's first opener (nobody else has it open; the control
//!   block is fresh and trusted for nothing). Walks from the recovery point, verifies
//!   length, offsets and CRC of every batch, truncates at the first bad one, rebuilds
//!   the indexes of the walked segments and fills the control block.
//! * [`repair`]: a lock holder died (or a repair failed). The published end offset
//!   is the truth: bytes past it are garbage to overwrite. Other processes keep
//!   reading throughout.

use std::path::Path;
use std::sync::atomic::Ordering;

use super::checkpoint;
use super::partition::{AppendGuard, PartitionLog};
use super::producer_state::{self, AbortedTxn, Replay, ABORTED_TXN_LEN};
use super::segment::{
    self, MappedSegment, INDEX_EXT, LOG_EXT, SNAPSHOT_EXT, TIME_INDEX_EXT, TXN_INDEX_EXT,
};
use super::walk::{walk, IndexCursor, WalkEnd, WalkPos};
use crate::config::TopicConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::fs as ofs;
use crate::record::{Batch, BatchHeader, ControlRecordType};
use crate::shm::control::{ControlBlock, Tail};

/// File sizes and settings recovery needs.
pub struct RecoveryParams<'a> {
    /// The partition directory.
    pub dir: &'a Path,
    /// The topic config.
    pub config: &'a TopicConfig,
    /// Bytes of each `.index`.
    pub index_len: u64,
    /// Bytes of each `.timeindex`.
    pub time_len: u64,
}

/// What recovery found, for messages and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The end offset after recovery.
    pub end_offset: i64,
    /// Batches whose CRC was verified.
    pub batches_verified: u64,
    /// Bytes cut off the log, if a bad batch was found.
    pub truncated: Option<String>,
}

/// Index state of a segment after a walk.
struct Rebuilt {
    pos: WalkPos,
    cursor: IndexCursor,
    index_entries: usize,
    time_entries: usize,
    /// Aborted transactions whose ABORT marker is in the walked part.
    aborted: Vec<AbortedTxn>,
}

/// Walks `seg` from its start (or from the last index entry below `stop`), writing
/// index entries as append would have. `verify_from`: CRC-check batches whose last
/// offset is at or past it.
///
/// # Safety
/// The caller is the exclusive opener or holds the append lock.
unsafe fn rebuild_segment(
    seg: &MappedSegment,
    limit_len: u64,
    stop: i64,
    verify_from: i64,
    interval: u32,
    batches_verified: &mut u64,
    replay: &mut Replay,
) -> (Rebuilt, WalkEnd) {
    let mut state = Rebuilt {
        pos: WalkPos {
            position: 0,
            next_offset: seg.base,
            first_batch_timestamp: i64::MIN,
        },
        cursor: IndexCursor::new(interval),
        index_entries: 0,
        time_entries: 0,
        aborted: Vec::new(),
    };
    let end = walk(
        seg,
        &mut state.pos,
        limit_len,
        stop,
        verify_from,
        |position, h| {
            if h.last_offset() >= verify_from {
                *batches_verified += 1;
            }
            if let Some(a) = replay.batch(h, control_type(seg, position, h)) {
                state.aborted.push(a);
            }
            let add = state
                .cursor
                .on_batch(position as u32, h.last_offset(), h.max_timestamp);
            if let Some(e) = add.offset {
                if seg.index.write_offset_entry(state.index_entries, e) {
                    state.index_entries += 1;
                }
            }
            if let Some(e) = add.time {
                if seg.time_index.write_time_entry(state.time_entries, e) {
                    state.time_entries += 1;
                }
            }
        },
    );
    (state, end)
}

fn store_tail(tail: &Tail, seg_base: i64, r: &Rebuilt, reserved: u64) {
    tail.index_entries
        .store(r.index_entries as u32, Ordering::Release);
    tail.time_entries
        .store(r.time_entries as u32, Ordering::Release);
    tail.max_timestamp
        .store(r.cursor.max_timestamp, Ordering::Relaxed);
    tail.offset_of_max_timestamp
        .store(r.cursor.offset_of_max_timestamp, Ordering::Relaxed);
    tail.first_batch_timestamp
        .store(r.pos.first_batch_timestamp, Ordering::Relaxed);
    tail.reserved_len.store(reserved, Ordering::Relaxed);
    tail.end_position.store(r.pos.position, Ordering::Relaxed);
    tail.active_base.store(seg_base, Ordering::Release);
    tail.end_offset.store(r.pos.next_offset, Ordering::Release);
}

/// Makes sure the index files of the active segment at `base` exist at full size.
fn prepare_active_files(p: &RecoveryParams<'_>, base: i64) -> Result<()> {
    for (ext, len) in [
        (INDEX_EXT, p.index_len),
        (TIME_INDEX_EXT, p.time_len),
        (TXN_INDEX_EXT, 0),
    ] {
        let path = segment::file_path(p.dir, base, ext);
        let f = ofs::open_rw(&path, true)?;
        let have = f.metadata().map_err(|e| Error::io("stat", &path, e))?.len();
        if have < len {
            ofs::reserve(&f, &path, 0, len)?;
        }
    }
    Ok(())
}

/// Removes index and snapshot files whose `.log` does not exist (a roll or a
/// retention run that died half-way).
fn remove_strays(dir: &Path, logs: &[i64]) -> Result<()> {
    for ext in [INDEX_EXT, TIME_INDEX_EXT, TXN_INDEX_EXT, SNAPSHOT_EXT] {
        for base in segment::list_bases(dir, ext)? {
            if logs.binary_search(&base).is_err() {
                let path = segment::file_path(dir, base, ext);
                std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
            }
        }
    }
    Ok(())
}

/// Checks that a sealed segment's indexes are plausible: whole entries; offset
/// entries increasing, inside the log, the last naming a batch that ends at that
/// offset; time entries increasing, at least one (the final entry of a sealed
/// segment), with offsets inside the segment (below `next_base`). A segment that
/// fails is re-indexed by a walk.
fn sealed_indexes_ok(seg: &MappedSegment, log_len: u64, next_base: i64) -> bool {
    let whole =
        |path: &Path, entry: u64| std::fs::metadata(path).is_ok_and(|m| m.len() % entry == 0);
    if !whole(seg.index.path(), 8) || !whole(seg.time_index.path(), 12) {
        return false;
    }
    let mut prev = i64::MIN;
    for i in 0..seg.index.capacity() {
        match seg.index.offset_entry(i) {
            Some(e)
                if e.offset > prev && e.offset < next_base && u64::from(e.position) < log_len =>
            {
                prev = e.offset
            }
            _ => return false,
        }
    }
    let (mut prev_ts, mut prev_offset) = (i64::MIN, seg.base);
    for i in 0..seg.time_index.capacity() {
        match seg.time_index.time_entry(i) {
            Some(e) if e.timestamp > prev_ts && e.offset >= prev_offset && e.offset < next_base => {
                (prev_ts, prev_offset) = (e.timestamp, e.offset)
            }
            _ => return false,
        }
    }
    if seg.time_index.capacity() == 0 && log_len > 0 {
        return false;
    }
    let last = seg
        .index
        .capacity()
        .checked_sub(1)
        .and_then(|i| seg.index.offset_entry(i));
    // From the last indexed batch (at most an index interval before the end), the
    // batch headers must lead exactly to the end of the file and to the next
    // segment's base: a segment truncated or cut from outside fails here.
    let mut pos = last.map_or(0, |e| u64::from(e.position));
    let mut next = seg.base;
    while pos < log_len {
        // SAFETY: the exclusive opener reads a sealed segment, below its file length.
        let head = unsafe { seg.bytes(pos as usize, crate::record::BATCH_HEADER_LEN) };
        let Some(Ok(h)) = head.map(BatchHeader::parse) else {
            return false;
        };
        if last.is_some_and(|e| u64::from(e.position) == pos && h.last_offset() != e.offset) {
            return false;
        }
        pos += h.total_len() as u64;
        next = h.next_offset();
    }
    pos == log_len && next == next_base
}

/// First-opener recovery of one partition into a freshly created control block.
pub fn recover(p: &RecoveryParams<'_>, block: &ControlBlock) -> Result<RecoveryReport> {
    let dir = p.dir;
    let tail = &block.tail;
    let mut bases = segment::list_bases(dir, LOG_EXT)?;
    remove_strays(dir, &bases)?;
    if bases.is_empty() {
        segment::create_files(dir, 0, p.index_len, p.time_len)?;
        bases.push(0);
    }
    let recovery_point = match checkpoint::read(dir) {
        Ok(rp) => rp.unwrap_or(bases[0]),
        Err(e) if e.kind() == ErrorKind::Corrupt => bases[0],
        Err(e) => return Err(e),
    };
    let mut first_walked = bases
        .partition_point(|b| *b <= recovery_point)
        .saturating_sub(1);
    let mut report = RecoveryReport {
        end_offset: 0,
        batches_verified: 0,
        truncated: None,
    };
    // Sealed segments before the recovery point are trusted, but their indexes are
    // sanity-checked (cheaply). From the first implausible one on, everything is
    // walked: re-indexed, and checked for structure (and CRC past the recovery point).
    for (i, &base) in bases[..first_walked].iter().enumerate() {
        let log_path = segment::file_path(dir, base, LOG_EXT);
        let log_len = std::fs::metadata(&log_path)
            .map_err(|e| Error::io("stat", &log_path, e))?
            .len();
        // A missing index file fails the open: walk then too.
        let plausible = MappedSegment::open(dir, base, None)
            .is_ok_and(|seg| sealed_indexes_ok(&seg, log_len, bases[i + 1]));
        if !plausible {
            first_walked = i;
            break;
        }
    }
    let mut replay = producer_state_before(dir, &bases, first_walked)?;
    let mut i = first_walked;
    loop {
        let replay_before = replay.clone();
        let base = bases[i];
        let is_last = i + 1 == bases.len();
        let stop = bases.get(i + 1).copied().unwrap_or(i64::MAX);
        if is_last {
            prepare_active_files(p, base)?;
            let seg = MappedSegment::open(dir, base, Some(p.config.segment_bytes))?;
            let file_len = std::fs::metadata(seg.log_path())
                .map_err(|e| Error::io("stat", seg.log_path(), e))?
                .len()
                .min(p.config.segment_bytes);
            // SAFETY: exclusive opener; reads stay below the file length.
            let (rebuilt, end) = unsafe {
                rebuild_segment(
                    &seg,
                    file_len,
                    stop,
                    recovery_point,
                    p.config.index_interval_bytes,
                    &mut report.batches_verified,
                    &mut replay,
                )
            };
            if let WalkEnd::Invalid { reason } = end {
                if rebuilt.pos.position < file_len
                    && !all_zero_from(&seg, rebuilt.pos.position, file_len)
                {
                    report.truncated = Some(format!(
                        "{} truncated at byte {}: {reason}",
                        seg.log_path().display(),
                        rebuilt.pos.position
                    ));
                }
            }
            lost_below_recovery_point(dir, base, rebuilt.pos.next_offset, recovery_point)?;
            // Cut everything past the last good batch (stale bytes must never line up
            // with a future batch boundary). The first append reserves ahead again, the
            // way its process writes (see `PartitionLog::reserve_ahead`).
            let end_pos = rebuilt.pos.position;
            seg.log_file()?
                .set_len(end_pos)
                .map_err(|e| Error::io("truncate", seg.log_path(), e))?;
            write_txn_index(dir, base, &rebuilt.aborted, false)?;
            store_tail(tail, base, &rebuilt, end_pos);
            tail.log_start_offset.store(bases[0], Ordering::Release);
            tail.txn_floor.store(replay.txn_floor(), Ordering::Release);
            block.producers.replace(&replay.finish());
            report.end_offset = rebuilt.pos.next_offset;
            return Ok(report);
        }
        let log_len = std::fs::metadata(segment::file_path(dir, base, LOG_EXT))
            .map_err(|e| Error::io("stat", dir, e))?
            .len();
        let (walked_to, next_offset, end) = reindex_sealed(
            p,
            base,
            stop,
            log_len,
            recovery_point,
            &mut report,
            &mut replay,
        )?;
        // A segment whose batches reach the next one's base is whole: bytes after
        // them are the rest of a roll's trim that a power cut undid (zeros or stale
        // bytes, already cut off by the walk), not a torn tail.
        let broken = match end {
            _ if next_offset == stop => None,
            WalkEnd::Invalid { reason } => Some(reason),
            WalkEnd::Complete => Some(format!(
                "segment ends at offset {next_offset}, the next one starts at {stop}"
            )),
        };
        if let Some(reason) = broken {
            lost_below_recovery_point(dir, base, next_offset, recovery_point)?;
            // Everything after the first bad batch goes: this segment becomes the
            // active one, later segments are deleted.
            report.truncated = Some(format!(
                "{} truncated at byte {walked_to}: {reason}",
                segment::file_path(dir, base, LOG_EXT).display()
            ));
            for &later in &bases[i + 1..] {
                segment::remove_files(dir, later)?;
            }
            bases.truncate(i + 1);
            // Walked again as the active segment: forget this walk's batches.
            replay = replay_before;
            continue;
        }
        i += 1;
    }
}

/// Fails when the log, walked from `base`, ends at `end` below the recovery point:
/// every batch below that point was on stable storage, so no crash can have lost it.
/// A file was deleted, truncated or overwritten by something other than oncelog;
/// recovery must not cut acknowledged records to match.
fn lost_below_recovery_point(dir: &Path, base: i64, end: i64, recovery_point: i64) -> Result<()> {
    if end >= recovery_point {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Corrupt,
        format!(
            "{}: the log ends at offset {end} in {}, below its recovery point {recovery_point}: \
             offsets {end}..{recovery_point} were on stable storage and are missing (a segment \
             file deleted, truncated or overwritten from outside?); nothing was cut. Restore \
             the file, or remove {} to accept the loss",
            dir.display(),
            segment::file_path(dir, base, LOG_EXT).display(),
            checkpoint::path(dir).display()
        ),
    ))
}

/// Rebuilds the indexes of a sealed segment by walking it; trims its files.
/// Returns the walked length, the next offset and how the walk ended. `next_base`
/// is the next segment's base: a walk that reaches it found the segment whole.
fn reindex_sealed(
    p: &RecoveryParams<'_>,
    base: i64,
    next_base: i64,
    log_len: u64,
    verify_from: i64,
    report: &mut RecoveryReport,
    replay: &mut Replay,
) -> Result<(u64, i64, WalkEnd)> {
    let dir = p.dir;
    for (ext, len) in [(INDEX_EXT, p.index_len), (TIME_INDEX_EXT, p.time_len)] {
        let path = segment::file_path(dir, base, ext);
        let f = ofs::open_rw(&path, true)?;
        f.set_len(0).map_err(|e| Error::io("truncate", &path, e))?;
        ofs::reserve(&f, &path, 0, len)?;
    }
    ofs::open_rw(&segment::file_path(dir, base, TXN_INDEX_EXT), true)?;
    let seg = MappedSegment::open(dir, base, Some(log_len.max(1)))?;
    // SAFETY: exclusive opener; reads stay below the file length.
    let (mut rebuilt, end) = unsafe {
        rebuild_segment(
            &seg,
            log_len,
            i64::MAX,
            verify_from,
            p.config.index_interval_bytes,
            &mut report.batches_verified,
            replay,
        )
    };
    if let Some(e) = rebuilt.cursor.maybe_time_entry() {
        if seg.time_index.write_time_entry(rebuilt.time_entries, e) {
            rebuilt.time_entries += 1;
        }
    }
    let walked = rebuilt.pos.position;
    drop(seg);
    segment::truncate(
        &segment::file_path(dir, base, INDEX_EXT),
        rebuilt.index_entries as u64 * 8,
    )?;
    segment::truncate(
        &segment::file_path(dir, base, TIME_INDEX_EXT),
        rebuilt.time_entries as u64 * 12,
    )?;
    // Bytes past a whole segment's batches are a roll's trim that a power cut undid;
    // anything else short of the recovery point was lost from outside.
    let whole = rebuilt.pos.next_offset == next_base;
    if !whole && (walked < log_len || !matches!(end, WalkEnd::Complete)) {
        lost_below_recovery_point(dir, base, rebuilt.pos.next_offset, verify_from)?;
    }
    segment::truncate(&segment::file_path(dir, base, LOG_EXT), walked)?;
    write_txn_index(dir, base, &rebuilt.aborted, false)?;
    Ok((walked, rebuilt.pos.next_offset, end))
}

fn all_zero_from(seg: &MappedSegment, from: u64, to: u64) -> bool {
    // SAFETY: exclusive opener, below the file length.
    unsafe { seg.bytes(from as usize, (to - from) as usize) }
        .is_some_and(|b| b.iter().all(|x| *x == 0))
}

/// Repair after a dead lock holder, under the lock: re-derives the tail from the
/// published end offset and the files, drops what the dead holder left past it.
pub fn repair(log: &PartitionLog, _guard: &AppendGuard<'_>) -> Result<()> {
    let tail = &log.block().tail;
    let end = tail.end_offset.load(Ordering::Acquire);
    let dir = log.dir();
    let config = log.config();
    let mut bases = segment::list_bases(dir, LOG_EXT)?;
    for &b in bases.iter().filter(|b| **b > end) {
        segment::remove_files(dir, b)?;
    }
    bases.retain(|b| *b <= end);
    remove_strays(dir, &bases)?;
    let params = RecoveryParams {
        dir,
        config,
        index_len: log.index_file_len(),
        time_len: log.time_file_len(),
    };
    let base = match bases.last() {
        Some(b) => *b,
        None => {
            segment::create_files(dir, end, params.index_len, params.time_len)?;
            end
        }
    };
    prepare_active_files(&params, base)?;
    let sealed = bases.partition_point(|b| *b < base);
    let mut replay = producer_state_before(dir, &bases, sealed)?;
    let seg = MappedSegment::open(dir, base, Some(config.segment_bytes))?;
    let file_len = std::fs::metadata(seg.log_path())
        .map_err(|e| Error::io("stat", seg.log_path(), e))?
        .len();
    // SAFETY: we hold the append lock; published bytes below `end` are complete.
    let (rebuilt, walk_end) = unsafe {
        rebuild_segment(
            &seg,
            file_len,
            end,
            i64::MAX,
            config.index_interval_bytes,
            &mut 0,
            &mut replay,
        )
    };
    if walk_end != WalkEnd::Complete || rebuilt.pos.next_offset != end {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "published log of {} does not reach its end offset {end}: walk stopped at offset {} ({walk_end:?})",
                dir.display(),
                rebuilt.pos.next_offset
            ),
        ));
    }
    // Zero the one batch a dead holder may have left half-written past the end.
    let garbage = (file_len.saturating_sub(rebuilt.pos.position))
        .min(u64::from(config.max_message_bytes) + crate::record::BATCH_HEADER_LEN as u64);
    if garbage > 0 {
        // SAFETY: under the lock, past the published end, below the file length.
        unsafe { seg.bytes_mut(rebuilt.pos.position as usize, garbage as usize) }.fill(0);
    }
    write_txn_index(dir, base, &rebuilt.aborted, true)?;
    tail.txn_floor.store(replay.txn_floor(), Ordering::Release);
    log.block().producers.replace(&replay.finish());
    store_tail(tail, base, &rebuilt, file_len);
    tail.segment_gen.fetch_add(1, Ordering::Release);
    Ok(())
}

/// The producer state at the start of segment `bases[i]`: the latest readable
/// snapshot at or before it, plus the idempotent batches of the segments between
/// (header hops only); from the start of the log when there is no snapshot.
fn producer_state_before(dir: &Path, bases: &[i64], i: usize) -> Result<Replay> {
    let found = (0..=i.min(bases.len().saturating_sub(1)))
        .rev()
        .find_map(|j| {
            let bytes = std::fs::read(producer_state::snapshot_path(dir, bases[j])).ok()?;
            producer_state::decode_snapshot(&bytes).map(|entries| (j, entries))
        });
    let (from, mut replay) = match found {
        Some((j, entries)) => (j, Replay::new(entries)),
        None => (0, Replay::default()),
    };
    for k in from..i.min(bases.len()) {
        let (base, next) = (bases[k], bases.get(k + 1).copied().unwrap_or(i64::MAX));
        let seg = MappedSegment::open(dir, base, None)?;
        let len = std::fs::metadata(seg.log_path())
            .map_err(|e| Error::io("stat", seg.log_path(), e))?
            .len();
        let mut pos = WalkPos {
            position: 0,
            next_offset: base,
            first_batch_timestamp: i64::MIN,
        };
        // SAFETY: a sealed segment, read below its length by the exclusive opener or
        // the append-lock holder.
        unsafe {
            walk(&seg, &mut pos, len, next, i64::MAX, |position, h| {
                replay.batch(h, control_type(&seg, position, h));
            })
        };
    }
    Ok(replay)
}

/// The marker type of the control batch at `position`, `None` for other batches.
fn control_type(seg: &MappedSegment, position: u64, h: &BatchHeader) -> Option<ControlRecordType> {
    if !h.is_control() {
        return None;
    }
    // SAFETY: the walk checked that the batch lies inside the walked bytes.
    let bytes = unsafe { seg.bytes(position as usize, h.total_len()) }?;
    Batch::parse(bytes)
        .and_then(|b| b.control())
        .ok()
        .map(|(kind, _)| kind)
}

/// Writes the `.txnindex` of the segment at `base` to hold exactly `aborted`.
/// With `shrink_only`, readers may be looking: the file is only cut back to the
/// expected entries (a dead holder's entry for an unpublished marker), never
/// rewritten, since what it holds before that point is what a walk finds.
fn write_txn_index(dir: &Path, base: i64, aborted: &[AbortedTxn], shrink_only: bool) -> Result<()> {
    let path = segment::file_path(dir, base, TXN_INDEX_EXT);
    let expected: Vec<u8> = aborted.iter().flat_map(|a| a.encode()).collect();
    let current = std::fs::read(&path).unwrap_or_default();
    if current == expected {
        return Ok(());
    }
    if shrink_only && current.len() > expected.len() && current[..expected.len()] == expected[..] {
        let f = ofs::open_rw(&path, false)?;
        return f
            .set_len(expected.len() as u64)
            .map_err(|e| Error::io("truncate", &path, e));
    }
    debug_assert_eq!(expected.len() % ABORTED_TXN_LEN, 0);
    ofs::write_atomic(&path, &expected)
}
