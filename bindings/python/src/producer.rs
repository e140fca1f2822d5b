//! `oncelog.Producer`: the core producer with confluent-kafka's calls (`produce`,
//! `poll` serving delivery callbacks, `flush`, the transaction calls) and a bulk
//! `produce_batch`.
//!
//! With `linger.ms = 0` (the default) the core appends every `send` at once, as
//! its own batch. The binding does the same through `send_batch` with one record,
//! choosing the partition with the core's own partitioners (Kafka's murmur2 of the
//! key, else the sticky partitioner) and topic metadata it caches for a second
//! (reading the topic's metadata file per record would cost more than the whole
//! append). With `linger.ms > 0` records go through the
//! core's `send` (its batching, linger thread and delivery reports).
//!
//! A delivery callback is called from `poll` or `flush`, never from another thread,
//! as confluent-kafka does. An append that fails inside `produce` raises there and
//! calls no callback; with `linger.ms > 0` a failure is only known later: it goes to
//! the record's callback, or, for a record without one, is raised by the next
//! `flush`.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use oncelog::partitioner::{partition_for_key, StickyPartitioner};
use oncelog::record::encoded_batch_len;
use oncelog::{ErrorKind, Header, ProducerConfig, ProducerRecord, Record};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::convert::{
    as_pybytes, bytes_arg, config_arg, headers_arg, headers_to_py, pair_views, timeout_arg,
};
use crate::errors::{binding_error, to_pyerr, OrRaise};
use crate::store::store_arg;
use crate::types::{GroupMetadata, Message, TopicPartition};

/// How long cached topic metadata (partition count, size limit) is trusted before it
/// is read again: partitions may be added by any process.
const TOPIC_REFRESH_MS: i64 = 1000;
/// Upper bound of the bytes a record adds to a batch beyond its key, value and header
/// bytes (length, attributes, timestamp and offset deltas, field lengths).
const RECORD_OVERHEAD: u64 = 40;
/// Upper bound of a header's bytes beyond its key and value.
const HEADER_OVERHEAD: u64 = 10;
/// A batch's header.
const BATCH_HEADER: u64 = oncelog::record::BATCH_HEADER_LEN as u64;

/// A cheap monotonic clock in milliseconds (`CLOCK_MONOTONIC_COARSE`: a few ns, a
/// few ms of resolution), for deciding when cached topic metadata is stale.
#[allow(clippy::useless_conversion)] // time_t and c_long are i64 here, not everywhere
fn coarse_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    i64::from(ts.tv_sec) * 1000 + i64::from(ts.tv_nsec) / 1_000_000
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What the producer knows of a topic it produced to.
struct TopicEntry {
    name: Arc<str>,
    py_name: Py<PyString>,
    partitions: NonZeroU32,
    /// The largest batch the topic accepts (`max.message.bytes`, `segment.bytes`).
    limit: u64,
    checked_ms: i64,
}

/// Partition choice: the topics seen, the last topic object (compared by identity,
/// so that a loop producing to one topic never decodes its name again), and the
/// sticky partitioner for records without a key.
struct Routing {
    /// The last topic object (kept alive, so that its address stays its own) and
    /// its entry.
    last: Option<(Py<PyString>, usize)>,
    topics: Vec<TopicEntry>,
    by_name: HashMap<String, usize>,
    sticky: StickyPartitioner,
}

/// Where a record goes, copied out of the routing table.
struct Route {
    name: Arc<str>,
    /// The interned name, when asked for (a message for a delivery callback).
    py_name: Option<Py<PyString>>,
    partitions: NonZeroU32,
    limit: u64,
}

/// A delivered (or failed) record whose callback is still to be called.
struct Ready {
    callback: Py<PyAny>,
    error: Option<oncelog::Error>,
    message: Message,
}

/// A record sent through the core's batching whose report has not come yet.
struct Waiting {
    callback: Option<Py<PyAny>>,
    message: Message,
}

#[derive(Default)]
struct Reports {
    ready: VecDeque<Ready>,
    /// `linger.ms > 0`: records with a callback, by the core's token.
    waiting: HashMap<u64, Waiting>,
    /// `linger.ms > 0`: the first failure of a record without a callback (and how
    /// many failed), raised by the next `flush`.
    failed: Option<oncelog::Error>,
    failed_count: u64,
}

