//! The plain structs and constants C callers fill in: records and headers to produce,
//! topic-partitions (with offsets) to assign and commit, and the special partition,
//! offset and timestamp values. Their layouts are part of the ABI and never change
//! (docs/ABI.md); a later need gets a new struct and a new function.

use std::ffi::{c_char, c_void};

use oncelog::{Header, Record, TopicPartition};

use crate::args::{bytes_arg, partition_arg, str_arg};
use crate::error::{Failure, FfiResult};

/// `partition` argument of the produce calls: let the partitioner choose (Kafka's
/// murmur2 hash of the key, or a sticky partition for records without a key).
pub const ONCELOG_PARTITION_ANY: i32 = -1;
/// `oncelog_consumer_seek` to the first offset still in the log.
pub const ONCELOG_OFFSET_BEGINNING: i64 = -2;
/// `oncelog_consumer_seek` to the end: only records appended from now on.
pub const ONCELOG_OFFSET_END: i64 = -1;
/// "No offset": what `oncelog_consumer_committed` reports when the group has
/// committed nothing for the partition.
pub const ONCELOG_OFFSET_INVALID: i64 = -1001;
/// `oncelog_record_t.timestamp`: no timestamp given; the record takes its append time.
pub const ONCELOG_TIMESTAMP_NOW: i64 = -1;

/// A record header to produce.
///
/// `key` is a NUL-terminated UTF-8 string (required). `value` points to `value_len`
/// bytes; `value` NULL with `value_len` 0 is Kafka's null header value. Borrowed for
/// the duration of the call only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct oncelog_header_t {
    /// Header key: NUL-terminated UTF-8, not NULL.
    pub key: *const c_char,
    /// Header value bytes, or NULL for a null value.
    pub value: *const c_void,
    /// Length of `value` in bytes.
    pub value_len: usize,
}

/// A record to produce with `oncelog_produce_record` or `oncelog_produce_batch`.
///
/// Buffers are borrowed for the duration of the call only: the library copies what
/// it keeps. `key` NULL (with `key_len` 0) is a null key; `value` NULL (with
/// `value_len` 0) is a tombstone; a non-NULL pointer with length 0 is an empty key or
/// value; a NULL pointer with a non-zero length is `ONCELOG_ERR_INVALID_ARGUMENT`.
/// `headers` points to `header_count` headers (NULL when 0). `timestamp` is
/// milliseconds since the Unix epoch, or `ONCELOG_TIMESTAMP_NOW`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct oncelog_record_t {
    /// Key bytes, or NULL for a null key.
    pub key: *const c_void,
    /// Length of `key` in bytes.
    pub key_len: usize,
    /// Value bytes, or NULL for a tombstone.
    pub value: *const c_void,
    /// Length of `value` in bytes.
    pub value_len: usize,
    /// The headers, in order (keys may repeat), or NULL when `header_count` is 0.
    pub headers: *const oncelog_header_t,
    /// Number of headers.
    pub header_count: usize,
    /// Milliseconds since the Unix epoch (0 or more), or `ONCELOG_TIMESTAMP_NOW`.
    pub timestamp: i64,
}

/// A topic and a partition, for `oncelog_consumer_assign`. `topic` is borrowed for the
/// duration of the call only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct oncelog_topic_partition_t {
    /// Topic name: NUL-terminated UTF-8, not NULL.
    pub topic: *const c_char,
    /// Partition number, 0 or more.
    pub partition: i32,
}

/// A topic, a partition and an offset (the next offset to consume), for
/// `oncelog_consumer_commit` and `oncelog_send_offsets_to_transaction`. `topic` is
/// borrowed for the duration of the call only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct oncelog_topic_partition_offset_t {
    /// Topic name: NUL-terminated UTF-8, not NULL.
    pub topic: *const c_char,
    /// Partition number, 0 or more.
    pub partition: i32,
    /// The offset, 0 or more.
    pub offset: i64,
}

