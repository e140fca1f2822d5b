//! Retention deletes segments under the feet of readers in other processes. A
//! writer process appends to a partition of 4 KiB segments that keeps only
//! `retention.bytes` = 16 KiB, so every roll deletes the oldest segment, while two
//! follower processes read it from offset 0: a fast one, and a slow one that sleeps
//! after every batch so that retention overtakes it.
//!
//! A follower must either see every offset in order, each record whole and
//! self-checked, or get an error whose kind is exactly `offset_out_of_range`, after
//! which it seeks to `Partition::start_offset()` and reports the jump. Any other
//! error, a torn or foreign record, a gap without such an error, a jump backwards or
//! a crash fails the test. The slow follower must really have been overtaken, and at
//! the end both followers must agree with a fresh read of the range the log still
//! holds: record by record, and batch by batch on a digest of the stored bytes.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::{harness, role, with, Proc};
use oncelog::{Store, StoreOptions, TopicConfig, TopicMeta};
use oncelog_testkit::harness::Entry;
use oncelog_testkit::payload::{self, Kind};

const SEGMENT_BYTES: u64 = 4096;
const RETENTION_BYTES: u64 = 16 * 1024;
/// Records the writer appends, in batches of `BATCH`.
const RECORDS: u64 = 80_000;
const BATCH: u64 = 4;
const WRITER: u32 = 1;
/// The slow follower's sleep after each batch. The writer fills the whole retained
/// range (about 35 batches) far faster than that follower reads it.
const SLOW_PAUSE_US: u64 = 2_000;
const LONG: Duration = Duration::from_secs(120);

/// What one follower reported.
struct Followed {
    /// Every record it read, by offset (a follower never reads an offset twice).
    records: BTreeMap<i64, Entry>,
    /// Every batch it read, by base offset: (last offset, digest of its bytes).
    batches: BTreeMap<i64, (i64, String)>,
    /// `(from, to)` of every jump after `offset_out_of_range`.
    jumps: Vec<(i64, i64)>,
}

fn follower(dir: &std::path::Path, name: &str, pause_us: u64) -> Proc {
    let mut cmd = role("follow", dir, "t");
    with(
        &mut cmd,
        &[
            ("from", "0".into()),
            ("pause-us", pause_us.to_string()),
            ("timeout-ms", LONG.as_millis().to_string()),
        ],
    );
    let mut p = Proc::spawn(name, cmd);
    p.expect("ready", LONG);
    p
}

