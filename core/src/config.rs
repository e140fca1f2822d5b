//! Configuration with Kafka's names: per-topic settings ([`TopicConfig`]) and the
//! options of one opened store ([`StoreOptions`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{bail, Error, ErrorKind, Result};

/// How far an append has gone before it returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Durability {
    /// Returns once handed over; nothing guaranteed (Kafka's `acks=0`).
    None,
    /// Returns once the batch is published in the shared mapping: survives the crash
    /// of any process, not of the machine (Kafka's `acks=1`).
    #[default]
    Written,
    /// Returns once the batch is on stable storage (`fdatasync`): survives power loss
    /// (Kafka's `acks=all` plus a flush).
    Synced,
}

impl FromStr for Durability {
    type Err = Error;

    /// Accepts `none`, `written`, `synced` and Kafka's `acks` values `0`, `1`, `all`, `-1`.
    fn from_str(s: &str) -> Result<Durability> {
        match s {
            "none" | "0" => Ok(Durability::None),
            "written" | "1" => Ok(Durability::Written),
            "synced" | "all" | "-1" => Ok(Durability::Synced),
            _ => bail!(
                InvalidConfig,
                "durability must be none, written or synced (or acks 0, 1, all), not {s:?}"
            ),
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Durability::None => "none",
            Durability::Written => "written",
            Durability::Synced => "synced",
        })
    }
}

/// Per-topic configuration, with Kafka's keys and defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicConfig {
    /// `segment.bytes`: size of one segment file (default 128 MiB; Kafka's is 1 GiB).
    /// A batch larger than this cannot be appended.
    pub segment_bytes: u64,
    /// `segment.ms`: roll a segment whose first batch is older than this (default 7 days).
    pub segment_ms: i64,
    /// `retention.ms`: delete segments whose newest record is older (-1: keep forever;
    /// default 7 days, as Kafka).
    pub retention_ms: i64,
    /// `retention.bytes`: delete old segments while the partition is larger (-1: no limit).
    pub retention_bytes: i64,
    /// `max.message.bytes`: largest batch accepted (default 1048588, as Kafka).
    pub max_message_bytes: u32,
    /// `index.interval.bytes`: log bytes between two offset-index entries (default 4096).
    pub index_interval_bytes: u32,
    /// `segment.index.bytes`: upper bound of one index file (default 10 MiB).
    pub segment_index_bytes: u32,
}

