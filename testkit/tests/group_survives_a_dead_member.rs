//! A consumer group of 3 exactly-once consume-transform-produce processes over 6
//! partitions: one is killed with SIGKILL mid-stream; its partitions move to the
//! other two, no input record is lost, and none is processed twice in the
//! committed output.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{role, with, Proc};
use oncelog::{Consumer, ConsumerConfig, TopicPartition};

const PER_PARTITION: i64 = 300;
const LONG: Duration = Duration::from_secs(60);

#[test]
fn three_members_over_six_partitions_survive_the_death_of_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::group_store(dir.path(), PER_PARTITION);
    let mut members: Vec<Proc> = (0..3)
        .map(|i| {
            let mut cmd = role("group-transform", dir.path(), "in");
            with(
                &mut cmd,
                &[
                    ("output", "out".into()),
                    ("id", i.to_string()),
                    ("process-us", "300".into()),
                ],
            );
            let mut p = Proc::spawn(format!("member {i}"), cmd);
            p.expect("ready", LONG);
            p
        })
        .collect();
    // Let every member commit something, then kill one mid-stream.
    for m in members.iter_mut() {
        m.expect_eventually("committed", LONG);
    }
    members[1].kill();
    members[1].wait(LONG);
    let done_by_dead: u64 = members[1]
        .drain(LONG)
        .iter()
        .filter_map(|l| l.strip_prefix("committed ").and_then(|n| n.parse().ok()))
        .max()
        .unwrap_or(0);
    assert!(
        (done_by_dead as i64) < 2 * PER_PARTITION,
        "the killed member had finished its share ({done_by_dead}): nothing moved"
    );

    // A read_committed reader of the output (which also finishes the dead member's
    // abandoned transaction) waits for every input record.
    let mut reader = Consumer::new(
        &store,
        ConsumerConfig::from_pairs([
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "earliest"),
        ])
        .unwrap(),
    )
    .unwrap();
    reader.assign(&[TopicPartition::new("out", 0)]).unwrap();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let t0 = Instant::now();
    while (seen.len() as i64) < 6 * PER_PARTITION {
        for r in reader.poll(Duration::from_millis(100)).unwrap() {
            *seen
                .entry(String::from_utf8(r.value.unwrap()).unwrap())
                .or_default() += 1;
        }
        assert!(
            t0.elapsed() < LONG,
            "only {} of {} input records came out",
            seen.len(),
            6 * PER_PARTITION
        );
        for (i, m) in members.iter_mut().enumerate() {
            if i != 1 {
                m.assert_running();
            }
        }
    }
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(twice.is_empty(), "processed twice: {twice:?}");
    for p in 0..6 {
        for i in 0..PER_PARTITION {
            assert!(seen.contains_key(&format!("{p}:{i}")), "lost {p}:{i}");
        }
    }
}