/// Waits for a follower to end at the stop sentinel at `stop`, and checks every line
/// it wrote: offsets dense from 0 except across reported jumps, which go forward;
/// every record is the writer's record for its offset (a lone writer's record `seq`
/// lands at offset `seq`).
fn collect(p: &mut Proc, stop: i64) -> Followed {
    let (status, lines) = p.finish(LONG);
    let tail = &lines[lines.len().saturating_sub(3)..];
    assert_eq!(
        status.signal(),
        None,
        "{} crashed ({status}); last lines {tail:?}; stderr: {}",
        p.name(),
        p.stderr()
    );
    assert!(
        status.success(),
        "{} failed ({status}); last lines {tail:?}; stderr: {}",
        p.name(),
        p.stderr()
    );
    let mut f = Followed {
        records: BTreeMap::new(),
        batches: BTreeMap::new(),
        jumps: Vec::new(),
    };
    let mut next = 0i64;
    let mut stopped = false;
    for line in &lines {
        let mut words = line.split_whitespace();
        let tag = words.next().unwrap_or_default();
        let num = |w: Option<&str>| -> i64 {
            w.and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("{}: bad line {line:?}", p.name()))
        };
        assert!(
            !stopped || tag == "done",
            "{}: {line:?} after the stop",
            p.name()
        );
        match tag {
            "batch" => {
                let (base, last) = (num(words.next()), num(words.next()));
                let digest = words.next().unwrap_or_default().to_string();
                assert!(
                    base <= next && next <= last,
                    "{}: a gap without offset_out_of_range: batch {base}..={last} read at \
                     position {next}",
                    p.name()
                );
                let again = f.batches.insert(base, (last, digest));
                assert!(again.is_none(), "{}: batch {base} read twice", p.name());
            }
            "rec" => {
                let entry = harness::reader_entries(std::slice::from_ref(line))
                    .pop()
                    .unwrap_or_else(|| panic!("{}: bad line {line:?}", p.name()));
                assert_eq!(
                    entry.offset,
                    next,
                    "{}: a gap without offset_out_of_range: offset {} after {}",
                    p.name(),
                    entry.offset,
                    next - 1
                );
                let want = Kind::Data {
                    writer: WRITER,
                    seq: entry.offset as u64,
                };
                assert_eq!(
                    entry.kind,
                    want,
                    "{}: offset {} holds another record",
                    p.name(),
                    entry.offset
                );
                f.records.insert(entry.offset, entry);
                next += 1;
            }
            "jump" => {
                let (from, to) = (num(words.next()), num(words.next()));
                assert_eq!(
                    from,
                    next,
                    "{}: {line:?} does not start at its position",
                    p.name()
                );
                assert!(
                    to > from,
                    "{}: offset_out_of_range at {from}, but the log starts at {to}: \
                     the offset was still there ({line:?})",
                    p.name()
                );
                f.jumps.push((from, to));
                next = to;
            }
            "stop" => {
                assert_eq!(num(words.next()), next, "{}: {line:?}", p.name());
                assert_eq!(next, stop, "{}: stop sentinel at another offset", p.name());
                stopped = true;
            }
            "done" => {
                assert!(stopped, "{}: done before the stop sentinel", p.name());
                assert_eq!(
                    num(words.next()),
                    f.records.len() as i64,
                    "{}: {line:?}",
                    p.name()
                );
                assert_eq!(
                    num(words.next()),
                    f.jumps.len() as i64,
                    "{}: {line:?}",
                    p.name()
                );
            }
            _ => panic!("{}: unexpected line {line:?}", p.name()),
        }
    }
    assert!(stopped, "{} never reached the stop sentinel", p.name());
    f
}

/// What process `pid` holds: mappings of files of partition `t-0`, how many of them
/// are of deleted files, and its open descriptors.
fn held_files(pid: i32) -> (u64, u64, u64) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let ours: Vec<&str> = maps.lines().filter(|l| l.contains("/t-0/")).collect();
    let deleted = ours.iter().filter(|l| l.ends_with("(deleted)")).count();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (ours.len() as u64, deleted as u64, fds as u64)
}

/// Every batch of the partition from its start: base offset -> (last offset, digest
/// of its bytes), as the `follow` role reports them.
fn read_batches(part: &oncelog::Partition) -> BTreeMap<i64, (i64, String)> {
    let mut reader = part.reader(part.start_offset()).unwrap().verify_crc(true);
    let mut out = BTreeMap::new();
    while let Some(batch) = reader.next_batch().unwrap() {
        out.insert(
            batch.header().base_offset,
            (
                batch.header().last_offset(),
                payload::digest(None, Some(batch.batch().bytes())),
            ),
        );
    }
    out
}

