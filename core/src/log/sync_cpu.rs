//! Steering syncs to the CPU where they complete fastest.
//!
//! A disk signals finished requests with interrupts that land on a fixed set of
//! CPUs: a single CPU for a single-queue device, as virtual disks often are. A
//! thread asleep in `fdatasync` on another CPU is woken from there by an
//! inter-processor interrupt, and a sync sleeps twice (for its data, then for the
//! cache flush). On a virtual machine each such cross-CPU wake-up goes through the
//! hypervisor: on a 2-CPU test VM one `pwrite` + `fdatasync` took 115-144 µs (p50)
//! from the CPU taking the disk's interrupts and 164-289 µs from the other.
//!
//! So the thread that leads a group commit records how long its syncs take on each
//! CPU ([`SyncCpus`]), and once one CPU is clearly faster than another, it holds
//! itself on that CPU for the sync: its own affinity, set to that CPU alone and
//! restored right after ([`SyncCpus::run`]). Where a disk completes on every CPU
//! alike no CPU is faster, and nothing is held. One table serves every partition
//! of a disk in this process ([`SyncCpus::for_dir`]).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Sync durations learnt per CPU, for the partitions of one disk.
pub(super) struct SyncCpus {
    cpus: Box<[CpuRecord]>,
}

/// A disk's slot among the process's tables.
struct DiskSlot {
    /// The disk's device number plus one; 0 while the slot is free.
    device: AtomicU64,
    table: OnceLock<SyncCpus>,
}

impl DiskSlot {
    const fn new() -> DiskSlot {
        DiskSlot {
            device: AtomicU64::new(0),
            table: OnceLock::new(),
        }
    }
}

/// Disks a process keeps sync figures for.
const MAX_DISKS: usize = 8;

/// What the syncs on one CPU took.
#[derive(Default)]
struct CpuRecord {
    /// Smoothed duration, ns (each sync weighs 1/[`SMOOTHING`]).
    smoothed_ns: AtomicU64,
    samples: AtomicU32,
}

/// Samples a CPU needs before its figure counts.
const MIN_SAMPLES: u32 = 8;

/// A CPU counts as faster when its syncs take less than this fraction (in fifths)
/// of those on the middle CPU: 4/5, so noise between alike CPUs holds nothing.
const FASTER_FIFTHS: u64 = 4;

/// Weight of the figure so far against one new sync.
const SMOOTHING: u64 = 8;

/// The CPU numbers a `cpu_set_t` holds.
const MAX_CPUS: usize = libc::CPU_SETSIZE as usize;

impl SyncCpus {
    /// A table for CPUs `0..cpus`.
    fn new(cpus: usize) -> SyncCpus {
        SyncCpus {
            cpus: (0..cpus.clamp(1, MAX_CPUS))
                .map(|_| CpuRecord::default())
                .collect(),
        }
    }

    /// The table of the disk holding `dir`, shared by every partition on it in this
    /// process; `None` once [`MAX_DISKS`] disks have tables (no steering then).
    ///
    /// Tables live for the process's life in static slots claimed with an atomic
    /// compare-and-swap, not behind a lock: a child forked while another thread
    /// held such a lock would hang at its first open.
    pub(super) fn for_dir(dir: &Path) -> Option<&'static SyncCpus> {
        static TABLES: [DiskSlot; MAX_DISKS] = [const { DiskSlot::new() }; MAX_DISKS];
        // 0 marks a free slot.
        let key = std::fs::metadata(dir)
            .map_or(0, |m| m.dev())
            .wrapping_add(1)
            .max(1);
        let slot = TABLES.iter().find(|slot| {
            match slot
                .device
                .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => true,
                Err(holder) => holder == key,
            }
        })?;
        Some(slot.table.get_or_init(|| {
            // SAFETY: sysconf has no preconditions.
            let configured = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
            SyncCpus::new(usize::try_from(configured).unwrap_or(1))
        }))
    }

    /// Runs `sync` held on the CPU where syncs complete fastest, if that one is
    /// clearly faster than the middle one (see [`fastest`](Self::fastest)) and the
    /// thread may run there; otherwise where it is. Records how long it took.
    ///
    /// The thread is held there even when it already runs on that CPU: woken from
    /// its sync, it could otherwise be placed on another CPU, idle, which costs the
    /// very cross-CPU wake-up this avoids.
    pub(super) fn run<T>(&self, sync: impl FnOnce() -> T) -> T {
        // Timed from before the move: the figure of a CPU syncs are held on includes
        // what holding them there costs.
        let start = Instant::now();
        let pinned = self.fastest().and_then(Pinned::to);
        let cpu = pinned.as_ref().map(|p| p.cpu).or_else(current_cpu);
        let result = sync();
        if let Some(cpu) = cpu {
            self.record(cpu, start.elapsed());
        }
        drop(pinned);
        result
    }

    /// The CPU with the fastest syncs, if it is clearly faster than the middle one
    /// (the slower of two).
    ///
    /// The figure of the CPU syncs are held on stays current; if it slows down (the
    /// disk's interrupts moved), syncs stop being held once it is no longer clearly
    /// faster, and all CPUs are sampled again.
    fn fastest(&self) -> Option<usize> {
        let mut figures: Vec<(u64, usize)> = (self.cpus.iter().enumerate())
            .filter_map(|(i, r)| Some((r.figure()?, i)))
            .collect();
        figures.sort_unstable();
        let (best_ns, best) = *figures.first()?;
        let (middle_ns, _) = figures[figures.len() / 2];
        (best_ns * 5 < middle_ns * FASTER_FIFTHS).then_some(best)
    }

    /// Adds a sync of `took` on `cpu` to its figure. A sync far slower than the
    /// figure (a stall of the disk) counts as twice the figure.
    fn record(&self, cpu: usize, took: Duration) {
        let Some(r) = self.cpus.get(cpu) else {
            return;
        };
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
        let old = r.smoothed_ns.load(Ordering::Relaxed);
        let new = if old == 0 {
            ns
        } else {
            let ns = ns.min(old.saturating_mul(2));
            (old * (SMOOTHING - 1) + ns) / SMOOTHING
        };
        // Two leaders recording at once may lose one sample: it is a smoothed figure.
        r.smoothed_ns.store(new.max(1), Ordering::Relaxed);
        r.samples.fetch_add(1, Ordering::Relaxed);
    }
}