impl Default for TopicConfig {
    fn default() -> TopicConfig {
        TopicConfig {
            segment_bytes: 128 * 1024 * 1024,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Smallest `segment.bytes` accepted: room for a few small batches.
pub const MIN_SEGMENT_BYTES: u64 = 1024;
/// Largest `segment.bytes` accepted: positions in the offset index are 32-bit.
pub const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

impl TopicConfig {
    /// The keys [`set`](Self::set) accepts.
    pub const KEYS: [&'static str; 7] = [
        "segment.bytes",
        "segment.ms",
        "retention.ms",
        "retention.bytes",
        "max.message.bytes",
        "index.interval.bytes",
        "segment.index.bytes",
    ];

    /// Sets one key from its string value, validating it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        fn int<T: FromStr>(key: &str, value: &str) -> Result<T> {
            value.trim().parse::<T>().map_err(|_| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!("{key} must be an integer in range, not {value:?}"),
                )
            })
        }
        match key {
            "segment.bytes" => {
                let v: u64 = int(key, value)?;
                if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&v) {
                    bail!(
                        InvalidConfig,
                        "segment.bytes must be between {MIN_SEGMENT_BYTES} and {MAX_SEGMENT_BYTES}, not {v}"
                    );
                }
                self.segment_bytes = v;
            }
            "segment.ms" => {
                let v: i64 = int(key, value)?;
                if v < 1 {
                    bail!(InvalidConfig, "segment.ms must be at least 1, not {v}");
                }
                self.segment_ms = v;
            }
            "retention.ms" | "retention.bytes" => {
                let v: i64 = int(key, value)?;
                if v < -1 {
                    bail!(
                        InvalidConfig,
                        "{key} must be -1 (unlimited) or more, not {v}"
                    );
                }
                if key == "retention.ms" {
                    self.retention_ms = v;
                } else {
                    self.retention_bytes = v;
                }
            }
            "max.message.bytes" => {
                let v: u32 = int(key, value)?;
                if v < 64 || v > i32::MAX as u32 {
                    bail!(
                        InvalidConfig,
                        "max.message.bytes must be between 64 and {}, not {v}",
                        i32::MAX
                    );
                }
                self.max_message_bytes = v;
            }
            "index.interval.bytes" => {
                let v: u32 = int(key, value)?;
                if v == 0 || v > i32::MAX as u32 {
                    bail!(
                        InvalidConfig,
                        "index.interval.bytes must be positive, not {v}"
                    );
                }
                self.index_interval_bytes = v;
            }
            "segment.index.bytes" => {
                let v: u32 = int(key, value)?;
                if v < 4096 || v > i32::MAX as u32 {
                    bail!(
                        InvalidConfig,
                        "segment.index.bytes must be at least 4096, not {v}"
                    );
                }
                self.segment_index_bytes = v;
            }
            _ => bail!(
                InvalidConfig,
                "unknown topic config {key:?}; known keys: {}",
                TopicConfig::KEYS.join(", ")
            ),
        }
        Ok(())
    }

    /// The default config with `pairs` applied in order.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<TopicConfig> {
        let mut config = TopicConfig::default();
        for (k, v) in pairs {
            config.set(k, v)?;
        }
        Ok(config)
    }

    /// The value of `key` as Kafka would print it.
    pub fn get(&self, key: &str) -> Option<String> {
        Some(match key {
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            "retention.ms" => self.retention_ms.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            "index.interval.bytes" => self.index_interval_bytes.to_string(),
            "segment.index.bytes" => self.segment_index_bytes.to_string(),
            _ => return None,
        })
    }

    /// Every key with its value, in [`KEYS`](Self::KEYS) order.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        TopicConfig::KEYS
            .iter()
            .map(|k| (*k, self.get(k).expect("every listed key has a value")))
            .collect()
    }
}

/// Options for one [`Store::open`](crate::Store::open).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Create the directory and its metadata when missing (default true).
    pub create: bool,
    /// Durability of appends that do not choose their own (default `written`).
    pub durability: Durability,
    /// Longest wait for the append lock before [`ErrorKind::Timeout`] (default 30 s).
    /// A holder that died is detected at once; this only bounds a live, hung holder.
    pub lock_timeout: Duration,
    /// Bytes of disk reserved ahead of the writer in one `fallocate` (default 8 MiB).
    /// A process that waits for syncs of its appends writes them with `pwrite` and
    /// reserves 1 MiB of written zeros at a time instead (see docs/ARCHITECTURE.md).
    pub reserve_bytes: u64,
    /// Bytes faulted into the mapping ahead of the writer by a background thread
    /// (default 4 MiB; 0 disables pre-faulting). Not used for appends written with
    /// `pwrite`.
    pub prefault_bytes: u64,
    /// Whether a thread leading a sync may move itself, for that sync alone, to the
    /// CPU where this process saw syncs of the disk complete clearly faster
    /// (default true; see docs/ARCHITECTURE.md). Its own affinity is restored
    /// right after, and a CPU outside it is never used.
    pub steer_syncs: bool,
    /// Config for topics created without their own.
    pub default_topic_config: TopicConfig,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            create: true,
            durability: Durability::Written,
            lock_timeout: Duration::from_secs(30),
            reserve_bytes: 8 * 1024 * 1024,
            prefault_bytes: 4 * 1024 * 1024,
            steer_syncs: true,
            default_topic_config: TopicConfig::default(),
        }
    }
}

impl StoreOptions {
    /// Checks the options for values no store can work with.
    pub fn validate(&self) -> Result<()> {
        if self.reserve_bytes < 4096 {
            bail!(
                InvalidConfig,
                "reserve_bytes must be at least 4096, not {}",
                self.reserve_bytes
            );
        }
        if self.lock_timeout.is_zero() {
            bail!(InvalidConfig, "lock_timeout must be positive");
        }
        Ok(())
    }
}

