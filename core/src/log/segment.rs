//! Segment files: `<base>.log` with its `.index`, `.timeindex` and `.txnindex`,
//! named by the 20-digit base offset, and their shared mappings.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use memmap2::MmapRaw;

use super::index::{IndexKind, IndexMap};
use crate::error::{Error, Result};
use crate::fs as ofs;

/// File extension of the record batches.
pub const LOG_EXT: &str = "log";
/// File extension of the offset index.
pub const INDEX_EXT: &str = "index";
/// File extension of the time index.
pub const TIME_INDEX_EXT: &str = "timeindex";
/// File extension of the aborted-transaction index.
pub const TXN_INDEX_EXT: &str = "txnindex";
/// File extension of the producer-state snapshot taken at a segment's base.
pub const SNAPSHOT_EXT: &str = "snapshot";

/// `00000000000000000042.log` for base 42.
pub fn file_name(base: i64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

/// The path of one file of the segment at `base` in `dir`.
pub fn file_path(dir: &Path, base: i64, ext: &str) -> PathBuf {
    dir.join(file_name(base, ext))
}

/// Base offsets of the segment files with extension `ext` in `dir`, ascending.
pub fn list_bases(dir: &Path, ext: &str) -> Result<Vec<i64>> {
    let mut bases = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((stem, e)) = name.split_once('.') else {
            continue;
        };
        if e == ext && stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(base) = stem.parse::<i64>() {
                bases.push(base);
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Removes every file of the segment at `base` (missing files are fine).
pub fn remove_files(dir: &Path, base: i64) -> Result<()> {
    // The .log goes first: without it the segment no longer exists for anyone.
    for ext in [
        LOG_EXT,
        INDEX_EXT,
        TIME_INDEX_EXT,
        TXN_INDEX_EXT,
        SNAPSHOT_EXT,
    ] {
        let path = file_path(dir, base, ext);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &path, e)),
        }
    }
    Ok(())
}

/// A segment mapped into this process: the `.log` and both indexes.
///
/// The active segment is mapped writable over the whole `segment.bytes`, beyond the
/// file's current size; only bytes below the reserved length are ever touched; it
/// keeps its file descriptors (to reserve and sync). Sealed segments are mapped
/// read-only at their size and keep no descriptor, so a partition of thousands of
/// segments does not exhaust `ulimit -n`.
pub struct MappedSegment {
    /// Base offset: the first offset the segment holds.
    pub base: i64,
    log: MmapRaw,
    log_len: usize,
    /// How far [`prefault`](Self::prefault) has faulted the log mapping in.
    prefaulted_to: AtomicUsize,
    log_file: Option<File>,
    log_path: PathBuf,
    /// The offset index.
    pub index: IndexMap,
    /// The time index.
    pub time_index: IndexMap,
}

// SAFETY: the mappings are shared memory written only under the cross-process append
// lock and read only below published bounds; the handles are plain file descriptors.
unsafe impl Send for MappedSegment {}
unsafe impl Sync for MappedSegment {}

impl MappedSegment {
    /// Maps the segment at `base` in `dir`. With `active_len = Some(n)` the log is
    /// mapped writable over `n` bytes; otherwise read-only at its file size.
    pub fn open(dir: &Path, base: i64, active_len: Option<u64>) -> Result<MappedSegment> {
        let writable = active_len.is_some();
        let log_path = file_path(dir, base, LOG_EXT);
        let log_file = open(&log_path, writable)?;
        let file_len = log_file
            .metadata()
            .map_err(|e| Error::io("stat", &log_path, e))?
            .len();
        let log_len = active_len.unwrap_or(file_len).max(1) as usize;
        let mut opts = memmap2::MmapOptions::new();
        opts.len(log_len);
        let log = if writable {
            opts.map_raw(&log_file)
        } else {
            opts.map_raw_read_only(&log_file)
        }
        .map_err(|e| Error::io("map", &log_path, e))?;
        let index_path = file_path(dir, base, INDEX_EXT);
        let time_path = file_path(dir, base, TIME_INDEX_EXT);
        let index = IndexMap::map(
            IndexKind::Offset,
            base,
            open(&index_path, writable)?,
            &index_path,
            writable,
        )?;
        let time_index = IndexMap::map(
            IndexKind::Time,
            base,
            open(&time_path, writable)?,
            &time_path,
            writable,
        )?;
        Ok(MappedSegment {
            base,
            log,
            log_len,
            prefaulted_to: AtomicUsize::new(0),
            log_file: writable.then_some(log_file),
            log_path,
            index,
            time_index,
        })
    }

