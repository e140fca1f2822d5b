//! Idempotent appends: a retried batch (same producer id, epoch and sequence) is
//! not appended again and gets its original offsets; a gap or an old epoch is
//! refused; what the partition remembers survives a reopen and segment rolls.

use oncelog::record::{BatchOptions, ProducerInfo};
use oncelog::{
    AppendInfo, AppendOptions, ErrorKind, Partition, Record, Store, StoreOptions, TopicConfig,
};

fn send(
    p: &Partition,
    id: i64,
    epoch: i16,
    seq: i32,
    values: &[&[u8]],
) -> oncelog::Result<AppendInfo> {
    let records: Vec<Record> = values.iter().map(|v| Record::value(v)).collect();
    let options = AppendOptions {
        batch: BatchOptions {
            producer: ProducerInfo {
                producer_id: id,
                producer_epoch: epoch,
                base_sequence: seq,
            },
            ..BatchOptions::default()
        },
        durability: None,
    };
    p.append_with(&records, &options)
}

fn count_records(p: &Partition) -> usize {
    let mut r = p.reader(p.start_offset()).unwrap();
    let mut n = 0;
    while let Some(b) = r.next_batch().unwrap() {
        n += b.records().count();
    }
    n
}

#[test]
fn a_retry_after_a_lost_acknowledgement_is_not_appended_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    let id = store.allocate_producer_id().unwrap();
    assert!(id >= 1);
    assert_ne!(
        store.allocate_producer_id().unwrap(),
        id,
        "ids are never reused"
    );

    let first = send(&p, id, 0, 0, &[b"a", b"b", b"c"]).unwrap();
    assert_eq!(
        (first.base_offset, first.last_offset, first.duplicate),
        (0, 2, false)
    );
    // The acknowledgement was lost: the producer sends the same batch again.
    let retry = send(&p, id, 0, 0, &[b"a", b"b", b"c"]).unwrap();
    assert_eq!(
        (retry.base_offset, retry.last_offset, retry.duplicate),
        (0, 2, true)
    );
    assert_eq!(p.end_offset(), 3, "nothing was appended");
    assert_eq!(p.metrics().duplicates, 1);
    // The next batch continues the sequence.
    let next = send(&p, id, 0, 3, &[b"d"]).unwrap();
    assert_eq!((next.base_offset, next.duplicate), (3, false));
    assert_eq!(count_records(&p), 4);
}

#[test]
fn gaps_old_epochs_and_unknown_producers_are_refused_and_append_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    send(&p, 5, 1, 0, &[b"x", b"y"]).unwrap();
    let refused = [
        (send(&p, 5, 1, 3, &[b"gap"]), ErrorKind::OutOfOrderSequence),
        (send(&p, 5, 0, 2, &[b"zombie"]), ErrorKind::ProducerFenced),
        (
            send(&p, 6, 0, 9, &[b"unknown"]),
            ErrorKind::OutOfOrderSequence,
        ),
        (
            send(&p, 5, 2, 4, &[b"new epoch, not from 0"]),
            ErrorKind::OutOfOrderSequence,
        ),
    ];
    for (i, (result, kind)) in refused.into_iter().enumerate() {
        assert_eq!(result.unwrap_err().kind(), kind, "case {i}");
    }
    assert_eq!(p.end_offset(), 2);
    // A new epoch restarts at 0 and fences the old one.
    send(&p, 5, 2, 0, &[b"epoch 2"]).unwrap();
    let fenced = send(&p, 5, 1, 2, &[b"late"]).unwrap_err();
    assert_eq!(fenced.kind(), ErrorKind::ProducerFenced);
    assert!(fenced.is_fatal());
    // Non-idempotent appends are not checked at all.
    let plain = p
        .append(&[Record::value(b"plain"), Record::value(b"plain")])
        .unwrap();
    assert!(!plain.duplicate);
    assert_eq!(p.end_offset(), 5);
}

#[test]
fn the_partition_remembers_producers_across_rolls_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        TopicConfig::from_pairs([("segment.bytes", "2048"), ("retention.ms", "-1")]).unwrap();
    let mut sent = Vec::new();
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store.create_topic("t", 1, config).unwrap();
        let p = store.partition("t", 0).unwrap();
        // Three producers interleaved, enough to roll many segments.
        for i in 0..120 {
            let id = 1 + (i % 3) as i64;
            let seq = (i / 3) * 2;
            let v = format!("producer {id} seq {seq}");
            let info = send(&p, id, 0, seq, &[v.as_bytes(), b"second"]).unwrap();
            sent.push((id, seq, v, info));
        }
        assert!(p.metrics().segments_rolled > 5);
    }
    let check = |what: &str| {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let p = store.partition("t", 0).unwrap();
        // The last five batches of each producer are known: retries are duplicates
        // with their original offsets, even where they lie in sealed segments.
        for (id, seq, v, info) in &sent[sent.len() - 15..] {
            let retry = send(&p, *id, 0, *seq, &[v.as_bytes(), b"second"]).unwrap();
            assert!(retry.duplicate, "{what}: producer {id} seq {seq}");
            assert_eq!(
                (retry.base_offset, retry.last_offset),
                (info.base_offset, info.last_offset),
                "{what}"
            );
        }
        // An older one is out of order, and the sequence continues after the last.
        let (id, seq, v, _) = &sent[sent.len() - 18];
        assert_eq!(
            send(&p, *id, 0, *seq, &[v.as_bytes(), b"second"])
                .unwrap_err()
                .kind(),
            ErrorKind::OutOfOrderSequence,
            "{what}"
        );
        assert_eq!(p.end_offset(), 240, "{what}");
    };
    let partition_dir = dir.path().join("t-0");
    let snapshots = || {
        let mut v: Vec<_> = std::fs::read_dir(&partition_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "snapshot"))
            .collect();
        v.sort();
        v
    };
    assert!(snapshots().len() > 5, "a snapshot at every roll");
    check("after a clean close (from the active segment's snapshot)");
    std::fs::write(snapshots().last().unwrap(), b"garbage").unwrap();
    check("with the newest snapshot damaged (an older one plus a segment's headers)");
    for path in snapshots() {
        std::fs::remove_file(path).unwrap();
    }
    check("without snapshots (every segment's headers)");
    std::fs::remove_file(partition_dir.join("recovery.checkpoint")).unwrap();
    check("without a recovery point (everything walked and verified)");
}

#[test]
fn threads_of_one_store_get_distinct_producer_ids_and_share_first_use_of_internal_logs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store
        .create_topic("t", 1, oncelog::TopicConfig::default())
        .unwrap();
    let start = std::sync::Barrier::new(8);
    let ids: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (store, start) = (&store, &start);
                s.spawn(move || {
                    start.wait();
                    // The first transactional producers create __transaction_state
                    // together.
                    let config = oncelog::ProducerConfig::from_pairs([(
                        "transactional.id",
                        format!("t{i}").as_str(),
                    )])
                    .unwrap();
                    let p = oncelog::Producer::new(store, config).unwrap();
                    p.init_transactions().unwrap();
                    let mut ids = vec![p.identity().unwrap().0];
                    ids.extend((0..50).map(|_| store.allocate_producer_id().unwrap()));
                    ids
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "every id handed out once");
}
