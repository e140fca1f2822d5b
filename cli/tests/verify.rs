//! `verify` as a process: a sound store passes (closed, open, or left by a killed
//! process); damage anywhere fails it with one line per problem naming the file
//! and the offset, and verify itself never changes (or recovers) the store.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{on, on_with_input};
use oncelog::{Producer, ProducerConfig, ProducerRecord, Record, Store, StoreOptions};

/// A store with many segments in `t` (2 partitions), idempotent and plain
/// batches, committed and aborted transactions; closed when this returns. In
/// `t-1`, records from 2023 next to records of today make segments roll by
/// `segment.ms` and go by `retention.ms`, so that log starts past offset 0, and
/// their timestamps go back and forth.
fn sound_store(dir: &Path) {
    let s = Store::open(dir, StoreOptions::default()).unwrap();
    s.create_topic_with(
        "t",
        2,
        &[("segment.bytes", "4096"), ("index.interval.bytes", "200")],
    )
    .unwrap();
    let config = ProducerConfig::from_pairs([("transactional.id", "tx")]).unwrap();
    let txn = Producer::new(&s, config).unwrap();
    txn.init_transactions().unwrap();
    let plain = Producer::new(&s, ProducerConfig::default()).unwrap();
    let p1 = s.partition("t", 1).unwrap();
    for i in 0..120i64 {
        let value = vec![b'a' + (i % 26) as u8; (i as usize * 7) % 90];
        // Timestamps that sometimes go back: the time index keeps the largest.
        let ts = 1_700_000_000_000 + (i % 10) * 1000 + i;
        p1.append(&[Record::value(&value).with_timestamp(ts)])
            .unwrap();
        plain
            .send(ProducerRecord::new("t", &value).partition(0))
            .unwrap();
        if i % 15 == 0 {
            txn.begin_transaction().unwrap();
            txn.send(ProducerRecord::new("t", b"in a transaction").partition(0))
                .unwrap();
            txn.send(ProducerRecord::new("t", b"and here").partition(1))
                .unwrap();
            if i % 30 == 0 {
                txn.abort_transaction().unwrap();
            } else {
                txn.commit_transaction().unwrap();
            }
        }
    }
    plain.close().unwrap();
    txn.close().unwrap();
    drop(p1);
    s.close().unwrap();
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs
}

/// Every file of the store and its bytes, to prove verify changed nothing.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != "partition.ctl") {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

/// The problem lines of a failed verify (stdout without the summary).
fn problems(stdout: &str) -> Vec<&str> {
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.last().is_some_and(|l| l.starts_with("verified ")),
        "no summary: {stdout}"
    );
    lines[..lines.len() - 1].to_vec()
}

#[test]
fn a_sound_store_passes_closed_and_open() {
    let dir = tempfile::tempdir().unwrap();
    sound_store(dir.path());
    let segments =
        log_files(&dir.path().join("t-0")).len() + log_files(&dir.path().join("t-1")).len();
    assert!(segments >= 6, "the fixture rolls segments: {segments}");
    let before = snapshot(dir.path());
    let r = on(dir.path(), &["verify"]).ok();
    assert_eq!(r.stderr, "");
    let summary = r.stdout.lines().last().unwrap();
    assert!(summary.starts_with("verified 3 partitions, "), "{summary}");
    assert!(summary.ends_with(": no damage"), "{summary}");
    assert_eq!(r.stdout.lines().count(), 1);
    assert_eq!(before, snapshot(dir.path()), "verify changes nothing");
    on(dir.path(), &["verify", "--topic", "t"]).ok();

    // Open in this process, with appends going on: verify reads what is published.
    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let p = s.partition("t", 0).unwrap();
    for i in 0..50 {
        p.append(&[Record::value(format!("more {i}").as_bytes())])
            .unwrap();
    }
    let r = on(dir.path(), &["verify"]).ok();
    let summary = r.stdout.lines().last().unwrap();
    assert!(
        summary.contains("up to the published ends (the store is open): no damage"),
        "{summary}"
    );
}

