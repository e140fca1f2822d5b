//! oncelog's throughput workloads: batched append, single-record append, read-all.

use std::time::Instant;

use oncelog::{Partition, Record, Store, TopicConfig};

use crate::util::{sum_bytes, Payload, Res, TempDir};

/// The topic every workload uses.
pub const TOPIC: &str = "bench";

/// A fresh store in its own temporary directory, with one single-partition topic.
pub struct BenchStore {
    // Dropped in the order the `Drop` impl below chooses, not in declaration order.
    partition: Option<Partition>,
    store: Option<Store>,
    dir: Option<TempDir>,
}

impl BenchStore {
    /// Creates the directory, opens the store (default options) and the topic.
    pub fn new(tag: &str) -> Res<BenchStore> {
        let dir = TempDir::new(tag)?;
        let store = Store::open(dir.path(), crate::util::store_options())?;
        store.create_topic(TOPIC, 1, TopicConfig::default())?;
        let partition = store.partition(TOPIC, 0)?;
        Ok(BenchStore {
            partition: Some(partition),
            store: Some(store),
            dir: Some(dir),
        })
    }

    /// The partition.
    pub fn partition(&self) -> &Partition {
        self.partition.as_ref().expect("open until dropped")
    }

    /// The store.
    pub fn store(&self) -> &Store {
        self.store.as_ref().expect("open until dropped")
    }

    /// The directory of the store.
    pub fn path(&self) -> &std::path::Path {
        self.dir.as_ref().expect("open until dropped").path()
    }
}

