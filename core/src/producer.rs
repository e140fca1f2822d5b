//! [`Producer`]: Kafka's producer over a store. Records are routed to partitions
//! (explicitly, by Kafka's key hash, or sticky for records without a key), gathered
//! per partition into batches (`batch.size`, `linger.ms`), appended, retried on
//! retriable errors, and reported one by one ([`DeliveryReport`]).
//!
//! With `enable.idempotence` (the default) the producer takes a store-unique
//! producer id and numbers every record per partition, so a retried batch is never
//! appended twice: the partition recognises it and returns the original offsets.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::ProducerConfig;
use crate::error::{bail, Error, ErrorKind, Result};
use crate::partition::{AppendInfo, AppendOptions, Partition};
use crate::partitioner::{partition_for_key, StickyPartitioner};
use crate::record::{BatchOptions, OwnedRecord, ProducerInfo, Record};
use crate::store::Store;

/// A record to send: where it goes and what it holds.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProducerRecord<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition, or `None` for the partitioner (key hash, or sticky without a key).
    pub partition: Option<u32>,
    /// The record itself.
    pub record: Record<'a>,
}

impl<'a> ProducerRecord<'a> {
    /// A record with a value only, partitioned by the partitioner.
    pub fn new(topic: &'a str, value: &'a [u8]) -> ProducerRecord<'a> {
        ProducerRecord {
            topic,
            partition: None,
            record: Record::value(value),
        }
    }

    /// The same record with a key (which decides its partition unless one is set).
    pub fn key(self, key: &'a [u8]) -> ProducerRecord<'a> {
        ProducerRecord {
            record: Record {
                key: Some(key),
                ..self.record
            },
            ..self
        }
    }

    /// The same record sent to `partition`.
    pub fn partition(self, partition: u32) -> ProducerRecord<'a> {
        ProducerRecord {
            partition: Some(partition),
            ..self
        }
    }
}

/// The outcome of one sent record.
#[derive(Debug)]
pub struct DeliveryReport {
    /// The number [`Producer::send`] returned for the record.
    pub token: u64,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// Where the record is in the log, or why it is not.
    pub result: Result<i64>,
}

/// Close to a record's encoded size: its bytes plus a small per-record overhead.
fn approximate_size(r: &OwnedRecord) -> usize {
    16 + r.key.as_ref().map_or(0, Vec::len)
        + r.value.as_ref().map_or(0, Vec::len)
        + r.headers
            .iter()
            .map(|(k, v)| 4 + k.len() + v.as_ref().map_or(0, Vec::len))
            .sum::<usize>()
}

/// One partition's records waiting to be appended.
struct Pending {
    partition: Partition,
    records: Vec<OwnedRecord>,
    /// The token of each record.
    tokens: Vec<u64>,
    bytes: usize,
    since: Instant,
    /// Sequence number of the next record (idempotent producers).
    next_seq: i32,
}

struct State {
    pending: HashMap<(String, u32), Pending>,
    reports: VecDeque<DeliveryReport>,
    sticky: StickyPartitioner,
    next_token: u64,
    /// Set by an error after which an idempotent producer must not go on.
    fatal: Option<(ErrorKind, String)>,
    closed: bool,
}

struct Inner {
    store: Store,
    config: ProducerConfig,
    identity: Option<(i64, i16)>,
    state: Mutex<State>,
    wake: Condvar,
}

/// A producer. Safe to share between threads (`&self` methods).
pub struct Producer {
    inner: Arc<Inner>,
    linger: Option<JoinHandle<()>>,
}

impl Producer {
    /// A producer on `store` with `config`.
    pub fn new(store: &Store, config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        if config.transactional_id.is_some() {
            bail!(
                InvalidConfig,
                "transactional producers are not available yet; remove transactional.id"
            );
        }
        let identity = if config.enable_idempotence {
            Some((store.allocate_producer_id()?, 0))
        } else {
            None
        };
        let inner = Arc::new(Inner {
            store: store.clone(),
            config,
            identity,
            state: Mutex::new(State {
                pending: HashMap::new(),
                reports: VecDeque::new(),
                sticky: StickyPartitioner::new(),
                next_token: 0,
                fatal: None,
                closed: false,
            }),
            wake: Condvar::new(),
        });
        let linger = if inner.config.linger_ms > 0 {
            let weak = Arc::downgrade(&inner);
            Some(
                std::thread::Builder::new()
                    .name("oncelog-linger".into())
                    .spawn(move || run_linger(weak))
                    .map_err(|e| Error::new(ErrorKind::Io, format!("start linger thread: {e}")))?,
            )
        } else {
            None
        };
        Ok(Producer { inner, linger })
    }

