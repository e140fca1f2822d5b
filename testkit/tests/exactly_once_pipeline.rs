//! The seed's exactly-once flow with real crashes: a consume-transform-produce
//! process (read_committed input, transactional output, input offsets committed in
//! the same transaction) is killed with SIGKILL at random instants 100 times and
//! restarted each time with the same `transactional.id`. A read_committed reader of
//! the output then finds exactly one copy of every input record. The input is topped
//! up whenever little of it is left, so that every kill lands mid-work however fast
//! or slow the machine is.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::{role, seed, with, Proc};
use oncelog::{Record, Store, StoreOptions, TopicConfig};
use oncelog_testkit::rng::XorShift;

/// Input records at the start, and added whenever fewer than this are left.
const INPUT: i64 = 3000;
const KILLS: usize = 100;
const LONG: Duration = Duration::from_secs(60);

fn transform(dir: &std::path::Path, until: i64, failpoints: Option<&str>) -> Proc {
    let mut cmd = role("transform", dir, "in");
    with(
        &mut cmd,
        &[
            ("output", "out".into()),
            ("until", until.to_string()),
            ("max-poll", "10".into()),
        ],
    );
    if let Some(f) = failpoints {
        cmd.env("ONCELOG_FAILPOINTS", f);
    }
    Proc::spawn("transform", cmd)
}

/// Every value in `out`, read committed or not.
fn output(store: &Store, committed: bool) -> Vec<String> {
    let mut values = Vec::new();
    for p in 0..2 {
        let part = store.partition("out", p).unwrap();
        let mut r = part.reader(0).unwrap().read_committed(committed);
        while let Some(b) = r.next_batch().unwrap() {
            if b.header().is_control() {
                continue;
            }
            for rec in b.records() {
                values.push(String::from_utf8(rec.unwrap().value.unwrap().to_vec()).unwrap());
            }
        }
    }
    values
}

/// Appends input records `from..from + n`.
fn add_input(store: &Store, from: i64, n: i64) {
    let input = store.partition("in", 0).unwrap();
    let values: Vec<String> = (from..from + n).map(|i| format!("in {i}")).collect();
    for chunk in values.chunks(100) {
        let records: Vec<Record> = chunk.iter().map(|v| Record::value(v.as_bytes())).collect();
        input.append(&records).unwrap();
    }
}

#[test]
fn a_pipeline_killed_100_times_outputs_every_input_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("in", 1, TopicConfig::default()).unwrap();
    store
        .create_topic("out", 2, TopicConfig::default())
        .unwrap();
    let mut total = INPUT;
    add_input(&store, 0, total);
    let mut rng = XorShift::new(seed(0x05ee_de05));
    let mut kills = 0;
    while kills < KILLS {
        if total - (output(&store, true).len() as i64) < INPUT / 3 {
            add_input(&store, total, INPUT);
            total += INPUT;
        }
        // A third of the runs pause after writing PrepareCommit, so that kills land
        // between the decision and the markers (the next holder rolls forward).
        let slow_prepare = rng.range(0, 2) == 0;
        let mut child = transform(
            dir.path(),
            total,
            slow_prepare.then_some("txn.after_prepare_commit=sleep:2000"),
        );
        child.expect("ready", LONG);
        std::thread::sleep(Duration::from_micros(rng.range(0, 6000)));
        child.kill();
        let status = child.wait(LONG);
        let lines = child.drain(LONG);
        if lines.iter().any(|l| l == "done") {
            // It got through all the input before the kill: not a kill mid-work.
            continue;
        }
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the child died by our kill: {}",
            child.stderr()
        );
        kills += 1;
    }
    let mut last = transform(dir.path(), total, None);
    let (status, lines) = last.finish(LONG);
    assert!(status.success(), "the last run finishes: {}", last.stderr());
    assert_eq!(lines.last().map(String::as_str), Some("done"));

    let committed = output(&store, true);
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for v in &committed {
        let i: i64 = v.strip_prefix("out ").unwrap().parse().unwrap();
        *counts.entry(i).or_default() += 1;
    }
    let missing: Vec<i64> = (0..total).filter(|i| !counts.contains_key(i)).collect();
    let twice: Vec<i64> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(i, _)| *i)
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert!(twice.is_empty(), "processed twice: {twice:?}");
    assert_eq!(committed.len() as i64, total);
    // The kills did interrupt transactions: their records are in the log, aborted.
    let all = output(&store, false);
    assert!(
        all.len() as i64 > total,
        "no transaction was ever aborted: the test did not exercise recovery"
    );
    eprintln!(
        "{} records in the output log, {} committed ({total} input), after {kills} kills",
        all.len(),
        committed.len()
    );
}
