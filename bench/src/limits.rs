//! The physical limits, measured in the same run as oncelog:
//! (a) memcpy of the records into a MAP_SHARED file mapping (already faulted; also,
//!     for the diagnosis, a fresh `fallocate`d mapping and a fresh sparse one),
//! (b) sequential `write()` of the same bytes,
//! (c) raw cross-process futex wake-up latency,
//! (f) a raw commit: `write()` plus `fdatasync`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use memmap2::{MmapOptions, MmapRaw};

use crate::child::{Relaunch, FUTEX_WAITER};
use crate::util::{now_ns, pace_until, Payload, Res, TempDir, REC_LEN};

/// How the destination file of a memcpy run is prepared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapPrep {
    /// `fallocate` + `MADV_POPULATE_WRITE`, untimed, then one file reused by every
    /// repetition: every page is already in the page table.
    Faulted,
    /// A fresh file per repetition with its blocks reserved by `fallocate`, not faulted.
    Fallocated,
    /// A fresh file per repetition sized with `ftruncate` only (sparse).
    Sparse,
}

fn create_file(path: &Path, len: usize, prep: MapPrep) -> Res<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    match prep {
        MapPrep::Sparse => f.set_len(len as u64)?,
        MapPrep::Faulted | MapPrep::Fallocated => {
            // SAFETY: plain syscall on an open descriptor.
            let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len as libc::off_t) };
            if rc != 0 {
                return Err(format!("fallocate: {}", std::io::Error::last_os_error()).into());
            }
        }
    }
    Ok(f)
}

fn map_shared(f: &File, len: usize) -> Res<MmapRaw> {
    Ok(MmapOptions::new().len(len).map_raw(f)?)
}

/// Copies every record of `payload` into `map`, record after record, with a memcpy
/// whose length the compiler does not know (as the encoder's copies). Returns seconds.
fn copy_records(payload: &Payload, map: &MmapRaw) -> f64 {
    let len = std::hint::black_box(REC_LEN);
    let src = payload.bytes.as_ptr();
    let dst = map.as_mut_ptr();
    let t = Instant::now();
    for i in 0..payload.n {
        // SAFETY: both ranges lie inside their buffers (the map is n * REC_LEN long)
        // and do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.add(i * REC_LEN), dst.add(i * len), len) };
    }
    let secs = t.elapsed().as_secs_f64();
    std::hint::black_box(dst);
    secs
}

/// (a): seconds of each repetition of copying the payload into a shared file mapping
/// prepared as `prep`.
pub fn memcpy(payload: &Payload, reps: usize, prep: MapPrep) -> Res<Vec<f64>> {
    let dir = TempDir::new("memcpy")?;
    let len = payload.bytes.len();
    let mut secs = Vec::with_capacity(reps);
    if prep == MapPrep::Faulted {
        let path = dir.path().join("faulted.dat");
        let f = create_file(&path, len, prep)?;
        let map = map_shared(&f, len)?;
        // SAFETY: the range is our mapping; POPULATE_WRITE only faults pages in.
        let rc = unsafe {
            libc::madvise(
                map.as_mut_ptr() as *mut libc::c_void,
                len,
                libc::MADV_POPULATE_WRITE,
            )
        };
        if rc != 0 {
            return Err(format!("madvise: {}", std::io::Error::last_os_error()).into());
        }
        // One untimed pass so that the repetitions all see the same state.
        copy_records(payload, &map);
        for _ in 0..reps {
            secs.push(copy_records(payload, &map));
        }
    } else {
        for rep in 0..reps {
            let path = dir.path().join(format!("fresh-{rep}.dat"));
            let f = create_file(&path, len, prep)?;
            let map = map_shared(&f, len)?;
            secs.push(copy_records(payload, &map));
            drop(map);
            drop(f);
            // Unlinked before writeback starts: the dirty pages are dropped.
            std::fs::remove_file(&path)?;
        }
    }
    Ok(secs)
}

