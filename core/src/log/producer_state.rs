//! Idempotence: what a partition remembers of each producer (its epoch and its last
//! five batches' sequence ranges and offsets), the rule that accepts, deduplicates or
//! rejects a producer's batch, and the `.snapshot` files that carry the state across
//! a restart without re-reading old segments.
//!
//! The live state sits in the partition's control block ([`ProducerTable`]), shared
//! by every process and changed only under the append lock. It is rebuilt from the
//! latest snapshot plus the batch headers after it on first open and after a dead
//! lock holder.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use crate::error::{Error, ErrorKind, Result};
use crate::record::{BatchHeader, ControlRecordType, ProducerInfo};

/// Batches remembered per producer, as Kafka does.
pub const BATCHES_PER_PRODUCER: usize = 5;
/// Producers remembered per partition; the least recently active is forgotten when
/// a new one arrives and every slot is taken.
pub const PRODUCER_SLOTS: usize = 48;

/// One remembered batch: its sequence range and where it landed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchSeq {
    /// Sequence number of the first record.
    pub first_seq: i32,
    /// Sequence number of the last record.
    pub last_seq: i32,
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
}

/// What a partition remembers of one producer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerEntry {
    /// The producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub epoch: i16,
    /// Its last batches, oldest first, at most [`BATCHES_PER_PRODUCER`].
    pub batches: Vec<BatchSeq>,
    /// First offset of its open transaction in this partition, or -1.
    pub txn_first_offset: i64,
}

impl Default for ProducerEntry {
    fn default() -> ProducerEntry {
        ProducerEntry {
            producer_id: 0,
            epoch: 0,
            batches: Vec::new(),
            txn_first_offset: -1,
        }
    }
}

/// An aborted transaction, as Kafka's `.txnindex` records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer.
    pub producer_id: i64,
    /// First offset of the transaction in this partition.
    pub first_offset: i64,
    /// Offset of its ABORT marker.
    pub last_offset: i64,
    /// The last stable offset right after the marker.
    pub last_stable_offset: i64,
}

/// Bytes of one `.txnindex` entry: version int16, producerId int64, firstOffset
/// int64, lastOffset int64, lastStableOffset int64.
pub const ABORTED_TXN_LEN: usize = 34;

impl AbortedTxn {
    /// Kafka's 34-byte `.txnindex` entry.
    pub fn encode(&self) -> [u8; ABORTED_TXN_LEN] {
        let mut out = [0u8; ABORTED_TXN_LEN];
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// Every whole entry of a `.txnindex` file's bytes (a torn last one is ignored).
    pub fn decode_all(bytes: &[u8]) -> Vec<AbortedTxn> {
        bytes
            .chunks_exact(ABORTED_TXN_LEN)
            .map(|e| {
                let i = |r: std::ops::Range<usize>| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&e[r]);
                    i64::from_be_bytes(b)
                };
                AbortedTxn {
                    producer_id: i(2..10),
                    first_offset: i(10..18),
                    last_offset: i(18..26),
                    last_stable_offset: i(26..34),
                }
            })
            .collect()
    }
}

/// The verdict on a producer's batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The next batch in sequence (or the first of an epoch): append it.
    Append,
    /// A retry of a batch already in the log: do not append; it landed here.
    Duplicate(BatchSeq),
}

/// The sequence number after `seq`; sequences wrap from `i32::MAX` to 0, as Kafka's.
pub fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// The last sequence number of a batch of `count` records starting at `first`.
pub fn last_seq(first: i32, count: i32) -> i32 {
    ((i64::from(first) + i64::from(count) - 1) % (i64::from(i32::MAX) + 1)) as i32
}

