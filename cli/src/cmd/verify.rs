//! `verify`: checks every batch (structure, CRC-32C, records, contiguous offsets
//! within and across segments), every `.index`, `.timeindex` and `.txnindex`
//! entry (against the entries Kafka's index rule gives for the batches walked),
//! every producer snapshot and each recovery point, reading the files directly.
//!
//! Opening a store as its first opener runs recovery, which cuts a torn or
//! damaged tail (and trusts what lies below the recovery point without checking
//! its CRCs): so verify never opens a store that no process has open. It takes
//! the openers' lock of `oncelog.lock` instead, which keeps any process from
//! opening (and recovering) the store while it reads. When processes have the
//! store open, it attaches as one more, reads only what is published (up to each
//! partition's end offset), and also reports a tail that the store's last
//! recovery cut (from the partition's metrics).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use indicatif::ProgressBar;
use oncelog::record::{Batch, ControlRecordType};
use oncelog::topic::TopicMeta;
use oncelog::TopicConfig;

use crate::cmd::dump::{base_offset_of, parse_snapshot};
use crate::error::CliError;
use crate::output::{bytes_bar, check_store_dir, human_bytes, open_store, Out};

/// Arguments of `verify`.
#[derive(Args)]
pub struct Verify {
    /// Only this topic.
    #[arg(long)]
    pub topic: Option<String>,
}

/// One thing found damaged.
struct Problem {
    path: PathBuf,
    offset: Option<i64>,
    position: Option<u64>,
    what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        match (self.offset, self.position) {
            (Some(o), Some(p)) => write!(f, ": offset {o}, byte {p}")?,
            (Some(o), None) => write!(f, ": offset {o}")?,
            (None, Some(p)) => write!(f, ": byte {p}")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.what)
    }
}

/// What verify found and how far it got.
struct Report {
    out: Out,
    bar: ProgressBar,
    problems: usize,
    partitions: u64,
    segments: u64,
    batches: u64,
    bytes: u64,
}

impl Report {
    fn problem(
        &mut self,
        path: &Path,
        offset: Option<i64>,
        position: Option<u64>,
        what: impl Into<String>,
    ) -> Result<(), CliError> {
        let p = Problem {
            path: path.to_path_buf(),
            offset,
            position,
            what: what.into(),
        };
        self.problems += 1;
        let out = &mut self.out;
        self.bar.suspend(|| {
            out.line(&p.to_string())?;
            out.flush()
        })
    }
}

/// The openers' lock (an OFD write lock on byte 0 of `oncelog.lock`), taken as
/// every process that opens or closes the store takes it: while verify holds it,
/// no process can open the store, so none runs recovery under it.
struct OpenersLock {
    file: File,
}

impl OpenersLock {
    /// Waits for the lock; `None` if the store has no lock file (it was never
    /// opened by oncelog, so no process has it open either).
    fn take(root: &Path) -> Result<Option<OpenersLock>, CliError> {
        let path = root.join("oncelog.lock");
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CliError::failed(format!("open {}: {e}", path.display()))),
        };
        // SAFETY: a zeroed flock struct is valid once filled in; OFD locks need
        // l_pid == 0.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = 0;
        fl.l_len = 1;
        loop {
            // SAFETY: `fl` is a valid flock struct and the descriptor is open.
            if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLKW, &fl) } == 0 {
                return Ok(Some(OpenersLock { file }));
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(CliError::failed(format!("lock {}: {err}", path.display())));
            }
        }
    }

    /// Whether a process has the store open: it holds a shared `flock` on the
    /// lock file, so an exclusive one cannot be had.
    fn store_in_use(&self) -> Result<bool, CliError> {
        let fd = self.file.as_raw_fd();
        loop {
            // SAFETY: plain syscalls on an open descriptor.
            if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                unsafe { libc::flock(fd, libc::LOCK_UN) };
                return Ok(false);
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EWOULDBLOCK) => return Ok(true),
                Some(libc::EINTR) => continue,
                _ => return Err(CliError::failed(format!("lock oncelog.lock: {err}"))),
            }
        }
    }
}

/// A partition to verify.
struct Planned {
    topic: String,
    partition: u32,
    dir: PathBuf,
    config: TopicConfig,
}

