//! The roles of the `oncelog-testkit` binary, one per subcommand. Each role talks to
//! its parent through stdout, one line per event, flushed at once (a line on the
//! pipe is an acknowledgement the parent may hold the log to):
//!
//! | subcommand | lines |
//! | --- | --- |
//! | `append` | `ready`, (waits for `--go-file`), then `ack <base> <last> <first seq>` per batch (` dup` appended when an idempotent retry was recognised; idempotent with `--producer-id P [--epoch E]`), `done` |
//! | `read` | `ready`, `rec <offset> <writer> <seq> <digest>` per record, `stop <offset>`, `done <count> <sequence digest>`; or `timeout <next>` (exit 2), `corrupt <offset> <why>` (exit 3) |
//! | `wait` | `waiting`, then `woke <us>` or `timeout <us>` |
//! | `fill` | `ready`, `ack ...` per batch, then `err <kind>` (exit 0) |
//! | `probe` | `probe <base> <open us> <append us> <read us> <repairs>` |
//! | `fork-hold` | `forked <child pid>`, then `closed` |
//! | `consume` | `poll <count> <first offset>` per non-empty poll, `processed <offset>` per record, `done` once the position reaches `--until` (after `close`) |
//! | `transform` | `ready`, then `committed <next input offset>` after each transaction, `done` once all input is transformed |
//! | `txn-hold` | `sent` after sending `--count` records in a transaction (over every partition with `--spread`); with `--commit`, `committing` and then (unless killed) `committed`; without, it waits to be killed |
//! | `group-transform` | `ready`, then `committed <count>` after each transaction (`refused <kind>` for one whose offsets were refused; `stalling`/`resumed` around a stall); runs until killed |
//! | `produce-limited` | `ready`, then `ok <seq> <offset>` or `err <seq> <kind>` per record (delivery reports), `done` |
//! | `roll-at-checkpoint` | `aborted <offset>` (an aborted transaction's record), `checkpoint <offset>` once the recovery point reached the end, `rolled <offset>` after a record that rolls the segment there, `done` after closing the store (topic created with 4 KiB segments) |
//! | `torture` | see [`crate::torture`]: a history line per send, acknowledgement, poll and transaction outcome |
//! | `follow` | as `read`, plus `batch <base> <last> <digest of its bytes>` before each batch's records, `jump <from> <to>` after each `offset_out_of_range`; ends with `done <count> <jumps> <sequence digest>` |
//!
//! Every role takes `--store DIR --topic T [--partition P]` and optionally
//! `--reserve-bytes B` and `--durability none|written|synced` for the store it
//! opens, `--nofile-limit N` (its `RLIMIT_NOFILE`, set before opening) and
//! `--drop-uid U` (run as user and group `U`, set before opening). The roles of the
//! hostile-use tests are in [`crate::hostile`]. A failure is one `err <kind> <message>`
//! line and exit status 1.

use std::io::Write;
use std::time::{Duration, Instant};

use oncelog::record::{BatchOptions, ProducerInfo};
use oncelog::{
    AppendOptions, Consumer, ConsumerConfig, ErrorKind, Partition, Producer, ProducerConfig,
    ProducerRecord, Reader, Record, Store, StoreOptions, TopicPartition,
};

use crate::args::Args;
use crate::payload::{self, Kind};
use crate::rng::XorShift;

/// Exit status of a follower that ran out of time.
pub const EXIT_TIMEOUT: i32 = 2;
/// Exit status of a follower that read a bad record.
pub const EXIT_CORRUPT: i32 = 3;

/// Why a role stopped early: the line to print and the exit status.
pub struct Failure {
    /// The line (without newline).
    pub line: String,
    /// The exit status.
    pub code: i32,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure {
            line: format!("err usage {message}"),
            code: 1,
        }
    }
}

impl From<oncelog::Error> for Failure {
    fn from(e: oncelog::Error) -> Failure {
        Failure {
            line: format!("err {} {}", e.kind(), e.message()),
            code: 1,
        }
    }
}

type RoleResult = Result<(), Failure>;

/// Writes one line to stdout and flushes it; exits quietly if the parent is gone.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(1);
    }
}

