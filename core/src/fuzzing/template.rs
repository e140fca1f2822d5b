//! The small valid store that `open_store` damages: written once per process
//! through the public API, then kept in memory as a list of files.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use super::scratch::{list_files, ScratchDir};
use crate::consumer::TopicPartition;
use crate::{
    Consumer, ConsumerConfig, Header, Producer, ProducerConfig, ProducerRecord, Record, Store,
    StoreOptions, TopicConfig,
};

/// The data topic of the stores the targets build.
pub const TOPIC: &str = "t";
/// Its partitions.
pub const PARTITIONS: u32 = 2;
/// The consumer group whose offsets the template commits.
pub const GROUP: &str = "g";

/// Options that keep a store small and quick: tiny segments and indexes, no
/// pre-faulting thread, a short lock timeout (a hang becomes an error, not a stall).
pub fn options() -> StoreOptions {
    StoreOptions {
        reserve_bytes: 4096,
        prefault_bytes: 0,
        lock_timeout: Duration::from_secs(2),
        default_topic_config: topic_config(),
        ..StoreOptions::default()
    }
}

/// 1 KiB segments with an index entry every 64 bytes.
pub fn topic_config() -> TopicConfig {
    TopicConfig {
        segment_bytes: 1024,
        segment_index_bytes: 4096,
        index_interval_bytes: 64,
        ..TopicConfig::default()
    }
}

/// The template's files: relative path and bytes.
pub fn files() -> &'static [(PathBuf, Vec<u8>)] {
    static FILES: OnceLock<Vec<(PathBuf, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = ScratchDir::new("template");
        build(dir.path()).expect("build the template store");
        list_files(dir.path())
            .into_iter()
            .map(|rel| {
                let bytes = std::fs::read(dir.path().join(&rel)).expect("read the template");
                (rel, bytes)
            })
            .collect()
    })
}

/// Writes the template into the empty directory `root`.
pub fn write_to(root: &Path) {
    for (rel, bytes) in files() {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("write the template");
        }
        std::fs::write(&path, bytes).expect("write the template");
    }
}

/// A store with every kind of file: several segments per partition (indexes,
/// producer snapshots), plain, idempotent and transactional batches, a committed
/// and an aborted transaction (markers, a `.txnindex` entry, `__transaction_state`),
/// offsets committed by a consumer group and in a transaction (`__consumer_offsets`).
fn build(root: &Path) -> crate::Result<()> {
    let store = Store::open(root, options())?;
    store.create_topic(TOPIC, PARTITIONS, topic_config())?;
    let headers = [Header {
        key: "h",
        value: Some(b"v"),
    }];
    let t0 = store.partition(TOPIC, 0)?;
    for i in 0..12u8 {
        let value = [i; 40];
        let record = Record::keyed(b"k", &value).with_headers(&headers);
        t0.append(&[record, Record::value(b"second")])?;
    }
    let mut plain = ProducerConfig::default();
    plain.set("enable.idempotence", "false")?;
    let plain = Producer::new(&store, plain)?;
    plain.send_batch(TOPIC, 1, &[Record::value(b"plain"); 3])?;
    plain.close()?;
    let idempotent = Producer::new(&store, ProducerConfig::default())?;
    for i in 0..6u8 {
        idempotent.send(ProducerRecord::new(TOPIC, &[i; 30]).partition(1))?;
    }
    idempotent.flush()?;
    idempotent.close()?;

    let mut txn = ProducerConfig::default();
    txn.set("transactional.id", "tx")?;
    let txn = Producer::new(&store, txn)?;
    txn.init_transactions()?;
    txn.begin_transaction()?;
    txn.send(ProducerRecord::new(TOPIC, b"committed").partition(0))?;
    txn.send(ProducerRecord::new(TOPIC, b"committed").partition(1))?;
    txn.send_offsets_to_transaction(&[(TopicPartition::new(TOPIC, 0), 3)], GROUP)?;
    txn.commit_transaction()?;
    txn.begin_transaction()?;
    txn.send(ProducerRecord::new(TOPIC, b"aborted").partition(1))?;
    txn.abort_transaction()?;
    txn.close()?;

    let mut config = ConsumerConfig::default();
    config.set("group.id", GROUP)?;
    config.set("auto.offset.reset", "earliest")?;
    config.set("enable.auto.commit", "false")?;
    let mut consumer = Consumer::new(&store, config)?;
    consumer.assign(&[TopicPartition::new(TOPIC, 1)])?;
    consumer.poll(Duration::ZERO)?;
    consumer.commit()?;
    consumer.close()?;
    store.close()
}
