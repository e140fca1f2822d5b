//! `oncelog_consumer_t`: Kafka's consumer (assign or group subscription, positions,
//! committed offsets, read_committed) over a store.
//!
//! The core's `poll` returns up to `max.poll.records` records; the C consumer keeps
//! them and hands them out one message (or one caller-sized batch) at a time. The
//! core's positions are then past records the application has not seen yet, so
//! before anything that reads or commits positions the consumer gives those records
//! back: it seeks the core to the first message not handed out, per partition, and
//! forgets them (the next poll reads them again). Positions, commits and the
//! at-least-once commit on close are therefore exactly what the application saw.

use std::ffi::c_char;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use oncelog::{Consumer, ConsumerConfig, Store, TopicPartition};

use crate::args::{array_arg, out_arg, str_arg, write_out};
use crate::conf::{self, oncelog_conf_t};
use crate::error::{
    oncelog_err_t, oncelog_error_t, Failure, FfiResult, ONCELOG_ERR_CLOSED, ONCELOG_ERR_PANIC,
};
use crate::handle::{self, Opaque};
use crate::message::{oncelog_message_t, Cursor};
use crate::panic::{call, infallible};
use crate::store::{oncelog_store_t, store_arg};
use crate::types::{
    self, oncelog_topic_partition_offset_t, oncelog_topic_partition_t, ONCELOG_OFFSET_BEGINNING,
    ONCELOG_OFFSET_END, ONCELOG_OFFSET_INVALID,
};

/// A consumer. Created with `oncelog_consumer_new`, closed with
/// `oncelog_consumer_close`, freed with `oncelog_consumer_destroy`. Use it from one
/// thread at a time (it may move between threads): calls from several threads are
/// serialised inside, so a thread waits while another is in `oncelog_consumer_poll`.
pub struct oncelog_consumer_t {
    _opaque: [u8; 0],
}

/// What an `oncelog_consumer_t` points to.
pub struct ConsumerHandle {
    store: Store,
    state: Mutex<State>,
}

impl Opaque for oncelog_consumer_t {
    type Inner = ConsumerHandle;
}

struct State {
    consumer: Consumer,
    /// The records of the last core poll, as messages, until all are handed out.
    buffer: Option<Cursor>,
    closed: bool,
    /// Set when a call panicked while holding the state: it may be inconsistent.
    broken: bool,
}

/// Releases the state; a panic inside marks the consumer broken.
struct Guard<'a>(MutexGuard<'a, State>);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.broken = true;
        }
    }
}

impl std::ops::Deref for Guard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0
    }
}

impl std::ops::DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.0
    }
}

impl ConsumerHandle {
    /// The state, refusing a consumer that is closed (unless `closed_ok`) or broken.
    fn state(&self, closed_ok: bool) -> FfiResult<Guard<'_>> {
        let state = Guard(self.state.lock().unwrap_or_else(|p| p.into_inner()));
        if state.broken {
            let mut f = Failure::new(
                ONCELOG_ERR_PANIC,
                "an earlier call on this consumer failed internally; destroy it",
            );
            f.fatal = true;
            return Err(f);
        }
        if state.closed && !closed_ok {
            return Err(Failure::new(ONCELOG_ERR_CLOSED, "the consumer is closed"));
        }
        Ok(state)
    }
}

impl State {
    /// Gives the records not handed out back to the core: each partition's position
    /// moves to its first such record, and the records are dropped (the next poll
    /// reads them again).
    fn give_back(&mut self) -> FfiResult<()> {
        let Some(cursor) = self.buffer.as_ref() else {
            return Ok(());
        };
        let mut firsts: Vec<(TopicPartition, i64)> = Vec::new();
        for r in cursor.remaining() {
            if !firsts
                .iter()
                .any(|(tp, _)| tp.partition == r.partition && tp.topic == r.topic)
            {
                firsts.push((TopicPartition::new(r.topic.clone(), r.partition), r.offset));
            }
        }
        for (tp, offset) in &firsts {
            self.consumer.seek(tp, *offset)?;
        }
        self.buffer = None;
        Ok(())
    }