#[test]
fn a_store_left_by_a_killed_process_passes_and_is_not_recovered_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    on(
        dir.path(),
        &["create-topic", "t", "--config", "index.interval.bytes=50"],
    )
    .ok();
    let mut child = common::command()
        .args(["--store", dir.path().to_str().unwrap(), "produce", "t"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..40 {
        writeln!(stdin, "record number {i}").unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL: no clean shutdown
    child.wait().unwrap();
    drop(stdin);
    let log = dir.path().join("t-0/00000000000000000000.log");
    let reserved = std::fs::metadata(&log).unwrap().len();
    assert!(
        reserved > 4096,
        "the active segment is still reserved ahead"
    );
    let before = snapshot(dir.path());
    let r = on(dir.path(), &["verify"]).ok();
    assert!(r.stdout.ends_with(": no damage\n"), "{}", r.stdout);
    assert_eq!(before, snapshot(dir.path()), "no recovery ran");
    assert_eq!(std::fs::metadata(&log).unwrap().len(), reserved);
}

#[test]
fn a_damaged_batch_is_named_by_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    sound_store(dir.path());
    let logs = log_files(&dir.path().join("t-1"));
    let victim = &logs[1]; // a sealed segment
    let mut bytes = std::fs::read(victim).unwrap();
    let first_len = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize + 12;
    let second_base = i64::from_be_bytes(bytes[first_len..first_len + 8].try_into().unwrap());
    bytes[first_len + 65] ^= 0x20; // inside the second batch's records
    std::fs::write(victim, &bytes).unwrap();
    let before = snapshot(dir.path());

    let r = on(dir.path(), &["verify"]).expect(1);
    let found = problems(&r.stdout);
    assert_eq!(found.len(), 1, "{}", r.stdout);
    assert!(
        found[0].starts_with(&format!(
            "{}: offset {second_base}, byte {first_len}: ",
            victim.display()
        )),
        "{}",
        found[0]
    );
    assert!(found[0].contains("CRC mismatch"), "{}", found[0]);
    assert!(
        found[0].ends_with("(below the recovery point, where recovery does not check CRCs)"),
        "{}",
        found[0]
    );
    assert!(r.stdout.ends_with(": 1 problem\n"));
    assert_eq!(
        r.stderr,
        format!(
            "oncelog: error: {} damaged: 1 problem\n",
            dir.path().display()
        )
    );
    assert_eq!(before, snapshot(dir.path()), "verify changes nothing");
    // Another topic's damage is not this one's.
    on(dir.path(), &["verify", "--topic", "__transaction_state"]).ok();
}

#[test]
fn a_torn_tail_is_reported_not_cut_and_after_a_cut_the_cut_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    sound_store(dir.path());
    let logs = log_files(&dir.path().join("t-0"));
    let active = logs.last().unwrap();
    let len = std::fs::metadata(active).unwrap().len();
    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let end = s.partition("t", 0).unwrap().end_offset();
    drop(s);
    // Half a batch: a header naming the next offset, then nothing.
    let mut torn = Vec::new();
    torn.extend_from_slice(&end.to_be_bytes());
    torn.extend_from_slice(&500i32.to_be_bytes());
    torn.extend_from_slice(&[0, 0, 0, 0, 2, 1, 2, 3]);
    std::fs::OpenOptions::new()
        .append(true)
        .open(active)
        .unwrap()
        .write_all(&torn)
        .unwrap();
    let before = snapshot(dir.path());

    let r = on(dir.path(), &["verify"]).expect(1);
    let found = problems(&r.stdout);
    assert_eq!(found.len(), 1, "{}", r.stdout);
    assert!(
        found[0].starts_with(&format!("{}: offset {end}, byte {len}: ", active.display())),
        "{}",
        found[0]
    );
    assert!(
        found[0].ends_with("(the next first open of the store cuts the log here)"),
        "{}",
        found[0]
    );
    assert_eq!(before, snapshot(dir.path()), "verify did not cut it");

    // Opening cuts it; while the store stays open, verify reports the cut.
    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(
        s.partition("t", 0).unwrap().metrics().recovery_truncations,
        1
    );
    let r = on(dir.path(), &["verify"]).expect(1);
    let found = problems(&r.stdout);
    assert_eq!(
        found,
        [format!(
            "{}: the store's last recovery (first open) cut off a damaged or torn tail",
            dir.path().join("t-0").display()
        )]
    );
    drop(s);
    on(dir.path(), &["verify"]).ok();
}

