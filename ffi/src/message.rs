//! `oncelog_message_t`: one consumed record, owned by the caller, with borrowed
//! views of its fields.

use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::{Arc, OnceLock};

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
pub struct oncelog_message_t {
    _opaque: [u8; 0],
}

/// What an `oncelog_message_t` points to.
pub struct Message {
    record: ConsumerRecord,
    /// The topic, NUL-terminated, shared by the messages of a consumer.
    topic: Arc<CStr>,
    /// Header keys, NUL-terminated, made on the first header access.
    header_keys: OnceLock<Vec<CString>>,
}

impl Opaque for oncelog_message_t {
    type Inner = Message;
}

impl Message {
    /// A message of `record`, whose topic is `topic`.
    pub fn new(record: ConsumerRecord, topic: Arc<CStr>) -> Message {
        Message {
            record,
            topic,
            header_keys: OnceLock::new(),
        }
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
        handle::get(message, "message").map_or(std::ptr::null(), |m| m.topic.as_ptr())
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
        // SAFETY: the caller passes a message this library created and gives it up.
        unsafe { handle::free(message) }
    })
}
