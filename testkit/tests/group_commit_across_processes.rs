//! `synced` durability is shared by every process: one process's `fdatasync`
//! covers what others appended, through the synced offset in the control block,
//! so a process whose data another already synced waits for no sync of its own;
//! one process at a time syncs for all (the control block's `lead` lock), and one
//! killed while it does holds no one up.

mod common;

use common::{role, with};
use oncelog::{Durability, Record, Store, StoreOptions, TopicConfig};

#[test]
fn a_sync_in_one_process_covers_the_appends_of_another() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    // This process appends with `written`: nothing synced yet.
    for i in 0..100u32 {
        p.append(&[Record::value(&i.to_be_bytes())]).unwrap();
    }
    assert_eq!(p.synced_offset(), 0);
    let syncs_before = p.metrics().syncs;

    // Another process appends one record with `synced`: its flusher syncs the
    // segment, which holds our 100 records too.
    let mut probe = role("probe", dir.path(), "t");
    with(
        &mut probe,
        &[
            ("id", "1".into()),
            ("seq", "0".into()),
            ("durability", "synced".into()),
        ],
    );
    let out = probe.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("probe 100 "),
        "probe: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        p.synced_offset(),
        101,
        "the other process's sync is visible here"
    );
    let syncs_after_probe = p.metrics().syncs;
    assert!(syncs_after_probe > syncs_before, "the probe synced");

    // So a synced append here only needs its own record synced...
    p.append_with(
        &[Record::value(b"mine")],
        &oncelog::AppendOptions {
            durability: Some(Durability::Synced),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(p.synced_offset(), 102);
    // ...and a sync of what is already synced costs no fdatasync at all.
    let syncs = p.metrics().syncs;
    p.sync().unwrap();
    assert_eq!(p.metrics().syncs, syncs, "nothing left to sync");
}

/// Starts a `probe` that appends one record with `synced` durability, with
/// `failpoints` (`ONCELOG_FAILPOINTS`).
fn synced_probe(dir: &std::path::Path, id: u32, failpoints: &str) -> std::process::Child {
    let mut probe = role("probe", dir, "t");
    with(
        &mut probe,
        &[
            ("id", id.to_string()),
            ("seq", "0".into()),
            ("durability", "synced".into()),
        ],
    );
    probe
        .env("ONCELOG_FAILPOINTS", failpoints)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `p`'s end offset reaches `end`, then a little more: the appender
/// that published it is on its way into its sync.
fn wait_for_end(p: &oncelog::Partition, end: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while p.end_offset() < end {
        assert!(
            std::time::Instant::now() < deadline,
            "no append reached {end}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
}

#[test]
fn one_sync_covers_the_waiting_appends_of_every_process() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    // The first process leads a sync and pauses 1.5 s before it looks at the log's
    // end; two more append meanwhile. They must wait for its sync, which covers
    // their records, and not sync for themselves: leading a sync kills them.
    let leader = synced_probe(dir.path(), 1, "sync.leading=sleep:1500000");
    wait_for_end(&p, 1);
    let others = [
        synced_probe(dir.path(), 2, "sync.leading=abort"),
        synced_probe(dir.path(), 3, "sync.leading=abort"),
    ];
    for (i, child) in std::iter::once(leader).chain(others).enumerate() {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "probe {i}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // `probe <offset> <open µs> <append µs> ...`
        let append_us: u64 = stdout.split_whitespace().nth(3).unwrap().parse().unwrap();
        if i > 0 {
            assert!(
                append_us > 500_000,
                "probe {i} waited for the leader: {stdout}"
            );
        }
    }
    assert_eq!(p.end_offset(), 3);
    assert_eq!(p.synced_offset(), 3);
}

#[test]
fn a_process_killed_while_it_syncs_for_everyone_holds_no_one_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    let mut leader = synced_probe(dir.path(), 1, "sync.leading=sleep:60000000");
    wait_for_end(&p, 1);
    // A synced append here waits for the leader, which holds the sync for a minute...
    let (tx, rx) = std::sync::mpsc::channel();
    let appender = {
        let p = p.clone();
        std::thread::spawn(move || {
            let options = oncelog::AppendOptions {
                durability: Some(Durability::Synced),
                ..Default::default()
            };
            let info = p.append_with(&[Record::value(b"mine")], &options);
            tx.send(info.map(|i| i.base_offset)).unwrap();
        })
    };
    let waited = std::time::Duration::from_millis(500);
    assert!(
        rx.recv_timeout(waited).is_err(),
        "the append waits for the leader"
    );
    // ...until it is killed: its robust lock passes on, and the append syncs itself.
    leader.kill().unwrap();
    leader.wait().unwrap();
    let killed = std::time::Instant::now();
    let offset = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the append returns once the leader is dead")
        .unwrap();
    assert_eq!(offset, 1);
    assert!(p.synced_offset() >= 2);
    eprintln!("append returned {:?} after the kill", killed.elapsed());
    appender.join().unwrap();
}
