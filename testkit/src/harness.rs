//! The parent's side of a multi-process test: child processes that never outlive a
//! failing test, their stdout read line by line without blocking the child, and
//! checks of a partition's content against what children acknowledged.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oncelog::Partition;

use crate::payload::{self, Kind};

/// A child process that is killed (SIGKILL) and reaped when dropped, so a failing
/// assertion never leaves processes behind.
pub struct Proc {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

/// Why [`Proc::line`] returned no line.
#[derive(Debug, PartialEq, Eq)]
pub enum NoLine {
    /// Nothing arrived in time.
    Timeout,
    /// The child closed its stdout (it exited).
    Eof,
}

impl Proc {
    /// Starts `cmd` with piped stdout and stderr; `name` labels failure messages.
    pub fn spawn(name: impl Into<String>, mut cmd: Command) -> Proc {
        let name = name.into();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: spawn {cmd:?}: {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_str(&text);
            }
        });
        Proc {
            name,
            child,
            status: None,
            lines,
            stderr,
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the child wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The next stdout line, waiting at most `timeout`.
    pub fn line(&mut self, timeout: Duration) -> Result<String, NoLine> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => Err(NoLine::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(NoLine::Eof),
        }
    }

    /// The next line, which must start with `prefix`; panics (with the child's
    /// stderr) otherwise.
    pub fn expect(&mut self, prefix: &str, timeout: Duration) -> String {
        match self.line(timeout) {
            Ok(line) if line.starts_with(prefix) => line,
            other => panic!(
                "{}: expected a line starting with {prefix:?} within {timeout:?}, got {other:?}; stderr: {}",
                self.name,
                self.stderr()
            ),
        }
    }

    /// Skips lines until one starts with `prefix` and returns it; panics (with the
    /// child's stderr) if none comes within `timeout`.
    pub fn expect_eventually(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.line(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                other => panic!(
                    "{}: no line starting with {prefix:?} within {timeout:?} ({other:?}); stderr: {}",
                    self.name,
                    self.stderr()
                ),
            }
        }
    }

    /// Sends SIGKILL unless the child was already reaped.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            // SAFETY: plain syscall; the pid is our unreaped child, so it cannot have
            // been reused by another process.
            unsafe { libc::kill(self.pid(), libc::SIGKILL) };
        }
    }

    /// The exit status if the child has exited (reaping it), without waiting.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .unwrap_or_else(|e| panic!("{}: wait: {e}", self.name));
        }
        self.status
    }

    /// Panics, with the child's last output, if it has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.try_status() {
            let lines = self.drain(Duration::from_secs(10));
            panic!(
                "{} exited ({status}) while it should be running; last lines {:?}; stderr: {}",
                self.name,
                &lines[lines.len().saturating_sub(3)..],
                self.stderr()
            );
        }
    }

    /// Waits for the child to exit, at most `timeout`; kills it and panics if it
    /// does not.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.status = Some(status);
                    return status;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_micros(200));
                }
                Ok(None) => {
                    self.kill();
                    let _ = self.child.wait().map(|s| self.status = Some(s));
                    panic!(
                        "{}: still running after {timeout:?}; stderr: {}",
                        self.name,
                        self.stderr()
                    );
                }
                Err(e) => panic!("{}: wait: {e}", self.name),
            }
        }
    }

    /// Every stdout line not read yet, up to the child's EOF (at most `timeout`).
    pub fn drain(&mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.line(left) {
                Ok(line) => out.push(line),
                Err(NoLine::Eof) => return out,
                Err(NoLine::Timeout) => {
                    panic!("{}: stdout still open after {timeout:?}", self.name)
                }
            }
        }
    }

    /// Waits for exit and returns the status and the remaining lines.
    pub fn finish(&mut self, timeout: Duration) -> (ExitStatus, Vec<String>) {
        let status = self.wait(timeout);
        (status, self.drain(timeout))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.kill();
            let _ = self.child.wait();
        }
    }
}

/// One record as a reader saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its offset.
    pub offset: i64,
    /// Whose record it is.
    pub kind: Kind,
    /// [`payload::digest`] of its key and value.
    pub digest: String,
}

/// An `ack <base> <last> <first seq>` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// Offset of the first record of the batch.
    pub base: i64,
    /// Offset of the last record.
    pub last: i64,
    /// Sequence number of the first record.
    pub seq: u64,
}

