//! `oncelog_message_t`: one consumed record, owned by the caller, with borrowed
//! views of its fields.

use std::cell::UnsafeCell;
use std::ffi::{c_char, c_void, CString};
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::OnceLock;

use oncelog::ConsumerRecord;

use crate::args::{out_arg, write_opt, write_out};
use crate::error::{oncelog_err_t, oncelog_error_t, Failure};
use crate::handle::{self, Opaque};
use crate::panic::{call, infallible};

/// A consumed message. Returned by `oncelog_consumer_poll` and
/// `oncelog_consumer_poll_batch`; owned by the caller and freed with
/// `oncelog_message_destroy`. It owns its bytes: it stays valid after its consumer
/// and store are destroyed. Every pointer its accessors return is borrowed from it
/// and valid until `oncelog_message_destroy`. Immutable: may be read from any thread.
/// The messages of one poll share a small block of memory (about 160 bytes per
/// message, not their keys and values), freed when the last of them is destroyed.
pub struct oncelog_message_t {
    _opaque: [u8; 0],
}

/// What an `oncelog_message_t` points to: a slot of a [`Chunk`] (a
/// `ManuallyDrop<Message>`, which has the same layout).
pub struct Message {
    record: ConsumerRecord,
    /// Index of the topic's NUL-terminated name in the chunk.
    topic: usize,
    /// Header keys, NUL-terminated, made on the first header access.
    header_keys: OnceLock<Vec<CString>>,
    chunk: NonNull<Chunk>,
}

impl Opaque for oncelog_message_t {
    type Inner = Message;
}

/// The messages of one core poll, in one allocation instead of one per message: a
/// message is a slot, and the chunk is freed when its last reference is released:
/// each slot is one (released when its message is destroyed, or dropped unread by
/// the consumer), and the consumer's cursor is one more, so the chunk outlives the
/// cursor even when every message was handed out and destroyed. Slots are disjoint,
/// so messages of one chunk may be read and destroyed from different threads.
pub struct Chunk {
    /// References not released yet: unreleased slots, plus one for the cursor.
    live: AtomicUsize,
    slots: Box<[UnsafeCell<ManuallyDrop<Message>>]>,
    /// The NUL-terminated topic names the slots refer to.
    topics: Vec<CString>,
}

// SAFETY: a slot is used by one owner at a time (the consumer until it hands the
// message out, then the message's holder); the shared parts are immutable or atomic.
unsafe impl Send for Chunk {}
// SAFETY: as above.
unsafe impl Sync for Chunk {}
// SAFETY: a message only reads its own slot and its chunk's immutable topics; its
// release goes through the chunk's atomic count.
unsafe impl Send for Message {}
// SAFETY: as above; `header_keys` is a `OnceLock`.
unsafe impl Sync for Message {}

/// A consumer's cursor over a chunk: slots `next..` are still the consumer's.
pub(crate) struct Cursor {
    chunk: NonNull<Chunk>,
    next: usize,
}

// SAFETY: the cursor owns its slots; see `Chunk`.
unsafe impl Send for Cursor {}

impl Cursor {
    /// A chunk of `records` (not empty), all of its slots owned by the cursor.
    pub(crate) fn new(records: Vec<ConsumerRecord>) -> Cursor {
        let mut topics: Vec<CString> = Vec::new();
        let placeholder = NonNull::dangling();
        let slots: Box<[_]> = records
            .into_iter()
            .map(|record| {
                let topic = match topics
                    .iter()
                    .position(|t| t.as_bytes() == record.topic.as_bytes())
                {
                    Some(i) => i,
                    None => {
                        // Topic names are ASCII without NUL (Kafka's naming rules).
                        topics.push(CString::new(record.topic.as_str()).unwrap_or_default());
                        topics.len() - 1
                    }
                };
                UnsafeCell::new(ManuallyDrop::new(Message {
                    record,
                    topic,
                    header_keys: OnceLock::new(),
                    chunk: placeholder,
                }))
            })
            .collect();
        let chunk = Box::new(Chunk {
            live: AtomicUsize::new(slots.len() + 1),
            slots,
            topics,
        });
        let chunk = NonNull::from(Box::leak(chunk));
        // SAFETY: the chunk was just made; nothing else refers to its slots yet.
        for slot in unsafe { chunk.as_ref() }.slots.iter() {
            // SAFETY: as above.
            unsafe { (*slot.get().cast::<Message>()).chunk = chunk };
        }
        Cursor { chunk, next: 0 }
    }