/// A producer: appends records to a store's topics, with Kafka's config names
/// (`acks`, `enable.idempotence`, `transactional.id`, `linger.ms`, the `delivery`
/// preset, ...). Safe to share between threads.
#[pyclass(frozen, module = "oncelog")]
pub struct Producer {
    core: RwLock<Option<oncelog::Producer>>,
    /// For topic metadata; dropped by `close`, so that a closed producer does not
    /// keep the store open.
    store: RwLock<Option<oncelog::Store>>,
    lingering: bool,
    transactional: bool,
    default_callback: Option<Py<PyAny>>,
    routing: Mutex<Routing>,
    reports: Mutex<Reports>,
    /// `linger.ms > 0`: held while a record is sent and its callback registered,
    /// and while the core's reports are taken, so that no report comes before its
    /// callback is known.
    send_lock: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn closed() -> PyErr {
    binding_error(ErrorKind::Closed, "the producer is closed")
}

fn check_callable(cb: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
    if cb.is_callable() {
        Ok(())
    } else {
        Err(PyTypeError::new_err(format!(
            "{what} must be callable as {what}(err, msg)"
        )))
    }
}

/// An upper bound of a record's encoded size in a batch.
fn record_bound(r: &Record<'_>) -> u64 {
    RECORD_OVERHEAD
        + r.key.map_or(0, |k| k.len() as u64)
        + r.value.map_or(0, |v| v.len() as u64)
        + r.headers
            .iter()
            .map(|h| HEADER_OVERHEAD + h.key.len() as u64 + h.value.map_or(0, |v| v.len() as u64))
            .sum::<u64>()
}

/// Refuses a record larger than the topic accepts before any run of a
/// `produce_batch` is appended, so that a batch holding one is refused whole. (A
/// transactional producer leaves it to the core: the transaction must then abort, as
/// Kafka's does after a failed send.)
fn check_size(route: &Route, records: &[Record<'_>], bound: u64) -> PyResult<()> {
    if BATCH_HEADER + bound <= route.limit {
        return Ok(());
    }
    let len = encoded_batch_len(records, now_ms()) as u64;
    if len > route.limit {
        return Err(binding_error(
            ErrorKind::RecordTooLarge,
            format!(
                "a batch of {len} bytes exceeds the limit of {} bytes (max.message.bytes, segment.bytes) of topic {:?}; nothing was appended",
                route.limit, &*route.name
            ),
        ));
    }
    Ok(())
}

impl Producer {
    /// Runs `f` on the core producer; `Closed` after `close()`.
    fn with_core<T>(&self, f: impl FnOnce(&oncelog::Producer) -> PyResult<T>) -> PyResult<T> {
        let guard = self.core.read().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(p) => f(p),
            None => Err(closed()),
        }
    }

    /// As [`with_core`](Self::with_core), with the GIL released around `f`.
    fn detached<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&oncelog::Producer) -> oncelog::Result<T> + Send,
    ) -> PyResult<T> {
        let result = py.detach(|| {
            let guard = self.core.read().unwrap_or_else(|p| p.into_inner());
            guard.as_ref().map(f)
        });
        match result {
            Some(r) => r.or_raise(),
            None => Err(closed()),
        }
    }

    /// The route of `topic` (a `str`), reading its metadata when new or stale; with
    /// its interned name if `named`.
    fn route(&self, py: Python<'_>, topic: &Bound<'_, PyAny>, named: bool) -> PyResult<Route> {
        let now = coarse_ms();
        let mut routing = lock(&self.routing);
        let index = match &routing.last {
            Some((last, i)) if last.as_ptr() == topic.as_ptr() => *i,
            _ => {
                let s = topic.cast::<PyString>().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "topic must be a str, not {}",
                        topic
                            .get_type()
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    ))
                })?;
                let name = s.to_cow()?;
                let i = match routing.by_name.get(&*name) {
                    Some(i) => *i,
                    None => {
                        let entry = self.load_topic(py, &name, now)?;
                        routing.topics.push(entry);
                        let i = routing.topics.len() - 1;
                        routing.by_name.insert(name.into_owned(), i);
                        i
                    }
                };
                routing.last = Some((s.clone().unbind(), i));
                i
            }
        };
        if now - routing.topics[index].checked_ms > TOPIC_REFRESH_MS {
            let name = routing.topics[index].name.clone();
            routing.topics[index] = self.load_topic(py, &name, now)?;
        }
        let e = &routing.topics[index];
        Ok(Route {
            name: e.name.clone(),
            py_name: named.then(|| e.py_name.clone_ref(py)),
            partitions: e.partitions,
            limit: e.limit,
        })
    }

    fn load_topic(&self, py: Python<'_>, name: &str, now: i64) -> PyResult<TopicEntry> {
        let store = self
            .store
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(closed)?;
        let meta = store.topic(name).or_raise()?;
        let partitions = NonZeroU32::new(meta.partitions).ok_or_else(|| {
            binding_error(
                ErrorKind::Corrupt,
                format!("topic {name:?} has no partitions"),
            )
        })?;
        Ok(TopicEntry {
            name: Arc::from(name),
            py_name: PyString::intern(py, name).unbind(),
            partitions,
            limit: u64::from(meta.config.max_message_bytes).min(meta.config.segment_bytes),
            checked_ms: now,
        })
    }

    /// Rereads a topic whose partition count looks too small (partitions added).
    fn refresh(&self, py: Python<'_>, name: &str) -> PyResult<NonZeroU32> {
        let mut routing = lock(&self.routing);
        let entry = self.load_topic(py, name, coarse_ms())?;
        let partitions = entry.partitions;
        if let Some(i) = routing.by_name.get(name).copied() {
            routing.topics[i] = entry;
        }
        Ok(partitions)
    }

    /// The partition a record goes to: `partition` if given (and it exists), else
    /// Kafka's hash of the key, else the sticky partition.
    fn choose(
        &self,
        py: Python<'_>,
        route: &Route,
        partition: Option<i64>,
        key: Option<&[u8]>,
    ) -> PyResult<u32> {
        match partition {
            Some(p) if p != -1 => {
                let p = crate::convert::partition_number(p)?;
                if p < route.partitions.get() || p < self.refresh(py, &route.name)?.get() {
                    Ok(p)
                } else {
                    Err(binding_error(
                        ErrorKind::UnknownPartition,
                        format!(
                            "topic {:?} has {} partitions; there is no partition {p}",
                            &*route.name, route.partitions
                        ),
                    ))
                }
            }
            _ => Ok(match key {
                Some(k) => partition_for_key(k, route.partitions),
                None => lock(&self.routing)
                    .sticky
                    .partition(&route.name, route.partitions),
            }),
        }
    }

    /// Takes the core's delivery reports (`linger.ms > 0`) into `reports`.
    fn collect(&self, _py: Python<'_>) -> PyResult<()> {
        if !self.lingering {
            return Ok(());
        }
        let reports = {
            let _sending = lock(&self.send_lock);
            self.with_core(|p| Ok(p.poll()))?
        };
        if reports.is_empty() {
            return Ok(());
        }
        let mut state = lock(&self.reports);
        for r in reports {
            let waiting = state.waiting.remove(&r.token);
            let (offset, error) = match r.result {
                Ok(o) => (o, None),
                Err(e) => (-1, Some(e)),
            };
            match waiting {
                Some(Waiting {
                    callback: Some(callback),
                    mut message,
                }) => {
                    message.partition = r.partition;
                    message.offset = offset;
                    state.ready.push_back(Ready {
                        callback,
                        error,
                        message,
                    });
                }
                _ => {
                    if let Some(e) = error {
                        state.failed_count += 1;
                        state.failed.get_or_insert(e);
                    }
                }
            }
        }
        drop(state);
        Ok(())
    }

    /// Calls the callbacks of delivered records; returns how many were called. An
    /// exception raised by a callback propagates; the reports after it stay queued.
    fn serve(&self, py: Python<'_>) -> PyResult<usize> {
        let ready: Vec<Ready> = lock(&self.reports).ready.drain(..).collect();
        let mut served = 0;
        let mut rest = ready.into_iter();
        while let Some(r) = rest.next() {
            let err = match &r.error {
                Some(e) => to_pyerr(py, e).into_value(py).into_any(),
                None => py.None(),
            };
            let msg = Py::new(py, r.message)?;
            served += 1;
            if let Err(e) = r.callback.call1(py, (err, msg)) {
                let mut state = lock(&self.reports);
                for (i, later) in rest.enumerate() {
                    state.ready.insert(i, later);
                }
                return Err(e);
            }
        }
        Ok(served)
    }

    /// Raises (once) the first failure of a record sent without a callback.
    fn raise_failures(&self) -> PyResult<()> {
        let mut state = lock(&self.reports);
        let Some(e) = state.failed.take() else {
            return Ok(());
        };
        let n = std::mem::take(&mut state.failed_count);
        drop(state);
        let e = oncelog::Error::new(
            e.kind(),
            format!(
                "{n} record(s) sent without a delivery callback failed; the first: {}",
                e.message()
            ),
        );
        Err(Python::attach(|py| to_pyerr(py, &e)))
    }

    fn end_transaction(&self, py: Python<'_>, commit: bool) -> PyResult<()> {
        let result = self.detached(py, |p| {
            if commit {
                p.commit_transaction()
            } else {
                p.abort_transaction()
            }
        });
        self.collect(py)?;
        result
    }
}

