//! Files of a store deleted, truncated, replaced or made unwritable from outside,
//! while other processes have the store open and at the next open after that. Each
//! case ends in an error that names the file, or is handled with every record
//! still readable; recovery never cuts records that were on stable storage to make
//! a damaged log look whole.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{role, with, Proc};
use oncelog::{ErrorKind, Record, Store, StoreOptions, TopicConfig};

const RECORDS: i64 = 300;
const LONG: Duration = Duration::from_secs(30);

/// A closed store with topic `t` of 2 partitions of 4 KiB segments, each holding
/// `RECORDS` records `<partition>:<i>`. The clean close leaves the recovery point
/// at the end.
fn build(dir: &Path) {
    let store = open(dir);
    let config =
        TopicConfig::from_pairs([("segment.bytes", "4096"), ("retention.ms", "-1")]).unwrap();
    store.create_topic("t", 2, config).unwrap();
    for p in 0..2 {
        let part = store.partition("t", p).unwrap();
        for i in 0..RECORDS {
            part.append(&[Record::value(format!("{p}:{i}").as_bytes())])
                .unwrap();
        }
        assert!(part.metrics().segments_rolled >= 5);
    }
    store.close().unwrap();
}

/// A temporary directory holding the store of [`build`].
fn built() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path());
    tmp
}

/// Opens the store at `dir` with the default options.
fn open(dir: &Path) -> Store {
    Store::open(dir, StoreOptions::default()).unwrap()
}

/// Appends one more record to partition 0: the partition is writable.
fn append_more(store: &Store) {
    store
        .partition("t", 0)
        .unwrap()
        .append(&[Record::value(b"more")])
        .unwrap();
}

