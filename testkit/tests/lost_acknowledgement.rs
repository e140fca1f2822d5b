//! The seed's producer flows with a real crash: a writer process appends a batch
//! and dies right after it became visible, before it could report the append (the
//! acknowledgement is lost). It is then sent again, as a retrying producer does.
//! Without idempotence the log holds it twice (at-least-once); with it, once, and
//! the retry is told the original offsets (exactly-once on the producer side).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use common::{harness, role, with, Proc};
use oncelog::{Store, StoreOptions, TopicConfig};
use oncelog_testkit::payload::Kind;

const LONG: Duration = Duration::from_secs(30);

/// Runs `append` of writer 1, records 0..3 in one batch; with `die` the child aborts
/// just after publishing, before its `ack`. Returns its output lines.
fn send(store: &Path, producer: Option<i64>, die: bool) -> Vec<String> {
    let mut cmd = role("append", store, "t");
    with(
        &mut cmd,
        &[
            ("id", "1".into()),
            ("count", "3".into()),
            ("batch", "3".into()),
        ],
    );
    if let Some(id) = producer {
        with(&mut cmd, &[("producer-id", id.to_string())]);
    }
    if die {
        cmd.env("ONCELOG_FAILPOINTS", "append.after_publish=abort");
    }
    let mut child = Proc::spawn("writer", cmd);
    let (status, lines) = child.finish(LONG);
    if die {
        assert_eq!(
            status.signal(),
            Some(libc::SIGABRT),
            "the writer dies in the append"
        );
        assert!(
            harness::acks(&lines).is_empty(),
            "no acknowledgement got out: {lines:?}"
        );
    } else {
        assert!(
            status.success(),
            "writer failed: {lines:?} {}",
            child.stderr()
        );
    }
    lines
}

fn writer_records(store: &Path) -> Vec<(i64, u64)> {
    let store = Store::open(store, StoreOptions::default()).unwrap();
    let entries = harness::read_all(&store.partition("t", 0).unwrap());
    entries
        .iter()
        .filter_map(|e| match e.kind {
            Kind::Data { writer: 1, seq } => Some((e.offset, seq)),
            _ => None,
        })
        .collect()
}

/// `hold`: keep the store open in this process while the writers run, so the retry
/// finds the dead writer's lock (repair); otherwise the retry is the first opener
/// (recovery).
fn run(producer: Option<i64>, hold: bool) -> (Vec<String>, Vec<(i64, u64)>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let held = hold.then(|| store.partition("t", 0).unwrap());
    if !hold {
        drop(store);
    }
    send(dir.path(), producer, true);
    let retry = send(dir.path(), producer, false);
    drop(held);
    (retry, writer_records(dir.path()))
}

#[test]
fn without_idempotence_the_retry_duplicates() {
    for hold in [true, false] {
        let (retry, records) = run(None, hold);
        let acks = harness::acks(&retry);
        assert_eq!(
            (acks[0].base, acks[0].last),
            (3, 5),
            "appended again after the first copy"
        );
        assert!(!retry[1].ends_with(" dup"));
        assert_eq!(
            records,
            vec![(0, 0), (1, 1), (2, 2), (3, 0), (4, 1), (5, 2)],
            "hold {hold}"
        );
    }
}

#[test]
fn with_idempotence_the_retry_gets_the_original_offsets_and_one_copy_stays() {
    for hold in [true, false] {
        let (retry, records) = run(Some(42), hold);
        let ack = retry
            .iter()
            .find(|l| l.starts_with("ack "))
            .expect("an ack");
        assert_eq!(ack, "ack 0 2 0 dup", "hold {hold}: the retry is recognised");
        assert_eq!(
            records,
            vec![(0, 0), (1, 1), (2, 2)],
            "hold {hold}: exactly one copy"
        );
    }
}
