//! `oncelog-bench`: oncelog's append, read and wake-up figures next to the physical
//! limits of the same machine, measured in the same run.
//!
//! ```text
//! cargo run --release -p oncelog-bench --locked -- [--quick] [--json]
//! ```
//!
//! Every workload runs on a fresh store in its own directory under
//! `std::env::temp_dir()` (removed afterwards) with default `StoreOptions`.
//! Throughput figures are the best and the median of several repetitions; latencies
//! are percentiles over thousands of wake-ups, measured in rounds that alternate with
//! the raw limit they are compared with (the median of each percentile across rounds
//! is reported). Child processes are this binary re-executed with a hidden subcommand
//! (`__futex-waiter`, `__wake-writer`). `docs/PERFORMANCE.md` explains every figure.
//!
//! The run measures how much CPU other work on the machine took meanwhile and flags
//! a disturbed run. Diagnostic switches (the report says when one is set):
//! `ONCELOG_BENCH_DUMP=<dir>` writes every latency sample there;
//! `ONCELOG_BENCH_PREFAULT_BYTES=<n>` overrides `StoreOptions::prefault_bytes`;
//! `ONCELOG_BENCH_PACING=sleep` paces the publishing side of the wake-up tests with
//! `clock_nanosleep` instead of spinning.

use std::time::Duration;

use oncelog_bench::child::{self, Relaunch};
use oncelog_bench::json::J;
use oncelog_bench::limits::{self, MapPrep};
use oncelog_bench::machine::{loadavg, machine, Machine, FOREIGN_OK};
use oncelog_bench::util::{self, Latency, Payload, Rate, Res, REC_LEN};
use oncelog_bench::wakeup::{self, WakeResult, WakeRun};
use oncelog_bench::workloads::{self, ReadVia};

const USAGE: &str = "usage: oncelog-bench [--quick] [--json]
  --quick   tiny sizes (a smoke test: the whole run takes a few seconds)
  --json    print one JSON object instead of the table";

/// How much of everything to run.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    records: usize,
    per_batch: usize,
    single_records: usize,
    reps: usize,
    write_chunk: usize,
    futex_wakeups: usize,
    spin_samples: usize,
    sleep_samples: usize,
    rounds: usize,
    warmup: usize,
    spin_gap_ns: u64,
    sleep_gap_ns: u64,
    spin: Duration,
}

impl Sizes {
    fn full() -> Sizes {
        Sizes {
            records: 1_000_000,
            per_batch: 1_000,
            single_records: 300_000,
            reps: 5,
            write_chunk: 1 << 20,
            futex_wakeups: 3_000,
            spin_samples: 8_000,
            sleep_samples: 4_000,
            rounds: 5,
            warmup: 50,
            spin_gap_ns: 50_000,
            sleep_gap_ns: 1_000_000,
            spin: Duration::from_micros(200),
        }
    }

    fn quick() -> Sizes {
        Sizes {
            records: 20_000,
            single_records: 10_000,
            reps: 2,
            futex_wakeups: 200,
            spin_samples: 300,
            sleep_samples: 200,
            rounds: 1,
            warmup: 20,
            ..Sizes::full()
        }
    }
}

