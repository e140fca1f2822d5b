//! The producer: routing (Kafka's key hash, explicit partitions), batching by
//! `batch.size` and `linger.ms`, delivery reports, idempotent identity, presets and
//! input validation.

use std::time::{Duration, Instant};

use oncelog::partitioner::partition_for_key;
use oncelog::{
    ErrorKind, Partition, Producer, ProducerConfig, ProducerRecord, Record, Store, StoreOptions,
    TopicConfig,
};

fn store(partitions: u32) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store
        .create_topic("t", partitions, TopicConfig::default())
        .unwrap();
    (dir, store)
}

fn config(pairs: &[(&str, &str)]) -> ProducerConfig {
    ProducerConfig::from_pairs(pairs.iter().copied()).unwrap()
}

/// (offset, key, value, producer id of its batch)
type Stored = (i64, Option<Vec<u8>>, Option<Vec<u8>>, i64);

fn read(p: &Partition) -> Vec<Stored> {
    let mut out = Vec::new();
    let mut r = p.reader(0).unwrap();
    while let Some(b) = r.next_batch().unwrap() {
        let producer_id = b.header().producer_id;
        for rec in b.records() {
            let rec = rec.unwrap();
            out.push((
                rec.offset,
                rec.key.map(<[u8]>::to_vec),
                rec.value.map(<[u8]>::to_vec),
                producer_id,
            ));
        }
    }
    out
}

#[test]
fn keyed_records_land_where_kafka_puts_them_and_every_record_is_reported() {
    let (_dir, store) = store(6);
    let producer = Producer::new(&store, ProducerConfig::default()).unwrap();
    let (id, epoch) = producer.identity().expect("idempotent by default");
    assert_eq!(epoch, 0);
    let keys: Vec<String> = (0..200).map(|i| format!("customer-{i}")).collect();
    let mut tokens = Vec::new();
    for k in &keys {
        tokens.push(
            producer
                .send(ProducerRecord::new("t", b"v").key(k.as_bytes()))
                .unwrap(),
        );
    }
    producer.flush().unwrap();
    let reports = producer.poll();
    assert_eq!(reports.len(), keys.len());
    for (k, (token, report)) in keys.iter().zip(tokens.iter().zip(&reports)) {
        assert_eq!(report.token, *token);
        let expected = partition_for_key(k.as_bytes(), std::num::NonZeroU32::new(6).unwrap());
        assert_eq!(report.partition, expected, "key {k}");
        let offset = *report.result.as_ref().unwrap();
        let p = store.partition("t", report.partition).unwrap();
        let found = read(&p).into_iter().find(|r| r.0 == offset).unwrap();
        assert_eq!(found.1.as_deref(), Some(k.as_bytes()));
        assert_eq!(found.3, id, "batches carry the producer id");
    }
    assert!(producer.poll().is_empty(), "reports are taken once");
}

#[test]
fn explicit_partitions_and_bad_input() {
    let (_dir, store) = store(2);
    let producer = Producer::new(&store, config(&[("delivery", "at-least-once")])).unwrap();
    assert_eq!(producer.identity(), None);
    producer
        .send(ProducerRecord::new("t", b"one").partition(1))
        .unwrap();
    assert_eq!(store.partition("t", 1).unwrap().end_offset(), 1);
    assert_eq!(
        read(&store.partition("t", 1).unwrap())[0].3,
        -1,
        "no producer id without idempotence"
    );
    let bad = [
        (
            producer.send(ProducerRecord::new("t", b"x").partition(2)),
            ErrorKind::UnknownPartition,
        ),
        (
            producer.send(ProducerRecord::new("nope", b"x")),
            ErrorKind::UnknownTopic,
        ),
        (
            producer.send(ProducerRecord::new("bad name", b"x")),
            ErrorKind::InvalidTopicName,
        ),
        (
            producer.send(ProducerRecord::new("t", &vec![0u8; 2_000_000])),
            ErrorKind::RecordTooLarge,
        ),
    ];
    for (i, (result, kind)) in bad.into_iter().enumerate() {
        assert_eq!(result.unwrap_err().kind(), kind, "case {i}");
    }
    assert!(producer.poll().iter().all(|r| r.result.is_ok()));
    let p0 = store.partition("t", 0).unwrap();
    assert_eq!(
        p0.end_offset() + store.partition("t", 1).unwrap().end_offset(),
        1,
        "nothing else was appended"
    );
    producer.close().unwrap();
}

#[test]
fn records_wait_for_linger_ms_or_a_full_batch() {
    let (_dir, store) = store(1);
    let p = store.partition("t", 0).unwrap();
    let producer = Producer::new(
        &store,
        config(&[("linger.ms", "200"), ("batch.size", "1000")]),
    )
    .unwrap();
    let t0 = Instant::now();
    producer
        .send(ProducerRecord::new("t", b"lingering"))
        .unwrap();
    assert_eq!(
        (p.end_offset(), producer.pending()),
        (0, 1),
        "held back by linger.ms"
    );
    assert!(p.wait_for(0, Duration::from_secs(10)).unwrap());
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "appended after about linger.ms"
    );
    assert_eq!(producer.pending(), 0);
    // A batch that reaches batch.size goes at once, as one batch.
    let value = [7u8; 300];
    for _ in 0..4 {
        producer.send(ProducerRecord::new("t", &value)).unwrap();
    }
    assert_eq!(p.end_offset(), 5, "the fourth record filled the batch");
    assert_eq!(p.metrics().batches_appended, 2);
    assert_eq!(producer.poll().len(), 5);
}

