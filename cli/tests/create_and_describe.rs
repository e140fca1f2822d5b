//! `create-topic` and `describe` as processes, and how the command treats misuse:
//! one line on stderr and exit code 2 for a usage error, 1 for a failure.

mod common;

use common::{golden, on, on_with_input, run};
use oncelog::record::{BatchOptions, ProducerInfo};
use oncelog::{
    AppendOptions, Producer, ProducerConfig, ProducerRecord, Record, Store, StoreOptions,
};

/// Stderr is exactly one line: `oncelog: error: ...`.
fn one_error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {stderr:?}");
    assert!(lines[0].starts_with("oncelog: error: "), "{stderr:?}");
    lines[0]
}

#[test]
fn create_topic_makes_the_store_and_describe_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("new-store");
    let r = on(
        &store,
        &[
            "create-topic",
            "events",
            "--partitions",
            "3",
            "--config",
            "retention.ms=86400000",
            "--config",
            "segment.bytes=1048576",
        ],
    )
    .ok();
    assert_eq!(r.stdout, "created topic events with 3 partitions\n");
    on(&store, &["create-topic", "audit"]).ok();

    golden("describe_fresh.txt", &on(&store, &["describe"]).ok().stdout);
    golden(
        "describe_fresh.json",
        &on(&store, &["describe", "--json"]).ok().stdout,
    );
    let one = on(&store, &["describe", "--topic", "audit"]).ok().stdout;
    assert!(one.starts_with("topic audit: 1 partition, config defaults\n"));
    assert!(!one.contains("events"));

    // The config is the topic's, as the core reads it back.
    let s = Store::open(&store, StoreOptions::default()).unwrap();
    let meta = s.topic("events").unwrap();
    assert_eq!(meta.partitions, 3);
    assert_eq!(meta.config.retention_ms, 86_400_000);
    assert_eq!(meta.config.segment_bytes, 1_048_576);
}

#[test]
fn describe_shows_offsets_producers_and_open_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    s.create_topic_with("t", 2, &[]).unwrap();
    let p0 = s.partition("t", 0).unwrap();
    p0.append(&[Record::value(b"plain")]).unwrap();
    let options = AppendOptions {
        batch: BatchOptions {
            producer: ProducerInfo {
                producer_id: 77,
                producer_epoch: 3,
                base_sequence: 0,
            },
            ..BatchOptions::default()
        },
        durability: None,
    };
    p0.append_with(&[Record::value(b"a"), Record::value(b"b")], &options)
        .unwrap();

    // A transaction left open in partition 1, and one committed in partition 0
    // (its holder's state still says Ongoing until its next record).
    let config = |id: &str| ProducerConfig::from_pairs([("transactional.id", id)]).unwrap();
    let open = Producer::new(&s, config("open-tx")).unwrap();
    open.init_transactions().unwrap();
    open.begin_transaction().unwrap();
    open.send(ProducerRecord::new("t", b"pending").partition(1))
        .unwrap();
    let done = Producer::new(&s, config("done-tx")).unwrap();
    done.init_transactions().unwrap();
    done.begin_transaction().unwrap();
    done.send(ProducerRecord::new("t", b"kept").partition(0))
        .unwrap();
    done.commit_transaction().unwrap();
    let (open_id, _) = open.identity().unwrap();

    let out = on(dir.path(), &["describe", "--topic", "t"]).ok().stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "topic t: 2 partitions, config defaults");
    let row = |p: &str| -> Vec<String> {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(p))
            .unwrap_or_else(|| panic!("no row for partition {p} in\n{out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    // PARTITION START END STABLE SEGMENTS SIZE(2 words) PRODUCERS
    let r0 = row("0");
    assert_eq!(&r0[..5], ["0", "0", "5", "5", "1"], "{out}");
    assert_eq!(r0[7], "2", "producer 77 and done-tx's: {out}");
    let r1 = row("1");
    assert_eq!(
        &r1[..5],
        ["1", "0", "1", "0", "1"],
        "stable stays at 0: {out}"
    );
    assert!(
        out.contains("  t-0 producer 77: epoch 3, last sequence 1 at offset 2\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  t-1 producer {open_id}: epoch 0, last sequence 0 at offset 0, transaction open from offset 0\n"
        )),
        "{out}"
    );
    assert!(out.contains("open transactions: 1\n"), "{out}");
    let txn = lines
        .iter()
        .find(|l| l.trim_start().starts_with("open-tx:"))
        .unwrap_or_else(|| panic!("open-tx not listed:\n{out}"));
    assert!(
        txn.starts_with(&format!(
            "  open-tx: producer {open_id} epoch 0, Ongoing for "
        )),
        "{txn}"
    );
    assert!(txn.ends_with(": t-1 (open from offset 0)"), "{txn}");
    assert!(
        !txn.contains("holder is gone"),
        "this process holds it: {txn}"
    );
    assert!(
        !out.contains("done-tx"),
        "a committed transaction is not open:\n{out}"
    );

    let json = on(dir.path(), &["describe", "--json"]).ok().stdout;
    assert!(json.starts_with("{\"topics\":[{\"name\":\"__transaction_state\",\"internal\":true,"));
    assert!(json.contains(&format!(
        "\"open_transactions\":[{{\"transactional_id\":\"open-tx\",\"producer_id\":{open_id},\"epoch\":0,\"status\":\"Ongoing\","
    )));
    assert!(json.contains(
        "\"holder_alive\":true,\"partitions\":[{\"topic\":\"t\",\"partition\":1,\"state\":\"open\",\"open_from\":0}]}]}"
    ));

    open.abort_transaction().unwrap();
    let out = on(dir.path(), &["describe", "--topic", "t"]).ok().stdout;
    assert!(out.ends_with("open transactions: none\n"), "{out}");
    drop((open, done));
}