fn fields<const N: usize>(line: &str, tag: &str) -> Option<[String; N]> {
    let mut parts = line.split_whitespace();
    if parts.next() != Some(tag) {
        return None;
    }
    let v: Vec<String> = parts.take(N).map(String::from).collect();
    v.try_into().ok()
}

/// Parses an `ack` line; `None` for any other line.
pub fn parse_ack(line: &str) -> Option<Ack> {
    let [base, last, seq] = fields::<3>(line, "ack")?;
    Some(Ack {
        base: base.parse().ok()?,
        last: last.parse().ok()?,
        seq: seq.parse().ok()?,
    })
}

/// Every `ack` in `lines`.
pub fn acks(lines: &[String]) -> Vec<Ack> {
    lines.iter().filter_map(|l| parse_ack(l)).collect()
}

/// The records a `read` child printed (`rec` lines), in order.
pub fn reader_entries(lines: &[String]) -> Vec<Entry> {
    lines
        .iter()
        .filter_map(|l| {
            let [offset, writer, seq, digest] = fields::<4>(l, "rec")?;
            Some(Entry {
                offset: offset.parse().ok()?,
                kind: Kind::Data {
                    writer: writer.parse().ok()?,
                    seq: seq.parse().ok()?,
                },
                digest,
            })
        })
        .collect()
}

/// Reads the whole partition in this process, checking every batch's CRC and every
/// record's self-check. Panics on the first bad record.
pub fn read_all(part: &Partition) -> Vec<Entry> {
    let mut reader = part
        .reader(part.start_offset())
        .expect("reader at the log start")
        .verify_crc(true);
    let mut out = Vec::new();
    loop {
        let batch = match reader.next_batch() {
            Ok(Some(b)) => b,
            Ok(None) => return out,
            Err(e) => panic!("reading after {} records: {e}", out.len()),
        };
        for record in batch.records() {
            let record = record.unwrap_or_else(|e| panic!("bad record in batch: {e}"));
            let kind = payload::classify(record.key, record.value)
                .unwrap_or_else(|why| panic!("offset {}: {why}", record.offset));
            out.push(Entry {
                offset: record.offset,
                kind,
                digest: payload::digest(record.key, record.value),
            });
        }
    }
}

/// Asserts that the entries hold offsets `first, first + 1, ...` with no gap and no
/// repeat, and that no `(writer, seq)` appears twice.
pub fn assert_dense_and_unique(entries: &[Entry], first: i64) {
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(
            e.offset,
            first + i as i64,
            "offsets must be dense: entry {i} has offset {}",
            e.offset
        );
    }
    let mut seen = HashSet::new();
    for e in entries {
        if let Kind::Data { .. } = e.kind {
            assert!(
                seen.insert(e.kind),
                "{:?} appears twice (again at offset {})",
                e.kind,
                e.offset
            );
        }
    }
}

/// For each writer, the `(offset, seq)` of its records in log order.
pub fn by_writer(entries: &[Entry]) -> HashMap<u32, Vec<(i64, u64)>> {
    let mut map: HashMap<u32, Vec<(i64, u64)>> = HashMap::new();
    for e in entries {
        if let Kind::Data { writer, seq } = e.kind {
            map.entry(writer).or_default().push((e.offset, seq));
        }
    }
    map
}

/// Asserts what a writer that appends its sequence in order, never retrying, must
/// find in the log: its records are exactly seqs `0..n` in increasing offset
/// order, and every acknowledged batch sits at exactly the offsets it was told.
/// Returns `n`. `entries` must be dense from offset `first`.
pub fn assert_writer(
    entries: &[Entry],
    first: i64,
    writers: &HashMap<u32, Vec<(i64, u64)>>,
    writer: u32,
    acks: &[Ack],
) -> u64 {
    let mine = writers.get(&writer).map_or(&[][..], Vec::as_slice);
    for (i, (offset, seq)) in mine.iter().enumerate() {
        assert_eq!(
            *seq, i as u64,
            "writer {writer}: record {i} in log order (offset {offset}) has seq {seq}"
        );
    }
    for ack in acks {
        for (i, offset) in (ack.base..=ack.last).enumerate() {
            let want = Kind::Data {
                writer,
                seq: ack.seq + i as u64,
            };
            let got = usize::try_from(offset - first)
                .ok()
                .and_then(|idx| entries.get(idx));
            assert_eq!(
                got.map(|e| (e.offset, e.kind)),
                Some((offset, want)),
                "writer {writer}: acknowledged record at offset {offset} is missing or different ({ack:?})"
            );
        }
    }
    mine.len() as u64
}
