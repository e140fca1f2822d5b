//! What a partition tells about itself to tools: the producers it remembers and
//! its segments with their sizes.

use oncelog::record::{BatchOptions, ControlRecordType, ProducerInfo};
use oncelog::{AppendOptions, Partition, ProducerState, Record, Store, StoreOptions};

fn send(p: &Partition, id: i64, epoch: i16, seq: i32, n: usize, transactional: bool) {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("v{i}").into_bytes()).collect();
    let records: Vec<Record> = values.iter().map(|v| Record::value(v)).collect();
    let options = AppendOptions {
        batch: BatchOptions {
            producer: ProducerInfo {
                producer_id: id,
                producer_epoch: epoch,
                base_sequence: seq,
            },
            transactional,
            ..BatchOptions::default()
        },
        durability: None,
    };
    p.append_with(&records, &options).unwrap();
}

#[test]
fn producers_lists_each_remembered_producer_with_its_open_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic_with("t", 1, &[]).unwrap();
    let p = store.partition("t", 0).unwrap();
    assert_eq!(p.producers().unwrap(), Vec::new());

    p.append(&[Record::value(b"plain")]).unwrap(); // offset 0, no producer id
    send(&p, 9, 2, 0, 3, false); // offsets 1-3, sequences 0-2
    send(&p, 4, 0, 0, 2, true); // offsets 4-5, a transaction opens at 4
    send(&p, 9, 2, 3, 1, false); // offset 6, sequence 3
    assert_eq!(
        p.producers().unwrap(),
        vec![
            ProducerState {
                producer_id: 4,
                epoch: 0,
                last_sequence: 1,
                last_offset: 5,
                open_transaction: Some(4),
            },
            ProducerState {
                producer_id: 9,
                epoch: 2,
                last_sequence: 3,
                last_offset: 6,
                open_transaction: None,
            },
        ]
    );

    // The COMMIT marker with the next epoch ends the transaction and the epoch's
    // batches.
    p.append_marker(
        ProducerInfo {
            producer_id: 4,
            producer_epoch: 1,
            base_sequence: -1,
        },
        ControlRecordType::Commit,
        0,
    )
    .unwrap();
    let four = p
        .producers()
        .unwrap()
        .into_iter()
        .find(|s| s.producer_id == 4);
    assert_eq!(
        four,
        Some(ProducerState {
            producer_id: 4,
            epoch: 1,
            last_sequence: -1,
            last_offset: -1,
            open_transaction: None,
        })
    );
}

#[test]
fn segment_info_gives_each_segments_base_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store
        .create_topic_with("t", 1, &[("segment.bytes", "1024")])
        .unwrap();
    let p = store.partition("t", 0).unwrap();
    let fresh = p.segment_info().unwrap();
    assert_eq!(fresh.len(), 1);
    assert_eq!(
        (fresh[0].base_offset, fresh[0].log_bytes, fresh[0].active),
        (0, 0, true)
    );

    let value = [7u8; 200];
    for _ in 0..12 {
        p.append(&[Record::value(&value)]).unwrap();
    }
    let segments = p.segment_info().unwrap();
    assert!(segments.len() >= 2, "1 KiB segments must have rolled");
    // Contiguous: each segment starts where the data of the one before ended, and
    // the bytes add up to what was appended.
    assert_eq!(segments[0].base_offset, 0);
    assert!(segments
        .windows(2)
        .all(|w| w[0].base_offset < w[1].base_offset));
    assert_eq!(
        segments.iter().filter(|s| s.active).count(),
        1,
        "only the last one is active"
    );
    assert!(segments.last().unwrap().active);
    let total: u64 = segments.iter().map(|s| s.log_bytes).sum();
    assert_eq!(total, p.metrics().bytes_appended);
    for s in &segments[..segments.len() - 1] {
        let path = dir
            .path()
            .join("t-0")
            .join(format!("{:020}.log", s.base_offset));
        assert_eq!(std::fs::metadata(path).unwrap().len(), s.log_bytes);
    }
}
