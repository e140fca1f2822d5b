//! `oncelog bench`: oncelog next to SQLite (WAL) and LMDB, doing the same work on
//! the same records in the same run.
//!
//! Workloads, each on a fresh store or database per repetition (see
//! `docs/PERFORMANCE.md` for oncelog's side and [`crate::peers`] for the peers'
//! settings):
//!
//! * batched append: every record, 1,000 per batch / write transaction, no sync;
//! * single-record append: one record per append / write transaction, no sync;
//! * read-all: every record in offset order, every value byte summed and checked;
//! * transactions of 10 records committed one by one, no sync (oncelog: a
//!   transactional producer with `acks=written`);
//! * synced commits of 10 records, one committer (oncelog: `acks=synced`), as
//!   latencies;
//! * cross-process wake-up latency, with a short and a long gap between records:
//!   oncelog's reader blocks in `Reader::poll`, the peers' readers poll in a tight
//!   loop; the reader's CPU use is reported next to its latency.
//!
//! Every workload runs its repetitions (rounds, for latencies) with the engines
//! alternating, the first engine rotating from one repetition to the next, so that
//! the machine's drift touches all of them alike; the report gives the best and
//! the median, and the ratios oncelog/peer measured in this run.

use std::time::Duration;

use crate::child::Relaunch;
use crate::json::J;
use crate::machine::{self, Machine, FOREIGN_OK};
use crate::peers::{Peer, PeerDb};
use crate::util::{self, Latency, Payload, Rate, Res, KEY_LEN, VALUE_LEN};
use crate::wakeup::{self, WakeRun};
use crate::workloads::{self, BenchStore, ReadVia};

/// How much of everything to run.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Records of the batched append and read-all workloads.
    pub records: usize,
    /// Records per batch / write transaction of the batched append.
    pub per_batch: usize,
    /// Records of the single-record append.
    pub single_records: usize,
    /// Transactions of 10 records per repetition (no sync).
    pub transactions: usize,
    /// Synced commits per round.
    pub synced_commits: usize,
    /// Repetitions of each throughput workload, per engine.
    pub reps: usize,
    /// Rounds of each latency workload, per engine.
    pub rounds: usize,
    /// Wake-ups with the short gap, all rounds together, per engine.
    pub wake_short_samples: usize,
    /// Wake-ups with the long gap, all rounds together, per engine.
    pub wake_long_samples: usize,
    /// Samples dropped at the start of each wake-up round.
    pub warmup: usize,
    /// The short gap between records of the wake-up test, ns.
    pub short_gap_ns: u64,
    /// The long gap, ns.
    pub long_gap_ns: u64,
    /// How long oncelog's reader spins before it sleeps, with the short gap (with
    /// the long gap it sleeps at once).
    pub short_spin: Duration,
}

impl Sizes {
    /// The full run: 1,000,000 records, 5 repetitions.
    pub fn full() -> Sizes {
        Sizes {
            records: 1_000_000,
            per_batch: 1_000,
            single_records: 300_000,
            transactions: 100_000,
            synced_commits: 250,
            reps: 5,
            rounds: 5,
            wake_short_samples: 8_000,
            wake_long_samples: 4_000,
            warmup: 50,
            short_gap_ns: 50_000,
            long_gap_ns: 1_000_000,
            short_spin: Duration::from_micros(200),
        }
    }

    /// Tiny sizes: checks that everything runs, measures nothing.
    pub fn quick() -> Sizes {
        Sizes {
            records: 5_000,
            single_records: 2_000,
            transactions: 200,
            synced_commits: 10,
            reps: 2,
            rounds: 1,
            wake_short_samples: 100,
            wake_long_samples: 60,
            warmup: 20,
            ..Sizes::full()
        }
    }
}

/// An engine of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// oncelog itself.
    Oncelog,
    /// SQLite or LMDB.
    Peer(Peer),
}

/// The engines, in report order.
pub const ENGINES: [Engine; 3] = [
    Engine::Oncelog,
    Engine::Peer(Peer::Sqlite),
    Engine::Peer(Peer::Lmdb),
];

