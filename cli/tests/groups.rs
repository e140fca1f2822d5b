//! `groups list | describe | reset-offsets` as processes, next to consumers of the
//! test process that are live group members.

mod common;

use std::time::Duration;

use common::on;
use oncelog::offsets::OffsetStore;
use oncelog::{Consumer, ConsumerConfig, Record, Store, StoreOptions};

fn store_with_data(dir: &std::path::Path) -> Store {
    let s = Store::open(dir, StoreOptions::default()).unwrap();
    s.create_topic_with("t", 2, &[]).unwrap();
    let values: Vec<Record> = (0..5).map(|_| Record::value(b"v")).collect();
    s.partition("t", 0).unwrap().append(&values).unwrap();
    s.partition("t", 1).unwrap().append(&values[..2]).unwrap();
    s
}

/// A live member of `group` that owns every partition of `t`.
fn live_member(s: &Store, group: &str) -> Consumer {
    let config =
        ConsumerConfig::from_pairs([("group.id", group), ("enable.auto.commit", "false")]).unwrap();
    let mut c = Consumer::new(s, config).unwrap();
    c.subscribe(&["t"]).unwrap();
    for _ in 0..100 {
        c.poll(Duration::from_millis(10)).unwrap();
        if c.assignment().len() == 2 {
            break;
        }
    }
    c.poll(Duration::from_millis(10)).unwrap();
    c
}

#[test]
fn list_shows_groups_with_members_or_committed_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_with_data(dir.path());
    assert_eq!(on(dir.path(), &["groups", "list"]).ok().stdout, "");
    assert!(
        s.topic("__consumer_offsets").is_err(),
        "listing creates no offsets log"
    );
    OffsetStore::open(&s)
        .unwrap()
        .commit("with-offsets", &[("t", 0, 1, "")])
        .unwrap();
    drop(live_member(&s, "with-members"));
    assert_eq!(
        on(dir.path(), &["groups", "list"]).ok().stdout,
        "with-members\nwith-offsets\n"
    );
}

#[test]
fn describe_shows_members_offsets_lag_and_owners() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_with_data(dir.path());
    OffsetStore::open(&s)
        .unwrap()
        .commit("g", &[("t", 0, 3, "")])
        .unwrap();
    let member = live_member(&s, "g");
    let generation = member.group_generation().unwrap();
    let out = on(dir.path(), &["groups", "describe", "g"]).ok().stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("group g: generation {generation}, 1 member (1 live)")
    );
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "MEMBER",
            "STATUS",
            "IN",
            "GENERATION",
            "HEARTBEAT",
            "TOPICS"
        ]
    );
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    let token = row[0];
    assert_eq!(token.len(), 16);
    assert_eq!(row[1..3], ["live", "yes"]);
    assert_eq!(row.last(), Some(&"t"));
    let partitions: Vec<Vec<&str>> = lines[4..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        ["TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "OWNER"]
    );
    assert_eq!(
        partitions,
        [
            vec!["t", "0", "3", "5", "2", token],
            vec!["t", "1", "-", "2", "-", token]
        ]
    );
    drop(member);

    let r = on(dir.path(), &["groups", "describe", "nobody"]).expect(1);
    assert!(r.stderr.contains("no group \"nobody\""), "{}", r.stderr);
}

#[test]
fn reset_offsets_waits_for_the_members_to_leave_then_moves_the_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_with_data(dir.path());
    let offsets = OffsetStore::open(&s).unwrap();
    offsets.commit("g", &[("t", 0, 3, "")]).unwrap();
    let committed = |p| offsets.committed("g", "t", p).unwrap().map(|c| c.offset);

    let member = live_member(&s, "g");
    let r = on(
        dir.path(),
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-earliest",
        ],
    )
    .expect(1);
    assert_eq!(
        r.stderr,
        "oncelog: error: group \"g\" has 1 live member: stop it before resetting its offsets\n"
    );
    assert_eq!(committed(0), Some(3), "nothing moved");
    drop(member);

    let r = on(
        dir.path(),
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-earliest",
        ],
    )
    .ok();
    assert_eq!(r.stdout, "t-0: 3 -> 0\nt-1: none -> 0\n");
    assert_eq!((committed(0), committed(1)), (Some(0), Some(0)));

    let r = on(
        dir.path(),
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-latest",
        ],
    )
    .ok();
    assert_eq!(r.stdout, "t-0: 0 -> 5\nt-1: 0 -> 2\n");
    let r = on(
        dir.path(),
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-offset",
            "4",
            "--partition",
            "0",
        ],
    )
    .ok();
    assert_eq!(r.stdout, "t-0: 5 -> 4\n");
    assert_eq!((committed(0), committed(1)), (Some(4), Some(2)));

    // A consumer of the group starts where the reset put it.
    let out = on(
        dir.path(),
        &["consume", "t", "--group", "g", "--partition", "0"],
    )
    .ok();
    assert_eq!(out.stdout, "v\n");

    let r = on(
        dir.path(),
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-offset",
            "6",
            "--partition",
            "0",
        ],
    )
    .expect(1);
    assert!(r.stderr.contains("offset 6 is outside t-0's range [0, 5]"));
    let r = on(
        dir.path(),
        &["groups", "reset-offsets", "g", "--topic", "t"],
    )
    .expect(2);
    assert!(r
        .stderr
        .contains("needs one of --to-earliest, --to-latest or --to-offset"));
    let r = on(
        dir.path(),
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-offset",
            "1",
        ],
    )
    .expect(2);
    assert!(r.stderr.contains("--partition"), "{}", r.stderr);
    let r = on(
        dir.path(),
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "nope",
            "--to-latest",
        ],
    )
    .expect(1);
    assert!(r.stderr.contains("no topic \"nope\""));
    assert_eq!((committed(0), committed(1)), (Some(5), Some(2)));
}
