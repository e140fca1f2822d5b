//! A writer process is killed 200 times in a row at random instants, often inside
//! the append lock (failpoints stretch the locked section, or abort right in it).
//! After every kill another process must append and read back within 100 ms (the
//! dead holder is detected and the partition repaired), every batch the killed
//! writer acknowledged through its pipe must be at exactly its offsets, and a
//! follower reading throughout must never see a torn or corrupt record.
//!
//! A second test kills a writer that had the store to itself, so that the next
//! process is the store's first opener and recovers the partition from the files.

mod common;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{harness, role, seed, with, Proc};
use oncelog::{Store, StoreOptions, TopicConfig};
use oncelog_testkit::harness::Ack;
use oncelog_testkit::rng::XorShift;

const KILLS: u32 = 200;
/// A bound on open + append + read of the process that comes after a kill: ten
/// times the 100 ms the design promises, so that a busy machine does not fail the
/// test while a recovery that rescans the log (seconds) still does. The figure
/// itself is printed (the slowest of the run) and reported in RELIABILITY.md.
const RECOVERY_BOUND: Duration = Duration::from_secs(1);
const LONG: Duration = Duration::from_secs(30);
const PROBE_IDS: u32 = 1_000_000;

/// How the writer of one round runs and dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// No failpoint; SIGKILL at a random instant.
    Plain,
    /// 2 ms asleep inside the lock before each publish; SIGKILL.
    SlowPublish,
    /// 1 ms asleep inside the lock before encoding; SIGKILL.
    SlowEncode,
    /// 20 ms asleep in each roll, between trimming the old segment and creating the
    /// new one; SIGKILL.
    SlowRoll,
    /// Aborts inside the lock, batch written but not published.
    AbortBeforePublish,
    /// Aborts inside the lock right after publishing (nothing acknowledged).
    AbortAfterPublish,
}

impl Mode {
    fn pick(rng: &mut XorShift) -> Mode {
        match rng.range(0, 99) {
            0..=19 => Mode::Plain,
            20..=44 => Mode::SlowPublish,
            45..=54 => Mode::SlowEncode,
            55..=74 => Mode::SlowRoll,
            75..=87 => Mode::AbortBeforePublish,
            _ => Mode::AbortAfterPublish,
        }
    }

    fn failpoints(self) -> Option<&'static str> {
        match self {
            Mode::Plain => None,
            Mode::SlowPublish => Some("append.before_publish=sleep:2000"),
            Mode::SlowEncode => Some("append.before_encode=sleep:1000"),
            Mode::SlowRoll => Some("roll.after_trim=sleep:20000"),
            Mode::AbortBeforePublish => Some("append.before_publish=abort"),
            Mode::AbortAfterPublish => Some("append.after_publish=abort"),
        }
    }

    fn aborts(self) -> bool {
        matches!(self, Mode::AbortBeforePublish | Mode::AbortAfterPublish)
    }

    /// Longest random delay between the writer's `ready` and the SIGKILL. Short:
    /// the log grows less, and opening a partition costs time per segment (see
    /// `many_segments.rs`), which is not what this test measures.
    fn max_delay_us(self) -> u64 {
        match self {
            Mode::SlowRoll => 60_000,
            Mode::SlowPublish => 20_000,
            _ => 10_000,
        }
    }
}

struct Probe {
    base: i64,
    /// Microseconds to open the store, to append, to read back.
    steps: [u64; 3],
    repairs: u64,
}

fn probe(dir: &Path, id: u32, stop: bool) -> Probe {
    let mut cmd = role("probe", dir, "t");
    with(&mut cmd, &[("id", id.to_string()), ("seq", "0".into())]);
    if stop {
        cmd.arg("--stop");
    }
    let mut p = Proc::spawn(format!("probe {id}"), cmd);
    let (status, lines) = p.finish(LONG);
    assert!(
        status.success(),
        "probe {id}: {status} {lines:?}; stderr: {}",
        p.stderr()
    );
    let line = lines
        .iter()
        .find(|l| l.starts_with("probe "))
        .expect("probe line");
    let n: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    Probe {
        base: n[0] as i64,
        steps: [n[1], n[2], n[3]],
        repairs: n[4],
    }
}

