//! Workload 5: cross-process wake-up latency through oncelog. A child process (the
//! running binary re-executed, see [`Relaunch`]) appends one record at a time, `gap` apart, each value carrying
//! the CLOCK_MONOTONIC time taken just before its `append()` call; the parent, blocked
//! in `Reader::poll(timeout, spin)`, takes the time as soon as the poll returns.

use std::process::Stdio;
use std::time::Duration;

use oncelog::{Record, Store};

use crate::child::{Relaunch, WAKE_WRITER};
use crate::util::{now_ns, pace_until, Latency, Res, KEY_LEN, VALUE_LEN};
use crate::workloads::{BenchStore, TOPIC};

/// What one or more wake-up runs measured.
#[derive(Clone, Debug, Default)]
pub struct WakeRun {
    /// Latencies (ns) from the stamp taken before `append()` in the writer to
    /// `poll()` returning in the reader, warm-up dropped.
    pub samples: Vec<u64>,
    /// Durations (ns) of the writer's `append()` calls: an upper bound of how much of
    /// a latency was spent before the publish, and the writer's cost of a wake-up.
    pub append_ns: Vec<u64>,
    /// Futex wake-ups the writer issued (the partition's `wakeups` counter): about one
    /// per record when the reader sleeps, about none when it catches records spinning.
    pub wakeups: u64,
    /// Records received.
    pub records: usize,
    /// CPU time (ns) the reading thread used from the receipt of the writer's
    /// second record (the first after its start-up pause) to the last: what waiting
    /// for the paced records cost it.
    pub reader_cpu_ns: u64,
    /// Wall time (ns) of the same span.
    pub reader_wall_ns: u64,
}

impl WakeRun {
    /// Adds another run's figures to these.
    pub fn merge(&mut self, other: WakeRun) {
        self.samples.extend(other.samples);
        self.append_ns.extend(other.append_ns);
        self.wakeups += other.wakeups;
        self.records += other.records;
        self.reader_cpu_ns += other.reader_cpu_ns;
        self.reader_wall_ns += other.reader_wall_ns;
    }

    /// Cores the reader kept busy while it waited (1.0: a whole core).
    pub fn reader_cores(&self) -> f64 {
        self.reader_cpu_ns as f64 / self.reader_wall_ns.max(1) as f64
    }
}

/// Measures the reading thread's CPU and wall time over the paced records, for
/// [`WakeRun::reader_cpu_ns`]: from the receipt of the writer's second record (the
/// first after its start-up pause, during which a blocking reader sleeps and a
/// polling one does not) to the last.
#[derive(Default)]
pub struct ReaderClock {
    start: Option<(u64, u64)>,
    last: (u64, u64),
}

impl ReaderClock {
    /// Records received by a poll, `before` records having been received by the
    /// earlier polls: starts the clock once the first record is behind, moves its
    /// end at every call.
    pub fn received(&mut self, before: usize) {
        if before == 0 {
            return;
        }
        let now = (thread_cpu_ns(), now_ns());
        self.start.get_or_insert(now);
        self.last = now;
    }

    /// (CPU ns, wall ns) between the start and the last call of `received`.
    pub fn span(&self) -> (u64, u64) {
        self.start.map_or((0, 0), |(cpu, wall)| {
            (self.last.0 - cpu, self.last.1 - wall)
        })
    }
}

/// CPU time of the calling thread, ns.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The summary of a [`WakeRun`].
#[derive(Clone, Copy, Debug, Default)]
pub struct WakeResult {
    /// Percentiles of [`WakeRun::samples`].
    pub latency: Latency,
    /// Median `append()` duration, ns.
    pub append_p50_ns: f64,
    /// 99th percentile `append()` duration, ns.
    pub append_p99_ns: f64,
    /// See [`WakeRun::wakeups`].
    pub wakeups: u64,
    /// See [`WakeRun::records`].
    pub records: usize,
}

impl WakeRun {
    /// Percentiles.
    pub fn summary(&self) -> WakeResult {
        let append = Latency::from_samples(&self.append_ns, 0);
        WakeResult {
            latency: Latency::from_samples(&self.samples, 0),
            append_p50_ns: append.p50,
            append_p99_ns: append.p99,
            wakeups: self.wakeups,
            records: self.records,
        }
    }
}

