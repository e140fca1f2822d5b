//! Small helpers: a temporary directory, a cross-process clock, the payload, statistics.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Key bytes per record.
pub const KEY_LEN: usize = 16;
/// Value bytes per record.
pub const VALUE_LEN: usize = 100;
/// Payload bytes per record (key + value): what the limits copy.
pub const REC_LEN: usize = KEY_LEN + VALUE_LEN;

/// The error type of the whole bench.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Result with [`BoxError`].
pub type Res<T> = Result<T, BoxError>;

/// CLOCK_MONOTONIC in nanoseconds: comparable across processes on one machine.
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Spins (no syscall, no sleep) until CLOCK_MONOTONIC reaches `deadline_ns`.
#[inline]
pub fn spin_until(deadline_ns: u64) {
    while now_ns() < deadline_ns {
        std::hint::spin_loop();
    }
}

/// Waits until CLOCK_MONOTONIC reaches `deadline_ns`, the way the wake-up tests
/// pace the side that publishes: spinning by default, so that the waiter's vCPU is
/// the only idle one and every wake-up crosses cores (the case the targets are
/// about); with `ONCELOG_BENCH_PACING=sleep`, asleep in `clock_nanosleep` (timer
/// slack 1 ns), which lets the scheduler wake the waiter on the waker's own CPU and
/// measures that regime instead.
pub fn pace_until(deadline_ns: u64) {
    use std::sync::OnceLock;
    static SPIN: OnceLock<bool> = OnceLock::new();
    let spin = *SPIN.get_or_init(|| {
        // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
        std::env::var("ONCELOG_BENCH_PACING").map_or(true, |v| v != "sleep")
    });
    if spin {
        spin_until(deadline_ns);
        return;
    }
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: a valid absolute timespec; EINTR just ends the wait early.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    };
}

/// The options of every store the bench opens: the defaults, except that the
/// diagnostic variable `ONCELOG_BENCH_PREFAULT_BYTES` overrides `prefault_bytes`
/// (the report then says so).
pub fn store_options() -> oncelog::StoreOptions {
    let mut o = oncelog::StoreOptions::default();
    if let Some(b) = prefault_override() {
        o.prefault_bytes = b;
    }
    o
}

/// The value of `ONCELOG_BENCH_PREFAULT_BYTES`, if set.
pub fn prefault_override() -> Option<u64> {
    std::env::var("ONCELOG_BENCH_PREFAULT_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
}

/// `ONCELOG_BENCH_PACING` when it is not the default.
pub fn pacing_override() -> Option<String> {
    std::env::var("ONCELOG_BENCH_PACING")
        .ok()
        .filter(|v| v == "sleep")
}

/// A directory under `std::env::temp_dir()`, removed with its contents when dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a new, empty, uniquely named directory.
    pub fn new(tag: &str) -> io::Result<TempDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!(
                "oncelog-bench-{}-{tag}-{n}-{}",
                std::process::id(),
                now_ns() % 1_000_000
            ));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// `n` records of 16-byte key and 100-byte value, stored back to back (116 bytes each)
/// in one buffer: the same source bytes for oncelog and for the limits.
pub struct Payload {
    /// `n * REC_LEN` bytes; record `i` is `[i * REC_LEN, (i + 1) * REC_LEN)`.
    pub bytes: Vec<u8>,
    /// Number of records.
    pub n: usize,
}

impl Payload {
    /// Deterministic keys (`k` + 15 digits) and pseudo-random values.
    pub fn new(n: usize) -> Payload {
        let mut bytes = vec![0u8; n * REC_LEN];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for (i, rec) in bytes.chunks_exact_mut(REC_LEN).enumerate() {
            let key = format!("k{:015}", i % 1_000_000_000_000_000);
            rec[..KEY_LEN].copy_from_slice(key.as_bytes());
            for chunk in rec[KEY_LEN..].chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let b = x.to_le_bytes();
                chunk.copy_from_slice(&b[..chunk.len()]);
            }
        }
        Payload { bytes, n }
    }

    /// Key of record `i`.
    pub fn key(&self, i: usize) -> &[u8] {
        &self.bytes[i * REC_LEN..i * REC_LEN + KEY_LEN]
    }

    /// Key and value of record `i`, back to back (`REC_LEN` bytes).
    pub fn record(&self, i: usize) -> &[u8] {
        &self.bytes[i * REC_LEN..(i + 1) * REC_LEN]
    }

    /// Value of record `i`.
    pub fn value(&self, i: usize) -> &[u8] {
        &self.bytes[i * REC_LEN + KEY_LEN..(i + 1) * REC_LEN]
    }

    /// [`sum_bytes`] over every value: what a full read must find.
    pub fn value_sum(&self) -> u64 {
        (0..self.n).fold(0, |acc, i| sum_bytes(acc, self.value(i)))
    }
}

