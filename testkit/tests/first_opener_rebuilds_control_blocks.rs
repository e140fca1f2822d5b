//! The store's first opener trusts no control block: it rebuilds each from the log.
//!
//! * A process that has the store to itself dies inside the append lock (a failpoint
//!   aborts it there, or SIGKILL lands while a failpoint holds it asleep there).
//!   The next opener — the test process — opens at once, appends without waiting on
//!   the dead holder's lock, finds a fresh block (`repairs` 0, counters from zero:
//!   rebuilt, not repaired) and every record the dead process acknowledged.
//! * A `partition.ctl` replaced by garbage or truncated while nobody has the store
//!   open is rebuilt by the next opener, and nothing is lost.
//! * The same damage while another process has the store open cannot be rebuilt
//!   (that process still uses its mapping): a newcomer gets `incompatible_format`
//!   from `Store::partition` — not a crash, not a block it would misread — and the
//!   first opener after the holder is gone rebuilds it.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{harness, role, with, Proc};
use oncelog::{ErrorKind, Record, Store, StoreOptions, TopicConfig, TopicMeta};
use oncelog_testkit::harness::Ack;
use oncelog_testkit::payload;
use oncelog_testkit::rng::XorShift;

const LONG: Duration = Duration::from_secs(30);
/// Records of the writer that runs (and closes the store) before the dead one.
const FIRST_RECORDS: u64 = 2_000;
/// How long the first opener may take to open, and then to append its first record,
/// after a holder died (debug build, busy 2-core machine; both take milliseconds).
/// Backstops only: that the append did not wait is `lock_waits` 0, and a lock that
/// could not be taken at all would fail with `timeout` after `lock_timeout` (5 s).
const OPEN_BOUND: Duration = Duration::from_millis(1_000);
const APPEND_BOUND: Duration = Duration::from_millis(200);
/// Size of `partition.ctl` (FORMAT.md).
const CTL_LEN: usize = 16 * 1024;
/// The writer id of the one record the next opener (the test process or a probe)
/// appends.
const NEXT_ID: u32 = 900;

fn create_topic(dir: &Path) {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let config =
        TopicConfig::from_pairs([("segment.bytes", "65536"), ("index.interval.bytes", "1024")])
            .unwrap();
    store.create_topic("t", 1, config).unwrap();
}

fn ctl_path(dir: &Path) -> PathBuf {
    TopicMeta::partition_dir(dir, "t", 0).join("partition.ctl")
}

/// Runs an `append` child to its end (it opens and closes the store); returns its
/// acknowledgements.
fn append_all(dir: &Path, id: u32, count: u64, batch: u64) -> Vec<Ack> {
    let mut cmd = role("append", dir, "t");
    with(
        &mut cmd,
        &[
            ("id", id.to_string()),
            ("count", count.to_string()),
            ("batch", batch.to_string()),
        ],
    );
    let mut p = Proc::spawn(format!("appender {id}"), cmd);
    let (status, lines) = p.finish(LONG);
    assert!(
        status.success(),
        "{}: {status} {:?}; stderr: {}",
        p.name(),
        &lines[lines.len().saturating_sub(3)..],
        p.stderr()
    );
    let acks = harness::acks(&lines);
    assert_eq!(
        acks.len() as u64,
        count.div_ceil(batch),
        "{} acks",
        p.name()
    );
    acks
}

/// A `probe` child: opens the store, appends one record of writer `id`, reads it
/// back. Returns its exit status and its lines.
fn probe(dir: &Path, id: u32) -> (Proc, std::process::ExitStatus, Vec<String>) {
    let mut cmd = role("probe", dir, "t");
    with(&mut cmd, &[("id", id.to_string()), ("seq", "0".into())]);
    let mut p = Proc::spawn(format!("probe {id}"), cmd);
    let (status, lines) = p.finish(LONG);
    (p, status, lines)
}

