//! Two opens of one store with different options. A topic's config (segment size,
//! retention, ...) belongs to the store: it is written at creation and every opener
//! reads it, whatever its own defaults. `StoreOptions` belong to the open: each
//! handle appends with its own durability, reservation and lock timeout. A store
//! of another format version is refused by name.

use std::time::Duration;

use oncelog::{Durability, ErrorKind, Record, Store, StoreOptions, TopicConfig};

fn options(segment_bytes: &str, retention_bytes: &str) -> StoreOptions {
    StoreOptions {
        default_topic_config: TopicConfig::from_pairs([
            ("segment.bytes", segment_bytes),
            ("retention.bytes", retention_bytes),
        ])
        .unwrap(),
        ..StoreOptions::default()
    }
}

#[test]
fn topic_config_is_the_stores_and_store_options_are_each_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Store::open(tmp.path(), options("4096", "-1")).unwrap();
    a.create_topic_with("t", 1, &[]).unwrap();

    // Opened meanwhile with other defaults and other per-open options.
    let b = Store::open(
        tmp.path(),
        StoreOptions {
            durability: Durability::Synced,
            reserve_bytes: 64 * 1024,
            prefault_bytes: 0,
            lock_timeout: Duration::from_secs(1),
            ..options("1048576", "1")
        },
    )
    .unwrap();
    assert_eq!(b.topic("t").unwrap().config.segment_bytes, 4096);
    let e = b
        .create_topic_with("t", 1, &[("segment.bytes", "1048576")])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TopicExists, "{e}");

    let pb = b.partition("t", 0).unwrap();
    for i in 0..200 {
        let info = pb
            .append(&[Record::value(format!("b{i}").as_bytes())])
            .unwrap();
        // b's own durability: synced before the append returns.
        assert!(pb.synced_offset() > info.last_offset);
    }
    let segments = pb.segment_info().unwrap();
    assert!(segments.len() > 3, "the stored 4 KiB segments roll");
    assert!(segments.iter().all(|s| s.log_bytes <= 4096));
    // b's default retention.bytes (1 byte) is not the topic's: nothing is deleted.
    assert_eq!(pb.apply_retention().unwrap(), 0);
    assert_eq!(pb.start_offset(), 0);

    let pa = a.partition("t", 0).unwrap();
    let mut reader = pa.reader(0).unwrap().verify_crc(true);
    let mut n = 0;
    while let Some(batch) = reader.next_batch().unwrap() {
        for r in batch.records() {
            assert_eq!(r.unwrap().value.unwrap(), format!("b{n}").as_bytes());
            n += 1;
        }
    }
    assert_eq!(n, 200);
}

#[test]
fn a_store_of_another_format_version_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Store::open(tmp.path(), StoreOptions::default()).unwrap());
    let meta = tmp.path().join("oncelog.meta");
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, text.replace("format_version=1", "format_version=0")).unwrap();
    let e = Store::open(tmp.path(), StoreOptions::default())
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::IncompatibleFormat, "{e}");
    assert!(e.message().contains("oncelog.meta"), "{e}");
}