impl Drop for BenchStore {
    fn drop(&mut self) {
        // Remove the files first, then close: the last closer's clean shutdown would
        // otherwise `fdatasync` ~128 MB per repetition and leave writeback running
        // under the next measurement. Unlinked files' dirty pages are just dropped.
        self.partition.take();
        let path = self.dir.as_ref().map(|d| d.path().to_path_buf());
        self.dir.take();
        self.store.take();
        // Closing can still write a file or two (the transaction log's recovery
        // checkpoint), re-creating the directory just removed: remove it again.
        if let Some(path) = path {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

/// What one batched-append repetition measured.
pub struct Batched {
    /// Seconds of the append loop.
    pub secs: f64,
    /// Bytes of Kafka batches written to the log.
    pub log_bytes: u64,
    /// Page faults the appending thread took in the loop (`RUSAGE_THREAD`): pages the
    /// pre-faulter did not reach first.
    pub writer_faults: u64,
    /// The store, kept for reading.
    pub store: BenchStore,
}

/// Page faults (minor + major) of the calling thread so far.
pub fn thread_faults() -> u64 {
    // SAFETY: all-zero is a valid rusage; getrusage fills it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    (u.ru_minflt + u.ru_majflt) as u64
}

/// Workload 2: appends every record of `payload` in batches of `per_batch`, timed,
/// on a fresh store. Each batch's `Record`s are built into one reused vector just
/// before its `append`, as a producer would: the timing includes building them, and
/// no 64 MB array of prebuilt `Record`s is streamed from memory alongside the payload.
pub fn batched_append(payload: &Payload, per_batch: usize, idempotent: bool) -> Res<Batched> {
    let store = BenchStore::new("batched")?;
    let p = store.partition();
    let mut batch: Vec<Record<'_>> = Vec::with_capacity(per_batch);
    // Idempotent: each batch carries a producer id, epoch and base sequence, and the
    // partition checks and records it (workload 2i).
    let mut options = oncelog::AppendOptions::default();
    if idempotent {
        options.batch.producer = oncelog::record::ProducerInfo {
            producer_id: 1,
            producer_epoch: 0,
            base_sequence: 0,
        };
    }
    let faults = thread_faults();
    let t = Instant::now();
    let mut i = 0;
    while i < payload.n {
        let end = (i + per_batch).min(payload.n);
        batch.clear();
        batch.extend((i..end).map(|j| Record::keyed(payload.key(j), payload.value(j))));
        p.append_with(&batch, &options)?;
        if idempotent {
            options.batch.producer.base_sequence += (end - i) as i32;
        }
        i = end;
    }
    let secs = t.elapsed().as_secs_f64();
    let writer_faults = thread_faults() - faults;
    check_end(p, payload.n)?;
    let log_bytes = p.metrics().bytes_appended;
    Ok(Batched {
        secs,
        log_bytes,
        writer_faults,
        store,
    })
}

/// Workload 3: appends the first `n` records of `payload`, each as its own batch,
/// timed, on a fresh store.
pub fn single_append(payload: &Payload, n: usize) -> Res<f64> {
    let store = BenchStore::new("single")?;
    let p = store.partition();
    let n = n.min(payload.n);
    let t = Instant::now();
    for j in 0..n {
        p.append(&[Record::keyed(payload.key(j), payload.value(j))])?;
    }
    let secs = t.elapsed().as_secs_f64();
    check_end(p, n)?;
    Ok(secs)
}

fn check_end(p: &Partition, n: usize) -> Res<()> {
    if p.end_offset() != n as i64 {
        return Err(format!("end offset {} after {n} records", p.end_offset()).into());
    }
    Ok(())
}

/// How [`read_all`] walks the records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadVia {
    /// `ReadBatch::records()`: the documented API (skips records before the start
    /// offset, maps decode errors to `oncelog::Error`).
    Reader,
    /// `ReadBatch::batch().records()`: the raw batch decoder under that wrapper.
    /// Diagnostic: the difference is the wrapper's cost.
    RawBatch,
    /// As `Reader`, in `read_committed` mode (bounded by the last stable offset,
    /// skipping markers and aborted transactions).
    ReadCommitted,
}

/// Workload 4: reads every record from offset 0 and sums every value byte; checks
/// the count and the sum against the payload. Returns seconds.
pub fn read_all(p: &Partition, payload: &Payload, expected_sum: u64, via: ReadVia) -> Res<f64> {
    let t = Instant::now();
    // One function per variant: the documented path compiles as the plain loop a
    // user writes, whatever the diagnostics look like.
    let (n, sum) = match via {
        ReadVia::Reader => read_via_reader(p, false)?,
        ReadVia::ReadCommitted => read_via_reader(p, true)?,
        ReadVia::RawBatch => read_via_raw_batch(p)?,
    };
    let secs = t.elapsed().as_secs_f64();
    if n != payload.n || sum != expected_sum {
        return Err(format!(
            "read-all found {n} records with value sum {sum}, expected {} and {expected_sum}",
            payload.n
        )
        .into());
    }
    Ok(secs)
}

fn read_via_reader(p: &Partition, committed: bool) -> Res<(usize, u64)> {
    let mut reader = p.reader(0)?.read_committed(committed);
    let mut n = 0usize;
    let mut sum = 0u64;
    while let Some(batch) = reader.next_batch()? {
        for rec in batch.records() {
            let rec = rec?;
            if let Some(v) = rec.value {
                sum = sum_bytes(sum, v);
            }
            n += 1;
        }
    }
    Ok((n, sum))
}

#[inline(never)]
fn read_via_raw_batch(p: &Partition) -> Res<(usize, u64)> {
    let mut reader = p.reader(0)?;
    let mut n = 0usize;
    let mut sum = 0u64;
    while let Some(batch) = reader.next_batch()? {
        for rec in batch.batch().records() {
            let rec = rec?;
            if let Some(v) = rec.value {
                sum = sum_bytes(sum, v);
            }
            n += 1;
        }
    }
    Ok((n, sum))
}

/// Workload 4 through a second `Store` handle on the same directory: its own, new
/// mappings, as a consumer in another process has (page-cache hits, but every page
/// takes a minor fault on first touch). Returns seconds.
pub fn read_all_new_mapping(bs: &BenchStore, payload: &Payload, expected_sum: u64) -> Res<f64> {
    let store = Store::open(bs.path(), crate::util::store_options())?;
    let p = store.partition(TOPIC, 0)?;
    let secs = read_all(&p, payload, expected_sum, ReadVia::Reader)?;
    drop(p);
    // Not the last closer: no shutdown work.
    drop(store);
    Ok(secs)
}

/// Workload 6: `n` transactions of 10 records each (16-byte key, 100-byte value),
/// committed one by one by a transactional producer with `acks`. Returns seconds.
pub fn transactions(payload: &Payload, n: usize, acks: &str) -> Res<f64> {
    let store = BenchStore::new("txn")?;
    let secs = committer(store.store(), payload, "bench", 0, n, acks, None)?;
    let end = store.partition().end_offset();
    // 10 records and one COMMIT marker per transaction.
    if end != n as i64 * 11 {
        return Err(format!("transactions wrote {end} offsets, expected {}", n * 11).into());
    }
    Ok(secs)
}

/// Workload 6s: `n` transactions of 10 records with `acks=synced`, one at a time;
/// returns each commit's latency (begin to the return of `commit_transaction`), in
/// nanoseconds, and the bytes each transaction appended (records and marker).
pub fn synced_commit_latencies(payload: &Payload, n: usize) -> Res<(Vec<u64>, usize)> {
    let store = BenchStore::new("txn-synced")?;
    let mut samples = Vec::with_capacity(n);
    committer(
        store.store(),
        payload,
        "bench",
        0,
        n,
        "synced",
        Some(&mut samples),
    )?;
    let bytes = store.partition().metrics().bytes_appended as usize / n.max(1);
    Ok((samples, bytes))
}

/// Workload 6c: `threads` committers at once (threads of one process, each with
/// its own `transactional.id`), each committing `per_thread` transactions of 10
/// records with `acks=synced` to the same partition. Returns transactions per
/// second, all threads together.
pub fn concurrent_synced(payload: &Payload, threads: usize, per_thread: usize) -> Res<f64> {
    let store = BenchStore::new("txn-concurrent")?;
    let start = std::sync::Barrier::new(threads);
    let t = Instant::now();
    std::thread::scope(|scope| -> Res<()> {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (store, start) = (store.store(), &start);
                scope.spawn(move || -> Result<f64, String> {
                    start.wait();
                    let id = format!("bench-{i}");
                    committer(
                        store,
                        payload,
                        &id,
                        i * per_thread,
                        per_thread,
                        "synced",
                        None,
                    )
                    .map_err(|e| e.to_string())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| "a committer panicked")??;
        }
        Ok(())
    })?;
    let secs = t.elapsed().as_secs_f64();
    let end = store.partition().end_offset();
    let n = threads * per_thread;
    if end != n as i64 * 11 {
        return Err(format!("committers wrote {end} offsets, expected {}", n * 11).into());
    }
    Ok(n as f64 / secs)
}

/// One transactional producer `id` committing `n` transactions of 10 records (the
/// payload's records from `first * 10` on) with `acks`; returns seconds, and each
/// commit's latency in `latencies` when given.
fn committer(
    store: &Store,
    payload: &Payload,
    id: &str,
    first: usize,
    n: usize,
    acks: &str,
    mut latencies: Option<&mut Vec<u64>>,
) -> Res<f64> {
    let config = oncelog::ProducerConfig::from_pairs([("transactional.id", id), ("acks", acks)])?;
    let producer = oncelog::Producer::new(store, config)?;
    producer.init_transactions()?;
    let mut batch: Vec<Record<'_>> = Vec::with_capacity(10);
    let t = Instant::now();
    for i in first..first + n {
        batch.clear();
        batch.extend((0..10).map(|k| {
            let j = (i * 10 + k) % payload.n;
            Record::keyed(payload.key(j), payload.value(j))
        }));
        let t0 = crate::util::now_ns();
        producer.begin_transaction()?;
        producer.send_batch(TOPIC, 0, &batch)?;
        producer.commit_transaction()?;
        if let Some(l) = latencies.as_deref_mut() {
            l.push(crate::util::now_ns() - t0);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    producer.close()?;
    Ok(secs)
}
