//! Simulated power loss. Producers acknowledging with `acks=synced` — plain,
//! idempotent, and transactional over two partitions — an exactly-once member
//! transforming the transactional output, and two `acks=written` producers run as
//! real processes with the sync-journal shim preloaded
//! (`oncelog_testkit::power_loss`), which copies each file and directory just
//! before every `fsync`/`fdatasync` of it. Then every process is killed at once and
//! the machine "loses power" (in every other round, only after a process opened and
//! closed the store cleanly). From the journal and the files as the processes left
//! them, crash images are built (unsynced sectors reach the disk or not, unsynced
//! directory entries appear or vanish, control blocks included) and each is opened
//! by this process, which never had the shim:
//!
//! * every record acknowledged with `acks=synced` is at its offset with its bytes;
//! * every transaction whose commit returned is visible to read_committed, whole;
//!   no transaction is visible in part; nothing aborted is visible;
//! * the exactly-once output matches the committed offsets, which cover every
//!   acknowledged offset commit;
//! * every batch reads back with its CRC, and the store takes new synced appends.
//!
//! Open time and the batches recovery verified are reported against the log and
//! its unsynced tail (never asserted).
//!
//! More rounds and images, and longer workloads:
//!
//! ```text
//! ONCELOG_POWER_LOSS_ROUNDS=6 ONCELOG_POWER_LOSS_IMAGES=10 ONCELOG_POWER_LOSS_RUN_MS=6000 \
//!     cargo test --release -p oncelog-testkit --test power_loss -- --nocapture
//! ```

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{role, seed, with, Proc};
use oncelog::record::RecordView;
use oncelog::txn::Coordinator;
use oncelog::{
    AppendOptions, Consumer, ConsumerConfig, Durability, Producer, ProducerConfig, Record, Store,
    StoreOptions,
};
use oncelog_testkit::power_loss::image::{self, ImageStats};
use oncelog_testkit::power_loss::journal::Journal;
use oncelog_testkit::power_loss::shim;
use oncelog_testkit::rng::XorShift;
use oncelog_testkit::torture::{KINDS, TOPICS};
use oncelog_testkit::torture_check::{self, Life, Promise, Report};

const LONG: Duration = Duration::from_secs(60);

/// The processes of a round: (kind index, id, acks). The `written` producers leave
/// an unsynced tail behind (and are promised nothing by a power loss); the `eos`
/// member consumes `tx` in group `eos` and commits its offsets in its output
/// transactions.
const CAST: [(usize, u32, &str); 7] = [
    (0, 0, "synced"),
    (1, 0, "synced"),
    (2, 0, "synced"),
    (2, 1, "synced"),
    (0, 1, "written"),
    (1, 1, "written"),
    (3, 0, "synced"),
];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A shimmed `torture` process.
fn shimmed(
    args: &[(&str, String)],
    store: &Path,
    lib: &Path,
    journal: &Path,
) -> std::process::Command {
    let mut cmd = role("torture", store, "-");
    with(&mut cmd, args);
    cmd.env("LD_PRELOAD", lib).env(shim::JOURNAL_ENV, journal);
    cmd
}

struct Running {
    kind: usize,
    id: u32,
    acks: &'static str,
    life: u32,
    proc: Proc,
    /// The lines up to `ready`.
    setup: Vec<String>,
}

impl Running {
    fn start(&mut self, store: &Path, lib: &Path, journal: &Path, rng: &mut XorShift) {
        let args = [
            ("kind", KINDS[self.kind].to_string()),
            ("id", self.id.to_string()),
            ("life", self.life.to_string()),
            ("seed", rng.next_u64().to_string()),
            ("pace-us", "500".to_string()),
            ("acks", self.acks.to_string()),
        ];
        self.proc = Proc::spawn(
            format!("{} {} life {}", KINDS[self.kind], self.id, self.life),
            shimmed(&args, store, lib, journal),
        );
        self.setup.clear();
        while self.setup.last().map(String::as_str) != Some("ready") {
            let line = self.proc.line(LONG).unwrap_or_else(|e| {
                panic!(
                    "{}: no ready ({e:?}): {}",
                    self.proc.name(),
                    self.proc.stderr()
                )
            });
            self.setup.push(line);
        }
    }
}

fn end(r: &mut Running) -> Life {
    r.proc.kill();
    let status = r.proc.wait(LONG);
    let mut lines = std::mem::take(&mut r.setup);
    lines.extend(r.proc.drain(LONG));
    Life {
        kind: r.kind,
        id: r.id,
        life: r.life,
        lines,
        killed: std::os::unix::process::ExitStatusExt::signal(&status) == Some(9),
        stderr: r.proc.stderr(),
    }
}

