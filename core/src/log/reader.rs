//! Reading a partition without the append lock: the reader loads the published end
//! offset with acquire ordering and never touches a byte past it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::partition::{PartitionLog, SegmentList};
use super::producer_state::AbortedTxn;
use super::segment;
use crate::error::{bail, Error, ErrorKind, Result};
use crate::record::{Batch, BatchHeader, RecordView, BATCH_HEADER_LEN};

/// A cursor over one partition's batches, from any offset. Cheap to create; each
/// thread should use its own. Batches borrow the shared mapping: no copy is made.
pub struct Reader {
    log: Arc<PartitionLog>,
    list: Arc<SegmentList>,
    seg: usize,
    position: u64,
    next_offset: i64,
    /// Records below this offset are skipped (a seek into the middle of a batch).
    from_offset: i64,
    verify_crc: bool,
    /// `Some` in read_committed mode: the aborted transactions known so far.
    aborted: Option<Aborted>,
    /// Keeps the store open (no clean shutdown) while the reader lives.
    _store: Option<crate::Store>,
}

/// Aborted transactions as a read_committed reader knows them.
struct Aborted {
    entries: Vec<AbortedTxn>,
    /// The last stable offset when they were read.
    loaded_at: i64,
}

/// One batch read from the log, with the offset below which its records were not
/// asked for.
#[derive(Clone, Copy, Debug)]
pub struct ReadBatch<'a> {
    batch: Batch<'a>,
    from_offset: i64,
}

impl<'a> ReadBatch<'a> {
    /// The whole batch as stored.
    pub fn batch(&self) -> &Batch<'a> {
        &self.batch
    }

    /// The batch header.
    pub fn header(&self) -> &BatchHeader {
        self.batch.header()
    }

    /// The records at or after the reader's requested offset.
    pub fn records(&self) -> impl Iterator<Item = Result<RecordView<'a>>> + 'a {
        let from = self.from_offset;
        let bytes = self.batch.bytes();
        let mut prefetched = 0usize;
        let mut inner = self.batch.records();
        // One plain loop instead of map + filter over Result<RecordView, Error>: the
        // adapters moved ~100-byte items through several layers per record, and the
        // error conversion belongs out of line.
        std::iter::from_fn(move || loop {
            match inner.next()? {
                Ok(r) => {
                    // The decoder is one serial chain of dependent loads (each length
                    // says where the next record starts), so the core cannot run ahead
                    // of a cache miss: ask for the bytes ~2 KiB ahead of this record.
                    let at = r.key.or(r.value).map_or(prefetched, |b| {
                        (b.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize)
                    });
                    let until = (at + PREFETCH_AHEAD).min(bytes.len());
                    while prefetched < until {
                        prefetch(&bytes[prefetched]);
                        prefetched += 64;
                    }
                    if r.offset < from {
                        continue;
                    }
                    return Some(Ok(r));
                }
                Err(e) => return Some(Err(corrupt_record(e))),
            }
        })
    }
}

/// Bytes of a batch prefetched ahead of the record being decoded.
const PREFETCH_AHEAD: usize = 2048;

#[inline(always)]
fn prefetch(p: &u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint and cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const u8 as *const i8, std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cold]
#[inline(never)]
fn corrupt_record(e: crate::record::DecodeError) -> Error {
    Error::new(ErrorKind::Corrupt, e.to_string())
}

impl Reader {
    /// A reader positioned at `offset`.
    pub fn new(log: Arc<PartitionLog>, offset: i64, store: Option<crate::Store>) -> Result<Reader> {
        log.check_fork()?;
        let list = log.segments()?;
        let mut reader = Reader {
            log,
            list,
            seg: 0,
            position: 0,
            next_offset: 0,
            from_offset: 0,
            verify_crc: false,
            aborted: None,
            _store: store,
        };
        reader.seek(offset)?;
        Ok(reader)
    }

    /// Verify each batch's CRC before returning it (Kafka's `check.crcs`; default off:
    /// the append path wrote it and recovery verified it).
    pub fn verify_crc(mut self, on: bool) -> Reader {
        self.verify_crc = on;
        self
    }

    /// Read only committed data (Kafka's `read_committed`): stop at the last stable
    /// offset, skip transaction markers and the batches of aborted transactions.
    pub fn read_committed(mut self, on: bool) -> Reader {
        self.aborted = on.then(|| Aborted {
            entries: Vec::new(),
            loaded_at: i64::MIN,
        });
        self
    }

    /// The next offset this reader will return.
    pub fn position(&self) -> i64 {
        self.next_offset.max(self.from_offset)
    }

