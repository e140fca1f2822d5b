//! LMDB (bundled with `heed`). One unnamed database; the key is the record's offset
//! as a big-endian u64, so keys sort in offset order and every put can use
//! `MDB_APPEND` (no search, pages filled completely); the value is the 16-byte key
//! and the 100-byte value back to back. `MDB_NOSYNC` for every workload but the
//! synced commits, which keep LMDB's default durable commit (the data pages are
//! synced, then the meta page). Other settings are LMDB's defaults (no
//! `MDB_WRITEMAP`: pages are written with `pwrite`, read through a read-only map).

use std::path::Path;
use std::time::Instant;

use heed::byteorder::BigEndian;
use heed::types::{Bytes, U64};
use heed::{Database, Env, EnvFlags, EnvOpenOptions, PutFlags};

use crate::util::{now_ns, sum_bytes, Payload, Res, TempDir, KEY_LEN, REC_LEN};

type Log = Database<U64<BigEndian>, Bytes>;

/// What the report says about LMDB.
pub fn settings() -> String {
    let v = heed::lmdb_version();
    format!(
        "LMDB {}.{}.{} (mdb.master, bundled by heed): MDB_APPEND puts of big-endian u64 \
         offsets, MDB_NOSYNC (sync on for synced commits), no MDB_WRITEMAP",
        v.major, v.minor, v.patch
    )
}

/// A map big enough for `records` records and the transaction workloads' pages.
fn map_size(records: usize) -> usize {
    let bytes = records.max(1) * 4 * REC_LEN + (64 << 20);
    bytes.next_multiple_of(1 << 20)
}

/// Opens (creating if needed) the environment in `dir` and its unnamed database.
fn open(dir: &Path, records: usize, sync: bool) -> Res<(Env, Log)> {
    let mut options = EnvOpenOptions::new();
    options.map_size(map_size(records));
    if !sync {
        // SAFETY: MDB_NOSYNC only weakens durability after a crash of the machine,
        // which the unsynced workloads do not need.
        unsafe { options.flags(EnvFlags::NO_SYNC) };
    }
    // SAFETY: the directory is ours; this process and the wake-up test's child are
    // the only users of the environment, and neither truncates or rewrites its files
    // outside LMDB.
    let env = unsafe { options.open(dir)? };
    let mut wtxn = env.write_txn()?;
    let db: Log = env.create_database(&mut wtxn, None)?;
    wtxn.commit()?;
    Ok((env, db))
}

/// An environment in its own temporary directory; the files are removed before
/// the environment closes.
pub struct Db {
    env: Option<Env>,
    db: Log,
    dir: Option<TempDir>,
}

impl Db {
    fn new(tag: &str, records: usize, sync: bool) -> Res<Db> {
        let dir = TempDir::new(tag)?;
        let (env, db) = open(dir.path(), records, sync)?;
        Ok(Db {
            env: Some(env),
            db,
            dir: Some(dir),
        })
    }

    fn env(&self) -> &Env {
        self.env.as_ref().expect("open until dropped")
    }

    fn count(&self) -> Res<u64> {
        let rtxn = self.env().read_txn()?;
        Ok(self.db.len(&rtxn)?)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.dir.take();
        self.env.take();
    }
}

/// See [`super::Peer::batched_append`].
pub fn batched_append(payload: &Payload, per_batch: usize) -> Res<(f64, Db)> {
    let db = Db::new("lmdb-batched", payload.n, false)?;
    let (env, log) = (db.env(), db.db);
    let t = Instant::now();
    let mut i = 0;
    while i < payload.n {
        let end = (i + per_batch).min(payload.n);
        let mut wtxn = env.write_txn()?;
        for j in i..end {
            log.put_with_flags(&mut wtxn, PutFlags::APPEND, &(j as u64), payload.record(j))?;
        }
        wtxn.commit()?;
        i = end;
    }
    let secs = t.elapsed().as_secs_f64();
    super::check_count("LMDB", db.count()?, payload.n)?;
    Ok((secs, db))
}

