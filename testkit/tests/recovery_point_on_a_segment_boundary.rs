//! A recovery point on a segment boundary, after a power loss: the flusher moves the
//! recovery point to the end of the active segment and the next append rolls
//! exactly there, so recovery trusts the sealed segment without walking it. Its
//! `.txnindex` must have been synced with the recovery point, or an aborted
//! transaction's record becomes visible to read_committed readers. One process
//! (role `roll-at-checkpoint`) runs with the sync-journal shim; crash images are
//! built from its journal (see `power_loss.rs`).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{role, Proc};
use oncelog::{Store, StoreOptions};
use oncelog_testkit::power_loss::image;
use oncelog_testkit::power_loss::journal::Journal;
use oncelog_testkit::power_loss::shim;
use oncelog_testkit::rng::XorShift;

const LONG: Duration = Duration::from_secs(60);

/// The flusher moves the recovery point to the end of the active segment; the next
/// append rolls exactly there. Recovery then trusts the sealed segment without
/// walking it: its `.txnindex` (and indexes) must have been synced with the
/// recovery point, or, in the image that keeps only what was synced, the aborted
/// transaction's record becomes visible to read_committed readers.
#[test]
fn a_recovery_point_on_a_segment_boundary_keeps_aborted_transactions_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let lib = shim::build(dir.path()).expect("the sync journal shim builds");
    let (store, journal_dir) = (dir.path().join("store"), dir.path().join("journal"));
    std::fs::create_dir(&store).unwrap();
    std::fs::create_dir(&journal_dir).unwrap();
    let mut cmd = role("roll-at-checkpoint", &store, "t");
    cmd.env("LD_PRELOAD", &lib)
        .env(shim::JOURNAL_ENV, &journal_dir);
    let mut p = Proc::spawn("roll-at-checkpoint", cmd);
    let (status, lines) = p.finish(LONG);
    assert!(status.success(), "{lines:?} {}", p.stderr());
    let field = |prefix: &str| -> i64 {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix:?} line in {lines:?}"))
    };
    let (aborted, checkpoint, rolled) = (field("aborted "), field("checkpoint "), field("rolled "));
    assert_eq!(rolled, checkpoint, "the roll lands on the recovery point");

    let journal = Journal::read(&journal_dir).unwrap();
    // Exactly what was synced, and 40 images that keep some of the rest.
    let durable = dir.path().join("durable");
    image::build_durable(&store, &journal, &durable).unwrap();
    check_aborted_stays_aborted(&durable, aborted, rolled);
    for seed in 0..40 {
        let out = dir.path().join(format!("image-{seed}"));
        image::build(&store, &journal, &out, &mut XorShift::new(seed)).unwrap();
        check_aborted_stays_aborted(&out, aborted, rolled);
    }
}

fn check_aborted_stays_aborted(image: &Path, aborted: i64, rolled: i64) {
    let store = Store::open(image, StoreOptions::default()).unwrap();
    let part = store.partition("t", 0).unwrap();
    assert!(
        part.end_offset() > rolled,
        "{}: the synced records survive",
        image.display()
    );
    let mut raw = part.reader(aborted).unwrap();
    let b = raw
        .next_batch()
        .unwrap()
        .expect("the aborted record is in the log");
    assert_eq!(b.header().base_offset, aborted);
    let mut rc = part.reader(0).unwrap().read_committed(true);
    while let Some(b) = rc.next_batch().unwrap() {
        if b.header().is_control() {
            continue;
        }
        for r in b.records() {
            let r = r.unwrap();
            assert_ne!(
                r.offset,
                aborted,
                "{}: read_committed returns the aborted transaction's record",
                image.display()
            );
        }
    }
}