#[test]
fn followers_overtaken_by_retention_jump_to_the_log_start_and_agree_with_the_log() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let config = TopicConfig::from_pairs([
            ("segment.bytes", SEGMENT_BYTES.to_string().as_str()),
            ("retention.bytes", RETENTION_BYTES.to_string().as_str()),
            ("retention.ms", "-1"),
            ("index.interval.bytes", "512"),
        ])
        .unwrap();
        store.create_topic("t", 1, config).unwrap();
    }
    let mut fast = follower(dir.path(), "fast follower", 0);
    let mut slow = follower(dir.path(), "slow follower", SLOW_PAUSE_US);

    let mut cmd = role("append", dir.path(), "t");
    with(
        &mut cmd,
        &[
            ("id", WRITER.to_string()),
            ("count", RECORDS.to_string()),
            ("batch", BATCH.to_string()),
            ("value-size", "60".into()),
        ],
    );
    let mut writer = Proc::spawn("writer", cmd);
    let (status, lines) = writer.finish(LONG);
    assert!(
        status.success(),
        "writer: {status} {:?}; stderr: {}",
        &lines[lines.len().saturating_sub(3)..],
        writer.stderr()
    );
    let acks = harness::acks(&lines);
    assert_eq!(acks.len() as u64, RECORDS.div_ceil(BATCH), "writer acks");
    for a in &acks {
        assert_eq!(
            a.base, a.seq as i64,
            "a lone writer's seq is its offset: {a:?}"
        );
    }
    let wrote_for = started.elapsed();
    // Both followers are still at it (each stops only at the sentinel or an error).
    fast.assert_running();
    slow.assert_running();
    // Thousands of segments were deleted under them: what they keep mapped and open
    // is one segment list's worth at most, not a trail of deleted files.
    let deleted_segments = RECORDS * 100 / SEGMENT_BYTES;
    for p in [&fast, &slow] {
        let (mapped, deleted, fds) = held_files(p.pid());
        assert!(
            deleted <= 3 * (RETENTION_BYTES / SEGMENT_BYTES + 3) && fds < 64,
            "{} holds {mapped} mappings of partition files ({deleted} of deleted files) \
             and {fds} descriptors after about {deleted_segments} segments were deleted",
            p.name()
        );
    }

    // The stop sentinel, from yet another process.
    let mut cmd = role("probe", dir.path(), "t");
    cmd.arg("--stop");
    let mut stopper = Proc::spawn("stopper", cmd);
    let (status, lines) = stopper.finish(LONG);
    assert!(
        status.success(),
        "stopper: {status} {lines:?} {}",
        stopper.stderr()
    );
    let stop: i64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("probe "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|b| b.parse().ok())
        .expect("probe line");
    assert_eq!(
        stop, RECORDS as i64,
        "the stop sentinel follows the writer's records"
    );

    let fast = collect(&mut fast, stop);
    let slow = collect(&mut slow, stop);

    // The log as a fresh first opener finds it once every process has closed.
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let part = store.partition("t", 0).unwrap();
    let start = part.start_offset();
    let entries = harness::read_all(&part);
    let batches = read_batches(&part);
    harness::assert_dense_and_unique(&entries, start);
    assert_eq!(part.end_offset(), stop + 1);
    assert_eq!(
        entries.last().map(|e| (e.offset, e.kind)),
        Some((stop, Kind::Stop))
    );
    for e in &entries[..entries.len() - 1] {
        assert_eq!(
            e.kind,
            Kind::Data {
                writer: WRITER,
                seq: e.offset as u64
            },
            "the log holds another record at offset {}",
            e.offset
        );
    }
    // Retention ran all along: only the last few segments are left.
    let dir_of_partition = TopicMeta::partition_dir(dir.path(), "t", 0);
    let segments = std::fs::read_dir(&dir_of_partition)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log"))
        })
        .count() as u64;
    assert!(
        start > 0 && segments <= RETENTION_BYTES / SEGMENT_BYTES + 3,
        "retention did not keep the log small: start {start}, {segments} segments"
    );

    // Both followers read the retained range, and agree with the log at every offset.
    for (name, f) in [("fast follower", &fast), ("slow follower", &slow)] {
        for want in &entries[..entries.len() - 1] {
            let got = f.records.get(&want.offset);
            assert_eq!(
                got,
                Some(want),
                "{name} at offset {} (retained range {start}..={stop})",
                want.offset
            );
        }
    }
    for (name, f) in [("fast follower", &fast), ("slow follower", &slow)] {
        for (base, want) in &batches {
            assert_eq!(
                f.batches.get(base),
                Some(want),
                "{name}: the bytes of batch {base} differ from the log's"
            );
        }
    }
    // And with each other wherever both read the same offset.
    let mut both = 0;
    for (offset, a) in &fast.records {
        if let Some(b) = slow.records.get(offset) {
            assert_eq!(a, b, "the followers disagree at offset {offset}");
            both += 1;
        }
    }
    for (base, a) in &fast.batches {
        if let Some(b) = slow.batches.get(base) {
            assert_eq!(a, b, "the followers disagree on the bytes of batch {base}");
        }
    }
    assert!(
        !slow.jumps.is_empty(),
        "retention never overtook the slow follower (it read {} records): the \
         offset_out_of_range path was not exercised",
        slow.records.len()
    );
    let skipped = |f: &Followed| f.jumps.iter().map(|(a, b)| b - a).sum::<i64>();
    eprintln!(
        "{RECORDS} records written in {wrote_for:?}; log now {start}..={stop} in {segments} \
         segments; fast follower read {} records, {} jumps ({} offsets skipped); slow \
         follower read {} records, {} jumps ({} offsets skipped, first {:?}); {both} \
         offsets read by both; total {:?}",
        fast.records.len(),
        fast.jumps.len(),
        skipped(&fast),
        slow.records.len(),
        slow.jumps.len(),
        skipped(&slow),
        slow.jumps.first(),
        started.elapsed()
    );
}

