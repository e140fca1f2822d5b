//! A consumer group of 3 exactly-once consume-transform-produce processes over 6
//! partitions with `session.timeout.ms` 1000 and `transaction.timeout.ms` 2000:
//! one member stalls in processing for 6 s, alive but not polling, with its
//! transaction open. The other two take its partitions over, its transaction is
//! aborted at its timeout (which lets read_committed readers of the output past
//! it), and every input record comes out while it is stalled; when it resumes, the
//! offsets of its stale transaction are refused, so the committed output holds
//! every input record exactly once.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{role, with, Proc};
use oncelog::{Consumer, ConsumerConfig, TopicPartition};

const PER_PARTITION: i64 = 200;
const STALL: Duration = Duration::from_secs(6);
const LONG: Duration = Duration::from_secs(60);

#[test]
fn three_members_over_six_partitions_survive_a_stalled_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::group_store(dir.path(), PER_PARTITION);
    let mut members: Vec<Proc> = (0..3)
        .map(|i| {
            let mut cmd = role("group-transform", dir.path(), "in");
            let mut args = vec![
                ("output", "out".to_string()),
                ("id", i.to_string()),
                ("process-us", "300".into()),
                ("session-ms", "1000".into()),
                ("txn-timeout-ms", "2000".into()),
            ];
            if i == 1 {
                args.push(("stall-after", "1".into()));
                args.push(("stall-ms", STALL.as_millis().to_string()));
            }
            with(&mut cmd, &args);
            let mut p = Proc::spawn(format!("member {i}"), cmd);
            p.expect("ready", LONG);
            p
        })
        .collect();
    members[1].expect_eventually("stalling", LONG);
    let stalled_at = Instant::now();

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
    let mut poll = |seen: &mut BTreeMap<String, usize>| {
        for r in reader.poll(Duration::from_millis(100)).unwrap() {
            *seen
                .entry(String::from_utf8(r.value.unwrap()).unwrap())
                .or_default() += 1;
        }
    };
    while (seen.len() as i64) < 6 * PER_PARTITION {
        poll(&mut seen);
        assert!(
            stalled_at.elapsed() < LONG,
            "only {} of {} input records came out; {}",
            seen.len(),
            6 * PER_PARTITION,
            report(&mut members, &seen)
        );
    }
    let done_after = stalled_at.elapsed();
    assert!(
        done_after < STALL,
        "the others finished only after {done_after:?}: the stalled member's partitions did not move while it was stalled"
    );

    // The stalled member resumes: its transaction's offsets are refused.
    members[1].expect_eventually("resumed", LONG);
    let refused = members[1].expect_eventually("refused", LONG);
    assert_eq!(refused, "refused stale_generation");
    // Nothing more comes out, and nothing came out twice.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(500) {
        poll(&mut seen);
    }
    for m in members.iter_mut() {
        m.assert_running();
    }
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(twice.is_empty(), "processed twice: {twice:?}");
    assert_eq!(seen.len() as i64, 6 * PER_PARTITION);
    for p in 0..6 {
        for i in 0..PER_PARTITION {
            assert!(seen.contains_key(&format!("{p}:{i}")), "lost {p}:{i}");
        }
    }
}

/// What went wrong: the records missing from the output and each member's last
/// lines.
fn report(members: &mut [Proc], seen: &BTreeMap<String, usize>) -> String {
    let missing: Vec<String> = (0..6)
        .flat_map(|p| (0..PER_PARTITION).map(move |i| format!("{p}:{i}")))
        .filter(|k| !seen.contains_key(k))
        .collect();
    let mut out = format!("missing {missing:?}");
    for m in members {
        let mut lines = Vec::new();
        while let Ok(l) = m.line(Duration::from_millis(50)) {
            lines.push(l);
        }
        let tail = &lines[lines.len().saturating_sub(8)..];
        out.push_str(&format!("; {}: {tail:?} {}", m.name(), m.stderr()));
    }
    out
}