/// Adds every byte of `b` to `acc` (wrapping): touches every byte, cannot be skipped.
#[inline]
pub fn sum_bytes(acc: u64, b: &[u8]) -> u64 {
    let mut s: u32 = 0;
    for &x in b {
        s = s.wrapping_add(u32::from(x));
    }
    acc.wrapping_add(u64::from(s))
}

/// Best (largest) and median of per-repetition rates.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rate {
    /// Best repetition, in units per second.
    pub best: f64,
    /// Median repetition, in units per second.
    pub median: f64,
    /// Repetitions.
    pub reps: usize,
}

impl Rate {
    /// From per-repetition `(units, seconds)`.
    pub fn from_runs(units: f64, secs: &[f64]) -> Rate {
        Rate::from_rates(&secs.iter().map(|s| units / s).collect::<Vec<_>>())
    }

    /// From per-repetition rates.
    pub fn from_rates(rates: &[f64]) -> Rate {
        let mut rates = rates.to_vec();
        rates.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        Rate {
            best: rates.last().copied().unwrap_or(0.0),
            median: rates.get(rates.len() / 2).copied().unwrap_or(0.0),
            reps: rates.len(),
        }
    }
}

/// Latency percentiles in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Latency {
    /// Samples kept (after the warm-up).
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
}

impl Latency {
    /// Percentiles of `samples` (nanoseconds) after dropping the first `warmup`.
    pub fn from_samples(samples: &[u64], warmup: usize) -> Latency {
        let mut v: Vec<u64> = samples.iter().skip(warmup).copied().collect();
        v.sort_unstable();
        if v.is_empty() {
            return Latency::default();
        }
        let pct = |p: f64| {
            let idx = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
            v[idx.min(v.len() - 1)] as f64
        };
        Latency {
            n: v.len(),
            p50: pct(50.0),
            p99: pct(99.0),
            p999: pct(99.9),
            max: *v.last().unwrap_or(&0) as f64,
        }
    }
}

impl Latency {
    /// The median, across repetitions, of each percentile (the largest `max`; `n`
    /// summed): one noisy repetition moves no figure.
    pub fn median_of(rounds: &[Latency]) -> Latency {
        let med = |f: fn(&Latency) -> f64| {
            let mut v: Vec<f64> = rounds.iter().map(f).collect();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        Latency {
            n: rounds.iter().map(|l| l.n).sum(),
            p50: med(|l| l.p50),
            p99: med(|l| l.p99),
            p999: med(|l| l.p999),
            max: rounds.iter().map(|l| l.max).fold(0.0, f64::max),
        }
    }
}

/// With `ONCELOG_BENCH_DUMP=<dir>` set, writes `samples` (one per line) to
/// `<dir>/<name>.txt`, for a closer look at a distribution.
pub fn dump(name: &str, samples: &[u64]) {
    let Some(dir) = std::env::var_os("ONCELOG_BENCH_DUMP") else {
        return;
    };
    let text: String = samples.iter().map(|s| format!("{s}\n")).collect();
    let path = Path::new(&dir).join(format!("{name}.txt"));
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("oncelog-bench: cannot write {}: {e}", path.display());
    }
}

/// Measures how much CPU the rest of the machine used while a section ran: all busy
/// time in `/proc/stat` minus this process's and its waited-for children's. The
/// bench shares a small machine; other work skews every figure, most of all the
/// wake-up latencies, so the report says how much there was.
pub struct CpuMeter {
    busy: f64,
    ours: f64,
    wall: std::time::Instant,
}

impl CpuMeter {
    /// Starts measuring.
    pub fn start() -> CpuMeter {
        CpuMeter {
            busy: machine_busy_secs(),
            ours: our_cpu_secs(),
            wall: std::time::Instant::now(),
        }
    }

    /// CPU used by everything else since `start`, in cores (1.0 = one core busy the
    /// whole time).
    pub fn foreign_cores(&self) -> f64 {
        let wall = self.wall.elapsed().as_secs_f64();
        let busy = machine_busy_secs() - self.busy;
        let ours = our_cpu_secs() - self.ours;
        if wall <= 0.0 {
            return 0.0;
        }
        ((busy - ours) / wall).max(0.0)
    }
}

/// Busy seconds of all CPUs since boot (user, nice, system, irq, softirq, steal).
fn machine_busy_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = stat.lines().next() else {
        return 0.0;
    };
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if f.len() < 8 {
        return 0.0;
    }
    // user nice system idle iowait irq softirq steal
    let ticks = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

/// CPU seconds of this process and of its children that were waited for.
fn our_cpu_secs() -> f64 {
    let get = |who| {
        // SAFETY: all-zero is a valid rusage; getrusage fills it.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid out-pointer.
        unsafe { libc::getrusage(who, &mut u) };
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(u.ru_utime) + t(u.ru_stime)
    };
    get(libc::RUSAGE_SELF) + get(libc::RUSAGE_CHILDREN)
}

/// Runs `f` `reps` times and returns the seconds each run reported.
pub fn repeat(reps: usize, mut f: impl FnMut() -> Res<f64>) -> Res<Vec<f64>> {
    (0..reps).map(|_| f()).collect()
}
