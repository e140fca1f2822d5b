//! A handle used in a child after `fork()` fails with a clear error instead of
//! touching the parent's mappings and locks, and the parent carries on.

use oncelog::{ErrorKind, Record, Store, StoreOptions, TopicConfig};

#[test]
fn handles_refuse_to_work_in_a_forked_child() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    p.append(&[Record::value(b"before fork")]).unwrap();
    let mut parent_reader = p.reader(0).unwrap();

    // SAFETY: the child only calls oncelog (which must refuse) and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let append = p.append(&[Record::value(b"from the child")]);
        let reader = p.reader(0);
        let partition = store.partition("t", 0);
        let read = parent_reader.next_batch().map(|b| b.is_some());
        let code = match (append, reader, partition, read) {
            (Err(a), Err(r), Err(s), Err(n))
                if a.kind() == ErrorKind::Forked
                    && r.kind() == ErrorKind::Forked
                    && s.kind() == ErrorKind::Forked
                    && n.kind() == ErrorKind::Forked
                    && a.is_fatal() =>
            {
                // Dropping the handles in the child must not hang or disturb the parent.
                drop(parent_reader);
                drop(p);
                drop(store);
                0
            }
            _ => 1,
        };
        // SAFETY: leaves the child without running the test harness's exit path.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child's calls did not all fail with `forked`"
    );

    // The parent is untouched: its handle works, and nothing from the child landed.
    let info = p.append(&[Record::value(b"after fork")]).unwrap();
    assert_eq!(info.base_offset, 1);
    assert_eq!(
        parent_reader
            .next_batch()
            .unwrap()
            .unwrap()
            .header()
            .base_offset,
        0
    );
}