impl ProducerEntry {
    /// Decides on a batch of `count` records from `p`, given what is remembered of
    /// the producer (`None`: nothing).
    pub fn check(entry: Option<&ProducerEntry>, p: ProducerInfo, count: i32) -> Result<Verdict> {
        if p.producer_id < 0 || p.producer_epoch < 0 || p.base_sequence < 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "an idempotent batch needs a producer id, epoch and base sequence >= 0, got {}/{}/{}",
                    p.producer_id, p.producer_epoch, p.base_sequence
                ),
            ));
        }
        let first = p.base_sequence;
        let last = last_seq(first, count);
        if let Some(e) = entry.filter(|e| p.producer_epoch < e.epoch) {
            return Err(Error::new(
                ErrorKind::ProducerFenced,
                format!(
                    "producer {} epoch {} is fenced: epoch {} is current",
                    p.producer_id, p.producer_epoch, e.epoch
                ),
            ));
        }
        let Some(e) = entry.filter(|e| !e.batches.is_empty()) else {
            // Nothing known of this epoch: only the start of a sequence is acceptable.
            return if first == 0 {
                Ok(Verdict::Append)
            } else {
                Err(Error::new(
                    ErrorKind::OutOfOrderSequence,
                    format!(
                        "producer {} epoch {} has no batch in this partition and its batch starts at sequence {first}, not 0",
                        p.producer_id, p.producer_epoch
                    ),
                ))
            };
        };
        if p.producer_epoch > e.epoch {
            return if first == 0 {
                Ok(Verdict::Append)
            } else {
                Err(Error::new(
                    ErrorKind::OutOfOrderSequence,
                    format!(
                        "producer {} epoch {} must start at sequence 0, not {first}",
                        p.producer_id, p.producer_epoch
                    ),
                ))
            };
        }
        if let Some(b) = e
            .batches
            .iter()
            .find(|b| b.first_seq == first && b.last_seq == last)
        {
            return Ok(Verdict::Duplicate(*b));
        }
        let newest = e.batches.last().expect("checked non-empty");
        if first == next_seq(newest.last_seq) {
            return Ok(Verdict::Append);
        }
        Err(Error::new(
            ErrorKind::OutOfOrderSequence,
            format!(
                "producer {} epoch {}: batch with sequences {first}..={last} does not follow {} and is none of the last {} batches",
                p.producer_id,
                p.producer_epoch,
                newest.last_seq,
                e.batches.len()
            ),
        ))
    }

    /// Records an appended batch (accepted by [`check`](Self::check)); a
    /// transactional one opens the producer's transaction here if none is open.
    /// Returns true when it opened one.
    pub fn record(
        &mut self,
        p: ProducerInfo,
        count: i32,
        base_offset: i64,
        last_offset: i64,
        transactional: bool,
    ) -> bool {
        if p.producer_epoch != self.epoch {
            self.batches.clear();
        }
        let opened = transactional && self.txn_first_offset < 0;
        if opened {
            self.txn_first_offset = base_offset;
        }
        self.producer_id = p.producer_id;
        self.epoch = p.producer_epoch;
        if self.batches.len() == BATCHES_PER_PRODUCER {
            self.batches.remove(0);
        }
        self.batches.push(BatchSeq {
            first_seq: p.base_sequence,
            last_seq: last_seq(p.base_sequence, count),
            base_offset,
            last_offset,
        });
        opened
    }

    /// Accounts for a transaction marker with `epoch`: the producer's transaction in
    /// this partition ends. Returns its first offset if one was open.
    pub fn end_txn(&mut self, epoch: i16) -> Option<i64> {
        if epoch > self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
        let first = self.txn_first_offset;
        self.txn_first_offset = -1;
        (first >= 0).then_some(first)
    }

    /// The offset of the producer's newest batch (for forgetting the least recent).
    pub fn last_offset(&self) -> i64 {
        self.batches.last().map_or(-1, |b| b.last_offset)
    }
}

/// A slot of the shared table. Written only under the append lock; the atomics
/// make it shareable, not lock-free.
#[repr(C)]
pub struct ProducerSlot {
    producer_id: AtomicI64,
    epoch_and_count: AtomicU32,
    _pad: AtomicU32,
    txn_first_offset: AtomicI64,
    batches: [[AtomicI64; 3]; BATCHES_PER_PRODUCER],
}

/// The producer table of a partition, in its control block.
#[repr(C)]
pub struct ProducerTable {
    slots: [ProducerSlot; PRODUCER_SLOTS],
}

impl ProducerTable {
    fn load(slot: &ProducerSlot) -> Option<ProducerEntry> {
        let producer_id = slot.producer_id.load(Ordering::Relaxed);
        if producer_id <= 0 {
            return None;
        }
        let ec = slot.epoch_and_count.load(Ordering::Relaxed);
        let count = ((ec & 0xffff) as usize).min(BATCHES_PER_PRODUCER);
        let batches = slot.batches[..count]
            .iter()
            .map(|b| {
                let seqs = b[0].load(Ordering::Relaxed);
                BatchSeq {
                    first_seq: (seqs >> 32) as i32,
                    last_seq: seqs as i32,
                    base_offset: b[1].load(Ordering::Relaxed),
                    last_offset: b[2].load(Ordering::Relaxed),
                }
            })
            .collect();
        Some(ProducerEntry {
            producer_id,
            epoch: (ec >> 16) as u16 as i16,
            batches,
            txn_first_offset: slot.txn_first_offset.load(Ordering::Relaxed),
        })
    }

