//! A writer under `RLIMIT_FSIZE` (with `SIGXFSZ` ignored, as a careful program
//! does) appends until the limit: it must get a `no_space` error, not a signal
//! (SIGBUS from a mapping, SIGXFSZ), and every record it acknowledged must be in the
//! log afterwards, with nothing of the failed append visible.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::{harness, role, with, Proc};
use oncelog::{Record, Store, StoreOptions, TopicConfig};
use oncelog_testkit::harness::Ack;
use oncelog_testkit::payload;

const LONG: Duration = Duration::from_secs(60);
/// The child's file-size limit: a little over 1 MiB, on no boundary of anything.
const LIMIT: u64 = 1024 * 1024 + 12_345;
/// The child's `reserve_bytes`: small, so it reserves (and fails) near the limit.
const RESERVE: u64 = 64 * 1024;

fn small_reserve() -> StoreOptions {
    StoreOptions {
        reserve_bytes: RESERVE,
        ..StoreOptions::default()
    }
}

/// Runs `fill` to the limit; returns its acks after checking how it ended.
fn fill(dir: &std::path::Path, id: u32) -> Vec<Ack> {
    let acks = fill_with(
        dir,
        id,
        &[("batch", "3".into()), ("value-size", "1000".into())],
    );
    let bytes = acks.len() as u64 * 3 * 1000;
    assert!(
        bytes > LIMIT / 2,
        "only {} acks (~{bytes} bytes) before no_space under a {LIMIT}-byte limit",
        acks.len()
    );
    eprintln!("fill acknowledged {} batches", acks.len());
    acks
}

/// Runs `fill` with `extra` arguments; checks that it ended with `no_space` and
/// exit status 0, and returns its acks.
fn fill_with(dir: &std::path::Path, id: u32, extra: &[(&str, String)]) -> Vec<Ack> {
    let mut cmd = role("fill", dir, "t");
    with(
        &mut cmd,
        &[
            ("fsize-limit", LIMIT.to_string()),
            ("reserve-bytes", RESERVE.to_string()),
            ("id", id.to_string()),
        ],
    );
    with(&mut cmd, extra);
    let mut p = Proc::spawn("fill", cmd);
    let (status, lines) = p.finish(LONG);
    assert_eq!(
        status.signal(),
        None,
        "the writer was killed by a signal ({status}); stderr: {}",
        p.stderr()
    );
    assert!(status.success(), "fill: {status}; stderr: {}", p.stderr());
    assert_eq!(
        lines.last().map(String::as_str),
        Some("err no_space"),
        "fill must stop at a no_space error; stderr: {}",
        p.stderr()
    );
    harness::acks(&lines)
}

fn acked_records(acks: &[Ack]) -> i64 {
    acks.iter().map(|a| a.last - a.base + 1).sum()
}

#[test]
fn a_writer_at_its_file_size_limit_gets_no_space_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), small_reserve()).unwrap();
        store.create_topic("t", 1, TopicConfig::default()).unwrap();
    }
    // Alone with the store: the child is its first opener and its last closer.
    let acks = fill(dir.path(), 1);

    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let part = store.partition("t", 0).unwrap();
    let entries = harness::read_all(&part);
    harness::assert_dense_and_unique(&entries, 0);
    let writers = harness::by_writer(&entries);
    let n = harness::assert_writer(&entries, 0, &writers, 1, &acks);
    assert_eq!(
        n as i64,
        acked_records(&acks),
        "the log holds records of the append that failed"
    );
    // Without the limit, the log goes on where it stopped.
    let key = payload::key(2, 0);
    let value = payload::value(2, 0, 100);
    let info = part.append(&[Record::keyed(&key, &value)]).unwrap();
    assert_eq!(info.base_offset, n as i64);
}

