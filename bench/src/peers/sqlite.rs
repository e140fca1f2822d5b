//! SQLite (bundled with `rusqlite`) in WAL mode. One table
//! `log (record_offset INTEGER PRIMARY KEY, key BLOB, value BLOB)`: the offset is
//! the rowid, so rows are stored and scanned in offset order. Inserts go through
//! one cached prepared statement. `synchronous=OFF` for every workload but the
//! synced commits (`synchronous=FULL`: in WAL mode, an fsync of the WAL at every
//! commit); `OFF` never syncs, as oncelog's `acks=written` (`NORMAL` would still
//! sync at checkpoints). Other settings are SQLite's defaults (page size 4 KiB,
//! cache 2 MiB, automatic checkpoint every 1,000 pages).

use std::path::Path;
use std::time::Instant;

use rusqlite::config::DbConfig;
use rusqlite::{params, Connection};

use crate::util::{now_ns, sum_bytes, Payload, Res, TempDir};

const FILE: &str = "log.db";
const CREATE: &str = "CREATE TABLE IF NOT EXISTS log (
    record_offset INTEGER PRIMARY KEY, key BLOB NOT NULL, value BLOB)";
const INSERT: &str = "INSERT INTO log (record_offset, key, value) VALUES (?1, ?2, ?3)";

/// What the report says about SQLite.
pub fn settings() -> String {
    format!(
        "SQLite {} (bundled): journal_mode=WAL, synchronous=OFF (FULL for synced commits), \
         table (record_offset INTEGER PRIMARY KEY, key BLOB, value BLOB), one prepared INSERT",
        rusqlite::version()
    )
}

/// Opens (creating it if needed) the database in `dir` in WAL mode with
/// `synchronous` = `sync`, and the table.
fn open(dir: &Path, sync: &str) -> Res<Connection> {
    let conn = Connection::open(dir.join(FILE))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("SQLite refused WAL mode (journal_mode={mode})").into());
    }
    conn.execute_batch(&format!("PRAGMA synchronous={sync}"))?;
    // Closing does not checkpoint: the bench removes the files before it closes.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    conn.execute_batch(CREATE)?;
    Ok(conn)
}

/// A database in its own temporary directory; the files are removed before the
/// connection closes.
pub struct Db {
    conn: Option<Connection>,
    dir: Option<TempDir>,
}

impl Db {
    fn new(tag: &str, sync: &str) -> Res<Db> {
        let dir = TempDir::new(tag)?;
        let conn = open(dir.path(), sync)?;
        Ok(Db {
            conn: Some(conn),
            dir: Some(dir),
        })
    }

    fn conn(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("open until dropped")
    }

    fn count(&mut self) -> Res<u64> {
        let n: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM log", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.dir.take();
        self.conn.take();
    }
}

/// See [`super::Peer::batched_append`].
pub fn batched_append(payload: &Payload, per_batch: usize) -> Res<(f64, Db)> {
    let mut db = Db::new("sqlite-batched", "OFF")?;
    let conn = db.conn();
    let t = Instant::now();
    let mut i = 0;
    while i < payload.n {
        let end = (i + per_batch).min(payload.n);
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            for j in i..end {
                insert.execute(params![j as i64, payload.key(j), payload.value(j)])?;
            }
        }
        tx.commit()?;
        i = end;
    }
    let secs = t.elapsed().as_secs_f64();
    super::check_count("SQLite", db.count()?, payload.n)?;
    Ok((secs, db))
}