    /// Whether a message is waiting in the buffer.
    fn has_buffered(&self) -> bool {
        self.buffer.as_ref().is_some_and(|c| !c.is_empty())
    }

    /// Fills the buffer from the core, waiting up to `timeout_ms` (-1: no limit) for
    /// the first record.
    fn refill(&mut self, timeout_ms: i32) -> FfiResult<()> {
        let slice = match timeout_ms {
            -1 => Duration::from_secs(3600),
            t if t >= 0 => Duration::from_millis(t as u64),
            t => {
                return Err(Failure::invalid(format!(
                    "timeout_ms must be 0 or more, or -1 to wait without limit, not {t}"
                )))
            }
        };
        self.buffer = None;
        loop {
            let records = self.consumer.poll(slice)?;
            if !records.is_empty() {
                self.buffer = Some(Cursor::new(records));
                return Ok(());
            }
            if timeout_ms != -1 {
                return Ok(());
            }
        }
    }

    /// The next buffered message, now the caller's.
    fn next_message(&mut self) -> Option<*mut oncelog_message_t> {
        self.buffer.as_mut()?.take()
    }
}

/// The consumer behind a handle argument named `consumer`.
fn consumer_arg<'a>(consumer: *const oncelog_consumer_t) -> FfiResult<&'a ConsumerHandle> {
    handle::get(consumer, "consumer")
}

/// Creates a consumer on `store` and stores it in `*consumer_out`; the caller frees it
/// with `oncelog_consumer_destroy`. `conf` may be NULL; its consumer keys
/// ("group.id", "enable.auto.commit", "auto.commit.interval.ms",
/// "auto.offset.reset", "isolation.level", "max.poll.records", "delivery") are used,
/// other keys ignored. Nothing is consumed until `oncelog_consumer_assign` or
/// `oncelog_consumer_subscribe`.
#[no_mangle]
pub extern "C" fn oncelog_consumer_new(
    store: *mut oncelog_store_t,
    conf: *const oncelog_conf_t,
    consumer_out: *mut *mut oncelog_consumer_t,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let store = store_arg(store)?;
        out_arg(consumer_out, "consumer_out")?;
        let pairs = conf::pairs_of(conf, &ConsumerConfig::KEYS)?;
        let config = ConsumerConfig::from_pairs(conf::views(&pairs))?;
        let consumer = Consumer::new(store, config)?;
        let handle = ConsumerHandle {
            store: store.clone(),
            state: Mutex::new(State {
                consumer,
                buffer: None,
                closed: false,
                broken: false,
            }),
        };
        write_out(consumer_out, handle::into_raw(handle));
        Ok(())
    })
}

/// Joins the consumer group (`group.id`, required) with a subscription to the
/// `count` topics of `topics` (1 or more NUL-terminated names): the group's live
/// members, in any process, share the topics' partitions, one owner per partition,
/// and rebalance inside `oncelog_consumer_poll` when a member joins, leaves or dies.
/// Replaces an earlier subscription or assignment.
#[no_mangle]
pub extern "C" fn oncelog_consumer_subscribe(
    consumer: *mut oncelog_consumer_t,
    topics: *const *const c_char,
    count: usize,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let c = consumer_arg(consumer)?;
        if count == 0 {
            return Err(Failure::invalid(
                "subscribe needs at least one topic (count is 0)",
            ));
        }
        let names = array_arg(topics, count, "topics")?
            .iter()
            .enumerate()
            .map(|(i, t)| str_arg(*t, &format!("topics[{i}]")))
            .collect::<FfiResult<Vec<&str>>>()?;
        let mut state = c.state(false)?;
        state.give_back()?;
        state.consumer.subscribe(&names)?;
        Ok(())
    })
}