    /// The config in force.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    /// The producer id and epoch of an idempotent producer.
    pub fn identity(&self) -> Option<(i64, i16)> {
        self.inner.identity
    }

    /// Sends a record: it is routed, copied into its partition's pending batch, and
    /// appended when the batch is full, when `linger.ms` passes, or at once with
    /// `linger.ms = 0`. Returns a token that its [`DeliveryReport`] carries. Errors
    /// here are about the record itself (unknown topic or partition, too large) or a
    /// producer that can no longer send; append errors come in delivery reports.
    pub fn send(&self, record: ProducerRecord<'_>) -> Result<u64> {
        let inner = &self.inner;
        let mut state = inner.lock_state()?;
        let topic = record.topic;
        let partitions = inner.partition_count(topic)?;
        let partition = match (record.partition, record.record.key) {
            (Some(p), _) if p < partitions.get() => p,
            (Some(p), _) => bail!(
                UnknownPartition,
                "topic {topic:?} has {partitions} partitions; there is no partition {p}"
            ),
            (None, Some(key)) => partition_for_key(key, partitions),
            (None, None) => state.sticky.partition(topic, partitions),
        };
        let limit = inner.max_record_bytes(topic)?;
        let r = record.record;
        let owned = OwnedRecord::from_record(&r);
        let size = approximate_size(&owned);
        if size > limit {
            bail!(
                RecordTooLarge,
                "a record of about {size} bytes exceeds max.message.bytes {limit} of {topic:?}"
            );
        }
        let token = state.next_token;
        state.next_token += 1;
        let key = (topic.to_string(), partition);
        if !state.pending.contains_key(&key) {
            let handle = inner.store.partition(topic, partition)?;
            state.pending.insert(
                key.clone(),
                Pending {
                    partition: handle,
                    records: Vec::new(),
                    tokens: Vec::new(),
                    bytes: 0,
                    since: Instant::now(),
                    next_seq: 0,
                },
            );
        }
        let pending = state.pending.get_mut(&key).expect("inserted above");
        if pending.records.is_empty() {
            pending.since = Instant::now();
        }
        pending.bytes += size;
        pending.records.push(owned);
        pending.tokens.push(token);
        let full = pending.bytes >= inner.config.batch_size;
        if full || inner.config.linger_ms == 0 {
            inner.append_pending(&mut state, &key);
            if r.key.is_none() && record.partition.is_none() {
                state.sticky.batch_completed(topic, partitions);
            }
        } else {
            inner.wake.notify_one();
        }
        Ok(token)
    }