/// Applies `pairs` with `set`, the `delivery` preset first wherever it appears, so
/// that the other keys refine it.
fn apply_preset_first<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    mut set: impl FnMut(&str, &str) -> Result<()>,
) -> Result<()> {
    let (presets, others): (Vec<_>, Vec<_>) =
        pairs.into_iter().partition(|(k, _)| *k == "delivery");
    presets
        .into_iter()
        .chain(others)
        .try_for_each(|(k, v)| set(k, v))
}

/// The three delivery guarantees, as one word that sets the individual options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Loss possible, never a duplicate: the producer does not retry; a consumer
    /// commits before it processes.
    AtMostOnce,
    /// Nothing lost, duplicates possible: the producer retries; a consumer commits
    /// after it processed.
    AtLeastOnce,
    /// Nothing lost, nothing twice: idempotent producer, transactions, offsets
    /// committed in the transaction.
    ExactlyOnce,
}

impl FromStr for Delivery {
    type Err = Error;

    fn from_str(s: &str) -> Result<Delivery> {
        match s {
            "at-most-once" => Ok(Delivery::AtMostOnce),
            "at-least-once" => Ok(Delivery::AtLeastOnce),
            "exactly-once" => Ok(Delivery::ExactlyOnce),
            _ => bail!(
                InvalidConfig,
                "delivery must be at-most-once, at-least-once or exactly-once, not {s:?}"
            ),
        }
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Delivery::AtMostOnce => "at-most-once",
            Delivery::AtLeastOnce => "at-least-once",
            Delivery::ExactlyOnce => "exactly-once",
        })
    }
}