/// How a round's workload ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// Every process dies at once: the power loss hits a running workload.
    InFlight,
    /// Every process dies, then one opens and closes the store (recovery and a
    /// clean shutdown), then the power goes.
    AfterClose,
}

/// One workload under the shim; returns the histories. Half the rounds also kill
/// and restart one producer mid-way.
fn workload(
    store: &Path,
    lib: &Path,
    journal: &Path,
    ending: Ending,
    rng: &mut XorShift,
) -> Vec<Life> {
    let setup = [
        ("kind", "setup".to_string()),
        ("segment-bytes", "32768".to_string()),
    ];
    let mut p = Proc::spawn("setup", shimmed(&setup, store, lib, journal));
    let (status, lines) = p.finish(LONG);
    assert!(status.success(), "setup: {lines:?} {}", p.stderr());

    let mut running: Vec<Running> = CAST
        .iter()
        .map(|&(kind, id, acks)| {
            let mut r = Running {
                kind,
                id,
                acks,
                life: 0,
                proc: Proc::spawn("placeholder", std::process::Command::new("true")),
                setup: Vec::new(),
            };
            r.start(store, lib, journal, rng);
            r
        })
        .collect();
    let mut lives = Vec::new();
    let ms = env_or("ONCELOG_POWER_LOSS_RUN_MS", 1500) as u64;
    let run = Duration::from_millis(rng.range(ms, 2 * ms));
    if rng.chance(50) {
        std::thread::sleep(run / 2);
        let r = &mut running[rng.range(0, CAST.len() as u64 - 1) as usize];
        lives.push(end(r));
        r.life += 1;
        r.start(store, lib, journal, rng);
        std::thread::sleep(run / 2);
    } else {
        std::thread::sleep(run);
    }
    // The power loss: everyone dies at once.
    for r in running.iter_mut() {
        r.proc.kill();
    }
    for r in running.iter_mut() {
        lives.push(end(r));
    }
    if ending == Ending::AfterClose {
        let mut p = Proc::spawn(
            "close",
            shimmed(&[("kind", "close".to_string())], store, lib, journal),
        );
        let (status, lines) = p.finish(LONG);
        assert!(status.success(), "close: {lines:?} {}", p.stderr());
    }
    lives
}

/// What opening and checking one image found.
struct Checked {
    open: Duration,
    verified_batches: u64,
    truncations: u64,
    report: Report,
}

/// Opens the image at `dir`, finishes what the dead producers left open, checks
/// the log against `lives`, and appends to every partition.
fn check_image(dir: &Path, lives: &[Life], promise: Promise) -> Result<Checked, String> {
    let t = Instant::now();
    let store = Store::open(dir, StoreOptions::default()).map_err(|e| format!("open: {e}"))?;
    let open = t.elapsed();
    let (mut verified_batches, mut truncations) = (0, 0);
    for (topic, partitions) in TOPICS {
        for p in 0..partitions {
            let m = store
                .partition(topic, p)
                .map_err(|e| e.to_string())?
                .metrics();
            verified_batches += m.recovery_verified_batches;
            truncations += m.recovery_truncations;
        }
    }
    // What a transactional id's next holder and a held-back read_committed reader
    // would do: finish known transactions, abort orphans.
    for id in ["tx-0", "tx-1", "eos-0"] {
        let producer = Producer::new(
            &store,
            ProducerConfig::from_pairs([("transactional.id", id)]).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        producer
            .init_transactions()
            .map_err(|e| format!("init_transactions {id}: {e}"))?;
        producer.close().map_err(|e| e.to_string())?;
    }
    let coordinator = Coordinator::open(&store, Durability::Synced).map_err(|e| e.to_string())?;
    coordinator.finish_abandoned().map_err(|e| e.to_string())?;
    for (topic, partitions) in TOPICS {
        for p in 0..partitions {
            let part = store.partition(topic, p).map_err(|e| e.to_string())?;
            coordinator
                .abort_orphans(&part)
                .map_err(|e| format!("abort orphans in {topic}-{p}: {e}"))?;
        }
    }
    let report = torture_check::check_for(&store, lives, promise);
    // The store takes new synced appends, which read back.
    for (topic, partitions) in TOPICS {
        for p in 0..partitions {
            let part = store.partition(topic, p).map_err(|e| e.to_string())?;
            let options = AppendOptions {
                durability: Some(Durability::Synced),
                ..AppendOptions::default()
            };
            let info = part
                .append_with(&[Record::value(b"after the power loss")], &options)
                .map_err(|e| format!("append to {topic}-{p}: {e}"))?;
            let mut r = part.reader(info.base_offset).map_err(|e| e.to_string())?;
            let b = r
                .next_batch()
                .map_err(|e| e.to_string())?
                .ok_or("the new record does not read back")?;
            let rec: RecordView<'_> = b
                .records()
                .next()
                .ok_or("an empty batch")?
                .map_err(|e| e.to_string())?;
            if rec.offset != info.base_offset || rec.value != Some(&b"after the power loss"[..]) {
                return Err(format!("{topic}-{p}: the new record reads back wrong"));
            }
        }
    }
    // The consumer group works: a new member takes `tx` over and polls.
    let mut consumer = Consumer::new(
        &store,
        ConsumerConfig::from_pairs([
            ("group.id", "eos"),
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "earliest"),
        ])
        .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    consumer
        .subscribe(&["tx"])
        .map_err(|e| format!("subscribe: {e}"))?;
    consumer
        .poll(Duration::from_millis(10))
        .map_err(|e| format!("poll in group eos: {e}"))?;
    drop(consumer);
    store.close().map_err(|e| e.to_string())?;
    Ok(Checked {
        open,
        verified_batches,
        truncations,
        report,
    })
}

/// Plants a loss no power loss may cause: the newest non-empty segment of every
/// `plain` and `idem` partition loses the second half of its batches.
fn plant_loss(image: &Path) {
    for topic in ["plain", "idem"] {
        for p in 0..2 {
            let dir = image.join(format!("{topic}-{p}"));
            let mut logs: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|path| path.extension().is_some_and(|e| e == "log"))
                .collect();
            logs.sort();
            for log in logs.iter().rev() {
                let bytes = std::fs::read(log).unwrap();
                let used = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
                if used > 0 {
                    let f = std::fs::OpenOptions::new().write(true).open(log).unwrap();
                    f.set_len(used as u64 / 2).unwrap();
                    break;
                }
            }
        }
    }
}