/// Stops consuming: leaves the group (its other members take the partitions over)
/// or drops the assignment. Messages polled but not yet handed out are given back
/// first; every partition is then revoked, with a commit if the commit mode commits
/// what was handed out. The consumer may subscribe or assign again afterwards.
#[no_mangle]
pub extern "C" fn oncelog_consumer_unsubscribe(
    consumer: *mut oncelog_consumer_t,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let c = consumer_arg(consumer)?;
        let mut state = c.state(false)?;
        state.give_back()?;
        state.consumer.unsubscribe()?;
        Ok(())
    })
}

/// Consumes exactly the `count` partitions of `partitions`, outside any group
/// rebalancing; replaces an earlier assignment or subscription. `count` 0 assigns
/// nothing. Positions start at the group's committed offsets (with a `group.id`), else
/// at `auto.offset.reset`.
#[no_mangle]
pub extern "C" fn oncelog_consumer_assign(
    consumer: *mut oncelog_consumer_t,
    partitions: *const oncelog_topic_partition_t,
    count: usize,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let c = consumer_arg(consumer)?;
        let list = array_arg(partitions, count, "partitions")?
            .iter()
            .map(|tp| types::topic_partition(tp.topic, tp.partition))
            .collect::<FfiResult<Vec<TopicPartition>>>()?;
        let mut state = c.state(false)?;
        state.give_back()?;
        state.consumer.assign(&list)?;
        Ok(())
    })
}

/// Waits up to `timeout_ms` milliseconds (0: do not wait; -1: no limit) for a message
/// and stores it in `*message_out`: a new message the caller frees with
/// `oncelog_message_destroy`. On timeout the call succeeds and stores NULL. Commits as
/// the commit mode says (auto-commit, or the `delivery` preset: at-most-once commits
/// before a message is handed out, at-least-once after the application polls again).
#[no_mangle]
pub extern "C" fn oncelog_consumer_poll(
    consumer: *mut oncelog_consumer_t,
    timeout_ms: i32,
    message_out: *mut *mut oncelog_message_t,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let c = consumer_arg(consumer)?;
        out_arg(message_out, "message_out")?;
        let mut state = c.state(false)?;
        if !state.has_buffered() {
            state.refill(timeout_ms)?;
        }
        let message = state.next_message().unwrap_or(std::ptr::null_mut());
        write_out(message_out, message);
        Ok(())
    })
}

/// As `oncelog_consumer_poll`, for up to `capacity` messages at once (1 or more):
/// waits up to `timeout_ms` for the first, stores the new messages in
/// `messages[0 .. *count_out]` (each freed with `oncelog_message_destroy`) and their
/// number in `*count_out` (0 on timeout). The cheap path for reading many messages.
#[no_mangle]
pub extern "C" fn oncelog_consumer_poll_batch(
    consumer: *mut oncelog_consumer_t,
    timeout_ms: i32,
    messages: *mut *mut oncelog_message_t,
    capacity: usize,
    count_out: *mut usize,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let c = consumer_arg(consumer)?;
        out_arg(count_out, "count_out")?;
        if capacity == 0 {
            return Err(Failure::invalid("capacity must be 1 or more"));
        }
        out_arg(messages, "messages")?;
        array_arg(messages.cast_const(), capacity, "messages")?;
        let mut state = c.state(false)?;
        if !state.has_buffered() {
            state.refill(timeout_ms)?;
        }
        let mut n = 0;
        while n < capacity {
            let Some(m) = state.next_message() else { break };
            // SAFETY: `messages` has room for `capacity` pointers (the C contract,
            // its size checked above).
            unsafe { messages.add(n).write(m) };
            n += 1;
        }
        write_out(count_out, n);
        Ok(())
    })
}