    /// Moves to `offset`, which must lie between the log start and the end offset.
    pub fn seek(&mut self, offset: i64) -> Result<()> {
        self.log.check_fork()?;
        let tail = &self.log.block().tail;
        let end = tail.end_offset.load(Ordering::Acquire);
        let start = tail.log_start_offset.load(Ordering::Acquire);
        if offset < start || offset > end {
            bail!(
                OffsetOutOfRange,
                "offset {offset} is outside {}-{}'s range [{start}, {end}]",
                self.log.topic(),
                self.log.partition()
            );
        }
        self.list = self.log.segments()?;
        let Some(seg) = self.list.find(offset) else {
            bail!(
                OffsetOutOfRange,
                "offset {offset} of {}-{} was deleted by retention",
                self.log.topic(),
                self.log.partition()
            );
        };
        let (position, next_offset) = match self.index_hint(seg, offset, end)? {
            Some(hint) => hint,
            None => (0, self.list.segments[seg].base),
        };
        self.seg = seg;
        self.position = position;
        self.next_offset = next_offset;
        // Skip whole batches that end before `offset`.
        while let Some(header) = self.locate()? {
            if header.last_offset() >= offset {
                break;
            }
            self.position += header.total_len() as u64;
            self.next_offset = header.next_offset();
        }
        self.from_offset = offset;
        Ok(())
    }

    /// The (position, base offset) of an indexed batch of segment `i` at or before
    /// `offset`, among the batches below the published `end`.
    fn index_hint(&self, i: usize, offset: i64, end: i64) -> Result<Option<(u64, i64)>> {
        let entry = &self.list.segments[i];
        let seg = self.list.seg(i)?;
        let count = match entry.sealed {
            Some(s) => s.index_entries,
            None => {
                let tail = &self.log.block().tail;
                let b1 = tail.active_base.load(Ordering::Acquire);
                let c = tail.index_entries.load(Ordering::Acquire) as usize;
                let b2 = tail.active_base.load(Ordering::Acquire);
                if b1 != b2 || b1 != entry.base {
                    return Ok(None);
                }
                c
            }
        };
        // Entries are counted before the batch they name is published: skip one
        // that names a batch at or past the end we loaded.
        let Some(hit) = seg.index.lookup_offset(count, offset.min(end - 1)) else {
            return Ok(None);
        };
        // SAFETY: the entry names a published batch (entries are written before the
        // end offset that covers them is published).
        let head = unsafe { seg.bytes(hit.position as usize, BATCH_HEADER_LEN) };
        Ok(match head.map(BatchHeader::parse) {
            Some(Ok(h)) if h.last_offset() == hit.offset => {
                Some((u64::from(hit.position), h.base_offset))
            }
            _ => None,
        })
    }

    /// Moves into the segment holding `next_offset` and reads the header of the batch
    /// there; `None` at the end offset.
    fn locate(&mut self) -> Result<Option<BatchHeader>> {
        // read_committed stops at the last stable offset (loaded after the end, and
        // never above it).
        let end = match self.aborted {
            Some(_) => self.log.last_stable_offset(),
            None => self.log.block().tail.end_offset.load(Ordering::Acquire),
        };
        if self.next_offset >= end {
            return Ok(None);
        }
        loop {
            let list = &self.list;
            if let Some(next) = list.segments.get(self.seg + 1) {
                if self.next_offset >= next.base {
                    self.seg += 1;
                    self.position = 0;
                    continue;
                }
                let this = &list.segments[self.seg];
                if this.sealed.is_some_and(|s| self.position >= s.log_len) {
                    // Segments are contiguous unless files went missing from outside.
                    bail!(
                        Corrupt,
                        "{}-{}: offsets {}..{} are missing: {} ends before the next segment \
                         starts (a segment file deleted or truncated from outside?)",
                        self.log.topic(),
                        self.log.partition(),
                        self.next_offset,
                        next.base,
                        segment::file_path(&list.dir, this.base, segment::LOG_EXT).display()
                    );
                }
                break;
            }
            // The last segment we know of: if it is still the active one, it holds
            // every offset below the end we loaded (a roll moves `active_base` before
            // any offset of the new segment is published).
            let active_base = self.log.block().tail.active_base.load(Ordering::Acquire);
            if active_base == list.segments[self.seg].base {
                break;
            }
            self.refresh()?;
        }
        let seg = self.list.seg(self.seg)?;
        // SAFETY: `next_offset < end` and the segment holds it, so a whole published
        // batch starts at `position`.
        let head = unsafe { seg.bytes(self.position as usize, BATCH_HEADER_LEN) }
            .ok_or_else(|| self.corrupt("batch header outside the segment"))?;
        let header = BatchHeader::parse(head).map_err(|e| self.corrupt(&e.to_string()))?;
        if header.base_offset != self.next_offset {
            return Err(self.corrupt(&format!(
                "batch has base offset {}, expected {}",
                header.base_offset, self.next_offset
            )));
        }
        Ok(Some(header))
    }

