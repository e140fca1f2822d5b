//! Listing what the internal logs hold, for tools: every transactional id with its
//! state, and every committed offset.

use oncelog::offsets::OffsetStore;
use oncelog::txn::{Coordinator, TxnStatus};
use oncelog::{
    Durability, Producer, ProducerConfig, ProducerRecord, Store, StoreOptions, TopicPartition,
};

#[test]
fn coordinator_states_lists_every_transactional_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic_with("t", 2, &[]).unwrap();
    let config = |id: &str| ProducerConfig::from_pairs([("transactional.id", id)]).unwrap();

    let b = Producer::new(&store, config("b-id")).unwrap();
    b.init_transactions().unwrap();
    b.begin_transaction().unwrap();
    b.send(ProducerRecord::new("t", b"x").partition(1)).unwrap();
    let a = Producer::new(&store, config("a-id")).unwrap();
    a.init_transactions().unwrap();

    // Another handle reads what these producers wrote.
    let coordinator = Coordinator::open(&store, Durability::Written).unwrap();
    let states = coordinator.states().unwrap();
    let ids: Vec<&str> = states.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["a-id", "b-id"], "sorted by id");
    assert_eq!(states[0].1.status, TxnStatus::Empty);
    assert_eq!(states[1].1.status, TxnStatus::Ongoing);
    assert_eq!(
        states[1].1.partitions.iter().collect::<Vec<_>>(),
        [&("t".to_string(), 1)]
    );
    assert_eq!(
        Some(&states[1].1),
        coordinator.state("b-id").unwrap().as_ref(),
        "the same state as state(id)"
    );
    b.abort_transaction().unwrap();
}

#[test]
fn all_committed_lists_every_group_topic_and_partition() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic_with("t", 2, &[]).unwrap();
    let offsets = OffsetStore::open(&store).unwrap();
    assert!(offsets.all_committed().unwrap().is_empty());
    offsets.commit("g2", &[("t", 1, 5, "")]).unwrap();
    offsets
        .commit("g1", &[("t", 1, 3, "m"), ("t", 0, 7, "")])
        .unwrap();
    offsets.commit("g1", &[("t", 1, 4, "")]).unwrap();

    // Offsets of an open transaction are not committed yet.
    let config = ProducerConfig::from_pairs([("transactional.id", "tx")]).unwrap();
    let producer = Producer::new(&store, config).unwrap();
    producer.init_transactions().unwrap();
    producer.begin_transaction().unwrap();
    producer
        .send_offsets_to_transaction(&[(TopicPartition::new("t", 0), 99)], "g3")
        .unwrap();

    let all: Vec<(String, String, u32, i64)> = OffsetStore::open(&store)
        .unwrap()
        .all_committed()
        .unwrap()
        .into_iter()
        .map(|(g, t, p, c)| (g, t, p, c.offset))
        .collect();
    let expect = |g: &str, p, o| (g.to_string(), "t".to_string(), p, o);
    assert_eq!(
        all,
        [expect("g1", 0, 7), expect("g1", 1, 4), expect("g2", 1, 5)]
    );

    producer.commit_transaction().unwrap();
    let after = OffsetStore::open(&store).unwrap().all_committed().unwrap();
    assert_eq!(after.len(), 4);
    assert_eq!((after[3].0.as_str(), after[3].3.offset), ("g3", 99));
}
