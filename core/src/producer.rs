//! [`Producer`]: Kafka's producer over a store. Records are routed to partitions
//! (explicitly, by Kafka's key hash, or sticky for records without a key), gathered
//! per partition into batches (`batch.size`, `linger.ms`), appended, retried on
//! retriable errors, and reported one by one ([`DeliveryReport`]).
//!
//! With `enable.idempotence` (the default) the producer takes a store-unique
//! producer id and numbers every record per partition, so a retried batch is never
//! appended twice: the partition recognises it and returns the original offsets.
//!
//! With `transactional.id` the producer is transactional: `init_transactions` takes
//! the id over from any earlier holder (fencing it), and what is sent between
//! `begin_transaction` and `commit_transaction` — records and consumer offsets
//! (`send_offsets_to_transaction`) — becomes visible to `read_committed` readers
//! all at once, or never after `abort_transaction`.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{Durability, ProducerConfig};
use crate::consumer::TopicPartition;
use crate::error::{bail, Error, ErrorKind, Result};
use crate::group::GroupMetadata;
use crate::keys::{FastMap, FastSet, PartitionKey, PartitionName};
use crate::log::producer_state::{last_seq, next_seq};
use crate::offsets::{encode_key, encode_value};
use crate::partition::{AppendInfo, AppendOptions, Partition};
use crate::partitioner::{partition_for_key, StickyPartitioner};
use crate::record::{BatchOptions, OwnedRecord, ProducerInfo, Record};
use crate::store::Store;
use crate::topic::CONSUMER_OFFSETS;
use crate::txn::Coordinator;

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
    pending: FastMap<PartitionName, Pending>,
    reports: VecDeque<DeliveryReport>,
    sticky: StickyPartitioner,
    next_token: u64,
    /// Set by an error after which the producer must not go on.
    fatal: Option<(ErrorKind, String)>,
    closed: bool,
    /// Producer id and epoch of an idempotent producer (a transactional one gets
    /// them from `init_transactions`).
    identity: Option<(i64, i16)>,
    /// The open transaction of a transactional producer.
    txn: Option<OpenTxn>,
    /// The liveness lock of a transactional producer's session.
    liveness: Option<std::fs::File>,
    /// What was read of each topic sent to (see `metadata.max.age.ms`).
    topics: FastMap<String, TopicInfo>,
}

/// What a producer read of a topic's metadata, and when.
struct TopicInfo {
    partitions: NonZeroU32,
    /// The largest record the topic takes (`max.message.bytes`, `segment.bytes`).
    max_record_bytes: usize,
    read_at: Instant,
}

/// What a transactional producer knows of its open transaction.
#[derive(Default)]
struct OpenTxn {
    /// Partitions recorded with the coordinator.
    partitions: FastSet<PartitionName>,
    /// The first append that failed in it: the transaction can only abort.
    failed: Option<String>,
}

