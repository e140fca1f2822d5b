//! Shared by the integration tests: how to start a testkit role and a test seed.

#![allow(dead_code, unused_imports)]

use std::path::Path;
use std::process::Command;

pub use oncelog_testkit::harness::{self, Proc};

/// A command running `oncelog-testkit <role> --store <store> --topic <topic>`.
pub fn role(role: &str, store: &Path, topic: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oncelog-testkit"));
    cmd.arg(role)
        .arg("--store")
        .arg(store)
        .arg("--topic")
        .arg(topic)
        .env_remove("ONCELOG_FAILPOINTS");
    cmd
}

/// Appends `--name value` pairs to `cmd`.
pub fn with(cmd: &mut Command, pairs: &[(&str, String)]) {
    for (name, value) in pairs {
        cmd.arg(format!("--{name}")).arg(value);
    }
}

/// The PRNG seed of a test: `ONCELOG_TEST_SEED` if set, else `default`. Printed so a
/// failing run can be repeated.
pub fn seed(default: u64) -> u64 {
    let seed = std::env::var("ONCELOG_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("seed {seed} (set ONCELOG_TEST_SEED to repeat)");
    seed
}

/// A store in `dir` with topic `in` of 6 partitions holding `<p>:<i>` for `i` in
/// `0..per_partition` in each partition `p`, and an empty topic `out`: the input and
/// output of the consumer-group tests.
pub fn group_store(dir: &Path, per_partition: i64) -> oncelog::Store {
    use oncelog::{Record, Store, StoreOptions, TopicConfig};
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    store.create_topic("in", 6, TopicConfig::default()).unwrap();
    store
        .create_topic("out", 1, TopicConfig::default())
        .unwrap();
    for p in 0..6 {
        let values: Vec<String> = (0..per_partition).map(|i| format!("{p}:{i}")).collect();
        let records: Vec<Record> = values.iter().map(|v| Record::value(v.as_bytes())).collect();
        store.partition("in", p).unwrap().append(&records).unwrap();
    }
    store
}
