//! `dump`: the batches of a segment file as kafka-dump-log prints them (and the
//! entries of its `.index`, `.timeindex`, `.txnindex` or `.snapshot`), read
//! straight from the file: no store is opened, nothing is changed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use oncelog::record::{Batch, BatchHeader, ControlRecordType};

use crate::error::CliError;
use crate::output::{bytes_bar, printable, Out};

/// Arguments of `dump`.
#[derive(Args)]
pub struct Dump {
    /// A segment's `.log` file (or its `.index`, `.timeindex`, `.txnindex`, or a
    /// `.snapshot`).
    pub segment: PathBuf,
    /// Print every record of each batch too.
    #[arg(long)]
    pub records: bool,
}

/// Prints the segment's batches.
pub fn run(args: Dump) -> Result<ExitCode, CliError> {
    let path = &args.segment;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "log" | "index" | "timeindex" | "txnindex" | "snapshot") {
        return Err(CliError::usage(format!(
            "{}: dump reads .log, .index, .timeindex, .txnindex and .snapshot files",
            path.display()
        )));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::failed(format!("read {}: {e}", path.display())))?;
    let mut out = Out::new();
    out.line(&format!("Dumping {}", path.display()))?;
    let problems = match ext {
        "log" => dump_log(&mut out, path, &bytes, args.records)?,
        "index" => dump_index(&mut out, path, &bytes)?,
        "timeindex" => dump_time_index(&mut out, path, &bytes)?,
        "txnindex" => dump_txn_index(&mut out, &bytes)?,
        _ => dump_snapshot(&mut out, &bytes)?,
    };
    out.flush()?;
    match problems.first() {
        None => Ok(ExitCode::SUCCESS),
        Some(first) => Err(CliError::failed(format!(
            "{}: {} damaged (first: {first})",
            path.display(),
            if problems.len() == 1 {
                "1 thing".to_string()
            } else {
                format!("{} things", problems.len())
            }
        ))),
    }
}

/// The base offset in a segment file's name (20 decimal digits).
pub fn base_offset_of(path: &Path) -> Option<i64> {
    let stem = path.file_stem()?.to_str()?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

fn dump_log(
    out: &mut Out,
    path: &Path,
    bytes: &[u8],
    records: bool,
) -> Result<Vec<String>, CliError> {
    if let Some(base) = base_offset_of(path) {
        out.line(&format!("Log starting offset: {base}"))?;
    }
    let bar = bytes_bar(bytes.len() as u64, "dump", true);
    let mut problems = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.iter().all(|b| *b == 0) {
            out.line(&format!(
                "{} bytes of zeros from position {pos}: space reserved ahead of the writer",
                rest.len()
            ))?;
            break;
        }
        let batch = match Batch::parse(rest) {
            Ok(b) => b,
            Err(e) => {
                let p = format!("position {pos}: not a batch: {e}");
                out.line(&p)?;
                problems.push(p);
                break;
            }
        };
        let h = batch.header();
        let crc_ok = batch.verify_crc().is_ok();
        out.line(&batch_line(h, pos, crc_ok))?;
        if !crc_ok {
            problems.push(format!("position {pos}: CRC mismatch"));
        }
        if records {
            let mut text = String::new();
            if let Err(e) = record_lines(&mut text, &batch) {
                let p = format!("position {pos}: {e}");
                let _ = writeln!(text, "{p}");
                problems.push(p);
            }
            out.write(text.as_bytes())?;
        }
        pos += h.total_len();
        bar.set_position(pos as u64);
        if out.closed() {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(problems)
}

/// Kafka's `DumpLogSegments` line for a batch.
fn batch_line(h: &BatchHeader, position: usize, crc_ok: bool) -> String {
    let last_sequence = if h.base_sequence < 0 {
        -1
    } else {
        // Sequences wrap at i32::MAX, as Kafka's.
        ((i64::from(h.base_sequence) + i64::from(h.last_offset_delta)) % (i64::from(i32::MAX) + 1))
            as i32
    };
    format!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {last_sequence} \
         producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} \
         isControl: {} position: {position} {}: {} size: {} magic: {} compresscodec: {} \
         crc: {} isvalid: {crc_ok}",
        h.base_offset,
        h.last_offset(),
        h.record_count,
        h.base_sequence,
        h.producer_id,
        h.producer_epoch,
        h.partition_leader_epoch,
        h.is_transactional(),
        h.is_control(),
        timestamp_type(h),
        h.max_timestamp,
        h.total_len(),
        h.magic,
        codec(h.compression()),
        h.crc,
    )
}