    /// The next batch, or `None` when the reader is at the end offset.
    pub fn next_batch(&mut self) -> Result<Option<ReadBatch<'_>>> {
        self.log.check_fork()?;
        let header = loop {
            let Some(header) = self.locate()? else {
                return Ok(None);
            };
            // read_committed: markers and aborted transactions' batches are skipped.
            let skip = self.aborted.is_some()
                && (header.is_control()
                    || (header.is_transactional()
                        && self.is_aborted(header.producer_id, header.base_offset)?));
            if !skip {
                break header;
            }
            self.position += header.total_len() as u64;
            self.next_offset = header.next_offset();
        };
        let seg = self.list.seg(self.seg)?;
        // SAFETY: the batch starts at a published position and lies below the end.
        let bytes = unsafe { seg.bytes(self.position as usize, header.total_len()) }
            .ok_or_else(|| self.corrupt("batch overruns the segment"))?;
        let batch = Batch::parse(bytes).map_err(|e| self.corrupt(&e.to_string()))?;
        if self.verify_crc {
            batch
                .verify_crc()
                .map_err(|e| self.corrupt(&e.to_string()))?;
        }
        self.position += header.total_len() as u64;
        self.next_offset = header.next_offset();
        Ok(Some(ReadBatch {
            batch,
            from_offset: self.from_offset,
        }))
    }

    /// Whether the transactional batch of `producer_id` at `offset` (below the last
    /// stable offset) belongs to an aborted transaction. The aborted transactions
    /// are read from the `.txnindex` files of the segments from this one on, again
    /// whenever the reader passes the last stable offset it read them at: a
    /// transaction complete below that offset has its entry written by then.
    fn is_aborted(&mut self, producer_id: i64, offset: i64) -> Result<bool> {
        let known = self.aborted.as_ref().map_or(i64::MIN, |a| a.loaded_at);
        if offset >= known {
            let loaded_at = self.log.last_stable_offset();
            let list = self.log.segments()?;
            let here = self.list.segments[self.seg].base;
            let mut entries = Vec::new();
            for s in list.segments.iter().filter(|s| s.base >= here) {
                let path = super::segment::file_path(
                    self.log.dir(),
                    s.base,
                    super::segment::TXN_INDEX_EXT,
                );
                match std::fs::read(&path) {
                    Ok(bytes) => entries.extend(AbortedTxn::decode_all(&bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("read", &path, e)),
                }
            }
            self.aborted = Some(Aborted { entries, loaded_at });
        }
        let aborted = self.aborted.as_ref().expect("loaded above");
        Ok(aborted.entries.iter().any(|a| {
            a.producer_id == producer_id && a.first_offset <= offset && offset <= a.last_offset
        }))
    }

    /// Like [`next_batch`](Self::next_batch), but waits up to `timeout` for data
    /// (spinning `spin` first, then sleeping on the partition's futex).
    pub fn poll(&mut self, timeout: Duration, spin: Duration) -> Result<Option<ReadBatch<'_>>> {
        let end = self.log.end_offset();
        if self.next_offset >= end && !self.log.wait_for(self.next_offset, timeout, spin)? {
            return Ok(None);
        }
        self.next_batch()
    }

    fn refresh(&mut self) -> Result<()> {
        let base = self.list.segments[self.seg].base;
        self.list = self.log.segments()?;
        match self.list.segments.iter().position(|s| s.base == base) {
            Some(i) => self.seg = i,
            None => {
                // Our segment was deleted and we have no mapping of a later one.
                let Some(i) = self.list.find(self.next_offset) else {
                    bail!(
                        OffsetOutOfRange,
                        "offset {} of {}-{} was deleted by retention (log now starts at {})",
                        self.next_offset,
                        self.log.topic(),
                        self.log.partition(),
                        self.log.start_offset()
                    );
                };
                self.seg = i;
                self.position = 0;
                if self.list.segments[i].base != self.next_offset {
                    bail!(
                        OffsetOutOfRange,
                        "offset {} of {}-{} was deleted by retention",
                        self.next_offset,
                        self.log.topic(),
                        self.log.partition()
                    );
                }
            }
        }
        Ok(())
    }

    fn corrupt(&self, what: &str) -> Error {
        Error::new(
            ErrorKind::Corrupt,
            format!(
                "{}-{} at offset {} (segment {}, byte {}): {what}",
                self.log.topic(),
                self.log.partition(),
                self.next_offset,
                self.list.segments[self.seg].base,
                self.position
            ),
        )
    }
}
