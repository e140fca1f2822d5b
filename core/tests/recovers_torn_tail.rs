//! A segment whose last batch is cut short at every byte position, or overwritten
//! with garbage, reopens at the last whole batch, every time.

use std::path::{Path, PathBuf};

use oncelog::{Record, Store, StoreOptions, TopicConfig};

struct Fixture {
    _dir: tempfile::TempDir,
    store: PathBuf,
    log: PathBuf,
    original: Vec<u8>,
    last_batch_start: usize,
    last_batch_base: i64,
    records_before_last: Vec<Vec<u8>>,
}

fn build() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("store");
    let store = Store::open(&store_path, StoreOptions::default()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    let mut all = Vec::new();
    let mut last = None;
    for i in 0..12u32 {
        let values: Vec<Vec<u8>> = (0..=i % 3)
            .map(|j| format!("batch {i} record {j}").into_bytes())
            .collect();
        let recs: Vec<Record> = values.iter().map(|v| Record::keyed(b"k", v)).collect();
        last = Some(p.append(&recs).unwrap());
        all.push(values);
    }
    drop(p);
    store.close().unwrap();
    let last = last.unwrap();
    let log = store_path.join("t-0").join(format!("{:020}.log", 0));
    let original = std::fs::read(&log).unwrap();
    let last_values = all.pop().unwrap();
    let last_len: usize = {
        // The last batch is the tail of the file: find it by its base offset field.
        let mut pos = 0usize;
        let mut start = 0usize;
        while pos < original.len() {
            start = pos;
            let len = i32::from_be_bytes(original[pos + 8..pos + 12].try_into().unwrap()) as usize;
            pos += 12 + len;
        }
        assert_eq!(
            pos,
            original.len(),
            "clean close trims the log to its last batch"
        );
        original.len() - start
    };
    assert!(!last_values.is_empty());
    Fixture {
        _dir: dir,
        store: store_path,
        log,
        last_batch_start: original.len() - last_len,
        original,
        last_batch_base: last.base_offset,
        records_before_last: all.into_iter().flatten().collect(),
    }
}

fn reopen_and_check(f: &Fixture, what: &str, expect_truncation: bool) {
    let store = Store::open(&f.store, StoreOptions::default())
        .unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
    let p = store.partition("t", 0).unwrap();
    assert_eq!(
        p.end_offset(),
        f.last_batch_base,
        "{what}: end offset after recovery"
    );
    assert_eq!(
        p.metrics().recovery_truncations,
        u64::from(expect_truncation),
        "{what}: recovery reports cutting the tail"
    );
    let mut seen = Vec::new();
    let mut r = p.reader(0).unwrap().verify_crc(true);
    while let Some(b) = r.next_batch().unwrap() {
        for rec in b.records() {
            seen.push(rec.unwrap().value.unwrap().to_vec());
        }
    }
    assert_eq!(seen, f.records_before_last, "{what}: surviving records");
    // The log takes appends again at the recovered end.
    let info = p.append(&[Record::value(b"after recovery")]).unwrap();
    assert_eq!(info.base_offset, f.last_batch_base, "{what}");
    drop(p);
    store.close().unwrap();
}

fn restore(f: &Fixture, bytes: &[u8]) {
    std::fs::write(&f.log, bytes).unwrap();
    // Without a checkpoint, as after a crash: the tail is unsynced and verified.
    let _ = std::fs::remove_file(checkpoint(&f.store));
}

fn checkpoint(store: &Path) -> PathBuf {
    store.join("t-0").join("recovery.checkpoint")
}

#[test]
fn last_batch_truncated_at_every_byte_recovers_to_the_previous_batch() {
    let f = build();
    for cut in f.last_batch_start..f.original.len() {
        restore(&f, &f.original[..cut]);
        // A tail of zeros is indistinguishable from reserved space: not a cut.
        let torn = f.original[f.last_batch_start..cut].iter().any(|b| *b != 0);
        reopen_and_check(&f, &format!("cut at byte {cut}"), torn);
    }
}

#[test]
fn last_batch_overwritten_with_garbage_recovers_to_the_previous_batch() {
    let f = build();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let len = f.original.len() - f.last_batch_start;
    for round in 0..200 {
        let mut bytes = f.original.clone();
        // Garbage over a random stretch of the last batch (sometimes one byte).
        let from = f.last_batch_start + (next() as usize % len);
        let mut n = if round % 4 == 0 {
            1
        } else {
            1 + next() as usize % (f.original.len() - from)
        };
        // partitionLeaderEpoch (bytes 12..16) is outside the CRC, as in Kafka: garbage
        // there alone is undetectable, so every round also hits a byte past it.
        let epoch = f.last_batch_start + 12..f.last_batch_start + 16;
        if epoch.contains(&from) && epoch.contains(&(from + n - 1)) {
            n = epoch.end - from + 1;
        }
        for b in &mut bytes[from..from + n] {
            let g = next() as u8;
            *b = if g == *b { !g } else { g };
        }
        restore(&f, &bytes);
        reopen_and_check(
            &f,
            &format!("round {round}: garbage over bytes {from}..{}", from + n),
            true,
        );
    }
}

#[test]
fn garbage_appended_after_the_last_batch_is_cut_off() {
    let f = build();
    let mut bytes = f.original.clone();
    bytes.extend(std::iter::repeat_n(0xAB, 300));
    restore(&f, &bytes);
    let store = Store::open(&f.store, StoreOptions::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    assert_eq!(p.end_offset(), f.last_batch_base + 1 + (11 % 3));
}
