//! `oncelog.Consumer`: the core consumer with confluent-kafka's calls (`subscribe`,
//! `assign`, `poll`, `consume`, `commit`, ...), iteration and a context manager.
//!
//! The core's `poll` returns up to `max.poll.records` records at once; the consumer
//! keeps them and hands them out one `poll` (or one `consume`) at a time, calling
//! the core again only when all were handed out, so the core's commits (at-least-
//! once commits at its next poll) cover exactly what the application saw. Before
//! anything that reads or moves positions (`commit`, `seek`, `position`, `assign`,
//! `subscribe`, `close`) the records not handed out are *given back*: each
//! partition is sought to its first such record, and the next poll reads them
//! again. (The C binding does the same.)
//!
//! A consumer is for one thread at a time, as Kafka's. It is guarded: a call while
//! another is running on it (from another thread, or from inside one of its own
//! rebalance callbacks) raises `ConcurrentUse` instead of waiting or crashing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use oncelog::consumer::RebalanceCallback;
use oncelog::{ConsumerConfig, ConsumerRecord, ErrorKind};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple, PyWeakrefReference};

use crate::convert::{config_arg, headers_to_py, pair_views, timeout_arg, topic_list};
use crate::errors::{binding_error, concurrent_use, OrRaise};
use crate::store::store_arg;
use crate::types::{
    GroupMetadata, Message, TopicPartition, OFFSET_BEGINNING, OFFSET_END, OFFSET_INVALID,
};

/// The longest the GIL-free wait of one core poll lasts, so that a long `poll` still
/// sees Ctrl-C (signals are checked between slices).
const WAIT_SLICE: Duration = Duration::from_millis(200);

struct State {
    /// The core consumer and its store; `None` once closed, so that a closed
    /// consumer keeps neither the group membership nor the store open.
    consumer: Option<(oncelog::Consumer, oncelog::Store)>,
    /// Records of the last core poll not handed out yet.
    buffer: VecDeque<ConsumerRecord>,
    /// Interned topic names, so messages share them; the last one used first.
    topics: HashMap<String, Py<PyString>>,
    last_topic: Option<(String, Py<PyString>)>,
}

/// An exception raised by a rebalance callback, kept until the core call returns.
type Raised = Arc<Mutex<Option<PyErr>>>;

/// A consumer: reads the records of assigned or subscribed partitions, with Kafka's
/// config names (`group.id`, `auto.offset.reset`, `isolation.level`,
/// `enable.auto.commit`, `max.poll.records`, `session.timeout.ms`, the `delivery`
/// preset, ...). For one thread at a time.
#[pyclass(frozen, weakref, module = "oncelog")]
pub struct Consumer {
    state: Mutex<State>,
    raised: Raised,
}

fn closed() -> PyErr {
    binding_error(ErrorKind::Closed, "the consumer is closed")
}

impl State {
    /// The core consumer of an open consumer (every caller checked it is open).
    fn core(&mut self) -> &mut oncelog::Consumer {
        &mut self.consumer.as_mut().expect("checked open").0
    }

    /// The store of an open consumer.
    fn store(&self) -> &oncelog::Store {
        &self.consumer.as_ref().expect("checked open").1
    }

    /// Gives the records not handed out back to the core (see the module doc).
    fn give_back(&mut self) -> oncelog::Result<()> {
        let mut firsts: Vec<(oncelog::TopicPartition, i64)> = Vec::new();
        for r in &self.buffer {
            if !firsts
                .iter()
                .any(|(tp, _)| tp.partition == r.partition && tp.topic == r.topic)
            {
                firsts.push((
                    oncelog::TopicPartition::new(r.topic.clone(), r.partition),
                    r.offset,
                ));
            }
        }
        self.buffer.clear();
        for (tp, offset) in &firsts {
            self.core().seek(tp, *offset)?;
        }
        Ok(())
    }

    fn check_open(&self) -> PyResult<()> {
        if self.consumer.is_none() {
            Err(closed())
        } else {
            Ok(())
        }
    }

