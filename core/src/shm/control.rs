//! The partition control block: `partition.ctl`, mapped shared by every process that
//! has the partition open. It holds the append lock, the published tail of the log,
//! the wait word, the sync state and the metrics. Its layout is `docs/FORMAT.md`'s
//! "Control block" section; it is rebuilt by the store's first opener, never trusted
//! across a reboot.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memmap2::MmapRaw;

use super::futex;
use super::mutex::RobustMutex;
use crate::error::{Error, ErrorKind, Result};
use crate::log::producer_state::ProducerTable;

/// "ONCECTL1" read as a big-endian u64; written last when a block is initialised.
pub const CTL_MAGIC: u64 = u64::from_be_bytes(*b"ONCECTL1");
/// Bumped whenever the layout below changes.
pub const CTL_LAYOUT_VERSION: u32 = 5;
/// Size of `partition.ctl`.
pub const CTL_FILE_LEN: u64 = 16 * 1024;

/// The published tail of the log. Written only under the append lock; readers load
/// `end_offset` with acquire ordering and never read past it.
#[repr(C, align(64))]
pub struct Tail {
    /// The log end offset: every batch below it is complete and visible.
    pub end_offset: AtomicI64,
    /// Byte position of `end_offset` in the active segment.
    pub end_position: AtomicU64,
    /// Base offset of the active segment.
    pub active_base: AtomicI64,
    /// Bumped (release) whenever the set of segment files changes; readers re-list.
    pub segment_gen: AtomicU64,
    /// Entries written to the active segment's offset index.
    pub index_entries: AtomicU32,
    /// Entries written to the active segment's time index.
    pub time_entries: AtomicU32,
    /// Largest timestamp in the active segment (`i64::MIN` when empty).
    pub max_timestamp: AtomicI64,
    /// Offset of the record carrying `max_timestamp`.
    pub offset_of_max_timestamp: AtomicI64,
    /// Max timestamp of the active segment's first batch, the base for `segment.ms`.
    pub first_batch_timestamp: AtomicI64,
    /// Bytes of the active `.log` reserved on disk (its file size).
    pub reserved_len: AtomicU64,
    /// First offset still in the log; lower offsets were deleted by retention.
    pub log_start_offset: AtomicI64,
    /// First offset of the oldest open transaction (`i64::MAX` if none): the last
    /// stable offset is the smaller of this and `end_offset`.
    pub txn_floor: AtomicI64,
}

/// The wake-up channel for readers blocked waiting for new data.
#[repr(C, align(64))]
pub struct WaitWords {
    /// The futex word: bumped by a writer after publishing when someone waits.
    pub notify: AtomicU32,
    /// Non-zero when someone may be asleep on `notify`. Every waiter sets it before
    /// each sleep; the writer that wakes them clears it. A flag rather than a count:
    /// a waiter killed in its sleep costs writers one needless wake, not one forever.
    pub has_waiters: AtomicU32,
}

/// Durability state shared by every process: what is synced, and the group commit
/// across processes.
#[repr(C, align(64))]
pub struct SyncState {
    /// Every offset below this one is on stable storage.
    pub synced_offset: AtomicI64,
    /// Non-zero once an `fdatasync` failed: writes are refused until reopened.
    pub poisoned: AtomicU32,
    /// Held by the one thread, of any process, that syncs for everyone waiting; a
    /// holder that dies leaves it to the next one (robust).
    pub lead: RobustMutex,
    /// The futex word bumped each time a holder of `lead` finished its sync.
    pub done: AtomicU32,
    /// Non-zero when a thread may be asleep on `done` (set before each sleep,
    /// cleared by the holder that wakes them).
    pub has_waiters: AtomicU32,
    /// Threads of other processes that started waiting for the holder of `lead`
    /// since its last sync ended (reset by each holder after its sync).
    pub joined: AtomicU32,
    /// How many processes' threads took part in the last sync for all (its holder,
    /// and those that waited for it): what the next holder gathers before it syncs.
    pub last_served: AtomicU32,
    /// How long the last sync for all took, ns.
    pub last_sync_ns: AtomicU64,
}