/// A producer's configuration, with Kafka's keys. Build it with
/// [`from_pairs`](Self::from_pairs) (string keys and values, as the C and Python
/// layers pass them) or by setting fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerConfig {
    /// `enable.idempotence` (default true): batches carry a producer id, epoch and
    /// sequence numbers, so a retry never appends twice.
    pub enable_idempotence: bool,
    /// `acks`: how far an append goes before its delivery is reported
    /// (`none`/`written`/`synced`, or Kafka's `0`/`1`/`all`; default `written`).
    pub acks: Durability,
    /// `linger.ms` (default 0): how long a record may wait for others to share its
    /// batch. With 0 every `send` appends at once.
    pub linger_ms: u64,
    /// `batch.size` (default 16384): a partition's pending batch is appended once it
    /// holds this many bytes.
    pub batch_size: usize,
    /// `retries` (default `u32::MAX`): how often a batch is tried again after a
    /// retriable error (a full disk, a lock timeout), within `delivery.timeout.ms`.
    pub retries: u32,
    /// `retry.backoff.ms` (default 100): the pause between two tries.
    pub retry_backoff_ms: u64,
    /// `delivery.timeout.ms` (default 120000): the longest a record is retried.
    pub delivery_timeout_ms: u64,
    /// `transactional.id`: makes the producer transactional (requires idempotence).
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms` (default 60000): a transaction open longer is aborted.
    pub transaction_timeout_ms: u64,
    /// `metadata.max.age.ms` (default 300000): how long the producer trusts what it
    /// read of a topic (its partition count and size limits) before reading it again.
    /// A record sent to a partition beyond the known count makes it read again at
    /// once, so partitions added meanwhile are found; records without a partition
    /// spread over the new ones once the metadata is read again, as in Kafka.
    pub metadata_max_age_ms: u64,
}

impl Default for ProducerConfig {
    fn default() -> ProducerConfig {
        ProducerConfig {
            enable_idempotence: true,
            acks: Durability::Written,
            linger_ms: 0,
            batch_size: 16_384,
            retries: u32::MAX,
            retry_backoff_ms: 100,
            delivery_timeout_ms: 120_000,
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            metadata_max_age_ms: 300_000,
        }
    }
}

impl ProducerConfig {
    /// The keys [`set`](Self::set) accepts.
    pub const KEYS: [&'static str; 11] = [
        "delivery",
        "enable.idempotence",
        "acks",
        "linger.ms",
        "batch.size",
        "retries",
        "retry.backoff.ms",
        "delivery.timeout.ms",
        "transactional.id",
        "transaction.timeout.ms",
        "metadata.max.age.ms",
    ];

    /// The settings a delivery preset stands for.
    pub fn preset(delivery: Delivery) -> ProducerConfig {
        let base = ProducerConfig::default();
        match delivery {
            Delivery::AtMostOnce => ProducerConfig {
                enable_idempotence: false,
                retries: 0,
                ..base
            },
            Delivery::AtLeastOnce => ProducerConfig {
                enable_idempotence: false,
                ..base
            },
            Delivery::ExactlyOnce => ProducerConfig {
                enable_idempotence: true,
                ..base
            },
        }
    }

    /// Sets one key from its string value, validating it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        fn int<T: FromStr>(key: &str, value: &str) -> Result<T> {
            value.trim().parse::<T>().map_err(|_| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!("{key} must be a non-negative integer in range, not {value:?}"),
                )
            })
        }
        match key {
            "delivery" => {
                let keep_txn = self.transactional_id.take();
                *self = ProducerConfig {
                    transactional_id: keep_txn,
                    ..ProducerConfig::preset(value.parse()?)
                };
            }
            "enable.idempotence" => {
                self.enable_idempotence = match value {
                    "true" => true,
                    "false" => false,
                    _ => bail!(
                        InvalidConfig,
                        "enable.idempotence must be true or false, not {value:?}"
                    ),
                }
            }
            "acks" => self.acks = value.parse()?,
            "linger.ms" => self.linger_ms = int(key, value)?,
            "batch.size" => self.batch_size = int(key, value)?,
            "retries" => self.retries = int(key, value)?,
            "retry.backoff.ms" => self.retry_backoff_ms = int(key, value)?,
            "delivery.timeout.ms" => self.delivery_timeout_ms = int(key, value)?,
            "metadata.max.age.ms" => self.metadata_max_age_ms = int(key, value)?,
            "transactional.id" => {
                if value.is_empty() {
                    bail!(InvalidConfig, "transactional.id must not be empty");
                }
                if value.len() > crate::wire::MAX_STR_LEN {
                    bail!(
                        InvalidConfig,
                        "transactional.id must be at most {} bytes",
                        crate::wire::MAX_STR_LEN
                    );
                }
                self.transactional_id = Some(value.to_string());
            }
            "transaction.timeout.ms" => {
                let v: u64 = int(key, value)?;
                if v == 0 {
                    bail!(InvalidConfig, "transaction.timeout.ms must be positive");
                }
                self.transaction_timeout_ms = v;
            }
            _ => bail!(
                InvalidConfig,
                "unknown producer config {key:?}; known keys: {}",
                ProducerConfig::KEYS.join(", ")
            ),
        }
        Ok(())
    }

    /// The default config with `pairs` applied; a `delivery` preset is applied first
    /// wherever it appears, so the other keys refine it.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<ProducerConfig> {
        let mut config = ProducerConfig::default();
        apply_preset_first(pairs, |k, v| config.set(k, v))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks combinations Kafka also refuses.
    pub fn validate(&self) -> Result<()> {
        if self.transactional_id.is_some() && !self.enable_idempotence {
            bail!(
                InvalidConfig,
                "transactional.id requires enable.idempotence=true"
            );
        }
        if self.enable_idempotence && self.retries == 0 {
            bail!(
                InvalidConfig,
                "enable.idempotence=true requires retries > 0"
            );
        }
        if self.batch_size == 0 {
            bail!(InvalidConfig, "batch.size must be positive");
        }
        Ok(())
    }
}

/// Where a consumer starts in a partition for which its group has no committed
/// offset (Kafka's `auto.offset.reset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OffsetReset {
    /// The first offset still in the log.
    Earliest,
    /// The end: only records appended from now on.
    Latest,
    /// No default: `poll` fails with `offset_out_of_range`.
    None,
}