/// Sets the permission bits of `dirs` to `mode`.
fn set_modes(dirs: &[PathBuf], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    for d in dirs {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Reads partition `p` from `from` to the end and checks every record.
fn read_from(store: &Store, p: u32, from: i64) -> oncelog::Result<i64> {
    let part = store.partition("t", p)?;
    let mut reader = part.reader(from)?.verify_crc(true);
    let mut next = from;
    while let Some(batch) = reader.next_batch()? {
        for record in batch.records() {
            let record = record?;
            assert_eq!(record.offset, next);
            if next < RECORDS {
                assert_eq!(record.value.unwrap(), format!("{p}:{next}").as_bytes());
            }
            next += 1;
        }
    }
    Ok(next)
}

fn partition_dir(dir: &Path, p: u32) -> PathBuf {
    dir.join(format!("t-{p}"))
}

/// `.log` files of partition `p`, oldest first.
fn logs(dir: &Path, p: u32) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(partition_dir(dir, p))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Every file of a partition with its size, to show that nothing was cut.
fn sizes(dir: &Path, p: u32) -> Vec<(PathBuf, u64)> {
    logs(dir, p)
        .into_iter()
        .map(|f| {
            let len = std::fs::metadata(&f).unwrap().len();
            (f, len)
        })
        .collect()
}

/// A process holding the store open (so that the test's opens attach to it), that
/// closes it cleanly once the returned file is created.
fn holder(dir: &Path) -> (Proc, PathBuf) {
    let go = dir.join("go");
    let mut cmd = role("hold", dir, "t");
    with(&mut cmd, &[("go-file", go.display().to_string())]);
    let mut p = Proc::spawn("holder", cmd);
    p.expect("holding", LONG);
    (p, go)
}

fn release(mut holder: Proc, go: &Path) -> Vec<String> {
    std::fs::write(go, b"").unwrap();
    holder.finish(LONG).1
}

fn err_of<T>(r: oncelog::Result<T>) -> oncelog::Error {
    match r {
        Ok(_) => panic!("succeeded"),
        Err(e) => e,
    }
}

/// The base offset a segment file is named for.
fn base_of(path: &Path) -> i64 {
    path.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// The first opener refuses with `corrupt`, naming the recovery point (records up to
/// it were on stable storage), and cuts no file of partition 0.
fn refused_below_the_recovery_point(dir: &Path, context: &str) {
    let before = sizes(dir, 0);
    let e = err_of(Store::open(dir, StoreOptions::default()));
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{context}{e}");
    assert!(e.message().contains("recovery point"), "{context}{e}");
    assert_eq!(
        sizes(dir, 0),
        before,
        "{context}recovery cut files it refused"
    );
}

#[test]
fn a_deleted_partition_directory_is_an_error_naming_it() {
    let tmp = built();
    let dir = tmp.path();
    let (held, go) = holder(dir);
    std::fs::remove_dir_all(partition_dir(dir, 1)).unwrap();

    // While open elsewhere: the lost partition fails by name, the other works.
    let store = open(dir);
    let e = err_of(store.partition("t", 1));
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(e.message().contains("t-1/partition.ctl"), "{e}");
    assert_eq!(read_from(&store, 0, 0).unwrap(), RECORDS);
    append_more(&store);
    drop(store);
    release(held, &go);

    // At the next first open: the store refuses to open without it.
    let e = err_of(Store::open(dir, StoreOptions::default()));
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert!(
        e.message().contains("t-1") && e.message().contains("missing"),
        "{e}"
    );
}

#[test]
fn a_deleted_control_block_or_checkpoint_is_rebuilt_at_the_next_open() {
    for file in ["partition.ctl", "recovery.checkpoint"] {
        let tmp = built();
        let dir = tmp.path();
        let (held, go) = holder(dir);
        std::fs::remove_file(partition_dir(dir, 0).join(file)).unwrap();
        let store = open(dir);
        match file {
            // A new opener cannot attach to a control block that is gone.
            "partition.ctl" => {
                let e = err_of(store.partition("t", 0));
                assert_eq!(e.kind(), ErrorKind::Io, "{e}");
                assert!(e.message().contains("t-0/partition.ctl"), "{e}");
            }
            // Only the recovery point is lost: nothing changes while open.
            _ => assert_eq!(read_from(&store, 0, 0).unwrap(), RECORDS),
        }
        drop(store);
        release(held, &go);
        let store = open(dir);
        assert_eq!(read_from(&store, 0, 0).unwrap(), RECORDS, "{file}");
        append_more(&store);
    }
}

#[test]
fn a_deleted_active_segment_is_refused_at_the_next_open_and_nothing_is_cut() {
    let tmp = built();
    let dir = tmp.path();
    let (held, go) = holder(dir);
    let active = logs(dir, 0).pop().unwrap();
    std::fs::remove_file(&active).unwrap();
    let store = open(dir);
    let e = err_of(store.partition("t", 0));
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(e.message().contains(&*active.to_string_lossy()), "{e}");
    drop(store);
    release(held, &go);

    // The recovery point says records up to the end were on stable storage: the
    // first opener refuses rather than silently restart the log at the lost base.
    refused_below_the_recovery_point(dir, "");

    // Removing the checkpoint, as the message says, accepts the loss.
    std::fs::remove_file(partition_dir(dir, 0).join("recovery.checkpoint")).unwrap();
    let store = open(dir);
    assert_eq!(read_from(&store, 0, 0).unwrap(), base_of(&active));
}

#[test]
fn a_deleted_sealed_segment_is_a_gap_that_reads_report_and_the_next_open_refuses() {
    let tmp = built();
    let dir = tmp.path();
    let (held, go) = holder(dir);
    let all = logs(dir, 0);
    let (gone, next) = (&all[1], &all[2]);
    for ext in ["log", "index", "timeindex", "txnindex"] {
        let _ = std::fs::remove_file(gone.with_extension(ext));
    }
    let next_base = base_of(next);
    let check = |store: &Store, end: i64| {
        let e = err_of(read_from(store, 0, 0));
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        assert!(
            e.message().contains("missing") && e.message().contains(&format!("..{next_base}")),
            "{e}"
        );
        assert_eq!(read_from(store, 0, next_base).unwrap(), end);
    };
    let store = open(dir);
    check(&store, RECORDS);
    append_more(&store);
    drop(store);
    release(held, &go);
    // The first opener finds the gap below the recovery point and cuts nothing.
    refused_below_the_recovery_point(dir, "");
}

#[test]
fn a_truncated_segment_is_refused_at_the_next_open_and_nothing_is_cut() {
    for which in [0, 2] {
        let tmp = built();
        let dir = tmp.path();
        let seg = &logs(dir, 0)[which];
        let len = std::fs::metadata(seg).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(seg)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        refused_below_the_recovery_point(dir, &format!("segment {which}: "));
    }
}

/// What a process experiences when a segment it has mapped is truncated under it:
/// reading the lost pages raises SIGBUS, as with any memory-mapped store. The next
/// open reports the damage.
#[test]
fn a_segment_truncated_under_a_reader_kills_it_with_sigbus() {
    let tmp = built();
    let dir = tmp.path();
    let go = dir.join("go");
    let mut cmd = role("read-mapped", dir, "t");
    with(&mut cmd, &[("go-file", go.display().to_string())]);
    let mut reader = Proc::spawn("reader", cmd);
    reader.expect("mapped 0", LONG);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&logs(dir, 0)[0])
        .unwrap()
        .set_len(0)
        .unwrap();
    std::fs::write(&go, b"").unwrap();
    let status = reader.wait(LONG);
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
    let e = err_of(Store::open(dir, StoreOptions::default()));
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
}

/// Moves the layout version of a control block by `delta` (a u32 after the 8-byte
/// magic, `docs/FORMAT.md`; shared memory, in the host's byte order).
#[allow(clippy::host_endian_bytes)]
fn forge_layout_version(ctl: &Path, delta: i64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(ctl)
        .unwrap();
    let mut v = [0u8; 4];
    f.read_exact_at(&mut v, 8).unwrap();
    let old = i64::from(u32::from_ne_bytes(v));
    f.write_all_at(&((old + delta) as u32).to_ne_bytes(), 8)
        .unwrap();
}

#[test]
fn a_control_block_of_another_layout_version_is_rebuilt_or_refused() {
    let tmp = built();
    let dir = tmp.path();
    let ctl = partition_dir(dir, 0).join("partition.ctl");

    // Nobody has the store open: the first opener rebuilds every control block.
    forge_layout_version(&ctl, -1);
    let store = open(dir);
    assert_eq!(read_from(&store, 0, 0).unwrap(), RECORDS);
    drop(store);

    // Someone has it open (say, a process of an older build): attaching is refused.
    let (held, go) = holder(dir);
    forge_layout_version(&ctl, -1);
    let store = open(dir);
    let e = err_of(store.partition("t", 0));
    assert_eq!(e.kind(), ErrorKind::IncompatibleFormat, "{e}");
    assert!(e.message().contains("t-0/partition.ctl"), "{e}");
    assert_eq!(read_from(&store, 1, 0).unwrap(), RECORDS);
    drop(store);
    release(held, &go);
    let store = open(dir);
    assert_eq!(read_from(&store, 0, 0).unwrap(), RECORDS);
}

#[test]
fn a_file_replaced_by_a_directory_or_a_symlink() {
    let tmp = built();
    let dir = tmp.path();
    // A directory where a file belongs: an error naming it, and nothing else changes.
    for file in ["t-0/partition.ctl", "oncelog.meta"] {
        let path = dir.join(file);
        let saved = dir.join("saved");
        std::fs::rename(&path, &saved).unwrap();
        std::fs::create_dir(&path).unwrap();
        let e = err_of(Store::open(dir, StoreOptions::default()));
        assert_eq!(e.kind(), ErrorKind::Io, "{file}: {e}");
        assert!(e.message().contains(file), "{e}");
        std::fs::remove_dir(&path).unwrap();
        std::fs::rename(&saved, &path).unwrap();
    }
    // A segment moved elsewhere and symlinked back: followed.
    let active = logs(dir, 0).pop().unwrap();
    let elsewhere = dir.join("moved-segment");
    std::fs::rename(&active, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &active).unwrap();
    let store = open(dir);
    assert_eq!(read_from(&store, 0, 0).unwrap(), RECORDS);
    append_more(&store);
    drop(store);
    let _ = std::fs::remove_file(&elsewhere);
}

#[test]
fn a_store_its_opener_cannot_write_is_an_error_naming_the_file() {
    let tmp = built();
    let dir = tmp.path();
    let mut cmd = role("hold", dir, "t");
    // SAFETY: plain libc call.
    let dirs = [dir.to_path_buf(), dir.join("topics"), partition_dir(dir, 0)];
    if unsafe { libc::geteuid() } == 0 {
        // Root writes anywhere: the opener runs as nobody over a 0755 store.
        set_modes(&dirs[..1], 0o755);
        with(&mut cmd, &[("drop-uid", "65534".into())]);
    } else {
        set_modes(&dirs, 0o555);
    }
    let mut p = Proc::spawn("read-only opener", cmd);
    let line = p.expect("err", LONG);
    assert!(
        line.starts_with("err io ") && line.contains("oncelog.lock") && line.contains("ermission"),
        "{line}"
    );
    assert_eq!(p.wait(LONG).code(), Some(1));
    set_modes(&dirs, 0o755);
    let store = open(dir);
    assert_eq!(read_from(&store, 0, 0).unwrap(), RECORDS);
}

#[test]
fn lost_topic_metadata_never_lets_create_topic_delete_records() {
    let tmp = built();
    let dir = tmp.path();
    std::fs::remove_file(dir.join("topics/t.properties")).unwrap();
    let store = open(dir);
    let e = err_of(store.create_topic("t", 2, TopicConfig::default()));
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert!(
        e.message().contains("t-0") && e.message().contains("holds records"),
        "{e}"
    );
    assert_eq!(logs(dir, 0).len(), sizes(dir, 0).len());
    assert!(logs(dir, 0).len() > 5, "records deleted");
}
