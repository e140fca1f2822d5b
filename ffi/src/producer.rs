//! `oncelog_producer_t`: Kafka's producer (routing, batching, idempotence,
//! transactions) over a store.
//!
//! The core producer reports each record's outcome in a delivery report. With the
//! default `linger.ms = 0` a record is appended inside the produce call, so the call
//! returns its outcome (and offset) directly. With `linger.ms > 0` a produce call
//! without `offset_out` only buffers the record; a failure of such a record is kept
//! here and returned by the next `oncelog_producer_flush`, so none goes unreported.

use std::ffi::{c_char, c_void};
use std::sync::{Mutex, MutexGuard};

use oncelog::{Producer, ProducerConfig, ProducerRecord};

use crate::args::{array_arg, bytes_arg, out_arg, partition_arg, str_arg, write_opt, write_out};
use crate::conf::{self, oncelog_conf_t};
use crate::error::{oncelog_err_t, oncelog_error_t, Failure, FfiResult};
use crate::handle::{self, Opaque};
use crate::panic::{call, infallible};
use crate::store::{oncelog_store_t, store_arg};
use crate::types::{
    self, oncelog_record_t, oncelog_topic_partition_offset_t, ONCELOG_OFFSET_INVALID,
    ONCELOG_PARTITION_ANY,
};

/// A producer. Created with `oncelog_producer_new`, freed with
/// `oncelog_producer_destroy`. Thread-safe: any number of threads may produce
/// through one producer at once (appends to a partition are serialised).
pub struct oncelog_producer_t {
    _opaque: [u8; 0],
}

/// What an `oncelog_producer_t` points to.
pub struct ProducerHandle {
    producer: Producer,
    /// Held while a produce call sends and collects its report, so that no other
    /// thread takes it; also keeps failures of records appended later.
    reports: Mutex<Failures>,
}

impl Opaque for oncelog_producer_t {
    type Inner = ProducerHandle;
}

/// Failures of buffered records not yet returned by a flush.
#[derive(Default)]
struct Failures {
    first: Option<Failure>,
    count: u64,
}

impl Failures {
    fn note(&mut self, e: oncelog::Error) {
        self.count += 1;
        self.first.get_or_insert_with(|| Failure::from(e));
    }
}

impl ProducerHandle {
    fn reports(&self) -> MutexGuard<'_, Failures> {
        self.reports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the core's delivery reports: the outcome of `token` is returned, other
    /// failures are kept for the next flush.
    fn collect(
        &self,
        failures: &mut Failures,
        token: Option<u64>,
    ) -> Option<(u32, oncelog::Result<i64>)> {
        let mut mine = None;
        for report in self.producer.poll() {
            if Some(report.token) == token {
                mine = Some((report.partition, report.result));
            } else if let Err(e) = report.result {
                failures.note(e);
            }
        }
        mine
    }

    /// Drops the reports of a transaction that just ended (a transactional producer
    /// sends nothing outside one): its outcome is the commit's or abort's own result.
    fn discard_reports(&self) {
        let _failures = self.reports();
        drop(self.producer.poll());
    }

    /// Sends one record; its partition and offset when they are known: always with
    /// `linger.ms = 0`, and when `need_report` forces the pending batch out (the core
    /// tells the partition only in the delivery report).
    fn send(&self, record: ProducerRecord<'_>, need_report: bool) -> FfiResult<Option<(u32, i64)>> {
        let mut failures = self.reports();
        let token = self.producer.send(record)?;
        let mut mine = self.collect(&mut failures, Some(token));
        if mine.is_none() && need_report {
            self.producer.flush()?;
            mine = self.collect(&mut failures, Some(token));
        }
        match mine {
            Some((partition, Ok(offset))) => Ok(Some((partition, offset))),
            Some((_, Err(e))) => Err(e.into()),
            None => Ok(None),
        }
    }
}

/// The producer behind a handle argument named `producer`.
fn producer_arg<'a>(producer: *const oncelog_producer_t) -> FfiResult<&'a ProducerHandle> {
    handle::get(producer, "producer")
}