#[test]
fn every_index_entry_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    sound_store(dir.path());
    let part = dir.path().join("t-1");
    let logs = log_files(&part);
    let sealed = &logs[0];

    // A position in the offset index that names no batch.
    let index = sealed.with_extension("index");
    let mut bytes = std::fs::read(&index).unwrap();
    assert!(bytes.len() >= 16, "the fixture indexes every few batches");
    let rel = i32::from_be_bytes(bytes[8..12].try_into().unwrap());
    let pos = u32::from_be_bytes(bytes[12..16].try_into().unwrap());
    bytes[12..16].copy_from_slice(&(pos + 1).to_be_bytes());
    std::fs::write(&index, &bytes).unwrap();
    // A time index one entry short.
    let time = sealed.with_extension("timeindex");
    let time_len = std::fs::metadata(&time).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&time)
        .unwrap()
        .set_len(time_len - 12)
        .unwrap();
    // A producer snapshot with a flipped byte.
    let snapshot_path = logs[1].with_extension("snapshot");
    let mut snap = std::fs::read(&snapshot_path).unwrap();
    snap[9] ^= 1;
    std::fs::write(&snapshot_path, &snap).unwrap();

    let r = on(dir.path(), &["verify"]).expect(1);
    let found = problems(&r.stdout);
    let base: i64 = sealed
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let offset = base + i64::from(rel);
    let wanted = [
        format!(
            "{}: entry 1 is (offset {offset}, position {}), expected (offset {offset}, position {pos})",
            index.display(),
            pos + 1,
        ),
        format!(
            "{}: {} entries, expected {} (the next one is (timestamp ",
            time.display(),
            time_len / 12 - 1,
            time_len / 12
        ),
        format!(
            "{}: producer snapshot: CRC mismatch",
            snapshot_path.display()
        ),
    ];
    assert_eq!(found.len(), wanted.len(), "{}", r.stdout);
    for (got, want) in found.iter().zip(&wanted) {
        assert!(
            got.starts_with(want.as_str()),
            "{got}\ndoes not start with\n{want}"
        );
    }
    assert!(r.stdout.ends_with(": 3 problems\n"));
}

#[test]
fn an_aborted_transaction_missing_from_the_txnindex_is_found() {
    let dir = tempfile::tempdir().unwrap();
    sound_store(dir.path());
    // The first transaction (i = 0) aborted: its entry is in t-0's first segment.
    let txnindex = dir.path().join("t-0/00000000000000000000.txnindex");
    let bytes = std::fs::read(&txnindex).unwrap();
    assert_eq!(bytes.len() % 34, 0);
    assert!(!bytes.is_empty(), "the fixture aborted a transaction here");
    std::fs::write(&txnindex, &bytes[..bytes.len() - 34]).unwrap();
    let r = on(dir.path(), &["verify"]).expect(1);
    let found = problems(&r.stdout);
    assert_eq!(found.len(), 1, "{}", r.stdout);
    assert!(
        found[0].starts_with(&format!("{}: ", txnindex.display())) && found[0].contains("has none"),
        "{}",
        found[0]
    );
}