impl Engine {
    /// The name in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Oncelog => "oncelog",
            Engine::Peer(p) => p.name(),
        }
    }

    /// The name in the table.
    pub fn label(self) -> &'static str {
        match self {
            Engine::Oncelog => "oncelog",
            Engine::Peer(p) => p.label(),
        }
    }
}

/// One engine's wake-up figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wake {
    /// Latency percentiles: the median across rounds of each.
    pub latency: Latency,
    /// CPU the reader used while waiting for the paced records (see
    /// [`crate::wakeup::ReaderClock`]), in cores (1.0 = it kept a core busy): the
    /// median across rounds.
    pub reader_cores: f64,
    /// Median duration of the writer's append (or write transaction), ns.
    pub append_p50_ns: f64,
    /// Records received, all rounds together.
    pub records: usize,
}

/// One engine's figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Figures {
    /// Batched append, records per second.
    pub batched: Rate,
    /// Single-record append, records per second.
    pub single: Rate,
    /// Read-all, records per second.
    pub read_all: Rate,
    /// Transactions of 10 records without sync, transactions per second.
    pub transactions: Rate,
    /// Synced commits of 10 records: latency of one commit.
    pub synced: Latency,
    /// Synced commits per second (one committer), per round.
    pub synced_rate: Rate,
    /// Wake-up with the short gap.
    pub wake_short: Wake,
    /// Wake-up with the long gap.
    pub wake_long: Wake,
}

/// Everything one run measured.
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// The sizes.
    pub sizes: Sizes,
    /// Whether these are the `--quick` sizes.
    pub quick: bool,
    /// Cores of other work on the machine during the throughput workloads.
    pub foreign_throughput: f64,
    /// The same during the wake-up workloads.
    pub foreign_latency: f64,
    /// Each engine's figures, in the order of [`ENGINES`].
    pub figures: Vec<(Engine, Figures)>,
}

/// The engines' indexes for repetition `rep`: all of them, the first one rotating.
fn order(rep: usize) -> impl Iterator<Item = usize> {
    (0..ENGINES.len()).map(move |k| (rep + k) % ENGINES.len())
}

/// A store or database kept from a batched append for reading.
enum Kept {
    Oncelog(BenchStore),
    Peer(PeerDb),
}