    /// Appends `records` to `topic`/`partition` as one batch right away, after any
    /// records still pending for that partition (so order is kept), with the
    /// producer's idempotence and durability. The fast path for bulk writes.
    pub fn send_batch(
        &self,
        topic: &str,
        partition: u32,
        records: &[Record<'_>],
    ) -> Result<AppendInfo> {
        let inner = &self.inner;
        let mut state = inner.lock_state()?;
        let key = (topic.to_string(), partition);
        if state.pending.contains_key(&key) {
            inner.append_pending(&mut state, &key);
        }
        let handle = match state.pending.get(&key) {
            Some(p) => p.partition.clone(),
            None => inner.store.partition(topic, partition)?,
        };
        let next_seq = state.pending.get(&key).map_or(0, |p| p.next_seq);
        let info = inner.append_with_retries(&handle, records, next_seq)?;
        let pending = state.pending.entry(key).or_insert_with(|| Pending {
            partition: handle,
            records: Vec::new(),
            tokens: Vec::new(),
            bytes: 0,
            since: Instant::now(),
            next_seq: 0,
        });
        pending.next_seq = crate::log::producer_state::next_seq(
            crate::log::producer_state::last_seq(next_seq, records.len() as i32),
        );
        Ok(info)
    }

    /// Appends every pending batch now. Delivery reports are ready afterwards.
    pub fn flush(&self) -> Result<()> {
        let inner = &self.inner;
        let mut state = inner.lock_state()?;
        let keys: Vec<(String, u32)> = state
            .pending
            .iter()
            .filter(|(_, p)| !p.records.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            inner.append_pending(&mut state, &key);
        }
        Ok(())
    }

    /// Takes the delivery reports gathered so far.
    pub fn poll(&self) -> Vec<DeliveryReport> {
        let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        state.reports.drain(..).collect()
    }

    /// Records sent but not yet appended.
    pub fn pending(&self) -> usize {
        let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        state.pending.values().map(|p| p.records.len()).sum()
    }

    /// Flushes and stops the producer; later sends fail with `closed`.
    pub fn close(mut self) -> Result<()> {
        let result = self.flush();
        self.stop();
        result
    }

    fn stop(&mut self) {
        {
            let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
            state.closed = true;
        }
        self.inner.wake.notify_all();
        if let Some(t) = self.linger.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        if self.linger.is_some() || self.pending() > 0 {
            let _ = self.flush();
        }
        self.stop();
    }
}

impl Inner {
    fn lock_state(&self) -> Result<MutexGuard<'_, State>> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.closed {
            bail!(Closed, "the producer is closed");
        }
        if let Some((kind, message)) = &state.fatal {
            return Err(Error::new(
                *kind,
                format!("the producer stopped after a fatal error: {message}"),
            ));
        }
        Ok(state)
    }

    fn partition_count(&self, topic: &str) -> Result<NonZeroU32> {
        let meta = self.store.topic(topic)?;
        NonZeroU32::new(meta.partitions).ok_or_else(|| {
            Error::new(
                ErrorKind::Corrupt,
                format!("topic {topic:?} has no partitions"),
            )
        })
    }

    fn max_record_bytes(&self, topic: &str) -> Result<usize> {
        let c = self.store.topic(topic)?.config;
        Ok(c.max_message_bytes
            .min(c.segment_bytes.min(u64::from(u32::MAX)) as u32) as usize)
    }

    /// Appends the pending batch of `key` and queues a report per record.
    fn append_pending(&self, state: &mut State, key: &(String, u32)) {
        let Some(pending) = state.pending.get_mut(key) else {
            return;
        };
        if pending.records.is_empty() {
            return;
        }
        let owned = std::mem::take(&mut pending.records);
        let tokens = std::mem::take(&mut pending.tokens);
        pending.bytes = 0;
        let headers = OwnedRecord::header_views(&owned);
        let records = OwnedRecord::views(&owned, &headers);
        let result = self.append_with_retries(&pending.partition, &records, pending.next_seq);
        if result.is_ok() {
            pending.next_seq = crate::log::producer_state::next_seq(
                crate::log::producer_state::last_seq(pending.next_seq, records.len() as i32),
            );
        }
        let (topic, partition) = key.clone();
        match result {
            Ok(info) => {
                for (i, token) in tokens.iter().enumerate() {
                    state.reports.push_back(DeliveryReport {
                        token: *token,
                        topic: topic.clone(),
                        partition,
                        result: Ok(info.base_offset + i as i64),
                    });
                }
            }
            Err(e) => {
                if self.identity.is_some() && !e.is_retriable() {
                    // The sequence can no longer be trusted: stop, as Kafka's
                    // idempotent producer does.
                    state.fatal = Some((e.kind(), e.message().to_string()));
                }
                for token in &tokens {
                    state.reports.push_back(DeliveryReport {
                        token: *token,
                        topic: topic.clone(),
                        partition,
                        result: Err(Error::new(e.kind(), e.message().to_string())),
                    });
                }
            }
        }
    }

    /// One batch, tried again on retriable errors within `retries` and
    /// `delivery.timeout.ms`.
    fn append_with_retries(
        &self,
        partition: &Partition,
        records: &[Record<'_>],
        seq: i32,
    ) -> Result<AppendInfo> {
        let options = AppendOptions {
            batch: BatchOptions {
                producer: match self.identity {
                    Some((producer_id, producer_epoch)) => ProducerInfo {
                        producer_id,
                        producer_epoch,
                        base_sequence: seq,
                    },
                    None => ProducerInfo::NONE,
                },
                ..BatchOptions::default()
            },
            durability: Some(self.config.acks),
        };
        let deadline = Instant::now() + Duration::from_millis(self.config.delivery_timeout_ms);
        let mut tries = 0u32;
        loop {
            match partition.append_with(records, &options) {
                Ok(info) => return Ok(info),
                Err(e)
                    if e.is_retriable()
                        && tries < self.config.retries
                        && Instant::now() < deadline =>
                {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(self.config.retry_backoff_ms));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Appends batches whose `linger.ms` has passed; stops with the producer.
fn run_linger(inner: Weak<Inner>) {
    loop {
        let Some(inner) = inner.upgrade() else { return };
        let linger = Duration::from_millis(inner.config.linger_ms);
        let mut state = inner.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.closed {
            return;
        }
        let now = Instant::now();
        let due: Vec<(String, u32)> = state
            .pending
            .iter()
            .filter(|(_, p)| !p.records.is_empty() && now >= p.since + linger)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &due {
            inner.append_pending(&mut state, key);
        }
        let next = state
            .pending
            .values()
            .filter(|p| !p.records.is_empty())
            .map(|p| p.since + linger)
            .min();
        let wait = next.map_or(Duration::from_millis(100), |t| {
            t.saturating_duration_since(Instant::now())
        });
        let _ = inner
            .wake
            .wait_timeout(state, wait.max(Duration::from_micros(100)))
            .unwrap_or_else(|p| p.into_inner());
    }
}