/// Commits offsets for the consumer's group (`group.id`, required). With `offsets`
/// NULL and `count` 0: the current positions of every assigned partition (after the
/// last message handed out). Otherwise the `count` offsets given (each the next offset
/// to consume). Synchronous: the offsets are committed when the call returns. In a
/// group, committing a partition the member no longer owns returns
/// `ONCELOG_ERR_STALE_GENERATION`. An exactly-once consumer (`delivery=exactly-once`)
/// commits through the producer's transaction instead
/// (`oncelog_send_offsets_to_transaction`).
#[no_mangle]
pub extern "C" fn oncelog_consumer_commit(
    consumer: *mut oncelog_consumer_t,
    offsets: *const oncelog_topic_partition_offset_t,
    count: usize,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let c = consumer_arg(consumer)?;
        let list = types::offsets_list(array_arg(offsets, count, "offsets")?, "offsets")?;
        let mut state = c.state(false)?;
        if list.is_empty() {
            state.give_back()?;
            state.consumer.commit()?;
        } else {
            state.consumer.commit_offsets(&list)?;
        }
        Ok(())
    })
}

/// Moves the position in `topic`/`partition` (an assigned partition) to `offset`: the
/// next message handed out from it. `ONCELOG_OFFSET_BEGINNING` and
/// `ONCELOG_OFFSET_END` stand for the first offset still in the log and the end.
#[no_mangle]
pub extern "C" fn oncelog_consumer_seek(
    consumer: *mut oncelog_consumer_t,
    topic: *const c_char,
    partition: i32,
    offset: i64,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let c = consumer_arg(consumer)?;
        let tp = types::topic_partition(topic, partition)?;
        let mut state = c.state(false)?;
        let offset = match offset {
            ONCELOG_OFFSET_BEGINNING => c.store.partition(&tp.topic, tp.partition)?.start_offset(),
            ONCELOG_OFFSET_END => c.store.partition(&tp.topic, tp.partition)?.end_offset(),
            o if o >= 0 => o,
            o => {
                return Err(Failure::invalid(format!(
                "offset must be 0 or more, ONCELOG_OFFSET_BEGINNING or ONCELOG_OFFSET_END, not {o}"
            )))
            }
        };
        state.give_back()?;
        state.consumer.seek(&tp, offset)?;
        Ok(())
    })
}

/// Stores in `*offset_out` the offset of the next message the consumer will hand out
/// from `topic`/`partition` (an assigned partition).
#[no_mangle]
pub extern "C" fn oncelog_consumer_position(
    consumer: *mut oncelog_consumer_t,
    topic: *const c_char,
    partition: i32,
    offset_out: *mut i64,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let c = consumer_arg(consumer)?;
        let tp = types::topic_partition(topic, partition)?;
        out_arg(offset_out, "offset_out")?;
        let mut state = c.state(false)?;
        let buffered = state.buffer.as_ref().and_then(|b| {
            b.remaining()
                .find(|r| r.partition == tp.partition && r.topic == tp.topic)
                .map(|r| r.offset)
        });
        let position = match buffered {
            Some(o) => o,
            None => state.consumer.position(&tp)?,
        };
        write_out(offset_out, position);
        Ok(())
    })
}

/// Stores in `*offset_out` the offset the consumer's group (`group.id`, required)
/// has committed for `topic`/`partition`, as every process sees it, or
/// `ONCELOG_OFFSET_INVALID` if it has committed none.
#[no_mangle]
pub extern "C" fn oncelog_consumer_committed(
    consumer: *mut oncelog_consumer_t,
    topic: *const c_char,
    partition: i32,
    offset_out: *mut i64,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let c = consumer_arg(consumer)?;
        let tp = types::topic_partition(topic, partition)?;
        out_arg(offset_out, "offset_out")?;
        let state = c.state(false)?;
        let committed = state.consumer.committed(&tp)?;
        write_out(
            offset_out,
            committed.map_or(ONCELOG_OFFSET_INVALID, |c| c.offset),
        );
        Ok(())
    })
}