/// Runs every workload on every engine and returns the figures. `progress` is told
/// what starts (for a line on stderr).
pub fn run(
    sizes: &Sizes,
    quick: bool,
    exe: &Relaunch,
    progress: &mut dyn FnMut(&str),
) -> Res<Report> {
    let s = sizes;
    let mut machine = machine::machine();
    progress(&format!(
        "payload: {} records of {KEY_LEN} + {VALUE_LEN} bytes",
        s.records
    ));
    let payload = Payload::new(s.records);
    let expected_sum = payload.value_sum();
    let n = s.records as f64;
    let mut figures = [Figures::default(); 3];

    let throughput_meter = util::CpuMeter::start();
    progress("batched append");
    let mut kept: [Option<Kept>; 3] = [None, None, None];
    let mut secs: [Vec<f64>; 3] = Default::default();
    for rep in 0..s.reps {
        for e in order(rep) {
            // Drop this engine's previous database before it makes the next one.
            kept[e] = None;
            let (t, k) = match ENGINES[e] {
                Engine::Oncelog => {
                    let run = workloads::batched_append(&payload, s.per_batch, false)?;
                    (run.secs, Kept::Oncelog(run.store))
                }
                Engine::Peer(p) => {
                    let (t, db) = p.batched_append(&payload, s.per_batch)?;
                    (t, Kept::Peer(db))
                }
            };
            secs[e].push(t);
            kept[e] = Some(k);
        }
    }
    for (f, secs) in figures.iter_mut().zip(&secs) {
        f.batched = Rate::from_runs(n, secs);
    }

    progress("read-all");
    let mut secs: [Vec<f64>; 3] = Default::default();
    for rep in 0..s.reps {
        for e in order(rep) {
            let t = match kept[e].as_ref().ok_or("no batched-append store")? {
                Kept::Oncelog(store) => {
                    workloads::read_all(store.partition(), &payload, expected_sum, ReadVia::Reader)?
                }
                Kept::Peer(db) => db.read_all(&payload, expected_sum)?,
            };
            secs[e].push(t);
        }
    }
    drop(kept);
    for (f, secs) in figures.iter_mut().zip(&secs) {
        f.read_all = Rate::from_runs(n, secs);
    }

    progress("single-record append");
    let single_n = s.single_records.min(s.records);
    let mut secs: [Vec<f64>; 3] = Default::default();
    for rep in 0..s.reps {
        for e in order(rep) {
            secs[e].push(match ENGINES[e] {
                Engine::Oncelog => workloads::single_append(&payload, single_n)?,
                Engine::Peer(p) => p.single_append(&payload, single_n)?,
            });
        }
    }
    for (f, secs) in figures.iter_mut().zip(&secs) {
        f.single = Rate::from_runs(single_n as f64, secs);
    }

    progress("transactions of 10 records, no sync");
    let mut secs: [Vec<f64>; 3] = Default::default();
    for rep in 0..s.reps {
        for e in order(rep) {
            secs[e].push(match ENGINES[e] {
                Engine::Oncelog => workloads::transactions(&payload, s.transactions, "written")?,
                Engine::Peer(p) => p.transactions(&payload, s.transactions)?,
            });
        }
    }
    for (f, secs) in figures.iter_mut().zip(&secs) {
        f.transactions = Rate::from_runs(s.transactions as f64, secs);
    }

    progress("synced commits of 10 records");
    // The first commits of a fresh database pay for its first pages and files.
    let synced_warmup = (s.synced_commits / 10).clamp(1, 5);
    let mut rounds: [Vec<Latency>; 3] = Default::default();
    let mut rates: [Vec<f64>; 3] = Default::default();
    for round in 0..s.rounds {
        for e in order(round) {
            let samples = match ENGINES[e] {
                Engine::Oncelog => {
                    workloads::synced_commit_latencies(&payload, s.synced_commits)?.0
                }
                Engine::Peer(p) => p.synced_commit_latencies(&payload, s.synced_commits)?,
            };
            let kept = &samples[synced_warmup.min(samples.len())..];
            let total_ns: u64 = kept.iter().sum();
            rounds[e].push(Latency::from_samples(kept, 0));
            rates[e].push(kept.len() as f64 / (total_ns.max(1) as f64 / 1e9));
        }
    }
    for (f, (rounds, rates)) in figures.iter_mut().zip(rounds.iter().zip(&rates)) {
        f.synced = Latency::median_of(rounds);
        f.synced_rate = Rate::from_rates(rates);
    }
    let foreign_throughput = throughput_meter.foreign_cores();

    let latency_meter = util::CpuMeter::start();
    progress(&format!(
        "wake-up latency across processes, gap {} µs",
        s.short_gap_ns / 1000
    ));
    let short = wake(s, exe, s.wake_short_samples, s.short_gap_ns, s.short_spin)?;
    progress(&format!(
        "wake-up latency across processes, gap {} µs",
        s.long_gap_ns / 1000
    ));
    let long = wake(s, exe, s.wake_long_samples, s.long_gap_ns, Duration::ZERO)?;
    for (f, (short, long)) in figures.iter_mut().zip(short.into_iter().zip(long)) {
        f.wake_short = short;
        f.wake_long = long;
    }
    let foreign_latency = latency_meter.foreign_cores();

    machine.load_after = machine::loadavg();
    Ok(Report {
        machine,
        sizes: *s,
        quick,
        foreign_throughput,
        foreign_latency,
        figures: ENGINES.into_iter().zip(figures).collect(),
    })
}