#[test]
fn missing_store_is_a_usage_error() {
    let r = run(&["describe"]).expect(2);
    assert_eq!(
        one_error_line(&r.stderr),
        "oncelog: error: this subcommand needs --store DIR (or ONCELOG_STORE)"
    );
    assert_eq!(r.stdout, "");
    // ONCELOG_STORE stands in for --store.
    let dir = tempfile::tempdir().unwrap();
    let out = common::command()
        .env("ONCELOG_STORE", dir.path())
        .args(["create-topic", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(dir.path().join("topics/x.properties").is_file());
}

#[test]
fn unknown_topic_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    on(dir.path(), &["create-topic", "t"]).ok();
    for args in [
        &["describe", "--topic", "nope"][..],
        &["consume", "nope", "--from-beginning"],
        &["verify", "--topic", "nope"],
    ] {
        let r = on(dir.path(), args).expect(1);
        let line = one_error_line(&r.stderr);
        assert!(line.contains("no topic \"nope\""), "{args:?}: {line}");
    }
    let r = on_with_input(dir.path(), &["produce", "nope"], b"x\n").expect(1);
    assert!(one_error_line(&r.stderr).contains("no topic \"nope\""));
}

#[test]
fn bad_config_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    for (config, says) in [
        ("retention.ms", "is not KEY=VALUE"),
        ("no.such.key=1", "unknown topic config \"no.such.key\""),
        ("segment.bytes=12", "segment.bytes must be between"),
    ] {
        let r = on(&store, &["create-topic", "t", "--config", config]).expect(2);
        assert!(
            one_error_line(&r.stderr).contains(says),
            "{config}: {}",
            r.stderr
        );
        assert!(!store.exists(), "nothing is created for a bad --config");
    }
    let r = on(&store, &["create-topic", "bad/name"]).expect(2);
    assert!(one_error_line(&r.stderr).contains("invalid_topic_name"));
    let r = on(&store, &["create-topic", "t", "--partitions", "0"]).expect(2);
    assert!(one_error_line(&r.stderr).contains("--partitions must be between 1 and"));
    assert!(!store.exists());
}

#[test]
fn creating_an_existing_topic_fails() {
    let dir = tempfile::tempdir().unwrap();
    on(dir.path(), &["create-topic", "t"]).ok();
    let r = on(dir.path(), &["create-topic", "t", "--partitions", "2"]).expect(1);
    assert!(one_error_line(&r.stderr).contains("topic \"t\" already exists"));
}

#[test]
fn a_directory_that_is_not_a_store_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    for args in [
        &["describe"][..],
        &["verify"],
        &["groups", "list"],
        &["create-topic", "t"],
    ] {
        let r = on(dir.path(), args).expect(1);
        assert!(
            one_error_line(&r.stderr).contains("is not an oncelog store"),
            "{args:?}: {}",
            r.stderr
        );
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["notes.txt"], "nothing was written into it");
    let r = on(&dir.path().join("absent"), &["describe"]).expect(1);
    assert!(one_error_line(&r.stderr).contains("no store at"));
}

#[test]
fn every_subcommand_help_has_an_example() {
    for sub in [
        "create-topic",
        "describe",
        "produce",
        "consume",
        "groups",
        "dump",
        "verify",
        "demo",
        "bench",
    ] {
        let r = run(&[sub, "--help"]).ok();
        let example = r
            .stdout
            .split_once("Example")
            .unwrap_or_else(|| panic!("{sub} --help has no example:\n{}", r.stdout))
            .1;
        assert!(
            example.contains(&format!("oncelog {sub}"))
                || example.contains(&format!("oncelog --store /tmp/s {sub}"))
                || example.contains(&format!("| oncelog --store /tmp/s {sub}")),
            "{sub}: {example}"
        );
    }
}

#[test]
fn describe_tells_when_opening_cut_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    on(dir.path(), &["create-topic", "t"]).ok();
    on_with_input(dir.path(), &["produce", "t"], b"kept\n").ok();
    let log = dir.path().join("t-0/00000000000000000000.log");
    let mut torn = std::fs::read(&log).unwrap();
    let whole = torn.len();
    torn.extend_from_within(..whole / 2);
    std::fs::write(&log, &torn).unwrap();
    // describe opens the store first: recovery cuts the half batch and says so.
    let out = on(dir.path(), &["describe"]).ok().stdout;
    assert!(
        out.contains("  t-0: the last recovery cut off a damaged or torn tail\n"),
        "{out}"
    );
    assert!(
        out.contains("\n  0          0      1    1       1 "),
        "{out}"
    );
    // It is cut now: the next first open finds nothing to cut.
    let json = on(dir.path(), &["describe", "--json"]).ok().stdout;
    assert!(json.contains("\"recovery_cut_tail\":false"), "{json}");
    assert!(!json.contains("\"recovery_cut_tail\":true"), "{json}");
    assert_eq!(std::fs::metadata(&log).unwrap().len(), whole as u64);
}