/// What one image measured.
struct Figure {
    ending: Ending,
    stats: ImageStats,
    open: Duration,
    /// Batches recovery verified (CRC) in all partitions.
    verified: u64,
    /// Whether recovery cut a torn tail somewhere.
    cut: bool,
    /// Data records in the topics after the power loss.
    records: u64,
}

/// Prints one line per image and, per ending, the means: the open time and the
/// batches recovery verified against the log's size and its unsynced tail.
fn print_figures(figures: &[Figure]) {
    eprintln!(
        "{:>10} {:>6} {:>9} {:>8} {:>9} {:>9} {:>7} {:>7} {:>9} {:>8}",
        "ending",
        "sector",
        "log KiB",
        "records",
        "unsynced",
        "lost",
        "dropped",
        "revived",
        "verified",
        "open ms"
    );
    for f in figures {
        let s = &f.stats;
        eprintln!(
            "{:>10} {:>6} {:>9.1} {:>8} {:>9.1} {:>9.1} {:>7} {:>7} {:>9} {:>8.2}{}",
            format!("{:?}", f.ending),
            s.sector,
            s.log_bytes as f64 / 1024.0,
            f.records,
            s.unsynced_log_bytes as f64 / 1024.0,
            s.lost_log_bytes as f64 / 1024.0,
            s.dropped,
            s.resurrected,
            f.verified,
            f.open.as_secs_f64() * 1e3,
            if f.cut { " cut" } else { "" }
        );
    }
    for ending in [Ending::InFlight, Ending::AfterClose] {
        let these: Vec<&Figure> = figures.iter().filter(|f| f.ending == ending).collect();
        if these.is_empty() {
            continue;
        }
        let n = these.len() as f64;
        let mean = |g: &dyn Fn(&Figure) -> f64| these.iter().map(|f| g(f)).sum::<f64>() / n;
        let mut opens: Vec<f64> = these.iter().map(|f| f.open.as_secs_f64() * 1e3).collect();
        opens.sort_by(f64::total_cmp);
        eprintln!(
            "{ending:?}: {} images; means: log {:.0} KiB, {:.0} records, unsynced tail {:.1} KiB, \
             {:.0} batches verified, tail cut in {:.0}% ; open {:.1} ms median, {:.1} ms max",
            these.len(),
            mean(&|f| f.stats.log_bytes as f64 / 1024.0),
            mean(&|f| f.records as f64),
            mean(&|f| f.stats.unsynced_log_bytes as f64 / 1024.0),
            mean(&|f| f.verified as f64),
            mean(&|f| if f.cut { 100.0 } else { 0.0 }),
            opens[opens.len() / 2],
            opens[opens.len() - 1],
        );
    }
}