/// The headers of a record or batch, checked and gathered in one vector so that
/// records without headers cost no allocation; [`records`] lends them out.
pub(crate) struct Converted<'a> {
    headers: Vec<Header<'a>>,
    parts: Vec<Parts<'a>>,
}

struct Parts<'a> {
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: std::ops::Range<usize>,
    timestamp: Option<i64>,
}

/// Checks every field of `records` (pointers, lengths, UTF-8 of header keys,
/// timestamps) before anything is produced; `what` names the argument in errors.
pub(crate) fn convert<'a>(records: &'a [oncelog_record_t], what: &str) -> FfiResult<Converted<'a>> {
    let mut headers = Vec::new();
    let mut parts = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        // Argument names ("records[5].key") are only built for an error message.
        let at = |field: &str| {
            if records.len() == 1 {
                format!("{what}.{field}")
            } else {
                format!("{what}[{i}].{field}")
            }
        };
        let key = renamed(bytes_arg(r.key, r.key_len, "key"), "key", || at("key"))?;
        let value = renamed(bytes_arg(r.value, r.value_len, "value"), "value", || {
            at("value")
        })?;
        let timestamp = match r.timestamp {
            ONCELOG_TIMESTAMP_NOW => None,
            t if t >= 0 => Some(t),
            t => {
                return Err(Failure::invalid(format!(
                    "{} must be 0 or more, or ONCELOG_TIMESTAMP_NOW, not {t}",
                    at("timestamp")
                )))
            }
        };
        let start = headers.len();
        if r.header_count > 0 {
            let list = renamed(
                crate::args::array_arg(r.headers, r.header_count, "headers"),
                "headers",
                || at("headers"),
            )?;
            for (j, h) in list.iter().enumerate() {
                let key = renamed(str_arg(h.key, "key"), "key", || {
                    format!("{}[{j}].key", at("headers"))
                })?;
                let value = renamed(bytes_arg(h.value, h.value_len, "value"), "value", || {
                    format!("{}[{j}].value", at("headers"))
                })?;
                headers.push(Header { key, value });
            }
        }
        parts.push(Parts {
            key,
            value,
            headers: start..headers.len(),
            timestamp,
        });
    }
    Ok(Converted { headers, parts })
}

/// Gives an argument error its full name: the checks in `args` start their messages
/// with the name they were given, so a short one is swapped for `full()` on failure
/// only, and the per-record hot path builds no strings.
fn renamed<T>(r: FfiResult<T>, short: &str, full: impl FnOnce() -> String) -> FfiResult<T> {
    r.map_err(|mut e| {
        if let Some(rest) = e.message.strip_prefix(short) {
            e.message = format!("{}{rest}", full());
        }
        e
    })
}

/// The core records of a [`Converted`] batch, borrowing its headers.
pub(crate) fn records<'a>(c: &'a Converted<'a>) -> Vec<Record<'a>> {
    c.parts
        .iter()
        .map(|p| Record {
            key: p.key,
            value: p.value,
            headers: &c.headers[p.headers.clone()],
            timestamp: p.timestamp,
        })
        .collect()
}

/// The core topic-partition of a C topic and partition.
pub(crate) fn topic_partition(topic: *const c_char, partition: i32) -> FfiResult<TopicPartition> {
    Ok(TopicPartition::new(
        str_arg(topic, "topic")?,
        partition_arg(partition)?,
    ))
}

/// The core list of an array of topic-partition-offsets; offsets must be 0 or more.
pub(crate) fn offsets_list(
    list: &[oncelog_topic_partition_offset_t],
    what: &str,
) -> FfiResult<Vec<(TopicPartition, i64)>> {
    list.iter()
        .enumerate()
        .map(|(i, o)| {
            let tp = TopicPartition::new(
                str_arg(o.topic, &format!("{what}[{i}].topic"))?,
                partition_arg(o.partition)?,
            );
            if o.offset < 0 {
                return Err(Failure::invalid(format!(
                    "{what}[{i}].offset must be 0 or more, not {}",
                    o.offset
                )));
            }
            Ok((tp, o.offset))
        })
        .collect()
}