    /// The message of a record, its topic name interned.
    fn message<'py>(
        &mut self,
        py: Python<'py>,
        r: ConsumerRecord,
    ) -> PyResult<Bound<'py, Message>> {
        let topic = match &self.last_topic {
            Some((name, t)) if *name == r.topic => t.clone_ref(py),
            _ => {
                let t = match self.topics.get(&r.topic) {
                    Some(t) => t.clone_ref(py),
                    None => {
                        let t = PyString::intern(py, &r.topic).unbind();
                        self.topics.insert(r.topic.clone(), t.clone_ref(py));
                        t
                    }
                };
                self.last_topic = Some((r.topic.clone(), t.clone_ref(py)));
                t
            }
        };
        let message = Message {
            topic,
            partition: r.partition,
            offset: r.offset,
            key: r.key.as_deref().map(|k| PyBytes::new(py, k).unbind()),
            value: r.value.as_deref().map(|v| PyBytes::new(py, v).unbind()),
            headers: headers_to_py(py, &r.headers)?.map(Bound::unbind),
            timestamp: r.timestamp,
        };
        Message::new_bound(py, message)
    }
}

impl Consumer {
    /// The state, or `ConcurrentUse` while another call holds it.
    fn state(&self, py: Python<'_>) -> PyResult<MutexGuard<'_, State>> {
        match self.state.try_lock() {
            Ok(s) => Ok(s),
            Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
            Err(TryLockError::WouldBlock) => Err(concurrent_use(
                py,
                "the consumer is busy in another call (from another thread, or the call whose rebalance callback this is): a consumer is for one thread at a time",
            )),
        }
    }

    /// The open state.
    fn open_state(&self, py: Python<'_>) -> PyResult<MutexGuard<'_, State>> {
        let s = self.state(py)?;
        s.check_open()?;
        Ok(s)
    }

    /// Raises what a rebalance callback raised during the last core call.
    fn reraise(&self) -> PyResult<()> {
        match self.raised.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs a core call that may rebalance (and so call back into Python) with the
    /// GIL released; then raises what a callback raised, else the call's error.
    fn rebalancing<T: Send>(
        &self,
        py: Python<'_>,
        state: &mut State,
        f: impl FnOnce(&mut State) -> oncelog::Result<T> + Send,
    ) -> PyResult<T> {
        let result = py.detach(move || f(state));
        self.reraise()?;
        result.or_raise()
    }

    /// Fills the buffer from the core, waiting up to `timeout` (None: no limit) for
    /// the first record. Waits in slices, checking for signals between them.
    fn fill(&self, py: Python<'_>, state: &mut State, timeout: Option<Duration>) -> PyResult<()> {
        let start = Instant::now();
        loop {
            let left = match timeout {
                Some(t) => t.saturating_sub(start.elapsed()),
                None => WAIT_SLICE,
            };
            let slice = left.min(WAIT_SLICE);
            let records = self.rebalancing(py, state, |st| st.core().poll(slice))?;
            if !records.is_empty() {
                if state.buffer.is_empty() {
                    state.buffer = VecDeque::from(records);
                } else {
                    state.buffer.extend(records);
                }
                return Ok(());
            }
            if timeout.is_some() && start.elapsed() >= timeout.unwrap_or_default() {
                return Ok(());
            }
            py.check_signals()?;
        }
    }

    /// A Python callback for the core's rebalance events: calls
    /// `cb(consumer, [TopicPartition, ...])` with the GIL, keeping the first
    /// exception it raises.
    fn callback(
        &self,
        slf: &Bound<'_, Consumer>,
        cb: Option<&Bound<'_, PyAny>>,
        what: &str,
    ) -> PyResult<Option<RebalanceCallback>> {
        let Some(cb) = cb else { return Ok(None) };
        if cb.is_none() {
            return Ok(None);
        }
        if !cb.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "{what} must be callable as {what}(consumer, partitions)"
            )));
        }
        let cb = cb.clone().unbind();
        // A weak reference: the consumer owns the callback, so a strong one would be a
        // cycle the garbage collector cannot see.
        let me = PyWeakrefReference::new(slf)?.unbind();
        let raised = self.raised.clone();
        Ok(Some(Box::new(move |tps: &[oncelog::TopicPartition]| {
            Python::attach(|py| {
                let list: Vec<TopicPartition> = tps
                    .iter()
                    .map(|tp| TopicPartition::from_core(tp, OFFSET_INVALID))
                    .collect();
                let consumer = me.bind(py).upgrade();
                let result = match consumer {
                    Some(c) => cb.call1(py, (c, list)).map(|_| ()),
                    None => Ok(()),
                };
                if let Err(e) = result {
                    raised
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e);
                }
            })
        })))
    }

    fn core_partitions(partitions: &[TopicPartition]) -> PyResult<Vec<oncelog::TopicPartition>> {
        partitions.iter().map(TopicPartition::core).collect()
    }
}

