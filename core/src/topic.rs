//! Topic names (validated as Kafka validates them) and the topic metadata file
//! `topics/<name>.properties`: partition count and config, written atomically.

use std::path::{Path, PathBuf};

use crate::config::TopicConfig;
use crate::error::{bail, Error, ErrorKind, Result};
use crate::fs;

/// Longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_LEN: usize = 249;
/// Most partitions one topic may have.
pub const MAX_PARTITIONS: u32 = 10_000;

/// Checks `name` against Kafka's rules: 1 to 249 characters from `[a-zA-Z0-9._-]`,
/// not `.` or `..`.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!(InvalidTopicName, "topic name is empty");
    }
    if name == "." || name == ".." {
        bail!(InvalidTopicName, "topic name cannot be {name:?}");
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        bail!(
            InvalidTopicName,
            "topic name is {} characters, the limit is {MAX_TOPIC_NAME_LEN}",
            name.len()
        );
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        bail!(
            InvalidTopicName,
            "topic name {name:?} contains {bad:?}; only ASCII letters, digits, '.', '_' and '-' are allowed"
        );
    }
    Ok(())
}

/// The committed offsets of consumer groups.
pub const CONSUMER_OFFSETS: &str = "__consumer_offsets";
/// The transaction coordinator's log.
pub const TRANSACTION_STATE: &str = "__transaction_state";

/// True for the names oncelog keeps for its own logs.
pub fn is_internal(name: &str) -> bool {
    name == CONSUMER_OFFSETS || name == TRANSACTION_STATE
}

/// Kafka treats `.` and `_` as colliding (metric names replace one by the other).
pub fn collides(a: &str, b: &str) -> bool {
    a != b && a.replace('.', "_") == b.replace('.', "_")
}

/// What a topic is: its name, partition count and config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMeta {
    /// The topic name.
    pub name: String,
    /// Number of partitions, numbered from 0.
    pub partitions: u32,
    /// The topic's config.
    pub config: TopicConfig,
}

impl TopicMeta {
    /// The metadata file of `name` in store `root`.
    pub fn path(root: &Path, name: &str) -> PathBuf {
        root.join("topics").join(format!("{name}.properties"))
    }

    /// The directory of one partition: `<root>/<topic>-<partition>`.
    pub fn partition_dir(root: &Path, name: &str, partition: u32) -> PathBuf {
        root.join(format!("{name}-{partition}"))
    }

    /// Writes the metadata file atomically.
    pub fn save(&self, root: &Path) -> Result<()> {
        let mut text = format!("# oncelog topic\npartitions={}\n", self.partitions);
        for (k, v) in self.config.entries() {
            text.push_str(&format!("{k}={v}\n"));
        }
        fs::write_atomic(&TopicMeta::path(root, &self.name), text.as_bytes())
    }

    /// Reads the metadata file of `name`; [`ErrorKind::UnknownTopic`] when missing.
    pub fn load(root: &Path, name: &str) -> Result<TopicMeta> {
        let path = TopicMeta::path(root, name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!(UnknownTopic, "no topic {name:?} in {}", root.display())
            }
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let corrupt =
            |what: String| Error::new(ErrorKind::Corrupt, format!("{}: {what}", path.display()));
        let mut partitions = None;
        let mut config = TopicConfig::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| corrupt(format!("line {line:?} is not key=value")))?;
            if k == "partitions" {
                let n: u32 = v
                    .parse()
                    .map_err(|_| corrupt(format!("bad partition count {v:?}")))?;
                if n == 0 || n > MAX_PARTITIONS {
                    return Err(corrupt(format!("partition count {n} out of range")));
                }
                partitions = Some(n);
            } else {
                config
                    .set(k, v)
                    .map_err(|e| corrupt(e.message().to_string()))?;
            }
        }
        let partitions = partitions.ok_or_else(|| corrupt("no partitions= line".into()))?;
        Ok(TopicMeta {
            name: name.to_string(),
            partitions,
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka_rules() {
        for ok in ["a", "orders", "my.topic_v2-x", &"x".repeat(249)] {
            validate_name(ok).unwrap();
        }
        for bad in ["", ".", "..", "a b", "ü", "a/b", &"x".repeat(250)] {
            assert_eq!(
                validate_name(bad).unwrap_err().kind(),
                ErrorKind::InvalidTopicName,
                "{bad:?}"
            );
        }
        assert!(collides("a.b", "a_b"));
        assert!(!collides("a.b", "a.b"));
        assert!(!collides("ab", "a_b"));
    }

    #[test]
    fn metadata_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("topics")).unwrap();
        let mut config = TopicConfig::default();
        config.set("segment.bytes", "65536").unwrap();
        let meta = TopicMeta {
            name: "t".into(),
            partitions: 3,
            config,
        };
        meta.save(dir.path()).unwrap();
        assert_eq!(TopicMeta::load(dir.path(), "t").unwrap(), meta);
        assert_eq!(
            TopicMeta::load(dir.path(), "u").unwrap_err().kind(),
            ErrorKind::UnknownTopic
        );
    }
}