/// Builds the failure of a reading role that found something wrong at `offset`.
fn corrupt(offset: i64, why: String) -> Failure {
    Failure {
        line: format!("corrupt {offset} {why}"),
        code: EXIT_CORRUPT,
    }
}

/// What a reading role has checked so far: the offset it expects next, how many
/// records it saw, and a fold of their digests.
struct Tally {
    next: i64,
    count: u64,
    fold: u64,
}

impl Tally {
    fn new(from: i64) -> Tally {
        Tally {
            next: from,
            count: 0,
            fold: payload::FOLD_START,
        }
    }

    /// Checks one record (dense offset, self-checked payload) and reports it; at
    /// the stop record prints `stop` and the `done` line and returns `Ok(true)`.
    fn check(
        &mut self,
        record: oncelog::Result<oncelog::RecordView<'_>>,
        done: impl FnOnce(&Tally) -> String,
    ) -> Result<bool, Failure> {
        let next = self.next;
        let record = record.map_err(|e| corrupt(next, e.message().to_string()))?;
        if record.offset != next {
            return Err(corrupt(next, format!("got offset {}", record.offset)));
        }
        let digest = payload::digest(record.key, record.value);
        match payload::classify(record.key, record.value) {
            Ok(Kind::Data { writer, seq }) => say(&format!("rec {next} {writer} {seq} {digest}")),
            Ok(Kind::Stop) => {
                say(&format!("stop {next}"));
                say(&done(self));
                return Ok(true);
            }
            Err(why) => return Err(corrupt(next, why)),
        }
        self.fold = payload::fold(self.fold, next, &digest);
        self.count += 1;
        self.next += 1;
        Ok(false)
    }
}

/// Runs the role named `name`.
pub fn run(name: &str, args: &Args) -> RoleResult {
    match name {
        "append" => append(args),
        "read" => read(args),
        "wait" => wait(args),
        "fill" => fill(args),
        "probe" => probe(args),
        "fork-hold" => fork_hold(args),
        "follow" => follow(args),
        "consume" => consume(args),
        "transform" => transform(args),
        "txn-hold" => txn_hold(args),
        "group-transform" => group_transform(args),
        "produce-limited" => produce_limited(args),
        "torture" => crate::torture::run(args),
        "roll-at-checkpoint" => roll_at_checkpoint(args),
        _ => crate::hostile::run(name, args)
            .unwrap_or_else(|| Err(format!("unknown subcommand {name:?}").into())),
    }
}

/// Opens the store and the partition the common options name.
pub fn open(args: &Args) -> Result<Partition, Failure> {
    if let Some(uid) = args.opt::<u32>("drop-uid")? {
        // SAFETY: plain libc calls; the group first, while still privileged.
        if unsafe { libc::setgid(uid) } != 0 || unsafe { libc::setuid(uid) } != 0 {
            return Err(format!("setuid {uid}: {}", std::io::Error::last_os_error()).into());
        }
    }
    if let Some(n) = args.opt::<u64>("nofile-limit")? {
        limit(libc::RLIMIT_NOFILE, n).map_err(|e| format!("setrlimit NOFILE: {e}"))?;
    }
    let mut options = StoreOptions::default();
    if let Some(bytes) = args.opt("reserve-bytes")? {
        options.reserve_bytes = bytes;
    }
    if let Some(durability) = args.opt::<String>("durability")? {
        options.durability = durability.parse()?;
    }
    let store = Store::open(args.str("store")?, options)?;
    Ok(store.partition(args.str("topic")?, args.get_or("partition", 0)?)?)
}

/// Value sizes: `--value-size S` bytes plus `0..=spread` more, varied per record so
/// batches do not all line up (`--value-spread`, default `S / 2`).
#[derive(Clone, Copy)]
struct Sizes {
    size: usize,
    spread: u64,
}

impl Sizes {
    fn from_args(args: &Args, default: usize) -> Result<Sizes, Failure> {
        let size: usize = args.get_or("value-size", default)?;
        Ok(Sizes {
            size,
            spread: args.get_or("value-spread", size as u64 / 2)?,
        })
    }
}