/// Counters any process can read without joining in (`oncelog describe`).
#[repr(C, align(64))]
#[derive(Default)]
pub struct Metrics {
    /// Records appended (control records included).
    pub records_appended: AtomicU64,
    /// Batches appended.
    pub batches_appended: AtomicU64,
    /// Bytes appended to `.log` files.
    pub bytes_appended: AtomicU64,
    /// Lock acquisitions that had to wait for another holder.
    pub lock_waits: AtomicU64,
    /// Repairs after a dead lock holder.
    pub repairs: AtomicU64,
    /// `fdatasync` calls made for `synced` durability.
    pub syncs: AtomicU64,
    /// Segments rolled.
    pub segments_rolled: AtomicU64,
    /// Segments deleted by retention.
    pub segments_deleted: AtomicU64,
    /// Wake-ups issued to waiting readers.
    pub wakeups: AtomicU64,
    /// Idempotent retries recognised as duplicates and not appended.
    pub duplicates: AtomicU64,
    /// Batches whose CRC the first opener's recovery verified (the unsynced tail).
    pub recovery_verified_batches: AtomicU64,
    /// 1 if that recovery cut off a damaged or torn tail.
    pub recovery_truncations: AtomicU64,
}

/// The whole control block, `#[repr(C)]` at offset 0 of `partition.ctl`.
#[repr(C)]
pub struct ControlBlock {
    /// [`CTL_MAGIC`] once initialised.
    pub magic: AtomicU64,
    /// [`CTL_LAYOUT_VERSION`].
    pub layout_version: AtomicU32,
    /// Set while the tail state may be inconsistent (a holder died, or a repair failed).
    pub needs_repair: AtomicU32,
    /// The append lock.
    pub mutex: RobustMutex,
    /// See [`Tail`].
    pub tail: Tail,
    /// See [`WaitWords`].
    pub wait: WaitWords,
    /// See [`SyncState`].
    pub sync: SyncState,
    /// See [`Metrics`].
    pub metrics: Metrics,
    /// What the partition remembers of idempotent producers.
    pub producers: ProducerTable,
}

const _: () = assert!(std::mem::size_of::<ControlBlock>() <= CTL_FILE_LEN as usize);

/// A mapping of one `partition.ctl`.
pub struct ControlFile {
    map: MmapRaw,
    path: PathBuf,
    _file: File,
}

// SAFETY: every field of ControlBlock is an atomic or the pthread mutex, all made for
// concurrent use from many threads and processes.
unsafe impl Send for ControlFile {}
unsafe impl Sync for ControlFile {}

impl ControlFile {
    /// Creates (or wipes) `path` and maps it, zero-filled, for initialisation by the
    /// caller, who must be the only user (the store's first opener or the creator of
    /// a new partition).
    pub fn create(path: &Path) -> Result<ControlFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::io("create control block", path, e))?;
        file.set_len(CTL_FILE_LEN)
            .map_err(|e| Error::io("size control block", path, e))?;
        let ctl = ControlFile::map(file, path)?;
        // SAFETY: the file was just zeroed and nobody else uses it yet.
        unsafe { ctl.block().mutex.init() }
            .map_err(|e| Error::io("initialise lock in", path, e))?;
        // SAFETY: as above.
        unsafe { ctl.block().sync.lead.init() }
            .map_err(|e| Error::io("initialise sync lock in", path, e))?;
        Ok(ctl)
    }

    /// Maps an existing, initialised control block.
    pub fn attach(path: &Path) -> Result<ControlFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io("open control block", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat control block", path, e))?
            .len();
        if len != CTL_FILE_LEN {
            return Err(Error::new(
                ErrorKind::IncompatibleFormat,
                format!(
                    "control block {} is {len} bytes, expected {CTL_FILE_LEN}",
                    path.display()
                ),
            ));
        }
        let ctl = ControlFile::map(file, path)?;
        let block = ctl.block();
        let magic = block.magic.load(Ordering::Acquire);
        let version = block.layout_version.load(Ordering::Relaxed);
        if magic != CTL_MAGIC || version != CTL_LAYOUT_VERSION {
            return Err(Error::new(
                ErrorKind::IncompatibleFormat,
                format!(
                    "control block {} has magic {magic:#x} version {version}, expected {CTL_MAGIC:#x} version {CTL_LAYOUT_VERSION}",
                    path.display()
                ),
            ));
        }
        Ok(ctl)
    }

    fn map(file: File, path: &Path) -> Result<ControlFile> {
        let map = memmap2::MmapOptions::new()
            .len(CTL_FILE_LEN as usize)
            .map_raw(&file)
            .map_err(|e| Error::io("map control block", path, e))?;
        Ok(ControlFile {
            map,
            path: path.to_path_buf(),
            _file: file,
        })
    }

    /// Marks a block initialised by [`create`](Self::create) valid for attachers.
    pub fn publish_initialised(&self) {
        let block = self.block();
        block
            .layout_version
            .store(CTL_LAYOUT_VERSION, Ordering::Relaxed);
        block.magic.store(CTL_MAGIC, Ordering::Release);
    }

    /// The shared block.
    pub fn block(&self) -> &ControlBlock {
        // SAFETY: the mapping is CTL_FILE_LEN >= size_of::<ControlBlock>() bytes, page
        // aligned, lives as long as `self`, and ControlBlock is all atomics and a
        // pthread mutex, valid for any bit pattern that zero or a writer left.
        unsafe { &*(self.map.as_ptr() as *const ControlBlock) }
    }

    /// The path of the file, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Waits until `ready()` is true or `timeout` passes, sleeping on the wait words