/// A `Consumer` (not a bare reader) in another process, overtaken by retention:
/// with `auto.offset.reset=earliest` it carries on at the log start by itself; with
/// `none` each poll fails with `offset_out_of_range` until it seeks. Either way the
/// records it hands out are whole, in increasing offset order, and each one is the
/// writer's record for its offset.
#[test]
fn consumers_overtaken_by_retention_reset_or_fail_as_configured() {
    const COUNT: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let config = TopicConfig::from_pairs([
            ("segment.bytes", SEGMENT_BYTES.to_string().as_str()),
            ("retention.bytes", RETENTION_BYTES.to_string().as_str()),
            ("retention.ms", "-1"),
        ])
        .unwrap();
        store.create_topic("t", 1, config).unwrap();
        // The first records, so that the consumers start inside the first segment.
        let values: Vec<(Vec<u8>, Vec<u8>)> = (0..BATCH)
            .map(|seq| (payload::key(WRITER, seq), payload::value(WRITER, seq, 60)))
            .collect();
        let records: Vec<oncelog::Record> = values
            .iter()
            .map(|(k, v)| oncelog::Record::keyed(k, v))
            .collect();
        store.partition("t", 0).unwrap().append(&records).unwrap();
    }
    // The consumers read their first records, then wait until the writer is done:
    // by then retention has deleted the segments they were about to read, however
    // fast each process ran.
    let go = dir.path().join("writer-done");
    let consumer = |reset: &str| {
        let mut cmd = role("reset-consume", dir.path(), "t");
        with(
            &mut cmd,
            &[
                ("reset", reset.into()),
                ("until", COUNT.to_string()),
                ("pause-us", "3000".into()),
                ("go-file", go.display().to_string()),
            ],
        );
        let mut p = Proc::spawn(format!("consumer ({reset})"), cmd);
        p.expect("ready", LONG);
        p
    };
    let mut earliest = consumer("earliest");
    let mut none = consumer("none");
    let mut cmd = role("append", dir.path(), "t");
    with(
        &mut cmd,
        &[
            ("id", WRITER.to_string()),
            ("first-seq", BATCH.to_string()),
            ("count", (COUNT - BATCH).to_string()),
            ("batch", BATCH.to_string()),
            ("value-size", "60".into()),
        ],
    );
    let mut writer = Proc::spawn("writer", cmd);
    let (status, _) = writer.finish(LONG);
    assert!(status.success(), "writer: {status}; {}", writer.stderr());
    std::fs::write(&go, b"").unwrap();

    for (p, reset) in [(&mut earliest, "earliest"), (&mut none, "none")] {
        let (status, lines) = p.finish(LONG);
        assert!(
            status.success(),
            "{reset}: {status}; last lines {:?}; stderr: {}",
            &lines[lines.len().saturating_sub(3)..],
            p.stderr()
        );
        let mut last = -1i64;
        let (mut jumps, mut errors) = (0, 0);
        for line in &lines {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[0] {
                "rec" => {
                    let offset: i64 = words[1].parse().unwrap();
                    assert!(offset > last, "{reset}: offset {offset} after {last}");
                    assert_eq!(words[3], offset.to_string(), "{reset}: {line}");
                    if offset != last + 1 {
                        jumps += 1;
                    }
                    last = offset;
                }
                "err" => {
                    assert_eq!(line, "err offset_out_of_range", "{reset}");
                    errors += 1;
                }
                "seek" | "ready" | "done" => {}
                _ => panic!("{reset}: unexpected line {line:?}"),
            }
        }
        assert_eq!(last, COUNT as i64 - 1, "{reset}: did not reach the end");
        assert!(jumps > 0, "{reset}: retention never overtook the consumer");
        match reset {
            "earliest" => assert_eq!(errors, 0, "earliest resets by itself"),
            _ => assert!(errors > 0, "none must report offset_out_of_range"),
        }
    }
}