/// Which records a consumer sees (Kafka's `isolation.level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// Everything up to the end of the log, including records of open or aborted
    /// transactions.
    ReadUncommitted,
    /// Only records of committed transactions (and non-transactional ones), up to the
    /// last stable offset.
    ReadCommitted,
}

/// When a consumer commits the offsets of the records it handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommitMode {
    /// Only when the application calls `commit`.
    Manual,
    /// Kafka's auto-commit: on `poll`, at most every `auto.commit.interval.ms`, the
    /// positions of records handed out before (so after they were processed).
    Auto,
    /// at-most-once: before records are handed out, in the `poll` that returns them.
    BeforeProcessing,
    /// at-least-once: after processing, i.e. at the next `poll` and on `close`.
    AfterProcessing,
    /// exactly-once: only through a producer's transaction.
    Transactional,
}

/// A consumer's configuration, with Kafka's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// `group.id`: the consumer group whose offsets are committed and read.
    pub group_id: Option<String>,
    /// How offsets are committed (`enable.auto.commit` and the `delivery` preset).
    pub commit_mode: CommitMode,
    /// `auto.commit.interval.ms` (default 5000).
    pub auto_commit_interval_ms: u64,
    /// `auto.offset.reset` (default `latest`).
    pub auto_offset_reset: OffsetReset,
    /// `isolation.level` (default `read_uncommitted`).
    pub isolation: Isolation,
    /// `max.poll.records` (default 500).
    pub max_poll_records: usize,
    /// `session.timeout.ms` (default 45000, at least 100): a group member that has
    /// not polled for this long drops out of the group and its partitions move to
    /// the others (Kafka's session and `max.poll.interval.ms` in one: a member's
    /// liveness is its polling).
    pub session_timeout_ms: u64,
}

impl Default for ConsumerConfig {
    fn default() -> ConsumerConfig {
        ConsumerConfig {
            group_id: None,
            commit_mode: CommitMode::Auto,
            auto_commit_interval_ms: 5000,
            auto_offset_reset: OffsetReset::Latest,
            isolation: Isolation::ReadUncommitted,
            max_poll_records: 500,
            session_timeout_ms: 45_000,
        }
    }
}

impl ConsumerConfig {
    /// The keys [`set`](Self::set) accepts.
    pub const KEYS: [&'static str; 8] = [
        "delivery",
        "group.id",
        "enable.auto.commit",
        "auto.commit.interval.ms",
        "auto.offset.reset",
        "isolation.level",
        "max.poll.records",
        "session.timeout.ms",
    ];