/// Every figure of one run.
struct Results {
    /// CPU used by other work on the machine during the throughput sections, cores.
    foreign_throughput: f64,
    /// The same during the wake-up sections.
    foreign_latency: f64,
    memcpy_faulted: Rate,
    memcpy_fallocated: Rate,
    memcpy_sparse: Rate,
    write: Rate,
    sum_values: Rate,
    futex_spin_gap: Latency,
    futex_sleep_gap: Latency,
    raw_spin: Latency,
    batched: Rate,
    batched_log_bytes: u64,
    batched_writer_faults: u64,
    /// Workload 2i and the plain runs it alternated with.
    idempotent: Rate,
    idempotent_plain: Rate,
    /// Workload 6: transactions of 10 records, acks=written.
    txn_written: Rate,
    /// Workload 6s: the latency of one synced commit of 10 records, and of (f) one
    /// raw `write()` + `fdatasync` of the same bytes, medians of alternating rounds.
    commit_synced: Latency,
    commit_raw: Latency,
    /// Workload 6c: synced commits by 1 and by 4 concurrent committers, alternating.
    committers_1: Rate,
    committers_4: Rate,
    single: Rate,
    read_all: Rate,
    read_all_raw_batch: Rate,
    read_all_committed: Rate,
    read_all_new_mapping: Rate,
    wake_spin: WakeResult,
    wake_sleep: WakeResult,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = child::child_main(&args[1..]).unwrap_or_else(|| run(&args[1..]));
    if let Err(e) = result {
        eprintln!("oncelog-bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: &[String]) -> Res<()> {
    let mut quick = false;
    let mut json = false;
    for a in args {
        match a.as_str() {
            "--quick" => quick = true,
            "--json" => json = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    let sizes = if quick { Sizes::quick() } else { Sizes::full() };
    let mut machine = machine();
    let results = measure(&sizes)?;
    machine.load_after = loadavg();
    if json {
        println!("{}", to_json(&machine, &sizes, quick, &results).render());
    } else {
        print_table(&machine, &sizes, quick, &results);
    }
    Ok(())
}

fn progress(what: &str) {
    eprintln!("oncelog-bench: {what}");
}

fn measure(s: &Sizes) -> Res<Results> {
    let exe = Relaunch::current(&[])?;
    progress(&format!(
        "payload: {} records of {REC_LEN} bytes",
        s.records
    ));
    let payload = Payload::new(s.records);
    let expected_sum = payload.value_sum();
    let bytes = payload.bytes.len() as f64;
    let n = s.records as f64;

    let throughput_meter = util::CpuMeter::start();
    progress("limits: memcpy, write(), futex");
    let memcpy_faulted =
        Rate::from_runs(bytes, &limits::memcpy(&payload, s.reps, MapPrep::Faulted)?);
    let memcpy_fallocated = Rate::from_runs(
        bytes,
        &limits::memcpy(&payload, s.reps.min(3), MapPrep::Fallocated)?,
    );
    let memcpy_sparse = Rate::from_runs(
        bytes,
        &limits::memcpy(&payload, s.reps.min(3), MapPrep::Sparse)?,
    );
    let write = Rate::from_runs(bytes, &limits::write(&payload, s.reps, s.write_chunk)?);
    let sum_values = Rate::from_runs(n, &limits::sum_values(&payload, s.reps)?);
    let futex_spin_gap = Latency::from_samples(
        &limits::futex_wakeup(&exe, s.futex_wakeups, s.warmup, s.spin_gap_ns, false)?,
        0,
    );

    progress("batched append");
    let mut secs = Vec::new();
    let mut kept = None;
    let mut batched_log_bytes = 0;
    let mut writer_faults = Vec::new();
    for _ in 0..s.reps {
        // Drop the previous store before the next repetition creates its own.
        drop(kept.take());
        let run = workloads::batched_append(&payload, s.per_batch, false)?;
        secs.push(run.secs);
        batched_log_bytes = run.log_bytes;
        writer_faults.push(run.writer_faults);
        kept = Some(run.store);
    }
    let batched = Rate::from_runs(n, &secs);
    writer_faults.sort_unstable();
    let batched_writer_faults = writer_faults[writer_faults.len() / 2];
    let store = kept.ok_or("no batched-append repetition")?;

    progress("idempotent batched append (alternating with plain)");
    let mut plain_secs = Vec::new();
    let mut idem_secs = Vec::new();
    for _ in 0..s.reps {
        plain_secs.push(workloads::batched_append(&payload, s.per_batch, false)?.secs);
        idem_secs.push(workloads::batched_append(&payload, s.per_batch, true)?.secs);
    }
    let idempotent = Rate::from_runs(n, &idem_secs);
    let idempotent_plain = Rate::from_runs(n, &plain_secs);

    progress("read-all");
    let read = |via| {
        util::repeat(s.reps, || {
            workloads::read_all(store.partition(), &payload, expected_sum, via)
        })
        .map(|secs| Rate::from_runs(n, &secs))
    };
    let read_all = read(ReadVia::Reader)?;
    let read_all_raw_batch = read(ReadVia::RawBatch)?;
    let read_all_committed = read(ReadVia::ReadCommitted)?;
    let secs = util::repeat(s.reps.min(3), || {
        workloads::read_all_new_mapping(&store, &payload, expected_sum)
    })?;
    let read_all_new_mapping = Rate::from_runs(n, &secs);
    drop(store);

    progress("single-record append");
    let single_n = s.single_records.min(s.records);
    let secs = util::repeat(s.reps, || workloads::single_append(&payload, single_n))?;
    let single = Rate::from_runs(single_n as f64, &secs);

    progress("transactions of 10 records, acks=written");
    // Enough transactions for a steady state (the first thousands pay for fresh
    // segments of both logs).
    let txns = (s.single_records / 3).max(100);
    let txn_written = Rate::from_runs(
        txns as f64,
        &util::repeat(s.reps.min(3), || {
            workloads::transactions(&payload, txns, "written")
        })?,
    );
    progress("synced commits vs raw fdatasync (alternating rounds)");
    let commits = (txns / 100).max(20);
    let (mut synced_rounds, mut raw_rounds) = (Vec::new(), Vec::new());
    for _ in 0..s.rounds {
        let (samples, bytes) = workloads::synced_commit_latencies(&payload, commits)?;
        synced_rounds.push(Latency::from_samples(&samples, 5));
        raw_rounds.push(Latency::from_samples(
            &limits::fdatasync_commits(commits, bytes)?,
            5,
        ));
    }
    let (commit_synced, commit_raw) = (
        Latency::median_of(&synced_rounds),
        Latency::median_of(&raw_rounds),
    );
    progress("synced commits, 1 and 4 committers (alternating rounds)");
    let (mut one, mut four) = (Vec::new(), Vec::new());
    for _ in 0..s.rounds {
        one.push(workloads::concurrent_synced(&payload, 1, commits)?);
        four.push(workloads::concurrent_synced(&payload, 4, commits)?);
    }
    let (committers_1, committers_4) = (Rate::from_rates(&one), Rate::from_rates(&four));

    // Each oncelog wake-up variant is compared with its raw counterpart, in
    // alternating rounds (see `alternate`).
    let foreign_throughput = throughput_meter.foreign_cores();
    let latency_meter = util::CpuMeter::start();
    progress("wake-up latency, spinning reader vs raw spin (alternating rounds)");
    let (raw_spin, wake_spin) = alternate(s, "spin", s.spin_samples, |n| {
        Ok((
            limits::futex_wakeup(&exe, n, s.warmup, s.spin_gap_ns, true)?,
            wakeup::wake_latency(&exe, n, s.warmup, s.spin_gap_ns, s.spin)?,
        ))
    })?;
    progress("wake-up latency, sleeping reader vs raw futex (alternating rounds)");
    let (futex_sleep_gap, wake_sleep) = alternate(s, "sleep", s.sleep_samples, |n| {
        Ok((
            limits::futex_wakeup(&exe, n, s.warmup, s.sleep_gap_ns, false)?,
            wakeup::wake_latency(&exe, n, s.warmup, s.sleep_gap_ns, Duration::ZERO)?,
        ))
    })?;

    let foreign_latency = latency_meter.foreign_cores();
    Ok(Results {
        foreign_throughput,
        foreign_latency,
        memcpy_faulted,
        memcpy_fallocated,
        memcpy_sparse,
        write,
        sum_values,
        futex_spin_gap,
        futex_sleep_gap,
        raw_spin,
        batched,
        batched_log_bytes,
        batched_writer_faults,
        idempotent,
        idempotent_plain,
        txn_written,
        commit_synced,
        commit_raw,
        committers_1,
        committers_4,
        single,
        read_all,
        read_all_raw_batch,
        read_all_committed,
        read_all_new_mapping,
        wake_spin,
        wake_sleep,
    })
}

/// Runs `round` (a raw measurement, then the oncelog one) `s.rounds` times with
/// `samples / rounds` wake-ups each and returns, for both, the median across rounds
/// of each percentile. Both depend on the hypervisor (how fast it wakes an idle vCPU,
/// whether it preempts a busy one), which drifts over seconds and is disturbed by any
/// other work on the machine: alternating puts the two under the same conditions,
/// and the median keeps one disturbed round from moving a figure.
fn alternate(
    s: &Sizes,
    name: &str,
    samples: usize,
    mut round: impl FnMut(usize) -> Res<(Vec<u64>, WakeRun)>,
) -> Res<(Latency, WakeResult)> {
    let per_round = samples.div_ceil(s.rounds);
    let mut raw_rounds = Vec::new();
    let mut oncelog_rounds = Vec::new();
    let mut pooled = WakeRun::default();
    for i in 0..s.rounds {
        let (raw, run) = round(per_round)?;
        util::dump(&format!("{name}-raw-{i}"), &raw);
        util::dump(&format!("{name}-oncelog-{i}"), &run.samples);
        raw_rounds.push(Latency::from_samples(&raw, 0));
        oncelog_rounds.push(Latency::from_samples(&run.samples, 0));
        pooled.merge(run);
    }
    let mut result = pooled.summary();
    result.latency = Latency::median_of(&oncelog_rounds);
    Ok((Latency::median_of(&raw_rounds), result))
}

// --- targets ------------------------------------------------------------------------

const TARGET_BATCHED: f64 = 15e6;
const TARGET_READ: f64 = 25e6;
const TARGET_SINGLE: f64 = 3e6;
const TARGET_SPIN_P50_NS: f64 = 1_000.0;
const TARGET_SPIN_P99_NS: f64 = 10_000.0;
const TARGET_SLEEP_RATIO: f64 = 1.25;
const TARGET_TXN: f64 = 350e3;
const TARGET_SYNCED_RATIO: f64 = 1.2;
const TARGET_COMMITTERS_SCALE: f64 = 3.0;

fn spin_met(r: &Results) -> bool {
    r.wake_spin.latency.p50 <= TARGET_SPIN_P50_NS && r.wake_spin.latency.p99 <= TARGET_SPIN_P99_NS
}

fn sleep_ratio(r: &Results) -> f64 {
    r.wake_sleep.latency.p50 / r.futex_sleep_gap.p50
}

// --- table ----------------------------------------------------------------------------

fn mrec(r: f64) -> String {
    format!("{:.2} M rec/s", r / 1e6)
}

fn gbs(b: f64) -> String {
    format!("{:.2} GB/s", b / 1e9)
}

fn us(ns: f64) -> String {
    if ns < 10_000.0 {
        format!("{:.2}", ns / 1e3)
    } else {
        format!("{:.1}", ns / 1e3)
    }
}

fn lat(l: &Latency) -> String {
    format!(
        "p50 {} / p99 {} / p99.9 {} µs (max {}, n={})",
        us(l.p50),
        us(l.p99),
        us(l.p999),
        us(l.max),
        l.n
    )
}

fn verdict(met: bool) -> &'static str {
    if met {
        "MET"
    } else {
        "MISSED"
    }
}

fn print_table(m: &Machine, s: &Sizes, quick: bool, r: &Results) {
    let rec_bytes = REC_LEN as f64;
    let memcpy_rec = r.memcpy_faulted.best / rec_bytes;
    let write_rec = r.write.best / rec_bytes;
    println!(
        "oncelog-bench{}",
        if quick {
            " --quick (tiny sizes: not representative)"
        } else {
            ""
        }
    );
    println!(
        "machine: {} x{} cores, Linux {}, {} at {}; load average {} before, {} after",
        m.cpu, m.cores, m.kernel, m.fs, m.tmp, m.load_before, m.load_after
    );
    println!(
        "workload: {} records, key {} B + value {} B = {REC_LEN} B payload; batches of {}; {} single-record appends; best (median) of {} repetitions",
        s.records,
        util::KEY_LEN,
        util::VALUE_LEN,
        s.per_batch,
        s.single_records,
        s.reps
    );
    if let Some(b) = util::prefault_override() {
        println!("NOTE: ONCELOG_BENCH_PREFAULT_BYTES={b}: stores opened with prefault_bytes = {b}, not the default");
    }
    if let Some(p) = util::pacing_override() {
        println!("NOTE: ONCELOG_BENCH_PACING={p}: the publishing side of the wake-up tests sleeps between events");
    }
    let disturbed = r.foreign_throughput > FOREIGN_OK || r.foreign_latency > FOREIGN_OK;
    println!(
        "other work on the machine meanwhile: {:.2} cores during the throughput part, {:.2} during the wake-ups{}",
        r.foreign_throughput,
        r.foreign_latency,
        if disturbed {
            "  <-- DISTURBED: figures are not representative"
        } else {
            ""
        }
    );
    println!();
    println!("Physical limits");
    let rate_row = |name: &str, x: &Rate| {
        println!(
            "  {name:<52} {:>10} ({:>9}) = {:>6.2} M rec/s",
            gbs(x.best),
            gbs(x.median),
            x.best / rec_bytes / 1e6
        );
    };
    rate_row(
        "(a)  memcpy into faulted MAP_SHARED mapping",
        &r.memcpy_faulted,
    );
    rate_row(
        "(a') memcpy into fresh fallocate'd mapping",
        &r.memcpy_fallocated,
    );
    rate_row("(a\") memcpy into fresh sparse mapping", &r.memcpy_sparse);
    rate_row(
        &format!(
            "(b)  write() of {} KiB chunks, fresh file",
            s.write_chunk / 1024
        ),
        &r.write,
    );
    println!(
        "  {:<52} {:>10} ({:>9}) = {:>6.2} M rec/s",
        "(r)  sum of every value byte, straight from memory",
        gbs(r.sum_values.best * util::VALUE_LEN as f64),
        gbs(r.sum_values.median * util::VALUE_LEN as f64),
        r.sum_values.best / 1e6
    );
    println!(
        "  {:<52} {}",
        format!(
            "(c)  futex wake-up, other process, gap {} µs",
            s.spin_gap_ns / 1000
        ),
        lat(&r.futex_spin_gap)
    );
    println!(
        "  {:<52} {}",
        format!(
            "(s)  spin hand-off, other process, gap {} µs (*)",
            s.spin_gap_ns / 1000
        ),
        lat(&r.raw_spin)
    );
    println!(
        "  {:<52} {}",
        format!(
            "(c)  futex wake-up, other process, gap {} µs (*)",
            s.sleep_gap_ns / 1000
        ),
        lat(&r.futex_sleep_gap)
    );
    println!();
    println!("oncelog                                                  best (median)            vs limits                  target");
    let b = &r.batched;
    println!(
        "  {:<52} {:>14} ({:>6.2}) {:>5.2} GB/s payload  {:.2}x (a) {:.2}x (b)   >= 15 M/s {}",
        format!("2 batched append, {}/batch, written", s.per_batch),
        mrec(b.best),
        b.median / 1e6,
        b.best * rec_bytes / 1e9,
        b.best / memcpy_rec,
        b.best / write_rec,
        verdict(b.best >= TARGET_BATCHED)
    );
    println!(
        "  {:<52} {:>14}          {:>5.2} GB/s of log (Kafka batches on disk); {} page faults in the appending thread (median run)",
        "",
        "",
        b.best * r.batched_log_bytes as f64 / s.records as f64 / 1e9,
        r.batched_writer_faults,
    );
    let x = &r.idempotent;
    let overhead = r.idempotent_plain.median / x.median - 1.0;
    println!(
        "  {:<52} {:>14} ({:>6.2})  overhead {:>+5.1} % vs plain runs alternated with it ({:.2} M/s median)   <= 5 % {}",
        "2i batched append, idempotent",
        mrec(x.best),
        x.median / 1e6,
        overhead * 100.0,
        r.idempotent_plain.median / 1e6,
        verdict(overhead <= 0.05)
    );
    let x = &r.txn_written;
    println!(
        "  {:<52} {:>10.1} k/s ({:>7.1})  {:>7.2} µs per transaction             >= 350 k/s {}",
        "6 transactions of 10 records, acks=written",
        x.best / 1e3,
        x.median / 1e3,
        1e6 / x.median,
        verdict(x.median >= TARGET_TXN)
    );
    let ratio = r.commit_synced.p50 / r.commit_raw.p50;
    println!(
        "  {:<52} p50 {:>7.1} µs, p99 {:>7.1} µs   {:.2}x (f) p50 {:>6.1} µs     <= 1.2x (f) {}",
        "6s one synced commit of 10 records",
        r.commit_synced.p50 / 1e3,
        r.commit_synced.p99 / 1e3,
        ratio,
        r.commit_raw.p50 / 1e3,
        verdict(ratio <= TARGET_SYNCED_RATIO)
    );
    let scale = r.committers_4.median / r.committers_1.median;
    println!(
        "  {:<52} {:>10.1} k/s vs {:>6.1} k/s with 1 = {:.2}x               >= 3x {}",
        "6c synced commits, 4 concurrent committers",
        r.committers_4.median / 1e3,
        r.committers_1.median / 1e3,
        scale,
        verdict(scale >= TARGET_COMMITTERS_SCALE)
    );
    let x = &r.single;
    println!(
        "  {:<52} {:>14} ({:>6.2}) {:>5.0} ns/append     {:.2}x (a)              >= 3 M/s  {}",
        "3 single-record append",
        mrec(x.best),
        x.median / 1e6,
        1e9 / x.best,
        x.best / memcpy_rec,
        verdict(x.best >= TARGET_SINGLE)
    );
    let x = &r.read_all;
    println!(
        "  {:<52} {:>14} ({:>6.2}) {:>5.2} GB/s payload  {:.2}x (a) {:.2}x (r)   >= 25 M/s {}",
        "4 read-all, every value byte summed",
        mrec(x.best),
        x.median / 1e6,
        x.best * rec_bytes / 1e9,
        x.best / memcpy_rec,
        x.best / r.sum_values.best,
        verdict(x.best >= TARGET_READ)
    );
    let x = &r.read_all_raw_batch;
    println!(
        "  {:<52} {:>14} ({:>6.2}) {:>5.2} GB/s payload  {:.2}x (a) {:.2}x (r)   (diagnostic)",
        "4a read-all via ReadBatch::batch().records()",
        mrec(x.best),
        x.median / 1e6,
        x.best * rec_bytes / 1e9,
        x.best / memcpy_rec,
        x.best / r.sum_values.best,
    );
    let x = &r.read_all_committed;
    let ratio = x.median / r.read_all.median;
    println!(
        "  {:<52} {:>14} ({:>6.2})  {:.2}x read_uncommitted (median)                 >= 0.90x {}",
        "4c read-all, read_committed",
        mrec(x.best),
        x.median / 1e6,
        ratio,
        verdict(ratio >= 0.9)
    );
    let x = &r.read_all_new_mapping;
    println!(
        "  {:<52} {:>14} ({:>6.2}) {:>5.2} GB/s payload  {:.2}x (a) {:.2}x (r)   (no target)",
        "4' read-all through a new mapping (another process)",
        mrec(x.best),
        x.median / 1e6,
        x.best * rec_bytes / 1e9,
        x.best / memcpy_rec,
        x.best / r.sum_values.best,
    );
    let w = &r.wake_spin;
    println!(
        "  {:<52} {}",
        format!(
            "5 wake-up, reader spins {} µs, gap {} µs (*)",
            s.spin.as_micros(),
            s.spin_gap_ns / 1000
        ),
        lat(&w.latency)
    );
    println!(
        "  {:<52} append() p50 {} µs p99 {} µs; {} futex wakes for {} records",
        "",
        us(w.append_p50_ns),
        us(w.append_p99_ns),
        w.wakeups,
        w.records,
    );
    println!(
        "  {:<52} {:.2}x (s) at p50, {:.2}x at p99; target p50 <= 1 µs, p99 <= 10 µs: {}",
        "",
        w.latency.p50 / r.raw_spin.p50,
        w.latency.p99 / r.raw_spin.p99,
        verdict(spin_met(r))
    );
    let w = &r.wake_sleep;
    println!(
        "  {:<52} {}",
        format!(
            "5 wake-up, reader asleep (spin 0), gap {} µs (*)",
            s.sleep_gap_ns / 1000
        ),
        lat(&w.latency)
    );
    println!(
        "  {:<52} append() p50 {} µs p99 {} µs; {} futex wakes for {} records",
        "",
        us(w.append_p50_ns),
        us(w.append_p99_ns),
        w.wakeups,
        w.records,
    );
    println!(
        "  {:<52} {:.2}x (c) at p50, {:.2}x at p99; target <= 1.25x (c) p50: {}",
        "",
        sleep_ratio(r),
        w.latency.p99 / r.futex_sleep_gap.p99,
        verdict(sleep_ratio(r) <= TARGET_SLEEP_RATIO)
    );
    println!();
    println!(
        "(*) {} alternating rounds (raw, then oncelog, each on fresh files with a fresh child process); each percentile is the median across rounds, max the largest",
        s.rounds
    );
    println!("latencies: from CLOCK_MONOTONIC taken just before append() (or the raw FUTEX_WAKE) to the reader holding the record");
}

// --- JSON -----------------------------------------------------------------------------

fn rate_json(x: &Rate, unit: &str) -> J {
    J::obj([
        (format!("{unit}_best"), J::num(x.best)),
        (format!("{unit}_median"), J::num(x.median)),
        ("repetitions".to_string(), J::int(x.reps as u64)),
    ])
}

fn lat_json(l: &Latency) -> J {
    J::obj([
        ("p50_ns", J::num(l.p50)),
        ("p99_ns", J::num(l.p99)),
        ("p999_ns", J::num(l.p999)),
        ("max_ns", J::num(l.max)),
        ("samples", J::int(l.n as u64)),
    ])
}

fn wake_json(w: &WakeResult, gap_ns: u64, spin: Duration) -> J {
    J::obj([
        ("gap_ns", J::int(gap_ns)),
        ("spin_ns", J::int(spin.as_nanos() as u64)),
        ("latency", lat_json(&w.latency)),
        ("append_p50_ns", J::num(w.append_p50_ns)),
        ("append_p99_ns", J::num(w.append_p99_ns)),
        ("futex_wakes", J::int(w.wakeups)),
        ("records", J::int(w.records as u64)),
    ])
}

fn to_json(m: &Machine, s: &Sizes, quick: bool, r: &Results) -> J {
    let rec_bytes = REC_LEN as f64;
    let memcpy_rec = r.memcpy_faulted.best / rec_bytes;
    let write_rec = r.write.best / rec_bytes;
    let with = |base: J, extra: Vec<(&str, J)>| base.extend(extra);
    J::obj([
        (
            "machine",
            J::obj([
                ("cpu", J::str(&m.cpu)),
                ("cores", J::int(m.cores as u64)),
                ("kernel", J::str(&m.kernel)),
                ("filesystem", J::str(&m.fs)),
                ("temp_dir", J::str(&m.tmp)),
                ("loadavg_before", J::str(&m.load_before)),
                ("loadavg_after", J::str(&m.load_after)),
                ("other_work_cores_throughput", J::num(r.foreign_throughput)),
                ("other_work_cores_wakeups", J::num(r.foreign_latency)),
                (
                    "disturbed",
                    J::Bool(r.foreign_throughput > FOREIGN_OK || r.foreign_latency > FOREIGN_OK),
                ),
            ]),
        ),
        ("quick", J::Bool(quick)),
        (
            "sizes",
            J::obj([
                ("records", J::int(s.records as u64)),
                ("key_bytes", J::int(util::KEY_LEN as u64)),
                ("value_bytes", J::int(util::VALUE_LEN as u64)),
                ("records_per_batch", J::int(s.per_batch as u64)),
                ("single_records", J::int(s.single_records as u64)),
                ("repetitions", J::int(s.reps as u64)),
                ("sleep_rounds", J::int(s.rounds as u64)),
                (
                    "prefault_bytes_override",
                    util::prefault_override().map_or(J::Null, J::int),
                ),
                (
                    "pacing",
                    J::str(util::pacing_override().as_deref().unwrap_or("spin")),
                ),
            ]),
        ),
        (
            "limits",
            J::obj([
                (
                    "memcpy_faulted",
                    rate_json(&r.memcpy_faulted, "bytes_per_s"),
                ),
                (
                    "memcpy_fallocated",
                    rate_json(&r.memcpy_fallocated, "bytes_per_s"),
                ),
                ("memcpy_sparse", rate_json(&r.memcpy_sparse, "bytes_per_s")),
                ("sum_values", rate_json(&r.sum_values, "records_per_s")),
                (
                    "write",
                    with(
                        rate_json(&r.write, "bytes_per_s"),
                        vec![("chunk_bytes", J::int(s.write_chunk as u64))],
                    ),
                ),
                (
                    "futex_wake",
                    J::obj([
                        (
                            "gap_short",
                            with(
                                lat_json(&r.futex_spin_gap),
                                vec![("gap_ns", J::int(s.spin_gap_ns))],
                            ),
                        ),
                        (
                            "spin_handoff",
                            with(
                                lat_json(&r.raw_spin),
                                vec![("gap_ns", J::int(s.spin_gap_ns))],
                            ),
                        ),
                        (
                            "gap_long",
                            with(
                                lat_json(&r.futex_sleep_gap),
                                vec![("gap_ns", J::int(s.sleep_gap_ns))],
                            ),
                        ),
                    ]),
                ),
            ]),
        ),
        (
            "workloads",
            J::obj([
                (
                    "transactions_written",
                    rate_json(&r.txn_written, "transactions_per_s"),
                ),
                (
                    "synced_commit",
                    J::obj([
                        ("oncelog", lat_json(&r.commit_synced)),
                        ("raw_write_fdatasync", lat_json(&r.commit_raw)),
                        ("p50_ratio", J::num(r.commit_synced.p50 / r.commit_raw.p50)),
                    ]),
                ),
                (
                    "synced_committers",
                    J::obj([
                        ("one", rate_json(&r.committers_1, "transactions_per_s")),
                        ("four", rate_json(&r.committers_4, "transactions_per_s")),
                        (
                            "median_ratio",
                            J::num(r.committers_4.median / r.committers_1.median),
                        ),
                    ]),
                ),
                (
                    "batched_append_idempotent",
                    with(
                        rate_json(&r.idempotent, "records_per_s"),
                        vec![(
                            "overhead_vs_alternated_plain_median",
                            J::num(r.idempotent_plain.median / r.idempotent.median - 1.0),
                        )],
                    ),
                ),
                (
                    "batched_append",
                    with(
                        rate_json(&r.batched, "records_per_s"),
                        vec![
                            (
                                "payload_bytes_per_s_best",
                                J::num(r.batched.best * rec_bytes),
                            ),
                            (
                                "log_bytes_per_s_best",
                                J::num(
                                    r.batched.best * r.batched_log_bytes as f64 / s.records as f64,
                                ),
                            ),
                            (
                                "appending_thread_page_faults",
                                J::int(r.batched_writer_faults),
                            ),
                            ("ratio_to_memcpy", J::num(r.batched.best / memcpy_rec)),
                            ("ratio_to_write", J::num(r.batched.best / write_rec)),
                            ("target_records_per_s", J::num(TARGET_BATCHED)),
                            ("target_met", J::Bool(r.batched.best >= TARGET_BATCHED)),
                        ],
                    ),
                ),
                (
                    "single_append",
                    with(
                        rate_json(&r.single, "records_per_s"),
                        vec![
                            ("ratio_to_memcpy", J::num(r.single.best / memcpy_rec)),
                            ("target_records_per_s", J::num(TARGET_SINGLE)),
                            ("target_met", J::Bool(r.single.best >= TARGET_SINGLE)),
                        ],
                    ),
                ),
                (
                    "read_all",
                    with(
                        rate_json(&r.read_all, "records_per_s"),
                        vec![
                            (
                                "payload_bytes_per_s_best",
                                J::num(r.read_all.best * rec_bytes),
                            ),
                            ("ratio_to_memcpy", J::num(r.read_all.best / memcpy_rec)),
                            (
                                "ratio_to_sum_values",
                                J::num(r.read_all.best / r.sum_values.best),
                            ),
                            ("target_records_per_s", J::num(TARGET_READ)),
                            ("target_met", J::Bool(r.read_all.best >= TARGET_READ)),
                        ],
                    ),
                ),
                (
                    "read_all_read_committed",
                    rate_json(&r.read_all_committed, "records_per_s"),
                ),
                (
                    "read_all_raw_batch_diagnostic",
                    rate_json(&r.read_all_raw_batch, "records_per_s"),
                ),
                (
                    "read_all_new_mapping",
                    with(
                        rate_json(&r.read_all_new_mapping, "records_per_s"),
                        vec![(
                            "ratio_to_memcpy",
                            J::num(r.read_all_new_mapping.best / memcpy_rec),
                        )],
                    ),
                ),
                (
                    "wake_spinning",
                    with(
                        wake_json(&r.wake_spin, s.spin_gap_ns, s.spin),
                        vec![
                            (
                                "ratio_p50_to_spin_handoff",
                                J::num(r.wake_spin.latency.p50 / r.raw_spin.p50),
                            ),
                            (
                                "ratio_p99_to_spin_handoff",
                                J::num(r.wake_spin.latency.p99 / r.raw_spin.p99),
                            ),
                            ("target_p50_ns", J::num(TARGET_SPIN_P50_NS)),
                            ("target_p99_ns", J::num(TARGET_SPIN_P99_NS)),
                            ("target_met", J::Bool(spin_met(r))),
                        ],
                    ),
                ),
                (
                    "wake_sleeping",
                    with(
                        wake_json(&r.wake_sleep, s.sleep_gap_ns, Duration::ZERO),
                        vec![
                            ("ratio_p50_to_futex", J::num(sleep_ratio(r))),
                            (
                                "ratio_p99_to_futex",
                                J::num(r.wake_sleep.latency.p99 / r.futex_sleep_gap.p99),
                            ),
                            ("target_ratio", J::num(TARGET_SLEEP_RATIO)),
                            ("target_met", J::Bool(sleep_ratio(r) <= TARGET_SLEEP_RATIO)),
                        ],
                    ),
                ),
            ]),
        ),
    ])
}
