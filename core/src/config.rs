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
    pub reserve_bytes: u64,
    /// Bytes faulted into the mapping ahead of the writer by a background thread
    /// (default 4 MiB; 0 disables pre-faulting).
    pub prefault_bytes: u64,
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
    fn durability_accepts_kafka_acks() {
        assert_eq!("all".parse::<Durability>().unwrap(), Durability::Synced);
        assert_eq!("1".parse::<Durability>().unwrap(), Durability::Written);
        assert_eq!("0".parse::<Durability>().unwrap(), Durability::None);
        assert!("2".parse::<Durability>().is_err());
    }
}
