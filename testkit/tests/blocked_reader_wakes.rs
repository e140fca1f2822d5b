//! A reader process blocked in `Partition::wait_for` sleeps on the partition's
//! process-shared futex: it wakes when another process appends what it waits for,
//! keeps sleeping through appends that do not reach its offset, and times out when
//! nothing arrives.

mod common;

use std::time::{Duration, Instant};

use common::{role, with, Proc};
use oncelog::{Partition, Record, Store, StoreOptions, TopicConfig};
use oncelog_testkit::harness::NoLine;

const LONG: Duration = Duration::from_secs(20);
/// How long a waiter is left alone before data arrives: long enough that it is
/// asleep on the futex, not spinning through its first check.
const BLOCKED_FOR: Duration = Duration::from_millis(300);
/// The longest a woken waiter may take to report once the appender has exited
/// (process scheduling on a small, busy machine; the wake itself takes microseconds).
const WAKE_BOUND: Duration = Duration::from_secs(1);

fn setup() -> (tempfile::TempDir, Store, Partition) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let part = store.partition("t", 0).unwrap();
    (dir, store, part)
}

fn waiter(dir: &std::path::Path, offset: i64, timeout_ms: u64) -> Proc {
    let mut cmd = role("wait", dir, "t");
    with(
        &mut cmd,
        &[
            ("offset", offset.to_string()),
            ("timeout-ms", timeout_ms.to_string()),
        ],
    );
    let mut p = Proc::spawn(format!("waiter for offset {offset}"), cmd);
    p.expect("waiting", LONG);
    p
}

/// Appends `count` records from another process; returns the instant it exited
/// (after acknowledging them).
fn append_from_another_process(dir: &std::path::Path, id: u32, count: u64) -> Instant {
    let mut cmd = role("append", dir, "t");
    with(
        &mut cmd,
        &[("id", id.to_string()), ("count", count.to_string())],
    );
    let mut p = Proc::spawn(format!("appender {id}"), cmd);
    let (status, lines) = p.finish(LONG);
    assert!(
        status.success(),
        "appender: {status} {lines:?} {}",
        p.stderr()
    );
    Instant::now()
}

/// The waiter's report, `woke` or `timeout`, and the microseconds it measured.
fn report(p: &mut Proc, timeout: Duration) -> (String, Duration) {
    let line = p
        .line(timeout)
        .unwrap_or_else(|e| panic!("{}: no report within {timeout:?}: {e:?}", p.name()));
    let (word, us) = line.split_once(' ').expect("<word> <micros>");
    (
        word.to_string(),
        Duration::from_micros(us.parse().expect("micros")),
    )
}

fn still_waiting(p: &mut Proc) -> bool {
    p.line(Duration::from_millis(1)) == Err(NoLine::Timeout)
}

#[test]
fn a_blocked_reader_wakes_when_another_process_appends() {
    let (dir, _store, part) = setup();
    let mut first = [waiter(dir.path(), 0, 20_000), waiter(dir.path(), 0, 20_000)];
    let mut third = waiter(dir.path(), 2, 20_000);
    std::thread::sleep(BLOCKED_FOR);
    for p in first.iter_mut().chain([&mut third]) {
        assert!(still_waiting(p), "{} returned with no data", p.name());
    }
    let wakeups_before = part.metrics().wakeups;

    let appended = append_from_another_process(dir.path(), 1, 1);
    for p in &mut first {
        let (word, slept) = report(p, WAKE_BOUND);
        let latency = appended.elapsed();
        assert_eq!(word, "woke", "{}", p.name());
        assert!(
            slept >= BLOCKED_FOR,
            "{}: reports {slept:?} asleep, but the data came after {BLOCKED_FOR:?}",
            p.name()
        );
        assert!(
            slept < Duration::from_secs(10),
            "{}: woke only after {slept:?} of its 20 s timeout",
            p.name()
        );
        eprintln!(
            "{} woke after {slept:?}; reported {latency:?} after the appender exited",
            p.name()
        );
        assert!(p.wait(LONG).success());
    }
    assert!(
        part.metrics().wakeups > wakeups_before,
        "the writer did not wake the futex (wakeups {})",
        part.metrics().wakeups
    );

    // One record does not reach offset 2: that waiter sleeps on.
    std::thread::sleep(Duration::from_millis(100));
    assert!(still_waiting(&mut third), "woke before offset 2 existed");
    append_from_another_process(dir.path(), 2, 2);
    let (word, slept) = report(&mut third, WAKE_BOUND);
    assert_eq!(word, "woke");
    assert!(
        slept >= BLOCKED_FOR && slept < Duration::from_secs(10),
        "{slept:?}"
    );
    assert!(third.wait(LONG).success());
    assert_eq!(part.end_offset(), 3);
}

#[test]
fn a_blocked_reader_times_out_when_nothing_arrives() {
    let (dir, _store, part) = setup();
    part.append(&[Record::value(b"already there")]).unwrap();
    let timeout = Duration::from_millis(300);
    let mut p = waiter(dir.path(), 1, timeout.as_millis() as u64);
    let (word, slept) = report(&mut p, timeout + WAKE_BOUND);
    assert_eq!(word, "timeout");
    assert!(slept >= timeout, "timed out early, after {slept:?}");
    assert!(
        slept < timeout + Duration::from_millis(500),
        "overslept its {timeout:?} timeout: {slept:?}"
    );
    assert!(p.wait(LONG).success());

    // Data that is already there: no wait at all.
    let mut p = waiter(dir.path(), 0, 20_000);
    let (word, slept) = report(&mut p, WAKE_BOUND);
    assert_eq!(word, "woke");
    assert!(slept < Duration::from_millis(100), "{slept:?}");
}

/// DESIGN.md: "a writer issues a wake only when the waiter count is not 0", so that
/// waiting costs writers nothing when nobody waits. A waiter killed in its sleep may
/// cost at most one stray wake; it must not leave the count raised for good, or
/// every later append, by every process, pays a futex syscall.
#[test]
fn a_killed_waiter_leaves_no_phantom_waiter_behind() {
    let (dir, _store, part) = setup();
    let mut p = waiter(dir.path(), 0, 20_000);
    std::thread::sleep(BLOCKED_FOR);
    assert!(still_waiting(&mut p));
    p.kill();
    p.wait(LONG);
    let before = part.metrics().wakeups;
    for i in 0..10u8 {
        part.append(&[Record::value(&[i])]).unwrap();
    }
    let wakeups = part.metrics().wakeups - before;
    assert!(
        wakeups <= 1,
        "nobody waits, yet {wakeups} of 10 appends issued a futex wake: the killed \
         waiter is still counted in the control block"
    );
}