/// One record of a `produce_batch` call: its Python objects (kept alive while the
/// GIL is released) and what was parsed from them.
struct BatchItem<'py> {
    key: Bound<'py, PyAny>,
    value: Bound<'py, PyAny>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: Option<i64>,
}

fn batch_item<'py>(item: Bound<'py, PyAny>) -> PyResult<BatchItem<'py>> {
    let py = item.py();
    let Ok(t) = item.cast::<PyTuple>() else {
        // A bare value.
        return Ok(BatchItem {
            key: py.None().into_bound(py),
            value: item,
            headers: Vec::new(),
            timestamp: None,
        });
    };
    let n = t.len();
    if !(2..=4).contains(&n) {
        return Err(PyTypeError::new_err(format!(
            "a record of produce_batch is a value or a (key, value[, headers[, timestamp]]) tuple, not a tuple of {n}"
        )));
    }
    let headers = if n >= 3 {
        let h = t.get_item(2)?;
        if h.is_none() {
            Vec::new()
        } else {
            headers_arg(&h)?
        }
    } else {
        Vec::new()
    };
    let timestamp = if n == 4 {
        let ts = t.get_item(3)?;
        if ts.is_none() {
            None
        } else {
            Some(timestamp_arg(ts.extract::<i64>()?)?)
        }
    } else {
        None
    };
    Ok(BatchItem {
        key: t.get_item(0)?,
        value: t.get_item(1)?,
        headers,
        timestamp,
    })
}

