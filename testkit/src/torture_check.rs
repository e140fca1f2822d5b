//! The checker of a torture run: reads the histories of every process life (see
//! [`crate::torture`]) and the final log, and counts the anomalies.
//!
//! The log is judged on its own terms first: every batch of every partition is
//! read raw (CRC checked, control batches included), and which transactional
//! records are visible is worked out from the COMMIT/ABORT markers alone. The core's
//! own read_committed reader must agree with that (`rc_view_mismatch`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use oncelog::record::ControlRecordType;
use oncelog::Store;

use crate::payload::{self, Kind};
use crate::torture::{writer_id, KINDS, TOPICS};

/// What one process life printed, and how it ended.
#[derive(Clone, Debug)]
pub struct Life {
    /// Index into [`KINDS`].
    pub kind: usize,
    /// The process id within its kind.
    pub id: u32,
    /// The life number (0 for the first start).
    pub life: u32,
    /// Every stdout line it printed.
    pub lines: Vec<String>,
    /// Whether the parent killed it (else it exited on its own).
    pub killed: bool,
    /// Its stderr, for the report of an unexpected exit.
    pub stderr: String,
}

/// One data record of the log.
#[derive(Clone, Debug)]
struct LogRec {
    digest: String,
    kind: Option<Kind>,
    /// Whether read_committed readers must see it (non-transactional, or in a
    /// committed transaction).
    visible: bool,
    /// In an aborted transaction.
    aborted: bool,
    /// `<p>:<o>` of an `eos-out` record.
    text: Option<String>,
}

/// One partition of the final log.
#[derive(Default)]
struct PartLog {
    data: BTreeMap<i64, LogRec>,
    controls: usize,
    open: usize,
}

/// The anomaly counts of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Acknowledged records missing from the log at their offset (or from a
    /// committed transaction's visible records); committed input records missing
    /// from the exactly-once output.
    pub lost: u64,
    /// Records found more than once where at most once is promised (idempotent
    /// producers, committed transactions, the exactly-once output).
    pub duplicates: u64,
    /// Duplicates of plain (non-idempotent) producers: allowed, reported.
    pub plain_duplicates: u64,
    /// Records of aborted transactions seen by a read_committed reader, made
    /// visible, or transformed into the exactly-once output.
    pub aborted_seen: u64,
    /// Offsets a consumer read out of order within one life.
    pub out_of_order: u64,
    /// Visible offsets a read_committed reader skipped, within one life or across
    /// a restart (it resumes at its group's committed offset, which is never past
    /// what it had read).
    pub skipped: u64,
    /// Transactions of which some acknowledged records are visible and others not.
    pub torn_transactions: u64,
    /// A producer's records in a partition out of its send order.
    pub reordered: u64,
    /// An offset with two different values (log vs acknowledgement, log vs reader).
    pub different_value: u64,
    /// Disagreements between the core's read_committed reader and the markers.
    pub rc_view_mismatch: u64,
    /// Transactions still open in the final log.
    pub open_transactions: u64,
    /// Process lives that exited on their own (an error) instead of being killed.
    pub unexpected_exits: u64,
}

impl Counts {
    /// The counts that must be zero, by name.
    pub fn must_be_zero(&self) -> [(&'static str, u64); 11] {
        [
            ("lost", self.lost),
            ("duplicates", self.duplicates),
            ("aborted_seen", self.aborted_seen),
            ("out_of_order", self.out_of_order),
            ("skipped", self.skipped),
            ("torn_transactions", self.torn_transactions),
            ("reordered", self.reordered),
            ("different_value", self.different_value),
            ("rc_view_mismatch", self.rc_view_mismatch),
            ("open_transactions", self.open_transactions),
            ("unexpected_exits", self.unexpected_exits),
        ]
    }
}

/// What the checker looked at, beside the anomalies.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    /// Acknowledged records checked, per kind (plain, idem, txn).
    pub acked: [u64; 3],
    /// Records read by consumers (`rd` lines), per kind (eos, reader).
    pub read: [u64; 2],
    /// Committed input records of the exactly-once members.
    pub eos_inputs: u64,
    /// Transactions committed / aborted as told to the transactional producers.
    pub txns: (u64, u64),
    /// Data records in the final log.
    pub log_records: u64,
}

