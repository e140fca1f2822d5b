//! The seed's producer side of at-most-once and at-least-once with a real failure:
//! a producer process hits its file-size limit (the disk is "full") mid-stream, and
//! the limit is raised from outside a moment later. The at-most-once producer does
//! not retry: the records that failed are lost, none is duplicated. The
//! at-least-once producer retries until the append goes through: nothing is lost.

mod common;

use std::time::Duration;

use common::{harness, role, with, Proc};
use oncelog::{Store, StoreOptions, TopicConfig};
use oncelog_testkit::payload::Kind;

const COUNT: u64 = 300;
const LONG: Duration = Duration::from_secs(30);

/// Runs the producer; once it reports a failure (at-most-once) or stops reporting
/// for a while (at-least-once, retrying), lifts its file-size limit. Returns the
/// sequence numbers reported failed and the writer's sequences found in the log.
fn run(delivery: &str) -> (Vec<u64>, Vec<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    // Small segments: their index files fit under the limit, the data does not.
    let config = TopicConfig::from_pairs([("segment.bytes", "1048576")]).unwrap();
    store.create_topic("t", 1, config).unwrap();
    drop(store);
    let mut cmd = role("produce-limited", dir.path(), "t");
    with(
        &mut cmd,
        &[
            ("fsize-limit", (128 * 1024).to_string()),
            ("reserve-bytes", "16384".into()),
            ("delivery", delivery.into()),
            ("count", COUNT.to_string()),
        ],
    );
    let mut child = Proc::spawn(format!("producer ({delivery})"), cmd);
    child.expect("ready", LONG);
    let mut failed = Vec::new();
    let mut lifted = false;
    loop {
        let line = match child.line(Duration::from_millis(300)) {
            Ok(line) => line,
            // No report for a while: the producer is retrying inside send.
            Err(_) if !lifted => {
                lift(&child);
                lifted = true;
                continue;
            }
            Err(e) => panic!("producer stopped reporting: {e:?}; {}", child.stderr()),
        };
        if line == "done" {
            break;
        }
        if let Some(rest) = line.strip_prefix("err ") {
            failed.push(rest.split(' ').next().unwrap().parse().unwrap());
            if !lifted {
                lift(&child);
                lifted = true;
            }
        }
    }
    assert!(lifted, "the producer never hit its limit: raise COUNT");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let entries = harness::read_all(&store.partition("t", 0).unwrap());
    let found = entries
        .iter()
        .filter_map(|e| match e.kind {
            Kind::Data { writer: 1, seq } => Some(seq),
            _ => None,
        })
        .collect();
    (failed, found)
}

/// Raises the child's soft RLIMIT_FSIZE to unlimited.
fn lift(child: &Proc) {
    let lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit on our own child with a valid rlimit.
    let rc = unsafe { libc::prlimit(child.pid(), libc::RLIMIT_FSIZE, &lim, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[test]
fn an_at_most_once_producer_does_not_retry_and_loses_what_failed() {
    let (failed, found) = run("at-most-once");
    assert!(
        !failed.is_empty(),
        "some sends failed while the disk was full"
    );
    let expected: Vec<u64> = (0..COUNT).filter(|s| !failed.contains(s)).collect();
    assert_eq!(
        found, expected,
        "exactly the failed records are lost, the rest once, in order"
    );
}

#[test]
fn an_at_least_once_producer_retries_until_nothing_is_lost() {
    let (failed, found) = run("at-least-once");
    assert!(failed.is_empty(), "no send is reported failed: {failed:?}");
    assert_eq!(
        found,
        (0..COUNT).collect::<Vec<_>>(),
        "every record once, in order"
    );
}