/// Records `first..first + n` of `writer`.
fn make_batch(writer: u32, first: u64, n: u64, sizes: Sizes) -> Vec<(Vec<u8>, Vec<u8>)> {
    (first..first + n)
        .map(|seq| {
            let extra = XorShift::new(seq ^ u64::from(writer)).range(0, sizes.spread);
            (
                payload::key(writer, seq),
                payload::value(writer, seq, sizes.size + extra as usize),
            )
        })
        .collect()
}

fn as_records(batch: &[(Vec<u8>, Vec<u8>)]) -> Vec<Record<'_>> {
    batch.iter().map(|(k, v)| Record::keyed(k, v)).collect()
}

/// `append --count N --id W [--batch K] [--value-size S] [--value-spread X]
/// [--first-seq Q] [--go-file F]`: appends records `Q..Q+N` of writer `W` in batches of `K`,
/// acknowledging each; with `--go-file`, starts only once `F` exists (a start line
/// for several appenders).
fn append(args: &Args) -> RoleResult {
    let part = open(args)?;
    let writer: u32 = args.get("id")?;
    let count: u64 = args.get("count")?;
    let batch: u64 = args.get_or("batch", 1u64)?.max(1);
    let sizes = Sizes::from_args(args, 64)?;
    let first: u64 = args.get_or("first-seq", 0)?;
    let go: Option<String> = args.opt("go-file")?;
    // Idempotent when given a producer id: the batch's base sequence is the
    // sequence number of its first record.
    let producer: Option<i64> = args.opt("producer-id")?;
    let epoch: i16 = args.get_or("epoch", 0)?;
    say("ready");
    if let Some(go) = go {
        while !std::path::Path::new(&go).exists() {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    let mut seq = first;
    while seq < first + count {
        let n = batch.min(first + count - seq);
        let records = make_batch(writer, seq, n, sizes);
        let info = match producer {
            None => part.append(&as_records(&records))?,
            Some(producer_id) => {
                let options = AppendOptions {
                    batch: BatchOptions {
                        producer: ProducerInfo {
                            producer_id,
                            producer_epoch: epoch,
                            base_sequence: i32::try_from(seq)
                                .map_err(|_| "sequence too large".to_string())?,
                        },
                        ..BatchOptions::default()
                    },
                    durability: None,
                };
                part.append_with(&as_records(&records), &options)?
            }
        };
        if info.last_offset - info.base_offset + 1 != n as i64 {
            return Err(Failure {
                line: format!(
                    "err offsets batch of {n} got offsets {}..={}",
                    info.base_offset, info.last_offset
                ),
                code: 1,
            });
        }
        let dup = if info.duplicate { " dup" } else { "" };
        say(&format!(
            "ack {} {} {seq}{dup}",
            info.base_offset, info.last_offset
        ));
        seq += n;
    }
    say("done");
    Ok(())
}

/// `read [--from O] [--until N] [--timeout-ms T]`: follows the partition from `O`
/// with `Reader::poll` until offset `N` (or the stop sentinel), checking every
/// batch's CRC and every record's self-check.
fn read(args: &Args) -> RoleResult {
    let part = open(args)?;
    let from: i64 = args.get_or("from", 0)?;
    let until: i64 = args.get_or("until", i64::MAX)?;
    let deadline = Instant::now() + Duration::from_millis(args.get_or("timeout-ms", 30_000)?);
    let mut reader = part.reader(from)?.verify_crc(true);
    say("ready");
    let mut tally = Tally::new(from);
    while tally.next < until {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure {
                line: format!("timeout {}", tally.next),
                code: EXIT_TIMEOUT,
            });
        }
        let batch = match reader.poll(left.min(Duration::from_millis(200)), Duration::ZERO) {
            Ok(Some(batch)) => batch,
            Ok(None) => continue,
            Err(e) => {
                return Err(corrupt(
                    tally.next,
                    format!("{}: {}", e.kind(), e.message()),
                ))
            }
        };
        for record in batch.records() {
            if tally.check(record, |t| format!("done {} {:016x}", t.count, t.fold))? {
                return Ok(());
            }
        }
    }
    say(&format!("done {} {:016x}", tally.count, tally.fold));
    Ok(())
}

