//! Append and read through one process: offsets, seeks, rolls, timestamps,
//! retention and reopening.

use std::time::Duration;

use oncelog::{ErrorKind, Header, Record, Store, StoreOptions, TopicConfig};

fn small_segments() -> TopicConfig {
    TopicConfig::from_pairs([
        ("segment.bytes", "4096"),
        ("index.interval.bytes", "256"),
        ("retention.ms", "-1"),
    ])
    .unwrap()
}

fn values(p: &oncelog::Partition, from: i64) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut r = p.reader(from).unwrap().verify_crc(true);
    while let Some(b) = r.next_batch().unwrap() {
        for rec in b.records() {
            let rec = rec.unwrap();
            out.push((rec.offset, rec.value.unwrap_or_default().to_vec()));
        }
    }
    out
}

#[test]
fn appends_get_dense_offsets_and_read_back_from_any_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("t", 2, small_segments()).unwrap();
    let p = store.partition("t", 1).unwrap();
    let mut expected = Vec::new();
    for i in 0..300i64 {
        let v = format!("value-{i}");
        let h = [Header {
            key: "k",
            value: Some(b"h"),
        }];
        let recs = [Record::keyed(b"key", v.as_bytes())
            .with_headers(&h)
            .with_timestamp(1_000 + i)];
        let info = p.append(&recs).unwrap();
        assert_eq!(info.base_offset, i);
        expected.push((i, v.into_bytes()));
    }
    assert_eq!(p.end_offset(), 300);
    assert!(p.metrics().segments_rolled > 3, "small segments must roll");
    for from in [0, 1, 57, 150, 299, 300] {
        assert_eq!(
            values(&p, from),
            expected[from as usize..].to_vec(),
            "from {from}"
        );
    }
    assert_eq!(
        p.reader(301).err().unwrap().kind(),
        ErrorKind::OffsetOutOfRange
    );
    assert_eq!(p.offset_for_timestamp(1_000).unwrap(), Some(0));
    assert_eq!(p.offset_for_timestamp(1_150).unwrap(), Some(150));
    assert_eq!(p.offset_for_timestamp(1_299).unwrap(), Some(299));
    assert_eq!(p.offset_for_timestamp(5_000).unwrap(), None);
    // The other partition is untouched.
    assert_eq!(store.partition("t", 0).unwrap().end_offset(), 0);
}

#[test]
fn a_seek_into_the_middle_of_a_batch_skips_earlier_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    let recs: Vec<Vec<u8>> = (0..10).map(|i| vec![i as u8]).collect();
    let recs: Vec<Record> = recs.iter().map(|v| Record::value(v)).collect();
    p.append(&recs).unwrap();
    let got = values(&p, 4);
    assert_eq!(got.first().unwrap().0, 4);
    assert_eq!(got.len(), 6);
}

#[test]
fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store.create_topic("t", 1, small_segments()).unwrap();
        let p = store.partition("t", 0).unwrap();
        for i in 0..100u32 {
            p.append(&[Record::value(&i.to_be_bytes())]).unwrap();
        }
    }
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    assert_eq!(p.end_offset(), 100);
    let got = values(&p, 0);
    assert_eq!(got.len(), 100);
    for (i, (off, v)) in got.iter().enumerate() {
        assert_eq!(*off, i as i64);
        assert_eq!(v, &(i as u32).to_be_bytes());
    }
    p.append(&[Record::value(b"more")]).unwrap();
    assert_eq!(p.end_offset(), 101);
}