    fn store(slot: &ProducerSlot, e: &ProducerEntry) {
        for (dst, b) in slot.batches.iter().zip(&e.batches) {
            let seqs = (i64::from(b.first_seq) << 32) | i64::from(b.last_seq as u32);
            dst[0].store(seqs, Ordering::Relaxed);
            dst[1].store(b.base_offset, Ordering::Relaxed);
            dst[2].store(b.last_offset, Ordering::Relaxed);
        }
        let ec = (u32::from(e.epoch as u16) << 16) | e.batches.len() as u32;
        slot.epoch_and_count.store(ec, Ordering::Relaxed);
        slot.txn_first_offset
            .store(e.txn_first_offset, Ordering::Relaxed);
        slot.producer_id.store(e.producer_id, Ordering::Relaxed);
    }

    /// What is remembered of `producer_id`.
    pub fn get(&self, producer_id: i64) -> Option<ProducerEntry> {
        self.slots
            .iter()
            .find(|s| s.producer_id.load(Ordering::Relaxed) == producer_id)
            .and_then(Self::load)
    }

    /// Stores `e`, in its producer's slot, a free one, or the least recently active.
    pub fn put(&self, e: &ProducerEntry) {
        let slot = self
            .slots
            .iter()
            .find(|s| s.producer_id.load(Ordering::Relaxed) == e.producer_id)
            .or_else(|| {
                self.slots
                    .iter()
                    .find(|s| s.producer_id.load(Ordering::Relaxed) <= 0)
            })
            .unwrap_or_else(|| {
                // Never a producer with an open transaction while another will do:
                // forgetting it would lose the last stable offset.
                self.slots
                    .iter()
                    .min_by_key(|s| {
                        Self::load(s)
                            .map_or((false, -1), |x| (x.txn_first_offset >= 0, x.last_offset()))
                    })
                    .expect("the table has slots")
            });
        Self::store(slot, e);
    }

    /// First offset of the oldest open transaction, or `i64::MAX` if none.
    pub fn txn_floor(&self) -> i64 {
        self.slots
            .iter()
            .filter_map(Self::load)
            .filter(|e| e.txn_first_offset >= 0)
            .map(|e| e.txn_first_offset)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Every remembered producer.
    pub fn entries(&self) -> Vec<ProducerEntry> {
        self.slots.iter().filter_map(Self::load).collect()
    }

    /// Replaces the whole table.
    pub fn replace(&self, entries: &[ProducerEntry]) {
        for s in &self.slots {
            s.producer_id.store(0, Ordering::Relaxed);
        }
        for e in entries {
            self.put(e);
        }
    }
}

/// Replays batch headers into a producer state, for recovery: every idempotent
/// batch (producer id >= 0, not a control batch) is recorded as if appended.
#[derive(Clone, Default)]
pub struct Replay {
    entries: Vec<ProducerEntry>,
}

impl Replay {
    /// Starts from `entries` (a snapshot).
    pub fn new(entries: Vec<ProducerEntry>) -> Replay {
        Replay { entries }
    }

    /// Accounts for one batch; `control` is the marker type of a control batch.
    /// Returns the aborted transaction an ABORT marker closed.
    pub fn batch(
        &mut self,
        h: &BatchHeader,
        control: Option<ControlRecordType>,
    ) -> Option<AbortedTxn> {
        let p = h.producer();
        if p.producer_id < 0 {
            return None;
        }
        let i = match self
            .entries
            .iter()
            .position(|e| e.producer_id == p.producer_id)
        {
            Some(i) => i,
            None => {
                self.entries.push(ProducerEntry {
                    producer_id: p.producer_id,
                    epoch: p.producer_epoch,
                    ..ProducerEntry::default()
                });
                self.entries.len() - 1
            }
        };
        if h.is_control() {
            let first = self.entries[i].end_txn(p.producer_epoch)?;
            if control != Some(ControlRecordType::Abort) {
                return None;
            }
            return Some(AbortedTxn {
                producer_id: p.producer_id,
                first_offset: first,
                last_offset: h.last_offset(),
                last_stable_offset: self.txn_floor().min(h.next_offset()),
            });
        }
        if p.base_sequence >= 0 {
            let count = h.last_offset_delta + 1;
            self.entries[i].record(
                p,
                count,
                h.base_offset,
                h.last_offset(),
                h.is_transactional(),
            );
        }
        None
    }

