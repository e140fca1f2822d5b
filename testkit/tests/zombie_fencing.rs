//! Zombie fencing between two processes with one `transactional.id`: once the newer
//! one has called `init_transactions`, the older one's commit fails with "producer
//! fenced", and nothing it wrote in its transaction ever becomes visible.

mod common;

use std::time::Duration;

use common::{role, with, Proc};
use oncelog::{
    Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord, Store, StoreOptions,
    TopicConfig, TopicPartition,
};

const LONG: Duration = Duration::from_secs(30);

#[test]
fn the_older_holder_is_fenced_once_the_newer_one_initialises() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store
        .create_topic("out", 1, TopicConfig::default())
        .unwrap();
    let go = dir.path().join("go");
    let mut cmd = role("txn-hold", dir.path(), "out");
    with(
        &mut cmd,
        &[("count", "3".into()), ("go-file", go.display().to_string())],
    );
    cmd.arg("--commit");
    let mut zombie = Proc::spawn("zombie", cmd);
    zombie.expect("sent", LONG);

    // The newer holder takes the id over while the older one is alive.
    let newer = Producer::new(
        &store,
        ProducerConfig::from_pairs([("transactional.id", "holder")]).unwrap(),
    )
    .unwrap();
    newer.init_transactions().unwrap();
    std::fs::write(&go, b"").unwrap();
    zombie.expect("committing", LONG);
    let (status, lines) = zombie.finish(LONG);
    assert!(!status.success());
    assert!(
        lines.iter().any(|l| l.starts_with("err producer_fenced")),
        "{lines:?}"
    );

    newer.begin_transaction().unwrap();
    newer
        .send(ProducerRecord::new("out", b"from the newer holder"))
        .unwrap();
    newer.commit_transaction().unwrap();
    let mut c = Consumer::new(
        &store,
        ConsumerConfig::from_pairs([
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "earliest"),
        ])
        .unwrap(),
    )
    .unwrap();
    c.assign(&[TopicPartition::new("out", 0)]).unwrap();
    let values: Vec<Vec<u8>> = c
        .poll(Duration::from_secs(1))
        .unwrap()
        .into_iter()
        .map(|r| r.value.unwrap())
        .collect();
    assert_eq!(
        values,
        [b"from the newer holder".to_vec()],
        "the zombie's records never show"
    );
}