/// Checks every batch and index.
pub fn run(store: &Path, args: Verify) -> Result<ExitCode, CliError> {
    check_store_dir(store)?;
    if let Some(t) = &args.topic {
        // An unknown topic fails before anything is locked.
        TopicMeta::load(store, t)?;
    }
    let lock = OpenersLock::take(store)?;
    let in_use = match &lock {
        Some(l) => l.store_in_use()?,
        None => false,
    };
    // In use: attach (no recovery runs: others have it open) and read up to the
    // published ends. Otherwise keep the lock: nobody opens it meanwhile.
    let (live, _lock) = if in_use {
        drop(lock);
        (Some(open_store(store)?), None)
    } else {
        (None, lock)
    };

    let mut report = Report {
        out: Out::new(),
        bar: ProgressBar::hidden(),
        problems: 0,
        partitions: 0,
        segments: 0,
        batches: 0,
        bytes: 0,
    };
    check_meta(&mut report, store)?;
    let mut planned = Vec::new();
    let names = match &args.topic {
        Some(t) => vec![t.clone()],
        None => topic_names(store)?,
    };
    for name in names {
        let meta = match TopicMeta::load(store, &name) {
            Ok(m) => m,
            Err(e) => {
                let path = TopicMeta::path(store, &name);
                report.problem(&path, None, None, e.message().to_string())?;
                continue;
            }
        };
        for p in 0..meta.partitions {
            let dir = TopicMeta::partition_dir(store, &name, p);
            if !dir.is_dir() {
                report.problem(&dir, None, None, "the partition directory is missing")?;
                continue;
            }
            planned.push(Planned {
                topic: name.clone(),
                partition: p,
                dir,
                config: meta.config.clone(),
            });
        }
    }
    let total: u64 = planned
        .iter()
        .map(|p| segment_bases(&p.dir).map_or(0, |b| b.values().sum()))
        .sum();
    report.bar = bytes_bar(total, "verify", false);
    for p in &planned {
        let bound = match &live {
            Some(s) => {
                let partition = s.partition(&p.topic, p.partition)?;
                if partition.metrics().recovery_truncations > 0 {
                    report.problem(
                        &p.dir,
                        None,
                        None,
                        "the store's last recovery (first open) cut off a damaged or torn tail",
                    )?;
                }
                Some(partition.end_offset())
            }
            None => None,
        };
        verify_partition(&mut report, p, bound)?;
        report.partitions += 1;
    }
    report.bar.finish_and_clear();
    let summary = format!(
        "verified {} partition{}, {} segment{}, {} batch{} ({}){}: {}",
        report.partitions,
        plural(report.partitions),
        report.segments,
        plural(report.segments),
        report.batches,
        if report.batches == 1 { "" } else { "es" },
        human_bytes(report.bytes),
        if live.is_some() {
            ", up to the published ends (the store is open)"
        } else {
            ""
        },
        match report.problems {
            0 => "no damage".to_string(),
            1 => "1 problem".to_string(),
            n => format!("{n} problems"),
        }
    );
    report.out.line(&summary)?;
    report.out.flush()?;
    if report.problems > 0 {
        return Err(CliError::failed(format!(
            "{} damaged: {} problem{}",
            store.display(),
            report.problems,
            plural(report.problems as u64)
        )));
    }
    Ok(ExitCode::SUCCESS)
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `oncelog.meta` names a store of the format this build reads.
fn check_meta(report: &mut Report, store: &Path) -> Result<(), CliError> {
    let path = store.join("oncelog.meta");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut lines = text.lines();
    let ok = lines.next() == Some("oncelog-store")
        && text.lines().any(|l| l == "format_version=1")
        && text.lines().any(|l| {
            l.strip_prefix("store_id=")
                .is_some_and(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        });
    if !ok {
        report.problem(
            &path,
            None,
            None,
            "not a store identity of format version 1",
        )?;
    }
    Ok(())
}

/// The topics of the store: its `topics/*.properties` files.
fn topic_names(store: &Path) -> Result<Vec<String>, CliError> {
    let dir = store.join("topics");
    let mut names = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(CliError::failed(format!("list {}: {e}", dir.display()))),
    };
    for entry in entries {
        let entry = entry.map_err(|e| CliError::failed(format!("list {}: {e}", dir.display())))?;
        if let Some(name) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_suffix(".properties"))
        {
            if oncelog::topic::validate_name(name).is_ok() {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// The segments of a partition directory: base offset and `.log` length.
fn segment_bases(dir: &Path) -> std::io::Result<BTreeMap<i64, u64>> {
    let mut bases = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("log") {
            continue;
        }
        if let Some(base) = base_offset_of(&path) {
            bases.insert(base, entry.metadata().map_or(0, |m| m.len()));
        }
    }
    Ok(bases)
}

fn segment_path(dir: &Path, base: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}

/// What a missing file means.
#[derive(Clone, Copy)]
enum Missing<'a> {
    /// Damage.
    Problem,
    /// Nothing: the file is optional.
    Fine,
    /// Nothing if this segment `.log` is gone too (retention deleted the segment
    /// while verify read a store that is open), damage otherwise.
    FineIfGone(&'a Path),
}

/// Reads a file; `None` when it is missing or unreadable (reported as `missing`
/// says).
fn read_file(
    report: &mut Report,
    path: &Path,
    missing: Missing<'_>,
) -> Result<Option<Vec<u8>>, CliError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let fine = match missing {
                Missing::Problem => false,
                Missing::Fine => true,
                Missing::FineIfGone(log) => !log.exists(),
            };
            if !fine {
                report.problem(path, None, None, "missing")?;
            }
            Ok(None)
        }
        Err(e) => {
            report.problem(path, None, None, format!("cannot read: {e}"))?;
            Ok(None)
        }
    }
}

