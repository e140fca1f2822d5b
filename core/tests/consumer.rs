//! The consumer: positions from committed offsets or auto.offset.reset, polling
//! several partitions with one wait, max.poll.records, commit modes of the delivery
//! presets, and committed offsets shared by every handle and bounded in size.

use std::time::{Duration, Instant};

use oncelog::{
    Consumer, ConsumerConfig, ErrorKind, Record, Store, StoreOptions, TopicConfig, TopicPartition,
};

fn setup(partitions: u32, records_per_partition: u32) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store
        .create_topic("t", partitions, TopicConfig::default())
        .unwrap();
    for p in 0..partitions {
        let part = store.partition("t", p).unwrap();
        for i in 0..records_per_partition {
            part.append(&[Record::value(format!("{p}:{i}").as_bytes())])
                .unwrap();
        }
    }
    (dir, store)
}

fn consumer(store: &Store, pairs: &[(&str, &str)]) -> Consumer {
    Consumer::new(
        store,
        ConsumerConfig::from_pairs(pairs.iter().copied()).unwrap(),
    )
    .unwrap()
}

fn tp(p: u32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn values(records: &[oncelog::ConsumerRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect()
}

#[test]
fn positions_come_from_committed_offsets_or_the_reset_policy() {
    let (_dir, store) = setup(1, 10);
    let mut c = consumer(
        &store,
        &[
            ("group.id", "g"),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
        ],
    );
    c.assign(&[tp(0)]).unwrap();
    assert_eq!(c.position(&tp(0)).unwrap(), 0);
    let got = c.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(
        values(&got),
        (0..10).map(|i| format!("0:{i}")).collect::<Vec<_>>()
    );
    assert_eq!(c.position(&tp(0)).unwrap(), 10);
    assert_eq!(
        c.committed(&tp(0)).unwrap(),
        None,
        "manual mode commits nothing by itself"
    );
    c.seek(&tp(0), 4).unwrap();
    c.commit().unwrap();
    assert_eq!(c.committed(&tp(0)).unwrap().unwrap().offset, 4);
    drop(c);

    // Another handle on the store (as another process would be) resumes there.
    let other = Store::open(store.path(), StoreOptions::default()).unwrap();
    let mut c = consumer(
        &other,
        &[("group.id", "g"), ("enable.auto.commit", "false")],
    );
    c.assign(&[tp(0)]).unwrap();
    assert_eq!(values(&c.poll(Duration::ZERO).unwrap())[0], "0:4");
    // Another group has no offset: latest by default, or an error with none.
    let mut latest = consumer(&store, &[("group.id", "h")]);
    latest.assign(&[tp(0)]).unwrap();
    assert_eq!(latest.position(&tp(0)).unwrap(), 10);
    let mut none = consumer(&store, &[("group.id", "h"), ("auto.offset.reset", "none")]);
    none.assign(&[tp(0)]).unwrap();
    assert_eq!(
        none.poll(Duration::ZERO).unwrap_err().kind(),
        ErrorKind::OffsetOutOfRange
    );
    // Bad assignments.
    assert_eq!(
        c.assign(&[tp(0), tp(0)]).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        c.assign(&[tp(9)]).unwrap_err().kind(),
        ErrorKind::UnknownPartition
    );
    assert_eq!(
        c.seek(&TopicPartition::new("t", 0), 99).unwrap_err().kind(),
        ErrorKind::OffsetOutOfRange
    );
}

#[test]
fn one_poll_waits_on_every_assigned_partition() {
    let (_dir, store) = setup(3, 0);
    let mut c = consumer(&store, &[("auto.offset.reset", "earliest")]);
    c.assign(&[tp(0), tp(1), tp(2)]).unwrap();
    let t0 = Instant::now();
    assert!(c.poll(Duration::from_millis(100)).unwrap().is_empty());
    assert!(t0.elapsed() >= Duration::from_millis(100));
    let writer = {
        let p = store.partition("t", 2).unwrap();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            p.append(&[Record::value(b"late")]).unwrap();
        })
    };
    let t0 = Instant::now();
    let got = c.poll(Duration::from_secs(10)).unwrap();
    assert_eq!((got.len(), got[0].partition), (1, 2));
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "woken by the append to the last partition"
    );
    writer.join().unwrap();
}

