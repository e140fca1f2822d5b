//! Crash torture: plain, idempotent and transactional producers, exactly-once
//! consume-transform-produce members and read_committed readers share one store;
//! one of them at a time is killed with SIGKILL at a random instant and restarted,
//! `ONCELOG_TORTURE_KILLS` times (100 by default). Every process prints a history
//! of what it did and was told; the checker (`oncelog_testkit::torture_check`)
//! holds the histories against the final log and counts lost acknowledged
//! records, duplicates, aborted records seen, consumers reading out of order or
//! skipping, and offsets with two values. All must be 0 (plain producers may
//! duplicate).
//!
//! The long run, 1,000 kills:
//!
//! ```text
//! ONCELOG_TORTURE_KILLS=1000 cargo test --release -p oncelog-testkit --test torture -- --nocapture
//! ```
//!
//! The seed is printed; `ONCELOG_TEST_SEED` repeats a run's kill schedule.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{role, seed, with, Proc};
use oncelog::{Producer, ProducerConfig, Store, StoreOptions, TopicConfig};
use oncelog_testkit::rng::XorShift;
use oncelog_testkit::torture::{KINDS, PARTITIONS, TOPICS};
use oncelog_testkit::torture_check::{self, Life};

const LONG: Duration = Duration::from_secs(60);

/// The processes of a run: (kind index, how many).
const CAST: [(usize, u32); 5] = [(0, 1), (1, 1), (2, 2), (3, 2), (4, 1)];

struct Slot {
    kind: usize,
    id: u32,
    life: u32,
    proc: Proc,
}

/// Failpoints of a "slow" life: pauses inside the append lock, between a
/// transaction's decision and its markers, and in a segment roll, so that kills
/// land there too.
const SLOW: &str = "append.before_publish=sleep:2000,txn.after_prepare_commit=sleep:5000,roll.after_trim=sleep:5000";

/// Starts life `life` of process `id` of `kind`; a third of the lives are slow
/// (see [`SLOW`]) and a third of the producer lives acknowledge only once synced.
fn spawn(dir: &Path, kind: usize, id: u32, life: u32, rng: &mut XorShift) -> Proc {
    let mut cmd = role("torture", dir, "-");
    let acks = if rng.chance(33) { "synced" } else { "written" };
    with(
        &mut cmd,
        &[
            ("kind", KINDS[kind].into()),
            ("id", id.to_string()),
            ("life", life.to_string()),
            ("seed", rng.next_u64().to_string()),
            ("pace-us", "1000".into()),
            ("acks", acks.into()),
        ],
    );
    if rng.chance(33) {
        cmd.env("ONCELOG_FAILPOINTS", SLOW);
    }
    Proc::spawn(format!("{} {id} life {life}", KINDS[kind]), cmd)
}

/// Ends the life in `slot` (killing it if `kill`) and returns its history.
fn end(slot: &mut Slot, kill: bool) -> Life {
    if kill {
        slot.proc.kill();
    }
    let status = slot.proc.wait(LONG);
    let lines = slot.proc.drain(LONG);
    let killed = kill && std::os::unix::process::ExitStatusExt::signal(&status) == Some(9);
    Life {
        kind: slot.kind,
        id: slot.id,
        life: slot.life,
        lines,
        killed,
        stderr: slot.proc.stderr(),
    }
}

/// Finishes whatever transaction each transactional id left open.
fn resolve(store: &Store, ids: &[String]) {
    for id in ids {
        let producer = Producer::new(
            store,
            ProducerConfig::from_pairs([("transactional.id", id.as_str())]).unwrap(),
        )
        .unwrap();
        producer.init_transactions().unwrap();
        producer.close().unwrap();
    }
}

/// Offsets of `topic`-`p` a read_committed reader returns, as `<p>:<o>`, or the
/// values of `eos-out`.
fn committed(store: &Store, topic: &str, p: u32, values: bool) -> BTreeSet<String> {
    let part = store.partition(topic, p).unwrap();
    let mut r = part
        .reader(part.start_offset())
        .unwrap()
        .read_committed(true);
    let mut out = BTreeSet::new();
    while let Some(b) = r.next_batch().unwrap() {
        if b.header().is_control() {
            continue;
        }
        for rec in b.records() {
            let rec = rec.unwrap();
            out.insert(if values {
                String::from_utf8_lossy(rec.value.unwrap_or_default()).into_owned()
            } else {
                format!("{p}:{}", rec.offset)
            });
        }
    }
    out
}