fn timestamp_arg(ts: i64) -> PyResult<i64> {
    if ts < 0 {
        return Err(binding_error(
            ErrorKind::InvalidArgument,
            format!("timestamp must be milliseconds since the Unix epoch (0 or more), not {ts}"),
        ));
    }
    Ok(ts)
}

#[pymethods]
impl Producer {
    /// A producer on `store` (an `oncelog.Store`, or a path opened for this producer
    /// alone) with `config`, a dict of Kafka's producer keys. `on_delivery` in the
    /// config is the default delivery callback.
    #[new]
    #[pyo3(signature = (store, config = None))]
    fn new(
        py: Python<'_>,
        store: &Bound<'_, PyAny>,
        config: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Producer> {
        let (pairs, extra) = config_arg(config, &["on_delivery"])?;
        let mut default_callback = None;
        for (_, cb) in extra {
            if !cb.is_none() {
                check_callable(&cb, "on_delivery")?;
                default_callback = Some(cb.unbind());
            }
        }
        let config = ProducerConfig::from_pairs(pair_views(&pairs)).or_raise()?;
        let store = store_arg(store)?;
        let lingering = config.linger_ms > 0;
        let transactional = config.transactional_id.is_some();
        let core = {
            let store = store.clone();
            py.detach(move || oncelog::Producer::new(&store, config))
                .or_raise()?
        };
        Ok(Producer {
            core: RwLock::new(Some(core)),
            store: RwLock::new(Some(store)),
            lingering,
            transactional,
            default_callback,
            routing: Mutex::new(Routing {
                last: None,
                topics: Vec::new(),
                by_name: HashMap::new(),
                sticky: StickyPartitioner::new(),
            }),
            reports: Mutex::new(Reports::default()),
            send_lock: Mutex::new(()),
        })
    }

    /// Sends one record to `topic`. `value` and `key` are bytes, str (UTF-8) or None;
    /// `partition` None (or -1) lets Kafka's partitioner choose (the key's hash, or
    /// a sticky partition without a key); `headers` is a dict or a list of
    /// `(str, bytes | None)` pairs; `timestamp` is in ms since the epoch (default:
    /// now). `on_delivery(err, msg)` (or `callback`) is called from a later `poll`
    /// or `flush` with `err` None and the delivered `Message`. Raises if the record
    /// cannot be appended (then no callback is called).
    #[pyo3(signature = (topic, value = None, key = None, partition = None, headers = None, timestamp = None, on_delivery = None, callback = None))]
    #[allow(clippy::too_many_arguments)]
    fn produce(
        &self,
        py: Python<'_>,
        topic: &Bound<'_, PyAny>,
        value: Option<&Bound<'_, PyAny>>,
        key: Option<&Bound<'_, PyAny>>,
        partition: Option<i64>,
        headers: Option<&Bound<'_, PyAny>>,
        timestamp: Option<i64>,
        on_delivery: Option<&Bound<'_, PyAny>>,
        callback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let key_bytes = match key {
            Some(k) => bytes_arg(k, "key")?,
            None => None,
        };
        let value_bytes = match value {
            Some(v) => bytes_arg(v, "value")?,
            None => None,
        };
        let header_list = match headers {
            Some(h) if !h.is_none() => headers_arg(h)?,
            _ => Vec::new(),
        };
        let header_views: Vec<Header<'_>> = header_list
            .iter()
            .map(|(k, v)| Header {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        let timestamp = timestamp.map(timestamp_arg).transpose()?;
        let cb = match on_delivery.or(callback) {
            Some(cb) => {
                check_callable(cb, "on_delivery")?;
                Some(cb.clone().unbind())
            }
            None => self.default_callback.as_ref().map(|c| c.clone_ref(py)),
        };
        // The core stamps a record without a timestamp when it appends it; a
        // delivered message shows about the same time.
        let now = if timestamp.is_none() && cb.is_some() {
            now_ms()
        } else {
            0
        };
        let record = Record {
            key: key_bytes.as_deref(),
            value: value_bytes.as_deref(),
            headers: &header_views,
            timestamp,
        };
        let route = self.route(py, topic, cb.is_some())?;
        let message = |partition: u32, offset: i64| -> PyResult<Message> {
            Ok(Message {
                topic: match &route.py_name {
                    Some(n) => n.clone_ref(py),
                    None => PyString::intern(py, &route.name).unbind(),
                },
                partition,
                offset,
                key: key
                    .and_then(|k| as_pybytes(k, key_bytes.as_deref()))
                    .map(Bound::unbind),
                value: value
                    .and_then(|v| as_pybytes(v, value_bytes.as_deref()))
                    .map(Bound::unbind),
                headers: headers_to_py(py, &header_list)?.map(Bound::unbind),
                timestamp: timestamp.unwrap_or(now),
            })
        };
        if self.lingering {
            let explicit = match partition {
                Some(p) if p != -1 => Some(crate::convert::partition_number(p)?),
                _ => None,
            };
            let waiting = match cb {
                Some(callback) => Some(Waiting {
                    callback: Some(callback),
                    message: message(explicit.unwrap_or(0), -1)?,
                }),
                None => None,
            };
            let name = &*route.name;
            // The record's report may come (from the linger thread) as soon as it
            // is sent: its callback is registered under the send lock, which
            // `collect` takes before it takes reports.
            let sent = py.detach(|| {
                let _sending = lock(&self.send_lock);
                let guard = self.core.read().unwrap_or_else(|p| p.into_inner());
                let Some(core) = guard.as_ref() else {
                    return Err((None, waiting));
                };
                let record = ProducerRecord {
                    topic: name,
                    partition: explicit,
                    record,
                };
                match core.send(record) {
                    Ok(token) => {
                        if let Some(w) = waiting {
                            lock(&self.reports).waiting.insert(token, w);
                        }
                        Ok(())
                    }
                    Err(e) => Err((Some(e), waiting)),
                }
            });
            return match sent {
                Ok(()) => self.collect(py),
                // The callback and its message are dropped here, with the GIL.
                Err((None, _)) => Err(closed()),
                Err((Some(e), _)) => Err(to_pyerr(py, &e)),
            };
        }
        let p = self.choose(py, &route, partition, record.key)?;
        let name = &*route.name;
        let info = self.detached(py, |core| {
            core.send_batch(name, p, std::slice::from_ref(&record))
        })?;
        if record.key.is_none() && partition.is_none_or(|p| p == -1) {
            lock(&self.routing)
                .sticky
                .batch_completed(name, route.partitions);
        }
        if let Some(callback) = cb {
            let message = message(p, info.base_offset)?;
            lock(&self.reports).ready.push_back(Ready {
                callback,
                error: None,
                message,
            });
        }
        Ok(())
    }

    /// Appends many records to `topic` at once, the fast path for bulk writes.
    /// `records` is an iterable of values, or of `(key, value)`,
    /// `(key, value, headers)` or `(key, value, headers, timestamp)` tuples.
    /// `partition` None lets the partitioner choose per record (keyless records of
    /// one call share one sticky partition). The records of each partition are
    /// appended in order, as few batches as the topic's size limit allows, with the
    /// GIL released. Returns the number of records appended. No delivery callbacks.
    #[pyo3(signature = (topic, records, partition = None))]
    fn produce_batch(
        &self,
        py: Python<'_>,
        topic: &Bound<'_, PyAny>,
        records: &Bound<'_, PyAny>,
        partition: Option<i64>,
    ) -> PyResult<usize> {
        let route = self.route(py, topic, false)?;
        let mut items: Vec<BatchItem<'_>> = Vec::new();
        if let Ok(list) = records.cast::<PyList>() {
            items.reserve(list.len());
            for item in list.iter() {
                items.push(batch_item(item)?);
            }
        } else {
            if records.cast::<PyBytes>().is_ok() || records.cast::<PyString>().is_ok() {
                return Err(PyTypeError::new_err(
                    "records must be an iterable of records, not a single bytes or str",
                ));
            }
            for item in records.try_iter()? {
                items.push(batch_item(item?)?);
            }
        }
        if items.is_empty() {
            return Ok(0);
        }
        let mut keys = Vec::with_capacity(items.len());
        let mut values = Vec::with_capacity(items.len());
        for item in &items {
            keys.push(bytes_arg(&item.key, "key")?);
            values.push(bytes_arg(&item.value, "value")?);
        }
        let header_views: Vec<Vec<Header<'_>>> = items
            .iter()
            .map(|item| {
                item.headers
                    .iter()
                    .map(|(k, v)| Header {
                        key: k,
                        value: v.as_deref(),
                    })
                    .collect()
            })
            .collect();
        let batch: Vec<Record<'_>> = (0..items.len())
            .map(|i| Record {
                key: keys[i].as_deref(),
                value: values[i].as_deref(),
                headers: &header_views[i],
                timestamp: items[i].timestamp,
            })
            .collect();
        // Partition of each record.
        let explicit = match partition {
            Some(p) if p != -1 => Some(self.choose(py, &route, Some(p), None)?),
            _ => None,
        };
        let n = route.partitions;
        let mut sticky: Option<u32> = None;
        let mut parts: Vec<u32> = Vec::with_capacity(batch.len());
        for r in &batch {
            parts.push(match (explicit, r.key) {
                (Some(p), _) => p,
                (None, _) if n.get() == 1 => 0,
                (None, Some(k)) => partition_for_key(k, n),
                (None, None) => *sticky
                    .get_or_insert_with(|| lock(&self.routing).sticky.partition(&route.name, n)),
            });
        }
        // Runs of each partition, in order, cut at the size limit.
        let mut runs: Vec<(u32, Vec<Record<'_>>)> = Vec::new();
        let mut partitions_seen: Vec<u32> = parts.clone();
        partitions_seen.sort_unstable();
        partitions_seen.dedup();
        for p in partitions_seen {
            let mut run: Vec<Record<'_>> = Vec::new();
            let mut bound = 0u64;
            for (r, rp) in batch.iter().zip(&parts) {
                if *rp != p {
                    continue;
                }
                let b = record_bound(r);
                if !run.is_empty() && BATCH_HEADER + bound + b > route.limit {
                    runs.push((p, std::mem::take(&mut run)));
                    bound = 0;
                }
                if !self.transactional {
                    check_size(&route, std::slice::from_ref(r), b)?;
                }
                bound += b;
                run.push(*r);
            }
            if !run.is_empty() {
                runs.push((p, run));
            }
        }
        let name = &*route.name;
        let mut appended = 0;
        for (p, run) in &runs {
            self.detached(py, |core| core.send_batch(name, *p, run))?;
            appended += run.len();
        }
        if sticky.is_some() {
            lock(&self.routing).sticky.batch_completed(name, n);
        }
        Ok(appended)
    }

    /// Serves delivery callbacks of records delivered so far, waiting up to
    /// `timeout` seconds for one if none is ready (0: do not wait; None: no limit).
    /// Returns the number of callbacks called.
    #[pyo3(signature = (timeout = 0.0))]
    fn poll(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<usize> {
        let timeout = timeout_arg(timeout)?;
        self.collect(py)?;
        let start = Instant::now();
        loop {
            if !lock(&self.reports).ready.is_empty() {
                break;
            }
            let left = match timeout {
                Some(t) => t.saturating_sub(start.elapsed()),
                None => Duration::from_millis(5),
            };
            let waiting = self.lingering
                && (!lock(&self.reports).waiting.is_empty()
                    || self.with_core(|p| Ok(p.pending()))? > 0);
            if left.is_zero() || !waiting {
                break;
            }
            py.detach(|| std::thread::sleep(left.min(Duration::from_millis(1))));
            py.check_signals()?;
            self.collect(py)?;
        }
        self.serve(py)
    }

    /// Appends every record still pending (`linger.ms > 0`), serves the delivery
    /// callbacks, and raises the first failure of a record sent without a callback.
    /// Returns the number of records still pending (0). `timeout` is accepted for
    /// confluent-kafka compatibility; appends are local and never wait for a broker.
    #[pyo3(signature = (timeout = None))]
    fn flush(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<usize> {
        timeout_arg(timeout)?;
        if self.lingering {
            self.detached(py, |p| p.flush())?;
        }
        self.collect(py)?;
        self.serve(py)?;
        self.raise_failures()?;
        self.with_core(|p| Ok(p.pending()))
    }

    /// Records sent but not yet appended (`linger.ms > 0`), plus delivery callbacks
    /// not yet served.
    fn __len__(&self) -> PyResult<usize> {
        let pending = self.with_core(|p| Ok(p.pending()))?;
        Ok(pending + lock(&self.reports).ready.len())
    }

    /// Takes over the producer's `transactional.id` (fencing any earlier producer
    /// with it, and finishing what it left open). Call once before the first
    /// transaction.
    #[pyo3(signature = (timeout = None))]
    fn init_transactions(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        timeout_arg(timeout)?;
        self.detached(py, |p| p.init_transactions())
    }

    /// Starts a transaction.
    fn begin_transaction(&self, py: Python<'_>) -> PyResult<()> {
        self.detached(py, |p| p.begin_transaction())
    }

    /// Adds consumer offsets to the open transaction: `offsets` is a list of
    /// `TopicPartition` whose offset is the next record to consume, committed for
    /// the group when the transaction commits. `group_metadata` is
    /// `consumer.consumer_group_metadata()` (offsets are refused, `StaleGeneration`,
    /// once the group moved on without that consumer), or a group id (`str`).
    #[pyo3(signature = (offsets, group_metadata, timeout = None))]
    fn send_offsets_to_transaction(
        &self,
        py: Python<'_>,
        offsets: Vec<TopicPartition>,
        group_metadata: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        timeout_arg(timeout)?;
        let list = offsets
            .iter()
            .map(|tp| {
                if tp.offset < 0 {
                    return Err(binding_error(
                        ErrorKind::InvalidArgument,
                        format!(
                            "the offset of {}-{} must be the next offset to consume (0 or more), not {}",
                            tp.topic, tp.partition, tp.offset
                        ),
                    ));
                }
                Ok((tp.core()?, tp.offset))
            })
            .collect::<PyResult<Vec<_>>>()?;
        if let Ok(meta) = group_metadata.cast::<GroupMetadata>() {
            let meta = meta.get().inner.clone();
            return self.detached(py, |p| p.send_offsets_to_transaction_for(&list, &meta));
        }
        if let Ok(group) = group_metadata.cast::<PyString>() {
            let group = group.to_cow()?.into_owned();
            return self.detached(py, |p| p.send_offsets_to_transaction(&list, &group));
        }
        Err(PyTypeError::new_err(
            "group_metadata must be consumer.consumer_group_metadata() or a group id (str)",
        ))
    }

    /// Commits the open transaction. If a send in it failed, raises
    /// `TransactionAborted` (`txn_requires_abort`): abort it then.
    #[pyo3(signature = (timeout = None))]
    fn commit_transaction(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        timeout_arg(timeout)?;
        self.end_transaction(py, true)
    }

    /// Aborts the open transaction: nothing sent in it becomes visible to
    /// read_committed consumers, and its offsets are not committed.
    #[pyo3(signature = (timeout = None))]
    fn abort_transaction(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        timeout_arg(timeout)?;
        self.end_transaction(py, false)
    }

    /// `with producer.transaction(): ...` begins a transaction, commits it when the
    /// block ends normally and aborts it when the block raises (the exception then
    /// propagates). A commit that fails with `txn_requires_abort` aborts too, and
    /// its error is raised.
    fn transaction(slf: Py<Producer>) -> Transaction {
        Transaction {
            producer: slf,
            state: Mutex::new(TxnState::New),
        }
    }

    /// Appends what is pending (a non-transactional producer), serves the delivery
    /// callbacks, and stops the producer; later calls raise `Closed`. An open
    /// transaction is left open: the next `init_transactions` with the same
    /// `transactional.id` aborts it. Closing twice does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self
            .core
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
        {
            return Ok(());
        }
        let flushed = if self.transactional {
            Ok(0)
        } else {
            self.flush(py, None)
        };
        let core = py.detach(|| self.core.write().unwrap_or_else(|p| p.into_inner()).take());
        self.store.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(core) = core {
            py.detach(|| core.close()).or_raise()?;
        }
        flushed.map(|_| ())
    }

    fn __enter__(slf: Py<Producer>) -> Py<Producer> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}

enum TxnState {
    New,
    Open,
    Done,
}

/// What `Producer.transaction()` returns: a context manager for one transaction.
/// It can be entered once.
#[pyclass(frozen, module = "oncelog")]
pub struct Transaction {
    producer: Py<Producer>,
    state: Mutex<TxnState>,
}

#[pymethods]
impl Transaction {
    fn __enter__(slf: Py<Transaction>, py: Python<'_>) -> PyResult<Py<Transaction>> {
        {
            let this = slf.get();
            let mut state = lock(&this.state);
            if !matches!(*state, TxnState::New) {
                return Err(binding_error(
                    ErrorKind::InvalidTxnState,
                    "a transaction context can be entered only once; call producer.transaction() again",
                ));
            }
            this.producer.get().begin_transaction(py)?;
            *state = TxnState::Open;
        }
        Ok(slf)
    }

    #[pyo3(signature = (exc_type, _exc_value, _traceback))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: &Bound<'_, PyAny>,
        _exc_value: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let mut state = lock(&self.state);
        if !matches!(*state, TxnState::Open) {
            return Ok(false);
        }
        *state = TxnState::Done;
        drop(state);
        let producer = self.producer.get();
        if !exc_type.is_none() {
            producer.abort_transaction(py, None)?;
            return Ok(false);
        }
        match producer.commit_transaction(py, None) {
            Ok(()) => Ok(false),
            Err(e) => {
                let must_abort = e
                    .value(py)
                    .getattr("txn_requires_abort")
                    .and_then(|v| v.extract::<bool>())
                    .unwrap_or(false);
                if must_abort {
                    // Keep the commit's error; an abort failure is secondary.
                    let _ = producer.abort_transaction(py, None);
                }
                Err(e)
            }
        }
    }
}