/// A concrete offset for `seek` and `assign`: `OFFSET_BEGINNING` and `OFFSET_END`
/// read from the partition; other negative values are refused.
fn resolve_offset(
    store: &oncelog::Store,
    tp: &oncelog::TopicPartition,
    offset: i64,
) -> oncelog::Result<i64> {
    match offset {
        OFFSET_BEGINNING => Ok(store.partition(&tp.topic, tp.partition)?.start_offset()),
        OFFSET_END => Ok(store.partition(&tp.topic, tp.partition)?.end_offset()),
        o if o >= 0 => Ok(o),
        o => Err(oncelog::Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "offset must be 0 or more, OFFSET_BEGINNING or OFFSET_END, not {o} ({}-{})",
                tp.topic, tp.partition
            ),
        )),
    }
}

#[pymethods]
impl Consumer {
    /// A consumer on `store` (an `oncelog.Store`, or a path opened for this consumer
    /// alone) with `config`, a dict of Kafka's consumer keys. Nothing is read until
    /// `subscribe` or `assign`.
    #[new]
    #[pyo3(signature = (store, config = None))]
    fn new(
        py: Python<'_>,
        store: &Bound<'_, PyAny>,
        config: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Consumer> {
        let (pairs, _) = config_arg(config, &[])?;
        let config = ConsumerConfig::from_pairs(pair_views(&pairs)).or_raise()?;
        let store = store_arg(store)?;
        let core = {
            let store = store.clone();
            py.detach(move || oncelog::Consumer::new(&store, config))
                .or_raise()?
        };
        Ok(Consumer {
            state: Mutex::new(State {
                consumer: Some((core, store)),
                buffer: VecDeque::new(),
                topics: HashMap::new(),
                last_topic: None,
            }),
            raised: Arc::new(Mutex::new(None)),
        })
    }

    /// Joins the consumer group (`group.id`) with a subscription to `topics` (a
    /// list): the group's live members, in any process, share the topics'
    /// partitions, one owner per partition, and rebalance inside `poll` when a
    /// member joins, leaves or dies. `on_assign(consumer, partitions)` and
    /// `on_revoke(consumer, partitions)` are called with the partitions handed
    /// over or taken away (the latter while still owned, before the commit that
    /// the commit mode makes). They may not call the consumer itself.
    #[pyo3(signature = (topics, on_assign = None, on_revoke = None))]
    fn subscribe(
        slf: &Bound<'_, Consumer>,
        topics: &Bound<'_, PyAny>,
        on_assign: Option<&Bound<'_, PyAny>>,
        on_revoke: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let topics = topic_list(topics)?;
        let on_assign = this.callback(slf, on_assign, "on_assign")?;
        let on_revoke = this.callback(slf, on_revoke, "on_revoke")?;
        let mut state = this.open_state(py)?;
        this.rebalancing(py, &mut state, move |st| {
            st.give_back()?;
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            st.core().subscribe_with(&names, on_assign, on_revoke)
        })
    }

    /// Consumes exactly `partitions` (a list of `TopicPartition`), outside any group
    /// rebalancing; replaces an earlier assignment or subscription. A partition's
    /// `offset` says where to start: an offset, `OFFSET_BEGINNING`, `OFFSET_END`, or
    /// (`OFFSET_INVALID`, `OFFSET_STORED`) the group's committed offset, else
    /// `auto.offset.reset`.
    fn assign(&self, py: Python<'_>, partitions: Vec<TopicPartition>) -> PyResult<()> {
        let list = Consumer::core_partitions(&partitions)?;
        let mut state = self.open_state(py)?;
        self.rebalancing(py, &mut state, |st| {
            st.buffer.clear();
            st.core().assign(&list)?;
            for (tp, given) in list.iter().zip(&partitions) {
                if given.offset >= 0
                    || given.offset == OFFSET_BEGINNING
                    || given.offset == OFFSET_END
                {
                    let offset = resolve_offset(st.store(), tp, given.offset)?;
                    st.core().seek(tp, offset)?;
                }
            }
            Ok(())
        })
    }

    /// Stops consuming: leaves the group (its other members take the partitions
    /// over) or drops the assignment. Messages polled but not handed out are given
    /// back first; every partition is then revoked (`on_revoke`, then a commit if
    /// the commit mode commits what was handed out). The consumer may subscribe or
    /// assign again afterwards.
    fn unsubscribe(slf: &Bound<'_, Consumer>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let mut state = this.open_state(py)?;
        this.rebalancing(py, &mut state, |st| {
            st.give_back()?;
            st.core().unsubscribe()
        })
    }

    /// The partitions assigned to this consumer (by `assign`, or by the group).
    fn assignment(&self, py: Python<'_>) -> PyResult<Vec<TopicPartition>> {
        let mut state = self.open_state(py)?;
        Ok(state
            .core()
            .assignment()
            .iter()
            .map(|tp| TopicPartition::from_core(tp, OFFSET_INVALID))
            .collect())
    }

    /// The next message, waiting up to `timeout` seconds for one (None: no limit);
    /// None when none came. Commits as the commit mode says.
    #[pyo3(signature = (timeout = None))]
    fn poll<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, Message>>> {
        let timeout = timeout_arg(timeout)?;
        let mut state = self.open_state(py)?;
        if state.buffer.is_empty() {
            self.fill(py, &mut state, timeout)?;
        }
        match state.buffer.pop_front() {
            Some(r) => Ok(Some(state.message(py, r)?)),
            None => Ok(None),
        }
    }

    /// Up to `num_messages` messages as a list: waits up to `timeout` seconds (None:
    /// no limit) for the first, then takes what is there without waiting more. An
    /// empty list when nothing came.
    #[pyo3(signature = (num_messages = 1, timeout = None))]
    fn consume<'py>(
        &self,
        py: Python<'py>,
        num_messages: i64,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let timeout = timeout_arg(timeout)?;
        if num_messages < 1 {
            return Err(binding_error(
                ErrorKind::InvalidArgument,
                format!("num_messages must be 1 or more, not {num_messages}"),
            ));
        }
        let want = usize::try_from(num_messages).unwrap_or(usize::MAX);
        let mut state = self.open_state(py)?;
        if state.buffer.is_empty() {
            self.fill(py, &mut state, timeout)?;
        }
        let mut out: Vec<Bound<'py, Message>> =
            Vec::with_capacity(want.min(state.buffer.len().max(1)));
        loop {
            while out.len() < want {
                let Some(r) = state.buffer.pop_front() else {
                    break;
                };
                out.push(state.message(py, r)?);
            }
            if out.len() >= want || out.is_empty() {
                break;
            }
            // More may be there already: take it without waiting.
            self.fill(py, &mut state, Some(Duration::ZERO))?;
            if state.buffer.is_empty() {
                break;
            }
        }
        PyList::new(py, out)
    }