/// Writes where a record went through the optional out-parameters.
fn write_report(report: Option<(u32, i64)>, partition_out: *mut i32, offset_out: *mut i64) {
    let (partition, offset) = report.map_or((-1, ONCELOG_OFFSET_INVALID), |(p, o)| {
        (i32::try_from(p).unwrap_or(i32::MAX), o)
    });
    write_opt(partition_out, partition);
    write_opt(offset_out, offset);
}

/// The core's partition choice for a C partition argument.
fn partition_choice(partition: i32) -> FfiResult<Option<u32>> {
    if partition == ONCELOG_PARTITION_ANY {
        return Ok(None);
    }
    partition_arg(partition).map(Some).map_err(|_| {
        Failure::invalid(format!(
            "partition must be 0 or more, or ONCELOG_PARTITION_ANY (-1), not {partition}"
        ))
    })
}

/// Creates a producer on `store` and stores it in `*producer_out`; the caller frees
/// it with `oncelog_producer_destroy`. `conf` may be NULL (defaults: idempotent,
/// `acks=written`, `linger.ms=0`); its producer keys ("acks", "linger.ms",
/// "batch.size", "enable.idempotence", "retries", "transactional.id",
/// "transaction.timeout.ms", "delivery", ...) are used, other keys ignored.
/// Conflicting keys return `ONCELOG_ERR_INVALID_CONFIG`.
#[no_mangle]
pub extern "C" fn oncelog_producer_new(
    store: *mut oncelog_store_t,
    conf: *const oncelog_conf_t,
    producer_out: *mut *mut oncelog_producer_t,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let store = store_arg(store)?;
        out_arg(producer_out, "producer_out")?;
        let pairs = conf::pairs_of(conf, &ProducerConfig::KEYS)?;
        let config = ProducerConfig::from_pairs(conf::views(&pairs))?;
        let producer = Producer::new(store, config)?;
        let handle = ProducerHandle {
            producer,
            reports: Mutex::new(Failures::default()),
        };
        write_out(producer_out, handle::into_raw(handle));
        Ok(())
    })
}

/// Frees the producer. A non-transactional producer first appends what it still
/// buffers (`linger.ms > 0`); call `oncelog_producer_flush` before to learn whether
/// that worked. A transactional producer's open transaction is left open: the next
/// `oncelog_init_transactions` with the same `transactional.id` (in any process)
/// aborts it. NULL is accepted and ignored. No other thread may be using it.
#[no_mangle]
pub extern "C" fn oncelog_producer_destroy(producer: *mut oncelog_producer_t) {
    infallible((), || {
        // SAFETY: the caller passes a producer this library created and gives it up.
        unsafe { handle::free(producer) }
    })
}

/// Produces one record to `topic`: to `partition`, or with `ONCELOG_PARTITION_ANY`
/// (-1) to the partition Kafka's partitioner picks (murmur2 of the key; sticky for
/// records without a key).
///
/// `key` (`key_len` bytes) may be NULL for a null key; `value` (`value_len` bytes) may
/// be NULL for a tombstone; both are copied before the call returns. With
/// `linger.ms = 0` (the default) the record is appended before the call returns, with
/// the producer's `acks` durability; its partition is stored in `*partition_out` and
/// its offset in `*offset_out`, each when not NULL. With `linger.ms > 0` the record is
/// buffered; passing `partition_out` or `offset_out` then appends the buffered
/// batches at once to learn where it went.
/// `ONCELOG_ERR_RECORD_TOO_LARGE` when the record exceeds the topic's
/// `max.message.bytes`.
#[no_mangle]
pub extern "C" fn oncelog_produce(
    producer: *mut oncelog_producer_t,
    topic: *const c_char,
    partition: i32,
    key: *const c_void,
    key_len: usize,
    value: *const c_void,
    value_len: usize,
    partition_out: *mut i32,
    offset_out: *mut i64,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let p = producer_arg(producer)?;
        let topic = str_arg(topic, "topic")?;
        let partition = partition_choice(partition)?;
        let key = bytes_arg(key, key_len, "key")?;
        let value = bytes_arg(value, value_len, "value")?;
        let record = ProducerRecord {
            topic,
            partition,
            record: oncelog::Record {
                key,
                value,
                ..oncelog::Record::default()
            },
        };
        let wanted = !partition_out.is_null() || !offset_out.is_null();
        write_report(p.send(record, wanted)?, partition_out, offset_out);
        Ok(())
    })
}