/// The checker's result: counts, totals and the first few anomalies described.
#[derive(Default)]
pub struct Report {
    /// The anomaly counts.
    pub counts: Counts,
    /// What was checked.
    pub totals: Totals,
    /// Up to 20 descriptions of anomalies.
    pub examples: Vec<String>,
}

impl Report {
    fn note(&mut self, what: String) {
        if self.examples.len() < 20 {
            self.examples.push(what);
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.totals;
        writeln!(
            f,
            "checked: acked plain {} idem {} txn {}; read eos {} reader {}; eos inputs {}; \
             txns committed {} aborted {}; log records {}",
            t.acked[0],
            t.acked[1],
            t.acked[2],
            t.read[0],
            t.read[1],
            t.eos_inputs,
            t.txns.0,
            t.txns.1,
            t.log_records
        )?;
        writeln!(f, "{:<22} {:>8}", "anomaly", "count")?;
        for (name, n) in self.counts.must_be_zero() {
            writeln!(f, "{name:<22} {n:>8}")?;
        }
        writeln!(
            f,
            "{:<22} {:>8}  (allowed)",
            "plain_duplicates", self.counts.plain_duplicates
        )?;
        for e in &self.examples {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

type Key = (String, u32);

fn read_partition(store: &Store, topic: &str, p: u32, report: &mut Report) -> PartLog {
    let part = store
        .partition(topic, p)
        .expect("partition of a torture topic");
    let mut out = PartLog::default();
    // Transactional data batches awaiting their producer's marker: pid -> offsets.
    let mut pending: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut reader = part
        .reader(part.start_offset())
        .expect("reader")
        .verify_crc(true);
    while let Some(batch) = reader.next_batch().expect("the log reads back") {
        let header = *batch.header();
        let pid = header.producer().producer_id;
        if header.is_control() {
            out.controls += 1;
            let (kind, _) = batch.batch().control().expect("a control record");
            for o in pending.remove(&pid).unwrap_or_default() {
                let r = out.data.get_mut(&o).expect("pending offsets are data");
                r.visible = kind == ControlRecordType::Commit;
                r.aborted = kind == ControlRecordType::Abort;
            }
            continue;
        }
        for record in batch.records() {
            let record = record.expect("a record of a CRC-checked batch");
            let kind = payload::classify(record.key, record.value).ok();
            let text = if topic == "eos-out" {
                record
                    .value
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            } else {
                None
            };
            if kind.is_none() && text.is_none() {
                report.counts.different_value += 1;
                report.note(format!(
                    "{topic}-{p}@{}: not a torture record",
                    record.offset
                ));
            }
            out.data.insert(
                record.offset,
                LogRec {
                    digest: payload::digest(record.key, record.value),
                    kind,
                    visible: !header.is_transactional(),
                    aborted: false,
                    text,
                },
            );
            if header.is_transactional() {
                pending.entry(pid).or_default().push(record.offset);
            }
        }
    }
    out.open = pending.values().map(Vec::len).sum();
    // The core's read_committed view must be the visible records, exactly.
    let mut core = BTreeSet::new();
    let mut reader = part
        .reader(part.start_offset())
        .expect("reader")
        .read_committed(true);
    while let Some(batch) = reader.next_batch().expect("read_committed reads back") {
        if batch.header().is_control() {
            continue;
        }
        for record in batch.records() {
            core.insert(record.expect("record").offset);
        }
    }
    let visible: BTreeSet<i64> = out
        .data
        .iter()
        .filter(|(_, r)| r.visible)
        .map(|(o, _)| *o)
        .collect();
    for o in core.symmetric_difference(&visible) {
        report.counts.rc_view_mismatch += 1;
        report.note(format!(
            "{topic}-{p}@{o}: read_committed reader {} it, the markers say {}",
            if core.contains(o) { "returns" } else { "skips" },
            if visible.contains(o) {
                "visible"
            } else {
                "invisible"
            }
        ));
    }
    out
}

fn fields(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// What a run promises of what its producers were told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Promise {
    /// Processes were killed: every acknowledged record survives.
    Kill,
    /// The machine lost power: the acknowledged records of a plain or idempotent
    /// producer life that printed `acks synced` survive, and those of a
    /// transaction of such a life once its commit returned (they are acknowledged
    /// unsynced and made durable by the commit). Other acknowledged records may be
    /// gone, but a transaction is never visible in part, and a record that is
    /// there is the one acknowledged at its offset.
    PowerLoss,
    /// The store was closed cleanly, then the machine lost power: every
    /// acknowledged record survives, as after a kill.
    CleanShutdown,
}

/// Checks `lives` against the final log of `store` (every transaction finished)
/// after processes were killed.
pub fn check(store: &Store, lives: &[Life]) -> Report {
    check_for(store, lives, Promise::Kill)
}

/// Checks `lives` against the final log of `store` (every transaction finished),
/// holding the producers to `promise`.
pub fn check_for(store: &Store, lives: &[Life], promise: Promise) -> Report {
    let mut report = Report::default();
    let mut log: BTreeMap<Key, PartLog> = BTreeMap::new();
    for (topic, partitions) in TOPICS {
        for p in 0..partitions {
            let part = read_partition(store, topic, p, &mut report);
            report.counts.open_transactions += part.open as u64;
            report.totals.log_records += part.data.len() as u64;
            log.insert((topic.to_string(), p), part);
        }
    }
    if report.counts.open_transactions > 0 {
        report.note(format!(
            "{} records of transactions still open",
            report.counts.open_transactions
        ));
    }
    check_producers(&log, lives, promise, &mut report);
    check_duplicates(&log, &mut report);
    // Only a run with exactly-once members has an output to hold to its input: all
    // of it once they caught up (a torture run), else what their committed offsets
    // say they consumed.
    if lives.iter().any(|l| KINDS[l.kind] == "eos") {
        if promise == Promise::Kill {
            check_eos_output(&log, &mut report);
        } else {
            check_eos_offsets(store, &log, lives, promise, &mut report);
        }
    }
    check_consumers(&log, lives, &mut report);
    for l in lives.iter().filter(|l| !l.killed) {
        report.counts.unexpected_exits += 1;
        report.note(format!(
            "{} {} life {} exited on its own: last line {:?}; stderr {}",
            KINDS[l.kind],
            l.id,
            l.life,
            l.lines.last(),
            l.stderr.trim()
        ));
    }
    report
}

fn topic_of(kind: usize) -> &'static str {
    ["plain", "idem", "tx"][kind]
}

/// Acknowledged sends: in the log at the acknowledged offset; for transactions,
/// visible if committed and invisible if aborted.
fn check_producers(
    log: &BTreeMap<Key, PartLog>,
    lives: &[Life],
    promise: Promise,
    report: &mut Report,
) {
    for l in lives.iter().filter(|l| l.kind <= 2) {
        let writer = writer_id(l.kind, l.id, l.life);
        let topic = topic_of(l.kind);
        let synced = l.lines.iter().any(|line| line == "acks synced");
        // Transaction outcomes: first seq of each, and what it was told.
        let mut begins: BTreeMap<u64, u64> = BTreeMap::new();
        let mut outcome: HashMap<u64, bool> = HashMap::new();
        for line in &l.lines {
            match fields(line)[..] {
                ["begin", n, seq] => {
                    begins.insert(seq.parse().unwrap_or(0), n.parse().unwrap_or(0));
                }
                ["committed", n] => {
                    outcome.insert(n.parse().unwrap_or(0), true);
                    report.totals.txns.0 += 1;
                }
                ["aborted", n] => {
                    outcome.insert(n.parse().unwrap_or(0), false);
                    report.totals.txns.1 += 1;
                }
                _ => {}
            }
        }
        // Per transaction: acknowledged records visible, and not.
        let mut parts: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for line in &l.lines {
            let ["ack", p, seq, offset] = fields(line)[..] else {
                continue;
            };
            let (Ok(p), Ok(seq), Ok(offset)) =
                (p.parse::<u32>(), seq.parse::<u64>(), offset.parse::<i64>())
            else {
                continue;
            };
            report.totals.acked[l.kind] += 1;
            let want = Kind::Data { writer, seq };
            let at = log
                .get(&(topic.to_string(), p))
                .and_then(|part| part.data.get(&offset));
            let txn = begins.range(..=seq).next_back().map(|(_, n)| *n);
            let committed = txn.and_then(|n| outcome.get(&n)) == Some(&true);
            let Some(rec) = at else {
                if let (2, Some(n)) = (l.kind, txn) {
                    // Missing is invisible: with visible ones, the transaction is torn.
                    parts.entry(n).or_default().1 += 1;
                }
                if promise == Promise::PowerLoss && !(synced && (l.kind != 2 || committed)) {
                    // Acknowledged unsynced: the power loss may take it.
                    continue;
                }
                report.counts.lost += 1;
                report.note(format!(
                    "{} {} life {}: acknowledged seq {seq} at {topic}-{p}@{offset} is not in the log",
                    KINDS[l.kind], l.id, l.life
                ));
                continue;
            };
            if rec.kind != Some(want) {
                report.counts.different_value += 1;
                report.note(format!(
                    "{} {} life {}: acknowledged seq {seq} at {topic}-{p}@{offset}, the log holds {:?}",
                    KINDS[l.kind], l.id, l.life, rec.kind
                ));
                continue;
            }
            if l.kind != 2 {
                continue;
            }
            if let Some(n) = txn {
                let e = parts.entry(n).or_default();
                if rec.visible {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                }
            }
            match txn.and_then(|n| outcome.get(&n)) {
                Some(true) if !rec.visible => {
                    report.counts.lost += 1;
                    report.note(format!(
                        "txn {} life {}: seq {seq} of a committed transaction at {topic}-{p}@{offset} is not visible",
                        l.id, l.life
                    ));
                }
                Some(false) if rec.visible => {
                    report.counts.aborted_seen += 1;
                    report.note(format!(
                        "txn {} life {}: seq {seq} of an aborted transaction at {topic}-{p}@{offset} is visible",
                        l.id, l.life
                    ));
                }
                _ => {}
            }
        }
        for (n, (visible, hidden)) in parts {
            if visible > 0 && hidden > 0 {
                report.counts.torn_transactions += 1;
                report.note(format!(
                    "txn {} life {}: transaction {n} has {visible} visible and {hidden} invisible acknowledged records",
                    l.id, l.life
                ));
            }
        }
    }
}

/// At most one copy of an idempotent producer's record, at most one visible copy of
/// a transactional one; plain producers' copies are counted. Each producer's
/// records in a partition are in its send order.
fn check_duplicates(log: &BTreeMap<Key, PartLog>, report: &mut Report) {
    for (kind, topic) in ["plain", "idem", "tx"].iter().enumerate() {
        let mut seen: HashMap<Kind, i64> = HashMap::new();
        for ((t, p), part) in log {
            if t != topic {
                continue;
            }
            // Per writer: the last sequence number in this partition, and the copies
            // met so far (a plain producer's duplicate is not a reordering).
            let mut last: HashMap<u32, (u64, i64)> = HashMap::new();
            let mut here: HashSet<Kind> = HashSet::new();
            for (o, r) in &part.data {
                let Some(k) = r.kind else { continue };
                if let Kind::Data { writer, seq } = k {
                    if here.insert(k) {
                        if let Some((prev, at)) = last.insert(writer, (seq, *o)) {
                            if seq <= prev {
                                report.counts.reordered += 1;
                                report.note(format!(
                                    "{t}-{p}: writer {writer:#x} seq {seq} at @{o} after seq {prev} at @{at}"
                                ));
                            }
                        }
                    }
                }
                if kind == 2 && !r.visible {
                    continue;
                }
                if let Some(first) = seen.insert(k, *o) {
                    if kind == 0 {
                        report.counts.plain_duplicates += 1;
                    } else {
                        report.counts.duplicates += 1;
                        report.note(format!("{k:?} twice in {t}: at {first} and at {p}@{o}"));
                    }
                }
            }
        }
    }
}

/// Every visible input record of `tx` exactly once in the visible `eos-out`, and
/// nothing else.
fn check_eos_output(log: &BTreeMap<Key, PartLog>, report: &mut Report) {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    if let Some(part) = log.get(&("eos-out".to_string(), 0)) {
        for r in part.data.values().filter(|r| r.visible) {
            *out.entry(r.text.clone().unwrap_or_default()).or_default() += 1;
        }
    }
    let mut inputs = BTreeSet::new();
    for ((t, p), part) in log {
        if t != "tx" {
            continue;
        }
        for (o, r) in &part.data {
            let name = format!("{p}:{o}");
            if r.visible {
                report.totals.eos_inputs += 1;
                match out.get(&name).copied().unwrap_or(0) {
                    0 => {
                        report.counts.lost += 1;
                        report.note(format!("eos: input tx-{p}@{o} is not in the output"));
                    }
                    1 => {}
                    n => {
                        report.counts.duplicates += n - 1;
                        report.note(format!("eos: input tx-{p}@{o} is in the output {n} times"));
                    }
                }
                inputs.insert(name);
            }
        }
    }
    for (name, n) in out {
        if !inputs.contains(&name) {
            report.counts.aborted_seen += n;
            report.note(format!(
                "eos: output {name:?} is no visible input record (aborted?)"
            ));
        }
    }
}

/// Without catching up: the group `eos`'s committed offset of each input partition
/// `tx-p` divides the visible input into what is in the visible output exactly
/// once (below it) and what is not in it at all (from it on), since offsets and
/// output are committed in one transaction. Each `committed` of an exactly-once
/// member life with `acks synced` (or of any life, unless `promise` is a power
/// loss) must be covered by the committed offsets.
fn check_eos_offsets(
    store: &Store,
    log: &BTreeMap<Key, PartLog>,
    lives: &[Life],
    promise: Promise,
    report: &mut Report,
) {
    let offsets = oncelog::offsets::OffsetStore::open(store).expect("the offsets log opens");
    let mut committed: BTreeMap<u32, i64> = BTreeMap::new();
    for ((t, p), _) in log.iter().filter(|((t, _), _)| t == "tx") {
        let at = offsets
            .committed("eos", t, *p)
            .expect("committed offsets read back")
            .map_or(i64::MIN, |c| c.offset);
        committed.insert(*p, at);
    }
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    if let Some(part) = log.get(&("eos-out".to_string(), 0)) {
        for r in part.data.values().filter(|r| r.visible) {
            *out.entry(r.text.clone().unwrap_or_default()).or_default() += 1;
        }
    }
    let mut inputs = BTreeSet::new();
    for ((t, p), part) in log.iter().filter(|((t, _), _)| t == "tx") {
        let upto = committed.get(p).copied().unwrap_or(i64::MIN);
        for (o, _) in part.data.iter().filter(|(_, r)| r.visible) {
            let name = format!("{p}:{o}");
            let n = out.get(&name).copied().unwrap_or(0);
            if *o < upto {
                report.totals.eos_inputs += 1;
                if n == 0 {
                    report.counts.lost += 1;
                    report.note(format!("eos: input {t}-{p}@{o} is below the committed offset {upto}, not in the output"));
                }
            } else if n > 0 {
                report.counts.torn_transactions += 1;
                report.note(format!(
                    "eos: input {t}-{p}@{o} is in the output, the committed offset is {upto}"
                ));
            }
            if n > 1 {
                report.counts.duplicates += n - 1;
                report.note(format!("eos: input {t}-{p}@{o} is in the output {n} times"));
            }
            inputs.insert(name);
        }
    }
    for (name, n) in out {
        if !inputs.contains(&name) {
            report.counts.aborted_seen += n;
            report.note(format!("eos: output {name:?} is no visible input record"));
        }
    }
    // Acknowledged offset commits.
    for l in lives.iter().filter(|l| KINDS[l.kind] == "eos") {
        if promise == Promise::PowerLoss && !l.lines.iter().any(|x| x == "acks synced") {
            continue;
        }
        let mut next: BTreeMap<u32, i64> = BTreeMap::new();
        for line in &l.lines {
            match fields(line)[..] {
                ["rd", "tx", p, o, _] => {
                    if let (Ok(p), Ok(o)) = (p.parse::<u32>(), o.parse::<i64>()) {
                        let e = next.entry(p).or_insert(o + 1);
                        *e = (*e).max(o + 1);
                    }
                }
                ["committed", _] => {
                    for (p, want) in std::mem::take(&mut next) {
                        let have = committed.get(&p).copied().unwrap_or(i64::MIN);
                        if have < want {
                            report.counts.lost += 1;
                            report.note(format!(
                                "eos {} life {}: committed offset {want} of tx-{p} acknowledged, the log holds {have}",
                                l.id, l.life
                            ));
                        }
                    }
                }
                ["refused", ..] | ["rewind"] => next.clear(),
                _ => {}
            }
        }
    }
}

/// `rd` lines: each at a visible offset with the log's value; per life and
/// partition strictly increasing (an `eos` member starts over after `rewind`);
/// a read_committed reader skips no visible offset.
fn check_consumers(log: &BTreeMap<Key, PartLog>, lives: &[Life], report: &mut Report) {
    // Per reader id and partition: the highest offset read in its lives so far.
    let mut read_so_far: HashMap<(u32, Key), i64> = HashMap::new();
    let mut readers: Vec<&Life> = lives.iter().filter(|l| l.kind == 4).collect();
    readers.sort_by_key(|l| (l.id, l.life));
    for l in readers {
        let mut started: BTreeSet<Key> = BTreeSet::new();
        for line in &l.lines {
            let ["rd", topic, p, offset, _] = fields(line)[..] else {
                continue;
            };
            let (Ok(p), Ok(offset)) = (p.parse::<u32>(), offset.parse::<i64>()) else {
                continue;
            };
            let key = (topic.to_string(), p);
            let Some(part) = log.get(&key) else { continue };
            let slot = (l.id, key.clone());
            let before = read_so_far.get(&slot).copied();
            if started.insert(key) {
                // A life's first record of a partition: nothing visible between what
                // earlier lives read (or the log start) and here.
                let from = before.map_or(i64::MIN, |o| o + 1);
                if from < offset {
                    let missed = part
                        .data
                        .range(from..offset)
                        .filter(|(_, r)| r.visible)
                        .count() as u64;
                    if missed > 0 {
                        report.counts.skipped += missed;
                        report.note(format!(
                            "reader {} life {}: started {topic}-{p} at @{offset}, skipping {missed} visible records after {before:?}",
                            l.id, l.life
                        ));
                    }
                }
            }
            read_so_far.insert(slot, before.map_or(offset, |b| b.max(offset)));
        }
    }
    for l in lives.iter().filter(|l| l.kind >= 3) {
        let who = format!("{} {} life {}", KINDS[l.kind], l.id, l.life);
        let mut last: HashMap<Key, i64> = HashMap::new();
        for line in &l.lines {
            if line == "rewind" {
                last.clear();
                continue;
            }
            let ["rd", topic, p, offset, digest] = fields(line)[..] else {
                continue;
            };
            let (Ok(p), Ok(offset)) = (p.parse::<u32>(), offset.parse::<i64>()) else {
                continue;
            };
            report.totals.read[l.kind - 3] += 1;
            let key = (topic.to_string(), p);
            let Some(part) = log.get(&key) else {
                report.counts.different_value += 1;
                report.note(format!("{who}: read unknown partition {topic}-{p}"));
                continue;
            };
            match part.data.get(&offset) {
                None => {
                    report.counts.different_value += 1;
                    report.note(format!("{who}: read {topic}-{p}@{offset}, no record there"));
                }
                Some(r) if r.digest != digest => {
                    report.counts.different_value += 1;
                    report.note(format!(
                        "{who}: read {topic}-{p}@{offset} with other bytes than the log's"
                    ));
                }
                Some(r) if r.aborted || !r.visible => {
                    report.counts.aborted_seen += 1;
                    report.note(format!(
                        "{who}: read {topic}-{p}@{offset} of an aborted transaction"
                    ));
                }
                Some(_) => {}
            }
            if let Some(prev) = last.insert(key, offset) {
                if offset <= prev {
                    report.counts.out_of_order += 1;
                    report.note(format!("{who}: read {topic}-{p}@{offset} after @{prev}"));
                } else if l.kind == 4 {
                    let missed = part
                        .data
                        .range(prev + 1..offset)
                        .filter(|(_, r)| r.visible)
                        .count() as u64;
                    if missed > 0 {
                        report.counts.skipped += missed;
                        report.note(format!(
                            "{who}: skipped {missed} visible records of {topic}-{p} between @{prev} and @{offset}"
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oncelog::{Producer, ProducerConfig, ProducerRecord, Record, StoreOptions, TopicConfig};

    fn life(kind: usize, lines: &[String]) -> Life {
        Life {
            kind,
            id: 0,
            life: 0,
            lines: lines.to_vec(),
            killed: true,
            stderr: String::new(),
        }
    }

    fn rd(topic: &str, offset: i64, key: &[u8], value: &[u8]) -> String {
        let digest = payload::digest(Some(key), Some(value));
        format!("rd {topic} 0 {offset} {digest}")
    }

    /// A fresh store with the torture run's topics.
    fn store_with_topics() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        for (topic, partitions) in TOPICS {
            store
                .create_topic(topic, partitions, TopicConfig::default())
                .unwrap();
        }
        (dir, store)
    }

    /// The checker is not vacuous: each kind of anomaly planted in a small log and
    /// its histories is counted.
    #[test]
    fn planted_anomalies_are_counted() {
        let (_dir, store) = store_with_topics();
        let plain = writer_id(0, 0, 0);
        let (k0, v0) = (payload::key(plain, 0), payload::value(plain, 0, 40));
        let (k1, v1) = (payload::key(plain, 1), payload::value(plain, 1, 40));
        let p = store.partition("plain", 0).unwrap();
        p.append(&[Record::keyed(&k0, &v0), Record::keyed(&k1, &v1)])
            .unwrap();
        // Then seqs 3 and 2: out of send order.
        let (k3, v3) = (payload::key(plain, 3), payload::value(plain, 3, 40));
        let (k2, v2) = (payload::key(plain, 2), payload::value(plain, 2, 40));
        p.append(&[Record::keyed(&k3, &v3), Record::keyed(&k2, &v2)])
            .unwrap();
        // A duplicate of an idempotent producer's record.
        let idem = writer_id(1, 0, 0);
        let (ki, vi) = (payload::key(idem, 0), payload::value(idem, 0, 40));
        let i = store.partition("idem", 0).unwrap();
        i.append(&[Record::keyed(&ki, &vi)]).unwrap();
        i.append(&[Record::keyed(&ki, &vi)]).unwrap();
        // An aborted transaction in tx-0 at offset 0 (marker at 1), then a committed
        // record at 2.
        let txn = writer_id(2, 0, 0);
        let (kt, vt) = (payload::key(txn, 0), payload::value(txn, 0, 40));
        let producer = Producer::new(
            &store,
            ProducerConfig::from_pairs([("transactional.id", "tx-0")]).unwrap(),
        )
        .unwrap();
        producer.init_transactions().unwrap();
        producer.begin_transaction().unwrap();
        producer
            .send(ProducerRecord::new("tx", &vt).key(&kt).partition(0))
            .unwrap();
        producer.abort_transaction().unwrap();
        let (kc, vc) = (payload::key(txn, 1), payload::value(txn, 1, 40));
        producer.begin_transaction().unwrap();
        producer
            .send(ProducerRecord::new("tx", &vc).key(&kc).partition(0))
            .unwrap();
        producer.commit_transaction().unwrap();
        // The exactly-once output transformed the aborted record, not the committed one.
        store
            .partition("eos-out", 0)
            .unwrap()
            .append(&[Record::value(b"0:0")])
            .unwrap();

        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let clean = check(
            &store,
            &[
                // An exactly-once member took part: its output is checked.
                life(3, &[]),
                life(0, &s(&["ack 0 0 0", "ack 0 1 1"])),
                life(
                    2,
                    &s(&[
                        "begin 0 0",
                        "ack 0 0 0",
                        "aborted 0",
                        "begin 1 1",
                        "ack 0 1 2",
                        "committed 1",
                    ]),
                ),
            ],
        );
        // Only the planted log anomalies: the idempotent duplicate, the missing and
        // the aborted output of the exactly-once members.
        assert_eq!(clean.counts.duplicates, 1, "{clean}");
        assert_eq!(clean.counts.lost, 1, "{clean}");
        assert_eq!(clean.counts.aborted_seen, 1, "{clean}");
        assert_eq!(clean.counts.different_value, 0, "{clean}");

        let mut stray = life(4, &[]);
        stray.killed = false;
        let bad = check(
            &store,
            &[
                life(3, &[]),
                // Acknowledged at another record's offset, and past the end (lost, with
                // the exactly-once output's missing input).
                life(0, &s(&["ack 0 1 0", "ack 0 2 7"])),
                // Read out of order, with another value, an aborted record, and a
                // skip over a visible record.
                life(
                    4,
                    &[
                        rd("plain", 1, &k1, &v1),
                        rd("plain", 0, &k0, &v0),
                        rd("plain", 1, &k0, &v0),
                        rd("tx", 0, &kt, &vt),
                    ],
                ),
                life(4, &[rd("idem", 0, &ki, &vi), rd("idem", 2, &ki, &vi)]),
                // Another reader whose first life starts past a visible record.
                Life {
                    id: 1,
                    ..life(4, &[rd("idem", 1, &ki, &vi)])
                },
                stray,
            ],
        );
        let c = &bad.counts;
        assert_eq!(c.lost, 2, "{bad}");
        assert_eq!(c.different_value, 3, "{bad}");
        assert_eq!(c.out_of_order, 1, "{bad}");
        assert_eq!(c.aborted_seen, 2, "{bad}");
        // Within a life (idem-0@1), at a first life's start (plain-0@0 by reader 0,
        // idem-0@0 by reader 1).
        assert_eq!(c.skipped, 3, "{bad}");
        assert_eq!(c.unexpected_exits, 1, "{bad}");
        assert_eq!(c.reordered, 1, "{bad}");
    }

    /// After a power loss only what was acknowledged as synced must be there: a
    /// missing record of an `acks=written` life or of an uncommitted transaction is
    /// no loss, one of an `acks=synced` life or of a committed transaction is; a
    /// transaction with a visible and a missing record is torn either way.
    #[test]
    fn a_power_loss_is_held_to_what_was_synced() {
        let (_dir, store) = store_with_topics();
        let plain = writer_id(0, 0, 0);
        let (k0, v0) = (payload::key(plain, 0), payload::value(plain, 0, 40));
        let p = store.partition("plain", 0).unwrap();
        p.append(&[Record::keyed(&k0, &v0)]).unwrap();
        // Two committed transactions in tx-0: seq 0 at @0 and seq 2 at @2.
        let txn = writer_id(2, 0, 0);
        let producer = Producer::new(
            &store,
            ProducerConfig::from_pairs([("transactional.id", "tx-0")]).unwrap(),
        )
        .unwrap();
        producer.init_transactions().unwrap();
        for seq in [0, 2] {
            let (k, v) = (payload::key(txn, seq), payload::value(txn, seq, 40));
            producer.begin_transaction().unwrap();
            producer
                .send(ProducerRecord::new("tx", &v).key(&k).partition(0))
                .unwrap();
            producer.commit_transaction().unwrap();
        }
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let lives = [
            // Synced: seq 1 at @5 is lost.
            life(0, &s(&["acks synced", "ack 0 0 0", "ack 0 1 5"])),
            // Written: seq 0 at @9 may be gone.
            Life {
                id: 1,
                ..life(0, &s(&["acks written", "ack 0 0 9"]))
            },
            life(
                2,
                &s(&[
                    "acks synced",
                    // Committed, seq 1 missing from tx-1: lost, and torn.
                    "begin 0 0",
                    "ack 0 0 0",
                    "ack 1 1 0",
                    "committing 0",
                    "committed 0",
                    // Its commit never returned, seq 3 missing: torn, not lost.
                    "begin 1 2",
                    "ack 0 2 2",
                    "ack 1 3 7",
                    "committing 1",
                ]),
            ),
        ];
        let after_power_loss = check_for(&store, &lives, Promise::PowerLoss);
        let c = &after_power_loss.counts;
        assert_eq!(c.lost, 2, "{after_power_loss}");
        assert_eq!(c.torn_transactions, 2, "{after_power_loss}");
        assert_eq!(c.different_value, 0, "{after_power_loss}");
        let after_kill = check(&store, &lives);
        assert_eq!(after_kill.counts.lost, 4, "{after_kill}");
        assert_eq!(after_kill.counts.torn_transactions, 2, "{after_kill}");
    }
}