    /// Commits offsets for the consumer's group (`group.id`). With no argument, the
    /// positions of every assigned partition (past the last message handed out);
    /// with `message`, the offset after it; with `offsets`, those (a list of
    /// `TopicPartition`, each the next offset to consume). Always synchronous: the
    /// commit is in the log when the call returns (`asynchronous` is accepted for
    /// confluent-kafka compatibility and changes nothing). An exactly-once consumer
    /// commits through the producer's transaction instead.
    #[pyo3(signature = (message = None, offsets = None, asynchronous = false))]
    fn commit(
        &self,
        py: Python<'_>,
        message: Option<&Bound<'_, PyAny>>,
        offsets: Option<Vec<TopicPartition>>,
        asynchronous: bool,
    ) -> PyResult<()> {
        let _ = asynchronous;
        let explicit: Option<Vec<(oncelog::TopicPartition, i64)>> = match (message, offsets) {
            (Some(m), None) if !m.is_none() => {
                let m = m.cast::<Message>().map_err(|_| {
                    PyTypeError::new_err("message must be an oncelog.Message")
                })?;
                let m = m.get();
                Some(vec![(
                    oncelog::TopicPartition::new(m.topic.bind(py).to_cow()?.into_owned(), m.partition),
                    m.offset + 1,
                )])
            }
            (None, Some(list)) => Some(
                list.iter()
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
                    .collect::<PyResult<_>>()?,
            ),
            (Some(m), None) if m.is_none() => None,
            (None, None) => None,
            _ => {
                return Err(binding_error(
                    ErrorKind::InvalidArgument,
                    "commit takes a message or offsets, not both",
                ))
            }
        };
        let mut state = self.open_state(py)?;
        self.rebalancing(py, &mut state, move |st| match explicit {
            Some(list) => st.core().commit_offsets(&list),
            None => {
                st.give_back()?;
                st.core().commit()
            }
        })
    }