/// As `oncelog_produce`, for a record with headers and a timestamp
/// (`oncelog_record_t`; its buffers are copied before the call returns).
#[no_mangle]
pub extern "C" fn oncelog_produce_record(
    producer: *mut oncelog_producer_t,
    topic: *const c_char,
    partition: i32,
    record: *const oncelog_record_t,
    partition_out: *mut i32,
    offset_out: *mut i64,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let p = producer_arg(producer)?;
        let topic = str_arg(topic, "topic")?;
        let partition = partition_choice(partition)?;
        if record.is_null() {
            return Err(Failure::invalid("record must not be NULL"));
        }
        let one = array_arg(record, 1, "record")?;
        let converted = types::convert(one, "record")?;
        let records = types::records(&converted);
        let record = ProducerRecord {
            topic,
            partition,
            record: records[0],
        };
        let wanted = !partition_out.is_null() || !offset_out.is_null();
        write_report(p.send(record, wanted)?, partition_out, offset_out);
        Ok(())
    })
}

/// Appends `count` records (1 or more) to `topic`/`partition` as one batch, right
/// away, after any records still buffered for that partition: the fast path for bulk
/// writes. All or none are appended. `partition` must be a partition number (a batch
/// goes to one partition; `ONCELOG_PARTITION_ANY` is refused). The offset of the
/// first record is stored in `*base_offset_out` when it is not NULL; the others follow
/// it one by one. `ONCELOG_ERR_RECORD_TOO_LARGE` when the batch exceeds the topic's
/// `max.message.bytes`. The records' buffers are only read during the call.
#[no_mangle]
pub extern "C" fn oncelog_produce_batch(
    producer: *mut oncelog_producer_t,
    topic: *const c_char,
    partition: i32,
    records: *const oncelog_record_t,
    count: usize,
    base_offset_out: *mut i64,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let p = producer_arg(producer)?;
        let topic = str_arg(topic, "topic")?;
        let partition = partition_arg(partition).map_err(|_| {
            Failure::invalid(format!(
                "partition must be 0 or more for a batch, not {partition}"
            ))
        })?;
        if count == 0 {
            return Err(Failure::invalid(
                "a batch needs at least one record (count is 0)",
            ));
        }
        if count > i32::MAX as usize {
            return Err(Failure::invalid(format!(
                "count {count} is more records than a batch can hold"
            )));
        }
        let list = array_arg(records, count, "records")?;
        let converted = types::convert(list, "records")?;
        let records = types::records(&converted);
        let info = p.producer.send_batch(topic, partition, &records)?;
        write_opt(base_offset_out, info.base_offset);
        Ok(())
    })
}

/// Appends every buffered record now. Returns `ONCELOG_ERR_OK` if every record
/// produced without a known outcome since the last flush was appended; otherwise the
/// error of the first that failed (its message says how many failed), and those
/// failures are then forgotten.
#[no_mangle]
pub extern "C" fn oncelog_producer_flush(
    producer: *mut oncelog_producer_t,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let p = producer_arg(producer)?;
        let mut failures = p.reports();
        p.producer.flush()?;
        p.collect(&mut failures, None);
        let count = std::mem::take(&mut failures.count);
        match failures.first.take() {
            None => Ok(()),
            Some(mut first) => {
                first.message = format!(
                    "{count} record(s) produced since the last flush failed; the first: {}",
                    first.message
                );
                Err(first)
            }
        }
    })
}

