//! Records and record batches in Kafka's RecordBatch v2 format.
//!
//! [`Record`] is what a caller appends (borrowed bytes); [`batch`] encodes a slice of
//! them into one batch and decodes batches back into [`RecordView`]s that borrow from
//! the log's mapping. `docs/FORMAT.md` specifies every byte.

pub mod batch;
pub mod varint;

pub use batch::{
    control_record, encode_batch, encoded_batch_len, Batch, BatchHeader, BatchOptions,
    ControlRecordType, DecodeError, EncodedBatch, HeaderView, ProducerInfo, RecordView,
    BATCH_HEADER_LEN,
};

/// A record header: a UTF-8 key and an optional byte value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// The header key.
    pub key: &'a str,
    /// The header value; `None` is Kafka's null.
    pub value: Option<&'a [u8]>,
}

/// A record to append. It borrows its bytes; nothing is copied until it is encoded
/// into the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record<'a> {
    /// Optional key: the partitioner hashes it, compaction would keep the last per key.
    pub key: Option<&'a [u8]>,
    /// Optional value; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// Headers in order; keys may repeat.
    pub headers: &'a [Header<'a>],
    /// Milliseconds since the Unix epoch; `None` takes the append time.
    pub timestamp: Option<i64>,
}

impl<'a> Record<'a> {
    /// A record with only a value.
    pub fn value(value: &'a [u8]) -> Record<'a> {
        Record {
            value: Some(value),
            ..Record::default()
        }
    }

    /// A record with a key and a value.
    pub fn keyed(key: &'a [u8], value: &'a [u8]) -> Record<'a> {
        Record {
            key: Some(key),
            value: Some(value),
            ..Record::default()
        }
    }

    /// The same record with these headers.
    pub fn with_headers(self, headers: &'a [Header<'a>]) -> Record<'a> {
        Record { headers, ..self }
    }

    /// The same record with this timestamp.
    pub fn with_timestamp(self, timestamp_ms: i64) -> Record<'a> {
        Record {
            timestamp: Some(timestamp_ms),
            ..self
        }
    }
}

/// A record that owns its bytes: what a producer buffers, or a program builds
/// before appending. [`OwnedRecord::views`] lends them out as [`Record`]s.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedRecord {
    /// Optional key.
    pub key: Option<Vec<u8>>,
    /// Optional value; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// Headers in order: key and optional value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Milliseconds since the Unix epoch; `None` takes the append time.
    pub timestamp: Option<i64>,
}

impl OwnedRecord {
    /// A copy of a borrowed record.
    pub fn from_record(r: &Record<'_>) -> OwnedRecord {
        OwnedRecord {
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.map(<[u8]>::to_vec),
            headers: r
                .headers
                .iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect(),
            timestamp: r.timestamp,
        }
    }

    /// The header views of each record, for [`views`](Self::views) to borrow.
    pub fn header_views(records: &[OwnedRecord]) -> Vec<Vec<Header<'_>>> {
        records
            .iter()
            .map(|r| {
                r.headers
                    .iter()
                    .map(|(k, v)| Header {
                        key: k,
                        value: v.as_deref(),
                    })
                    .collect()
            })
            .collect()
    }

    /// Borrowed views of `records`, with the headers `header_views` built.
    pub fn views<'a>(
        records: &'a [OwnedRecord],
        headers: &'a [Vec<Header<'a>>],
    ) -> Vec<Record<'a>> {
        records
            .iter()
            .zip(headers)
            .map(|(r, h)| Record {
                key: r.key.as_deref(),
                value: r.value.as_deref(),
                headers: h,
                timestamp: r.timestamp,
            })
            .collect()
    }
}