#[test]
fn max_poll_records_cuts_batches_and_the_next_poll_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let values_in: Vec<String> = (0..25).map(|i| format!("0:{i}")).collect();
    let records: Vec<Record> = values_in
        .iter()
        .map(|v| Record::value(v.as_bytes()))
        .collect();
    store.partition("t", 0).unwrap().append(&records).unwrap();
    let mut c = consumer(
        &store,
        &[
            ("auto.offset.reset", "earliest"),
            ("max.poll.records", "10"),
        ],
    );
    c.assign(&[tp(0)]).unwrap();
    let mut seen = Vec::new();
    for expected in [10, 10, 5, 0] {
        let got = c.poll(Duration::ZERO).unwrap();
        assert_eq!(got.len(), expected);
        seen.extend(values(&got));
    }
    assert_eq!(seen, values_in);
}

#[test]
fn presets_commit_before_or_after_processing() {
    let (_dir, store) = setup(1, 30);
    let base = [
        ("group.id", "g"),
        ("auto.offset.reset", "earliest"),
        ("max.poll.records", "10"),
    ];
    // at-most-once: what a poll returns is committed before it is returned.
    let mut c = consumer(
        &store,
        &[&base[..], &[("delivery", "at-most-once")]].concat(),
    );
    c.assign(&[tp(0)]).unwrap();
    c.poll(Duration::ZERO).unwrap();
    assert_eq!(c.committed(&tp(0)).unwrap().unwrap().offset, 10);
    drop(c);
    // at-least-once: committed after processing, i.e. at the next poll.
    let mut c = consumer(
        &store,
        &[
            &base[..],
            &[("delivery", "at-least-once"), ("group.id", "h")],
        ]
        .concat(),
    );
    c.assign(&[tp(0)]).unwrap();
    c.poll(Duration::ZERO).unwrap();
    assert_eq!(c.committed(&tp(0)).unwrap(), None, "not processed yet");
    c.poll(Duration::ZERO).unwrap();
    assert_eq!(c.committed(&tp(0)).unwrap().unwrap().offset, 10);
    c.close().unwrap();
    assert_eq!(
        c.committed(&tp(0)).unwrap().unwrap().offset,
        20,
        "close commits what was handed out"
    );
    // exactly-once commits only through a transaction; presets need a group.
    let mut c = consumer(&store, &[("group.id", "x"), ("delivery", "exactly-once")]);
    c.assign(&[tp(0)]).unwrap();
    assert_eq!(c.commit().unwrap_err().kind(), ErrorKind::InvalidConfig);
    let config = ConsumerConfig::from_pairs([("delivery", "at-least-once")]).unwrap();
    assert_eq!(
        Consumer::new(&store, config).err().unwrap().kind(),
        ErrorKind::InvalidConfig
    );
}

#[test]
fn committed_offsets_stay_bounded_however_often_they_are_committed() {
    let (dir, store) = setup(4, 1);
    let mut c = consumer(
        &store,
        &[("group.id", "g"), ("enable.auto.commit", "false")],
    );
    c.assign(&[tp(0), tp(1), tp(2), tp(3)]).unwrap();
    for i in 0..40_000i64 {
        let p = (i % 4) as u32;
        c.commit_offsets(&[(tp(p), i)]).unwrap();
    }
    for p in 0..4u32 {
        assert_eq!(
            c.committed(&tp(p)).unwrap().unwrap().offset,
            39_996 + i64::from(p)
        );
    }
    let segments = std::fs::read_dir(dir.path().join("__consumer_offsets-0"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count();
    assert!(segments <= 3, "{segments} segments: the log was compacted");
    let offsets_log = store.partition("__consumer_offsets", 0).unwrap();
    assert!(
        offsets_log.metrics().segments_deleted >= 2,
        "{:?}",
        offsets_log.metrics()
    );
    // A fresh reader (another handle) rebuilds the same view from the compacted log.
    let other = Store::open(store.path(), StoreOptions::default()).unwrap();
    let c2 = consumer(&other, &[("group.id", "g")]);
    for p in 0..4u32 {
        assert_eq!(
            c2.committed(&tp(p)).unwrap().unwrap().offset,
            39_996 + i64::from(p)
        );
    }
    assert_eq!(
        store
            .create_topic("__consumer_offsets", 1, TopicConfig::default())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidTopicName
    );
}