/// See [`super::Peer::single_append`]: one INSERT per (implicit) transaction.
pub fn single_append(payload: &Payload, n: usize) -> Res<f64> {
    let mut db = Db::new("sqlite-single", "OFF")?;
    let n = n.min(payload.n);
    let conn = db.conn();
    let t = Instant::now();
    {
        let mut insert = conn.prepare_cached(INSERT)?;
        for j in 0..n {
            insert.execute(params![j as i64, payload.key(j), payload.value(j)])?;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    super::check_count("SQLite", db.count()?, n)?;
    Ok(secs)
}

/// `n` transactions of 10 rows; returns seconds, and each commit's latency (from
/// BEGIN to the return of COMMIT) in `latencies` when given.
fn commit_tens(
    db: &mut Db,
    payload: &Payload,
    n: usize,
    mut latencies: Option<&mut Vec<u64>>,
) -> Res<f64> {
    let conn = db.conn();
    let t = Instant::now();
    for i in 0..n {
        let t0 = now_ns();
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            for k in 0..10 {
                let offset = i * 10 + k;
                let j = offset % payload.n;
                insert.execute(params![offset as i64, payload.key(j), payload.value(j)])?;
            }
        }
        tx.commit()?;
        if let Some(l) = latencies.as_deref_mut() {
            l.push(now_ns() - t0);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    super::check_count("SQLite", db.count()?, n * 10)?;
    Ok(secs)
}

/// See [`super::Peer::transactions`] (`synchronous=OFF`).
pub fn transactions(payload: &Payload, n: usize) -> Res<f64> {
    let mut db = Db::new("sqlite-txn", "OFF")?;
    commit_tens(&mut db, payload, n, None)
}

/// See [`super::Peer::synced_commit_latencies`] (`synchronous=FULL`).
pub fn synced_commit_latencies(payload: &Payload, n: usize) -> Res<Vec<u64>> {
    let mut db = Db::new("sqlite-synced", "FULL")?;
    let mut samples = Vec::with_capacity(n);
    commit_tens(&mut db, payload, n, Some(&mut samples))?;
    Ok(samples)
}

/// Every row in offset order (a table scan by rowid), every key and value
/// borrowed, every value byte summed: (rows, sum).
pub fn read_all(db: &Db) -> Res<(usize, u64)> {
    let conn = db.conn.as_ref().expect("open until dropped");
    let mut select =
        conn.prepare("SELECT record_offset, key, value FROM log ORDER BY record_offset")?;
    let mut rows = select.query([])?;
    let (mut n, mut sum) = (0usize, 0u64);
    while let Some(row) = rows.next()? {
        let _offset = row.get_ref(0)?.as_i64()?;
        let _key = row.get_ref(1)?.as_blob()?;
        let value = row.get_ref(2)?.as_blob()?;
        sum = sum_bytes(sum, value);
        n += 1;
    }
    Ok((n, sum))
}

/// The reader of the wake-up test: creates the database, then polls it with one
/// prepared SELECT of the rows from the next offset on.
pub struct Poller {
    conn: Connection,
}

impl Poller {
    /// Creates the database and the table in `dir`.
    pub fn create(dir: &Path) -> Res<Poller> {
        Ok(Poller {
            conn: open(dir, "OFF")?,
        })
    }
}

impl super::Poller for Poller {
    fn poll(&mut self, next: u64, out: &mut Vec<u64>) -> Res<()> {
        let mut select = self.conn.prepare_cached(
            "SELECT value FROM log WHERE record_offset >= ?1 ORDER BY record_offset",
        )?;
        let mut rows = select.query([next as i64])?;
        while let Some(row) = rows.next()? {
            out.push(super::stamp_of(row.get_ref(0)?.as_blob()?)?);
        }
        Ok(())
    }
}

/// The writer of the wake-up test: one INSERT per transaction, `synchronous=OFF`.
pub struct Appender {
    conn: Connection,
}

impl Appender {
    /// Opens the database the reader created in `dir`.
    pub fn open(dir: &Path) -> Res<Appender> {
        Ok(Appender {
            conn: open(dir, "OFF")?,
        })
    }
}

impl super::Appender for Appender {
    fn append(&mut self, offset: u64, key: &[u8], value: &[u8]) -> Res<()> {
        self.conn
            .prepare_cached(INSERT)?
            .execute(params![offset as i64, key, value])?;
        Ok(())
    }
}