/// The wake-up test of every engine in `s.rounds` alternating rounds of `samples /
/// rounds` records `gap_ns` apart (oncelog's reader spinning up to `spin`).
fn wake(s: &Sizes, exe: &Relaunch, samples: usize, gap_ns: u64, spin: Duration) -> Res<[Wake; 3]> {
    let per_round = samples.div_ceil(s.rounds.max(1)) + s.warmup;
    let mut rounds: [Vec<Latency>; 3] = Default::default();
    let mut cores: [Vec<f64>; 3] = Default::default();
    let mut pooled: [WakeRun; 3] = Default::default();
    for round in 0..s.rounds {
        for e in order(round) {
            let run = match ENGINES[e] {
                Engine::Oncelog => wakeup::wake_latency(exe, per_round, s.warmup, gap_ns, spin)?,
                Engine::Peer(p) => p.wake_latency(exe, per_round, s.warmup, gap_ns)?,
            };
            cores[e].push(run.reader_cores());
            util::dump(
                &format!("peers-wake-{}-gap{gap_ns}-{round}", ENGINES[e].name()),
                &run.samples,
            );
            rounds[e].push(Latency::from_samples(&run.samples, 0));
            pooled[e].merge(run);
        }
    }
    let mut out = [Wake::default(); 3];
    for (e, w) in out.iter_mut().enumerate() {
        let summary = pooled[e].summary();
        *w = Wake {
            latency: Latency::median_of(&rounds[e]),
            reader_cores: Rate::from_rates(&cores[e]).median,
            append_p50_ns: summary.append_p50_ns,
            records: summary.records,
        };
    }
    Ok(out)
}

// --- the report -------------------------------------------------------------------

impl Report {
    fn disturbed(&self) -> bool {
        self.foreign_throughput > FOREIGN_OK || self.foreign_latency > FOREIGN_OK
    }

    fn oncelog(&self) -> &Figures {
        &self.figures[0].1
    }

    fn peers(&self) -> impl Iterator<Item = &(Engine, Figures)> {
        self.figures.iter().skip(1)
    }

