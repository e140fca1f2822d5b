//! `produce` and `consume` as processes against stores the core reads and writes.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::num::NonZeroU32;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{on, on_with_input};
use oncelog::offsets::OffsetStore;
use oncelog::partitioner::partition_for_key;
use oncelog::{Header, Producer, ProducerConfig, ProducerRecord, Record, Store, StoreOptions};

/// Every record of a topic: (partition, offset, key, value, headers).
type Row = (
    u32,
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Vec<u8>)>,
);

fn read_all(store: &Store, topic: &str) -> Vec<Row> {
    let partitions = store.topic(topic).unwrap().partitions;
    let mut rows = Vec::new();
    for p in 0..partitions {
        let part = store.partition(topic, p).unwrap();
        let mut reader = part.reader(part.start_offset()).unwrap();
        while let Some(batch) = reader.next_batch().unwrap() {
            if batch.header().is_control() {
                continue;
            }
            for r in batch.records() {
                let r = r.unwrap();
                rows.push((
                    p,
                    r.offset,
                    r.key.map(<[u8]>::to_vec),
                    r.value.map(<[u8]>::to_vec),
                    r.headers()
                        .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                        .collect(),
                ));
            }
        }
    }
    rows
}

#[test]
fn produce_sends_one_record_per_line_with_keys_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    on(dir.path(), &["create-topic", "t", "--partitions", "3"]).ok();
    let r = on_with_input(
        dir.path(),
        &[
            "produce",
            "t",
            "--key-separator",
            "::",
            "--header",
            "src=cli",
            "--header",
            "eq=a=b",
        ],
        b"k1::v1\nk2::v2:x\r\n::empty key\nk3::\n",
    )
    .ok();
    assert_eq!(r.stdout, "", "produce keeps stdout quiet");
    assert!(
        r.stderr.starts_with("produced 4 records to t (partition"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1);

    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mut rows = read_all(&s, "t");
    rows.sort_by(|a, b| a.2.cmp(&b.2));
    let three = NonZeroU32::new(3).unwrap();
    let expected: Vec<(&[u8], &[u8])> = vec![
        (b"", b"empty key"),
        (b"k1", b"v1"),
        (b"k2", b"v2:x"),
        (b"k3", b""),
    ];
    assert_eq!(rows.len(), 4);
    for (row, (key, value)) in rows.iter().zip(expected) {
        assert_eq!(row.2.as_deref(), Some(key));
        assert_eq!(row.3.as_deref(), Some(value));
        assert_eq!(row.0, partition_for_key(key, three), "Kafka's partitioner");
        assert_eq!(
            row.4,
            [
                ("src".to_string(), b"cli".to_vec()),
                ("eq".to_string(), b"a=b".to_vec())
            ]
        );
    }
    let mut partitions: Vec<u32> = rows.iter().map(|r| r.0).collect();
    partitions.sort();
    partitions.dedup();
    let listed: Vec<String> = partitions.iter().map(u32::to_string).collect();
    let plural = if listed.len() == 1 { "" } else { "s" };
    assert_eq!(
        r.stderr,
        format!(
            "produced 4 records to t (partition{plural} {})\n",
            listed.join(", ")
        )
    );
}

#[test]
fn produce_to_one_partition_with_synced_acks() {
    let dir = tempfile::tempdir().unwrap();
    on(dir.path(), &["create-topic", "t", "--partitions", "2"]).ok();
    let lines: String = (0..1000).map(|i| format!("line {i}\n")).collect();
    let r = on_with_input(
        dir.path(),
        &["produce", "t", "--partition", "1", "--acks", "all"],
        lines.as_bytes(),
    )
    .ok();
    assert_eq!(r.stderr, "produced 1000 records to t (partition 1)\n");
    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let p = s.partition("t", 1).unwrap();
    assert_eq!(p.end_offset(), 1000);
    assert_eq!(p.synced_offset(), 1000, "acks=all syncs before it returns");
    assert_eq!(s.partition("t", 0).unwrap().end_offset(), 0);
    let rows = read_all(&s, "t");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.3.as_deref(), Some(format!("line {i}").as_bytes()));
        assert_eq!(row.2, None, "no key without --key-separator");
    }

    let r = on_with_input(dir.path(), &["produce", "t", "--partition", "2"], b"x\n").expect(1);
    assert!(r.stderr.contains("there is no partition 2"), "{}", r.stderr);
    let r = on_with_input(dir.path(), &["produce", "t", "--acks", "most"], b"x\n").expect(2);
    assert!(r.stderr.contains("durability must be"), "{}", r.stderr);
    let r = on_with_input(dir.path(), &["produce", "t", "--header", "nokey"], b"x\n").expect(2);
    assert!(r.stderr.contains("--header \"nokey\" is not KEY=VALUE"));
}

