//! `synced` durability is shared by every process: one process's `fdatasync`
//! covers what others appended, through the synced offset in the control block,
//! so a process whose data another already synced waits for no sync of its own.

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