    fn chunk(&self) -> &Chunk {
        // SAFETY: the cursor holds a reference to the chunk until `drop`.
        unsafe { self.chunk.as_ref() }
    }

    /// The records still in the cursor, in order.
    pub(crate) fn remaining(&self) -> impl Iterator<Item = &ConsumerRecord> + '_ {
        // SAFETY: slots `next..` are the cursor's own.
        self.chunk().slots[self.next..]
            .iter()
            .map(|slot| unsafe { &(*slot.get().cast::<Message>()).record })
    }

    /// Whether every slot was handed out.
    pub(crate) fn is_empty(&self) -> bool {
        self.next == self.chunk().slots.len()
    }

    /// Hands out the next message: its slot now belongs to the caller, who releases it
    /// with `oncelog_message_destroy`.
    pub(crate) fn take(&mut self) -> Option<*mut oncelog_message_t> {
        let slot: *mut oncelog_message_t = self.chunk().slots.get(self.next)?.get().cast();
        self.next += 1;
        Some(slot)
    }
}

impl Drop for Cursor {
    /// Drops the messages not handed out, and releases their slots and the cursor's
    /// own reference.
    fn drop(&mut self) {
        let len = self.chunk().slots.len();
        let left = len - self.next;
        for slot in &self.chunk().slots[self.next..] {
            // SAFETY: slots `next..` are the cursor's own, dropped once here.
            unsafe { ManuallyDrop::drop(&mut *slot.get()) };
        }
        self.next = len;
        // SAFETY: the cursor gives up its `left` slots and its reference.
        unsafe { release(self.chunk, left + 1) };
    }
}

/// Releases `n` references to `chunk` (slots or the cursor's), freeing it with the
/// last.
///
/// # Safety
///
/// The caller owned `n` unreleased references to `chunk` and does not use them
/// again.
unsafe fn release(chunk: NonNull<Chunk>, n: usize) {
    // SAFETY: the chunk is alive until its count reaches 0.
    if unsafe { chunk.as_ref() }
        .live
        .fetch_sub(n, Ordering::Release)
        == n
    {
        fence(Ordering::Acquire);
        // SAFETY: the last slot is released; the chunk came from `Box::leak`. Its
        // slots are `ManuallyDrop`, each already dropped by its owner.
        drop(unsafe { Box::from_raw(chunk.as_ptr()) });
    }
}

impl Message {
    fn topic(&self) -> &CString {
        // SAFETY: the chunk outlives its unreleased slots, this one included.
        &unsafe { self.chunk.as_ref() }.topics[self.topic]
    }

    fn header_keys(&self) -> &[CString] {
        self.header_keys.get_or_init(|| {
            self.record
                .headers
                .iter()
                .map(|(k, _)| {
                    // A key holding a NUL (possible only from non-C producers) reads
                    // up to it.
                    let cut = k.split('\0').next().unwrap_or_default();
                    CString::new(cut).expect("cut at the first NUL")
                })
                .collect()
        })
    }
}

/// A borrowed view of optional bytes: the pointer (NULL for null) and the length.
fn view(bytes: Option<&Vec<u8>>, len_out: *mut usize) -> *const c_void {
    match bytes {
        Some(b) => {
            write_opt(len_out, b.len());
            // Never NULL, even for an empty vector: NULL means null.
            b.as_ptr().cast()
        }
        None => {
            write_opt(len_out, 0);
            std::ptr::null()
        }
    }
}

/// The message's topic: a NUL-terminated string borrowed from `message` (valid until
/// `oncelog_message_destroy`). NULL if `message` is NULL.
#[no_mangle]
pub extern "C" fn oncelog_message_topic(message: *const oncelog_message_t) -> *const c_char {
    infallible(std::ptr::null(), || {
        handle::get(message, "message").map_or(std::ptr::null(), |m| m.topic().as_ptr())
    })
}

