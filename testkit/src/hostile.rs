//! Roles of the hostile-use tests (`testkit/tests/hostile_*.rs`): processes that
//! hold a store open while files change under them, consume through retention,
//! watch transactions and groups under a jumped clock, or run out of descriptors.
//!
//! | subcommand | lines |
//! | --- | --- |
//! | `hold` | `holding` once the partition is open, then `closed` after a clean close once `--go-file` exists (without it, waits to be killed) |
//! | `read-mapped` | `mapped <offset>` after reading the first batch (its segment is mapped), then, once `--go-file` exists, `read <count>` after reading the rest |
//! | `reset-consume` | `ready`, `rec <offset> <writer> <seq> <digest>` per record (with `--go-file`, waits for it after the first records), `err <kind>` for a failed poll (with `--reset none`, followed by `seek <offset>` to the log start), `done` once the position reaches `--until` |
//! | `committed-poll` | `ready`, `got <offset> <value>` per record read read_committed, `done` once the position reaches `--until` |
//! | `group-poll` | `ready` after the first poll of a member of group `--group` subscribed to `--topic`; polls until killed |
//! | `fd-hungry` | under `--nofile-limit`: `topic <created or err ...>`, `assign <ok or err ...>`, `ack <offset>` per append, `roll-err <kind> <message>` once the descriptor table is full, `ack-after <offset>` per append after closing and opening the store again, `done` |

use std::path::Path;
use std::time::{Duration, Instant};

use oncelog::{Consumer, ConsumerConfig, ErrorKind, Record, TopicConfig, TopicPartition};

use crate::args::Args;
use crate::payload::{self, Kind};
use crate::roles::{open, say, Failure};

type RoleResult = Result<(), Failure>;

/// Runs hostile role `name`; `None` if there is no such role here.
pub fn run(name: &str, args: &Args) -> Option<RoleResult> {
    Some(match name {
        "hold" => hold(args),
        "read-mapped" => read_mapped(args),
        "reset-consume" => reset_consume(args),
        "committed-poll" => committed_poll(args),
        "group-poll" => group_poll(args),
        "fd-hungry" => fd_hungry(args),
        _ => return None,
    })
}