fn timestamp_type(h: &BatchHeader) -> &'static str {
    if h.log_append_time() {
        "LogAppendTime"
    } else {
        "CreateTime"
    }
}

fn codec(c: u8) -> &'static str {
    match c {
        0 => "none",
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => "unknown",
    }
}

/// One `| offset: ...` line per record of `batch`.
fn record_lines(text: &mut String, batch: &Batch<'_>) -> Result<(), String> {
    let h = batch.header();
    if h.is_control() {
        let (kind, epoch) = batch.control().map_err(|e| e.to_string())?;
        let kind = match kind {
            ControlRecordType::Abort => "ABORT",
            ControlRecordType::Commit => "COMMIT",
        };
        let _ = writeln!(
            text,
            "| offset: {} {}: {} endTxnMarker: {kind} coordinatorEpoch: {epoch}",
            h.base_offset,
            timestamp_type(h),
            h.max_timestamp
        );
        return Ok(());
    }
    for record in batch.records() {
        let r = record.map_err(|e| e.to_string())?;
        let sequence = if h.base_sequence < 0 {
            -1
        } else {
            ((i64::from(h.base_sequence) + (r.offset - h.base_offset)) % (i64::from(i32::MAX) + 1))
                as i32
        };
        let size = |b: Option<&[u8]>| b.map_or(-1, |b| b.len() as i64);
        let show = |b: Option<&[u8]>| b.map_or("null".to_string(), printable);
        let headers: Vec<String> = r
            .headers()
            .map(|hd| format!("{}={}", printable(hd.key.as_bytes()), show(hd.value)))
            .collect();
        let _ = writeln!(
            text,
            "| offset: {} {}: {} keySize: {} valueSize: {} sequence: {sequence} headers: [{}] key: {} payload: {}",
            r.offset,
            timestamp_type(h),
            r.timestamp,
            size(r.key),
            size(r.value),
            headers.join(", "),
            show(r.key),
            show(r.value),
        );
    }
    Ok(())
}

/// Entries of a preallocated index end at the first all-zero entry (no entry is
/// ever all zeros: the first batch of a segment is never indexed, and a time
/// entry of timestamp 0 would need records from 1970).
fn entries(bytes: &[u8], len: usize) -> (Vec<&[u8]>, usize) {
    let all: Vec<&[u8]> = bytes.chunks_exact(len).collect();
    let used = all
        .iter()
        .rposition(|e| e.iter().any(|b| *b != 0))
        .map_or(0, |i| i + 1);
    (all[..used].to_vec(), all.len() - used)
}

fn be_i32(b: &[u8]) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    i32::from_be_bytes(a)
}

fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

fn base_or_fail(path: &Path) -> Result<i64, CliError> {
    base_offset_of(path).ok_or_else(|| {
        CliError::usage(format!(
            "{}: an index file is named by its segment's base offset (20 digits); this name tells none",
            path.display()
        ))
    })
}

fn dump_index(out: &mut Out, path: &Path, bytes: &[u8]) -> Result<Vec<String>, CliError> {
    let base = base_or_fail(path)?;
    let (valid, zeros) = entries(bytes, 8);
    for e in valid {
        let rel = be_i32(e);
        let position = be_i32(&e[4..]) as u32;
        out.line(&format!(
            "offset: {} position: {position}",
            base + i64::from(rel)
        ))?;
    }
    trailer(out, bytes.len(), 8, zeros)
}

fn dump_time_index(out: &mut Out, path: &Path, bytes: &[u8]) -> Result<Vec<String>, CliError> {
    let base = base_or_fail(path)?;
    let (valid, zeros) = entries(bytes, 12);
    for e in valid {
        out.line(&format!(
            "timestamp: {} offset: {}",
            be_i64(e),
            base + i64::from(be_i32(&e[8..]))
        ))?;
    }
    trailer(out, bytes.len(), 12, zeros)
}