/// A probe that must succeed as the store's first opener: returns the ack of its
/// record; asserts it found a rebuilt block (no repair).
fn first_opener_probe(dir: &Path, id: u32, what: &str) -> Ack {
    let (p, status, lines) = probe(dir, id);
    assert!(
        status.success(),
        "{what}: the next opener failed ({status}): {lines:?}; stderr: {}",
        p.stderr()
    );
    let n: Vec<i64> = lines
        .iter()
        .find_map(|l| l.strip_prefix("probe "))
        .expect("probe line")
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(
        n[4], 0,
        "{what}: the next opener repaired the block instead of rebuilding it"
    );
    Ack {
        base: n[0],
        last: n[0],
        seq: 0,
    }
}

/// Reads the whole partition as a fresh first opener and checks it holds exactly
/// the writers' records: dense from 0, each writer's records a gapless prefix of its
/// sequence, every acknowledged batch at its offsets. `exact` writers must have no
/// record beyond what they acknowledged. Returns the records of each writer.
fn verify(dir: &Path, writers: &[(u32, &[Ack], bool)], what: &str) -> Vec<(u32, u64)> {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let part = store.partition("t", 0).unwrap();
    let entries = harness::read_all(&part);
    assert_eq!(part.start_offset(), 0, "{what}");
    assert_eq!(part.end_offset(), entries.len() as i64, "{what}");
    harness::assert_dense_and_unique(&entries, 0);
    let by = harness::by_writer(&entries);
    for w in by.keys() {
        assert!(
            writers.iter().any(|(id, _, _)| id == w),
            "{what}: records of unknown writer {w}"
        );
    }
    writers
        .iter()
        .map(|&(id, acks, exact)| {
            let n = harness::assert_writer(&entries, 0, &by, id, acks);
            let acked: i64 = acks.iter().map(|a| a.last - a.base + 1).sum();
            if exact {
                assert_eq!(
                    n as i64, acked,
                    "{what}: writer {id} has unacknowledged records"
                );
            }
            (id, n)
        })
        .collect()
}

/// The futex word of the append lock in the control block at `ctl`, as the file
/// holds it. The lock is a glibc robust mutex right after the block's 16-byte header
/// (FORMAT.md, `partition.ctl`); glibc keeps the futex word first in
/// `pthread_mutex_t`, where the kernel sets `FUTEX_OWNER_DIED` (and clears the
/// owner's thread id) when a holder dies. `None` where that layout is not known.
fn lock_word(ctl: &Path) -> Option<u32> {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return None;
    }
    let bytes = std::fs::read(ctl).ok()?;
    let word: [u8; 4] = bytes.get(16..20)?.try_into().ok()?;
    // The control block is native-endian shared memory by design.
    #[allow(clippy::host_endian_bytes)]
    let word = u32::from_ne_bytes(word);
    Some(word)
}

const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// How the lone writer dies inside the append lock.
#[derive(Clone, Copy, Debug)]
enum Death {
    /// `append.before_publish=abort`: its first batch written, not published.
    Abort,
    /// SIGKILL while `append.before_publish=sleep:200000` holds it in the lock,
    /// after it acknowledged four batches.
    KillWhileAsleep,
}