/// `follow [--from O] [--timeout-ms T] [--pause-us U]`: follows the partition like
/// `read` (every batch's CRC and every record's self-check verified, offsets checked
/// to be dense), sleeping `U` µs after each batch, until the stop sentinel; each
/// batch is reported with a digest of its stored bytes (header included). Retention
/// may delete what it has not read yet: an error whose kind is exactly
/// `offset_out_of_range` (from creating the reader, polling, or seeking) makes it
/// report `jump <next> <start>` and seek to `Partition::start_offset()`, retrying
/// while the start keeps moving (`--from` past the end is out of range too, and
/// jumps back). Any other error is `corrupt` (exit 3).
fn follow(args: &Args) -> RoleResult {
    let part = open(args)?;
    let from: i64 = args.get_or("from", 0)?;
    let deadline = Instant::now() + Duration::from_millis(args.get_or("timeout-ms", 30_000)?);
    let pause = Duration::from_micros(args.get_or("pause-us", 0)?);
    let out_of_range = |e: &oncelog::Error| e.kind() == ErrorKind::OffsetOutOfRange;
    let mut reader: Option<Reader> = match part.reader(from) {
        Ok(r) => Some(r.verify_crc(true)),
        Err(e) if out_of_range(&e) => None,
        Err(e) => return Err(corrupt(from, format!("{}: {}", e.kind(), e.message()))),
    };
    say("ready");
    let (mut tally, mut jumps) = (Tally::new(from), 0u64);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure {
                line: format!("timeout {}", tally.next),
                code: EXIT_TIMEOUT,
            });
        }
        let r = match reader.as_mut() {
            Some(r) => r,
            None => {
                // The offset we need is gone: start over at the log start.
                let start = part.start_offset();
                match part.reader(start) {
                    Ok(r) => {
                        say(&format!("jump {} {start}", tally.next));
                        jumps += 1;
                        tally.next = start;
                        reader.insert(r.verify_crc(true))
                    }
                    Err(e) if out_of_range(&e) => continue,
                    Err(e) => {
                        return Err(corrupt(
                            tally.next,
                            format!("{}: {}", e.kind(), e.message()),
                        ))
                    }
                }
            }
        };
        let batch = match r.poll(left.min(Duration::from_millis(200)), Duration::ZERO) {
            Ok(Some(batch)) => batch,
            Ok(None) => continue,
            Err(e) if out_of_range(&e) => {
                // Seek this reader to the log start, again while the start moves.
                let mut seeks = 0;
                loop {
                    let start = part.start_offset();
                    match r.seek(start) {
                        Ok(()) => {
                            say(&format!("jump {} {start}", tally.next));
                            jumps += 1;
                            tally.next = start;
                            break;
                        }
                        Err(e) if out_of_range(&e) && seeks < 10_000 => seeks += 1,
                        Err(e) => {
                            return Err(corrupt(
                                tally.next,
                                format!("seek to {start}: {}: {}", e.kind(), e.message()),
                            ))
                        }
                    }
                }
                continue;
            }
            Err(e) => {
                return Err(corrupt(
                    tally.next,
                    format!("{}: {}", e.kind(), e.message()),
                ))
            }
        };
        let header = batch.header();
        say(&format!(
            "batch {} {} {}",
            header.base_offset,
            header.last_offset(),
            payload::digest(None, Some(batch.batch().bytes()))
        ));
        for record in batch.records() {
            let done = |t: &Tally| format!("done {} {jumps} {:016x}", t.count, t.fold);
            if tally.check(record, done)? {
                return Ok(());
            }
        }
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
}

/// `wait --offset O --timeout-ms T`: blocks in `Partition::wait_for`.
fn wait(args: &Args) -> RoleResult {
    let part = open(args)?;
    let offset: i64 = args.get("offset")?;
    let timeout = Duration::from_millis(args.get("timeout-ms")?);
    say("waiting");
    let start = Instant::now();
    let arrived = part.wait_for(offset, timeout)?;
    let us = start.elapsed().as_micros();
    say(&format!(
        "{} {us}",
        if arrived { "woke" } else { "timeout" }
    ));
    Ok(())
}