#[test]
fn retention_by_size_deletes_whole_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let config =
        TopicConfig::from_pairs([("segment.bytes", "4096"), ("retention.bytes", "8192")]).unwrap();
    store.create_topic("t", 1, config).unwrap();
    let p = store.partition("t", 0).unwrap();
    while p.metrics().segments_rolled == 0 {
        p.append(&[Record::value(&[7u8; 100])]).unwrap();
    }
    let before = p.end_offset();
    // Positioned in the first segment, now sealed.
    let early_reader = p.reader(0).unwrap();
    for _ in before..400 {
        p.append(&[Record::value(&[7u8; 100])]).unwrap();
    }
    assert!(p.start_offset() > 0, "old segments were deleted");
    assert!(p.metrics().segments_deleted > 0);
    assert_eq!(
        p.reader(0).err().unwrap().kind(),
        ErrorKind::OffsetOutOfRange
    );
    // A reader that started before the deletion keeps reading the segment it has
    // mapped, then gets a clear error when it needs one that is gone.
    let mut r = early_reader;
    let mut read = 0;
    let err = loop {
        match r.next_batch() {
            Ok(Some(b)) => read += b.records().count(),
            Ok(None) => panic!("the reader reached the end through deleted segments"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::OffsetOutOfRange, "{err}");
    assert!(read > 0, "the segment the reader had mapped stays readable");
    let start = p.start_offset();
    assert_eq!(values(&p, start).len() as i64, 400 - start);
}

#[test]
fn wait_times_out_without_data_and_wakes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    let t0 = std::time::Instant::now();
    assert!(!p.wait_for(0, Duration::from_millis(50)).unwrap());
    assert!(t0.elapsed() >= Duration::from_millis(50));
    let p2 = p.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        p2.append(&[Record::value(b"x")]).unwrap();
    });
    assert!(p.wait_for(0, Duration::from_secs(10)).unwrap());
    writer.join().unwrap();
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(
        store
            .create_topic("a b", 1, TopicConfig::default())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidTopicName
    );
    assert_eq!(
        store
            .create_topic("t", 0, TopicConfig::default())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    store
        .create_topic("a.b", 1, TopicConfig::default())
        .unwrap();
    assert_eq!(
        store
            .create_topic("a.b", 1, TopicConfig::default())
            .unwrap_err()
            .kind(),
        ErrorKind::TopicExists
    );
    assert_eq!(
        store
            .create_topic("a_b", 1, TopicConfig::default())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidTopicName
    );
    assert_eq!(
        store.partition("nope", 0).err().unwrap().kind(),
        ErrorKind::UnknownTopic
    );
    assert_eq!(
        store.partition("a.b", 1).err().unwrap().kind(),
        ErrorKind::UnknownPartition
    );
    let p = store.partition("a.b", 0).unwrap();
    assert_eq!(
        p.append(&[]).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    let big = vec![0u8; 2 * 1024 * 1024];
    assert_eq!(
        p.append(&[Record::value(&big)]).unwrap_err().kind(),
        ErrorKind::RecordTooLarge
    );
    assert_eq!(p.end_offset(), 0, "failed appends leave nothing behind");
    assert_eq!(
        store
            .create_topic_with("c", 1, &[("segment.bytes", "x")])
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidConfig
    );
    let topics: Vec<String> = store
        .topics()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(topics, vec!["a.b".to_string()]);
}

/// A store whose appends are `synced` by default, with one single-partition topic.
fn synced_store() -> (tempfile::TempDir, Store, oncelog::Partition) {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        durability: oncelog::Durability::Synced,
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), options).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    (dir, store, p)
}

/// Appends `per_thread` records from each of `threads` threads, checking that each
/// append returns with its record synced.
fn append_synced_from_threads(p: &oncelog::Partition, threads: usize, per_thread: usize) {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || {
                for _ in 0..per_thread {
                    let info = p.append(&[Record::value(b"durable")]).unwrap();
                    assert!(p.synced_offset() > info.last_offset);
                }
            })
        })
        .collect();
    for t in handles {
        t.join().unwrap();
    }
}

#[test]
fn synced_appends_advance_the_synced_offset() {
    let (_dir, _store, p) = synced_store();
    append_synced_from_threads(&p, 4, 25);
    assert_eq!(p.end_offset(), 100);
    let m = p.metrics();
    assert!(
        m.syncs >= 1 && m.syncs <= 100,
        "group commit: {} syncs for 100 appends",
        m.syncs
    );
}

