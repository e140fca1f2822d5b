//! Consumer groups: members share a topic's partitions, one owner per partition,
//! and the partitions of a member that leaves move to the others; a member commits
//! only partitions it owns.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oncelog::{
    Consumer, ConsumerConfig, ErrorKind, Record, Store, StoreOptions, TopicConfig, TopicPartition,
};

fn member(store: &Store, log: Option<Arc<Mutex<Vec<String>>>>) -> Consumer {
    let config = ConsumerConfig::from_pairs([
        ("group.id", "g"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
    ])
    .unwrap();
    let mut c = Consumer::new(store, config).unwrap();
    match log {
        None => c.subscribe(&["t"]).unwrap(),
        Some(log) => {
            let (a, r) = (log.clone(), log);
            c.subscribe_with(
                &["t"],
                Some(Box::new(move |tps: &[TopicPartition]| {
                    a.lock().unwrap().push(format!("assign {}", tps.len()))
                })),
                Some(Box::new(move |tps: &[TopicPartition]| {
                    r.lock().unwrap().push(format!("revoke {}", tps.len()))
                })),
            )
            .unwrap()
        }
    }
    c
}

fn owned(c: &mut Consumer) -> BTreeSet<u32> {
    c.poll(Duration::from_millis(30)).unwrap();
    c.assignment().iter().map(|tp| tp.partition).collect()
}

#[test]
fn members_share_partitions_and_take_over_from_one_that_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let store_a = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store_a
        .create_topic("t", 4, TopicConfig::default())
        .unwrap();
    for p in 0..4 {
        store_a
            .partition("t", p)
            .unwrap()
            .append(&[Record::value(b"x")])
            .unwrap();
    }
    // Two handles on the store behave as two processes.
    let store_b = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut a = member(&store_a, Some(log.clone()));
    assert_eq!(owned(&mut a), (0..4).collect(), "alone, it gets everything");
    let mut b = member(&store_b, None);
    let t0 = Instant::now();
    loop {
        let (pa, pb) = (owned(&mut a), owned(&mut b));
        if pa.len() == 2 && pb.len() == 2 {
            assert!(
                pa.is_disjoint(&pb),
                "one owner per partition: {pa:?} {pb:?}"
            );
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "never rebalanced: {pa:?} {pb:?}"
        );
    }
    assert!(
        log.lock().unwrap().contains(&"revoke 2".to_string()),
        "{:?}",
        log.lock().unwrap()
    );
    // b may only commit what it owns.
    let not_b = (0..4)
        .find(|p| !b.assignment().iter().any(|tp| tp.partition == *p))
        .unwrap();
    let err = b
        .commit_offsets(&[(TopicPartition::new("t", not_b), 1)])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StaleGeneration);

    // b leaves: a takes everything back.
    b.close().unwrap();
    drop(b);
    let t0 = Instant::now();
    while owned(&mut a).len() < 4 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "a never took the partitions back"
        );
    }
}