/// Takes over the producer's `transactional.id` (required in its conf): any older
/// producer with the same id, in any process, is fenced from now on, and a
/// transaction it left open is aborted (or, if it had decided to commit, completed).
/// Call once, before the first `oncelog_begin_transaction`.
/// `ONCELOG_ERR_INVALID_CONFIG` without a `transactional.id`.
#[no_mangle]
pub extern "C" fn oncelog_init_transactions(
    producer: *mut oncelog_producer_t,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        Ok(producer_arg(producer)?.producer.init_transactions()?)
    })
}

/// Starts a transaction: what is produced (and the offsets sent) until
/// `oncelog_commit_transaction` becomes visible to `read_committed` consumers all at
/// once, or never after `oncelog_abort_transaction`. `ONCELOG_ERR_INVALID_TXN_STATE`
/// before `oncelog_init_transactions` or while a transaction is open.
#[no_mangle]
pub extern "C" fn oncelog_begin_transaction(
    producer: *mut oncelog_producer_t,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        Ok(producer_arg(producer)?.producer.begin_transaction()?)
    })
}

/// Adds consumer offsets to the open transaction: `count` entries of `offsets` (each
/// the next offset to consume) are committed for consumer group `group_id` if and
/// when the transaction commits (Kafka's sendOffsetsToTransaction).
/// `ONCELOG_ERR_INVALID_TXN_STATE` outside a transaction.
#[no_mangle]
pub extern "C" fn oncelog_send_offsets_to_transaction(
    producer: *mut oncelog_producer_t,
    offsets: *const oncelog_topic_partition_offset_t,
    count: usize,
    group_id: *const c_char,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let p = producer_arg(producer)?;
        let list = types::offsets_list(array_arg(offsets, count, "offsets")?, "offsets")?;
        let group = str_arg(group_id, "group_id")?;
        p.producer.send_offsets_to_transaction(&list, group)?;
        Ok(())
    })
}

/// As `oncelog_send_offsets_to_transaction`, for the consumer whose group metadata
/// is `metadata` (from `oncelog_consumer_group_metadata`, still owned by the
/// caller): refused with `ONCELOG_ERR_STALE_GENERATION` (the transaction can then
/// only abort) when the group moved to another generation without that consumer,
/// so that a consumer that was away past its `session.timeout.ms` cannot commit
/// offsets of partitions others consumed meanwhile. The form to use with a consumer
/// in a group (Kafka's KIP-447).
#[no_mangle]
pub extern "C" fn oncelog_send_offsets_to_transaction_for(
    producer: *mut oncelog_producer_t,
    offsets: *const oncelog_topic_partition_offset_t,
    count: usize,
    metadata: *const crate::consumer::oncelog_group_metadata_t,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let p = producer_arg(producer)?;
        let list = types::offsets_list(array_arg(offsets, count, "offsets")?, "offsets")?;
        let metadata = crate::consumer::metadata_arg(metadata)?;
        p.producer
            .send_offsets_to_transaction_for(&list, metadata)?;
        Ok(())
    })
}

/// Commits the open transaction: buffered records are appended, then every
/// partition it wrote to (and the offsets sent) is committed at once. If a send in
/// the transaction failed, nothing commits: `ONCELOG_ERR_TRANSACTION_ABORTED`, with
/// `oncelog_error_txn_requires_abort` true; call `oncelog_abort_transaction`.
/// `ONCELOG_ERR_INVALID_TXN_STATE` without an open transaction;
/// `ONCELOG_ERR_PRODUCER_FENCED` (fatal) when a newer producer took the id over.
#[no_mangle]
pub extern "C" fn oncelog_commit_transaction(
    producer: *mut oncelog_producer_t,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let p = producer_arg(producer)?;
        let result = p.producer.commit_transaction();
        p.discard_reports();
        Ok(result?)
    })
}

/// Aborts the open transaction: buffered records are dropped and nothing it wrote
/// ever becomes visible to `read_committed` consumers.
/// `ONCELOG_ERR_INVALID_TXN_STATE` without an open transaction.
#[no_mangle]
pub extern "C" fn oncelog_abort_transaction(
    producer: *mut oncelog_producer_t,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let p = producer_arg(producer)?;
        let result = p.producer.abort_transaction();
        p.discard_reports();
        Ok(result?)
    })
}