/// The CPUs the calling thread may run on.
fn affinity() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is an empty set; the call writes at most its size,
    // and every index tested is below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Restricts the calling thread to `cpus`.
fn set_affinity(cpus: &[usize]) {
    // SAFETY: as in `affinity`; the indexes come from a cpu_set_t.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set),
            0
        );
    }
}

#[test]
fn synced_appends_leave_each_threads_cpu_affinity_as_it_was() {
    // A leader may hold itself on the CPU where syncs complete fastest for its sync;
    // it must give its own affinity back, whatever it was.
    let (_dir, _store, p) = synced_store();
    let all = affinity();
    let masks: Vec<Vec<usize>> = vec![all.clone(), all[..1].to_vec(), all.clone()];
    let handles: Vec<_> = masks
        .into_iter()
        .map(|mask| {
            let p = p.clone();
            std::thread::spawn(move || {
                set_affinity(&mask);
                for i in 0..300 {
                    let info = p.append(&[Record::value(b"durable")]).unwrap();
                    assert!(p.synced_offset() > info.last_offset);
                    assert_eq!(affinity(), mask, "after synced append {i}");
                }
            })
        })
        .collect();
    for t in handles {
        t.join().unwrap();
    }
    assert_eq!(p.end_offset(), 900);
}

#[test]
fn segments_roll_by_time_and_retention_deletes_them_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let config =
        TopicConfig::from_pairs([("segment.ms", "1000"), ("retention.ms", "60000")]).unwrap();
    store.create_topic("t", 1, config).unwrap();
    let p = store.partition("t", 0).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Two hours ago, in steps of 10 minutes: every step is past segment.ms, so each
    // append after the first rolls; all but the newest are past retention.ms.
    for i in 0..12 {
        let ts = now - 2 * 3600 * 1000 + i * 600 * 1000;
        p.append(&[Record::value(b"old").with_timestamp(ts)])
            .unwrap();
    }
    p.append(&[Record::value(b"new").with_timestamp(now)])
        .unwrap();
    assert!(p.metrics().segments_rolled >= 12, "{:?}", p.metrics());
    // Retention ran at each roll: every segment whose newest record is older than a
    // minute is gone; the active one stays whatever its age.
    assert_eq!(p.start_offset(), 12);
    assert_eq!(values(&p, 12), vec![(12, b"new".to_vec())]);
    assert_eq!(p.apply_retention().unwrap(), 0);
}

#[test]
fn recovery_verifies_only_the_unsynced_tail() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store.create_topic("t", 1, TopicConfig::default()).unwrap();
        let p = store.partition("t", 0).unwrap();
        for _ in 0..50 {
            p.append(&[Record::value(b"x")]).unwrap();
        }
    }
    // A clean close synced everything and moved the recovery point to the end.
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let m = store.partition("t", 0).unwrap().metrics();
    assert_eq!(
        (m.recovery_verified_batches, m.recovery_truncations),
        (0, 0)
    );
    drop(store);
    // Without a recovery point every batch is unsynced tail and gets verified.
    std::fs::remove_file(dir.path().join("t-0").join("recovery.checkpoint")).unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    assert_eq!(p.metrics().recovery_verified_batches, 50);
    assert_eq!(p.end_offset(), 50);
}

