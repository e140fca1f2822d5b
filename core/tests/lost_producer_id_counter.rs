//! `producer.ids`, the store's producer id counter, deleted from outside. A new
//! idempotent producer must not take the id of one the partitions remember: its
//! first batch (epoch 0, sequence 0) would pass for a retry of that producer's
//! first batch, be acknowledged with the old offsets and never appended.

use oncelog::{Producer, ProducerConfig, ProducerRecord, Store, StoreOptions, TopicConfig};

#[test]
fn a_deleted_producer_id_counter_never_hands_out_an_id_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    store.create_topic("t", 2, TopicConfig::default()).unwrap();
    // Producers 1 to 3; the last one writes to partition 1 only.
    for (i, p) in [0, 0, 1].into_iter().enumerate() {
        let producer = Producer::new(&store, ProducerConfig::default()).unwrap();
        let value = format!("old {i}");
        producer
            .send(ProducerRecord::new("t", value.as_bytes()).partition(p))
            .unwrap();
        producer.flush().unwrap();
    }
    std::fs::remove_file(tmp.path().join("producer.ids")).unwrap();

    let producer = Producer::new(&store, ProducerConfig::default()).unwrap();
    producer
        .send(ProducerRecord::new("t", b"new").partition(0))
        .unwrap();
    producer.flush().unwrap();
    let part = store.partition("t", 0).unwrap();
    assert_eq!(
        part.end_offset(),
        3,
        "the new producer's record was not appended"
    );
    let ids: Vec<i64> = part
        .producers()
        .unwrap()
        .iter()
        .map(|p| p.producer_id)
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids.iter().all(|id| *id != 3) && ids.contains(&4), "{ids:?}");
}
