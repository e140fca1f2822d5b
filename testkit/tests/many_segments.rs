//! A partition that has rolled many times is opened and read by a new process that
//! runs with the usual default descriptor limit (a soft `RLIMIT_NOFILE` of 1024).
//! Opening must not cost descriptors (or mappings, or time) in proportion to the
//! number of segments kept: Kafka maps a segment's indexes lazily for this reason.

mod common;

use std::time::{Duration, Instant};

use common::{harness, role, with, Proc};
use oncelog::{Record, Store, StoreOptions, TopicConfig};
use oncelog_testkit::payload;

const SEGMENTS: i64 = 450;

#[test]
fn a_new_process_opens_a_partition_of_many_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let config = TopicConfig::from_pairs([("segment.bytes", "1024")]).unwrap();
        store.create_topic("t", 1, config).unwrap();
        let part = store.partition("t", 0).unwrap();
        // One ~700-byte batch per 1 KiB segment.
        for seq in 0..SEGMENTS as u64 {
            let (key, value) = (payload::key(1, seq), payload::value(1, seq, 600));
            part.append(&[Record::keyed(&key, &value)]).unwrap();
        }
        assert!(part.metrics().segments_rolled >= SEGMENTS as u64 - 1);
    }
    let started = Instant::now();
    let mut cmd = role("read", dir.path(), "t");
    with(
        &mut cmd,
        &[
            ("until", SEGMENTS.to_string()),
            ("nofile-limit", "1024".into()),
        ],
    );
    let mut reader = Proc::spawn("reader with 1024 descriptors", cmd);
    let (status, lines) = reader.finish(Duration::from_secs(60));
    assert!(
        status.success(),
        "{status}: {:?}",
        lines.iter().rev().take(2).collect::<Vec<_>>()
    );
    assert_eq!(harness::reader_entries(&lines).len() as i64, SEGMENTS);
    eprintln!(
        "{SEGMENTS} segments opened and read in {:?}",
        started.elapsed()
    );
}