    /// Bytes `[pos, pos + len)` of the log mapping, or `None` if outside it.
    ///
    /// # Safety
    /// The caller must only read bytes that are published (below the end position of
    /// a published end offset) or, as the append-lock holder, reserved on disk.
    pub unsafe fn bytes(&self, pos: usize, len: usize) -> Option<&[u8]> {
        let end = pos.checked_add(len)?;
        if end > self.log_len {
            return None;
        }
        Some(std::slice::from_raw_parts(self.log.as_ptr().add(pos), len))
    }

    /// Writable bytes `[pos, pos + len)` of the log mapping.
    ///
    /// # Safety
    /// Only the append-lock holder may call it, for bytes reserved on disk and beyond
    /// the published end; the mapping must be writable (the active segment).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn bytes_mut(&self, pos: usize, len: usize) -> &mut [u8] {
        assert!(pos + len <= self.log_len, "write past the segment mapping");
        std::slice::from_raw_parts_mut(self.log.as_mut_ptr().add(pos), len)
    }

    /// Length of the log mapping.
    pub fn mapped_len(&self) -> usize {
        self.log_len
    }

    /// The `.log` file, kept open only by a writable (active) mapping.
    pub fn log_file(&self) -> Result<&File> {
        self.log_file.as_ref().ok_or_else(|| {
            Error::new(
                crate::ErrorKind::Io,
                format!("{} is mapped read-only", self.log_path.display()),
            )
        })
    }

    /// The `.log` path.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Drops this process's page-table entries for the log mapping once the segment
    /// is sealed. The bytes stay in the page cache (a later read maps them again);
    /// what goes is the writable, dirty entries, which writeback would otherwise
    /// write-protect one page at a time, each with a TLB shoot-down on every CPU
    /// running this process: for a 128 MiB segment, 32,768 interrupts of the
    /// appending threads while the sealed segment is synced.
    pub fn release_pages(&self) {
        // SAFETY: the range is our own mapping. MADV_DONTNEED on a shared file
        // mapping keeps the contents: dirty entries mark their pages dirty first,
        // and a later access maps the same page-cache pages again.
        unsafe {
            libc::madvise(
                self.log.as_mut_ptr() as *mut libc::c_void,
                self.log_len,
                libc::MADV_DONTNEED,
            );
        }
    }

    /// Faults `[pos, pos + len)` of the writable mapping in ahead of the writer,
    /// skipping what an earlier call faulted in: faulting a page in again after a
    /// sync cleaned it would dirty it again, and the next sync would write it out
    /// once more (zeros, when it lies ahead of the writer).
    pub fn prefault(&self, pos: usize, len: usize) {
        let page = 4096;
        let end = (pos + len).min(self.log_len);
        let start = pos.max(self.prefaulted_to.fetch_max(end, Ordering::Relaxed)) / page * page;
        if end <= start {
            return;
        }
        // SAFETY: the range lies inside our mapping; MADV_POPULATE_WRITE only faults
        // pages in (the caller keeps it below the reserved file length).
        unsafe {
            libc::madvise(
                self.log.as_mut_ptr().add(start) as *mut libc::c_void,
                end - start,
                libc::MADV_POPULATE_WRITE,
            );
        }
    }
}

fn open(path: &Path, writable: bool) -> Result<File> {
    if writable {
        ofs::open_rw(path, false)
    } else {
        File::open(path).map_err(|e| Error::io("open", path, e))
    }
}

/// Creates the four files of a new segment at `base`, the `.log` last (its presence
/// is what makes the segment exist), with `index_len`/`time_len` bytes reserved for
/// the indexes and an empty log.
pub fn create_files(dir: &Path, base: i64, index_len: u64, time_len: u64) -> Result<()> {
    for (ext, len) in [
        (INDEX_EXT, index_len),
        (TIME_INDEX_EXT, time_len),
        (TXN_INDEX_EXT, 0),
    ] {
        let path = file_path(dir, base, ext);
        let f = ofs::open_rw(&path, true)?;
        f.set_len(0).map_err(|e| Error::io("truncate", &path, e))?;
        if len > 0 {
            ofs::reserve(&f, &path, 0, len)?;
        }
    }
    let path = file_path(dir, base, LOG_EXT);
    let f = ofs::open_rw(&path, true)?;
    f.set_len(0).map_err(|e| Error::io("truncate", &path, e))?;
    Ok(())
}

/// Truncates the file at `path` to `len` bytes.
pub fn truncate(path: &Path, len: u64) -> Result<()> {
    let f = ofs::open_rw(path, false)?;
    f.set_len(len).map_err(|e| Error::io("truncate", path, e))
}
