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

/// A store whose topic `t` has 4 partitions of one record each.
fn four_partitions_of_one_record() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("t", 4, TopicConfig::default()).unwrap();
    for p in 0..4 {
        store
            .partition("t", p)
            .unwrap()
            .append(&[Record::value(b"x")])
            .unwrap();
    }
    (dir, store)
}

fn owned(c: &mut Consumer) -> BTreeSet<u32> {
    c.poll(Duration::from_millis(30)).unwrap();
    c.assignment().iter().map(|tp| tp.partition).collect()
}

#[test]
fn members_share_partitions_and_take_over_from_one_that_leaves() {
    let (dir, store_a) = four_partitions_of_one_record();
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

fn member_with(store: &Store, pairs: &[(&str, &str)]) -> Consumer {
    let mut config = ConsumerConfig::from_pairs([
        ("group.id", "g"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("session.timeout.ms", "300"),
    ])
    .unwrap();
    for (k, v) in pairs {
        config.set(k, v).unwrap();
    }
    let mut c = Consumer::new(store, config).unwrap();
    c.subscribe(&["t"]).unwrap();
    c
}

#[test]
fn a_member_that_stops_polling_loses_its_partitions_and_its_commits() {
    let (dir, store_a) = four_partitions_of_one_record();
    let store_b = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mut a = member_with(&store_a, &[]);
    // Alone, a reads every partition's record.
    assert_eq!(owned(&mut a), (0..4).collect());
    let mut b = member_with(&store_b, &[]);
    let t0 = Instant::now();
    let mine_a = loop {
        let (pa, pb) = (owned(&mut a), owned(&mut b));
        if pa.len() == 2 && pb.len() == 2 {
            break pa;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "never rebalanced");
    };
    let tp = TopicPartition::new("t", *mine_a.iter().next().unwrap());
    assert_eq!(a.position(&tp).unwrap(), 1, "a read it while alone");
    let metadata = a.group_metadata().unwrap();

    // a stops polling (hung, or stuck processing) past its session timeout: b takes
    // its partitions over and reads them from the committed offset (none: the start).
    let t0 = Instant::now();
    let mut read_by_b = BTreeSet::new();
    while read_by_b.len() < 2 {
        for r in b.poll(Duration::from_millis(30)).unwrap() {
            if mine_a.contains(&r.partition) {
                read_by_b.insert(r.partition);
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "b never took over a's partitions"
        );
    }
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "taken over after {took:?}, before a's session expired"
    );
    assert_eq!(b.assignment().len(), 4);

    // a comes back: its commits are refused (by offset, and of what it read), and so
    // are offsets sent in a transaction with its old group metadata.
    assert_eq!(
        a.commit_offsets(&[(tp.clone(), 1)]).unwrap_err().kind(),
        ErrorKind::StaleGeneration
    );
    assert_eq!(a.commit().unwrap_err().kind(), ErrorKind::StaleGeneration);
    assert_eq!(a.committed(&tp).unwrap(), None, "nothing committed for it");
    let producer = oncelog::Producer::new(
        &store_a,
        oncelog::ProducerConfig::from_pairs([("transactional.id", "zombie")]).unwrap(),
    )
    .unwrap();
    producer.init_transactions().unwrap();
    producer.begin_transaction().unwrap();
    let err = producer
        .send_offsets_to_transaction_for(&[(tp.clone(), 1)], &metadata)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StaleGeneration);
    assert!(err.txn_requires_abort());
    assert_eq!(
        producer.commit_transaction().unwrap_err().kind(),
        ErrorKind::TransactionAborted
    );
    producer.abort_transaction().unwrap();
    assert_eq!(a.committed(&tp).unwrap(), None);

    // Polling again, a rejoins: the partitions are shared again, one owner each.
    let t0 = Instant::now();
    loop {
        let (pa, pb) = (owned(&mut a), owned(&mut b));
        if pa.len() == 2 && pb.len() == 2 {
            assert!(pa.is_disjoint(&pb));
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "a never rejoined");
    }
    assert!(a.group_metadata().unwrap().generation > metadata.generation);
}

#[test]
fn session_timeout_is_validated() {
    for bad in ["0", "99", "soon"] {
        assert_eq!(
            ConsumerConfig::from_pairs([("session.timeout.ms", bad)])
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidConfig,
            "{bad}"
        );
    }
    assert_eq!(
        ConsumerConfig::from_pairs([("session.timeout.ms", "6000")])
            .unwrap()
            .session_timeout_ms,
        6000
    );
}

#[test]
fn an_unsubscribed_member_hands_its_partitions_over_and_may_join_again() {
    let (dir, store_a) = four_partitions_of_one_record();
    let store_b = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut a = member(&store_a, Some(log.clone()));
    let mut b = member(&store_b, None);
    let t0 = Instant::now();
    while !(owned(&mut a).len() == 2 && owned(&mut b).len() == 2) {
        assert!(t0.elapsed() < Duration::from_secs(10), "never rebalanced");
    }
    log.lock().unwrap().clear();
    a.unsubscribe().unwrap();
    assert_eq!(*log.lock().unwrap(), ["revoke 2"], "revoked before leaving");
    assert!(a.assignment().is_empty());
    assert!(a.poll(Duration::from_millis(10)).unwrap().is_empty());
    let t0 = Instant::now();
    while owned(&mut b).len() < 4 {
        assert!(t0.elapsed() < Duration::from_secs(10), "b never took over");
    }
    // a is still usable: an assignment outside the group reads the partition.
    a.assign(&[TopicPartition::new("t", 0)]).unwrap();
    let records = a.poll(Duration::from_millis(200)).unwrap();
    assert_eq!(records.len(), 1);
    a.unsubscribe().unwrap();
    assert!(a.assignment().is_empty());
    a.close().unwrap();
    assert_eq!(a.unsubscribe().unwrap_err().kind(), ErrorKind::Closed);
}