#[test]
fn others_keep_appending_after_a_writer_hits_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    // This process keeps the store open throughout (it is the first opener), with
    // segments larger than the child's limit.
    let store = Store::open(dir.path(), small_reserve()).unwrap();
    let config = TopicConfig::from_pairs([("segment.bytes", "4194304")]).unwrap();
    store.create_topic("t", 1, config).unwrap();
    let part = store.partition("t", 0).unwrap();
    let acks = fill(dir.path(), 1);
    let end = part.end_offset();
    assert_eq!(
        end,
        acked_records(&acks),
        "records of the failed append are visible"
    );

    // The child failed to reserve; this process has no limit and must carry on,
    // through the reservation the child could not make.
    let mut ours = Vec::new();
    for seq in 0..400u64 {
        let key = payload::key(2, seq);
        let value = payload::value(2, seq, 1000);
        let info = part.append(&[Record::keyed(&key, &value)]).unwrap();
        ours.push(Ack {
            base: info.base_offset,
            last: info.last_offset,
            seq,
        });
    }
    assert_eq!(ours[0].base, end);
    let entries = harness::read_all(&part);
    harness::assert_dense_and_unique(&entries, 0);
    let writers = harness::by_writer(&entries);
    assert_eq!(
        harness::assert_writer(&entries, 0, &writers, 1, &acks) as i64,
        acked_records(&acks)
    );
    assert_eq!(harness::assert_writer(&entries, 0, &writers, 2, &ours), 400);
}

/// A roll that fails for space (here: the new segment's index does not fit under
/// the writer's file-size limit; on a full disk, the same) must leave the partition
/// as it was, so that the next append, by any process, either rolls or fails
/// cleanly. It must never write through the mapping past the end of a file, which
/// kills the writer with SIGBUS.
#[test]
fn a_roll_that_fails_for_space_leaves_the_log_writable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    // 2 MiB segments whose offset index (an entry per 8 bytes) is 2 MiB too: more
    // than the child may create.
    let config =
        TopicConfig::from_pairs([("segment.bytes", "2097152"), ("index.interval.bytes", "8")])
            .unwrap();
    store.create_topic("t", 1, config).unwrap();
    let part = store.partition("t", 0).unwrap();
    // Fill the active segment to ~1.3 MiB, without a limit.
    let mut ours = Vec::new();
    for seq in 0..1300u64 {
        let (key, value) = (payload::key(1, seq), payload::value(1, seq, 1000));
        let info = part.append(&[Record::keyed(&key, &value)]).unwrap();
        ours.push(Ack {
            base: info.base_offset,
            last: info.last_offset,
            seq,
        });
    }
    // Another process, without a limit, has the partition open already; it will
    // append small batches that fit in what is left of the segment.
    let go = dir.path().join("go");
    let mut cmd = role("append", dir.path(), "t");
    with(
        &mut cmd,
        &[
            ("id", "3".into()),
            ("count", "200".into()),
            ("value-size", "100".into()),
            ("go-file", go.display().to_string()),
        ],
    );
    let mut next = Proc::spawn("appender after the failed roll", cmd);
    next.expect("ready", LONG);

    // One 900 KB batch does not fit: the child must roll, and cannot.
    let acks = fill_with(
        dir.path(),
        2,
        &[
            ("value-size", "900000".into()),
            ("value-spread", "0".into()),
            ("max-count", "1".into()),
        ],
    );
    assert!(acks.is_empty());
    assert_eq!(
        part.end_offset(),
        1300,
        "the failed append left records behind"
    );

    std::fs::write(&go, b"").unwrap();
    let (status, lines) = next.finish(LONG);
    assert_eq!(
        status.signal(),
        None,
        "the next appender died of signal {:?} ({}) after {} acks; stderr: {}",
        status.signal(),
        if status.signal() == Some(libc::SIGBUS) {
            "SIGBUS: it wrote through its mapping past the end of the trimmed segment"
        } else {
            "?"
        },
        harness::acks(&lines).len(),
        next.stderr()
    );
    assert!(status.success(), "{status} {lines:?} {}", next.stderr());
    let theirs = harness::acks(&lines);
    let entries = harness::read_all(&part);
    harness::assert_dense_and_unique(&entries, 0);
    let writers = harness::by_writer(&entries);
    assert_eq!(
        harness::assert_writer(&entries, 0, &writers, 1, &ours),
        1300
    );
    assert_eq!(
        harness::assert_writer(&entries, 0, &writers, 3, &theirs),
        200
    );
}