#[test]
fn a_roll_syncs_the_sealed_segment_and_moves_the_recovery_point_to_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let config =
        TopicConfig::from_pairs([("segment.bytes", "262144"), ("retention.ms", "-1")]).unwrap();
    store.create_topic("t", 1, config).unwrap();
    let p = store.partition("t", 0).unwrap();
    let value = |i: i64| format!("{i:0>1000}").into_bytes();
    p.append(&[Record::value(&value(0))]).unwrap();
    // A reader opened before the rolls, one record in.
    let mut early = p.reader(0).unwrap().verify_crc(true);
    assert_eq!(early.next_batch().unwrap().unwrap().records().count(), 1);
    let mut next = 1;
    while p.segment_info().unwrap().len() < 3 {
        p.append(&[Record::value(&value(next))]).unwrap();
        next += 1;
    }
    let active_base = p.segment_info().unwrap().last().unwrap().base_offset;
    let checkpoint = dir.path().join("t-0").join("recovery.checkpoint");
    let recovery_point = || {
        let text = std::fs::read_to_string(&checkpoint).unwrap_or_default();
        text.lines().nth(1).and_then(|l| l.parse::<i64>().ok())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while recovery_point() != Some(active_base) {
        assert!(
            std::time::Instant::now() < deadline,
            "the recovery point stays at {:?}, the active segment starts at {active_base}",
            recovery_point()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The sealed segments are synced; the active one, which has a record already,
    // is left to its writer (`written` appends are not synced).
    assert_eq!(p.synced_offset(), active_base);
    assert!(p.end_offset() > active_base);
    // The sealed segments' pages were given back by the writable mapping; their
    // bytes read the same, through the early reader and a new one.
    let mut rest = Vec::new();
    while let Some(b) = early.next_batch().unwrap() {
        for r in b.records() {
            let r = r.unwrap();
            rest.push((r.offset, r.value.unwrap().to_vec()));
        }
    }
    let expected: Vec<_> = (1..next).map(|i| (i, value(i))).collect();
    assert_eq!(rest, expected);
    assert_eq!(values(&p, 1), expected);
}

#[test]
fn appends_read_back_across_the_switch_to_file_writes_reservations_and_rolls() {
    // Unsynced appends go through the mapping into `fallocate`d space; once the
    // process syncs, appends are written with `pwrite` into zeros written ahead.
    // Every record must read back the same across both, across roll and reopen.
    let dir = tempfile::tempdir().unwrap();
    let config =
        TopicConfig::from_pairs([("segment.bytes", "3145728"), ("retention.ms", "-1")]).unwrap();
    let value = |i: i64| format!("{i:0>700}").into_bytes();
    let mut next = 0i64;
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store.create_topic("t", 1, config).unwrap();
        let p = store.partition("t", 0).unwrap();
        let append = |i: i64, durability| {
            let v = value(i);
            let options = oncelog::AppendOptions {
                durability: Some(durability),
                ..oncelog::AppendOptions::default()
            };
            p.append_with(&[Record::value(&v)], &options).unwrap()
        };
        while next < 2000 {
            assert_eq!(append(next, oncelog::Durability::Written).base_offset, next);
            next += 1;
        }
        while p.metrics().segments_rolled < 2 {
            let durability = if next % 50 == 0 {
                oncelog::Durability::Synced
            } else {
                oncelog::Durability::Written
            };
            assert_eq!(append(next, durability).base_offset, next);
            next += 1;
        }
        assert!(p.synced_offset() > 2000);
        let expected: Vec<_> = (0..next).map(|i| (i, value(i))).collect();
        assert_eq!(values(&p, 0), expected);
    }
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    assert_eq!(p.end_offset(), next);
    let expected: Vec<_> = (0..next).map(|i| (i, value(i))).collect();
    assert_eq!(values(&p, 0), expected);
    // And the reopened log takes appends where it ended.
    p.append(&[Record::value(b"after")]).unwrap();
    assert_eq!(values(&p, next), vec![(next, b"after".to_vec())]);
}

#[test]
fn synced_appends_from_many_threads_return_synced_while_the_cpus_are_busy() {
    // Threads waiting for a group commit yield in a loop while the machine is
    // idle and sleep once other work wants the CPUs: both ways, an append returns
    // only when its sync covered it, and none waits forever.
    let (_dir, _store, p) = synced_store();
    let busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let hogs: Vec<_> = (0..2)
        .map(|_| {
            let busy = busy.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while busy.load(std::sync::atomic::Ordering::Relaxed) {
                    n = n.wrapping_add(1);
                    std::hint::black_box(n);
                }
            })
        })
        .collect();
    append_synced_from_threads(&p, 6, 60);
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    for t in hogs {
        t.join().unwrap();
    }
    assert_eq!(p.end_offset(), 360);
    assert!(p.metrics().syncs <= 360);
}