#[test]
fn a_power_loss_keeps_every_synced_acknowledgement() {
    let rounds = env_or("ONCELOG_POWER_LOSS_ROUNDS", 2);
    let images = env_or("ONCELOG_POWER_LOSS_IMAGES", 10);
    let seed = seed(0x9041_e055);
    let mut rng = XorShift::new(seed);
    let t0 = Instant::now();
    let (mut checked, mut acked, mut acked_synced, mut txns) = (0usize, 0u64, 0u64, 0u64);
    let mut eos_inputs = 0u64;
    let mut bad: Vec<String> = Vec::new();
    let mut figures: Vec<Figure> = Vec::new();
    for round in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let lib = shim::build(dir.path()).expect("the sync journal shim builds");
        let (store, journal_dir) = (dir.path().join("store"), dir.path().join("journal"));
        std::fs::create_dir(&store).unwrap();
        std::fs::create_dir(&journal_dir).unwrap();
        // After a clean close everything acknowledged was synced.
        let (ending, promise) = if round % 2 == 0 {
            (Ending::InFlight, Promise::PowerLoss)
        } else {
            (Ending::AfterClose, Promise::CleanShutdown)
        };
        let lives = workload(&store, &lib, &journal_dir, ending, &mut rng);
        let synced_acks = lives
            .iter()
            .filter(|l| l.lines.iter().any(|x| x == "acks synced"))
            .flat_map(|l| &l.lines)
            .filter(|x| x.starts_with("ack "))
            .count() as u64;
        let journal = Journal::read(&journal_dir).unwrap();
        assert!(
            journal.unmodelled.is_empty(),
            "syncs the model does not cover: {:?}",
            journal.unmodelled
        );
        let (files, dirs) = journal.counts();
        assert!(
            files > 0 && dirs > 0,
            "the shim journaled nothing: is LD_PRELOAD honoured?"
        );
        if round == 0 {
            // The checker is not vacuous: an image that lost synced records fails.
            let out = dir.path().join("planted");
            image::build(&store, &journal, &out, &mut XorShift::new(rng.next_u64())).unwrap();
            plant_loss(&out);
            match check_image(&out, &lives, promise) {
                Ok(c) => {
                    assert!(
                        c.report.counts.lost > 0,
                        "a planted loss went unseen:\n{}",
                        c.report
                    );
                    eprintln!(
                        "the planted loss: {} lost records counted",
                        c.report.counts.lost
                    );
                }
                Err(e) => eprintln!("the planted loss fails the open: {e}"),
            }
            std::fs::remove_dir_all(&out).unwrap();
        }
        for i in 0..images {
            let image_seed = rng.next_u64();
            let out = dir.path().join(format!("image-{i}"));
            let stats =
                image::build(&store, &journal, &out, &mut XorShift::new(image_seed)).unwrap();
            match check_image(&out, &lives, promise) {
                Ok(c) => {
                    let zero = c.report.counts.must_be_zero();
                    let anomalies: Vec<_> = zero.iter().filter(|(_, n)| *n > 0).collect();
                    if !anomalies.is_empty() {
                        bad.push(format!("round {round} ({ending:?}) image {i} (image seed {image_seed}): {anomalies:?}\n{}", c.report));
                    }
                    let t = &c.report.totals;
                    acked += t.acked.iter().sum::<u64>();
                    acked_synced += synced_acks;
                    txns += t.txns.0;
                    eos_inputs += t.eos_inputs;
                    // A clean shutdown leaves no unsynced tail: recovery has nothing to
                    // verify (the work is the tail's, not the log's).
                    if ending == Ending::AfterClose && c.verified_batches > 0 {
                        bad.push(format!(
                            "round {round} ({ending:?}) image {i} (image seed {image_seed}): \
                             recovery verified {} batches after a clean shutdown",
                            c.verified_batches
                        ));
                    }
                    figures.push(Figure {
                        ending,
                        stats,
                        open: c.open,
                        verified: c.verified_batches,
                        cut: c.truncations > 0,
                        records: t.log_records,
                    });
                }
                Err(e) => bad.push(format!(
                    "round {round} ({ending:?}) image {i} (image seed {image_seed}): {e}"
                )),
            }
            checked += 1;
            if bad.is_empty() {
                std::fs::remove_dir_all(&out).unwrap();
            }
        }
        if !bad.is_empty() {
            let kept = dir.keep();
            eprintln!("kept the failing round in {}", kept.display());
            break;
        }
    }
    eprintln!(
        "power loss: seed {seed}, {rounds} rounds, {checked} images in {:.1} s; checked {acked} acknowledged records \
         ({acked_synced} with acks=synced), {txns} committed transactions and {eos_inputs} input records \
         below the exactly-once member's committed offsets; anomalies: {}",
        t0.elapsed().as_secs_f64(),
        bad.len()
    );
    print_figures(&figures);
    assert!(bad.is_empty(), "seed {seed}: {}", bad.join("\n"));
    assert!(acked > 0 && txns > 0, "the producers did nothing");
}
