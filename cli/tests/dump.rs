//! `dump` of a segment written with fixed timestamps and producer ids: golden
//! output for the `.log` (with and without records) and its indexes; damaged
//! files are shown as far as they go and fail the run.

mod common;

use std::path::{Path, PathBuf};

use common::{golden, run};
use oncelog::record::{control_record, BatchOptions, ControlRecordType, ProducerInfo};
use oncelog::{AppendOptions, Header, Partition, Record, Store, StoreOptions};

fn producer(id: i64, epoch: i16, seq: i32, transactional: bool, control: bool) -> AppendOptions {
    AppendOptions {
        batch: BatchOptions {
            producer: ProducerInfo {
                producer_id: id,
                producer_epoch: epoch,
                base_sequence: seq,
            },
            transactional,
            control,
            ..BatchOptions::default()
        },
        durability: None,
    }
}

fn marker(p: &Partition, id: i64, epoch: i16, kind: ControlRecordType, ts: i64) {
    let (key, value) = control_record(kind, 0);
    p.append_with(
        &[Record::keyed(&key, &value).with_timestamp(ts)],
        &producer(id, epoch, -1, true, true),
    )
    .unwrap();
}

/// A closed store with one partition whose first segment holds every kind of
/// batch; returns the segment's `.log` path.
fn fixture(dir: &Path) -> PathBuf {
    let s = Store::open(dir, StoreOptions::default()).unwrap();
    s.create_topic_with("t", 1, &[("index.interval.bytes", "100")])
        .unwrap();
    let p = s.partition("t", 0).unwrap();
    let t = 1_700_000_000_000;
    let headers = [
        Header {
            key: "trace",
            value: Some(b"abc"),
        },
        Header {
            key: "empty",
            value: None,
        },
    ];
    p.append(&[
        Record::keyed(b"k1", b"hello").with_timestamp(t),
        Record::value(b"world")
            .with_headers(&headers)
            .with_timestamp(t + 5),
    ])
    .unwrap();
    p.append_with(
        &[
            Record::keyed(b"a", b"1").with_timestamp(t + 10),
            Record::keyed(b"b", b"2").with_timestamp(t + 30),
            Record::keyed(b"c", &[0xff, 0xfe]).with_timestamp(t + 20),
        ],
        &producer(1000, 3, 0, false, false),
    )
    .unwrap();
    p.append_with(
        &[Record::value(b"committed").with_timestamp(t + 40)],
        &producer(2000, 0, 0, true, false),
    )
    .unwrap();
    marker(&p, 2000, 1, ControlRecordType::Commit, t + 41);
    p.append_with(
        &[
            Record::value(b"aborted").with_timestamp(t + 50),
            Record::value(b"tab\there").with_timestamp(t + 51),
        ],
        &producer(2001, 0, 0, true, false),
    )
    .unwrap();
    marker(&p, 2001, 1, ControlRecordType::Abort, t + 52);
    p.append(&[Record {
        key: Some(b"tomb"),
        value: None,
        ..Record::default()
    }
    .with_timestamp(t + 60)])
        .unwrap();
    drop(p);
    s.close().unwrap();
    dir.join("t-0").join("00000000000000000000.log")
}

fn dump(path: &Path, records: bool) -> common::Run {
    let mut args = vec!["dump", path.to_str().unwrap()];
    if records {
        args.push("--records");
    }
    run(&args)
}

fn without(dir: &Path, text: &str) -> String {
    text.replace(dir.to_str().unwrap(), "<dir>")
}

#[test]
fn dump_prints_every_batch_like_kafka_dump_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = fixture(dir.path());
    let r = dump(&log, false).ok();
    assert_eq!(r.stderr, "");
    golden("dump_batches.txt", &without(dir.path(), &r.stdout));
    let r = dump(&log, true).ok();
    golden("dump_records.txt", &without(dir.path(), &r.stdout));
    let mut indexes = String::new();
    for ext in ["index", "timeindex", "txnindex"] {
        let r = dump(&log.with_extension(ext), false).ok();
        indexes.push_str(&without(dir.path(), &r.stdout));
    }
    golden("dump_indexes.txt", &indexes);
}

#[test]
fn dump_shows_damage_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let log = fixture(dir.path());
    let mut bytes = std::fs::read(&log).unwrap();
    let len = bytes.len();
    // A flipped bit in the value of the second batch (inside the CRC's range).
    let second = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize + 12;
    bytes[second + 70] ^= 0x01;
    // And a torn last batch.
    bytes.truncate(len - 5);
    std::fs::write(&log, &bytes).unwrap();
    let r = dump(&log, false).expect(1);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[2].ends_with("isvalid: true"), "{}", lines[2]);
    assert!(
        lines[3].starts_with("baseOffset: 2 lastOffset: 4 count: 3 ")
            && lines[3].ends_with("isvalid: false"),
        "{}",
        lines[3]
    );
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("position ")
            && last.contains("not a batch: ")
            && last.contains("truncated batch"),
        "{last}"
    );
    assert_eq!(r.stderr.lines().count(), 1);
    assert!(
        r.stderr.starts_with(&format!(
            "oncelog: error: {}: 2 things damaged (first: position {second}: CRC mismatch)",
            log.display()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn dump_refuses_what_is_not_a_segment_file() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("notes.txt");
    std::fs::write(&other, "x").unwrap();
    let r = run(&["dump", other.to_str().unwrap()]).expect(2);
    assert!(r.stderr.contains("dump reads .log, .index"), "{}", r.stderr);
    let missing = dir.path().join("00000000000000000000.log");
    let r = run(&["dump", missing.to_str().unwrap()]).expect(1);
    assert!(r.stderr.contains("No such file"), "{}", r.stderr);
    let odd = dir.path().join("x.index");
    std::fs::write(&odd, [0u8; 8]).unwrap();
    let r = run(&["dump", odd.to_str().unwrap()]).expect(2);
    assert!(r.stderr.contains("named by its segment's base offset"));
}