    /// The offsets the group committed for `partitions` (a list of
    /// `TopicPartition`), as every process sees them: a new list whose offsets are
    /// the committed ones, or `OFFSET_INVALID` where there is none.
    #[pyo3(signature = (partitions, timeout = None))]
    fn committed(
        &self,
        py: Python<'_>,
        partitions: Vec<TopicPartition>,
        timeout: Option<f64>,
    ) -> PyResult<Vec<TopicPartition>> {
        timeout_arg(timeout)?;
        let list = Consumer::core_partitions(&partitions)?;
        let mut state = self.open_state(py)?;
        let offsets = self.rebalancing(py, &mut state, move |st| {
            list.iter()
                .map(|tp| {
                    let c = st.core().committed(tp)?;
                    Ok(TopicPartition::from_core(
                        tp,
                        c.map_or(OFFSET_INVALID, |c| c.offset),
                    ))
                })
                .collect::<oncelog::Result<Vec<_>>>()
        })?;
        Ok(offsets)
    }

    /// The positions in `partitions` (assigned ones): a new list whose offsets are
    /// those of the next message `poll` hands out from each.
    fn position(
        &self,
        py: Python<'_>,
        partitions: Vec<TopicPartition>,
    ) -> PyResult<Vec<TopicPartition>> {
        let list = Consumer::core_partitions(&partitions)?;
        let mut state = self.open_state(py)?;
        self.rebalancing(py, &mut state, move |st| {
            list.iter()
                .map(|tp| {
                    let buffered = st
                        .buffer
                        .iter()
                        .find(|r| r.partition == tp.partition && r.topic == tp.topic)
                        .map(|r| r.offset);
                    let offset = match buffered {
                        Some(o) => o,
                        None => st.core().position(tp)?,
                    };
                    Ok(TopicPartition::from_core(tp, offset))
                })
                .collect::<oncelog::Result<Vec<_>>>()
        })
    }

    /// Moves the position of `partition` (a `TopicPartition` of an assigned
    /// partition) to its `offset`: an offset, `OFFSET_BEGINNING` or `OFFSET_END`.
    fn seek(&self, py: Python<'_>, partition: TopicPartition) -> PyResult<()> {
        let tp = partition.core()?;
        let offset = partition.offset;
        let mut state = self.open_state(py)?;
        self.rebalancing(py, &mut state, move |st| {
            let offset = resolve_offset(st.store(), &tp, offset)?;
            st.give_back()?;
            st.core().seek(&tp, offset)
        })
    }

    /// Moves every assigned partition back to its committed offset: what an
    /// exactly-once loop does after aborting a transaction, so that the records it
    /// had polled are polled again.
    fn seek_to_committed(&self, py: Python<'_>) -> PyResult<()> {
        let mut state = self.open_state(py)?;
        self.rebalancing(py, &mut state, |st| {
            st.buffer.clear();
            st.core().seek_to_committed()
        })
    }

    /// What `Producer.send_offsets_to_transaction` takes with this consumer's
    /// offsets: the group, and the generation and member this consumer is in.
    fn consumer_group_metadata(&self, py: Python<'_>) -> PyResult<GroupMetadata> {
        let mut state = self.open_state(py)?;
        Ok(GroupMetadata {
            inner: state.core().group_metadata().or_raise()?,
        })
    }

    /// Commits as the commit mode says (auto-commit and at-least-once commit what
    /// was handed out), leaves the group (its other members take the partitions
    /// over) and stops the consumer; later calls raise `Closed`. Closing twice does
    /// nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let mut state = self.state(py)?;
        if state.consumer.is_none() {
            return Ok(());
        }
        let result = self.rebalancing(py, &mut state, |st| {
            // If giving back fails (a seek to an offset retention just deleted), the
            // core still closes and commits its positions.
            let given_back = st.give_back();
            let closed = st.core().close();
            // Dropped without the GIL: dropping the store may shut it down.
            let consumer = st.consumer.take();
            drop(consumer);
            closed.and(given_back)
        });
        state.topics.clear();
        state.last_topic = None;
        result
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.state(py)?.consumer.is_none())
    }

    fn __enter__(slf: Py<Consumer>) -> Py<Consumer> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __iter__(slf: Py<Consumer>) -> Py<Consumer> {
        slf
    }

    /// The next message, waiting as long as it takes (Ctrl-C interrupts).
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, Message>>> {
        self.poll(py, None)
    }
}
