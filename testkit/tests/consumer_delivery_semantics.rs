//! The seed's consumer flows with real processes killed mid-batch.
//!
//! * at-most-once: offsets are committed before the records are processed, so a
//!   consumer killed in the middle of a poll's records loses the rest of them and
//!   processes nothing twice.
//! * at-least-once: offsets are committed after processing, so a consumer killed
//!   before committing has the next one process the whole poll again: nothing is
//!   lost, and exactly what was processed of the interrupted poll is duplicated.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::{role, with, Proc};
use oncelog::{Record, Store, StoreOptions, TopicConfig};

const RECORDS: i64 = 600;
const KILLS: usize = 5;
const LONG: Duration = Duration::from_secs(30);

/// What one consumer process did: its polls (count, first offset) and the offsets
/// it processed, in order.
#[derive(Default)]
struct Run {
    polls: Vec<(i64, i64)>,
    processed: Vec<i64>,
}

impl Run {
    fn take(&mut self, line: &str) {
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some("poll"), Some(n), Some(first)) => self
                .polls
                .push((n.parse().unwrap(), first.parse().unwrap())),
            (Some("processed"), Some(o), None) => self.processed.push(o.parse().unwrap()),
            _ => {}
        }
    }

    /// Offsets of the last poll that this run did not finish processing.
    fn unfinished(&self) -> Vec<i64> {
        let Some(&(n, first)) = self.polls.last() else {
            return Vec::new();
        };
        (first..first + n)
            .filter(|o| !self.processed.contains(o))
            .collect()
    }

    /// Offsets processed in the last (interrupted) poll.
    fn processed_in_last_poll(&self) -> Vec<i64> {
        let Some(&(_, first)) = self.polls.last() else {
            return Vec::new();
        };
        self.processed
            .iter()
            .copied()
            .filter(|o| *o >= first)
            .collect()
    }
}

fn consumer(dir: &std::path::Path, delivery: &str) -> Proc {
    let mut cmd = role("consume", dir, "in");
    with(
        &mut cmd,
        &[
            ("group", "g".into()),
            ("delivery", delivery.into()),
            ("until", RECORDS.to_string()),
            ("max-poll", "40".into()),
            ("process-us", "1500".into()),
        ],
    );
    Proc::spawn(format!("consumer ({delivery})"), cmd)
}

/// Runs `KILLS` consumers, each killed after processing 5 records of its third
/// poll, then one that finishes. Returns every run.
fn run(delivery: &str) -> Vec<Run> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("in", 1, TopicConfig::default()).unwrap();
    let input = store.partition("in", 0).unwrap();
    for i in 0..RECORDS {
        input
            .append(&[Record::value(format!("input {i}").as_bytes())])
            .unwrap();
    }
    let mut runs = Vec::new();
    for _ in 0..KILLS {
        let mut child = consumer(dir.path(), delivery);
        child.expect("ready", LONG);
        let mut run = Run::default();
        let mut in_third_poll = 0;
        while in_third_poll < 5 {
            let line = child.line(LONG).expect("the consumer keeps reporting");
            run.take(&line);
            if run.polls.len() == 3 && line.starts_with("processed") {
                in_third_poll += 1;
            }
        }
        child.kill();
        let status = child.wait(LONG);
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        for line in child.drain(LONG) {
            run.take(&line);
        }
        runs.push(run);
    }
    let mut last = consumer(dir.path(), delivery);
    let (status, lines) = last.finish(LONG);
    assert!(
        status.success(),
        "the last consumer finishes: {}",
        last.stderr()
    );
    assert_eq!(lines.last().map(String::as_str), Some("done"));
    let mut run = Run::default();
    lines.iter().for_each(|l| run.take(l));
    runs.push(run);
    runs
}

fn times_processed(runs: &[Run]) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for o in runs.iter().flat_map(|r| &r.processed) {
        *counts.entry(*o).or_insert(0) += 1;
    }
    counts
}

#[test]
fn at_most_once_loses_the_rest_of_an_interrupted_poll_and_duplicates_nothing() {
    let runs = run("at-most-once");
    let counts = times_processed(&runs);
    assert!(counts.values().all(|n| *n == 1), "nothing processed twice");
    let lost: Vec<i64> = (0..RECORDS).filter(|o| !counts.contains_key(o)).collect();
    let expected: Vec<i64> = runs[..KILLS].iter().flat_map(Run::unfinished).collect();
    assert!(!expected.is_empty());
    assert_eq!(
        lost, expected,
        "exactly the unprocessed rest of each interrupted poll is lost"
    );
}

#[test]
fn at_least_once_reprocesses_an_interrupted_poll_and_loses_nothing() {
    let runs = run("at-least-once");
    let counts = times_processed(&runs);
    assert_eq!(counts.len() as i64, RECORDS, "every record processed");
    let duplicated: Vec<i64> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(o, _)| *o)
        .collect();
    let mut expected: Vec<i64> = runs[..KILLS]
        .iter()
        .flat_map(Run::processed_in_last_poll)
        .collect();
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(
        duplicated, expected,
        "exactly what the killed consumers processed of their last poll comes again"
    );
}