#[test]
fn a_missing_segment_or_partition_is_found() {
    let dir = tempfile::tempdir().unwrap();
    sound_store(dir.path());
    let logs = log_files(&dir.path().join("t-0"));
    let gone = &logs[1];
    let gone_base: i64 = gone.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let next = &logs[2];
    let next_base: i64 = next.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    std::fs::remove_file(gone).unwrap();
    std::fs::rename(dir.path().join("t-1"), dir.path().join("moved")).unwrap();
    let r = on(dir.path(), &["verify"]).expect(1);
    let found = problems(&r.stdout);
    assert_eq!(
        found,
        [
            format!(
                "{}: the partition directory is missing",
                dir.path().join("t-1").display()
            ),
            format!(
                "{}: offset {next_base}: the segment starts at offset {next_base}, but the one before ends at offset {gone_base}",
                next.display()
            ),
        ],
        "{}",
        r.stdout
    );
    let r = on_with_input(dir.path(), &["verify", "--topic", "nope"], b"").expect(1);
    assert!(r.stderr.contains("no topic \"nope\""));
}

#[test]
fn txnindex_entries_answer_the_abort_markers_of_open_transactions_only() {
    use oncelog::record::{BatchOptions, ControlRecordType, ProducerInfo};
    use oncelog::AppendOptions;
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    s.create_topic_with("t", 1, &[]).unwrap();
    let p = s.partition("t", 0).unwrap();
    let ids = |id: i64, epoch: i16, seq: i32| ProducerInfo {
        producer_id: id,
        producer_epoch: epoch,
        base_sequence: seq,
    };
    let transactional = |id: i64| AppendOptions {
        batch: BatchOptions {
            producer: ids(id, 0, 0),
            transactional: true,
            ..BatchOptions::default()
        },
        durability: None,
    };
    // Producer 7 opens a transaction at 0; producer 8 one at 1; 7 aborts at 2
    // (the last stable offset after it is 1, where 8's is still open); an ABORT
    // of producer 9, which has nothing open here, needs no entry; 8 commits.
    p.append_with(&[Record::value(b"a")], &transactional(7))
        .unwrap();
    p.append_with(&[Record::value(b"b")], &transactional(8))
        .unwrap();
    p.append_marker(ids(7, 1, -1), ControlRecordType::Abort, 0)
        .unwrap();
    p.append_marker(ids(9, 0, -1), ControlRecordType::Abort, 0)
        .unwrap();
    p.append_marker(ids(8, 1, -1), ControlRecordType::Commit, 0)
        .unwrap();
    drop(p);
    s.close().unwrap();
    let txnindex = dir.path().join("t-0/00000000000000000000.txnindex");
    let r = common::run(&["dump", txnindex.to_str().unwrap()]).ok();
    assert!(
        r.stdout.ends_with(
            "\nversion: 0 producerId: 7 firstOffset: 0 lastOffset: 2 lastStableOffset: 1\n"
        ),
        "{}",
        r.stdout
    );
    on(dir.path(), &["verify"]).ok();

    let entry = std::fs::read(&txnindex).unwrap();
    // A wrong last stable offset.
    let mut wrong = entry.clone();
    wrong[26..34].copy_from_slice(&2i64.to_be_bytes());
    std::fs::write(&txnindex, &wrong).unwrap();
    let r = on(dir.path(), &["verify"]).expect(1);
    assert_eq!(
        problems(&r.stdout),
        [format!(
            "{}: entry 0: the last stable offset after the marker at 2 is 1, the entry says 2",
            txnindex.display()
        )]
    );
    // An entry for producer 9's marker, whose transaction was not open.
    let mut extra = entry.clone();
    let mut nine = entry[..34].to_vec();
    nine[2..10].copy_from_slice(&9i64.to_be_bytes());
    nine[18..26].copy_from_slice(&3i64.to_be_bytes());
    extra.extend_from_slice(&nine);
    std::fs::write(&txnindex, &extra).unwrap();
    let r = on(dir.path(), &["verify"]).expect(1);
    assert_eq!(
        problems(&r.stdout),
        [format!(
            "{}: entry 1 (producer 9, ABORT marker at 3) answers no ABORT marker of an open transaction in the segment",
            txnindex.display()
        )]
    );
}