fn trailer(out: &mut Out, len: usize, entry: usize, zeros: usize) -> Result<Vec<String>, CliError> {
    if zeros > 0 {
        out.line(&format!(
            "{zeros} entries of zeros: space reserved ahead of the writer"
        ))?;
    }
    let mut problems = Vec::new();
    if len % entry != 0 {
        let p = format!(
            "{} trailing bytes, less than an entry of {entry}",
            len % entry
        );
        out.line(&p)?;
        problems.push(p);
    }
    Ok(problems)
}

fn dump_txn_index(out: &mut Out, bytes: &[u8]) -> Result<Vec<String>, CliError> {
    const LEN: usize = 34;
    for e in bytes.chunks_exact(LEN) {
        out.line(&format!(
            "version: {} producerId: {} firstOffset: {} lastOffset: {} lastStableOffset: {}",
            i16::from_be_bytes([e[0], e[1]]),
            be_i64(&e[2..]),
            be_i64(&e[10..]),
            be_i64(&e[18..]),
            be_i64(&e[26..])
        ))?;
    }
    trailer(out, bytes.len(), LEN, 0)
}

/// A producer snapshot (FORMAT.md, `.snapshot`).
fn dump_snapshot(out: &mut Out, bytes: &[u8]) -> Result<Vec<String>, CliError> {
    match parse_snapshot(bytes) {
        Ok(entries) => {
            out.line(&format!("producers: {}", entries.len()))?;
            for e in entries {
                let batches: Vec<String> = e
                    .batches
                    .iter()
                    .map(|(first, last, base, last_offset)| {
                        format!("sequences {first}..{last} at offsets {base}..{last_offset}")
                    })
                    .collect();
                out.line(&format!(
                    "producerId: {} producerEpoch: {} openTransactionFrom: {} batches: [{}]",
                    e.producer_id,
                    e.epoch,
                    e.txn_first_offset,
                    batches.join(", ")
                ))?;
            }
            Ok(Vec::new())
        }
        Err(e) => {
            out.line(&e)?;
            Ok(vec![e])
        }
    }
}

/// One producer of a `.snapshot`.
pub struct SnapshotEntry {
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub epoch: i16,
    /// First offset of its open transaction, or -1.
    pub txn_first_offset: i64,
    /// Its last batches: first and last sequence, base and last offset.
    pub batches: Vec<(i32, i32, i64, i64)>,
}

/// The producers of a snapshot, or what is wrong with it.
pub fn parse_snapshot(bytes: &[u8]) -> Result<Vec<SnapshotEntry>, String> {
    let Some(body_len) = bytes.len().checked_sub(4) else {
        return Err(format!("{} bytes: too short for a snapshot", bytes.len()));
    };
    let (body, crc) = bytes.split_at(body_len);
    let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32c(body);
    if stored != computed {
        return Err(format!(
            "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let Some(mut r) = body.strip_prefix(b"OLPSNAP2") else {
        return Err("not a producer snapshot (magic is not OLPSNAP2)".into());
    };
    let mut take = |n: usize| -> Result<&[u8], String> {
        if r.len() < n {
            return Err("snapshot ends inside an entry".to_string());
        }
        let (head, rest) = r.split_at(n);
        r = rest;
        Ok(head)
    };
    let count = be_i32(take(4)?) as u32;
    let mut entries = Vec::new();
    for _ in 0..count {
        let producer_id = be_i64(take(8)?);
        let e = take(2)?;
        let epoch = i16::from_be_bytes([e[0], e[1]]);
        let txn_first_offset = be_i64(take(8)?);
        let n = take(1)?[0];
        if n > 5 {
            return Err(format!("producer {producer_id} has {n} batches, at most 5"));
        }
        let mut batches = Vec::new();
        for _ in 0..n {
            let first = be_i32(take(4)?);
            let last = be_i32(take(4)?);
            let base = be_i64(take(8)?);
            let last_offset = be_i64(take(8)?);
            batches.push((first, last, base, last_offset));
        }
        entries.push(SnapshotEntry {
            producer_id,
            epoch,
            txn_first_offset,
            batches,
        });
    }
    if !r.is_empty() {
        return Err(format!("{} bytes left after the last entry", r.len()));
    }
    Ok(entries)
}

/// CRC-32C (Castagnoli), bitwise: snapshots are small.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn base_offsets_come_from_twenty_digit_names() {
        assert_eq!(
            base_offset_of(Path::new("/x/00000000000000004242.index")),
            Some(4242)
        );
        assert_eq!(base_offset_of(Path::new("/x/42.index")), None);
    }
}