    /// First offset of the oldest open transaction, or `i64::MAX`.
    pub fn txn_floor(&self) -> i64 {
        self.entries
            .iter()
            .filter(|e| e.txn_first_offset >= 0)
            .map(|e| e.txn_first_offset)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// The state, most recently active last, at most [`PRODUCER_SLOTS`] producers.
    pub fn finish(mut self) -> Vec<ProducerEntry> {
        // Producers with an open transaction are kept first of all.
        self.entries
            .sort_by_key(|e| (e.txn_first_offset >= 0, e.last_offset()));
        let excess = self.entries.len().saturating_sub(PRODUCER_SLOTS);
        self.entries.drain(..excess);
        self.entries
    }
}

const SNAPSHOT_MAGIC: &[u8; 8] = b"OLPSNAP2";

/// Path of the producer snapshot taken at `offset` in `dir`.
pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    super::segment::file_path(dir, offset, super::segment::SNAPSHOT_EXT)
}

/// Encodes a snapshot: magic, entry count, then per producer its id, epoch and
/// batches; a CRC-32C of everything before it at the end. Big-endian.
pub fn encode_snapshot(entries: &[ProducerEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + entries.len() * 136);
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        out.extend_from_slice(&e.producer_id.to_be_bytes());
        out.extend_from_slice(&e.epoch.to_be_bytes());
        out.extend_from_slice(&e.txn_first_offset.to_be_bytes());
        out.push(e.batches.len() as u8);
        for b in &e.batches {
            out.extend_from_slice(&b.first_seq.to_be_bytes());
            out.extend_from_slice(&b.last_seq.to_be_bytes());
            out.extend_from_slice(&b.base_offset.to_be_bytes());
            out.extend_from_slice(&b.last_offset.to_be_bytes());
        }
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Decodes a snapshot; `None` if it is damaged in any way.
pub fn decode_snapshot(bytes: &[u8]) -> Option<Vec<ProducerEntry>> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32c::crc32c(body).to_be_bytes() != crc {
        return None;
    }
    let mut r = body.strip_prefix(SNAPSHOT_MAGIC)?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, rest) = r.split_at_checked(n)?;
        r = rest;
        Some(head)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
    let mut entries = Vec::with_capacity(count.min(PRODUCER_SLOTS));
    for _ in 0..count {
        let producer_id = i64::from_be_bytes(take(8)?.try_into().ok()?);
        let epoch = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let txn_first_offset = i64::from_be_bytes(take(8)?.try_into().ok()?);
        let n = usize::from(*take(1)?.first()?);
        if n > BATCHES_PER_PRODUCER {
            return None;
        }
        let mut batches = Vec::with_capacity(n);
        for _ in 0..n {
            batches.push(BatchSeq {
                first_seq: i32::from_be_bytes(take(4)?.try_into().ok()?),
                last_seq: i32::from_be_bytes(take(4)?.try_into().ok()?),
                base_offset: i64::from_be_bytes(take(8)?.try_into().ok()?),
                last_offset: i64::from_be_bytes(take(8)?.try_into().ok()?),
            });
        }
        entries.push(ProducerEntry {
            producer_id,
            epoch,
            batches,
            txn_first_offset,
        });
    }
    take(0)?;
    r.is_empty().then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: i64, epoch: i16, seq: i32) -> ProducerInfo {
        ProducerInfo {
            producer_id: id,
            producer_epoch: epoch,
            base_sequence: seq,
        }
    }

    #[test]
    fn accepts_in_order_dedups_retries_rejects_gaps_and_old_epochs() {
        let mut e = ProducerEntry::default();
        assert_eq!(
            ProducerEntry::check(None, p(7, 0, 0), 3).unwrap(),
            Verdict::Append
        );
        assert_eq!(
            ProducerEntry::check(None, p(7, 0, 5), 3)
                .unwrap_err()
                .kind(),
            ErrorKind::OutOfOrderSequence
        );
        e.record(p(7, 0, 0), 3, 100, 102, false);
        assert_eq!(
            ProducerEntry::check(Some(&e), p(7, 0, 3), 2).unwrap(),
            Verdict::Append
        );
        e.record(p(7, 0, 3), 2, 110, 111, false);
        // A retry of either batch is a duplicate with its original offsets.
        let dup = ProducerEntry::check(Some(&e), p(7, 0, 0), 3).unwrap();
        assert_eq!(
            dup,
            Verdict::Duplicate(BatchSeq {
                first_seq: 0,
                last_seq: 2,
                base_offset: 100,
                last_offset: 102
            })
        );
        // A gap, an overlap that is not a whole earlier batch, an old epoch.
        for (info, count, kind) in [
            (p(7, 0, 6), 1, ErrorKind::OutOfOrderSequence),
            (p(7, 0, 1), 2, ErrorKind::OutOfOrderSequence),
            (p(7, -1, 0), 1, ErrorKind::InvalidArgument),
        ] {
            assert_eq!(
                ProducerEntry::check(Some(&e), info, count)
                    .unwrap_err()
                    .kind(),
                kind
            );
        }
        e.record(p(7, 1, 0), 1, 120, 120, false);
        assert_eq!(
            ProducerEntry::check(Some(&e), p(7, 0, 5), 1)
                .unwrap_err()
                .kind(),
            ErrorKind::ProducerFenced
        );
        // A new epoch starts at 0.
        assert_eq!(
            ProducerEntry::check(Some(&e), p(7, 2, 3), 1)
                .unwrap_err()
                .kind(),
            ErrorKind::OutOfOrderSequence
        );
        assert_eq!(
            ProducerEntry::check(Some(&e), p(7, 2, 0), 1).unwrap(),
            Verdict::Append
        );
    }

    #[test]
    fn remembers_five_batches_and_wraps_sequences() {
        let mut e = ProducerEntry::default();
        for i in 0..7 {
            e.record(
                p(1, 0, i * 10),
                10,
                i64::from(i) * 10,
                i64::from(i) * 10 + 9,
                false,
            );
        }
        assert_eq!(e.batches.len(), BATCHES_PER_PRODUCER);
        assert!(matches!(
            ProducerEntry::check(Some(&e), p(1, 0, 20), 10),
            Ok(Verdict::Duplicate(_))
        ));
        // The oldest two are forgotten: their retry is out of order, not a duplicate.
        assert_eq!(
            ProducerEntry::check(Some(&e), p(1, 0, 10), 10)
                .unwrap_err()
                .kind(),
            ErrorKind::OutOfOrderSequence
        );
        assert_eq!(last_seq(i32::MAX - 1, 3), 0);
        assert_eq!(next_seq(i32::MAX), 0);
    }

    #[test]
    fn transactions_open_on_their_first_batch_and_end_at_a_marker() {
        let mut e = ProducerEntry::default();
        assert!(
            e.record(p(4, 0, 0), 2, 10, 11, true),
            "the first batch opens it"
        );
        assert!(!e.record(p(4, 0, 2), 1, 15, 15, true), "later ones do not");
        assert_eq!(e.txn_first_offset, 10);
        assert_eq!(e.end_txn(0), Some(10));
        assert_eq!(e.end_txn(0), None, "a second marker finds nothing open");
        // A marker of a newer epoch also fences the old epoch's sequence history.
        e.record(p(4, 0, 3), 1, 20, 20, true);
        assert_eq!(e.end_txn(1), Some(20));
        assert_eq!((e.epoch, e.batches.len()), (1, 0));
    }

    #[test]
    fn snapshots_round_trip_and_reject_damage() {
        let mut a = ProducerEntry::default();
        a.record(p(3, 2, 0), 4, 10, 13, true);
        a.record(p(3, 2, 4), 1, 20, 20, true);
        let b = ProducerEntry {
            producer_id: 9,
            ..ProducerEntry::default()
        };
        let bytes = encode_snapshot(&[a.clone(), b.clone()]);
        assert_eq!(decode_snapshot(&bytes).unwrap(), vec![a, b]);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert_eq!(decode_snapshot(&bad), None, "flip at {i}");
            assert_eq!(decode_snapshot(&bytes[..i]), None, "cut at {i}");
        }
    }

    #[test]
    fn the_shared_table_stores_entries_and_forgets_the_least_recent() {
        // SAFETY: the table is atomics only, for which all-zero is a valid (empty) value,
        // as in a freshly created control block.
        let table: Box<ProducerTable> = Box::new(unsafe { std::mem::zeroed() });
        for id in 1..=(PRODUCER_SLOTS as i64 + 1) {
            let mut e = ProducerEntry::default();
            e.record(p(id, 3, 0), 1, id * 10, id * 10, false);
            table.put(&e);
        }
        // Producer 1 was the least recently active and made room for the last one.
        assert_eq!(table.get(1), None);
        let last = table.get(PRODUCER_SLOTS as i64 + 1).unwrap();
        assert_eq!((last.epoch, last.batches.len()), (3, 1));
        assert_eq!(table.entries().len(), PRODUCER_SLOTS);
    }
}