/// The recovery point of a partition, if it has a readable one.
fn read_checkpoint(report: &mut Report, dir: &Path) -> Result<Option<i64>, CliError> {
    let path = dir.join("recovery.checkpoint");
    let Some(bytes) = read_file(report, &path, Missing::Fine)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text.lines();
    match (lines.next(), lines.next().map(str::parse::<i64>)) {
        (Some("oncelog-recovery-point v1"), Some(Ok(o))) if o >= 0 => Ok(Some(o)),
        _ => {
            report.problem(
                &path,
                None,
                None,
                "not a recovery checkpoint (recovery will verify the whole partition)",
            )?;
            Ok(None)
        }
    }
}

/// An offset-index entry: (offset, position).
type OffsetEntry = (i64, u32);
/// A time-index entry: (timestamp, offset).
type TimeEntry = (i64, i64);

/// Kafka's index rule (FORMAT.md): the running state of a segment's indexes as
/// batches are appended, so the entries a walk expects equal the ones written.
struct IndexRule {
    interval: u32,
    last_index_position: Option<u32>,
    last_time_timestamp: Option<i64>,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
}

impl IndexRule {
    fn new(interval: u32) -> IndexRule {
        IndexRule {
            interval,
            last_index_position: None,
            last_time_timestamp: None,
            max_timestamp: i64::MIN,
            offset_of_max_timestamp: -1,
        }
    }

    /// The entries a batch at `position` adds: (offset, position) and
    /// (timestamp, offset).
    fn on_batch(
        &mut self,
        position: u32,
        last_offset: i64,
        max_timestamp: i64,
    ) -> (Option<OffsetEntry>, Option<TimeEntry>) {
        if max_timestamp > self.max_timestamp {
            self.max_timestamp = max_timestamp;
            self.offset_of_max_timestamp = last_offset;
        }
        let since = position - self.last_index_position.unwrap_or(0);
        if since > self.interval {
            self.last_index_position = Some(position);
            (Some((last_offset, position)), self.time_entry())
        } else {
            (None, None)
        }
    }

    /// A time entry if the largest timestamp grew since the last one (also the
    /// final entry of a sealed segment).
    fn time_entry(&mut self) -> Option<TimeEntry> {
        if self.max_timestamp == i64::MIN
            || self
                .last_time_timestamp
                .is_some_and(|t| t >= self.max_timestamp)
        {
            return None;
        }
        self.last_time_timestamp = Some(self.max_timestamp);
        Some((self.max_timestamp, self.offset_of_max_timestamp))
    }
}

/// The `.txnindex` entry an ABORT marker calls for: one if the producer's
/// transaction was open in the partition (FORMAT.md).
struct ExpectedAbort {
    producer: i64,
    /// First offset of the transaction, when the walk knows it.
    first: Option<i64>,
    /// Offset of the marker.
    marker: i64,
    /// The last stable offset right after the marker, when every open
    /// transaction is known.
    lso: Option<i64>,
    /// False when the walk cannot tell whether a transaction was open (it started
    /// before the oldest segment, and no snapshot says): the entry may be there.
    required: bool,
}