    /// Sets one key from its string value, validating it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let int = |value: &str| -> Result<u64> {
            value.trim().parse::<u64>().map_err(|_| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!("{key} must be a non-negative integer, not {value:?}"),
                )
            })
        };
        match key {
            "delivery" => match value.parse::<Delivery>()? {
                Delivery::AtMostOnce => self.commit_mode = CommitMode::BeforeProcessing,
                Delivery::AtLeastOnce => self.commit_mode = CommitMode::AfterProcessing,
                Delivery::ExactlyOnce => {
                    self.commit_mode = CommitMode::Transactional;
                    self.isolation = Isolation::ReadCommitted;
                }
            },
            "group.id" => {
                if value.is_empty() {
                    bail!(InvalidConfig, "group.id must not be empty");
                }
                if value.len() > crate::wire::MAX_STR_LEN {
                    bail!(
                        InvalidConfig,
                        "group.id must be at most {} bytes",
                        crate::wire::MAX_STR_LEN
                    );
                }
                self.group_id = Some(value.to_string());
            }
            "enable.auto.commit" => {
                self.commit_mode = match value {
                    "true" => CommitMode::Auto,
                    "false" => CommitMode::Manual,
                    _ => bail!(
                        InvalidConfig,
                        "enable.auto.commit must be true or false, not {value:?}"
                    ),
                }
            }
            "auto.commit.interval.ms" => self.auto_commit_interval_ms = int(value)?,
            "auto.offset.reset" => {
                self.auto_offset_reset = match value {
                    "earliest" | "smallest" | "beginning" => OffsetReset::Earliest,
                    "latest" | "largest" | "end" => OffsetReset::Latest,
                    "none" | "error" => OffsetReset::None,
                    _ => bail!(
                        InvalidConfig,
                        "auto.offset.reset must be earliest, latest or none, not {value:?}"
                    ),
                }
            }
            "isolation.level" => {
                self.isolation = match value {
                    "read_uncommitted" => Isolation::ReadUncommitted,
                    "read_committed" => Isolation::ReadCommitted,
                    _ => bail!(
                        InvalidConfig,
                        "isolation.level must be read_uncommitted or read_committed, not {value:?}"
                    ),
                }
            }
            "max.poll.records" => {
                let v = int(value)?;
                if v == 0 {
                    bail!(InvalidConfig, "max.poll.records must be positive");
                }
                self.max_poll_records = usize::try_from(v).unwrap_or(usize::MAX);
            }
            "session.timeout.ms" => {
                let v = int(value)?;
                if v < 100 {
                    bail!(
                        InvalidConfig,
                        "session.timeout.ms must be at least 100 (members look at the group every 20 ms), not {v}"
                    );
                }
                self.session_timeout_ms = v;
            }
            _ => bail!(
                InvalidConfig,
                "unknown consumer config {key:?}; known keys: {}",
                ConsumerConfig::KEYS.join(", ")
            ),
        }
        Ok(())
    }

    /// The default config with `pairs` applied; a `delivery` preset first, wherever
    /// it appears, so the other keys refine it.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<ConsumerConfig> {
        let mut config = ConsumerConfig::default();
        apply_preset_first(pairs, |k, v| config.set(k, v))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_keys_and_rejects_bad_values() {
        let c =
            TopicConfig::from_pairs([("segment.bytes", "4096"), ("retention.ms", "-1")]).unwrap();
        assert_eq!(c.segment_bytes, 4096);
        assert_eq!(c.retention_ms, -1);
        assert_eq!(c.get("segment.bytes").as_deref(), Some("4096"));
        for (k, v) in [
            ("segment.bytes", "12"),
            ("segment.bytes", "lots"),
            ("retention.ms", "-2"),
            ("no.such.key", "1"),
            ("max.message.bytes", "-5"),
        ] {
            let err = TopicConfig::from_pairs([(k, v)]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{k}={v}");
        }
    }

    #[test]
    fn producer_presets_expand_and_keys_refine_them() {
        let c =
            ProducerConfig::from_pairs([("retries", "3"), ("delivery", "at-least-once")]).unwrap();
        assert!(!c.enable_idempotence);
        assert_eq!(c.retries, 3, "keys refine the preset wherever it appears");
        let c = ProducerConfig::from_pairs([("delivery", "at-most-once")]).unwrap();
        assert_eq!((c.enable_idempotence, c.retries), (false, 0));
        let c = ProducerConfig::from_pairs([
            ("delivery", "exactly-once"),
            ("transactional.id", "t1"),
            ("acks", "all"),
        ])
        .unwrap();
        assert!(c.enable_idempotence);
        assert_eq!(c.acks, Durability::Synced);
        assert_eq!(c.transactional_id.as_deref(), Some("t1"));
        for pairs in [
            vec![("delivery", "twice")],
            vec![("enable.idempotence", "yes")],
            vec![("linger.ms", "-1")],
            vec![("transactional.id", "t"), ("enable.idempotence", "false")],
            vec![("retries", "0")],
            vec![("bogus", "1")],
        ] {
            assert_eq!(
                ProducerConfig::from_pairs(pairs.clone())
                    .unwrap_err()
                    .kind(),
                ErrorKind::InvalidConfig,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn durability_accepts_kafka_acks() {
        assert_eq!("all".parse::<Durability>().unwrap(), Durability::Synced);
        assert_eq!("1".parse::<Durability>().unwrap(), Durability::Written);
        assert_eq!("0".parse::<Durability>().unwrap(), Durability::None);
        assert!("2".parse::<Durability>().is_err());
    }
}
