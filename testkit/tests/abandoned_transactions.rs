//! A transaction whose holder process was killed does not hold readers back: the
//! first read_committed consumer that waits behind it notices the holder is gone
//! (its liveness lock was released by the kernel) and aborts it, or, if the holder
//! had already decided to commit (PrepareCommit), completes the commit.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::{role, with, Proc};
use oncelog::{Consumer, ConsumerConfig, Store, StoreOptions, TopicConfig, TopicPartition};

const LONG: Duration = Duration::from_secs(30);

fn setup(partitions: u32) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store
        .create_topic("out", partitions, TopicConfig::default())
        .unwrap();
    (dir, store)
}

/// A holder of a transaction of 5 records; with `commit`, spread over every
/// partition (a commit of one partition needs no PrepareCommit: its marker decides)
/// and paused right after PrepareCommit.
fn holder(dir: &std::path::Path, commit: bool) -> Proc {
    let mut cmd = role("txn-hold", dir, "out");
    with(&mut cmd, &[("count", "5".into())]);
    if commit {
        cmd.args(["--commit", "--spread"]);
        cmd.env(
            "ONCELOG_FAILPOINTS",
            "txn.after_prepare_commit=sleep:60000000",
        );
    }
    Proc::spawn("txn-hold", cmd)
}

/// Polls read_committed until the last stable offset reaches the end; returns what
/// it read and how long that took.
fn wait_for_stable(store: &Store) -> (Vec<String>, Duration) {
    let mut c = Consumer::new(
        store,
        ConsumerConfig::from_pairs([
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "earliest"),
        ])
        .unwrap(),
    )
    .unwrap();
    let partitions: Vec<_> = (0..store.topic("out").unwrap().partitions)
        .map(|p| store.partition("out", p).unwrap())
        .collect();
    let tps: Vec<_> = partitions
        .iter()
        .map(|p| TopicPartition::new("out", p.id()))
        .collect();
    c.assign(&tps).unwrap();
    let t0 = Instant::now();
    let mut values = Vec::new();
    while partitions
        .iter()
        .any(|p| p.last_stable_offset() < p.end_offset())
        || values.is_empty()
    {
        for r in c.poll(Duration::from_millis(100)).unwrap() {
            values.push(String::from_utf8(r.value.unwrap()).unwrap());
        }
        assert!(
            t0.elapsed() < LONG,
            "the abandoned transaction was never finished"
        );
    }
    values.sort();
    (values, t0.elapsed())
}

#[test]
fn a_killed_holders_open_transaction_is_aborted() {
    let (dir, store) = setup(1);
    let mut child = holder(dir.path(), false);
    child.expect("sent", LONG);
    child.kill();
    assert_eq!(child.wait(LONG).signal(), Some(libc::SIGKILL));
    store
        .partition("out", 0)
        .unwrap()
        .append(&[oncelog::Record::value(b"after")])
        .unwrap();
    let (values, took) = wait_for_stable(&store);
    assert_eq!(
        values,
        ["after"],
        "the killed transaction's records never show"
    );
    assert!(
        took < Duration::from_secs(5),
        "finished in {took:?}, long before transaction.timeout.ms (60 s)"
    );
}

#[test]
fn a_holder_killed_after_deciding_to_commit_has_its_commit_completed() {
    let (dir, store) = setup(2);
    let mut child = holder(dir.path(), true);
    child.expect("sent", LONG);
    child.expect("committing", LONG);
    // Let it write PrepareCommit and reach the pause before the markers.
    let coordinator =
        oncelog::txn::Coordinator::open(&store, oncelog::Durability::Written).unwrap();
    let t0 = Instant::now();
    while coordinator.state("holder").unwrap().map(|s| s.status)
        != Some(oncelog::txn::TxnStatus::PrepareCommit)
    {
        assert!(t0.elapsed() < LONG, "the holder never prepared its commit");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill();
    assert_eq!(child.wait(LONG).signal(), Some(libc::SIGKILL));
    let (values, _) = wait_for_stable(&store);
    assert_eq!(
        values,
        (0..5).map(|i| format!("held {i}")).collect::<Vec<_>>(),
        "rolled forward"
    );
    assert_eq!(
        coordinator.state("holder").unwrap().map(|s| s.status),
        Some(oncelog::txn::TxnStatus::CompleteCommit)
    );
}