/// (b): seconds of each repetition of writing the payload sequentially to a fresh
/// file with `write()` calls of `chunk` bytes (page cache only, no sync).
pub fn write(payload: &Payload, reps: usize, chunk: usize) -> Res<Vec<f64>> {
    let dir = TempDir::new("write")?;
    let mut secs = Vec::with_capacity(reps);
    for rep in 0..reps {
        let path = dir.path().join(format!("write-{rep}.dat"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let t = Instant::now();
        for c in payload.bytes.chunks(chunk) {
            f.write_all(c)?;
        }
        secs.push(t.elapsed().as_secs_f64());
        drop(f);
        std::fs::remove_file(&path)?;
    }
    Ok(secs)
}

/// (r): seconds of each repetition of summing every value byte straight from the
/// payload buffer (116 MB, not in cache): the memory-streaming floor of a read that
/// touches every value byte, with no decoding at all.
pub fn sum_values(payload: &Payload, reps: usize) -> Res<Vec<f64>> {
    let mut secs = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        let mut sum = 0u64;
        for i in 0..payload.n {
            sum = crate::util::sum_bytes(sum, std::hint::black_box(payload.value(i)));
        }
        secs.push(t.elapsed().as_secs_f64());
        std::hint::black_box(sum);
    }
    Ok(secs)
}

// --- (c) raw futex wake-up ------------------------------------------------------------

/// Layout of the shared file of the futex test: control words in the first page,
/// then one u64 latency per wake-up written by the child.
const FUTEX_WORD: usize = 0;
const READY_WORD: usize = 64;
const STAMP_WORD: usize = 128;
const RESULTS: usize = 4096;

struct Shared {
    map: MmapRaw,
}

impl Shared {
    fn open(path: &Path, n: usize, create: bool) -> Res<Shared> {
        let len = RESULTS + 8 * n;
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .open(path)?;
        if create {
            f.set_len(len as u64)?;
        }
        let map = map_shared(&f, len)?;
        Ok(Shared { map })
    }

    fn u32_at(&self, at: usize) -> &AtomicU32 {
        // SAFETY: `at` is aligned and inside the first page of a live shared mapping.
        unsafe { &*(self.map.as_ptr().add(at) as *const AtomicU32) }
    }

    fn u64_at(&self, at: usize) -> &AtomicU64 {
        // SAFETY: as above, 8-byte aligned.
        unsafe { &*(self.map.as_ptr().add(at) as *const AtomicU64) }
    }
}

fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: a live aligned u32 in a shared mapping; no timeout. Not FUTEX_PRIVATE:
    // the waker is another process (the same call oncelog's waiters make).
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: as above.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// (f) One raw commit: `pwrite()` of `bytes` (the size of a transaction of 10
/// records, with its marker) after the previous one in a file whose blocks were
/// written with zeros and synced beforehand (as oncelog reserves segment space for
/// appends that are synced), then `fdatasync`; `n` times, returning each one's
/// latency in nanoseconds.
pub fn fdatasync_commits(n: usize, bytes: usize) -> Res<Vec<u64>> {
    use std::os::unix::fs::FileExt;
    let dir = TempDir::new("fdatasync")?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.path().join("log"))?;
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < n * bytes {
        file.write_all_at(&zeros, at as u64)?;
        at += zeros.len();
    }
    file.sync_all()?;
    let buf = vec![0x5au8; bytes];
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t0 = now_ns();
        file.write_all_at(&buf, (i * bytes) as u64)?;
        file.sync_data()?;
        samples.push(now_ns() - t0);
    }
    Ok(samples)
}

/// (c): the parent stamps CLOCK_MONOTONIC into a shared mapping and wakes a child
/// process asleep in FUTEX_WAIT on a word of that mapping; the child records how long
/// the wake-up took. Wake-ups are `gap_ns` apart, counted from the moment the child
/// announced it was going to sleep. `n` wake-ups; returns the latencies (ns) after
/// dropping the first `warmup`. With `spin`, the child busy-polls the word instead
/// of sleeping (the FUTEX_WAKE is still issued, and finds nobody): the raw
/// cross-process cache-line hand-off that a spinning reader can at best achieve.
pub fn futex_wakeup(
    exe: &Relaunch,
    n: usize,
    warmup: usize,
    gap_ns: u64,
    spin: bool,
) -> Res<Vec<u64>> {
    let dir = TempDir::new("futex")?;
    let path = dir.path().join("futex.shm");
    let shared = Shared::open(&path, n, true)?;
    let mut child = exe
        .command(FUTEX_WAITER)
        .arg(&path)
        .arg(n.to_string())
        .arg(if spin { "spin" } else { "sleep" })
        .stdin(Stdio::null())
        .spawn()?;
    let word = shared.u32_at(FUTEX_WORD);
    let ready = shared.u32_at(READY_WORD);
    let stamp = shared.u64_at(STAMP_WORD);
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    for i in 1..=n as u32 {
        // Wait for the child to announce it is about to sleep for round i.
        while ready.load(Ordering::Acquire) != i {
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("futex child stopped answering".into());
            }
            std::hint::spin_loop();
        }
        // Leave it the time to get into the kernel and asleep.
        pace_until(now_ns() + gap_ns);
        stamp.store(now_ns(), Ordering::Release);
        word.store(i, Ordering::Release);
        futex_wake(word);
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("futex child failed: {status}").into());
    }
    Ok((warmup.min(n)..n)
        .map(|i| shared.u64_at(RESULTS + 8 * i).load(Ordering::Acquire))
        .collect())
}

/// The child of [`futex_wakeup`]: `__futex-waiter <path> <n> <sleep|spin>` (the
/// arguments after the role).
pub fn futex_waiter_main(args: &[String]) -> Res<()> {
    let [path, n, mode] = args else {
        return Err("usage: __futex-waiter <path> <n> <sleep|spin>".into());
    };
    let n: usize = n.parse()?;
    let spin = match mode.as_str() {
        "spin" => true,
        "sleep" => false,
        other => return Err(format!("unknown mode {other:?}").into()),
    };
    let shared = Shared::open(Path::new(path), n, false)?;
    let word = shared.u32_at(FUTEX_WORD);
    let ready = shared.u32_at(READY_WORD);
    let stamp = shared.u64_at(STAMP_WORD);
    for i in 1..=n as u32 {
        ready.store(i, Ordering::Release);
        loop {
            let v = word.load(Ordering::Acquire);
            if v >= i {
                break;
            }
            if spin {
                std::hint::spin_loop();
            } else {
                futex_wait(word, v);
            }
        }
        let t = now_ns();
        let lat = t.saturating_sub(stamp.load(Ordering::Acquire));
        shared
            .u64_at(RESULTS + 8 * (i as usize - 1))
            .store(lat, Ordering::Release);
    }
    Ok(())
}