/// `fill --fsize-limit BYTES --id W [--batch K] [--value-size S] [--value-spread X]
/// [--max-count N]`:
/// under `RLIMIT_FSIZE` with `SIGXFSZ` ignored, appends until an append fails, and
/// reports the error kind. Exits 0 after the failure it was started to hit.
fn fill(args: &Args) -> RoleResult {
    let bytes: u64 = args.get("fsize-limit")?;
    // SAFETY: plain libc call; a size limit then fails writes with EFBIG instead of
    // killing the process.
    if unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(format!("signal: {}", std::io::Error::last_os_error()).into());
    }
    limit(libc::RLIMIT_FSIZE, bytes).map_err(|e| format!("setrlimit FSIZE: {e}"))?;
    let part = open(args)?;
    let writer: u32 = args.get("id")?;
    let batch: u64 = args.get_or("batch", 1u64)?.max(1);
    let sizes = Sizes::from_args(args, 1000)?;
    let max: u64 = args.get_or("max-count", 1_000_000)?;
    say("ready");
    let mut seq = 0;
    while seq < max {
        let records = make_batch(writer, seq, batch, sizes);
        match part.append(&as_records(&records)) {
            Ok(info) => say(&format!(
                "ack {} {} {seq}",
                info.base_offset, info.last_offset
            )),
            Err(e) => {
                eprintln!("append failed: {e}");
                say(&format!("err {}", e.kind()));
                return Ok(());
            }
        }
        seq += batch;
    }
    say("done");
    Ok(())
}

#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

/// Sets both the soft and the hard limit of `resource` to `value`.
fn limit(resource: Resource, value: u64) -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: value as libc::rlim_t,
        rlim_max: value as libc::rlim_t,
    };
    // SAFETY: plain libc call with a valid rlimit.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `probe --id W --seq Q [--stop]`: opens the store, appends one record (or the stop
/// sentinel), reads it back, and reports how long each step took.
fn probe(args: &Args) -> RoleResult {
    let start = Instant::now();
    let part = open(args)?;
    let opened = start.elapsed();
    let (key, value) = if args.flag("stop") {
        (payload::STOP.to_vec(), payload::STOP.to_vec())
    } else {
        let writer: u32 = args.get("id")?;
        let seq: u64 = args.get("seq")?;
        (payload::key(writer, seq), payload::value(writer, seq, 48))
    };
    let info = part.append(&[Record::keyed(&key, &value)])?;
    let appended = start.elapsed();
    let mut reader = part.reader(info.base_offset)?.verify_crc(true);
    let batch = reader.next_batch()?.ok_or_else(|| {
        format!(
            "record at {} is not readable after its append",
            info.base_offset
        )
    })?;
    let record = batch
        .records()
        .next()
        .ok_or_else(|| "empty batch".to_string())?
        .map_err(Failure::from)?;
    if record.offset != info.base_offset
        || record.key != Some(&key[..])
        || record.value != Some(&value[..])
    {
        return Err(format!(
            "read back offset {} with other bytes than appended at {}",
            record.offset, info.base_offset
        )
        .into());
    }
    let read = start.elapsed();
    say(&format!(
        "probe {} {} {} {} {}",
        info.base_offset,
        opened.as_micros(),
        (appended - opened).as_micros(),
        (read - appended).as_micros(),
        part.metrics().repairs
    ));
    Ok(())
}

/// `fork-hold --hold-ms T`: opens the partition, `fork()`s a child that does nothing
/// but live for `T` ms (holding, as any forked child does, copies of every open
/// descriptor), then closes the store and exits. The child is not waited for.
fn fork_hold(args: &Args) -> RoleResult {
    let part = open(args)?;
    let hold_ms: u64 = args.get("hold-ms")?;
    // SAFETY: the child only calls async-signal-safe functions (nanosleep, _exit).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()).into());
    }
    if pid == 0 {
        let ts = libc::timespec {
            tv_sec: (hold_ms / 1000) as libc::time_t,
            tv_nsec: ((hold_ms % 1000) * 1_000_000) as libc::c_long,
        };
        // SAFETY: async-signal-safe calls only, in the forked child.
        unsafe {
            libc::nanosleep(&ts, std::ptr::null_mut());
            libc::_exit(0);
        }
    }
    say(&format!("forked {pid}"));
    let store = part.store().clone();
    drop(part);
    store.close()?;
    say("closed");
    Ok(())
}

