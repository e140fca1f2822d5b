//! The peers: SQLite (WAL mode) and LMDB doing oncelog's workloads on the same
//! data, each the natural fast way for that engine (see [`sqlite`] and [`lmdb`] for
//! the settings). Compiled only with the `peers` feature; the engine never sees it.
//!
//! Every database is created in its own directory under `std::env::temp_dir()` and
//! removed when dropped, files first (as oncelog's stores in the bench: no
//! close-time checkpoint or writeback of a removed database runs under the next
//! measurement).

pub mod lmdb;
pub mod sqlite;

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::child::{Relaunch, PEER_WAKE_WRITER};
use crate::util::{now_ns, pace_until, Payload, Res, TempDir, KEY_LEN, VALUE_LEN};
use crate::wakeup::{ReaderClock, WakeRun, START_UP_PAUSE_MS};

/// A peer engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// SQLite in WAL mode, through `rusqlite` (bundled SQLite).
    Sqlite,
    /// LMDB, through `heed` (bundled LMDB).
    Lmdb,
}

impl Peer {
    /// Both peers.
    pub const ALL: [Peer; 2] = [Peer::Sqlite, Peer::Lmdb];

    /// The name in reports and on the child's command line.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Sqlite => "sqlite",
            Peer::Lmdb => "lmdb",
        }
    }

    /// The name as people write it.
    pub fn label(self) -> &'static str {
        match self {
            Peer::Sqlite => "SQLite",
            Peer::Lmdb => "LMDB",
        }
    }

    fn parse(s: &str) -> Res<Peer> {
        Peer::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown peer {s:?}").into())
    }

    /// The library version and the settings every workload uses, for the report.
    pub fn settings(self) -> String {
        match self {
            Peer::Sqlite => sqlite::settings(),
            Peer::Lmdb => lmdb::settings(),
        }
    }

    /// Batched append: every record of `payload`, `per_batch` per write transaction,
    /// not synced, into a fresh database. Returns the seconds and the database, kept
    /// for [`PeerDb::read_all`].
    pub fn batched_append(self, payload: &Payload, per_batch: usize) -> Res<(f64, PeerDb)> {
        Ok(match self {
            Peer::Sqlite => {
                let (secs, db) = sqlite::batched_append(payload, per_batch)?;
                (secs, PeerDb::Sqlite(db))
            }
            Peer::Lmdb => {
                let (secs, db) = lmdb::batched_append(payload, per_batch)?;
                (secs, PeerDb::Lmdb(db))
            }
        })
    }

    /// Single-record append: the first `n` records, one write transaction each, not
    /// synced, into a fresh database. Returns seconds.
    pub fn single_append(self, payload: &Payload, n: usize) -> Res<f64> {
        match self {
            Peer::Sqlite => sqlite::single_append(payload, n),
            Peer::Lmdb => lmdb::single_append(payload, n),
        }
    }

    /// `n` transactions of 10 records committed one by one, not synced, into a
    /// fresh database. Returns seconds.
    pub fn transactions(self, payload: &Payload, n: usize) -> Res<f64> {
        match self {
            Peer::Sqlite => sqlite::transactions(payload, n),
            Peer::Lmdb => lmdb::transactions(payload, n),
        }
    }

    /// `n` transactions of 10 records committed one by one with the engine's
    /// durable commit, into a fresh database. Returns each commit's latency (ns).
    pub fn synced_commit_latencies(self, payload: &Payload, n: usize) -> Res<Vec<u64>> {
        match self {
            Peer::Sqlite => sqlite::synced_commit_latencies(payload, n),
            Peer::Lmdb => lmdb::synced_commit_latencies(payload, n),
        }
    }

    /// Cross-process wake-up latency, as [`crate::wakeup::wake_latency`] measures
    /// oncelog's: a child process (the running binary in the role
    /// [`PEER_WAKE_WRITER`]) commits one record per write transaction, `gap_ns`
    /// apart, each value carrying the CLOCK_MONOTONIC time taken just before the
    /// write; this process polls the database for new records in a tight loop (a
    /// read transaction and a query per iteration: it burns a core) and takes the
    /// time as soon as a poll returns records. `n` records; the first `warmup`
    /// samples are dropped.
    pub fn wake_latency(
        self,
        exe: &Relaunch,
        n: usize,
        warmup: usize,
        gap_ns: u64,
    ) -> Res<WakeRun> {
        let dir = TempDir::new(&format!("{}-wakeup", self.name()))?;
        let mut poller: Box<dyn Poller> = match self {
            Peer::Sqlite => Box::new(sqlite::Poller::create(dir.path())?),
            Peer::Lmdb => Box::new(lmdb::Poller::create(dir.path(), n)?),
        };
        let mut child = exe
            .command(PEER_WAKE_WRITER)
            .arg(self.name())
            .arg(dir.path())
            .arg(n.to_string())
            .arg(gap_ns.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut samples = Vec::with_capacity(n);
        let mut found = Vec::new();
        let mut last_seen = Instant::now();
        let mut idle_polls = 0u32;
        let mut clock = ReaderClock::default();
        let failure = loop {
            if samples.len() >= n {
                break None;
            }
            found.clear();
            if let Err(e) = poller.poll(samples.len() as u64, &mut found) {
                break Some(e.to_string());
            }
            if found.is_empty() {
                idle_polls += 1;
                if idle_polls % 4096 == 0 && last_seen.elapsed() > Duration::from_secs(10) {
                    break Some(format!("no record for 10 s after {}", samples.len()));
                }
                continue;
            }
            let t = now_ns();
            clock.received(samples.len());
            samples.extend(found.iter().map(|&stamp| t.saturating_sub(stamp)));
            last_seen = Instant::now();
        };
        drop(poller);
        if let Some(f) = failure {
            let _ = child.kill();
            let _ = child.wait();
            return Err(f.into());
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(format!("{} wake-up writer failed: {}", self.label(), out.status).into());
        }
        let append_ns = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .skip(warmup)
            .map(|w| w.parse::<u64>())
            .collect::<Result<Vec<_>, _>>()?;
        let records = samples.len();
        samples.drain(..warmup.min(records));
        let (reader_cpu_ns, reader_wall_ns) = clock.span();
        Ok(WakeRun {
            samples,
            append_ns,
            wakeups: 0,
            records,
            reader_cpu_ns,
            reader_wall_ns,
        })
    }
}