#[test]
fn processes_killed_at_random_lose_nothing_and_duplicate_nothing() {
    let kills: usize = std::env::var("ONCELOG_TORTURE_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let seed = seed(0x7047_0e00);
    let mut rng = XorShift::new(seed);
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    for (topic, partitions) in TOPICS {
        // Small segments, so that segments roll under the kills too.
        let config = TopicConfig {
            segment_bytes: 256 * 1024,
            ..TopicConfig::default()
        };
        store.create_topic(topic, partitions, config).unwrap();
    }

    let mut slots: Vec<Slot> = CAST
        .iter()
        .flat_map(|&(kind, n)| (0..n).map(move |id| (kind, id)))
        .map(|(kind, id)| Slot {
            kind,
            id,
            life: 0,
            proc: spawn(dir.path(), kind, id, 0, &mut rng),
        })
        .collect();
    let mut lives: Vec<Life> = Vec::new();
    let mut killed = [0usize; KINDS.len()];
    let mut exited = [0usize; KINDS.len()];
    let mut done = 0;
    while done < kills {
        std::thread::sleep(Duration::from_millis(rng.range(5, 150)));
        // Restart any process that ended by itself (its history says why).
        for slot in slots.iter_mut() {
            if slot.proc.try_status().is_some() {
                lives.push(end(slot, false));
                exited[slot.kind] += 1;
                slot.life += 1;
                slot.proc = spawn(dir.path(), slot.kind, slot.id, slot.life, &mut rng);
            }
        }
        let i = rng.range(0, slots.len() as u64 - 1) as usize;
        let slot = &mut slots[i];
        lives.push(end(slot, true));
        killed[slot.kind] += 1;
        done += 1;
        slot.life += 1;
        slot.proc = spawn(dir.path(), slot.kind, slot.id, slot.life, &mut rng);
    }
    let torture_time = t0.elapsed();

    // Stop everyone, finish what they left open, then let the exactly-once members
    // transform every committed input record.
    for slot in slots.iter_mut() {
        lives.push(end(slot, true));
        slot.life += 1;
    }
    let txn_ids: Vec<String> = (0..2).map(|i| format!("tx-{i}")).collect();
    let eos_ids: Vec<String> = (0..2).map(|i| format!("eos-{i}")).collect();
    resolve(&store, &txn_ids);
    resolve(&store, &eos_ids);
    let inputs: BTreeSet<String> = (0..PARTITIONS)
        .flat_map(|p| committed(&store, "tx", p, false))
        .collect();
    let mut members: Vec<Slot> = slots
        .iter()
        .filter(|s| KINDS[s.kind] == "eos")
        .map(|s| Slot {
            kind: s.kind,
            id: s.id,
            life: s.life,
            proc: spawn(dir.path(), s.kind, s.id, s.life, &mut rng),
        })
        .collect();
    let catch_up = Instant::now();
    loop {
        let out = committed(&store, "eos-out", 0, true);
        if inputs.is_subset(&out) {
            break;
        }
        if catch_up.elapsed() > LONG {
            eprintln!(
                "the exactly-once members did not catch up: {} of {} inputs out",
                inputs.intersection(&out).count(),
                inputs.len()
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for m in members.iter_mut() {
        lives.push(end(m, true));
    }
    resolve(&store, &eos_ids);

    let report = torture_check::check(&store, &lives);
    let elapsed = t0.elapsed();
    eprintln!(
        "torture: seed {seed}, {kills} kills in {:.1} s (whole run {:.1} s)",
        torture_time.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    eprintln!(
        "{:<8} {:>6} {:>6} {:>8}",
        "kind", "procs", "kills", "exited"
    );
    for (kind, n) in CAST {
        eprintln!(
            "{:<8} {:>6} {:>6} {:>8}",
            KINDS[kind], n, killed[kind], exited[kind]
        );
    }
    eprint!("{report}");
    let bad: Vec<_> = report
        .counts
        .must_be_zero()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(
        bad.is_empty(),
        "seed {seed} (ONCELOG_TEST_SEED={seed} ONCELOG_TORTURE_KILLS={kills}): anomalies {bad:?}"
    );
    assert!(
        report.totals.acked.iter().all(|n| *n > 0) && report.totals.read.iter().all(|n| *n > 0),
        "every kind of process must have done something: {:?}",
        report.totals
    );
}