    /// The report as a table for people.
    pub fn table(&self) -> String {
        let (m, s) = (&self.machine, &self.sizes);
        let mut out = String::new();
        let mut line = |l: String| {
            out.push_str(&l);
            out.push('\n');
        };
        line(format!(
            "oncelog bench: oncelog next to SQLite and LMDB, same records, same run{}",
            if self.quick {
                " (--quick: tiny sizes, not representative)"
            } else {
                ""
            }
        ));
        line(format!(
            "machine: {} x{} cores, Linux {}, {} at {}; load average {} before, {} after",
            m.cpu, m.cores, m.kernel, m.fs, m.tmp, m.load_before, m.load_after
        ));
        line(format!(
            "records: {} of a {KEY_LEN}-byte key and a {VALUE_LEN}-byte value; best (median) of {} repetitions, latencies: median of {} round{}; engines alternating",
            s.records,
            s.reps,
            s.rounds,
            if s.rounds == 1 { "" } else { "s" }
        ));
        line(format!(
            "other work on the machine meanwhile: {:.2} cores during the throughput part, {:.2} during the wake-ups{}",
            self.foreign_throughput,
            self.foreign_latency,
            if self.disturbed() {
                "  <-- DISTURBED: figures are not representative"
            } else {
                ""
            }
        ));
        line("oncelog: Partition::append (acks=written: no sync), Reader; transactional Producer (acks=written / acks=synced); Reader::poll".to_string());
        for p in Peer::ALL {
            line(p.settings());
        }
        line(String::new());

        let mut header = format!("{:<46}", "workload");
        for (e, _) in &self.figures {
            header.push_str(&format!("{:>18}", e.label()));
        }
        for (e, _) in self.peers() {
            header.push_str(&format!("{:>16}", format!("oncelog/{}", e.label())));
        }
        line(header);

        let o = self.oncelog();
        let rate_row = |name: String, scale: f64, get: fn(&Figures) -> Rate| {
            let mut row = format!("{name:<46}");
            for (_, f) in &self.figures {
                let r = get(f);
                row.push_str(&format!(
                    "{:>18}",
                    format!("{} ({})", num(r.best / scale), num(r.median / scale))
                ));
            }
            for (_, f) in self.peers() {
                row.push_str(&format!(
                    "{:>16}",
                    format!("{:.2}x", get(o).best / get(f).best)
                ));
            }
            row
        };
        let lat_row = |name: String, get: fn(&Figures) -> Latency| {
            let mut row = format!("{name:<46}");
            for (_, f) in &self.figures {
                let l = get(f);
                row.push_str(&format!(
                    "{:>18}",
                    format!("{} / {}", num(l.p50 / 1e3), num(l.p99 / 1e3))
                ));
            }
            for (_, f) in self.peers() {
                row.push_str(&format!(
                    "{:>16}",
                    format!(
                        "{:.2}x / {:.2}x",
                        get(o).p50 / get(f).p50,
                        get(o).p99 / get(f).p99
                    )
                ));
            }
            row
        };
        let cores_row = |get: fn(&Figures) -> Wake| {
            let mut row = format!("{:<46}", "  reader CPU while waiting (cores)");
            for (_, f) in &self.figures {
                row.push_str(&format!("{:>18.2}", get(f).reader_cores));
            }
            row
        };
        line(rate_row(
            format!("batched append, {}/txn (M rec/s)", s.per_batch),
            1e6,
            |f| f.batched,
        ));
        line(rate_row(
            "single-record append (M rec/s)".into(),
            1e6,
            |f| f.single,
        ));
        line(rate_row(
            "read-all, every value byte (M rec/s)".into(),
            1e6,
            |f| f.read_all,
        ));
        line(rate_row(
            "transactions of 10, no sync (k txn/s)".into(),
            1e3,
            |f| f.transactions,
        ));
        line(lat_row(
            "synced commit of 10, p50 / p99 (µs)".into(),
            |f| f.synced,
        ));
        line(rate_row("  synced commits (k/s)".into(), 1e3, |f| {
            f.synced_rate
        }));
        line(lat_row(
            format!("wake-up, gap {} µs, p50 / p99 (µs)", s.short_gap_ns / 1000),
            |f| f.wake_short.latency,
        ));
        line(cores_row(|f| f.wake_short));
        line(lat_row(
            format!("wake-up, gap {} µs, p50 / p99 (µs)", s.long_gap_ns / 1000),
            |f| f.wake_long.latency,
        ));
        line(cores_row(|f| f.wake_long));
        line(String::new());
        line("oncelog/peer: for rates the ratio of the bests (above 1: oncelog is faster); for latencies of the p50s and of the p99s (below 1: oncelog is faster).".to_string());
        line(format!(
            "wake-up: a child process commits one record at a time; oncelog's reader blocks in Reader::poll (spinning up to {} µs with the short gap, asleep on a futex at once with the long one); the peers' readers poll in a tight loop (a read transaction and a query each time), which keeps a core busy.",
            s.short_spin.as_micros()
        ));
        line("latency of a wake-up: from the writer's clock reading just before its append / write transaction to the reader holding the record.".to_string());
        out
    }

