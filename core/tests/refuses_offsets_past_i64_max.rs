//! A damaged store can claim an end offset close to `i64::MAX` (a segment file named
//! for such a base): an append that would need offsets past it is refused
//! (`offset_out_of_range`) instead of overflowing the end offset (a panic in debug
//! builds, a negative end offset in release ones). Found by the `open_store` fuzz
//! target (`fuzz/regressions/open_store/append-past-the-largest-offset`).

use oncelog::{ErrorKind, Record, Store, StoreOptions, TopicConfig};

#[test]
fn an_append_past_the_largest_offset_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store.create_topic("t", 1, TopicConfig::default()).unwrap();
    }
    // The partition's only segment, renamed to start two offsets below i64::MAX.
    let partition = dir.path().join("t-0");
    let base = i64::MAX - 2;
    for entry in std::fs::read_dir(&partition).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if let Some(ext) = name.strip_prefix("00000000000000000000.") {
            std::fs::rename(&path, partition.join(format!("{base:020}.{ext}"))).unwrap();
        }
    }
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    assert_eq!(p.end_offset(), base);
    let three = [Record::value(b"a"); 3];
    let err = p.append(&three).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OffsetOutOfRange);
    let info = p.append(&three[..2]).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (base, i64::MAX - 1));
    assert_eq!(p.end_offset(), i64::MAX);
    let err = p.append(&three[..1]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OffsetOutOfRange);
    assert_eq!(p.end_offset(), i64::MAX);
}