impl CpuRecord {
    /// The smoothed duration, once there are enough samples.
    fn figure(&self) -> Option<u64> {
        (self.samples.load(Ordering::Relaxed) >= MIN_SAMPLES)
            .then(|| self.smoothed_ns.load(Ordering::Relaxed))
    }
}

/// The CPU the calling thread runs on.
fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu has no preconditions.
    usize::try_from(unsafe { libc::sched_getcpu() }).ok()
}

/// The calling thread's affinity: the CPUs it may run on.
fn affinity() -> Option<libc::cpu_set_t> {
    // SAFETY: a zeroed cpu_set_t is an empty set; the call writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        (libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) == 0).then_some(set)
    }
}

/// Sets the calling thread's affinity to `set`.
fn set_affinity(set: &libc::cpu_set_t) -> bool {
    // SAFETY: `set` is a valid cpu_set_t of the size given.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(set), set) == 0 }
}

/// The calling thread held on one CPU; its previous affinity comes back on drop.
struct Pinned {
    cpu: usize,
    saved: libc::cpu_set_t,
}

impl Pinned {
    /// Moves the calling thread to `cpu` alone, if its affinity allows that CPU.
    fn to(cpu: usize) -> Option<Pinned> {
        if cpu >= MAX_CPUS {
            return None;
        }
        let saved = affinity()?;
        // SAFETY: `cpu` is below CPU_SETSIZE, checked above.
        let allowed = unsafe { libc::CPU_ISSET(cpu, &saved) };
        if !allowed {
            return None;
        }
        // SAFETY: as above; a zeroed cpu_set_t is an empty set.
        let only = unsafe {
            let mut only: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut only);
            only
        };
        set_affinity(&only).then_some(Pinned { cpu, saved })
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // Can only fail if the allowed CPUs shrank meanwhile (a cpuset changed);
        // the kernel then keeps the thread where the cpuset lets it run.
        set_affinity(&self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus_of(set: &libc::cpu_set_t) -> Vec<usize> {
        // SAFETY: every index is below CPU_SETSIZE.
        (0..MAX_CPUS)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, set) })
            .collect()
    }

    fn prime(table: &SyncCpus, cpu: usize, us: u64) {
        for _ in 0..MIN_SAMPLES {
            table.record(cpu, Duration::from_micros(us));
        }
    }

    #[test]
    fn a_cpu_counts_as_fastest_only_with_enough_samples_and_a_clear_margin() {
        let table = SyncCpus::new(3);
        prime(&table, 0, 200);
        assert_eq!(table.fastest(), None, "one CPU known");
        for _ in 0..MIN_SAMPLES - 1 {
            table.record(1, Duration::from_micros(100));
        }
        assert_eq!(table.fastest(), None, "CPU 1 has too few samples");
        table.record(1, Duration::from_micros(100));
        assert_eq!(table.fastest(), Some(1));
        prime(&table, 2, 110);
        assert_eq!(table.fastest(), None, "CPU 2, the middle one, is as fast");
        let alike = SyncCpus::new(2);
        prime(&alike, 0, 200);
        prime(&alike, 1, 170);
        assert_eq!(alike.fastest(), None, "15% is within the noise");
    }

    #[test]
    fn the_fastest_cpu_is_measured_against_the_middle_one_not_the_slowest() {
        let one_slow = SyncCpus::new(5);
        for (cpu, us) in [(0, 108), (1, 100), (2, 105), (3, 300), (4, 110)] {
            prime(&one_slow, cpu, us);
        }
        assert_eq!(one_slow.fastest(), None, "one slow CPU holds nothing");
        let one_fast = SyncCpus::new(5);
        for (cpu, us) in [(0, 200), (1, 210), (2, 60), (3, 190), (4, 205)] {
            prime(&one_fast, cpu, us);
        }
        assert_eq!(one_fast.fastest(), Some(2));
    }

    #[test]
    fn syncs_are_no_longer_held_once_the_fast_cpu_slows_down() {
        let table = SyncCpus::new(2);
        prime(&table, 0, 300);
        prime(&table, 1, 100);
        let mut held = 0;
        while table.fastest() == Some(1) {
            table.record(1, Duration::from_micros(400));
            held += 1;
            assert!(held < 100, "still held on CPU 1 after {held} slow syncs");
        }
        assert!(held >= 5, "one slow sync is not enough to give up: {held}");
    }

    #[test]
    fn directories_on_one_disk_share_a_table() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (ta, tb) = (
            SyncCpus::for_dir(a.path()).unwrap(),
            SyncCpus::for_dir(b.path()).unwrap(),
        );
        assert!(std::ptr::eq(ta, tb));
        assert!(!ta.cpus.is_empty());
    }

    #[test]
    fn a_stall_weighs_no_more_than_twice_the_figure() {
        let table = SyncCpus::new(1);
        prime(&table, 0, 100);
        table.record(0, Duration::from_millis(50));
        let ns = table.cpus[0].figure().unwrap();
        assert_eq!(ns, (100_000 * 7 + 200_000) / 8);
    }

    #[test]
    fn a_sync_runs_on_the_faster_cpu_and_the_affinity_comes_back() {
        let original = affinity().unwrap();
        let allowed = cpus_of(&original);
        let table = SyncCpus::new(MAX_CPUS);
        if allowed.len() < 2 {
            // One CPU: nowhere to move; the sync runs here, the affinity is untouched.
            let (cpu, inside) = table.run(|| (current_cpu(), affinity().unwrap()));
            assert_eq!(cpu, Some(allowed[0]));
            assert_eq!(cpus_of(&inside), allowed);
            return;
        }
        let (slow, fast) = (allowed[0], allowed[1]);
        // This thread starts on `slow` and may run on both; the sync must run on
        // `fast` (had the scheduler moved it there meanwhile, it stays put).
        let (mut one, mut two): (libc::cpu_set_t, libc::cpu_set_t) =
            // SAFETY: a zeroed cpu_set_t is an empty set.
            unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        // SAFETY: both indexes come from a cpu_set_t.
        unsafe {
            libc::CPU_SET(slow, &mut one);
            libc::CPU_SET(slow, &mut two);
            libc::CPU_SET(fast, &mut two);
        }
        assert!(set_affinity(&one) && set_affinity(&two));
        prime(&table, slow, 300);
        prime(&table, fast, 100);
        let (cpu, inside) = table.run(|| (current_cpu(), affinity().unwrap()));
        let after = affinity().unwrap();
        assert!(set_affinity(&original));
        assert_eq!(cpu, Some(fast));
        assert!(
            cpus_of(&inside) == [fast] || cpus_of(&inside) == [slow, fast],
            "moved to the fast CPU alone, or left where it was: {:?}",
            cpus_of(&inside)
        );
        assert_eq!(cpus_of(&after), [slow, fast], "the affinity comes back");
    }

    #[test]
    fn a_cpu_outside_the_affinity_is_not_used() {
        let original = affinity().unwrap();
        let allowed = cpus_of(&original);
        let table = SyncCpus::new(MAX_CPUS);
        let only = allowed[0];
        // SAFETY: a zeroed cpu_set_t is an empty set; the index comes from one.
        let one = unsafe {
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(only, &mut one);
            one
        };
        assert!(set_affinity(&one));
        // The fastest CPU of the table is one this thread may not run on.
        let outside = (0..MAX_CPUS).find(|c| *c != only).unwrap();
        prime(&table, only, 300);
        prime(&table, outside, 100);
        let (cpu, inside) = table.run(|| (current_cpu(), affinity().unwrap()));
        assert!(set_affinity(&original));
        assert_eq!(cpu, Some(only));
        assert_eq!(cpus_of(&inside), [only]);
    }
}
