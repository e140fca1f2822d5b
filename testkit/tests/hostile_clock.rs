//! Jumps of the wall clock. The processes that judge a transaction or a group
//! member by age see their wall clock jump by two hours (`ONCELOG_CLOCK_SKEW_FILE`,
//! a test hook of the `failpoints` build, moves the wall clock of one process; the
//! kernel's clock, which stamps files, does not move): a jump forward must not abort
//! a live transaction or expel a live member, a jump backward must not keep a hung
//! transaction open.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{role, with, Proc};
use oncelog::txn::{Coordinator, TxnStatus};
use oncelog::{describe_group, Durability, Store, StoreOptions, TopicConfig};

const LONG: Duration = Duration::from_secs(30);
const TWO_HOURS_MS: i64 = 2 * 3600 * 1000;

fn store(dir: &Path, partitions: u32) -> Store {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    store
        .create_topic("t", partitions, TopicConfig::default())
        .unwrap();
    store
}

/// A command whose process's wall clock is shifted by the milliseconds in `skew`.
fn skewed(mut cmd: std::process::Command, skew: &Path) -> std::process::Command {
    cmd.env("ONCELOG_CLOCK_SKEW_FILE", skew);
    cmd
}

fn holder_state(store: &Store) -> TxnStatus {
    Coordinator::open(store, Durability::Written)
        .unwrap()
        .state("holder")
        .unwrap()
        .unwrap()
        .status
}

#[test]
fn a_jump_forward_does_not_abort_a_live_transaction() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let store = store(dir, 1);
    let go = dir.join("go");
    let skew = dir.join("skew");
    std::fs::write(&skew, "0").unwrap();

    let mut cmd = role("txn-hold", dir, "t");
    with(
        &mut cmd,
        &[
            ("count", "3".into()),
            ("go-file", go.display().to_string()),
            ("txn-timeout-ms", "3000".into()),
        ],
    );
    cmd.arg("--commit");
    let mut holder = Proc::spawn("holder", cmd);
    holder.expect("sent", LONG);

    // A read_committed consumer held back by the open transaction: it is the one
    // that aborts transactions it finds too old.
    let mut cmd = role("committed-poll", dir, "t");
    with(&mut cmd, &[("until", "3".into())]);
    let mut observer = Proc::spawn("observer", skewed(cmd, &skew));
    observer.expect("ready", LONG);
    std::fs::write(&skew, TWO_HOURS_MS.to_string()).unwrap();
    // Well past the observer's next looks, short of the timeout.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(holder_state(&store), TxnStatus::Ongoing);

    std::fs::write(&go, b"").unwrap();
    holder.expect("committing", LONG);
    let committed = holder.expect_eventually("", LONG);
    assert_eq!(committed, "committed", "{}", holder.stderr());
    let (status, lines) = observer.finish(LONG);
    assert!(
        status.success(),
        "{status}: {lines:?}; {}",
        observer.stderr()
    );
    let got: Vec<&String> = lines.iter().filter(|l| l.starts_with("got ")).collect();
    assert_eq!(got, ["got 0 held 0", "got 1 held 1", "got 2 held 2"]);
}

#[test]
fn a_jump_backward_does_not_keep_a_hung_transaction_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let store = store(dir, 1);
    let skew = dir.join("skew");
    std::fs::write(&skew, (-TWO_HOURS_MS).to_string()).unwrap();

    // Alive but never committing: only its transaction timeout ends it.
    let mut cmd = role("txn-hold", dir, "t");
    with(
        &mut cmd,
        &[("count", "3".into()), ("txn-timeout-ms", "500".into())],
    );
    let mut holder = Proc::spawn("hung holder", cmd);
    holder.expect("sent", LONG);
    let mut cmd = role("committed-poll", dir, "t");
    with(&mut cmd, &[("until", "1".into())]);
    let mut observer = Proc::spawn("observer", skewed(cmd, &skew));
    observer.expect("ready", LONG);

    let t0 = Instant::now();
    while holder_state(&store) == TxnStatus::Ongoing {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the hung transaction is still open after {:?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let part = store.partition("t", 0).unwrap();
    let t0 = Instant::now();
    while part.last_stable_offset() < part.end_offset() {
        assert!(t0.elapsed() < LONG, "markers never written");
        std::thread::sleep(Duration::from_millis(10));
    }
    holder.assert_running();
    // The observer reads past the aborted records and their marker without
    // showing them, and ends (it may have ended before the markers were seen here:
    // it can be the process that wrote them).
    let (status, lines) = observer.finish(LONG);
    assert!(
        status.success(),
        "{status}: {lines:?}; {}",
        observer.stderr()
    );
    assert_eq!(lines, ["done"], "read_committed showed aborted records");
}

#[test]
fn a_jump_forward_does_not_expel_a_live_group_member() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let store = store(dir, 2);
    let skew = dir.join("skew");
    std::fs::write(&skew, TWO_HOURS_MS.to_string()).unwrap();
    let member = |name: &str, jumped: bool| {
        let mut cmd = role("group-poll", dir, "t");
        with(
            &mut cmd,
            &[("group", "g".into()), ("session-ms", "1000".into())],
        );
        let cmd = if jumped { skewed(cmd, &skew) } else { cmd };
        let mut p = Proc::spawn(name, cmd);
        p.expect("ready", LONG);
        p
    };
    let mut steady = member("steady member", false);
    let mut jumped = member("jumped member", true);
    let generation = || {
        let g = describe_group(&store, "g").unwrap().unwrap();
        let in_generation = g.members.iter().filter(|m| m.in_generation).count();
        (g.generation, in_generation)
    };
    // Let the group settle with both members, then watch it: a member that took
    // the other's heartbeat for two hours old would expel it every few ms.
    let t0 = Instant::now();
    while generation().1 != 2 {
        assert!(
            t0.elapsed() < LONG,
            "the members never formed one generation"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let settled = generation();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(generation(), settled, "the group rebalanced without cause");
    steady.assert_running();
    jumped.assert_running();
}