/// What the kill rounds left for the final checks.
#[derive(Default)]
struct Rounds {
    /// Acknowledged batches per writer id (killed writers and probes).
    acked: HashMap<u32, Vec<Ack>>,
    /// Per mode: rounds, and rounds after which the next holder repaired.
    by_mode: HashMap<String, (u32, u32)>,
    slowest: Duration,
    slowest_steps: [u64; 3],
    slowest_wall: Duration,
}

/// Runs `kills` rounds of: start a writer, kill it (or let it abort) inside or
/// outside the lock, then probe with another process. With a `follower`, another
/// process keeps the store open (so a dead holder is repaired under the lock);
/// without, the probe is the store's first opener and recovers the partition.
fn kill_rounds(
    dir: &Path,
    kills: u32,
    rng: &mut XorShift,
    mut follower: Option<&mut Proc>,
) -> Rounds {
    let live = follower.is_some();
    let mut r = Rounds::default();
    let mut repairs_seen = 0;
    for round in 0..kills {
        if let Some(f) = follower.as_deref_mut() {
            // It stops only at a bad record (or the end of the test).
            f.assert_running();
        }
        let mode = Mode::pick(rng);
        let id = round + 1;
        let mut cmd = role("append", dir, "t");
        with(
            &mut cmd,
            &[
                ("id", id.to_string()),
                ("count", "1000000".into()),
                ("batch", rng.range(1, 4).to_string()),
                ("value-size", rng.range(16, 120).to_string()),
            ],
        );
        if let Some(fp) = mode.failpoints() {
            cmd.env("ONCELOG_FAILPOINTS", fp);
        }
        let mut writer = Proc::spawn(format!("writer {id} ({mode:?})"), cmd);
        writer.expect("ready", LONG);
        if mode.aborts() {
            let status = writer.wait(LONG);
            assert_eq!(
                status.signal(),
                Some(libc::SIGABRT),
                "{}: {status}; stderr: {}",
                writer.name(),
                writer.stderr()
            );
        } else {
            std::thread::sleep(Duration::from_micros(rng.range(0, mode.max_delay_us())));
            writer.kill();
            let status = writer.wait(LONG);
            assert!(
                status.signal() == Some(libc::SIGKILL) || status.success(),
                "{}: {status}{}; stderr: {}",
                writer.name(),
                if status.signal() == Some(libc::SIGBUS) {
                    " (it wrote through a mapping past the end of a file; in round 0, \
                     see inherited_lock_descriptor.rs: the other test of this file may \
                     have spawned a child while this one closed its store)"
                } else {
                    ""
                },
                writer.stderr()
            );
        }
        let killed = Instant::now();
        let lines = writer.drain(LONG);
        assert!(
            !lines.iter().any(|l| l.starts_with("err")),
            "{}: {lines:?}",
            writer.name()
        );
        r.acked.insert(id, harness::acks(&lines));

        // The next process: open, append (taking over the lock), read back.
        let p = probe(dir, PROBE_IDS + round, false);
        let wall = killed.elapsed();
        let took = Duration::from_micros(p.steps.iter().sum());
        assert!(
            took < RECOVERY_BOUND,
            "round {round} ({mode:?}): the next process needed {took:?} to open, append and \
             read (open, append, read in us: {:?})",
            p.steps
        );
        if took > r.slowest {
            r.slowest = took;
            r.slowest_steps = p.steps;
        }
        r.slowest_wall = r.slowest_wall.max(wall);
        r.acked.insert(
            PROBE_IDS + round,
            vec![Ack {
                base: p.base,
                last: p.base,
                seq: 0,
            }],
        );
        let repaired = p.repairs > repairs_seen;
        if live && mode.aborts() {
            assert!(
                repaired,
                "round {round} ({mode:?}): the writer died holding the lock, but the next \
                 holder did not repair (repairs {repairs_seen} -> {})",
                p.repairs
            );
        }
        if live {
            repairs_seen = p.repairs;
        }
        let entry = r.by_mode.entry(format!("{mode:?}")).or_default();
        entry.0 += 1;
        entry.1 += u32::from(repaired);
    }
    r
}