fn wait_for_file(path: &str) {
    while !Path::new(path).exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `hold [--go-file F]`: keeps the store open (so that nobody else is its first
/// opener); with `F`, closes it cleanly once `F` exists.
fn hold(args: &Args) -> RoleResult {
    let part = open(args)?;
    say("holding");
    match args.opt::<String>("go-file")? {
        Some(go) => {
            wait_for_file(&go);
            let store = part.store().clone();
            drop(part);
            store.close()?;
            say("closed");
            Ok(())
        }
        None => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
}

/// `read-mapped --go-file F`: reads the first batch from offset 0 (mapping its
/// segment), waits for `F`, then reads to the end.
fn read_mapped(args: &Args) -> RoleResult {
    let part = open(args)?;
    let go: String = args.get("go-file")?;
    let mut reader = part.reader(0)?;
    let first = reader
        .next_batch()?
        .ok_or_else(|| "empty partition".to_string())?
        .header()
        .base_offset;
    say(&format!("mapped {first}"));
    wait_for_file(&go);
    let mut count = 0u64;
    while let Some(batch) = reader.next_batch()? {
        for record in batch.records() {
            record?;
            count += 1;
        }
    }
    say(&format!("read {count}"));
    Ok(())
}

/// `reset-consume --reset earliest|latest|none --until N [--pause-us U] [--go-file F]`:
/// a consumer assigned partition `--partition` (no group) with `auto.offset.reset`
/// `R`, checking every record's payload, sleeping `U` µs after each poll; with `F`,
/// it waits after its first records until `F` exists. With `none`, a poll that
/// fails with `offset_out_of_range` is reported and followed by a seek to the log
/// start; any other failed poll ends the role.
fn reset_consume(args: &Args) -> RoleResult {
    let part = open(args)?;
    let reset: String = args.get("reset")?;
    let until: i64 = args.get("until")?;
    let pause = Duration::from_micros(args.get_or("pause-us", 0)?);
    let mut go: Option<String> = args.opt("go-file")?;
    let config = ConsumerConfig::from_pairs([
        ("auto.offset.reset", reset.as_str()),
        ("enable.auto.commit", "false"),
        ("max.poll.records", "20"),
    ])?;
    let mut consumer = Consumer::new(part.store(), config)?;
    let tp = TopicPartition::new(part.topic(), part.id());
    consumer.assign(std::slice::from_ref(&tp))?;
    consumer.seek(&tp, 0)?;
    say("ready");
    let mut last = -1;
    while last + 1 < until {
        let records = match consumer.poll(Duration::from_millis(100)) {
            Ok(records) => records,
            Err(e) if reset == "none" && e.kind() == ErrorKind::OffsetOutOfRange => {
                say(&format!("err {}", e.kind()));
                // The start moves on while retention runs: seek again.
                loop {
                    let start = part.start_offset();
                    match consumer.seek(&tp, start) {
                        Ok(()) => {
                            say(&format!("seek {start}"));
                            break;
                        }
                        Err(e) if e.kind() == ErrorKind::OffsetOutOfRange => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for r in &records {
            let digest = payload::digest(r.key.as_deref(), r.value.as_deref());
            match payload::classify(r.key.as_deref(), r.value.as_deref()) {
                Ok(Kind::Data { writer, seq }) => {
                    say(&format!("rec {} {writer} {seq} {digest}", r.offset))
                }
                Ok(Kind::Stop) => say(&format!("stop {}", r.offset)),
                Err(why) => return Err(format!("offset {}: {why}", r.offset).into()),
            }
            last = r.offset;
        }
        if last >= 0 {
            if let Some(go) = go.take() {
                wait_for_file(&go);
            }
        }
        std::thread::sleep(pause);
    }
    consumer.close()?;
    say("done");
    Ok(())
}

/// `committed-poll --until N`: a read_committed consumer of partition `--partition`
/// from offset 0 (no group) until its position reaches `N`.
fn committed_poll(args: &Args) -> RoleResult {
    let part = open(args)?;
    let until: i64 = args.get("until")?;
    let config = ConsumerConfig::from_pairs([
        ("isolation.level", "read_committed"),
        ("enable.auto.commit", "false"),
    ])?;
    let mut consumer = Consumer::new(part.store(), config)?;
    let tp = TopicPartition::new(part.topic(), part.id());
    consumer.assign(std::slice::from_ref(&tp))?;
    consumer.seek(&tp, 0)?;
    say("ready");
    while consumer.position(&tp)? < until {
        for r in consumer.poll(Duration::from_millis(100))? {
            let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default());
            say(&format!("got {} {value}", r.offset));
        }
    }
    say("done");
    Ok(())
}

/// `group-poll --group G [--session-ms S]`: a member of `G` subscribed to `--topic`,
/// polling every 10 ms until killed.
fn group_poll(args: &Args) -> RoleResult {
    let part = open(args)?;
    let group: String = args.get("group")?;
    let session: String = args.get_or("session-ms", 1000u64)?.to_string();
    let config = ConsumerConfig::from_pairs([
        ("group.id", group.as_str()),
        ("session.timeout.ms", session.as_str()),
        ("enable.auto.commit", "false"),
    ])?;
    let mut consumer = Consumer::new(part.store(), config)?;
    consumer.subscribe(&[part.topic()])?;
    consumer.poll(Duration::from_millis(10))?;
    say("ready");
    loop {
        consumer.poll(Duration::from_millis(10))?;
    }
}

/// `fd-hungry --nofile-limit L --partitions P`: with few descriptors, creates topic
/// `many` of `P` partitions and assigns a consumer to all of them (either may fail:
/// too many open files), then appends to partition 0 of `--topic` (4 KiB segments)
/// until a roll fails because every descriptor is taken, then closes the store,
/// opens it again and appends again.
fn fd_hungry(args: &Args) -> RoleResult {
    let part = open(args)?;
    let store = part.store().clone();
    let partitions: u32 = args.get("partitions")?;
    let report = |what: &str, r: oncelog::Result<()>| match r {
        Ok(()) => say(&format!("{what} ok")),
        Err(e) => say(&format!("{what} err {} {}", e.kind(), e.message())),
    };
    report(
        "topic",
        store
            .create_topic("many", partitions, TopicConfig::default())
            .map(drop),
    );
    let assign = (|| {
        let mut consumer = Consumer::new(&store, ConsumerConfig::default())?;
        let count = store.topic("many")?.partitions;
        let all: Vec<TopicPartition> = (0..count).map(|p| TopicPartition::new("many", p)).collect();
        consumer.assign(&all)
    })();
    report("assign", assign);
    // Take every descriptor left, then append until a roll needs one.
    let mut hog = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hog.push(f);
    }
    let value = vec![7u8; 500];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match part.append(&[Record::value(&value)]) {
            Ok(info) => say(&format!("ack {}", info.base_offset)),
            Err(e) => {
                say(&format!("roll-err {} {}", e.kind(), e.message()));
                break;
            }
        }
        if Instant::now() > deadline {
            return Err("no append failed with every descriptor taken"
                .to_string()
                .into());
        }
    }
    // The store keeps every partition it opened (two descriptors each) until it
    // closes: close it, and open it again.
    drop(hog);
    drop(part);
    store.close()?;
    let part = open(args)?;
    for _ in 0..20 {
        let info = part.append(&[Record::value(&value)])?;
        say(&format!("ack-after {}", info.base_offset));
    }
    say("done");
    Ok(())
}
