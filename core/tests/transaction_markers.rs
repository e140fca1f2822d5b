//! Transactions at the partition level: transactional batches hold the last stable
//! offset back until their COMMIT or ABORT marker; read_committed readers stop
//! there and skip aborted transactions and markers; aborts land in `.txnindex` in
//! Kafka's layout; markers and batches of an older epoch are fenced; all of it
//! survives reopening and recovery.

use oncelog::record::{BatchOptions, ControlRecordType, ProducerInfo};
use oncelog::{AppendOptions, ErrorKind, Partition, Record, Store, StoreOptions, TopicConfig};

fn txn_send(p: &Partition, id: i64, epoch: i16, seq: i32, value: &str) -> oncelog::Result<i64> {
    let options = AppendOptions {
        batch: BatchOptions {
            producer: ProducerInfo {
                producer_id: id,
                producer_epoch: epoch,
                base_sequence: seq,
            },
            transactional: true,
            ..BatchOptions::default()
        },
        durability: None,
    };
    Ok(p.append_with(&[Record::value(value.as_bytes())], &options)?
        .base_offset)
}

fn marker(p: &Partition, id: i64, epoch: i16, kind: ControlRecordType) -> oncelog::Result<i64> {
    let producer = ProducerInfo {
        producer_id: id,
        producer_epoch: epoch,
        base_sequence: -1,
    };
    Ok(p.append_marker(producer, kind, 0)?.base_offset)
}

fn values(p: &Partition, committed: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut r = p
        .reader(p.start_offset())
        .unwrap()
        .read_committed(committed);
    while let Some(b) = r.next_batch().unwrap() {
        if b.header().is_control() {
            out.push("<marker>".to_string());
            continue;
        }
        for rec in b.records() {
            out.push(String::from_utf8(rec.unwrap().value.unwrap().to_vec()).unwrap());
        }
    }
    out
}

fn setup() -> (tempfile::TempDir, Store, Partition) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let config =
        TopicConfig::from_pairs([("segment.bytes", "4096"), ("retention.ms", "-1")]).unwrap();
    store.create_topic("t", 1, config).unwrap();
    let p = store.partition("t", 0).unwrap();
    (dir, store, p)
}

#[test]
fn the_last_stable_offset_waits_for_the_oldest_open_transaction() {
    let (_dir, _store, p) = setup();
    p.append(&[Record::value(b"plain 0")]).unwrap();
    let first_a = txn_send(&p, 1, 0, 0, "a0").unwrap();
    p.append(&[Record::value(b"plain 1")]).unwrap();
    txn_send(&p, 2, 0, 0, "b0").unwrap();
    txn_send(&p, 1, 0, 1, "a1").unwrap();
    assert_eq!(p.last_stable_offset(), first_a, "held at A's first offset");
    assert_eq!(values(&p, true), ["plain 0"]);
    assert_eq!(values(&p, false), ["plain 0", "a0", "plain 1", "b0", "a1"]);

    // A commits: the LSO moves to B's first offset; A's records become visible.
    marker(&p, 1, 0, ControlRecordType::Commit).unwrap();
    assert_eq!(p.last_stable_offset(), 3);
    assert_eq!(values(&p, true), ["plain 0", "a0", "plain 1"]);
    // B aborts: nothing of B is ever visible to read_committed, and the LSO is the end.
    let abort_at = marker(&p, 2, 0, ControlRecordType::Abort).unwrap();
    assert_eq!(p.last_stable_offset(), p.end_offset());
    assert_eq!(values(&p, true), ["plain 0", "a0", "plain 1", "a1"]);
    assert_eq!(
        values(&p, false),
        ["plain 0", "a0", "plain 1", "b0", "a1", "<marker>", "<marker>"]
    );

    // The abort is in the segment's .txnindex, in Kafka's 34-byte layout.
    let dir = p.store().path().join("t-0");
    let txnindex: Vec<u8> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txnindex"))
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect();
    let mut expected = vec![0u8, 0];
    for v in [2i64, 3, abort_at, abort_at + 1] {
        expected.extend_from_slice(&v.to_be_bytes());
    }
    assert_eq!(txnindex, expected);
}

#[test]
fn older_epochs_are_fenced_and_markers_need_a_producer() {
    let (_dir, _store, p) = setup();
    txn_send(&p, 7, 1, 0, "x").unwrap();
    // The coordinator aborts with a bumped epoch, which fences epoch 1 everywhere.
    marker(&p, 7, 2, ControlRecordType::Abort).unwrap();
    assert_eq!(
        txn_send(&p, 7, 1, 1, "late").unwrap_err().kind(),
        ErrorKind::ProducerFenced
    );
    assert_eq!(
        marker(&p, 7, 1, ControlRecordType::Commit)
            .unwrap_err()
            .kind(),
        ErrorKind::ProducerFenced
    );
    // The new epoch starts its sequence at 0.
    txn_send(&p, 7, 2, 0, "new").unwrap();
    marker(&p, 7, 2, ControlRecordType::Commit).unwrap();
    assert_eq!(values(&p, true), ["new"]);
    // Transactional data without a producer, and markers without one, are refused.
    let bad = AppendOptions {
        batch: BatchOptions {
            transactional: true,
            ..BatchOptions::default()
        },
        durability: None,
    };
    assert_eq!(
        p.append_with(&[Record::value(b"?")], &bad)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    let none = ProducerInfo {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
    assert_eq!(
        p.append_marker(none, ControlRecordType::Commit, 0)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn open_and_aborted_transactions_survive_reopening_and_recovery() {
    let (dir, store, p) = setup();
    // Enough data to roll segments, with an aborted transaction in the middle and
    // one still open at the end.
    for i in 0..60 {
        let v = format!("plain {i} {}", "x".repeat(100));
        p.append(&[Record::value(v.as_bytes())]).unwrap();
        if i == 20 {
            txn_send(&p, 3, 0, 0, "aborted").unwrap();
        }
        if i == 30 {
            marker(&p, 3, 0, ControlRecordType::Abort).unwrap();
        }
    }
    let open_at = txn_send(&p, 4, 0, 0, "open").unwrap();
    for i in 60..80 {
        let v = format!("plain {i} {}", "x".repeat(100));
        p.append(&[Record::value(v.as_bytes())]).unwrap();
    }
    assert!(p.metrics().segments_rolled > 2);
    let committed_before = values(&p, true);
    assert!(!committed_before.contains(&"aborted".to_string()));
    drop(p);
    drop(store);

    let check = |what: &str| {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let p = store.partition("t", 0).unwrap();
        assert_eq!(
            p.last_stable_offset(),
            open_at,
            "{what}: the open transaction still holds the LSO"
        );
        assert_eq!(values(&p, true), committed_before, "{what}");
    };
    check("after a clean close");
    let partition_dir = dir.path().join("t-0");
    for entry in std::fs::read_dir(&partition_dir).unwrap() {
        let path = entry.unwrap().path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_string();
        if ext == "snapshot" || ext == "txnindex" || path.ends_with("recovery.checkpoint") {
            std::fs::remove_file(path).unwrap();
        }
    }
    check("after recovery without snapshots, transaction indexes or recovery point");

    // The transaction then commits, in a new process's view.
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    marker(&p, 4, 0, ControlRecordType::Commit).unwrap();
    assert_eq!(p.last_stable_offset(), p.end_offset());
    assert!(values(&p, true).contains(&"open".to_string()));
    assert!(!values(&p, true).contains(&"aborted".to_string()));
}