/// See [`super::Peer::single_append`]: one put per write transaction.
pub fn single_append(payload: &Payload, n: usize) -> Res<f64> {
    let n = n.min(payload.n);
    let db = Db::new("lmdb-single", n, false)?;
    let (env, log) = (db.env(), db.db);
    let t = Instant::now();
    for j in 0..n {
        let mut wtxn = env.write_txn()?;
        log.put_with_flags(&mut wtxn, PutFlags::APPEND, &(j as u64), payload.record(j))?;
        wtxn.commit()?;
    }
    let secs = t.elapsed().as_secs_f64();
    super::check_count("LMDB", db.count()?, n)?;
    Ok(secs)
}

/// `n` write transactions of 10 puts; returns seconds, and each commit's latency
/// (from the start of the write transaction to the return of its commit) in
/// `latencies` when given.
fn commit_tens(
    db: &Db,
    payload: &Payload,
    n: usize,
    mut latencies: Option<&mut Vec<u64>>,
) -> Res<f64> {
    let (env, log) = (db.env(), db.db);
    let t = Instant::now();
    for i in 0..n {
        let t0 = now_ns();
        let mut wtxn = env.write_txn()?;
        for k in 0..10 {
            let offset = i * 10 + k;
            let j = offset % payload.n;
            log.put_with_flags(
                &mut wtxn,
                PutFlags::APPEND,
                &(offset as u64),
                payload.record(j),
            )?;
        }
        wtxn.commit()?;
        if let Some(l) = latencies.as_deref_mut() {
            l.push(now_ns() - t0);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    super::check_count("LMDB", db.count()?, n * 10)?;
    Ok(secs)
}

/// See [`super::Peer::transactions`] (`MDB_NOSYNC`).
pub fn transactions(payload: &Payload, n: usize) -> Res<f64> {
    let db = Db::new("lmdb-txn", n * 10, false)?;
    commit_tens(&db, payload, n, None)
}

/// See [`super::Peer::synced_commit_latencies`] (sync on).
pub fn synced_commit_latencies(payload: &Payload, n: usize) -> Res<Vec<u64>> {
    let db = Db::new("lmdb-synced", n * 10, true)?;
    let mut samples = Vec::with_capacity(n);
    commit_tens(&db, payload, n, Some(&mut samples))?;
    Ok(samples)
}

/// Every entry in key order through one read transaction's cursor, every value
/// byte summed: (entries, sum).
pub fn read_all(db: &Db) -> Res<(usize, u64)> {
    let rtxn = db.env().read_txn()?;
    let (mut n, mut sum) = (0usize, 0u64);
    for entry in db.db.iter(&rtxn)? {
        let (_offset, record) = entry?;
        sum = sum_bytes(sum, record.get(KEY_LEN..).ok_or("short LMDB value")?);
        n += 1;
    }
    Ok((n, sum))
}

/// The reader of the wake-up test: creates the environment, then polls it with a
/// new read transaction and a cursor from the next offset on.
pub struct Poller {
    env: Env,
    db: Log,
}

impl Poller {
    /// Creates the environment in `dir`, sized for `records` records.
    pub fn create(dir: &Path, records: usize) -> Res<Poller> {
        let (env, db) = open(dir, records, false)?;
        Ok(Poller { env, db })
    }
}

impl super::Poller for Poller {
    fn poll(&mut self, next: u64, out: &mut Vec<u64>) -> Res<()> {
        let rtxn = self.env.read_txn()?;
        for entry in self.db.range(&rtxn, &(next..))? {
            let (_offset, record) = entry?;
            out.push(super::stamp_of(
                record.get(KEY_LEN..).ok_or("short LMDB value")?,
            )?);
        }
        Ok(())
    }
}

/// The writer of the wake-up test: one put per write transaction, `MDB_NOSYNC`.
pub struct Appender {
    env: Env,
    db: Log,
    record: Vec<u8>,
}

impl Appender {
    /// Opens the environment the reader created in `dir`.
    pub fn open(dir: &Path, records: usize) -> Res<Appender> {
        let (env, db) = open(dir, records, false)?;
        Ok(Appender {
            env,
            db,
            record: Vec::with_capacity(REC_LEN),
        })
    }
}

impl super::Appender for Appender {
    fn append(&mut self, offset: u64, key: &[u8], value: &[u8]) -> Res<()> {
        self.record.clear();
        self.record.extend_from_slice(key);
        self.record.extend_from_slice(value);
        let mut wtxn = self.env.write_txn()?;
        self.db
            .put_with_flags(&mut wtxn, PutFlags::APPEND, &offset, &self.record)?;
        wtxn.commit()?;
        Ok(())
    }
}
