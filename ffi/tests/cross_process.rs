//! C and Rust processes on one store: the C programs in `tests/programs/` are
//! compiled against `include/oncelog.h` and the library cargo just built, and run as
//! real processes next to this (Rust) test process.
//!
//! * A C producer process and a Rust consumer reading at the same time see the same
//!   records, at the same partitions (Kafka's partitioner on both sides) and offsets.
//! * A C transactional producer killed with SIGKILL mid-transaction leaves nothing
//!   visible to read_committed readers, and a restart with the same
//!   `transactional.id` completes its own transaction.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use oncelog::partitioner::partition_for_key;
use oncelog::{
    Consumer, ConsumerConfig, ConsumerRecord, Store, StoreOptions, TopicConfig, TopicPartition,
};

const LONG: Duration = Duration::from_secs(60);

/// The directory of C programs compiled once for this test binary.
fn programs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This binary is target/<profile>/deps/cross_process-<hash>; cargo built the
        // library next to it.
        let deps = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        let built = deps.join("liboncelog_ffi.so");
        assert!(built.exists(), "{} is missing", built.display());
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ffi-cross-process");
        let lib = dir.join("lib");
        std::fs::create_dir_all(&lib).unwrap();
        // The programs load the library by its SONAME.
        let soname = lib.join("liboncelog.so.0");
        let _ = std::fs::remove_file(&soname);
        std::os::unix::fs::symlink(&built, &soname).unwrap();
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        for name in ["produce_keyed", "txn_producer"] {
            let status = Command::new("cc")
                .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
                .arg(crate_dir.join("../include"))
                .arg("-o")
                .arg(dir.join(name))
                .arg(crate_dir.join("tests/programs").join(format!("{name}.c")))
                .arg(format!("-L{}", lib.display()))
                .arg("-l:liboncelog.so.0")
                .arg(format!("-Wl,-rpath,{}", lib.display()))
                .status()
                .expect("cc runs");
            assert!(status.success(), "compiling {name}.c failed");
        }
        dir
    })
}

/// A running C program whose stdout lines arrive on a channel.
struct CProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl CProcess {
    fn spawn(name: &str, args: &[&str]) -> CProcess {
        let mut child = Command::new(programs().join(name))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        CProcess { child, lines }
    }

    /// Waits for the line `want`, returning the lines before it.
    fn expect(&self, want: &str) -> Vec<String> {
        let deadline = Instant::now() + LONG;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == want => return before,
                Ok(line) => before.push(line),
                Err(e) => panic!("no {want:?} from the C program ({e}); got {before:?}"),
            }
        }
    }

    fn wait_success(mut self) {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the C program failed: {status}");
    }
}

fn consumer(store: &Store, topic: &str, partitions: u32, isolation: &str) -> Consumer {
    let config = ConsumerConfig::from_pairs([
        ("auto.offset.reset", "earliest"),
        ("isolation.level", isolation),
    ])
    .unwrap();
    let mut c = Consumer::new(store, config).unwrap();
    let tps: Vec<_> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    c.assign(&tps).unwrap();
    c
}

fn values(records: &[ConsumerRecord]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    v.sort();
    v
}

/// Polls until nothing arrives for `idle`.
fn read_all(c: &mut Consumer, idle: Duration) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    loop {
        let got = c.poll(idle).unwrap();
        if got.is_empty() {
            return out;
        }
        out.extend(got);
    }
}

#[test]
fn a_c_producer_process_and_a_rust_consumer_see_the_same_records() {
    const COUNT: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store
        .create_topic("shared", 3, TopicConfig::default())
        .unwrap();
    let mut c = consumer(&store, "shared", 3, "read_uncommitted");

    let path = dir.path().to_str().unwrap();
    let producer = CProcess::spawn("produce_keyed", &[path, "shared", &COUNT.to_string()]);
    // Read while the C process writes.
    let mut seen = Vec::new();
    let deadline = Instant::now() + LONG;
    while seen.len() < COUNT && Instant::now() < deadline {
        seen.extend(c.poll(Duration::from_millis(200)).unwrap());
    }
    let reported = producer.expect("done");
    producer.wait_success();
    assert_eq!(seen.len(), COUNT, "the Rust consumer saw every record");
    assert!(c.poll(Duration::from_millis(100)).unwrap().is_empty());

    // Where the C process says each record went.
    let mut at: HashMap<(u32, i64), usize> = HashMap::new();
    for line in &reported {
        let f: Vec<&str> = line.split(' ').collect();
        let (i, p, o) = (
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
        );
        assert!(at.insert((p, o), i).is_none(), "two records at {p}@{o}");
    }
    assert_eq!(at.len(), COUNT);
    let three = NonZeroU32::new(3).unwrap();
    for r in &seen {
        let i = at[&(r.partition, r.offset)];
        let key = format!("key-{i}");
        assert_eq!(r.key.as_deref(), Some(key.as_bytes()));
        assert_eq!(r.value.as_deref(), Some(format!("value-{i}").as_bytes()));
        assert_eq!(r.partition, partition_for_key(key.as_bytes(), three));
    }
}

#[test]
fn a_killed_c_transaction_leaves_nothing_and_its_restart_completes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("tx", 2, TopicConfig::default()).unwrap();
    let path = dir.path().to_str().unwrap();

    let mut first = CProcess::spawn(
        "txn_producer",
        &[path, "c-txn", "tx", "50", "first", "hang"],
    );
    first.expect("ready");
    let written: i64 = (0..2)
        .map(|p| store.partition("tx", p).unwrap().end_offset())
        .sum();
    assert_eq!(written, 50, "the transaction's records are in the log");
    // SIGKILL, mid-transaction.
    first.child.kill().unwrap();
    let status = first.child.wait().unwrap();
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    assert_eq!(signal, Some(9), "killed by SIGKILL");

    let mut committed = consumer(&store, "tx", 2, "read_committed");
    assert!(
        read_all(&mut committed, Duration::from_millis(500)).is_empty(),
        "nothing of the killed transaction is visible to read_committed"
    );
    let mut uncommitted = consumer(&store, "tx", 2, "read_uncommitted");
    assert_eq!(
        read_all(&mut uncommitted, Duration::from_millis(200)).len(),
        50,
        "read_uncommitted still sees the aborted records"
    );

    let second = CProcess::spawn(
        "txn_producer",
        &[path, "c-txn", "tx", "30", "second", "commit"],
    );
    second.expect("committed");
    second.wait_success();
    let got = values(&read_all(&mut committed, Duration::from_millis(500)));
    let mut want: Vec<String> = (0..30).map(|i| format!("second-{i}")).collect();
    want.sort();
    assert_eq!(got, want, "exactly the restarted producer's transaction");
    let mut fresh = consumer(&store, "tx", 2, "read_committed");
    assert_eq!(
        values(&read_all(&mut fresh, Duration::from_millis(500))),
        want
    );
}
