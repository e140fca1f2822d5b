//! Processes fork: a multithreaded program spawns a subprocess (between `fork` and
//! `exec` the child holds copies of every descriptor), a server forks workers. Such
//! a child holds the store's lock file open without ever using the store. When the
//! parent then closes the store, the next process to open it must still find a
//! working log: it must not trust a control block that the clean shutdown left
//! behind (describing disk space the shutdown gave back), and it must not crash.
//!
//! Found by `killed_writer.rs` on a loaded machine: its two tests run in one test
//! process, and one test's store was closed while the other test was spawning.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::{harness, role, with, Proc};
use oncelog::{Store, StoreOptions, TopicConfig};

const LONG: Duration = Duration::from_secs(30);
const HOLD: Duration = Duration::from_millis(1500);

/// SIGKILLs a grandchild (a process one of our children forked) when dropped.
struct Grandchild(i32);

impl Drop for Grandchild {
    fn drop(&mut self) {
        // SAFETY: plain syscall. The pid is a process our child forked and that we
        // kill at the latest when the test ends; it cannot have been reaped and
        // reused before `HOLD` is over, and we are done with it by then.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

#[test]
fn a_store_closed_while_a_forked_child_lives_opens_and_appends_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let config = TopicConfig::from_pairs([("segment.bytes", "65536")]).unwrap();
        store.create_topic("t", 1, config).unwrap();
    }
    // A process opens the store, forks a child that merely lives on, and closes.
    let mut cmd = role("fork-hold", dir.path(), "t");
    with(&mut cmd, &[("hold-ms", HOLD.as_millis().to_string())]);
    let mut holder = Proc::spawn("fork-hold", cmd);
    let forked = holder.expect("forked ", LONG);
    let _grandchild = Grandchild(forked[7..].parse().unwrap());
    holder.expect("closed", LONG);
    assert!(holder.wait(LONG).success(), "{}", holder.stderr());

    // The next process appends.
    let started = Instant::now();
    let mut cmd = role("append", dir.path(), "t");
    with(&mut cmd, &[("id", "1".into()), ("count", "20".into())]);
    let mut next = Proc::spawn("appender", cmd);
    let (status, lines) = next.finish(LONG);
    assert_eq!(
        status.signal(),
        None,
        "the appender died of signal {:?}{} after {} acks",
        status.signal(),
        if status.signal() == Some(libc::SIGBUS) {
            " (SIGBUS: it wrote into space the previous clean shutdown had truncated)"
        } else {
            ""
        },
        harness::acks(&lines).len()
    );
    assert!(status.success(), "{status} {lines:?} {}", next.stderr());
    let acks = harness::acks(&lines);
    // Nor may the child's mere existence hold later openers up for its lifetime.
    let took = started.elapsed();
    assert!(
        took < HOLD / 2,
        "opening the store waited {took:?} for the forked child (alive {HOLD:?})"
    );

    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let part = store.partition("t", 0).unwrap();
    let entries = harness::read_all(&part);
    harness::assert_dense_and_unique(&entries, 0);
    let writers = harness::by_writer(&entries);
    assert_eq!(harness::assert_writer(&entries, 0, &writers, 1, &acks), 20);
}