/// Which transactions are open in a partition as the walk goes, replaying the
/// rule of the partition's producer table: an idempotent transactional batch
/// opens its producer's transaction if none is open, any marker ends it.
struct OpenTxns {
    /// Producer -> first offset, and whether that offset is certain.
    open: HashMap<i64, (i64, bool)>,
    /// Producers whose state the walk knows.
    seen: HashSet<i64>,
    /// Whether the state of every producer is known (the log starts at 0, or a
    /// snapshot at its first segment says).
    all_known: bool,
}

impl OpenTxns {
    /// The state at the start of the partition's oldest segment.
    fn at_start(report: &mut Report, dir: &Path, base: i64) -> Result<OpenTxns, CliError> {
        let mut state = OpenTxns {
            open: HashMap::new(),
            seen: HashSet::new(),
            all_known: base == 0,
        };
        if base > 0 {
            let path = segment_path(dir, base, "snapshot");
            if let Some(bytes) = read_file(report, &path, Missing::Fine)? {
                if let Ok(entries) = parse_snapshot(&bytes) {
                    state.all_known = true;
                    for e in entries.iter().filter(|e| e.txn_first_offset >= 0) {
                        state.open.insert(e.producer_id, (e.txn_first_offset, true));
                    }
                }
            }
        }
        Ok(state)
    }

    fn knows(&self, producer: i64) -> bool {
        self.all_known || self.seen.contains(&producer)
    }

    fn on_data(&mut self, h: &oncelog::record::BatchHeader) {
        if h.producer_id >= 0 && h.base_sequence >= 0 && h.is_transactional() {
            let certain = self.knows(h.producer_id);
            self.open
                .entry(h.producer_id)
                .or_insert((h.base_offset, certain));
            self.seen.insert(h.producer_id);
        }
    }

    fn on_marker(
        &mut self,
        h: &oncelog::record::BatchHeader,
        abort: bool,
    ) -> Option<ExpectedAbort> {
        let p = h.producer_id;
        let known = self.knows(p);
        let first = self.open.remove(&p);
        self.seen.insert(p);
        if !abort || (first.is_none() && known) {
            return None;
        }
        let marker = h.base_offset;
        let lso = self.all_known.then(|| {
            self.open
                .values()
                .map(|(f, _)| *f)
                .min()
                .unwrap_or(i64::MAX)
                .min(marker + 1)
        });
        Some(ExpectedAbort {
            producer: p,
            first: first.filter(|(_, certain)| *certain).map(|(f, _)| f),
            marker,
            lso,
            required: first.is_some(),
        })
    }
}

/// What walking one segment's batches found.
struct Walk {
    index: Vec<OffsetEntry>,
    time: Vec<TimeEntry>,
    /// The final time entry written when the segment is sealed.
    seal_time: Option<TimeEntry>,
    /// The `.txnindex` entries the ABORT markers call for.
    aborts: Vec<ExpectedAbort>,
    next_offset: i64,
    /// Bytes walked.
    end_position: u64,
    /// Damage stopped the walk before the end of the data.
    stopped: bool,
}