#[test]
fn a_transactional_produce_commits_every_line_or_none() {
    let dir = tempfile::tempdir().unwrap();
    on(dir.path(), &["create-topic", "t"]).ok();
    let r = on_with_input(
        dir.path(),
        &["produce", "t", "--transactional-id", "loader"],
        b"a\nb\nc\n",
    )
    .ok();
    assert_eq!(
        r.stderr,
        "produced 3 records to t (partition 0) in one committed transaction (loader)\n"
    );
    let committed = on(
        dir.path(),
        &[
            "consume",
            "t",
            "--from-beginning",
            "--isolation",
            "read_committed",
        ],
    )
    .ok();
    assert_eq!(committed.stdout, "a\nb\nc\n");
    let seg = dir.path().join("t-0/00000000000000000000.log");
    let dump = common::run(&["dump", seg.to_str().unwrap(), "--records"]).ok();
    assert!(dump
        .stdout
        .contains("isTransactional: true isControl: false"));
    assert!(
        dump.stdout.contains("endTxnMarker: COMMIT"),
        "{}",
        dump.stdout
    );

    // A line without the separator fails the run: the transaction aborts.
    let r = on_with_input(
        dir.path(),
        &[
            "produce",
            "t",
            "--transactional-id",
            "loader",
            "--key-separator",
            ":",
        ],
        b"k:d\nk:e\nno separator\nk:f\n",
    )
    .expect(1);
    assert_eq!(
        r.stderr,
        "oncelog: error: line 3 has no key separator \":\"; the transaction was aborted: nothing was produced\n"
    );
    let committed = on(
        dir.path(),
        &[
            "consume",
            "t",
            "--from-beginning",
            "--isolation",
            "read_committed",
        ],
    )
    .ok();
    assert_eq!(committed.stdout, "a\nb\nc\n", "nothing of the aborted run");
    let describe = on(dir.path(), &["describe", "--topic", "t"]).ok();
    assert!(describe.stdout.ends_with("open transactions: none\n"));
}

/// Appends records with fixed timestamps, keys, headers, a null key, a tombstone
/// and bytes that are not UTF-8.
fn fixture(store: &Store) {
    store.create_topic_with("t", 1, &[]).unwrap();
    let p = store.partition("t", 0).unwrap();
    let headers = [
        Header {
            key: "h",
            value: Some(b"v\"1"),
        },
        Header {
            key: "nul",
            value: None,
        },
    ];
    p.append(&[
        Record::keyed(b"k1", b"hello").with_timestamp(1_700_000_000_000),
        Record::value(b"line\nbreak")
            .with_headers(&headers)
            .with_timestamp(1_700_000_000_100),
    ])
    .unwrap();
    p.append(&[
        Record {
            key: Some(b"gone"),
            value: None,
            ..Record::default()
        }
        .with_timestamp(1_700_000_000_200),
        Record::keyed(&[0xff, 0x00], &[0xc3, 0x28]).with_timestamp(1_700_000_000_300),
    ])
    .unwrap();
}

#[test]
fn consume_prints_text_json_and_hex() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    fixture(&s);
    let text = on(dir.path(), &["consume", "t", "--from-beginning"]).ok();
    let mut expected = b"hello\nline\nbreak\nnull\n".to_vec();
    expected.extend_from_slice(&[0xc3, 0x28, b'\n']);
    assert_eq!(
        text.stdout.as_bytes(),
        String::from_utf8_lossy(&expected).as_bytes()
    );

    let keyed = on(
        dir.path(),
        &["consume", "t", "--from-beginning", "--print-key"],
    )
    .ok();
    assert!(keyed
        .stdout
        .starts_with("k1\thello\nnull\tline\nbreak\ngone\tnull\n"));

    let hex = on(
        dir.path(),
        &[
            "consume",
            "t",
            "--from-beginning",
            "--format",
            "hex",
            "--print-key",
        ],
    )
    .ok();
    assert_eq!(
        hex.stdout,
        "6b31\t68656c6c6f\nnull\t6c696e650a627265616b\n676f6e65\tnull\nff00\tc328\n"
    );

    let json = on(
        dir.path(),
        &["consume", "t", "--from-beginning", "--format", "json"],
    )
    .ok();
    let lines: Vec<&str> = json.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            r#"{"topic":"t","partition":0,"offset":0,"timestamp":1700000000000,"key":"k1","value":"hello","headers":[]}"#,
            r#"{"topic":"t","partition":0,"offset":1,"timestamp":1700000000100,"key":null,"value":"line\nbreak","headers":[{"key":"h","value":"v\"1"},{"key":"nul","value":null}]}"#,
            r#"{"topic":"t","partition":0,"offset":2,"timestamp":1700000000200,"key":"gone","value":null,"headers":[]}"#,
            r#"{"topic":"t","partition":0,"offset":3,"timestamp":1700000000300,"key_hex":"ff00","value_hex":"c328","headers":[]}"#,
        ]
    );
}