    /// The report as one JSON object for programs.
    pub fn json(&self) -> J {
        let (m, s) = (&self.machine, &self.sizes);
        let o = self.oncelog();
        let rate_workload = |unit: &str, get: fn(&Figures) -> Rate| {
            let mut items = vec![
                ("kind".to_string(), J::str("rate")),
                ("unit".to_string(), J::str(unit)),
            ];
            for (e, f) in &self.figures {
                items.push((e.name().to_string(), rate_json(&get(f))));
            }
            for (e, f) in self.peers() {
                items.push((
                    format!("oncelog_to_{}", e.name()),
                    J::obj([
                        ("best", J::num(get(o).best / get(f).best)),
                        ("median", J::num(get(o).median / get(f).median)),
                    ]),
                ));
            }
            J::Obj(items)
        };
        let lat_workload = |extra: &dyn Fn(&Figures) -> Vec<(&'static str, J)>,
                            get: fn(&Figures) -> Latency| {
            let mut items = vec![
                ("kind".to_string(), J::str("latency")),
                ("unit".to_string(), J::str("ns")),
            ];
            for (e, f) in &self.figures {
                items.push((e.name().to_string(), lat_json(&get(f)).extend(extra(f))));
            }
            for (e, f) in self.peers() {
                items.push((
                    format!("oncelog_to_{}", e.name()),
                    J::obj([
                        ("p50", J::num(get(o).p50 / get(f).p50)),
                        ("p99", J::num(get(o).p99 / get(f).p99)),
                    ]),
                ));
            }
            J::Obj(items)
        };
        let wake_extra = |w: Wake| {
            vec![
                ("reader_cpu_cores", J::num(w.reader_cores)),
                ("writer_append_p50_ns", J::num(w.append_p50_ns)),
                ("records", J::int(w.records as u64)),
            ]
        };
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
                    ("other_work_cores_throughput", J::num(self.foreign_throughput)),
                    ("other_work_cores_wakeups", J::num(self.foreign_latency)),
                    ("disturbed", J::Bool(self.disturbed())),
                ]),
            ),
            ("quick", J::Bool(self.quick)),
            (
                "sizes",
                J::obj([
                    ("records", J::int(s.records as u64)),
                    ("key_bytes", J::int(KEY_LEN as u64)),
                    ("value_bytes", J::int(VALUE_LEN as u64)),
                    ("records_per_batch", J::int(s.per_batch as u64)),
                    ("single_records", J::int(s.single_records as u64)),
                    ("transactions", J::int(s.transactions as u64)),
                    ("synced_commits_per_round", J::int(s.synced_commits as u64)),
                    ("repetitions", J::int(s.reps as u64)),
                    ("rounds", J::int(s.rounds as u64)),
                    ("wake_short_gap_ns", J::int(s.short_gap_ns)),
                    ("wake_long_gap_ns", J::int(s.long_gap_ns)),
                    ("oncelog_spin_short_gap_ns", J::int(s.short_spin.as_nanos() as u64)),
                ]),
            ),
            (
                "engines",
                J::obj(self.figures.iter().map(|(e, _)| {
                    let settings = match e {
                        Engine::Oncelog => "Partition::append and Reader (acks=written: no sync); transactional Producer (acks=written, acks=synced); Reader::poll".to_string(),
                        Engine::Peer(p) => p.settings(),
                    };
                    (e.name(), J::str(&settings))
                })),
            ),
            (
                "workloads",
                J::obj([
                    ("batched_append", rate_workload("records/s", |f| f.batched)),
                    ("single_append", rate_workload("records/s", |f| f.single)),
                    ("read_all", rate_workload("records/s", |f| f.read_all)),
                    (
                        "transactions_no_sync",
                        rate_workload("transactions/s", |f| f.transactions),
                    ),
                    (
                        "synced_commit",
                        lat_workload(
                            &|f: &Figures| {
                                vec![
                                    ("commits_per_s_best", J::num(f.synced_rate.best)),
                                    ("commits_per_s_median", J::num(f.synced_rate.median)),
                                ]
                            },
                            |f| f.synced,
                        ),
                    ),
                    (
                        "wakeup_short_gap",
                        lat_workload(&|f: &Figures| wake_extra(f.wake_short), |f| {
                            f.wake_short.latency
                        }),
                    ),
                    (
                        "wakeup_long_gap",
                        lat_workload(&|f: &Figures| wake_extra(f.wake_long), |f| {
                            f.wake_long.latency
                        }),
                    ),
                ]),
            ),
        ])
    }
}

/// A figure with three significant digits or so.
fn num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn rate_json(r: &Rate) -> J {
    J::obj([
        ("best_per_s", J::num(r.best)),
        ("median_per_s", J::num(r.median)),
        ("repetitions", J::int(r.reps as u64)),
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