fn verify_partition(report: &mut Report, p: &Planned, bound: Option<i64>) -> Result<(), CliError> {
    let dir = &p.dir;
    let bases = match segment_bases(dir) {
        Ok(b) => b,
        Err(e) => {
            return report.problem(dir, None, None, format!("cannot list: {e}"));
        }
    };
    if bases.is_empty() {
        return report.problem(dir, None, None, "no segment (.log file)");
    }
    let live = bound.is_some();
    let checkpoint = read_checkpoint(report, dir)?;
    let first_base = *bases.keys().next().expect("checked non-empty");
    let mut open_txns = OpenTxns::at_start(report, dir, first_base)?;
    let mut expected_next: Option<i64> = None;
    let mut log_end = None;
    let count = bases.len();
    for (i, (&base, &file_len)) in bases.iter().enumerate() {
        let last = i + 1 == count;
        let log_path = segment_path(dir, base, "log");
        // With the store open, retention may delete old segments meanwhile.
        let missing = if live {
            Missing::FineIfGone(&log_path)
        } else {
            Missing::Problem
        };
        let Some(bytes) = read_file(report, &log_path, missing)? else {
            report.bar.inc(file_len);
            expected_next = None;
            continue;
        };
        report.segments += 1;
        if let Some(n) = expected_next.filter(|n| *n != base) {
            report.problem(
                &log_path,
                Some(base),
                None,
                format!(
                    "the segment starts at offset {base}, but the one before ends at offset {n}"
                ),
            )?;
        }
        let done_before = report.bar.position();
        let walk = walk_segment(
            report,
            &log_path,
            base,
            &bytes,
            last,
            bound.filter(|_| last),
            checkpoint,
            p.config.index_interval_bytes,
            &mut open_txns,
        )?;
        report.bar.set_position(done_before + file_len);
        report.bytes += walk.end_position;
        expected_next = (!walk.stopped).then_some(walk.next_offset);
        if last && !walk.stopped {
            log_end = Some(walk.next_offset);
        }
        check_offset_index(report, dir, base, &walk, last, missing)?;
        check_time_index(report, dir, base, &walk, last, missing)?;
        check_txn_index(report, dir, base, &walk, bound.filter(|_| last), missing)?;
        let snapshot = segment_path(dir, base, "snapshot");
        if let Some(bytes) = read_file(report, &snapshot, Missing::Fine)? {
            if let Err(e) = parse_snapshot(&bytes) {
                report.problem(&snapshot, None, None, format!("producer snapshot: {e}"))?;
            }
        }
    }
    if let (Some(rp), Some(end)) = (checkpoint, log_end) {
        if rp > end {
            report.problem(
                &dir.join("recovery.checkpoint"),
                Some(rp),
                None,
                format!("the recovery point is past the end of the log ({end}): data recorded as synced is missing"),
            )?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn walk_segment(
    report: &mut Report,
    path: &Path,
    base: i64,
    bytes: &[u8],
    last: bool,
    bound: Option<i64>,
    checkpoint: Option<i64>,
    interval: u32,
    open_txns: &mut OpenTxns,
) -> Result<Walk, CliError> {
    let mut rule = IndexRule::new(interval);
    let mut walk = Walk {
        index: Vec::new(),
        time: Vec::new(),
        seal_time: None,
        aborts: Vec::new(),
        next_offset: base,
        end_position: 0,
        stopped: false,
    };
    // What recovery makes of damage at `offset`: it checks the structure of the
    // active segment always, and CRCs only from the recovery point on.
    let note = |offset: i64, crc_only: bool| -> &'static str {
        let below = checkpoint.is_some_and(|rp| offset < rp);
        if bound.is_some() {
            ""
        } else if crc_only && below {
            " (below the recovery point, where recovery does not check CRCs)"
        } else if last || !below {
            " (the next first open of the store cuts the log here)"
        } else {
            ""
        }
    };
    let start_bar = report.bar.position();
    let mut pos = 0usize;
    let mut since_bar = 0usize;
    while pos < bytes.len() {
        let next = walk.next_offset;
        if bound.is_some_and(|b| next >= b) {
            break;
        }
        let rest = &bytes[pos..];
        if rest.iter().all(|b| *b == 0) {
            if !last {
                report.problem(
                    path,
                    Some(next),
                    Some(pos as u64),
                    format!(
                        "{} bytes of zeros after the last batch of a sealed segment{}",
                        rest.len(),
                        note(next, false)
                    ),
                )?;
                walk.stopped = true;
            }
            break;
        }
        let batch = match Batch::parse(rest) {
            Ok(b) => b,
            Err(e) => {
                report.problem(
                    path,
                    Some(next),
                    Some(pos as u64),
                    format!("not a whole batch: {e}{}", note(next, false)),
                )?;
                walk.stopped = true;
                break;
            }
        };
        let h = *batch.header();
        if h.base_offset != next {
            report.problem(
                path,
                Some(next),
                Some(pos as u64),
                format!(
                    "the batch has base offset {}, expected {next}{}",
                    h.base_offset,
                    note(next, false)
                ),
            )?;
            walk.stopped = true;
            break;
        }
        // The transaction state follows the batch even when its CRC fails, so that
        // one damaged batch makes one problem.
        let contents = check_contents(&batch, open_txns, &mut walk.aborts);
        if let Err(e) = batch.verify_crc() {
            report.problem(
                path,
                Some(next),
                Some(pos as u64),
                format!("{e}{}", note(next, true)),
            )?;
        } else if let Err(e) = contents {
            report.problem(
                path,
                Some(next),
                Some(pos as u64),
                format!("{e}{}", note(next, false)),
            )?;
        }
        report.batches += 1;
        let (index, time) = rule.on_batch(pos as u32, h.last_offset(), h.max_timestamp);
        walk.index.extend(index);
        walk.time.extend(time);
        pos += h.total_len();
        walk.next_offset = h.next_offset();
        since_bar += h.total_len();
        if since_bar >= 1 << 20 {
            report.bar.set_position(start_bar + pos as u64);
            since_bar = 0;
        }
    }
    walk.end_position = pos as u64;
    walk.seal_time = rule.time_entry();
    Ok(walk)
}

/// Decodes every record of a batch (and a marker's control record), following
/// each producer's open transaction to know which `.txnindex` entries the
/// segment needs.
fn check_contents(
    batch: &Batch<'_>,
    open_txns: &mut OpenTxns,
    aborts: &mut Vec<ExpectedAbort>,
) -> Result<(), String> {
    let h = batch.header();
    if h.is_control() {
        let (kind, _) = batch.control().map_err(|e| format!("marker: {e}"))?;
        aborts.extend(open_txns.on_marker(h, kind == ControlRecordType::Abort));
        return Ok(());
    }
    for record in batch.records() {
        record.map_err(|e| e.to_string())?;
    }
    open_txns.on_data(h);
    Ok(())
}

/// Entries of an index file, and bytes that do not make a whole entry.
/// The `len`-byte entries of an index file's `bytes`; a partial last entry is a
/// problem unless `partial_ok` (an active segment's index may be mid-write).
fn entries<'a>(
    report: &mut Report,
    path: &Path,
    bytes: &'a [u8],
    len: usize,
    partial_ok: bool,
) -> Result<Vec<&'a [u8]>, CliError> {
    if bytes.len() % len != 0 && !partial_ok {
        report.problem(
            path,
            None,
            None,
            format!(
                "{} bytes: not a whole number of {len}-byte entries",
                bytes.len()
            ),
        )?;
    }
    Ok(bytes.chunks_exact(len).collect())
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

/// Compares the entries of an index file with the ones the walk expects: all of
/// them and nothing more in a sealed segment; as a prefix in the active one
/// (whose file is reserved ahead). Entries past damage that stopped the walk
/// are not judged. Reports the first difference.
fn compare_entries<T: PartialEq + Copy>(
    report: &mut Report,
    path: &Path,
    found: &[T],
    expected: &[T],
    sealed_and_complete: bool,
    show: impl Fn(T) -> String,
) -> Result<(), CliError> {
    for (i, want) in expected.iter().enumerate() {
        match found.get(i) {
            Some(got) if got == want => {}
            Some(got) => {
                return report.problem(
                    path,
                    None,
                    None,
                    format!("entry {i} is {}, expected {}", show(*got), show(*want)),
                )
            }
            None => {
                return report.problem(
                    path,
                    None,
                    None,
                    format!(
                        "{} entries, expected {} (the next one is {})",
                        found.len(),
                        expected.len(),
                        show(*want)
                    ),
                )
            }
        }
    }
    if sealed_and_complete && found.len() > expected.len() {
        return report.problem(
            path,
            None,
            None,
            format!(
                "{} entries, expected {} (entry {} is {})",
                found.len(),
                expected.len(),
                expected.len(),
                show(found[expected.len()])
            ),
        );
    }
    Ok(())
}

fn check_offset_index(
    report: &mut Report,
    dir: &Path,
    base: i64,
    walk: &Walk,
    last: bool,
    missing: Missing<'_>,
) -> Result<(), CliError> {
    let path = segment_path(dir, base, "index");
    let Some(bytes) = read_file(report, &path, missing)? else {
        return Ok(());
    };
    let raw = entries(report, &path, &bytes, 8, last)?;
    let found: Vec<(i64, u32)> = raw
        .iter()
        .map(|e| (base + i64::from(be_i32(e)), be_i32(&e[4..]) as u32))
        .collect();
    let show = |(o, p): (i64, u32)| format!("(offset {o}, position {p})");
    compare_entries(
        report,
        &path,
        &found,
        &walk.index,
        !last && !walk.stopped,
        show,
    )
}

fn check_time_index(
    report: &mut Report,
    dir: &Path,
    base: i64,
    walk: &Walk,
    last: bool,
    missing: Missing<'_>,
) -> Result<(), CliError> {
    let path = segment_path(dir, base, "timeindex");
    let Some(bytes) = read_file(report, &path, missing)? else {
        return Ok(());
    };
    let raw = entries(report, &path, &bytes, 12, last)?;
    let found: Vec<(i64, i64)> = raw
        .iter()
        .map(|e| (be_i64(e), base + i64::from(be_i32(&e[8..]))))
        .collect();
    let mut expected = walk.time.clone();
    if !last {
        // Sealing wrote the segment's largest timestamp last.
        expected.extend(walk.seal_time);
    }
    let show = |(t, o): (i64, i64)| format!("(timestamp {t}, offset {o})");
    compare_entries(
        report,
        &path,
        &found,
        &expected,
        !last && !walk.stopped,
        show,
    )
}

fn check_txn_index(
    report: &mut Report,
    dir: &Path,
    base: i64,
    walk: &Walk,
    bound: Option<i64>,
    missing: Missing<'_>,
) -> Result<(), CliError> {
    const LEN: usize = 34;
    let path = segment_path(dir, base, "txnindex");
    let Some(bytes) = read_file(report, &path, missing)? else {
        return Ok(());
    };
    let raw = entries(report, &path, &bytes, LEN, false)?;
    // Entries for markers past the published end (being written) or past damage
    // that stopped the walk are not judged; otherwise each must answer a marker.
    let limit = if bound.is_none() && !walk.stopped {
        i64::MAX
    } else {
        bound.unwrap_or(i64::MAX).min(walk.next_offset)
    };
    let found: Vec<&[u8]> = raw
        .into_iter()
        .filter(|e| be_i64(&e[18..]) < limit)
        .collect();
    let mut next = 0; // the next entry of `found` to match
    for want in walk.aborts.iter().filter(|a| a.marker < limit) {
        let Some(e) = found.get(next) else {
            if !want.required {
                continue;
            }
            return report.problem(
                &path,
                None,
                None,
                format!(
                    "{} entries: the ABORT marker of producer {} at offset {} has none",
                    found.len(),
                    want.producer,
                    want.marker
                ),
            );
        };
        let (version, producer, first, last, lso) = (
            i16::from_be_bytes([e[0], e[1]]),
            be_i64(&e[2..]),
            be_i64(&e[10..]),
            be_i64(&e[18..]),
            be_i64(&e[26..]),
        );
        if (producer, last) != (want.producer, want.marker) {
            if !want.required {
                continue;
            }
            return report.problem(
                &path,
                None,
                None,
                format!(
                    "entry {next} is producer {producer} with its ABORT marker at {last}, expected producer {} with its marker at {}",
                    want.producer, want.marker
                ),
            );
        }
        let what = if version != 0 {
            Some(format!("entry {next} has version {version}, not 0"))
        } else if want.first.is_some_and(|f| f != first) || first > last {
            Some(format!(
                "entry {next}: the aborted transaction of producer {producer} starts at offset {}, the entry says {first}",
                want.first.map_or("?".to_string(), |f| f.to_string())
            ))
        } else if want.lso.is_some_and(|l| l != lso) || lso > last + 1 {
            Some(format!(
                "entry {next}: the last stable offset after the marker at {last} is {}, the entry says {lso}",
                want.lso.map_or("at most ".to_string() + &(last + 1).to_string(), |l| l.to_string())
            ))
        } else {
            None
        };
        if let Some(what) = what {
            return report.problem(&path, None, None, what);
        }
        next += 1;
    }
    if let Some(e) = found.get(next) {
        return report.problem(
            &path,
            None,
            None,
            format!(
                "entry {next} (producer {}, ABORT marker at {}) answers no ABORT marker of an open transaction in the segment",
                be_i64(&e[2..]),
                be_i64(&e[18..])
            ),
        );
    }
    Ok(())
}