/// A database kept after a batched append, for reading.
pub enum PeerDb {
    /// A SQLite database.
    Sqlite(sqlite::Db),
    /// An LMDB environment.
    Lmdb(lmdb::Db),
}

impl PeerDb {
    /// Read-all: every record in key order, summing every value byte; checks the
    /// count and the sum against the payload. Returns seconds.
    pub fn read_all(&self, payload: &Payload, expected_sum: u64) -> Res<f64> {
        let t = Instant::now();
        let (n, sum) = match self {
            PeerDb::Sqlite(db) => sqlite::read_all(db)?,
            PeerDb::Lmdb(db) => lmdb::read_all(db)?,
        };
        let secs = t.elapsed().as_secs_f64();
        check_read(n, sum, payload, expected_sum)?;
        Ok(secs)
    }
}

fn check_read(n: usize, sum: u64, payload: &Payload, expected_sum: u64) -> Res<()> {
    if n != payload.n || sum != expected_sum {
        return Err(format!(
            "read-all found {n} records with value sum {sum}, expected {} and {expected_sum}",
            payload.n
        )
        .into());
    }
    Ok(())
}

/// Fails unless a database holds `expected` records after a workload.
fn check_count(engine: &str, found: u64, expected: usize) -> Res<()> {
    if found != expected as u64 {
        return Err(format!("{engine} holds {found} records, expected {expected}").into());
    }
    Ok(())
}

/// The reading side of the wake-up test.
trait Poller {
    /// One poll: pushes the stamp (the first 8 bytes of the value, little-endian) of
    /// every record at offset `next` or later onto `out`, in offset order.
    fn poll(&mut self, next: u64, out: &mut Vec<u64>) -> Res<()>;
}

/// The writing side of the wake-up test.
trait Appender {
    /// Commits one record at `offset` in its own write transaction.
    fn append(&mut self, offset: u64, key: &[u8], value: &[u8]) -> Res<()>;
}

fn stamp_of(value: &[u8]) -> Res<u64> {
    let bytes: [u8; 8] = value
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or("wake-up record without a stamp")?;
    Ok(u64::from_le_bytes(bytes))
}

/// The child of [`Peer::wake_latency`]: `__peer-wake-writer <sqlite|lmdb> <dir> <n>
/// <gap_ns>` (the arguments after the role). Paced as oncelog's writer
/// ([`crate::wakeup::wake_writer_main`]): one record, a pause of
/// [`START_UP_PAUSE_MS`], then the other `n - 1` each `gap_ns` after the previous
/// write returned; prints the duration of every write in ns.
pub fn wake_writer_main(args: &[String]) -> Res<()> {
    let [peer, dir, n, gap] = args else {
        return Err("usage: __peer-wake-writer <sqlite|lmdb> <dir> <n> <gap_ns>".into());
    };
    let peer = Peer::parse(peer)?;
    let n: usize = n.parse()?;
    let gap: u64 = gap.parse()?;
    let dir = std::path::Path::new(dir);
    let mut appender: Box<dyn Appender> = match peer {
        Peer::Sqlite => Box::new(sqlite::Appender::open(dir)?),
        Peer::Lmdb => Box::new(lmdb::Appender::open(dir, n)?),
    };
    let key = [b'w'; KEY_LEN];
    let mut value = [0u8; VALUE_LEN];
    let mut took = Vec::with_capacity(n);
    let mut last = now_ns();
    for i in 0..n {
        if i == 1 {
            std::thread::sleep(Duration::from_millis(START_UP_PAUSE_MS));
            last = now_ns();
        }
        pace_until(last + gap);
        let t0 = now_ns();
        value[..8].copy_from_slice(&t0.to_le_bytes());
        appender.append(i as u64, &key, &value)?;
        last = now_ns();
        took.push(last - t0);
    }
    let text: Vec<String> = took.iter().map(u64::to_string).collect();
    println!("{}", text.join(" "));
    Ok(())
}
