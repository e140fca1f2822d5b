//! Four processes append to one partition at once while two processes follow it:
//! every offset exists exactly once, every acknowledged batch is where its writer was
//! told, and both followers read the same bytes at every offset. Segments are small,
//! so they roll under the followers' feet.

mod common;

use std::time::{Duration, Instant};

use common::{harness, role, with, Proc};
use oncelog::{Store, StoreOptions, TopicConfig, TopicMeta};

/// (writer id, records, batch size, value size)
const WRITERS: [(u32, u64, u64, usize); 4] = [
    (1, 3000, 1, 40),
    (2, 3000, 3, 100),
    (3, 2400, 5, 200),
    (4, 2000, 2, 500),
];
const LONG: Duration = Duration::from_secs(60);

#[test]
fn four_appenders_and_two_followers_agree_on_every_offset() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let config =
            TopicConfig::from_pairs([("segment.bytes", "65536"), ("index.interval.bytes", "1024")])
                .unwrap();
        store.create_topic("t", 1, config).unwrap();
        // Closed again: the children race to be the store's first opener.
    }
    let total: u64 = WRITERS.iter().map(|w| w.1).sum();

    // Followers first, so they read the log while it grows and rolls.
    let mut readers: Vec<Proc> = (0..2)
        .map(|i| {
            let mut cmd = role("read", dir.path(), "t");
            with(
                &mut cmd,
                &[("until", total.to_string()), ("timeout-ms", "60000".into())],
            );
            Proc::spawn(format!("reader {i}"), cmd)
        })
        .collect();
    for r in &mut readers {
        r.expect("ready", LONG);
    }
    let go = dir.path().join("go");
    let mut appenders: Vec<Proc> = WRITERS
        .iter()
        .map(|&(id, count, batch, size)| {
            let mut cmd = role("append", dir.path(), "t");
            with(
                &mut cmd,
                &[
                    ("id", id.to_string()),
                    ("count", count.to_string()),
                    ("batch", batch.to_string()),
                    ("value-size", size.to_string()),
                    ("go-file", go.display().to_string()),
                ],
            );
            Proc::spawn(format!("appender {id}"), cmd)
        })
        .collect();
    for p in &mut appenders {
        p.expect("ready", LONG);
    }
    std::fs::write(&go, b"").unwrap();

    let mut acks = Vec::new();
    for (p, &(id, count, batch, _)) in appenders.iter_mut().zip(&WRITERS) {
        let (status, lines) = p.finish(LONG);
        assert!(
            status.success(),
            "{}: {status}; stderr: {}",
            p.name(),
            p.stderr()
        );
        assert_eq!(
            lines.last().map(String::as_str),
            Some("done"),
            "{}",
            p.name()
        );
        let a = harness::acks(&lines);
        assert_eq!(a.len() as u64, count.div_ceil(batch), "appender {id} acks");
        acks.push((id, count, a));
    }
    let mut seen = Vec::new();
    for r in &mut readers {
        let (status, lines) = r.finish(LONG);
        assert!(
            status.success(),
            "{}: {status}, last lines {:?}; stderr: {}",
            r.name(),
            &lines[lines.len().saturating_sub(3)..],
            r.stderr()
        );
        assert!(
            lines
                .last()
                .is_some_and(|l| l.starts_with(&format!("done {total} "))),
            "{}: {:?}",
            r.name(),
            lines.last()
        );
        seen.push(harness::reader_entries(&lines));
    }

    // The log as a fresh first opener finds it after every process closed.
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let part = store.partition("t", 0).unwrap();
    let entries = harness::read_all(&part);
    assert_eq!(entries.len() as u64, total, "records in the log");
    assert_eq!(part.end_offset(), total as i64);
    harness::assert_dense_and_unique(&entries, 0);
    let writers = harness::by_writer(&entries);
    for (id, count, a) in &acks {
        let n = harness::assert_writer(&entries, 0, &writers, *id, a);
        assert_eq!(n, *count, "writer {id}: records in the log");
    }
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.len(), entries.len(), "reader {i} saw every record");
        for (got, want) in s.iter().zip(&entries) {
            assert_eq!(got, want, "reader {i} at offset {}", want.offset);
        }
    }

    // The run exercised what it claims to: rolls, and interleaved writers.
    let segments = std::fs::read_dir(TopicMeta::partition_dir(dir.path(), "t", 0))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log"))
        })
        .count();
    assert!(segments >= 5, "only {segments} segments: nothing rolled");
    let switches = entries
        .windows(2)
        .filter(|w| writer_of(&w[0]) != writer_of(&w[1]))
        .count();
    // Four writers one after another make 3 switches; more means they overlapped.
    // (How much they interleave is up to the scheduler; that they did is not.)
    assert!(
        switches > 3,
        "the writers never overlapped ({switches} switches)"
    );
    eprintln!(
        "{total} records, {segments} segments, {switches} writer switches, {:?}",
        started.elapsed()
    );
}

fn writer_of(e: &harness::Entry) -> Option<u32> {
    match e.kind {
        oncelog_testkit::payload::Kind::Data { writer, .. } => Some(writer),
        oncelog_testkit::payload::Kind::Stop => None,
    }
}