/// `consume --group G --delivery D --until N [--max-poll R] [--process-us T]`: a
/// consumer of partition `--partition` in group `G` with the delivery preset `D`,
/// "processing" each record (a line on stdout, then a pause) until its position
/// reaches `N`; starts at the earliest offset when the group has none.
fn consume(args: &Args) -> RoleResult {
    let part = open(args)?;
    let group: String = args.get("group")?;
    let delivery: String = args.get("delivery")?;
    let until: i64 = args.get("until")?;
    let max_poll: String = args.get_or("max-poll", 50u32)?.to_string();
    let pause = Duration::from_micros(args.get_or("process-us", 0)?);
    let config = ConsumerConfig::from_pairs([
        ("group.id", group.as_str()),
        ("delivery", delivery.as_str()),
        ("auto.offset.reset", "earliest"),
        ("max.poll.records", max_poll.as_str()),
    ])?;
    let mut consumer = Consumer::new(part.store(), config)?;
    let tp = TopicPartition::new(part.topic(), part.id());
    consumer.assign(std::slice::from_ref(&tp))?;
    say("ready");
    while consumer.position(&tp)? < until {
        let records = consumer.poll(Duration::from_millis(200))?;
        if let Some(first) = records.first() {
            say(&format!("poll {} {}", records.len(), first.offset));
        }
        for r in &records {
            say(&format!("processed {}", r.offset));
            std::thread::sleep(pause);
        }
    }
    consumer.close()?;
    say("done");
    Ok(())
}

/// `transform --input T --output O --until N [--max-poll R]`: Kafka's exactly-once
/// consume-transform-produce loop. Reads `T`-0 as group `g` (read_committed), writes
/// `out <input offset>` records to `O` (keyed by the input offset) and the input
/// offsets in the same transaction, as transactional id `t`, until its position in
/// the input reaches `N`.
fn transform(args: &Args) -> RoleResult {
    let input = open(args)?;
    let store = input.store().clone();
    let output: String = args.get("output")?;
    let until: i64 = args.get("until")?;
    let max_poll: String = args.get_or("max-poll", 20u32)?.to_string();
    let producer = Producer::new(
        &store,
        ProducerConfig::from_pairs([("transactional.id", "t")])?,
    )?;
    producer.init_transactions()?;
    let config = ConsumerConfig::from_pairs([
        ("group.id", "g"),
        ("delivery", "exactly-once"),
        ("auto.offset.reset", "earliest"),
        ("max.poll.records", max_poll.as_str()),
    ])?;
    let mut consumer = Consumer::new(&store, config)?;
    let tp = TopicPartition::new(input.topic(), input.id());
    consumer.assign(std::slice::from_ref(&tp))?;
    say("ready");
    while consumer.position(&tp)? < until {
        let records = consumer.poll(Duration::from_millis(200))?;
        if records.is_empty() {
            continue;
        }
        producer.begin_transaction()?;
        for r in &records {
            let key = r.offset.to_string();
            let value = format!("out {}", r.offset);
            producer.send(ProducerRecord::new(&output, value.as_bytes()).key(key.as_bytes()))?;
        }
        let next = records.last().map_or(0, |r| r.offset + 1);
        producer.send_offsets_to_transaction(&[(tp.clone(), next)], "g")?;
        producer.commit_transaction()?;
        say(&format!("committed {next}"));
    }
    say("done");
    Ok(())
}