/// The final checks on the whole log, as a fresh first opener recovers it: dense,
/// unique, every writer's acknowledged batches at their offsets, every writer's
/// records a gapless prefix of its sequence. Returns the entries and the number of
/// records that were appended but never acknowledged.
fn verify(dir: &Path, acked: &HashMap<u32, Vec<Ack>>) -> (Vec<harness::Entry>, i64) {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let part = store.partition("t", 0).unwrap();
    let entries = harness::read_all(&part);
    assert_eq!(part.end_offset(), entries.len() as i64);
    harness::assert_dense_and_unique(&entries, 0);
    let writers = harness::by_writer(&entries);
    for w in writers.keys() {
        assert!(acked.contains_key(w), "records of unknown writer {w}");
    }
    let mut unacked = 0;
    for (id, acks) in acked {
        let n = harness::assert_writer(&entries, 0, &writers, *id, acks);
        let acked_records: i64 = acks.iter().map(|a| a.last - a.base + 1).sum();
        unacked += n as i64 - acked_records;
    }
    (entries, unacked)
}

fn create_topic(dir: &Path) {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let config =
        TopicConfig::from_pairs([("segment.bytes", "65536"), ("index.interval.bytes", "1024")])
            .unwrap();
    store.create_topic("t", 1, config).unwrap();
}

#[test]
fn a_writer_killed_at_any_instant_loses_nothing_acknowledged() {
    let started = Instant::now();
    let mut rng = XorShift::new(seed(0x0DE1_C10C));
    let dir = tempfile::tempdir().unwrap();
    create_topic(dir.path());
    // Follows the log for the whole test; it keeps the store open, so every kill is
    // handled by the live repair path, not by a first opener's recovery.
    let mut follower = {
        let mut cmd = role("read", dir.path(), "t");
        with(&mut cmd, &[("timeout-ms", "300000".into())]);
        Proc::spawn("follower", cmd)
    };
    follower.expect("ready", LONG);

    let r = kill_rounds(dir.path(), KILLS, &mut rng, Some(&mut follower));

    // Tell the follower to finish, and collect what it saw.
    let stop = probe(dir.path(), 0, true);
    let (status, lines) = follower.finish(LONG);
    assert!(
        status.success(),
        "follower: {status}, last lines {:?}; stderr: {}",
        &lines[lines.len().saturating_sub(3)..],
        follower.stderr()
    );
    assert!(
        lines.contains(&format!("stop {}", stop.base)),
        "follower did not reach the stop record at {}",
        stop.base
    );
    let followed = harness::reader_entries(&lines);

    let (entries, unacked) = verify(dir.path(), &r.acked);
    assert_eq!(entries.len() as i64, stop.base + 1);
    assert_eq!(
        followed.as_slice(),
        &entries[..entries.len() - 1],
        "the follower saw other records than the log holds"
    );
    let repaired_kills: u32 = r
        .by_mode
        .iter()
        .filter(|(m, _)| !m.starts_with("Abort"))
        .map(|(_, v)| v.1)
        .sum();
    assert!(
        repaired_kills > 0,
        "no SIGKILL ever landed inside the append lock: {:?}",
        r.by_mode
    );
    eprintln!(
        "{KILLS} kills, {} records ({unacked} appended but not acknowledged), \
         rounds and repairs by mode {:?}; slowest recovery (open+append+read) \
         {:?} (us {:?}), slowest kill-to-probe-exit {:?}; total {:?}",
        entries.len(),
        r.by_mode,
        r.slowest,
        r.slowest_steps,
        r.slowest_wall,
        started.elapsed()
    );
}

#[test]
fn a_writer_killed_while_alone_is_recovered_by_the_next_opener() {
    let started = Instant::now();
    let mut rng = XorShift::new(seed(0xA1_0DE5));
    let dir = tempfile::tempdir().unwrap();
    create_topic(dir.path());
    let kills = KILLS / 4;
    let r = kill_rounds(dir.path(), kills, &mut rng, None);
    let (entries, unacked) = verify(dir.path(), &r.acked);
    eprintln!(
        "{kills} kills of a lone writer, {} records ({unacked} appended but not \
         acknowledged); slowest recovery (open+append+read) {:?} (us {:?}); total {:?}",
        entries.len(),
        r.slowest,
        r.slowest_steps,
        started.elapsed()
    );
}