#[test]
fn consume_starts_at_an_offset_a_timestamp_or_the_end_and_stops_after_max() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    fixture(&s);
    let args = |extra: &[&str]| -> String {
        let mut all = vec!["consume", "t", "--format", "hex"];
        all.extend_from_slice(extra);
        on(dir.path(), &all).ok().stdout
    };
    assert_eq!(args(&["--partition", "0", "--offset", "2"]), "null\nc328\n");
    assert_eq!(args(&["--timestamp", "1700000000150"]), "null\nc328\n");
    assert_eq!(args(&["--timestamp", "1700000000100"]).lines().count(), 3);
    assert_eq!(args(&["--timestamp", "1800000000000"]), "");
    assert_eq!(args(&[]), "", "without a start, only new records");
    assert_eq!(args(&["--from-beginning", "--max", "1"]), "68656c6c6f\n");
    assert_eq!(args(&["--from-beginning", "--max", "0"]), "");

    let r = on(dir.path(), &["consume", "t", "--offset", "1"]).expect(2);
    assert!(r.stderr.contains("--partition"), "{}", r.stderr);
    let r = on(
        dir.path(),
        &["consume", "t", "--partition", "0", "--offset", "9"],
    )
    .expect(1);
    assert!(
        r.stderr.contains("offset 9 is outside t-0's range [0, 4]"),
        "{}",
        r.stderr
    );
    let r = on(dir.path(), &["consume", "t", "--partition", "1"]).expect(1);
    assert!(r.stderr.contains("there is no partition 1"));
    let r = on(dir.path(), &["consume", "t", "--isolation", "serializable"]).expect(2);
    assert!(r
        .stderr
        .contains("--isolation must be read_committed or read_uncommitted"));
}

#[test]
fn consume_with_a_group_commits_what_it_printed() {
    let dir = tempfile::tempdir().unwrap();
    on(dir.path(), &["create-topic", "t", "--partitions", "2"]).ok();
    on_with_input(
        dir.path(),
        &["produce", "t", "--partition", "0"],
        b"a\nb\nc\n",
    )
    .ok();
    on_with_input(dir.path(), &["produce", "t", "--partition", "1"], b"d\ne\n").ok();

    // Without --from-beginning, a group with no offsets starts at the end.
    let r = on(dir.path(), &["consume", "t", "--group", "late"]).ok();
    assert_eq!(r.stdout, "");

    let group = ["consume", "t", "--group", "g", "--from-beginning"];
    let first = on(dir.path(), &[&group[..], &["--max", "2"]].concat()).ok();
    assert_eq!(first.stdout.lines().count(), 2);
    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let offsets = OffsetStore::open(&s).unwrap();
    let committed = |p| offsets.committed("g", "t", p).unwrap().map(|c| c.offset);
    // Exactly the printed records are committed, per partition (each partition's
    // records come in offset order).
    let printed = |values: &[&str]| -> Option<i64> {
        let n = first.stdout.lines().filter(|v| values.contains(v)).count() as i64;
        (n > 0).then_some(n)
    };
    assert_eq!(
        (committed(0), committed(1)),
        (printed(&["a", "b", "c"]), printed(&["d", "e"])),
        "{}",
        first.stdout
    );

    let rest = on(dir.path(), &group).ok();
    let mut all: Vec<String> = first
        .stdout
        .lines()
        .chain(rest.stdout.lines())
        .map(str::to_string)
        .collect();
    all.sort();
    assert_eq!(all, ["a", "b", "c", "d", "e"], "each record once");
    assert_eq!((committed(0), committed(1)), (Some(3), Some(2)));
    assert_eq!(on(dir.path(), &group).ok().stdout, "", "nothing left");
}

