//! The small value classes: `Message`, `TopicPartition`, `GroupMetadata` and
//! `TopicMetadata`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

/// The offset of a `TopicPartition` that names none (confluent-kafka's
/// `OFFSET_INVALID`).
pub const OFFSET_INVALID: i64 = -1001;
/// "Start at the first offset still in the log", for `assign` and `seek`.
pub const OFFSET_BEGINNING: i64 = -2;
/// "Start at the end of the log", for `assign` and `seek`.
pub const OFFSET_END: i64 = -1;
/// "Start at the committed offset", for `assign` (the default).
pub const OFFSET_STORED: i64 = -1000;

/// A consumed (or delivered) record. Its fields are attributes: `topic`,
/// `partition`, `offset`, `key` and `value` (`bytes` or `None`), `headers` (`None`,
/// or a list of `(str, bytes | None)` pairs) and `timestamp` (milliseconds since
/// the Unix epoch). Immutable.
#[pyclass(frozen, module = "oncelog")]
pub struct Message {
    /// The topic.
    #[pyo3(get)]
    pub topic: Py<PyString>,
    /// The partition.
    #[pyo3(get)]
    pub partition: u32,
    /// The offset in the partition.
    #[pyo3(get)]
    pub offset: i64,
    /// The key, or `None`.
    #[pyo3(get)]
    pub key: Option<Py<PyBytes>>,
    /// The value, or `None` (a tombstone).
    #[pyo3(get)]
    pub value: Option<Py<PyBytes>>,
    /// The headers, or `None` when the record has none.
    #[pyo3(get)]
    pub headers: Option<Py<PyList>>,
    /// The record's timestamp, ms since the Unix epoch.
    #[pyo3(get)]
    pub timestamp: i64,
}

impl Message {
    /// The Python object of a message. One without headers holds only strings,
    /// bytes and ints, so it can never be part of a reference cycle: it is taken
    /// off the garbage collector's list, so that reading many messages does not
    /// make every collection walk them (a third of the cost of reading).
    pub fn new_bound(py: Python<'_>, message: Message) -> PyResult<Bound<'_, Message>> {
        let acyclic = message.headers.is_none();
        let obj = Bound::new(py, message)?;
        if acyclic {
            // SAFETY: a live object of a GC type; untracking only excludes it from
            // cycle detection, and it holds no reference that could close a cycle.
            unsafe { pyo3::ffi::PyObject_GC_UnTrack(obj.as_ptr().cast()) };
        }
        Ok(obj)
    }
}

#[pymethods]
impl Message {
    fn __repr__(&self, py: Python<'_>) -> String {
        let show = |b: &Option<Py<PyBytes>>| match b {
            None => "None".to_string(),
            Some(b) => {
                let bytes = b.bind(py).as_bytes();
                if bytes.len() > 40 {
                    format!("<{} bytes>", bytes.len())
                } else {
                    format!("{:?}", String::from_utf8_lossy(bytes))
                }
            }
        };
        format!(
            "Message(topic={:?}, partition={}, offset={}, key={}, value={}, timestamp={})",
            self.topic.bind(py).to_string(),
            self.partition,
            self.offset,
            show(&self.key),
            show(&self.value),
            self.timestamp
        )
    }
}

/// A topic and partition, with an offset where one is meant (the next record to
/// read, for `commit`, `committed`, `position`, `seek` and `assign`). Immutable,
/// hashable and ordered. `offset` is `OFFSET_INVALID` (-1001) when there is none;
/// `OFFSET_BEGINNING` (-2) and `OFFSET_END` (-1) stand for the ends of the log.
#[pyclass(frozen, eq, hash, ord, from_py_object, module = "oncelog")]
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    #[pyo3(get)]
    pub topic: String,
    /// The partition.
    #[pyo3(get)]
    pub partition: i64,
    /// The offset, or `OFFSET_INVALID`.
    #[pyo3(get)]
    pub offset: i64,
}

#[pymethods]
impl TopicPartition {
    #[new]
    #[pyo3(signature = (topic, partition = -1, offset = OFFSET_INVALID))]
    fn new(topic: String, partition: i64, offset: i64) -> TopicPartition {
        TopicPartition {
            topic,
            partition,
            offset,
        }
    }

    fn __repr__(&self) -> String {
        if self.offset == OFFSET_INVALID {
            format!(
                "TopicPartition(topic={:?}, partition={})",
                self.topic, self.partition
            )
        } else {
            format!(
                "TopicPartition(topic={:?}, partition={}, offset={})",
                self.topic, self.partition, self.offset
            )
        }
    }

    fn __getnewargs__(&self) -> (String, i64, i64) {
        (self.topic.clone(), self.partition, self.offset)
    }
}

impl TopicPartition {
    /// The core's topic-partition, checking the partition number.
    pub fn core(&self) -> PyResult<oncelog::TopicPartition> {
        Ok(oncelog::TopicPartition::new(
            self.topic.clone(),
            crate::convert::partition_number(self.partition)?,
        ))
    }

    /// From the core's, with `offset`.
    pub fn from_core(tp: &oncelog::TopicPartition, offset: i64) -> TopicPartition {
        TopicPartition {
            topic: tp.topic.clone(),
            partition: i64::from(tp.partition),
            offset,
        }
    }
}

/// What `Consumer.consumer_group_metadata()` returns and
/// `Producer.send_offsets_to_transaction` takes: the group, and the generation and
/// member the consumer was in. Offsets sent with it are refused once the group
/// moved on without that member (Kafka's KIP-447).
#[pyclass(frozen, module = "oncelog")]
pub struct GroupMetadata {
    pub inner: oncelog::GroupMetadata,
}

#[pymethods]
impl GroupMetadata {
    /// The consumer group.
    #[getter]
    fn group_id(&self) -> &str {
        &self.inner.group_id
    }

    /// The group generation (-1 for a consumer that assigned its partitions itself).
    #[getter]
    fn generation(&self) -> i64 {
        self.inner.generation
    }

    /// The member's token in the group (0 outside a subscription).
    #[getter]
    fn member_id(&self) -> i64 {
        self.inner.member
    }

    fn __repr__(&self) -> String {
        format!(
            "GroupMetadata(group_id={:?}, generation={}, member_id={})",
            self.inner.group_id, self.inner.generation, self.inner.member
        )
    }
}

/// A topic: its name, partition count and configuration (Kafka's keys to string
/// values).
#[pyclass(frozen, module = "oncelog")]
pub struct TopicMetadata {
    /// The topic name.
    #[pyo3(get)]
    pub name: String,
    /// The number of partitions.
    #[pyo3(get)]
    pub partitions: u32,
    config: Vec<(String, String)>,
}

#[pymethods]
impl TopicMetadata {
    /// The topic's configuration, as a new dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.config {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "TopicMetadata(name={:?}, partitions={})",
            self.name, self.partitions
        )
    }
}

impl TopicMetadata {
    /// From the core's.
    pub fn from_core(meta: &oncelog::TopicMeta) -> TopicMetadata {
        TopicMetadata {
            name: meta.name.clone(),
            partitions: meta.partitions,
            config: meta
                .config
                .entries()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }
}