/// The message's partition; -1 if `message` is NULL.
#[no_mangle]
pub extern "C" fn oncelog_message_partition(message: *const oncelog_message_t) -> i32 {
    infallible(-1, || {
        handle::get(message, "message").map_or(-1, |m| {
            i32::try_from(m.record.partition).unwrap_or(i32::MAX)
        })
    })
}

/// The message's offset; -1 if `message` is NULL.
#[no_mangle]
pub extern "C" fn oncelog_message_offset(message: *const oncelog_message_t) -> i64 {
    infallible(-1, || {
        handle::get(message, "message").map_or(-1, |m| m.record.offset)
    })
}

/// The message's timestamp (milliseconds since the Unix epoch); -1 if `message` is
/// NULL.
#[no_mangle]
pub extern "C" fn oncelog_message_timestamp(message: *const oncelog_message_t) -> i64 {
    infallible(-1, || {
        handle::get(message, "message").map_or(-1, |m| m.record.timestamp)
    })
}

/// The message's key: a pointer to its bytes, borrowed from `message` (valid until
/// `oncelog_message_destroy`), and its length in `*len_out` (when not NULL). NULL (and
/// length 0) for a null key or a NULL `message`; an empty key is a non-NULL pointer
/// with length 0. Not NUL-terminated.
#[no_mangle]
pub extern "C" fn oncelog_message_key(
    message: *const oncelog_message_t,
    len_out: *mut usize,
) -> *const c_void {
    infallible(std::ptr::null(), || match handle::get(message, "message") {
        Ok(m) => view(m.record.key.as_ref(), len_out),
        Err(_) => view(None, len_out),
    })
}

/// The message's value, as `oncelog_message_key` gives the key: NULL (and length 0)
/// for a tombstone.
#[no_mangle]
pub extern "C" fn oncelog_message_value(
    message: *const oncelog_message_t,
    len_out: *mut usize,
) -> *const c_void {
    infallible(std::ptr::null(), || match handle::get(message, "message") {
        Ok(m) => view(m.record.value.as_ref(), len_out),
        Err(_) => view(None, len_out),
    })
}

/// The number of headers of the message; 0 if `message` is NULL.
#[no_mangle]
pub extern "C" fn oncelog_message_header_count(message: *const oncelog_message_t) -> usize {
    infallible(0, || {
        handle::get(message, "message").map_or(0, |m| m.record.headers.len())
    })
}

/// Header number `index` (from 0, in the order produced; keys may repeat): its key,
/// a NUL-terminated UTF-8 string, in `*key_out`, and its value in `*value_out` and
/// `*value_len_out` (NULL and 0 for a null value). All borrowed from `message`, valid
/// until `oncelog_message_destroy`. `key_out` is required; `value_out` and
/// `value_len_out` may be NULL. `ONCELOG_ERR_INVALID_ARGUMENT` when `index` is not
/// below `oncelog_message_header_count`.
#[no_mangle]
pub extern "C" fn oncelog_message_header(
    message: *const oncelog_message_t,
    index: usize,
    key_out: *mut *const c_char,
    value_out: *mut *const c_void,
    value_len_out: *mut usize,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let m = handle::get(message, "message")?;
        out_arg(key_out, "key_out")?;
        let count = m.record.headers.len();
        let Some((_, value)) = m.record.headers.get(index) else {
            return Err(Failure::invalid(format!(
                "header index {index} is out of range: the message has {count} header(s)"
            )));
        };
        let key = m.header_keys()[index].as_ptr();
        let mut len = 0;
        let value = view(value.as_ref(), &mut len);
        write_out(key_out, key);
        write_opt(value_out, value);
        write_opt(value_len_out, len);
        Ok(())
    })
}

/// Frees `message` and everything borrowed from it. NULL is accepted and ignored.
#[no_mangle]
pub extern "C" fn oncelog_message_destroy(message: *mut oncelog_message_t) {
    infallible((), || {
        if message.is_null() {
            return;
        }
        let slot = message.cast::<ManuallyDrop<Message>>();
        // SAFETY: the caller passes a message this library handed out and gives it
        // up: its slot is dropped once, then released.
        unsafe {
            let chunk = (*slot.cast::<Message>()).chunk;
            ManuallyDrop::drop(&mut *slot);
            release(chunk, 1);
        }
    })
}
