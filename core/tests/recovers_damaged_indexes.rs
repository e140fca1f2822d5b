//! Index files lost or damaged while the store was closed are rebuilt from the log
//! by the next opener: every record stays readable at its offset, seeks and
//! timestamp lookups land where they should.

use std::path::Path;

use oncelog::{Record, Store, StoreOptions, TopicConfig};

const RECORDS: i64 = 400;

fn build(dir: &Path) {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let config = TopicConfig::from_pairs([
        ("segment.bytes", "4096"),
        ("index.interval.bytes", "256"),
        ("retention.ms", "-1"),
    ])
    .unwrap();
    store.create_topic("t", 1, config).unwrap();
    let p = store.partition("t", 0).unwrap();
    for i in 0..RECORDS {
        let v = format!("record {i}");
        p.append(&[Record::value(v.as_bytes()).with_timestamp(10_000 + i)])
            .unwrap();
    }
    assert!(p.metrics().segments_rolled >= 6);
}

fn check(dir: &Path, what: &str) {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    assert_eq!(p.end_offset(), RECORDS, "{what}");
    for from in [0, 1, 77, 150, 230, 399, 400] {
        let mut r = p.reader(from).unwrap().verify_crc(true);
        let mut expect = from;
        while let Some(b) = r.next_batch().unwrap() {
            for rec in b.records() {
                let rec = rec.unwrap();
                assert_eq!(rec.offset, expect, "{what}: read from {from}");
                assert_eq!(
                    rec.value.unwrap(),
                    format!("record {expect}").as_bytes(),
                    "{what}"
                );
                expect += 1;
            }
        }
        assert_eq!(expect, RECORDS, "{what}: read from {from}");
    }
    for ts in [10_000, 10_123, 10_399] {
        assert_eq!(
            p.offset_for_timestamp(ts).unwrap(),
            Some(ts - 10_000),
            "{what}: time {ts}"
        );
    }
}

fn segment_files(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("t-0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

#[test]
fn lost_and_damaged_index_files_are_rebuilt() {
    type Damage = fn(&Path);
    let cases: [(&str, Damage); 5] = [
        ("offset index deleted", |p| {
            std::fs::remove_file(p.with_extension("index")).unwrap()
        }),
        ("time index deleted", |p| {
            std::fs::remove_file(p.with_extension("timeindex")).unwrap()
        }),
        ("offset index garbage", |p| {
            std::fs::write(p.with_extension("index"), [0x5a; 40]).unwrap()
        }),
        ("time index cut mid-entry", |p| {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(p.with_extension("timeindex"))
                .unwrap();
            f.set_len(5).unwrap();
        }),
        ("offset index zeroed", |p| {
            let path = p.with_extension("index");
            let len = std::fs::metadata(&path).unwrap().len() as usize;
            std::fs::write(&path, vec![0; len.max(16)]).unwrap();
        }),
    ];
    for (what, damage) in cases {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        let logs = segment_files(dir.path(), "log");
        // A sealed segment in the middle, and the active one.
        damage(&logs[2]);
        damage(logs.last().unwrap());
        check(dir.path(), what);
        for index in segment_files(dir.path(), "index") {
            assert_eq!(
                std::fs::metadata(&index).unwrap().len() % 8,
                0,
                "{what}: {index:?}"
            );
        }
    }
}