fn a_lone_writer_dies_inside_the_lock(death: Death) {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    create_topic(dir.path());
    // Data from an earlier process, closed cleanly, with a few rolls behind it.
    let first = append_all(dir.path(), 1, FIRST_RECORDS, 5);

    // The writer that dies: alone with the store (the first opener of its own run).
    let mut cmd = role("append", dir.path(), "t");
    with(
        &mut cmd,
        &[
            ("id", "2".into()),
            ("count", "1000000".into()),
            ("batch", "4".into()),
        ],
    );
    cmd.env(
        "ONCELOG_FAILPOINTS",
        match death {
            Death::Abort => "append.before_publish=abort",
            Death::KillWhileAsleep => "append.before_publish=sleep:200000",
        },
    );
    let mut writer = Proc::spawn(format!("writer 2 ({death:?})"), cmd);
    writer.expect("ready", LONG);
    let mut lines = Vec::new();
    let status = match death {
        Death::Abort => {
            let status = writer.wait(LONG);
            assert_eq!(status.signal(), Some(libc::SIGABRT), "{}", writer.stderr());
            status
        }
        Death::KillWhileAsleep => {
            // Each append sleeps 200 ms in the lock before publishing; the rest of
            // the loop takes microseconds, so 10 ms after an ack it is asleep in the
            // lock again (the lock word, checked below, confirms it).
            for _ in 0..4 {
                lines.push(writer.expect("ack ", LONG));
            }
            std::thread::sleep(Duration::from_millis(10));
            writer.kill();
            let status = writer.wait(LONG);
            assert_eq!(status.signal(), Some(libc::SIGKILL), "{}", writer.stderr());
            status
        }
    };
    lines.extend(writer.drain(LONG));
    let acked = harness::acks(&lines);
    assert!(
        !lines.iter().any(|l| l.starts_with("err")),
        "{}: {lines:?}",
        writer.name()
    );
    let ctl = ctl_path(dir.path());
    let word = lock_word(&ctl);
    if let Some(word) = word {
        assert!(
            word & FUTEX_OWNER_DIED != 0 && word & FUTEX_TID_MASK == 0,
            "{death:?}: the writer did not die holding the append lock (lock word {word:#x})"
        );
    }

    // The test process is now the first opener.
    let options = StoreOptions {
        lock_timeout: Duration::from_secs(5),
        ..StoreOptions::default()
    };
    let t = Instant::now();
    let store = Store::open(dir.path(), options).unwrap();
    let part = store.partition("t", 0).unwrap();
    let opened = t.elapsed();
    let fresh = part.metrics();
    assert_eq!(
        (fresh.records_appended, fresh.repairs, fresh.lock_waits),
        (0, 0, 0),
        "{death:?}: the block the first opener made is not fresh: {fresh:?}"
    );
    let (key, value) = (payload::key(NEXT_ID, 0), payload::value(NEXT_ID, 0, 48));
    let t = Instant::now();
    let info = part.append(&[Record::keyed(&key, &value)]).unwrap();
    let appended = t.elapsed();
    let m = part.metrics();
    assert_eq!(
        m.repairs, 0,
        "{death:?}: the first opener repaired the dead holder's block instead of rebuilding it: {m:?}"
    );
    assert_eq!(
        m.lock_waits, 0,
        "{death:?}: the first append waited for the lock: {m:?}"
    );
    assert_eq!(m.batches_appended, 1, "{death:?}: {m:?}");
    assert!(
        opened < OPEN_BOUND,
        "{death:?}: opening after the dead holder took {opened:?}"
    );
    assert!(
        appended < APPEND_BOUND,
        "{death:?}: the first append after the dead holder took {appended:?}"
    );
    if word.is_some() {
        assert_eq!(
            lock_word(&ctl),
            Some(0),
            "{death:?}: the rebuilt lock is not free after the append"
        );
    }
    assert_eq!(info.base_offset, part.end_offset() - 1);
    drop(part);
    store.close().unwrap();

    let parent = [Ack {
        base: info.base_offset,
        last: info.base_offset,
        seq: 0,
    }];
    let counts = verify(
        dir.path(),
        &[
            (1, &first, true),
            (2, &acked, false),
            (NEXT_ID, &parent, true),
        ],
        &format!("{death:?}"),
    );
    assert_eq!(counts[0].1, FIRST_RECORDS);
    let acked_records: u64 = acked.iter().map(|a| (a.last - a.base + 1) as u64).sum();
    // The batch it died on was whole in the page cache: a first opener may keep it
    // (it was never acknowledged, so either way is correct), never part of it.
    let kept = counts[1].1 - acked_records;
    assert!(
        kept == 0 || kept == 4,
        "{death:?}: {kept} unacknowledged records of the dead writer are in the log"
    );
    eprintln!(
        "{death:?} ({status}): {} acknowledged by the dead writer, {kept} more kept; \
         lock word {word:?}; first opener: open {opened:?}, first append {appended:?}; \
         total {:?}",
        acked_records,
        started.elapsed()
    );
}

#[test]
fn a_lone_writer_aborting_inside_the_lock_leaves_a_store_the_next_opener_rebuilds() {
    a_lone_writer_dies_inside_the_lock(Death::Abort);
}