/// `txn-hold --count N [--spread] [--commit] [--go-file F] [--txn-timeout-ms X]`: as transactional id `holder`,
/// sends `N` records
/// to partition `--partition` of `--topic` in a transaction, (waits for `F`,) then either waits to be
/// killed with the transaction open, or commits (a test pauses it between the
/// decision and the markers with a failpoint, and kills it there).
fn txn_hold(args: &Args) -> RoleResult {
    let part = open(args)?;
    let count: u32 = args.get("count")?;
    let timeout: String = args.get_or("txn-timeout-ms", 60_000u64)?.to_string();
    let producer = Producer::new(
        part.store(),
        ProducerConfig::from_pairs([
            ("transactional.id", "holder"),
            ("transaction.timeout.ms", timeout.as_str()),
        ])?,
    )?;
    producer.init_transactions()?;
    producer.begin_transaction()?;
    // With --spread, record i goes to partition i mod the topic's partition count:
    // a transaction over several partitions, decided by PrepareCommit.
    let spread = if args.flag("spread") {
        part.store().topic(part.topic())?.partitions
    } else {
        1
    };
    for i in 0..count {
        let value = format!("held {i}");
        let partition = part.id() + i % spread;
        producer.send(ProducerRecord::new(part.topic(), value.as_bytes()).partition(partition))?;
    }
    say("sent");
    if let Some(go) = args.opt::<String>("go-file")? {
        while !std::path::Path::new(&go).exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    if args.flag("commit") {
        say("committing");
        producer.commit_transaction()?;
        say("committed");
    } else {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    Ok(())
}

/// `group-transform --output O --id I [--process-us T] [--session-ms S]
/// [--txn-timeout-ms X] [--stall-after N --stall-ms M]`: an exactly-once consume-transform-produce member
/// of group `gt` subscribed to `--topic`: writes `<partition>:<offset>` records to `O`
/// and the input offsets in the same transaction (transactional id `gt-I`, offsets
/// sent with the consumer's group metadata), forever. With `--stall-after N`, its
/// `N`th transaction stalls `M` ms before sending its offsets; a transaction whose
/// offsets are refused as stale, or whose producer was fenced, is aborted (by a new
/// producer if need be).
fn group_transform(args: &Args) -> RoleResult {
    let input = open(args)?;
    let store = input.store().clone();
    let output: String = args.get("output")?;
    let id: String = args.get("id")?;
    let pause = Duration::from_micros(args.get_or("process-us", 0)?);
    let session_ms: String = args.get_or("session-ms", 45_000u64)?.to_string();
    let stall_after: u64 = args.get_or("stall-after", u64::MAX)?;
    let stall = Duration::from_millis(args.get_or("stall-ms", 0)?);
    let txn_timeout: String = args.get_or("txn-timeout-ms", 60_000u64)?.to_string();
    let txn_id = format!("gt-{id}");
    let new_producer = || -> Result<Producer, oncelog::Error> {
        let producer = Producer::new(
            &store,
            ProducerConfig::from_pairs([
                ("transactional.id", txn_id.as_str()),
                ("transaction.timeout.ms", txn_timeout.as_str()),
            ])?,
        )?;
        producer.init_transactions()?;
        Ok(producer)
    };
    let mut producer = new_producer()?;
    let config = ConsumerConfig::from_pairs([
        ("group.id", "gt"),
        ("delivery", "exactly-once"),
        ("auto.offset.reset", "earliest"),
        ("max.poll.records", "20"),
        ("session.timeout.ms", session_ms.as_str()),
    ])?;
    let mut consumer = Consumer::new(&store, config)?;
    consumer.subscribe(&[input.topic()])?;
    say("ready");
    let (mut count, mut transactions) = (0u64, 0u64);
    loop {
        let records = consumer.poll(Duration::from_millis(100))?;
        if records.is_empty() {
            continue;
        }
        let group = consumer.group_metadata()?;
        producer.begin_transaction()?;
        let mut next: std::collections::BTreeMap<(String, u32), i64> =
            std::collections::BTreeMap::new();
        for r in &records {
            let value = format!("{}:{}", r.partition, r.offset);
            producer.send(ProducerRecord::new(&output, value.as_bytes()).partition(0))?;
            next.insert((r.topic.clone(), r.partition), r.offset + 1);
            std::thread::sleep(pause);
        }
        if transactions == stall_after {
            // Stuck in processing, past the session timeout: the group moves on.
            say("stalling");
            std::thread::sleep(stall);
            say("resumed");
        }
        let offsets: Vec<(TopicPartition, i64)> = next
            .into_iter()
            .map(|((t, p), o)| (TopicPartition::new(t, p), o))
            .collect();
        match producer
            .send_offsets_to_transaction_for(&offsets, &group)
            .and_then(|()| producer.commit_transaction())
        {
            Ok(()) => {}
            Err(e) if e.txn_requires_abort() || e.kind() == oncelog::ErrorKind::ProducerFenced => {
                say(&format!("refused {}", e.kind()));
                // Aborted past its transaction.timeout.ms, the producer was fenced
                // too: a new one takes over the transactional id.
                if producer.abort_transaction().is_err() {
                    producer = new_producer()?;
                }
                // Its records are polled again (by whichever member owns them now).
                consumer.seek_to_committed()?;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        transactions += 1;
        count += records.len() as u64;
        say(&format!("committed {count}"));
    }
}

/// `produce-limited --fsize-limit B --delivery D --count N`: a producer with the
/// delivery preset `D` under a soft `RLIMIT_FSIZE` of `B` bytes (SIGXFSZ ignored;
/// the parent may raise the limit with `prlimit`), sending records `0..N` of writer
/// 1 one by one and reporting each delivery.
fn produce_limited(args: &Args) -> RoleResult {
    let bytes: u64 = args.get("fsize-limit")?;
    // SAFETY: plain libc calls; a size limit then fails writes with EFBIG instead of
    // killing the process. Only the soft limit is set, so the parent can raise it.
    unsafe {
        if libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR {
            return Err(format!("signal: {}", std::io::Error::last_os_error()).into());
        }
        let lim = libc::rlimit {
            rlim_cur: bytes as libc::rlim_t,
            rlim_max: libc::RLIM_INFINITY,
        };
        if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
            return Err(format!("setrlimit: {}", std::io::Error::last_os_error()).into());
        }
    }
    let part = open(args)?;
    let delivery: String = args.get("delivery")?;
    let count: u64 = args.get("count")?;
    let config =
        ProducerConfig::from_pairs([("delivery", delivery.as_str()), ("retry.backoff.ms", "10")])?;
    let producer = Producer::new(part.store(), config)?;
    say("ready");
    for seq in 0..count {
        let (key, value) = (payload::key(1, seq), payload::value(1, seq, 1000));
        producer.send(
            ProducerRecord::new(part.topic(), &value)
                .key(&key)
                .partition(part.id()),
        )?;
        for report in producer.poll() {
            match report.result {
                Ok(offset) => say(&format!("ok {seq} {offset}")),
                Err(e) => say(&format!("err {seq} {}", e.kind())),
            }
        }
    }
    say("done");
    Ok(())
}

/// Makes the recovery point land exactly on a segment boundary: an aborted
/// transaction and a few records in partition 0 of a new topic with 4 KiB segments,
/// a sync, a wait until the flusher moved the recovery point to the end, then a
/// record too big for the rest of the segment, which rolls it there. Closes the
/// store (a clean shutdown, being the only process).
fn roll_at_checkpoint(args: &Args) -> RoleResult {
    let path = args.str("store")?;
    let topic = args.str("topic")?;
    let store = Store::open(path, StoreOptions::default())?;
    let config = oncelog::TopicConfig {
        segment_bytes: 4096,
        ..oncelog::TopicConfig::default()
    };
    store.create_topic(topic, 1, config)?;
    let producer = Producer::new(
        &store,
        ProducerConfig::from_pairs([("transactional.id", "roll-at-checkpoint")])?,
    )?;
    producer.init_transactions()?;
    producer.begin_transaction()?;
    producer.send(ProducerRecord::new(topic, b"aborted").partition(0))?;
    producer.flush()?;
    let aborted = producer
        .poll()
        .into_iter()
        .find_map(|r| r.result.ok())
        .ok_or_else(|| "no delivery report for the aborted record".to_string())?;
    producer.abort_transaction()?;
    say(&format!("aborted {aborted}"));
    let p = store.partition(topic, 0)?;
    let filler = vec![b'f'; 100];
    for _ in 0..10 {
        p.append(&[Record::value(&filler)])?;
    }
    p.sync()?;
    let end = p.end_offset();
    let checkpoint = std::path::Path::new(path)
        .join(format!("{topic}-0"))
        .join("recovery.checkpoint");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&checkpoint)
        .ok()
        .and_then(|t| t.lines().nth(1).and_then(|l| l.parse::<i64>().ok()))
        != Some(end)
    {
        if Instant::now() > deadline {
            return Err("the recovery point did not reach the end"
                .to_string()
                .into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    say(&format!("checkpoint {end}"));
    let big = vec![b'b'; 3000];
    let info = p.append(&[Record::value(&big)])?;
    say(&format!("rolled {}", info.base_offset));
    drop(p);
    producer.close()?;
    store.close()?;
    say("done");
    Ok(())
}