/// of several partitions at once; returns `ready()`'s last value. The protocol of
/// [`WaitWords::wait_until`], for each of them (that one stays separate: a single
/// word needs no allocation and a plain `FUTEX_WAIT`, which the wake-up latency of
/// a reader depends on).
pub fn wait_until_any(words: &[&WaitWords], timeout: Duration, ready: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    loop {
        let seen: Vec<u32> = words
            .iter()
            .map(|w| w.notify.load(Ordering::SeqCst))
            .collect();
        for w in words {
            w.has_waiters.store(1, Ordering::SeqCst);
        }
        // Pairs with the writer's fence: the checks below cannot be ordered before
        // the flags, whatever orderings `ready` uses.
        fence(Ordering::SeqCst);
        if ready() {
            return true;
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return false;
        }
        let left = timeout - elapsed;
        let pairs: Vec<(&AtomicU32, u32)> = words
            .iter()
            .map(|w| &w.notify)
            .zip(seen.iter().copied())
            .collect();
        if !futex::wait_any(&pairs, left) {
            // No futex_waitv: sleep on the first word, briefly, and look again.
            if let Some((w, v)) = pairs.first() {
                futex::wait(w, *v, Some(left.min(Duration::from_millis(2))));
            }
        }
    }
}

impl WaitWords {
    /// Wakes every waiter if there is one. Call after publishing a new end offset;
    /// costs one fence and one load when nobody waits.
    pub fn notify_after_publish(&self, metrics: &Metrics) {
        fence(Ordering::SeqCst);
        if self.has_waiters.load(Ordering::SeqCst) != 0
            && self.has_waiters.swap(0, Ordering::SeqCst) != 0
        {
            self.notify.fetch_add(1, Ordering::SeqCst);
            futex::wake_all(&self.notify);
            metrics.wakeups.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until `ready()` is true or `timeout` passes; returns `ready()`'s last
    /// value. Spins for up to `spin` first (for latency when data arrives soon), then
    /// sleeps on the futex. `ready` must read the state with SeqCst or Acquire.
    pub fn wait_until(&self, timeout: Duration, spin: Duration, ready: impl Fn() -> bool) -> bool {
        if ready() {
            return true;
        }
        let start = Instant::now();
        if !spin.is_zero() {
            let spin_until = start + spin.min(timeout);
            loop {
                for _ in 0..64 {
                    std::hint::spin_loop();
                    if ready() {
                        return true;
                    }
                }
                if Instant::now() >= spin_until {
                    break;
                }
            }
        }
        loop {
            // Read the word, announce ourselves, then re-check: a writer that
            // publishes after the check sees the flag and changes the word, so the
            // sleep below returns at once.
            let seen = self.notify.load(Ordering::SeqCst);
            self.has_waiters.store(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if ready() {
                return true;
            }
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                return false;
            }
            futex::wait(&self.notify, seen, Some(timeout - elapsed));
        }
    }
}
