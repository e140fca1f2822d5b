//! A roll trims the sealed segment's `.log` to its last batch; a power cut can undo
//! that trim (the size change was never synced) while later segments, synced, hold
//! acknowledged records. Recovery must cut the sealed segment's tail and keep every
//! later segment, not take the tail for a torn end of the log.

use oncelog::{Record, Store, StoreOptions, TopicConfig};

fn segment_logs(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs
}

/// `keep_checkpoint`: the recovery point (past the first segment, after a clean
/// close) stays, as after a power cut that spared it; the first segment then fails
/// its trusted-segment check and is walked below the recovery point.
fn untrimmed_first_segment_keeps_later_ones(tail: u8, keep_checkpoint: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let config = TopicConfig {
        segment_bytes: 4096,
        ..TopicConfig::default()
    };
    store.create_topic("t", 1, config).unwrap();
    let p = store.partition("t", 0).unwrap();
    let values: Vec<Vec<u8>> = (0..60)
        .map(|i| format!("record {i:03} {}", "x".repeat(80)).into_bytes())
        .collect();
    for v in &values {
        p.append(&[Record::value(v)]).unwrap();
    }
    drop(p);
    store.close().unwrap();
    let part = dir.path().join("t-0");
    let logs = segment_logs(&part);
    assert!(
        logs.len() >= 3,
        "the records span several segments: {logs:?}"
    );
    // The trim of the first segment never reached the disk: its preallocated tail
    // is back. Without a recovery point, recovery walks every segment.
    let first = &logs[0];
    let trimmed = std::fs::metadata(first).unwrap().len();
    let mut bytes = std::fs::read(first).unwrap();
    bytes.resize(4096, tail);
    std::fs::write(first, &bytes).unwrap();
    if !keep_checkpoint {
        std::fs::remove_file(part.join("recovery.checkpoint")).unwrap();
    }

    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    assert_eq!(p.end_offset(), 60, "every segment after the first survives");
    let mut r = p.reader(0).unwrap().verify_crc(true);
    let mut read = Vec::new();
    while let Some(b) = r.next_batch().unwrap() {
        for rec in b.records() {
            read.push(rec.unwrap().value.unwrap().to_vec());
        }
    }
    assert_eq!(read, values);
    assert_eq!(
        std::fs::metadata(first).unwrap().len(),
        trimmed,
        "the tail is cut again"
    );
}

#[test]
fn an_untrimmed_zero_tail_keeps_later_segments() {
    untrimmed_first_segment_keeps_later_ones(0, false);
}

#[test]
fn an_untrimmed_stale_tail_keeps_later_segments() {
    untrimmed_first_segment_keeps_later_ones(0xab, false);
}

#[test]
fn an_untrimmed_tail_below_the_recovery_point_is_not_taken_for_lost_records() {
    untrimmed_first_segment_keeps_later_ones(0, true);
    untrimmed_first_segment_keeps_later_ones(0xab, true);
}