#[test]
fn send_batch_keeps_order_with_pending_records_and_continues_the_sequence() {
    let (_dir, store) = store(1);
    let p = store.partition("t", 0).unwrap();
    let producer = Producer::new(&store, config(&[("linger.ms", "60000")])).unwrap();
    producer
        .send(ProducerRecord::new("t", b"first").partition(0))
        .unwrap();
    let info = producer
        .send_batch("t", 0, &[Record::value(b"second"), Record::value(b"third")])
        .unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset),
        (1, 2),
        "pending records go first"
    );
    producer
        .send(ProducerRecord::new("t", b"fourth").partition(0))
        .unwrap();
    producer.flush().unwrap();
    let values: Vec<Vec<u8>> = read(&p).into_iter().map(|r| r.2.unwrap()).collect();
    assert_eq!(values, [&b"first"[..], b"second", b"third", b"fourth"]);
    // Every batch continued the producer's sequence: none was refused.
    assert!(producer.poll().iter().all(|r| r.result.is_ok()));
}

#[test]
fn records_without_keys_stick_to_a_partition_per_batch() {
    let (_dir, store) = store(4);
    let producer = Producer::new(
        &store,
        config(&[("linger.ms", "60000"), ("batch.size", "1000")]),
    )
    .unwrap();
    for _ in 0..400 {
        producer.send(ProducerRecord::new("t", &[1u8; 40])).unwrap();
    }
    producer.flush().unwrap();
    let mut per_partition = Vec::new();
    for i in 0..4 {
        let p = store.partition("t", i).unwrap();
        per_partition.push(p.end_offset());
        // Whole batches of about batch.size, not one record each.
        if p.end_offset() > 0 {
            assert!(
                p.metrics().batches_appended * 10 < p.end_offset() as u64 + 20,
                "{:?}",
                p.metrics()
            );
        }
    }
    assert_eq!(per_partition.iter().sum::<i64>(), 400);
    assert!(
        per_partition.iter().filter(|n| **n > 0).count() >= 2,
        "batches move between partitions: {per_partition:?}"
    );
}

#[test]
fn an_idempotent_producer_goes_on_after_a_batch_refused_as_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store
        .create_topic_with("small", 1, &[("max.message.bytes", "1024")])
        .unwrap();
    let p = Producer::new(&store, ProducerConfig::default()).unwrap();
    let big = vec![7u8; 4096];
    let err = p
        .send_batch("small", 0, &[Record::value(&big)])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RecordTooLarge);
    // Nothing was appended and no sequence was used: the producer is not stopped.
    let info = p.send_batch("small", 0, &[Record::value(b"fits")]).unwrap();
    assert_eq!(info.base_offset, 0);
    p.send(ProducerRecord::new("small", b"and this").partition(0))
        .unwrap();
    p.flush().unwrap();
    assert_eq!(store.partition("small", 0).unwrap().end_offset(), 2);
}

#[test]
fn partitions_added_after_the_first_send_are_found() {
    let (_dir, store) = store(2);
    let producer = Producer::new(&store, ProducerConfig::default()).unwrap();
    producer
        .send(ProducerRecord::new("t", b"before").partition(1))
        .unwrap();
    store.add_partitions("t", 4).unwrap();
    // An explicit partition beyond what the producer read makes it read again.
    producer
        .send(ProducerRecord::new("t", b"after").partition(3))
        .unwrap();
    assert_eq!(store.partition("t", 3).unwrap().end_offset(), 1);
    assert_eq!(
        producer
            .send(ProducerRecord::new("t", b"x").partition(4))
            .unwrap_err()
            .kind(),
        ErrorKind::UnknownPartition
    );
    producer.close().unwrap();
}

#[test]
fn keyed_records_spread_over_added_partitions_once_the_metadata_is_read_again() {
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    let spread = |max_age: &str| -> Vec<u32> {
        let (_dir, store) = store(2);
        let producer = Producer::new(&store, config(&[("metadata.max.age.ms", max_age)])).unwrap();
        producer
            .send(ProducerRecord::new("t", b"first").key(b"k"))
            .unwrap();
        store.add_partitions("t", 8).unwrap();
        for k in &keys {
            producer
                .send(ProducerRecord::new("t", b"v").key(k.as_bytes()))
                .unwrap();
        }
        producer.close().unwrap();
        (0..8)
            .map(|p| store.partition("t", p).unwrap().end_offset() as u32)
            .collect()
    };
    // Trusted for five minutes: the keys still hash over the two partitions known.
    let cached = spread("300000");
    assert!(cached[2..].iter().all(|&n| n == 0), "{cached:?}");
    // Read again at every send: the keys land where Kafka puts them over eight.
    let fresh = spread("0");
    let mut expected = vec![0u32; 8];
    expected[partition_for_key(b"k", std::num::NonZeroU32::new(2).unwrap()) as usize] += 1;
    for k in &keys {
        expected
            [partition_for_key(k.as_bytes(), std::num::NonZeroU32::new(8).unwrap()) as usize] += 1;
    }
    assert_eq!(fresh, expected);
    assert!(
        ProducerConfig::from_pairs([("metadata.max.age.ms", "-1")]).is_err(),
        "validated"
    );
}
