//! The batched-append and read-all workloads through the C API, next to the same
//! workloads through the Rust API, measured in the same run: `make bench-c`.
//!
//! ```text
//! bench_c_vs_rust BENCH_C [--records N] [--batch B] [--reps R]
//! ```
//!
//! `BENCH_C` is `ffi/bench/bench_c.c` compiled against the installed release
//! library. Each repetition runs the Rust workloads in this process and the C
//! program (which of them goes first alternates), each on a fresh store under the
//! temp directory: 1,000,000 records of a
//! 16-byte key and a 100-byte value (the same bytes on both sides), appended in
//! batches of 1,000 through the producer (`Producer::send_batch` /
//! `oncelog_produce_batch`), then read from offset 0 by a consumer that touches
//! every value byte (`Consumer::poll` / `oncelog_consumer_poll_batch`, and
//! `oncelog_consumer_poll` one message per call). Reported: the best and the median
//! of the repetitions, and the ratio C / Rust of the best throughputs. Speed is
//! reported, never asserted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use oncelog::{
    Consumer, ConsumerConfig, Producer, ProducerConfig, Record, Store, StoreOptions, TopicConfig,
    TopicPartition,
};

const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 100;

struct Args {
    bench_c: PathBuf,
    records: usize,
    batch: usize,
    reps: usize,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        bench_c: PathBuf::new(),
        records: 1_000_000,
        batch: 1_000,
        reps: 5,
    };
    while let Some(arg) = it.next() {
        let mut num = || -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--records" => a.records = num(),
            "--batch" => a.batch = num(),
            "--reps" => a.reps = num(),
            _ => a.bench_c = PathBuf::from(&arg),
        }
    }
    assert!(
        a.bench_c.is_file(),
        "usage: bench_c_vs_rust BENCH_C [--records N] [--batch B] [--reps R]"
    );
    a
}

/// The payload: the same xorshift64 stream as bench_c.c, keys first.
fn payload(n: usize) -> (Vec<u8>, Vec<u8>) {
    let mut x: u64 = 42;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    };
    let keys = (0..n * KEY_LEN).map(|_| next()).collect();
    let values = (0..n * VALUE_LEN).map(|_| next()).collect();
    (keys, values)
}

/// One repetition's times, in nanoseconds.
#[derive(Default, Clone, Copy)]
struct Times {
    append: u128,
    read: u128,
    read_one: u128,
}

fn fresh_dir(tag: &str, rep: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "oncelog-bench-c-{}-{tag}-{rep}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn rust_rep(a: &Args, keys: &[u8], values: &[u8], dir: &Path) -> (Times, u64) {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    store
        .create_topic("bench", 1, TopicConfig::default())
        .unwrap();
    let producer = Producer::new(&store, ProducerConfig::default()).unwrap();
    let mut records: Vec<Record<'_>> = Vec::with_capacity(a.batch);
    let t = Instant::now();
    for start in (0..a.records).step_by(a.batch) {
        records.clear();
        for i in start..(start + a.batch).min(a.records) {
            records.push(Record::keyed(
                &keys[i * KEY_LEN..(i + 1) * KEY_LEN],
                &values[i * VALUE_LEN..(i + 1) * VALUE_LEN],
            ));
        }
        producer.send_batch("bench", 0, &records).unwrap();
    }
    let append = t.elapsed().as_nanos();

    let batch = a.batch.to_string();
    let config = ConsumerConfig::from_pairs([
        ("auto.offset.reset", "earliest"),
        ("max.poll.records", batch.as_str()),
    ])
    .unwrap();
    let mut consumer = Consumer::new(&store, config).unwrap();
    consumer.assign(&[TopicPartition::new("bench", 0)]).unwrap();
    let (mut seen, mut sum) = (0usize, 0u64);
    let t = Instant::now();
    while seen < a.records {
        let got = consumer.poll(Duration::from_secs(1)).unwrap();
        if got.is_empty() {
            break;
        }
        for r in &got {
            sum += r
                .value
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|b| u64::from(*b))
                .sum::<u64>();
        }
        seen += got.len();
    }
    let read = t.elapsed().as_nanos();
    assert_eq!(seen, a.records, "the Rust consumer read everything");
    drop(consumer);
    // As the main bench: the files go before the store closes, so its clean
    // shutdown does not sync 116 MB under the next measurement.
    std::fs::remove_dir_all(dir).unwrap();
    drop(producer);
    drop(store);
    (
        Times {
            append,
            read,
            read_one: 0,
        },
        sum,
    )
}