struct Inner {
    store: Store,
    config: ProducerConfig,
    coordinator: Option<Coordinator>,
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
        let coordinator = match config.transactional_id {
            Some(_) => Some(Coordinator::open(store, config.acks)?),
            None => None,
        };
        let identity = if config.enable_idempotence && coordinator.is_none() {
            Some((store.allocate_producer_id()?, 0))
        } else {
            None
        };
        let inner = Arc::new(Inner {
            store: store.clone(),
            config,
            coordinator,
            state: Mutex::new(State {
                pending: FastMap::default(),
                reports: VecDeque::new(),
                sticky: StickyPartitioner::new(),
                next_token: 0,
                fatal: None,
                closed: false,
                identity,
                txn: None,
                liveness: None,
                topics: FastMap::default(),
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

    /// The producer id and epoch of an idempotent producer (of a transactional one
    /// once `init_transactions` returned).
    pub fn identity(&self) -> Option<(i64, i16)> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .identity
    }

    /// Sends a record: it is routed, copied into its partition's pending batch, and
    /// appended when the batch is full, when `linger.ms` passes, or at once with
    /// `linger.ms = 0`. Returns a token that its [`DeliveryReport`] carries. Errors
    /// here are about the record itself (unknown topic or partition, too large), a
    /// transactional producer outside a transaction, or a producer that can no longer
    /// send; append errors come in delivery reports.
    pub fn send(&self, record: ProducerRecord<'_>) -> Result<u64> {
        let inner = &self.inner;
        let mut state = inner.lock_state()?;
        let topic = record.topic;
        let (partitions, limit) = inner.topic_info(&mut state, topic, record.partition)?;
        let partition = match (record.partition, record.record.key) {
            (Some(p), _) if p < partitions.get() => p,
            (Some(p), _) => bail!(
                UnknownPartition,
                "topic {topic:?} has {partitions} partitions; there is no partition {p}"
            ),
            (None, Some(key)) => partition_for_key(key, partitions),
            (None, None) => state.sticky.partition(topic, partitions),
        };
        let r = record.record;
        let owned = OwnedRecord::from_record(&r);
        let size = approximate_size(&owned);
        if size > limit {
            bail!(
                RecordTooLarge,
                "a record of about {size} bytes exceeds max.message.bytes {limit} of {topic:?}"
            );
        }
        let key = (topic, partition);
        inner.join_transaction(&mut state, key)?;
        let token = state.next_token;
        state.next_token += 1;
        let pending = inner.pending_for(&mut state, key)?;
        if pending.records.is_empty() {
            pending.since = Instant::now();
        }
        pending.bytes += size;
        pending.records.push(owned);
        pending.tokens.push(token);
        let full = pending.bytes >= inner.config.batch_size;
        if full || inner.config.linger_ms == 0 {
            inner.append_pending(&mut state, key);
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
    /// producer's idempotence, transaction and durability. The fast path for bulk
    /// writes.
    pub fn send_batch(
        &self,
        topic: &str,
        partition: u32,
        records: &[Record<'_>],
    ) -> Result<AppendInfo> {
        let inner = &self.inner;
        let mut state = inner.lock_state()?;
        inner.append_direct(&mut state, topic, partition, records)
    }

    /// Appends every pending batch now. Delivery reports are ready afterwards.
    pub fn flush(&self) -> Result<()> {
        let inner = &self.inner;
        let mut state = inner.lock_state()?;
        inner.append_all_pending(&mut state);
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

    /// Takes over the producer's `transactional.id`: any older producer with the same
    /// id is fenced from then on, and a transaction it left open is aborted (or, if
    /// it had decided to commit, committed).
    pub fn init_transactions(&self) -> Result<()> {
        let inner = &self.inner;
        let (coordinator, id) = inner.transactional()?;
        let mut state = inner.lock_state()?;
        if state.txn.is_some() {
            bail!(
                InvalidTxnState,
                "a transaction is open; commit or abort it first"
            );
        }
        let timeout = i32::try_from(inner.config.transaction_timeout_ms).unwrap_or(i32::MAX);
        let (producer_id, epoch, owner) =
            inner.fatal_on_fence(&mut state, coordinator.init(id, timeout))?;
        // Held for the producer's life: when this process dies, the kernel drops it
        // and any process may finish what this one left open.
        state.liveness = Some(coordinator.hold_liveness(owner)?);
        state.identity = Some((producer_id, epoch));
        reset_sequences(&mut state);
        Ok(())
    }

    /// Starts a transaction: what is sent until `commit_transaction` becomes visible
    /// to `read_committed` consumers all at once, or, after `abort_transaction`, never.
    pub fn begin_transaction(&self) -> Result<()> {
        let inner = &self.inner;
        inner.transactional()?;
        let mut state = inner.lock_state()?;
        if state.identity.is_none() {
            bail!(
                InvalidTxnState,
                "call init_transactions before begin_transaction"
            );
        }
        if state.txn.is_some() {
            bail!(InvalidTxnState, "a transaction is already open");
        }
        state.txn = Some(OpenTxn::default());
        Ok(())
    }

    /// As [`send_offsets_to_transaction`](Self::send_offsets_to_transaction), with
    /// the consumer's [`group_metadata`](crate::Consumer::group_metadata): refused
    /// (`stale_generation`, and the transaction can only abort) when the group moved
    /// to another generation without that consumer — a member that was away past its
    /// session timeout cannot commit offsets of partitions consumed by others since.
    /// The form to use with a consumer in a group (Kafka's KIP-447).
    pub fn send_offsets_to_transaction_for(
        &self,
        offsets: &[(TopicPartition, i64)],
        group: &GroupMetadata,
    ) -> Result<()> {
        if let Err(e) = group.check_current(&self.inner.store) {
            // The transaction this was meant for can only abort.
            if let Ok(mut state) = self.inner.lock_state() {
                if state.txn.is_some() {
                    note_failure(&mut state, &e);
                }
            }
            return Err(e);
        }
        self.send_offsets_to_transaction(offsets, &group.group_id)
    }

    /// Adds consumer offsets to the open transaction: committed for `group_id` if and
    /// when the transaction commits (Kafka's `sendOffsetsToTransaction`). Each offset
    /// is the next one to consume. Not checked against the group's generation: see
    /// [`send_offsets_to_transaction_for`](Self::send_offsets_to_transaction_for).
    pub fn send_offsets_to_transaction(
        &self,
        offsets: &[(TopicPartition, i64)],
        group_id: &str,
    ) -> Result<()> {
        let inner = &self.inner;
        inner.transactional()?;
        if group_id.is_empty() {
            bail!(
                InvalidArgument,
                "send_offsets_to_transaction needs a group id"
            );
        }
        crate::wire::check_str("the group id", group_id)?;
        if let Some((tp, o)) = offsets.iter().find(|(_, o)| *o < 0) {
            bail!(
                InvalidArgument,
                "cannot commit offset {o} for {}-{}",
                tp.topic,
                tp.partition
            );
        }
        let mut state = inner.lock_state()?;
        if state.txn.is_none() {
            bail!(
                InvalidTxnState,
                "send_offsets_to_transaction needs an open transaction"
            );
        }
        if offsets.is_empty() {
            return Ok(());
        }
        let now = crate::log::partition::now_ms();
        let encoded: Vec<(Vec<u8>, Vec<u8>)> = offsets
            .iter()
            .map(|(tp, o)| {
                (
                    encode_key(group_id, &tp.topic, tp.partition),
                    encode_value(*o, "", now),
                )
            })
            .collect();
        let records: Vec<Record<'_>> = encoded.iter().map(|(k, v)| Record::keyed(k, v)).collect();
        crate::offsets::log_partition(&inner.store)?;
        inner.append_direct(&mut state, CONSUMER_OFFSETS, 0, &records)?;
        Ok(())
    }

    /// Commits the open transaction: its pending records are appended, then the
    /// decision is recorded and every partition it wrote to gets a COMMIT marker.
    /// If a send in the transaction failed, nothing commits: the error says so
    /// (`txn_requires_abort`) and the transaction must be aborted.
    pub fn commit_transaction(&self) -> Result<()> {
        self.end_transaction(true)
    }

    /// Aborts the open transaction: pending records are dropped (reported as
    /// aborted) and every partition it wrote to gets an ABORT marker.
    pub fn abort_transaction(&self) -> Result<()> {
        self.end_transaction(false)
    }

    fn end_transaction(&self, commit: bool) -> Result<()> {
        let inner = &self.inner;
        let (coordinator, id) = inner.transactional()?;
        let mut state = inner.lock_state()?;
        if state.txn.is_none() {
            bail!(InvalidTxnState, "no transaction is open");
        }
        if commit {
            inner.append_all_pending(&mut state);
            if let Some(why) = state.txn.as_ref().and_then(|t| t.failed.clone()) {
                bail!(
                    TransactionAborted,
                    "a send in this transaction failed ({why}); abort it"
                );
            }
        } else {
            drop_pending(&mut state);
        }
        let (producer_id, epoch) = state.identity.ok_or_else(|| {
            Error::new(ErrorKind::InvalidTxnState, "call init_transactions first")
        })?;
        let ended = coordinator.end(id, producer_id, epoch, commit);
        state.identity = Some(inner.fatal_on_fence(&mut state, ended)?);
        state.txn = None;
        reset_sequences(&mut state);
        Ok(())
    }

    /// Flushes and stops the producer; later sends fail with `closed`. An open
    /// transaction is left as it is: the next `init_transactions` with the same
    /// `transactional.id` aborts it.
    pub fn close(mut self) -> Result<()> {
        let result = if self.inner.coordinator.is_none() {
            self.flush()
        } else {
            Ok(())
        };
        self.stop();
        result
    }

    fn stop(&mut self) {
        {
            let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.closed {
                return;
            }
            state.closed = true;
        }
        if let Ok((coordinator, id)) = self.inner.transactional() {
            // Best effort: a producer that cannot write it leaves its last decision
            // in place, and whoever finishes it finds every marker written.
            let _ = coordinator.complete_deferred(id);
        }
        self.inner.wake.notify_all();
        if let Some(t) = self.linger.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        if self.inner.coordinator.is_none() && (self.linger.is_some() || self.pending() > 0) {
            let _ = self.flush();
        }
        self.stop();
    }
}

/// A new epoch: every partition's sequence starts again at 0.
fn reset_sequences(state: &mut State) {
    for pending in state.pending.values_mut() {
        pending.next_seq = 0;
    }
}

/// Drops every pending record of an aborted transaction, reporting each as aborted.
fn drop_pending(state: &mut State) {
    let mut reports = Vec::new();
    for ((topic, partition), pending) in state.pending.iter_mut() {
        pending.records.clear();
        pending.bytes = 0;
        for token in pending.tokens.drain(..) {
            reports.push(DeliveryReport {
                token,
                topic: topic.clone(),
                partition: *partition,
                result: Err(Error::new(
                    ErrorKind::TransactionAborted,
                    "the transaction was aborted",
                )),
            });
        }
    }
    state.reports.extend(reports);
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

    /// The coordinator and transactional id; `invalid_config` without one.
    fn transactional(&self) -> Result<(&Coordinator, &str)> {
        match (&self.coordinator, &self.config.transactional_id) {
            (Some(c), Some(id)) => Ok((c, id)),
            _ => bail!(InvalidConfig, "transactions need transactional.id"),
        }
    }

    /// Passes a coordinator result through; a fenced producer stops for good.
    fn fatal_on_fence<T>(&self, state: &mut State, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.kind() == ErrorKind::ProducerFenced {
                state.fatal = Some((e.kind(), e.message().to_string()));
            }
        }
        result
    }

    /// For a transactional producer: refuses sends outside a transaction, and
    /// records a partition with the coordinator before its first write in one.
    fn join_transaction(&self, state: &mut State, key: (&str, u32)) -> Result<()> {
        let Ok((coordinator, id)) = self.transactional() else {
            return Ok(());
        };
        let Some(txn) = state.txn.as_ref() else {
            bail!(
                InvalidTxnState,
                "a transactional producer sends between begin_transaction and commit_transaction"
            );
        };
        if txn.partitions.contains(&key as &dyn PartitionKey) {
            return Ok(());
        }
        let (producer_id, epoch) = state.identity.ok_or_else(|| {
            Error::new(ErrorKind::InvalidTxnState, "call init_transactions first")
        })?;
        let owned = (key.0.to_string(), key.1);
        let added =
            coordinator.add_partitions(id, producer_id, epoch, std::slice::from_ref(&owned));
        self.fatal_on_fence(state, added)?;
        if let Some(txn) = state.txn.as_mut() {
            txn.partitions.insert(owned);
        }
        Ok(())
    }

    /// The pending batch of `key`, created on first use.
    fn pending_for<'s>(&self, state: &'s mut State, key: (&str, u32)) -> Result<&'s mut Pending> {
        if !state.pending.contains_key(&key as &dyn PartitionKey) {
            let handle = self.store.partition(key.0, key.1)?;
            state.pending.insert(
                (key.0.to_string(), key.1),
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
        Ok(state
            .pending
            .get_mut(&key as &dyn PartitionKey)
            .expect("inserted above"))
    }

    /// The partition count and record size limit of `topic`, read from its metadata
    /// when first sent to, when older than `metadata.max.age.ms`, or when `partition`
    /// is beyond the partitions known (added since?).
    fn topic_info(
        &self,
        state: &mut State,
        topic: &str,
        partition: Option<u32>,
    ) -> Result<(NonZeroU32, usize)> {
        if let Some(t) = state.topics.get(topic) {
            let fresh =
                t.read_at.elapsed() < Duration::from_millis(self.config.metadata_max_age_ms);
            if fresh && partition.map_or(true, |p| p < t.partitions.get()) {
                return Ok((t.partitions, t.max_record_bytes));
            }
        }
        let meta = self.store.topic(topic)?;
        let partitions = NonZeroU32::new(meta.partitions).ok_or_else(|| {
            Error::new(
                ErrorKind::Corrupt,
                format!("topic {topic:?} has no partitions"),
            )
        })?;
        let c = meta.config;
        let max_record_bytes =
            c.max_message_bytes
                .min(c.segment_bytes.min(u64::from(u32::MAX)) as u32) as usize;
        let info = TopicInfo {
            partitions,
            max_record_bytes,
            read_at: Instant::now(),
        };
        match state.topics.get_mut(topic) {
            Some(slot) => *slot = info,
            None => {
                state.topics.insert(topic.to_string(), info);
            }
        }
        Ok((partitions, max_record_bytes))
    }

    fn append_all_pending(&self, state: &mut State) {
        let keys: Vec<(String, u32)> = state
            .pending
            .iter()
            .filter(|(_, p)| !p.records.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        for (topic, partition) in keys {
            self.append_pending(state, (&topic, partition));
        }
    }

    /// Appends `records` to `topic`/`partition` now, after that partition's pending
    /// records, continuing its sequence.
    fn append_direct(
        &self,
        state: &mut State,
        topic: &str,
        partition: u32,
        records: &[Record<'_>],
    ) -> Result<AppendInfo> {
        let key = (topic, partition);
        self.join_transaction(state, key)?;
        self.append_pending(state, key);
        let (identity, transactional) = (state.identity, state.txn.is_some());
        let pending = self.pending_for(state, key)?;
        let result = self.append_with_retries(
            &pending.partition,
            records,
            pending.next_seq,
            identity,
            transactional,
        );
        if result.is_ok() {
            pending.next_seq = next_seq(last_seq(pending.next_seq, records.len() as i32));
        }
        if let Err(e) = &result {
            note_failure(state, e);
        }
        result
    }

    /// Appends the pending batch of `key` and queues a report per record.
    fn append_pending(&self, state: &mut State, key: (&str, u32)) {
        let (identity, transactional) = (state.identity, state.txn.is_some());
        let Some(pending) = state.pending.get_mut(&key as &dyn PartitionKey) else {
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
        let result = self.append_with_retries(
            &pending.partition,
            &records,
            pending.next_seq,
            identity,
            transactional,
        );
        if result.is_ok() {
            pending.next_seq = next_seq(last_seq(pending.next_seq, records.len() as i32));
        }
        let (topic, partition) = (key.0.to_string(), key.1);
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
                note_failure(state, &e);
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
        identity: Option<(i64, i16)>,
        transactional: bool,
    ) -> Result<AppendInfo> {
        let options = AppendOptions {
            batch: BatchOptions {
                producer: match identity {
                    Some((producer_id, producer_epoch)) => ProducerInfo {
                        producer_id,
                        producer_epoch,
                        base_sequence: seq,
                    },
                    None => ProducerInfo::NONE,
                },
                transactional,
                ..BatchOptions::default()
            },
            // A transaction's records are made durable by its commit, all at once.
            durability: Some(match (transactional, self.config.acks) {
                (true, Durability::Synced) => Durability::Written,
                (_, acks) => acks,
            }),
        };
        if transactional && self.config.acks == Durability::Synced {
            // Written now, synced by the commit.
            partition.log().expect_syncs();
        }
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

/// An append failed: an open transaction can then only abort; outside one, an
/// idempotent producer stops after a non-retriable error (its sequence is lost), as
/// Kafka's does — unless the batch was refused before it took a sequence (too
/// large, or malformed): then nothing is lost and the producer goes on; a fenced
/// producer stops in any case.
fn note_failure(state: &mut State, e: &Error) {
    let refused_whole = matches!(
        e.kind(),
        ErrorKind::RecordTooLarge | ErrorKind::InvalidArgument
    );
    if let Some(txn) = state.txn.as_mut() {
        txn.failed.get_or_insert_with(|| e.to_string());
    } else if state.identity.is_some() && !e.is_retriable() && !refused_whole {
        state.fatal = Some((e.kind(), e.message().to_string()));
    }
    if e.kind() == ErrorKind::ProducerFenced {
        state.fatal = Some((e.kind(), e.message().to_string()));
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
        for (topic, partition) in &due {
            inner.append_pending(&mut state, (topic, *partition));
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