#[test]
fn read_committed_stops_at_an_open_transaction_and_skips_aborted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    s.create_topic_with("t", 1, &[]).unwrap();
    let p = s.partition("t", 0).unwrap();
    p.append(&[Record::value(b"before")]).unwrap();
    let config = |id: &str| ProducerConfig::from_pairs([("transactional.id", id)]).unwrap();
    let aborted = Producer::new(&s, config("a")).unwrap();
    aborted.init_transactions().unwrap();
    aborted.begin_transaction().unwrap();
    aborted.send(ProducerRecord::new("t", b"aborted")).unwrap();
    aborted.abort_transaction().unwrap();
    p.append(&[Record::value(b"between")]).unwrap();
    let open = Producer::new(&s, config("o")).unwrap();
    open.init_transactions().unwrap();
    open.begin_transaction().unwrap();
    open.send(ProducerRecord::new("t", b"open")).unwrap();
    p.append(&[Record::value(b"after")]).unwrap();

    let t0 = Instant::now();
    let committed = on(
        dir.path(),
        &[
            "consume",
            "t",
            "--from-beginning",
            "--isolation",
            "read_committed",
        ],
    )
    .ok();
    assert_eq!(committed.stdout, "before\nbetween\n");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "it does not wait for the open one"
    );
    let all = on(dir.path(), &["consume", "t", "--from-beginning"]).ok();
    assert_eq!(all.stdout, "before\naborted\nbetween\nopen\nafter\n");

    open.commit_transaction().unwrap();
    let committed = on(
        dir.path(),
        &[
            "consume",
            "t",
            "--from-beginning",
            "--isolation",
            "read_committed",
        ],
    )
    .ok();
    assert_eq!(committed.stdout, "before\nbetween\nopen\nafter\n");
}

#[test]
fn follow_prints_records_appended_later() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    s.create_topic_with("t", 1, &[]).unwrap();
    let p = s.partition("t", 0).unwrap();
    p.append(&[Record::value(b"first")]).unwrap();
    let mut child = common::command()
        .args(["--store", dir.path().to_str().unwrap()])
        .args(["consume", "t", "--from-beginning", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "first");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "--follow keeps running"
    );
    p.append(&[Record::value(b"later")]).unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "later");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn consume_stops_quietly_when_its_reader_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    s.create_topic_with("t", 1, &[]).unwrap();
    let p = s.partition("t", 0).unwrap();
    let value = vec![b'x'; 1000];
    let records: Vec<Record> = (0..5000).map(|_| Record::value(&value)).collect();
    p.append_all(&records, 500).unwrap();
    // `oncelog consume ... | head -1`
    let mut child = common::command()
        .args(["--store", dir.path().to_str().unwrap()])
        .args(["consume", "t", "--from-beginning"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn a_killed_transactional_produce_is_ended_by_the_next_read_committed_reader() {
    let dir = tempfile::tempdir().unwrap();
    on(dir.path(), &["create-topic", "t"]).ok();
    let mut child = common::command()
        .args(["--store", dir.path().to_str().unwrap()])
        .args(["produce", "t", "--transactional-id", "loader"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..5 {
        std::io::Write::write_all(&mut stdin, format!("r{i}\n").as_bytes()).unwrap();
    }
    std::io::Write::flush(&mut stdin).unwrap();
    // Until the records are in the log (the producer appends after linger.ms).
    let t0 = Instant::now();
    while on(dir.path(), &["consume", "t", "--from-beginning"])
        .ok()
        .stdout
        != "r0\nr1\nr2\nr3\nr4\n"
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the records never came"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL in the middle of the transaction
    child.wait().unwrap();
    drop(stdin);

    let describe = on(dir.path(), &["describe", "--topic", "t"]).ok().stdout;
    assert!(describe.contains("open transactions: 1\n"), "{describe}");
    assert!(
        describe.contains(", its holder is gone (the next read_committed reader or init_transactions ends it): t-0 (open from offset 0)"),
        "{describe}"
    );
    on(dir.path(), &["verify"]).ok();
    let committed = on(
        dir.path(),
        &[
            "consume",
            "t",
            "--from-beginning",
            "--isolation",
            "read_committed",
        ],
    )
    .ok();
    assert_eq!(
        committed.stdout, "",
        "the transaction was aborted, not committed"
    );
    let describe = on(dir.path(), &["describe", "--topic", "t"]).ok().stdout;
    assert!(
        describe.ends_with("open transactions: none\n"),
        "{describe}"
    );
    on(dir.path(), &["verify"]).ok();
    let dump = common::run(&[
        "dump",
        dir.path()
            .join("t-0/00000000000000000000.txnindex")
            .to_str()
            .unwrap(),
    ])
    .ok();
    assert!(
        dump.stdout
            .contains("firstOffset: 0 lastOffset: 5 lastStableOffset: 6"),
        "{}",
        dump.stdout
    );
}
