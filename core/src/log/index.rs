//! The sparse indexes of a segment, in Kafka's formats:
//! `.index` entries are 8 bytes (relative offset i32, position i32) and `.timeindex`
//! entries 12 bytes (timestamp i64, relative offset i32), all big-endian.
//!
//! An index is a prefix of valid entries in a file that may be longer (reserved
//! ahead); the number of valid entries comes from the control block (active segment)
//! or the file length (sealed segments). Readers only ever look at entries below a
//! count loaded with acquire ordering, so entries are written before the count.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::MmapRaw;

use crate::config::TopicConfig;
use crate::error::{Error, Result};

/// Which of the two index formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexKind {
    /// `.index`: offset to byte position.
    Offset,
    /// `.timeindex`: timestamp to offset.
    Time,
}

impl IndexKind {
    /// Bytes per entry.
    pub const fn entry_len(self) -> usize {
        match self {
            IndexKind::Offset => 8,
            IndexKind::Time => 12,
        }
    }
}

/// One offset-index entry, with the absolute offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetEntry {
    /// Last offset of the indexed batch.
    pub offset: i64,
    /// Byte position of that batch in the `.log`.
    pub position: u32,
}

/// One time-index entry, with the absolute offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest timestamp seen in the segment up to this entry.
    pub timestamp: i64,
    /// Offset of the record carrying it.
    pub offset: i64,
}

/// A mapped index file.
pub struct IndexMap {
    kind: IndexKind,
    base: i64,
    map: Option<MmapRaw>,
    capacity: usize,
    path: PathBuf,
}

impl IndexMap {
    /// Maps `file` (already sized) with room for `file_len / entry_len` entries. The
    /// mapping does not keep the descriptor.
    pub fn map(
        kind: IndexKind,
        base: i64,
        file: File,
        path: &Path,
        writable: bool,
    ) -> Result<IndexMap> {
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len() as usize;
        let map = if len == 0 {
            None
        } else {
            let mut opts = memmap2::MmapOptions::new();
            opts.len(len);
            let m = if writable {
                opts.map_raw(&file)
            } else {
                opts.map_raw_read_only(&file)
            };
            Some(m.map_err(|e| Error::io("map", path, e))?)
        };
        Ok(IndexMap {
            kind,
            base,
            map,
            capacity: len / kind.entry_len(),
            path: path.to_path_buf(),
        })
    }

    /// Entries the file has room for.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn entry_bytes(&self, i: usize) -> Option<&[u8]> {
        let len = self.kind.entry_len();
        if i >= self.capacity {
            return None;
        }
        let map = self.map.as_ref()?;
        // SAFETY: i < capacity, so [i*len, (i+1)*len) lies inside the mapping, which
        // lives as long as `self`. Callers read only entries below a count published
        // after the entry was written.
        Some(unsafe { std::slice::from_raw_parts(map.as_ptr().add(i * len), len) })
    }

    fn rel(&self, bytes: [u8; 4]) -> i64 {
        self.base + i64::from(i32::from_be_bytes(bytes))
    }

    /// Offset-index entry `i`, if inside the file.
    pub fn offset_entry(&self, i: usize) -> Option<OffsetEntry> {
        debug_assert_eq!(self.kind, IndexKind::Offset);
        let b = self.entry_bytes(i)?;
        Some(OffsetEntry {
            offset: self.rel([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }

    /// Time-index entry `i`, if inside the file.
    pub fn time_entry(&self, i: usize) -> Option<TimeEntry> {
        debug_assert_eq!(self.kind, IndexKind::Time);
        let b = self.entry_bytes(i)?;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        Some(TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            offset: self.rel([b[8], b[9], b[10], b[11]]),
        })
    }

    /// Writes entry `i`. The caller holds the append lock and publishes the new count
    /// afterwards; returns false when the file is full.
    pub fn write_offset_entry(&self, i: usize, entry: OffsetEntry) -> bool {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&self.relative(entry.offset).to_be_bytes());
        bytes[4..].copy_from_slice(&entry.position.to_be_bytes());
        self.write_entry(i, &bytes)
    }

    /// Writes time entry `i`; as [`write_offset_entry`](Self::write_offset_entry).
    pub fn write_time_entry(&self, i: usize, entry: TimeEntry) -> bool {
        let mut bytes = [0u8; 12];
        bytes[..8].copy_from_slice(&entry.timestamp.to_be_bytes());
        bytes[8..].copy_from_slice(&self.relative(entry.offset).to_be_bytes());
        self.write_entry(i, &bytes)
    }

    fn relative(&self, offset: i64) -> i32 {
        i32::try_from(offset - self.base).expect("segments roll before relative offsets overflow")
    }

    fn write_entry(&self, i: usize, bytes: &[u8]) -> bool {
        let len = self.kind.entry_len();
        let Some(map) = self.map.as_ref() else {
            return false;
        };
        if i >= self.capacity {
            return false;
        }
        // SAFETY: in bounds (checked above) of a writable mapping; only the append-lock
        // holder writes, and only entries no reader may look at yet.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.as_mut_ptr().add(i * len), len)
        };
        true
    }

    /// The last offset-index entry among the first `count` whose offset is `<= target`.
    pub fn lookup_offset(&self, count: usize, target: i64) -> Option<OffsetEntry> {
        let count = count.min(self.capacity);
        // Entries are increasing in offset: binary search for the last one <= target.
        let (mut lo, mut hi) = (0usize, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.offset_entry(mid) {
                Some(e) if e.offset <= target => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo.checked_sub(1).and_then(|i| self.offset_entry(i))
    }

    /// The last time-index entry among the first `count` whose timestamp is `< target`,
    /// the point from which a scan finds the first record at or after `target`.
    pub fn lookup_time(&self, count: usize, target: i64) -> Option<TimeEntry> {
        let count = count.min(self.capacity);
        let (mut lo, mut hi) = (0usize, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.time_entry(mid) {
                Some(e) if e.timestamp < target => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo.checked_sub(1).and_then(|i| self.time_entry(i))
    }
}

/// Bytes to reserve for one index file of `kind` of an active segment: enough for
/// one entry per `index.interval.bytes` of `segment.bytes` plus two, capped by
/// `segment.index.bytes`.
pub fn index_file_len(kind: IndexKind, config: &TopicConfig) -> u64 {
    let entry = kind.entry_len() as u64;
    let entries = config.segment_bytes / u64::from(config.index_interval_bytes.max(1)) + 2;
    let cap = u64::from(config.segment_index_bytes) / entry * entry;
    (entries * entry).min(cap.max(entry * 2))
}