/// Runs the test on a fresh store: `n` records `gap_ns` apart, the reader spinning
/// up to `spin` before it sleeps; the first `warmup` samples are dropped.
pub fn wake_latency(
    exe: &Relaunch,
    n: usize,
    warmup: usize,
    gap_ns: u64,
    spin: Duration,
) -> Res<WakeRun> {
    let bs = BenchStore::new("wakeup")?;
    let p = bs.partition();
    let mut reader = p.reader(0)?;
    let child = exe
        .command(WAKE_WRITER)
        .arg(bs.path())
        .arg(n.to_string())
        .arg(gap_ns.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let usage0 = thread_usage();
    let mut clock = ReaderClock::default();
    let mut samples = Vec::with_capacity(n);
    let mut stamps = Vec::with_capacity(n);
    let mut failure = None;
    while samples.len() < n {
        let batch = match reader.poll(Duration::from_secs(10), spin) {
            Ok(Some(b)) => b,
            Ok(None) => {
                failure = Some(format!("no record for 10 s after {}", samples.len()));
                break;
            }
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        };
        let t = now_ns();
        clock.received(samples.len());
        for rec in batch.records() {
            let rec = rec?;
            let v = rec.value.ok_or("record without value")?;
            let mut stamp = [0u8; 8];
            stamp.copy_from_slice(&v[..8]);
            let stamp = u64::from_le_bytes(stamp);
            stamps.push(stamp);
            samples.push(t.saturating_sub(stamp));
        }
    }
    if let Some(f) = failure {
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        return Err(f.into());
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!("wake-up writer failed: {}", out.status).into());
    }
    let append_ns = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .skip(warmup)
        .map(|w| w.parse::<u64>())
        .collect::<Result<Vec<_>, _>>()?;
    let usage1 = thread_usage();
    if std::env::var_os("ONCELOG_BENCH_DUMP").is_some() {
        eprintln!(
            "reader thread during the round: {} involuntary and {} voluntary context switches, {} page faults",
            usage1.0 - usage0.0,
            usage1.1 - usage0.1,
            usage1.2 - usage0.2
        );
    }
    crate::util::dump(
        &format!("stamps-gap{gap_ns}-spin{}-{}", spin.as_nanos(), now_ns()),
        &stamps,
    );
    let records = samples.len();
    samples.drain(..warmup.min(records));
    let (reader_cpu_ns, reader_wall_ns) = clock.span();
    Ok(WakeRun {
        samples,
        append_ns,
        wakeups: p.metrics().wakeups,
        records,
        reader_cpu_ns,
        reader_wall_ns,
    })
}

/// (involuntary context switches, voluntary ones, page faults) of this thread.
fn thread_usage() -> (i64, i64, i64) {
    // SAFETY: all-zero is a valid rusage; getrusage fills it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    (u.ru_nivcsw, u.ru_nvcsw, u.ru_minflt + u.ru_majflt)
}

/// Pause of the writer after its first record (see [`wake_writer_main`]).
pub const START_UP_PAUSE_MS: u64 = 50;

/// The child of [`wake_latency`]: `__wake-writer <store> <n> <gap_ns>`. Appends one
/// record, pauses [`START_UP_PAUSE_MS`], then appends the other `n - 1`
/// single-record batches, each `gap_ns` after the previous append returned (see
/// [`pace_until`]), then prints the duration of every `append()` call in ns.
pub fn wake_writer_main(args: &[String]) -> Res<()> {
    let [dir, n, gap] = args else {
        return Err("usage: __wake-writer <store> <n> <gap_ns>".into());
    };
    let n: usize = n.parse()?;
    let gap: u64 = gap.parse()?;
    let store = Store::open(dir, crate::util::store_options())?;
    let p = store.partition(TOPIC, 0)?;
    let key = [b'w'; KEY_LEN];
    let mut value = [0u8; VALUE_LEN];
    let mut took = Vec::with_capacity(n);
    let mut last = now_ns();
    for i in 0..n {
        if i == 1 {
            // Let the store's start-up work finish before the paced records: the
            // first append reserves the segment's first blocks and sends the
            // pre-faulter to populate the first pages, milliseconds of CPU on a
            // background thread that would otherwise preempt the spinning reader or
            // this writer (both cores are busy here). Steady state is measured.
            std::thread::sleep(Duration::from_millis(START_UP_PAUSE_MS));
            last = now_ns();
        }
        pace_until(last + gap);
        let t0 = now_ns();
        value[..8].copy_from_slice(&t0.to_le_bytes());
        p.append(&[Record::keyed(&key, &value)])?;
        last = now_ns();
        took.push(last - t0);
    }
    let text: Vec<String> = took.iter().map(u64::to_string).collect();
    println!("{}", text.join(" "));
    drop(p);
    drop(store);
    Ok(())
}