#[test]
fn a_lone_writer_killed_inside_the_lock_leaves_a_store_the_next_opener_rebuilds() {
    a_lone_writer_dies_inside_the_lock(Death::KillWhileAsleep);
}

/// Ways a `partition.ctl` gets damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Damage {
    /// A new file of the right size and random bytes renamed over it (a process
    /// that has it mapped keeps the old file).
    ReplacedByGarbage,
    /// Random bytes written over it in place.
    OverwrittenWithGarbage,
    /// Truncated in place to 0 bytes.
    TruncatedToZero,
    /// Truncated in place inside the header (through the lock).
    TruncatedInTheHeader,
}

const DAMAGES: [Damage; 4] = [
    Damage::ReplacedByGarbage,
    Damage::OverwrittenWithGarbage,
    Damage::TruncatedToZero,
    Damage::TruncatedInTheHeader,
];

fn damage(ctl: &Path, how: Damage, seed: u64) {
    let mut rng = XorShift::new(seed);
    let mut garbage: Vec<u8> = (0..CTL_LEN).map(|_| rng.next_u64() as u8).collect();
    // Not even the magic's first byte survives.
    garbage[0] = !b'O';
    garbage[7] = !b'1';
    match how {
        Damage::ReplacedByGarbage => {
            let tmp = ctl.with_extension("ctl.garbage");
            std::fs::write(&tmp, &garbage).unwrap();
            std::fs::rename(&tmp, ctl).unwrap();
        }
        Damage::OverwrittenWithGarbage => {
            use std::os::unix::fs::FileExt;
            let f = std::fs::OpenOptions::new().write(true).open(ctl).unwrap();
            f.write_all_at(&garbage, 0).unwrap();
        }
        Damage::TruncatedToZero | Damage::TruncatedInTheHeader => {
            let f = std::fs::OpenOptions::new().write(true).open(ctl).unwrap();
            f.set_len(if how == Damage::TruncatedToZero {
                0
            } else {
                20
            })
            .unwrap();
        }
    }
}

/// Runs an `append` child that is SIGKILLed after `acks` acknowledgements (no clean
/// shutdown: the last batches are in the page cache only, past the recovery point);
/// returns every acknowledgement it wrote.
fn append_then_die(dir: &Path, id: u32, acks: usize) -> Vec<Ack> {
    let mut cmd = role("append", dir, "t");
    with(
        &mut cmd,
        &[
            ("id", id.to_string()),
            ("count", "1000000".into()),
            ("batch", "5".into()),
        ],
    );
    let mut p = Proc::spawn(format!("appender {id} (killed)"), cmd);
    p.expect("ready", LONG);
    let mut lines: Vec<String> = (0..acks).map(|_| p.expect("ack ", LONG)).collect();
    p.kill();
    let status = p.wait(LONG);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{}", p.stderr());
    lines.extend(p.drain(LONG));
    harness::acks(&lines)
}

#[test]
fn a_control_block_damaged_while_the_store_is_closed_is_rebuilt_by_the_next_opener() {
    let started = Instant::now();
    for (i, how) in DAMAGES.into_iter().enumerate() {
        // Once after a clean close, once after the last process was killed.
        for killed in [false, true] {
            let what = format!(
                "{how:?} while closed (after {})",
                if killed { "a SIGKILL" } else { "a clean close" }
            );
            let dir = tempfile::tempdir().unwrap();
            create_topic(dir.path());
            let first = if killed {
                append_then_die(dir.path(), 1, FIRST_RECORDS as usize / 5)
            } else {
                append_all(dir.path(), 1, FIRST_RECORDS, 5)
            };
            damage(&ctl_path(dir.path()), how, i as u64);
            let probed = first_opener_probe(dir.path(), NEXT_ID, &what);
            let ctl_len = std::fs::metadata(ctl_path(dir.path())).unwrap().len();
            assert_eq!(ctl_len, CTL_LEN as u64, "{what}: the block was not rebuilt");
            let counts = verify(
                dir.path(),
                &[(1, &first, !killed), (NEXT_ID, &[probed], true)],
                &what,
            );
            assert_eq!(probed.base, counts[0].1 as i64, "{what}");
        }
    }
    eprintln!(
        "{} kinds of damage, after a clean close and after a SIGKILL, rebuilt in {:?}",
        DAMAGES.len(),
        started.elapsed()
    );
}

