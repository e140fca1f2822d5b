//! `ulimit -n` exhausted: a process with few file descriptors (`RLIMIT_NOFILE` set
//! in the child) creates a topic of many partitions, assigns a consumer to all of
//! them, and rolls segments with its descriptor table full. Each failure is an
//! error that says "too many open files" and names the file it could not open;
//! nothing acknowledged is lost; the store works again once descriptors are free,
//! in that process and in the next.

mod common;

use std::time::Duration;

use common::{role, with, Proc};
use oncelog::{Record, Store, StoreOptions, TopicConfig};

const LONG: Duration = Duration::from_secs(60);

fn assert_names_a_file(line: &str) {
    assert!(
        line.contains(" err io ") || line.starts_with("roll-err io "),
        "not an io error: {line}"
    );
    assert!(line.contains("Too many open files"), "{line}");
    assert!(line.contains('/'), "no file named: {line}");
}

#[test]
fn too_few_descriptors_fail_clearly_and_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let store = Store::open(dir, StoreOptions::default()).unwrap();
        let config = TopicConfig::from_pairs([("segment.bytes", "4096")]).unwrap();
        store.create_topic("t", 1, config).unwrap();
    }
    let mut cmd = role("fd-hungry", dir, "t");
    with(
        &mut cmd,
        &[("nofile-limit", "48".into()), ("partitions", "64".into())],
    );
    let mut p = Proc::spawn("fd-hungry", cmd);
    let (status, lines) = p.finish(LONG);
    assert!(status.success(), "{status}: {lines:?}; {}", p.stderr());

    // Creating 64 partitions with 48 descriptors may succeed (a partition being
    // created holds none for long); assigning a consumer to all of them cannot.
    let topic = lines.iter().find(|l| l.starts_with("topic ")).unwrap();
    if topic != "topic ok" {
        assert_names_a_file(topic);
    }
    let assign = lines.iter().find(|l| l.starts_with("assign ")).unwrap();
    assert_names_a_file(assign);
    let roll = lines.iter().find(|l| l.starts_with("roll-err ")).unwrap();
    assert_names_a_file(roll);

    // Every acknowledged record, before and after the failure, is in the log.
    let acked: Vec<i64> = lines
        .iter()
        .filter_map(|l| {
            let rest = l.strip_prefix("ack ").or(l.strip_prefix("ack-after "))?;
            rest.parse().ok()
        })
        .collect();
    assert!(
        lines.iter().any(|l| l.starts_with("ack-after ")),
        "{lines:?}"
    );
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let part = store.partition("t", 0).unwrap();
    let mut reader = part.reader(0).unwrap().verify_crc(true);
    let mut found = Vec::new();
    while let Some(batch) = reader.next_batch().unwrap() {
        for r in batch.records() {
            found.push(r.unwrap().offset);
        }
    }
    assert_eq!(found, acked, "the log and the acknowledgements differ");

    // With descriptors to spare, the topic that half-failed can be made whole:
    // created if its creation failed (leftover empty partitions are cleared), and
    // every partition opens and takes records.
    let many = match store.topic("many") {
        Ok(meta) => meta,
        Err(_) => store
            .create_topic("many", 64, TopicConfig::default())
            .unwrap(),
    };
    assert_eq!(many.partitions, 64);
    for p in 0..64 {
        store
            .partition("many", p)
            .unwrap()
            .append(&[Record::value(b"x")])
            .unwrap();
    }
    part.append(&[Record::value(b"after")]).unwrap();
}