fn c_rep(a: &Args, dir: &Path) -> (Times, u64) {
    let out = Command::new(&a.bench_c)
        .arg(dir)
        .arg(a.records.to_string())
        .arg(a.batch.to_string())
        .output()
        .expect("run bench_c");
    assert!(
        out.status.success(),
        "bench_c failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| -> u128 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bench_c printed no {name}: {line}"))
    };
    (
        Times {
            append: field("append_ns"),
            read: field("read_batch_ns"),
            read_one: field("read_one_ns"),
        },
        field("sum") as u64,
    )
}

/// Best and median throughput (M records/s) of the repetitions' times.
fn rates(records: usize, times: &[u128]) -> (f64, f64) {
    let mut r: Vec<f64> = times
        .iter()
        .map(|ns| records as f64 / (*ns as f64 / 1e9) / 1e6)
        .collect();
    r.sort_by(|a, b| b.partial_cmp(a).unwrap());
    (r[0], r[r.len() / 2])
}

fn main() {
    let a = args();
    let (keys, values) = payload(a.records);
    let want_sum: u64 = values.iter().map(|b| u64::from(*b)).sum();
    let (mut rust, mut c) = (Vec::new(), Vec::new());
    for rep in 0..a.reps {
        // Which side goes first alternates: the second one touches page cache the
        // first one just freed, which is faster (docs/PERFORMANCE.md).
        for side in [rep % 2, 1 - rep % 2] {
            if side == 0 {
                let (t, sum) = rust_rep(&a, &keys, &values, &fresh_dir("rust", rep));
                assert_eq!(sum, want_sum, "Rust read back the payload");
                rust.push(t);
            } else {
                let (t, sum) = c_rep(&a, &fresh_dir("c", rep));
                assert_eq!(sum, want_sum, "C read back the same payload");
                c.push(t);
            }
        }
        eprintln!("repetition {} of {} done", rep + 1, a.reps);
    }

    println!(
        "{} records of {KEY_LEN} + {VALUE_LEN} bytes, batches of {}, {} repetitions of Rust and C (alternating which goes first);",
        a.records, a.batch, a.reps
    );
    println!("best M records/s (median in brackets); ratio = C best / Rust best\n");
    println!("| workload | Rust API | C API | C / Rust |\n| --- | --- | --- | --- |");
    let row = |name: &str, r: &[u128], cc: &[u128]| {
        let (rb, rm) = rates(a.records, r);
        let (cb, cm) = rates(a.records, cc);
        println!(
            "| {name} | {rb:.2} ({rm:.2}) | {cb:.2} ({cm:.2}) | **{:.2}** |",
            cb / rb
        );
    };
    let pick = |v: &[Times], f: fn(&Times) -> u128| v.iter().map(f).collect::<Vec<_>>();
    row(
        "batched append: `send_batch` / `oncelog_produce_batch`",
        &pick(&rust, |t| t.append),
        &pick(&c, |t| t.append),
    );
    row(
        "read-all: `Consumer::poll` / `oncelog_consumer_poll_batch`",
        &pick(&rust, |t| t.read),
        &pick(&c, |t| t.read),
    );
    row(
        "read-all: `Consumer::poll` / `oncelog_consumer_poll` (one per call)",
        &pick(&rust, |t| t.read),
        &pick(&c, |t| t.read_one),
    );
}