#[test]
fn a_control_block_damaged_while_the_store_is_open_is_refused_to_newcomers() {
    let started = Instant::now();
    let mut errors = Vec::new();
    for (i, how) in DAMAGES.into_iter().enumerate() {
        let what = format!("{how:?} while open");
        let dir = tempfile::tempdir().unwrap();
        create_topic(dir.path());
        let first = append_all(dir.path(), 1, FIRST_RECORDS, 5);
        // A process with the partition open, waiting to append.
        let go = dir.path().join("go");
        let mut cmd = role("append", dir.path(), "t");
        with(
            &mut cmd,
            &[
                ("id", "2".into()),
                ("count", "300".into()),
                ("batch", "3".into()),
                ("go-file", go.display().to_string()),
            ],
        );
        let mut holder = Proc::spawn(format!("holder ({what})"), cmd);
        holder.expect("ready", LONG);
        let ctl = ctl_path(dir.path());
        damage(&ctl, how, 100 + i as u64);

        // A newcomer process: a clear error, no crash.
        let (p, status, lines) = probe(dir.path(), NEXT_ID);
        assert_eq!(
            status.signal(),
            None,
            "{what}: the newcomer crashed ({status}); stderr: {}",
            p.stderr()
        );
        assert_eq!(
            status.code(),
            Some(1),
            "{what}: the newcomer did not fail as it should: {lines:?}; stderr: {}",
            p.stderr()
        );
        let err = lines.first().map(String::as_str).unwrap_or_default();
        assert!(
            err.starts_with("err incompatible_format ") && err.contains("partition.ctl"),
            "{what}: the newcomer's error is {err:?}"
        );
        // The same in this process: the store opens (it is not the first opener, so
        // it touches no control block); the partition is refused.
        {
            let store = Store::open(dir.path(), StoreOptions::default())
                .unwrap_or_else(|e| panic!("{what}: Store::open: {e}"));
            let e = match store.partition("t", 0) {
                Ok(_) => panic!("{what}: a newcomer attached to the damaged control block"),
                Err(e) => e,
            };
            assert_eq!(e.kind(), ErrorKind::IncompatibleFormat, "{what}: {e}");
            assert!(e.is_fatal(), "{what}: {e}");
            errors.push(format!("{how:?}: {e}"));
            store.close().unwrap();
        }
        holder.assert_running();

        // The holder keeps its mapping. Where the damage replaced the file, its own
        // mapping is intact: it appends and closes normally. Damage in place went
        // through its mapping too; it is killed without touching the store again.
        let held = if how == Damage::ReplacedByGarbage {
            std::fs::write(&go, b"").unwrap();
            let (status, lines) = holder.finish(LONG);
            assert!(
                status.success(),
                "{what}: holder {status} {:?}; stderr: {}",
                &lines[lines.len().saturating_sub(3)..],
                holder.stderr()
            );
            assert_eq!(lines.last().map(String::as_str), Some("done"), "{what}");
            harness::acks(&lines)
        } else {
            holder.kill();
            let status = holder.wait(LONG);
            assert_eq!(status.signal(), Some(libc::SIGKILL), "{what}");
            Vec::new()
        };

        // Alone again: the next opener rebuilds the block; nothing is lost.
        let probed = first_opener_probe(dir.path(), NEXT_ID, &what);
        assert_eq!(
            probed.base,
            (FIRST_RECORDS + 3 * held.len() as u64) as i64,
            "{what}"
        );
        verify(
            dir.path(),
            &[
                (1, &first, true),
                (2, &held, true),
                (NEXT_ID, &[probed], true),
            ],
            &what,
        );
    }
    eprintln!(
        "{} kinds of damage refused to newcomers in {:?}:\n  {}",
        DAMAGES.len(),
        started.elapsed(),
        errors.join("\n  ")
    );
}