/// Moves every assigned partition back to its committed offset: the messages
/// polled since are polled again. What an exactly-once loop does after
/// `oncelog_abort_transaction`, so that the aborted transaction's input is
/// processed again.
#[no_mangle]
pub extern "C" fn oncelog_consumer_seek_to_committed(
    consumer: *mut oncelog_consumer_t,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let c = consumer_arg(consumer)?;
        let mut state = c.state(false)?;
        state.buffer = None;
        state.consumer.seek_to_committed()?;
        Ok(())
    })
}

/// A consumer's group metadata: its group, and the generation and member it is in,
/// for `oncelog_send_offsets_to_transaction_for`. Owned by the caller, freed with
/// `oncelog_group_metadata_destroy`; immutable, so any thread may use it.
pub struct oncelog_group_metadata_t {
    _opaque: [u8; 0],
}

impl Opaque for oncelog_group_metadata_t {
    type Inner = oncelog::GroupMetadata;
}

/// Stores in `*metadata_out` a new group metadata object of the consumer (which
/// needs `group.id`): offsets sent with it are refused once the group moved to
/// another generation without this consumer.
#[no_mangle]
pub extern "C" fn oncelog_consumer_group_metadata(
    consumer: *mut oncelog_consumer_t,
    metadata_out: *mut *mut oncelog_group_metadata_t,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let c = consumer_arg(consumer)?;
        out_arg(metadata_out, "metadata_out")?;
        let metadata = c.state(false)?.consumer.group_metadata()?;
        write_out(metadata_out, handle::into_raw(metadata));
        Ok(())
    })
}

/// Frees a group metadata object; NULL is ignored.
#[no_mangle]
pub extern "C" fn oncelog_group_metadata_destroy(metadata: *mut oncelog_group_metadata_t) {
    infallible((), || {
        // SAFETY: the header's contract: NULL, or a metadata object from
        // `oncelog_consumer_group_metadata` not freed before.
        unsafe { handle::free(metadata) }
    })
}

/// The group metadata behind `metadata` (non-NULL).
pub(crate) fn metadata_arg<'a>(
    metadata: *const oncelog_group_metadata_t,
) -> FfiResult<&'a oncelog::GroupMetadata> {
    handle::get(metadata, "metadata")
}

/// Closes the consumer: commits as the commit mode says (auto-commit and
/// at-least-once commit the position after the last message handed out) and leaves
/// the group, so the other members take its partitions over. Later calls on it
/// return `ONCELOG_ERR_CLOSED`; closing again does nothing. Messages already handed
/// out stay valid. The handle is still freed with `oncelog_consumer_destroy`.
#[no_mangle]
pub extern "C" fn oncelog_consumer_close(
    consumer: *mut oncelog_consumer_t,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let c = consumer_arg(consumer)?;
        let mut state = c.state(true)?;
        close(&mut state)
    })
}

fn close(state: &mut State) -> FfiResult<()> {
    if state.closed {
        return Ok(());
    }
    // If giving back fails (a seek to an offset retention just deleted), the core's
    // close still commits its positions, past records never handed out; those
    // records are gone from the log anyway. The error is returned.
    let given_back = state.give_back();
    state.closed = true;
    state.consumer.close()?;
    given_back
}

/// Frees the consumer, closing it first if `oncelog_consumer_close` was not called
/// (errors of that close are lost: call it to see them). NULL is accepted and
/// ignored. No other thread may be using it.
#[no_mangle]
pub extern "C" fn oncelog_consumer_destroy(consumer: *mut oncelog_consumer_t) {
    infallible((), || {
        if let Ok(c) = consumer_arg(consumer) {
            if let Ok(mut state) = c.state(true) {
                let _ = close(&mut state);
            }
        }
        // SAFETY: the caller passes a consumer this library created and gives it up.
        unsafe { handle::free(consumer) }
    })
}
