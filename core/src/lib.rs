//! # oncelog
//!
//! An embedded, mmap-backed, append-only log in Kafka's on-disk format, shared by
//! many processes at once with no broker, and crash-safe: a process killed at any
//! instant loses nothing it was told was written.
//!
//! **What it is**: a library. A [`Store`] is a directory of topics; a topic has
//! partitions; a [`Partition`] is a totally ordered log of record batches in Kafka's
//! RecordBatch v2 format (CRC-32C, varint records, headers, timestamps). Appends
//! from any number of threads and processes are serialised by a robust process-shared
//! lock whose uncontended path makes no syscall; readers never take it, and a reader
//! blocked waiting for data sleeps on a futex in the shared control block.
//!
//! **What it is not (yet)**: a server, replicated, or portable beyond Linux.
//! Compressed batches are rejected. Durability beyond `written` needs
//! [`Durability::Synced`]: `written` survives any process crash but not power loss.
//!
//! ```
//! use oncelog::{Record, Store, StoreOptions, TopicConfig};
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path(), StoreOptions::default())?;
//! store.create_topic("orders", 1, TopicConfig::default())?;
//! let orders = store.partition("orders", 0)?;
//! let info = orders.append(&[Record::keyed(b"id-1", b"hello"), Record::value(b"world")])?;
//! assert_eq!((info.base_offset, info.last_offset), (0, 1));
//!
//! let mut reader = orders.reader(0)?;
//! while let Some(batch) = reader.next_batch()? {
//!     for record in batch.records() {
//!         let record = record?;
//!         println!("{} {:?}", record.offset, record.value);
//!     }
//! }
//! # Ok::<(), oncelog::Error>(())
//! ```

#![deny(clippy::host_endian_bytes)]

mod clock;
#[cfg(test)]
mod codec_props;
pub mod config;
pub mod consumer;
pub mod error;
#[doc(hidden)]
pub mod failpoint;
mod fork;
mod fs;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod group;
mod keys;
mod log;
pub mod offsets;
pub mod partition;
pub mod partitioner;
pub mod producer;
pub mod record;
mod shm;
pub mod store;
pub mod topic;
pub mod txn;
mod wire;

pub use config::{
    CommitMode, ConsumerConfig, Delivery, Durability, Isolation, OffsetReset, ProducerConfig,
    StoreOptions, TopicConfig,
};
pub use consumer::{Consumer, ConsumerRecord, TopicPartition};
pub use error::{Error, ErrorKind, Result};
pub use group::{
    describe_group, list_groups, GroupDescription, GroupMember, GroupMetadata, MemberStatus,
    PartitionOwner,
};
pub use log::reader::{ReadBatch, Reader};
pub use offsets::CommittedOffset;
pub use partition::{
    AppendInfo, AppendOptions, Partition, PartitionMetrics, ProducerState, SegmentInfo,
};
pub use producer::{DeliveryReport, Producer, ProducerRecord};
pub use record::{Header, Record, RecordView};
pub use store::Store;
pub use topic::TopicMeta;
