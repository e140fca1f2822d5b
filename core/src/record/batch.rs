//! Kafka RecordBatch v2 (magic 2) and Record v2: encoding and zero-copy decoding.
//!
//! The byte layout is specified in `docs/FORMAT.md` (record batches); in short,
//! a 61-byte big-endian header followed by `record_count` records whose integers are
//! zigzag varints ([`super::varint`]). A CRC-32C covers everything from `attributes` to
//! the end of the batch, so `baseOffset` and `partitionLeaderEpoch` can be rewritten
//! without recomputing it.
//!
//! Only uncompressed batches (codec 0) are written or read; a batch that claims another
//! codec is reported as a [`DecodeError`] by [`Batch::records`].
//!
//! Encoding ([`encode_batch`]) writes straight into a caller-provided slice (typically
//! the log's shared mapping) sized with [`encoded_batch_len`]; it does not allocate.
//! Decoding ([`Batch::parse`], [`Batch::records`]) reads untrusted bytes: it never panics,
//! never allocates, and reports the first problem with its byte offset in the batch.

use std::borrow::Cow;
use std::fmt;

use super::varint;
use super::Record;

/// Size of the fixed batch header: every field up to and including the record count.
pub const BATCH_HEADER_LEN: usize = 61;

// Byte offsets of the header fields.
const OFF_BATCH_LENGTH: usize = 8;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
/// First byte covered by the CRC.
const OFF_ATTRIBUTES: usize = 21;
const OFF_LAST_OFFSET_DELTA: usize = 23;
const OFF_RECORD_COUNT: usize = 57;

/// Bytes before the part counted by `batchLength` (baseOffset and batchLength itself).
const LOG_OVERHEAD: usize = 12;
/// Smallest valid `batchLength`: a header with no records.
const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
/// The only supported `magic`.
const MAGIC_V2: i8 = 2;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// Producer identity of a batch; [`ProducerInfo::NONE`] = `(-1, -1, -1)` for
/// non-idempotent producers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerInfo {
    /// Producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the batch's first record, or -1. The last record's sequence is
    /// `base_sequence + last_offset_delta`.
    pub base_sequence: i32,
}

impl ProducerInfo {
    /// No producer identity: a producer without idempotence.
    pub const NONE: ProducerInfo = ProducerInfo {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
}

/// Batch-level settings for [`encode_batch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// Producer id, epoch and base sequence written into the header.
    pub producer: ProducerInfo,
    /// Sets the isTransactional attribute (records of an open transaction, and markers).
    pub transactional: bool,
    /// Sets the isControlBatch attribute: the batch holds one control record
    /// (see [`control_record`]). Kafka's markers are also transactional.
    pub control: bool,
    /// Sets the timestampType attribute to LogAppendTime: `maxTimestamp` becomes `now_ms`
    /// and readers report it as every record's timestamp.
    pub log_append_time: bool,
    /// Written into `partitionLeaderEpoch` (not covered by the CRC).
    pub partition_leader_epoch: i32,
}

impl Default for BatchOptions {
    /// No producer identity, no flags, epoch 0.
    fn default() -> BatchOptions {
        BatchOptions {
            producer: ProducerInfo::NONE,
            transactional: false,
            control: false,
            log_append_time: false,
            partition_leader_epoch: 0,
        }
    }
}

/// What [`encode_batch`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedBatch {
    /// Total bytes written (`batchLength + 12`), equal to [`encoded_batch_len`].
    pub len: usize,
    /// Number of records.
    pub record_count: i32,
    /// Offset of the last record minus the base offset (`record_count - 1`).
    pub last_offset_delta: i32,
    /// Timestamp of the first record (`baseTimestamp`).
    pub base_timestamp: i64,
    /// Largest record timestamp, or `now_ms` for a LogAppendTime batch (`maxTimestamp`).
    pub max_timestamp: i64,
}

/// Type of a control record (a transaction marker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlRecordType {
    /// The transaction was aborted: its records are skipped by read_committed readers.
    Abort = 0,
    /// The transaction was committed.
    Commit = 1,
}

impl ControlRecordType {
    fn from_i16(v: i16) -> Option<ControlRecordType> {
        match v {
            0 => Some(ControlRecordType::Abort),
            1 => Some(ControlRecordType::Commit),
            _ => None,
        }
    }
}

/// Key and value bytes of a control record (ABORT/COMMIT), to be encoded as the single
/// record of a batch with [`BatchOptions::control`] set.
///
/// Key: version `i16` = 0, type `i16`. Value: version `i16` = 0, coordinator epoch `i32`.
pub fn control_record(kind: ControlRecordType, coordinator_epoch: i32) -> ([u8; 4], [u8; 6]) {
    let mut key = [0u8; 4];
    key[..2].copy_from_slice(&0i16.to_be_bytes());
    key[2..].copy_from_slice(&(kind as i16).to_be_bytes());
    let mut value = [0u8; 6];
    value[..2].copy_from_slice(&0i16.to_be_bytes());
    value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
    (key, value)
}

/// A decoding failure: what was wrong and at which byte offset of the input.
///
/// For [`BatchHeader::parse`] and [`Batch`] methods the offset is relative to the start of
/// the batch (the buffer given to `parse`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    what: Cow<'static, str>,
    at: usize,
}

impl DecodeError {
    fn new(what: impl Into<Cow<'static, str>>, at: usize) -> DecodeError {
        DecodeError {
            what: what.into(),
            at,
        }
    }

    /// What was wrong, in words.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Byte offset in the input where the problem was found.
    pub fn at(&self) -> usize {
        self.at
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "corrupt record batch: {} (at byte {})",
            self.what, self.at
        )
    }
}

impl std::error::Error for DecodeError {}

/// The fixed 61-byte header of a record batch, field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes of the batch after this field (total length - 12).
    pub batch_length: i32,
    /// Leader epoch of the partition when the batch was appended (outside the CRC).
    pub partition_leader_epoch: i32,
    /// Format version; always 2.
    pub magic: i8,
    /// CRC-32C of the bytes from `attributes` to the end of the batch.
    pub crc: u32,
    /// Bits 0-2 compression codec, 3 timestamp type, 4 transactional, 5 control,
    /// 6 hasDeleteHorizonMs.
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (ms since the epoch).
    pub base_timestamp: i64,
    /// Largest record timestamp, or the append time for LogAppendTime batches.
    pub max_timestamp: i64,
    /// Producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records that follow the header.
    pub record_count: i32,
}

impl BatchHeader {
    /// Total size of the batch in bytes: `batch_length + 12`.
    pub fn total_len(&self) -> usize {
        // A parsed header has batch_length >= 49; a hand-built negative one counts as 0.
        usize::try_from(self.batch_length).unwrap_or(0) + LOG_OVERHEAD
    }

    /// Offset of the last record: `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// Offset that follows this batch: `last_offset() + 1`.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// Whether the isTransactional attribute is set.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// Whether the isControlBatch attribute is set (a transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// The compression codec (attribute bits 0-2): 0 none, 1 gzip, 2 snappy, 3 lz4,
    /// 4 zstd. Only 0 can be read.
    pub fn compression(&self) -> u8 {
        (self.attributes & ATTR_COMPRESSION_MASK) as u8
    }

    /// Whether the timestamp type is LogAppendTime (record timestamps are then all
    /// `max_timestamp`).
    pub fn log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }

    /// The producer id, epoch and base sequence.
    pub fn producer(&self) -> ProducerInfo {
        ProducerInfo {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
        }
    }
}

/// A whole batch borrowed from a buffer (typically the log's mapping).
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    header: BatchHeader,
    bytes: &'a [u8],
}

/// One record of a batch, borrowing its bytes from the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Absolute offset: the batch's base offset plus the record's offset delta.
    pub offset: i64,
    /// Record timestamp (ms); for LogAppendTime batches the batch's `maxTimestamp`.
    pub timestamp: i64,
    /// Key; `None` is Kafka's null.
    pub key: Option<&'a [u8]>,
    /// Value; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// The encoded headers (already validated by the batch iterator).
    headers_raw: &'a [u8],
    header_count: usize,
}

/// One header of a [`RecordView`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderView<'a> {
    /// Header key (UTF-8).
    pub key: &'a str,
    /// Header value; `None` is Kafka's null.
    pub value: Option<&'a [u8]>,
}

// ---------------------------------------------------------------------------------------
// Encoding (the hot path: plain slice writes, no allocation, one CRC pass at the end).
// ---------------------------------------------------------------------------------------

/// Encoded size of a nullable byte string: its length varint plus its bytes.
#[inline(always)]
fn nullable_len(b: Option<&[u8]>) -> usize {
    match b {
        // -1 encodes in one byte.
        None => 1,
        Some(b) => varint::encoded_len_i32(b.len() as i32) + b.len(),
    }
}

/// Size of a record after its length varint.
#[inline(always)]
fn record_body_len(r: &Record<'_>, ts_delta: i64, offset_delta: i32) -> usize {
    let mut n = 1 // attributes
        + varint::encoded_len_i64(ts_delta)
        + varint::encoded_len_i32(offset_delta)
        + nullable_len(r.key)
        + nullable_len(r.value)
        + varint::encoded_len_i32(r.headers.len() as i32);
    for h in r.headers {
        n += nullable_len(Some(h.key.as_bytes())) + nullable_len(h.value);
    }
    n
}

/// Exact encoded size of a batch of these records (timestamps `None` take `now_ms`).
///
/// The result may exceed `i32::MAX + 12`, which [`encode_batch`] refuses; callers cap
/// batch sizes far below that.
pub fn encoded_batch_len(records: &[Record<'_>], now_ms: i64) -> usize {
    let Some(first) = records.first() else {
        return BATCH_HEADER_LEN;
    };
    let base_ts = first.timestamp.unwrap_or(now_ms);
    let mut len = BATCH_HEADER_LEN;
    for (i, r) in records.iter().enumerate() {
        let ts_delta = r.timestamp.unwrap_or(now_ms).wrapping_sub(base_ts);
        let offset_delta = i32::try_from(i).unwrap_or(i32::MAX);
        let body = record_body_len(r, ts_delta, offset_delta);
        len += i32::try_from(body).map_or(5, varint::encoded_len_i32) + body;
    }
    len
}

/// Writes a nullable byte string (length varint, then bytes) at the start of `out`.
#[inline(always)]
fn write_nullable(out: &mut [u8], b: Option<&[u8]>) -> usize {
    match b {
        None => varint::write_i32(out, -1),
        Some(b) => {
            // The caller checked that the whole record fits in an i32.
            let n = varint::write_i32(out, b.len() as i32);
            out[n..n + b.len()].copy_from_slice(b);
            n + b.len()
        }
    }
}

/// Writes one record (length varint and body) at the start of `out`; returns its size.
#[inline(always)]
fn write_record(out: &mut [u8], r: &Record<'_>, ts_delta: i64, offset_delta: i32) -> usize {
    let body = record_body_len(r, ts_delta, offset_delta);
    let body_i32 = i32::try_from(body).expect("encode_batch: record larger than i32::MAX bytes");
    let n = varint::write_i32(out, body_i32);
    let dst = &mut out[n..n + body];
    dst[0] = 0; // record attributes: unused
    let mut p = 1;
    p += varint::write_i64(&mut dst[p..], ts_delta);
    p += varint::write_i32(&mut dst[p..], offset_delta);
    p += write_nullable(&mut dst[p..], r.key);
    p += write_nullable(&mut dst[p..], r.value);
    p += varint::write_i32(&mut dst[p..], r.headers.len() as i32);
    for h in r.headers {
        p += write_nullable(&mut dst[p..], Some(h.key.as_bytes()));
        p += write_nullable(&mut dst[p..], h.value);
    }
    debug_assert_eq!(p, body);
    n + body
}

/// Writes `bytes` at `out[at..]`.
#[inline(always)]
fn put<const N: usize>(out: &mut [u8], at: usize, bytes: [u8; N]) {
    out[at..at + N].copy_from_slice(&bytes);
}

/// Encodes `records` as one batch into `out[..len]` with the given base offset, computes
/// and writes the CRC, and returns what it wrote. `len` equals
/// [`encoded_batch_len`]`(records, now_ms)`.
///
/// Record `i` gets offset delta `i`; a record whose timestamp is `None` takes `now_ms`,
/// which must therefore be the value given to [`encoded_batch_len`]. `baseTimestamp` is
/// the first record's timestamp; deltas may be negative and are computed with wrapping
/// arithmetic, so any `i64` timestamps round-trip. With [`BatchOptions::log_append_time`],
/// `maxTimestamp` is `now_ms` and the record deltas keep the producer's timestamps, as
/// Kafka's broker writes them. A control batch ([`BatchOptions::control`]) holds exactly
/// one record, built with [`control_record`] (checked in debug builds).
///
/// The caller keeps `base_offset + records.len() - 1` within `i64` (decoders reject
/// batches whose offsets overflow). Bytes of `out` past `len` are not touched.
///
/// # Panics
///
/// If `records` is empty, if `out` is shorter than [`encoded_batch_len`], or if the batch
/// would be larger than `i32::MAX + 12` bytes (the caller checks all three).
pub fn encode_batch(
    out: &mut [u8],
    base_offset: i64,
    records: &[Record<'_>],
    now_ms: i64,
    opts: &BatchOptions,
) -> EncodedBatch {
    let Some(first) = records.first() else {
        panic!("encode_batch: a batch needs at least one record");
    };
    let record_count =
        i32::try_from(records.len()).expect("encode_batch: more than i32::MAX records");
    debug_assert!(
        !opts.control || records.len() == 1,
        "encode_batch: a control batch holds exactly one record"
    );
    let base_timestamp = first.timestamp.unwrap_or(now_ms);
    let mut max_timestamp = base_timestamp;

    let mut pos = BATCH_HEADER_LEN;
    let mut offset_delta: i32 = 0;
    for r in records {
        let ts = r.timestamp.unwrap_or(now_ms);
        max_timestamp = max_timestamp.max(ts);
        pos += write_record(
            &mut out[pos..],
            r,
            ts.wrapping_sub(base_timestamp),
            offset_delta,
        );
        offset_delta = offset_delta.wrapping_add(1);
    }
    if opts.log_append_time {
        max_timestamp = now_ms;
    }
    let last_offset_delta = record_count - 1;
    let batch_length = i32::try_from(pos - LOG_OVERHEAD)
        .expect("encode_batch: batch larger than i32::MAX + 12 bytes");

    let mut attributes: i16 = 0; // compression: none
    if opts.log_append_time {
        attributes |= ATTR_LOG_APPEND_TIME;
    }
    if opts.transactional {
        attributes |= ATTR_TRANSACTIONAL;
    }
    if opts.control {
        attributes |= ATTR_CONTROL;
    }

    put(out, 0, base_offset.to_be_bytes());
    put(out, 8, batch_length.to_be_bytes());
    put(out, 12, opts.partition_leader_epoch.to_be_bytes());
    put(out, 16, MAGIC_V2.to_be_bytes());
    // 17..21: CRC, written last.
    put(out, 21, attributes.to_be_bytes());
    put(out, 23, last_offset_delta.to_be_bytes());
    put(out, 27, base_timestamp.to_be_bytes());
    put(out, 35, max_timestamp.to_be_bytes());
    put(out, 43, opts.producer.producer_id.to_be_bytes());
    put(out, 51, opts.producer.producer_epoch.to_be_bytes());
    put(out, 53, opts.producer.base_sequence.to_be_bytes());
    put(out, 57, record_count.to_be_bytes());
    let crc: u32 = crc32c::crc32c(&out[OFF_ATTRIBUTES..pos]);
    put(out, OFF_CRC, crc.to_be_bytes());

    EncodedBatch {
        len: pos,
        record_count,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
    }
}

// ---------------------------------------------------------------------------------------
// Decoding. Untrusted input: no indexing, no unwrap, no unchecked arithmetic, no
// allocation except for error messages.
// ---------------------------------------------------------------------------------------

mod decode {
    #![deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )]

    use super::*;

    /// A cursor over untrusted bytes that knows its absolute offset in the batch.
    #[derive(Clone, Copy, Debug)]
    struct Reader<'a> {
        rest: &'a [u8],
        at: usize,
    }

    impl<'a> Reader<'a> {
        fn new(rest: &'a [u8], at: usize) -> Reader<'a> {
            Reader { rest, at }
        }

        fn advance(&mut self, tail: &'a [u8], n: usize) {
            self.rest = tail;
            // Cannot wrap: `at + n` is a position inside an in-memory buffer.
            self.at = self.at.wrapping_add(n);
        }

        fn fixed<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
            let Some((head, tail)) = self.rest.split_first_chunk::<N>() else {
                return Err(DecodeError::new(
                    format!(
                        "truncated {field}: needs {N} bytes, {} left",
                        self.rest.len()
                    ),
                    self.at,
                ));
            };
            self.advance(tail, N);
            Ok(*head)
        }

        fn varint(&mut self, field: &'static str) -> Result<i32, DecodeError> {
            let Some((v, n)) = varint::read_i32(self.rest) else {
                return Err(self.bad_varint(field));
            };
            let tail = self.rest.get(n..).unwrap_or_default();
            self.advance(tail, n);
            Ok(v)
        }

        fn varlong(&mut self, field: &'static str) -> Result<i64, DecodeError> {
            let Some((v, n)) = varint::read_i64(self.rest) else {
                return Err(self.bad_varint(field));
            };
            let tail = self.rest.get(n..).unwrap_or_default();
            self.advance(tail, n);
            Ok(v)
        }

        fn bad_varint(&self, field: &'static str) -> DecodeError {
            DecodeError::new(format!("{field}: truncated or over-long varint"), self.at)
        }

        fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
            let Some((head, tail)) = self.rest.split_at_checked(n) else {
                return Err(DecodeError::new(
                    format!(
                        "{field} of {n} bytes overruns its container ({} bytes left)",
                        self.rest.len()
                    ),
                    self.at,
                ));
            };
            self.advance(tail, n);
            Ok(head)
        }

        /// A varint length (-1 = null) followed by that many bytes.
        fn nullable_bytes(&mut self, field: &'static str) -> Result<Option<&'a [u8]>, DecodeError> {
            let at = self.at;
            match self.varint(field)? {
                -1 => Ok(None),
                len if len < 0 => Err(DecodeError::new(
                    format!("{field} has invalid length {len}"),
                    at,
                )),
                len => self.bytes(len as usize, field).map(Some),
            }
        }
    }

    impl BatchHeader {
        /// Parses the 61-byte header at the start of `buf`; checks that `magic` is 2,
        /// `batch_length >= 49`, `last_offset_delta >= 0`, `record_count >= 0` and that the
        /// batch's offsets do not overflow `i64`. Does not check the CRC, nor that `buf`
        /// holds the whole batch (see [`Batch::parse`]).
        pub fn parse(buf: &[u8]) -> Result<BatchHeader, DecodeError> {
            if buf.len() < BATCH_HEADER_LEN {
                return Err(DecodeError::new(
                    format!(
                        "truncated batch header: needs {BATCH_HEADER_LEN} bytes, {} present",
                        buf.len()
                    ),
                    buf.len(),
                ));
            }
            let mut r = Reader::new(buf, 0);
            let h = BatchHeader {
                base_offset: i64::from_be_bytes(r.fixed("baseOffset")?),
                batch_length: i32::from_be_bytes(r.fixed("batchLength")?),
                partition_leader_epoch: i32::from_be_bytes(r.fixed("partitionLeaderEpoch")?),
                magic: i8::from_be_bytes(r.fixed("magic")?),
                crc: u32::from_be_bytes(r.fixed("crc")?),
                attributes: i16::from_be_bytes(r.fixed("attributes")?),
                last_offset_delta: i32::from_be_bytes(r.fixed("lastOffsetDelta")?),
                base_timestamp: i64::from_be_bytes(r.fixed("baseTimestamp")?),
                max_timestamp: i64::from_be_bytes(r.fixed("maxTimestamp")?),
                producer_id: i64::from_be_bytes(r.fixed("producerId")?),
                producer_epoch: i16::from_be_bytes(r.fixed("producerEpoch")?),
                base_sequence: i32::from_be_bytes(r.fixed("baseSequence")?),
                record_count: i32::from_be_bytes(r.fixed("recordsCount")?),
            };
            if h.magic != MAGIC_V2 {
                return Err(DecodeError::new(
                    format!(
                        "unsupported magic {} (only RecordBatch v2, magic 2, is supported)",
                        h.magic
                    ),
                    OFF_MAGIC,
                ));
            }
            if h.batch_length < MIN_BATCH_LENGTH {
                return Err(DecodeError::new(
                    format!(
                        "batchLength {} is below the minimum {MIN_BATCH_LENGTH}",
                        h.batch_length
                    ),
                    OFF_BATCH_LENGTH,
                ));
            }
            if h.last_offset_delta < 0 {
                return Err(DecodeError::new(
                    format!("negative lastOffsetDelta {}", h.last_offset_delta),
                    OFF_LAST_OFFSET_DELTA,
                ));
            }
            if h.record_count < 0 {
                return Err(DecodeError::new(
                    format!("negative recordsCount {}", h.record_count),
                    OFF_RECORD_COUNT,
                ));
            }
            let overflow = h
                .base_offset
                .checked_add(i64::from(h.last_offset_delta))
                .and_then(|last| last.checked_add(1))
                .is_none();
            if overflow {
                return Err(DecodeError::new(
                    format!(
                        "baseOffset {} + lastOffsetDelta {} overflows",
                        h.base_offset, h.last_offset_delta
                    ),
                    0,
                ));
            }
            Ok(h)
        }
    }

    impl<'a> Batch<'a> {
        /// Parses the header at the start of `buf` and checks that `buf` holds the whole
        /// batch (`total_len` bytes; any bytes after it are not part of this batch). Does
        /// not check the CRC ([`Batch::verify_crc`]) nor the records ([`Batch::records`]).
        pub fn parse(buf: &'a [u8]) -> Result<Batch<'a>, DecodeError> {
            let header = BatchHeader::parse(buf)?;
            let total = header.total_len();
            let Some(bytes) = buf.get(..total) else {
                return Err(DecodeError::new(
                    format!(
                        "truncated batch: batchLength says {total} bytes, {} present",
                        buf.len()
                    ),
                    buf.len(),
                ));
            };
            Ok(Batch { header, bytes })
        }

        /// The parsed header.
        pub fn header(&self) -> &BatchHeader {
            &self.header
        }

        /// The batch's bytes, exactly `header().total_len()` of them.
        pub fn bytes(&self) -> &'a [u8] {
            self.bytes
        }

        /// Checks the stored CRC-32C against the bytes from `attributes` to the end.
        pub fn verify_crc(&self) -> Result<(), DecodeError> {
            let covered = self.bytes.get(OFF_ATTRIBUTES..).unwrap_or_default();
            let computed = crc32c::crc32c(covered);
            if computed == self.header.crc {
                Ok(())
            } else {
                Err(DecodeError::new(
                    format!(
                        "CRC mismatch: stored {:#010x}, computed {computed:#010x}",
                        self.header.crc
                    ),
                    OFF_CRC,
                ))
            }
        }

        /// Iterates the records. Each item is a [`RecordView`] or the first
        /// [`DecodeError`], after which iteration ends. Errors: a compressed batch
        /// (codec != 0), a record length that overruns the batch or disagrees with the
        /// record's contents, fewer records than `recordsCount`, bytes left after the last
        /// record, offset deltas that do not increase or exceed `lastOffsetDelta`, invalid
        /// lengths, and header keys that are not UTF-8.
        pub fn records(&self) -> impl Iterator<Item = Result<RecordView<'a>, DecodeError>> + 'a {
            let h = &self.header;
            let pending = match h.compression() {
                0 => None,
                codec => Some(DecodeError::new(
                    format!(
                        "compressed batch (codec {codec}, {}) is not supported: oncelog \
                         reads and writes uncompressed batches only",
                        codec_name(codec)
                    ),
                    OFF_ATTRIBUTES,
                )),
            };
            RecordIter {
                rest: Reader::new(
                    self.bytes.get(BATCH_HEADER_LEN..).unwrap_or_default(),
                    BATCH_HEADER_LEN,
                ),
                base_offset: h.base_offset,
                base_timestamp: h.base_timestamp,
                max_timestamp: h.max_timestamp,
                log_append_time: h.log_append_time(),
                last_offset_delta: h.last_offset_delta,
                record_count: h.record_count,
                read: 0,
                prev_offset_delta: -1,
                pending,
                done: false,
            }
        }

        /// For a control batch: the marker type and coordinator epoch of its record.
        pub fn control(&self) -> Result<(ControlRecordType, i32), DecodeError> {
            if !self.header.is_control() {
                return Err(DecodeError::new("not a control batch", OFF_ATTRIBUTES));
            }
            if self.header.record_count != 1 {
                return Err(DecodeError::new(
                    format!(
                        "control batch holds {} records, expected 1",
                        self.header.record_count
                    ),
                    OFF_RECORD_COUNT,
                ));
            }
            let at = BATCH_HEADER_LEN;
            let rec = match self.records().next() {
                Some(Ok(rec)) => rec,
                Some(Err(e)) => return Err(e),
                None => return Err(DecodeError::new("control batch has no record", at)),
            };
            let mut key = Reader::new(rec.key.unwrap_or_default(), at);
            let key_version = i16::from_be_bytes(key.fixed("control record key version")?);
            let kind = i16::from_be_bytes(key.fixed("control record type")?);
            let mut value = Reader::new(rec.value.unwrap_or_default(), at);
            let value_version = i16::from_be_bytes(value.fixed("control record value version")?);
            let epoch = i32::from_be_bytes(value.fixed("control record coordinator epoch")?);
            if key_version < 0 || value_version < 0 {
                return Err(DecodeError::new(
                    format!(
                        "invalid control record versions (key {key_version}, value \
                         {value_version})"
                    ),
                    at,
                ));
            }
            let Some(kind) = ControlRecordType::from_i16(kind) else {
                return Err(DecodeError::new(
                    format!("unsupported control record type {kind}"),
                    at,
                ));
            };
            Ok((kind, epoch))
        }
    }

    fn codec_name(codec: u8) -> &'static str {
        match codec {
            1 => "gzip",
            2 => "snappy",
            3 => "lz4",
            4 => "zstd",
            _ => "unknown",
        }
    }

    /// The iterator behind [`Batch::records`].
    struct RecordIter<'a> {
        rest: Reader<'a>,
        base_offset: i64,
        base_timestamp: i64,
        max_timestamp: i64,
        log_append_time: bool,
        last_offset_delta: i32,
        record_count: i32,
        read: i32,
        prev_offset_delta: i64,
        pending: Option<DecodeError>,
        done: bool,
    }

    impl<'a> RecordIter<'a> {
        fn decode_one(&mut self) -> Result<RecordView<'a>, DecodeError> {
            let start = self.rest.at;
            if self.rest.rest.is_empty() {
                return Err(DecodeError::new(
                    format!(
                        "batch ends after {} of {} records",
                        self.read, self.record_count
                    ),
                    start,
                ));
            }
            let len = self.rest.varint("record length")?;
            if len < 0 {
                return Err(DecodeError::new(
                    format!("negative record length {len}"),
                    start,
                ));
            }
            let body_at = self.rest.at;
            let body = self.rest.bytes(len as usize, "record")?;
            let mut r = Reader::new(body, body_at);

            let _attributes = r.fixed::<1>("record attributes")?; // unused, written as 0
            let timestamp_delta = r.varlong("timestampDelta")?;
            let delta_at = r.at;
            let offset_delta = r.varint("offsetDelta")?;
            if i64::from(offset_delta) <= self.prev_offset_delta
                || offset_delta > self.last_offset_delta
            {
                return Err(DecodeError::new(
                    format!(
                        "offsetDelta {offset_delta} out of order (previous {}, lastOffsetDelta \
                         {})",
                        self.prev_offset_delta, self.last_offset_delta
                    ),
                    delta_at,
                ));
            }
            let key = r.nullable_bytes("key")?;
            let value = r.nullable_bytes("value")?;
            let count_at = r.at;
            let header_count = r.varint("header count")?;
            if header_count < 0 {
                return Err(DecodeError::new(
                    format!("negative header count {header_count}"),
                    count_at,
                ));
            }
            let headers_raw = r.rest;
            for _ in 0..header_count {
                let key_at = r.at;
                let key = match r.nullable_bytes("header key")? {
                    Some(k) => k,
                    None => return Err(DecodeError::new("null header key", key_at)),
                };
                if std::str::from_utf8(key).is_err() {
                    return Err(DecodeError::new("header key is not valid UTF-8", key_at));
                }
                r.nullable_bytes("header value")?;
            }
            if !r.rest.is_empty() {
                return Err(DecodeError::new(
                    format!(
                        "record length {len} leaves {} unread bytes after the headers",
                        r.rest.len()
                    ),
                    r.at,
                ));
            }
            self.prev_offset_delta = i64::from(offset_delta);
            Ok(RecordView {
                // Cannot overflow: BatchHeader::parse checked base + lastOffsetDelta + 1.
                offset: self.base_offset.wrapping_add(i64::from(offset_delta)),
                timestamp: if self.log_append_time {
                    self.max_timestamp
                } else {
                    self.base_timestamp.wrapping_add(timestamp_delta)
                },
                key,
                value,
                headers_raw,
                header_count: header_count as usize,
            })
        }
    }

    impl<'a> Iterator for RecordIter<'a> {
        type Item = Result<RecordView<'a>, DecodeError>;

        fn next(&mut self) -> Option<Self::Item> {
            if self.done {
                return None;
            }
            if let Some(e) = self.pending.take() {
                self.done = true;
                return Some(Err(e));
            }
            if self.read >= self.record_count {
                self.done = true;
                if self.rest.rest.is_empty() {
                    return None;
                }
                return Some(Err(DecodeError::new(
                    format!(
                        "{} bytes after the last of {} records",
                        self.rest.rest.len(),
                        self.record_count
                    ),
                    self.rest.at,
                )));
            }
            match self.decode_one() {
                Ok(v) => {
                    self.read = self.read.saturating_add(1);
                    Some(Ok(v))
                }
                Err(e) => {
                    self.done = true;
                    Some(Err(e))
                }
            }
        }
    }

    impl std::iter::FusedIterator for RecordIter<'_> {}

    impl<'a> RecordView<'a> {
        /// Iterates the record's headers in order (keys may repeat).
        pub fn headers(&self) -> impl Iterator<Item = HeaderView<'a>> + 'a {
            HeaderIter {
                rest: self.headers_raw,
                remaining: self.header_count,
            }
        }

        /// Number of headers.
        pub fn header_count(&self) -> usize {
            self.header_count
        }
    }

    /// The iterator behind [`RecordView::headers`]. Its bytes were validated when the
    /// view was made; should they still be malformed, it ends instead of panicking.
    struct HeaderIter<'a> {
        rest: &'a [u8],
        remaining: usize,
    }

    impl<'a> HeaderIter<'a> {
        fn decode_one(&mut self) -> Option<HeaderView<'a>> {
            let mut r = Reader::new(self.rest, 0);
            let key = r.nullable_bytes("header key").ok()??;
            let key = std::str::from_utf8(key).ok()?;
            let value = r.nullable_bytes("header value").ok()?;
            self.rest = r.rest;
            Some(HeaderView { key, value })
        }
    }

    impl<'a> Iterator for HeaderIter<'a> {
        type Item = HeaderView<'a>;

        fn next(&mut self) -> Option<HeaderView<'a>> {
            if self.remaining == 0 {
                return None;
            }
            match self.decode_one() {
                Some(h) => {
                    self.remaining = self.remaining.saturating_sub(1);
                    Some(h)
                }
                None => {
                    self.remaining = 0;
                    None
                }
            }
        }

        fn size_hint(&self) -> (usize, Option<usize>) {
            (0, Some(self.remaining))
        }
    }

    impl std::iter::FusedIterator for HeaderIter<'_> {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Header;

    const NOW: i64 = 1_700_000_000_000;

    fn encode(base_offset: i64, records: &[Record<'_>], opts: &BatchOptions) -> Vec<u8> {
        let len = encoded_batch_len(records, NOW);
        // Poison the buffer so that a byte the encoder forgets to write shows up.
        let mut out = vec![0xa5u8; len + 7];
        let e = encode_batch(&mut out, base_offset, records, NOW, opts);
        assert_eq!(e.len, len);
        assert!(out[len..].iter().all(|&b| b == 0xa5), "wrote past len");
        out.truncate(len);
        out
    }

    fn views(bytes: &[u8]) -> Vec<RecordView<'_>> {
        let batch = Batch::parse(bytes).expect("parse");
        batch.verify_crc().expect("crc");
        batch
            .records()
            .collect::<Result<Vec<_>, _>>()
            .expect("records")
    }

    fn with_batch_length(bytes: &[u8], total: usize) -> Vec<u8> {
        let mut b = bytes[..total.min(bytes.len())].to_vec();
        b.resize(total, 0);
        let len = i32::try_from(total - 12).unwrap();
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b
    }

    #[test]
    fn crc32c_is_castagnoli() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn encode_then_parse_field_by_field() {
        let big = vec![7u8; 300];
        let hs = [
            Header {
                key: "trace",
                value: Some(b"abc"),
            },
            Header {
                key: "",
                value: None,
            },
            Header {
                key: "trace",
                value: Some(b""),
            },
        ];
        let records = [
            Record::keyed(b"k1", b"v1").with_timestamp(NOW - 5),
            Record {
                key: None,
                value: None,
                headers: &hs,
                timestamp: None,
            },
            Record::keyed(b"", &big).with_timestamp(NOW - 100_000),
            Record::value(b"last").with_timestamp(NOW + 7),
        ];
        let opts = BatchOptions {
            producer: ProducerInfo {
                producer_id: 4242,
                producer_epoch: 9,
                base_sequence: 100,
            },
            transactional: true,
            control: false,
            log_append_time: false,
            partition_leader_epoch: 3,
        };
        let bytes = encode(1_000, &records, &opts);
        let batch = Batch::parse(&bytes).unwrap();
        let h = *batch.header();
        assert_eq!(h.base_offset, 1_000);
        assert_eq!(h.batch_length as usize, bytes.len() - 12);
        assert_eq!(h.total_len(), bytes.len());
        assert_eq!(h.partition_leader_epoch, 3);
        assert_eq!(h.magic, 2);
        assert_eq!(h.crc, crc32c::crc32c(&bytes[21..]));
        assert_eq!(h.attributes, 0x10);
        assert!(h.is_transactional());
        assert!(!h.is_control());
        assert!(!h.log_append_time());
        assert_eq!(h.compression(), 0);
        assert_eq!(h.last_offset_delta, 3);
        assert_eq!(h.last_offset(), 1_003);
        assert_eq!(h.next_offset(), 1_004);
        assert_eq!(h.base_timestamp, NOW - 5);
        assert_eq!(h.max_timestamp, NOW + 7);
        assert_eq!(h.producer(), opts.producer);
        assert_eq!(h.record_count, 4);
        assert_eq!(batch.bytes(), &bytes[..]);

        let v = views(&bytes);
        assert_eq!(v.len(), 4);
        let expect_ts = [NOW - 5, NOW, NOW - 100_000, NOW + 7];
        for (i, view) in v.iter().enumerate() {
            assert_eq!(view.offset, 1_000 + i as i64);
            assert_eq!(view.timestamp, expect_ts[i]);
            assert_eq!(view.key, records[i].key);
            assert_eq!(view.value, records[i].value);
            let got: Vec<HeaderView<'_>> = view.headers().collect();
            let want: Vec<HeaderView<'_>> = records[i]
                .headers
                .iter()
                .map(|h| HeaderView {
                    key: h.key,
                    value: h.value,
                })
                .collect();
            assert_eq!(got, want);
            assert_eq!(view.header_count(), want.len());
        }
        // A buffer longer than the batch: the batch is only its own bytes.
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[1, 2, 3]);
        let b2 = Batch::parse(&longer).unwrap();
        assert_eq!(b2.bytes(), &bytes[..]);
        assert_eq!(b2.records().count(), 4);
    }

    #[test]
    fn encoded_batch_len_matches() {
        assert_eq!(encoded_batch_len(&[], NOW), BATCH_HEADER_LEN);
        let key = [1u8; 16];
        let val = [2u8; 100];
        let recs: Vec<Record<'_>> = (0..1000).map(|_| Record::keyed(&key, &val)).collect();
        let len = encoded_batch_len(&recs, NOW);
        // Record: length(2) attrs(1) tsDelta(1) offsetDelta(1..2) key(1+16) value(2+100)
        // headers(1); offset deltas >= 64 take two bytes.
        let per = 2 + 1 + 1 + 1 + 17 + 102 + 1;
        assert_eq!(len, 61 + 1000 * per + (1000 - 64));
        let mut out = vec![0u8; len];
        let e = encode_batch(&mut out, 0, &recs, NOW, &BatchOptions::default());
        assert_eq!(e.len, len);
        assert_eq!(e.record_count, 1000);
        assert_eq!(e.last_offset_delta, 999);
        assert_eq!(views(&out).len(), 1000);
    }

    #[test]
    #[should_panic]
    fn encode_panics_on_short_buffer() {
        let recs = [Record::value(b"0123456789")];
        let len = encoded_batch_len(&recs, NOW);
        let mut out = vec![0u8; len - 1];
        encode_batch(&mut out, 0, &recs, NOW, &BatchOptions::default());
    }

    #[test]
    #[should_panic]
    fn encode_panics_on_no_records() {
        let mut out = vec![0u8; 100];
        encode_batch(&mut out, 0, &[], NOW, &BatchOptions::default());
    }

    /// One record, every byte written out by hand from the spec.
    #[test]
    fn known_answer_one_record() {
        let hs = [Header {
            key: "h",
            value: Some(b"v"),
        }];
        let recs = [Record::keyed(b"k", b"hello")
            .with_headers(&hs)
            .with_timestamp(1_700_000_000_000)];
        let opts = BatchOptions {
            producer: ProducerInfo {
                producer_id: 1000,
                producer_epoch: 3,
                base_sequence: 42,
            },
            transactional: true,
            partition_leader_epoch: 7,
            ..BatchOptions::default()
        };
        #[rustfmt::skip]
        let mut expected: Vec<u8> = vec![
            0, 0, 0, 0, 0, 0, 0, 5,             // baseOffset 5
            0, 0, 0, 66,                        // batchLength 78 - 12
            0, 0, 0, 7,                         // partitionLeaderEpoch 7
            2,                                  // magic
            0, 0, 0, 0,                         // crc, filled in below
            0x00, 0x10,                         // attributes: transactional
            0, 0, 0, 0,                         // lastOffsetDelta 0
            0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // baseTimestamp 1.7e12
            0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // maxTimestamp
            0, 0, 0, 0, 0, 0, 0x03, 0xe8,       // producerId 1000
            0, 3,                               // producerEpoch 3
            0, 0, 0, 42,                        // baseSequence 42
            0, 0, 0, 1,                         // recordsCount 1
            0x20,                               // record length 16 (zigzag 32)
            0x00,                               // attributes
            0x00,                               // timestampDelta 0
            0x00,                               // offsetDelta 0
            0x02, b'k',                         // key length 1, key
            0x0a, b'h', b'e', b'l', b'l', b'o', // value length 5, value
            0x02,                               // 1 header
            0x02, b'h',                         // header key length 1, key
            0x02, b'v',                         // header value length 1, value
        ];
        assert_eq!(expected.len(), 78);
        let crc = crc32c::crc32c(&expected[21..]);
        // The same value from an independent implementation (kafka-python's calc_crc32c).
        assert_eq!(crc, 0x457c_ea91);
        expected[17..21].copy_from_slice(&crc.to_be_bytes());

        assert_eq!(encode(5, &recs, &opts), expected);

        let v = views(&expected);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].offset, 5);
        assert_eq!(v[0].timestamp, 1_700_000_000_000);
        assert_eq!(v[0].key, Some(&b"k"[..]));
        assert_eq!(v[0].value, Some(&b"hello"[..]));
        assert_eq!(
            v[0].headers().collect::<Vec<_>>(),
            [HeaderView {
                key: "h",
                value: Some(b"v")
            }]
        );
    }

    /// Two records: null key, two-byte length, negative timestamp delta, null header
    /// value, empty key, default options (producer -1s).
    #[test]
    fn known_answer_two_records() {
        let val = [0xabu8; 100];
        let hs = [Header {
            key: "a",
            value: None,
        }];
        let recs = [
            Record::value(&val).with_timestamp(1000),
            Record {
                key: Some(b""),
                value: None,
                headers: &hs,
                timestamp: Some(999),
            },
        ];
        let mut expected: Vec<u8> = Vec::new();
        expected.extend_from_slice(&[0; 8]); // baseOffset 0
        expected.extend_from_slice(&[0, 0, 0, 168]); // batchLength 180 - 12
        expected.extend_from_slice(&[0; 4]); // partitionLeaderEpoch 0
        expected.push(2); // magic
        expected.extend_from_slice(&[0; 4]); // crc
        expected.extend_from_slice(&[0, 0]); // attributes
        expected.extend_from_slice(&[0, 0, 0, 1]); // lastOffsetDelta 1
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x03, 0xe8]); // baseTimestamp 1000
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x03, 0xe8]); // maxTimestamp 1000
        expected.extend_from_slice(&[0xff; 8]); // producerId -1
        expected.extend_from_slice(&[0xff; 2]); // producerEpoch -1
        expected.extend_from_slice(&[0xff; 4]); // baseSequence -1
        expected.extend_from_slice(&[0, 0, 0, 2]); // recordsCount 2
        assert_eq!(expected.len(), 61);
        // Record 0: length 107 (zigzag 214 = 0xd6 0x01).
        expected.extend_from_slice(&[0xd6, 0x01, 0x00, 0x00, 0x00]);
        expected.push(0x01); // key null (-1)
        expected.extend_from_slice(&[0xc8, 0x01]); // value length 100
        expected.extend_from_slice(&val);
        expected.push(0x00); // no headers
                             // Record 1: length 9.
        expected.extend_from_slice(&[0x12, 0x00]);
        expected.push(0x01); // timestampDelta -1
        expected.push(0x02); // offsetDelta 1
        expected.push(0x00); // key length 0
        expected.push(0x01); // value null
        expected.push(0x02); // 1 header
        expected.extend_from_slice(&[0x02, b'a']); // header key "a"
        expected.push(0x01); // header value null
        assert_eq!(expected.len(), 180);
        let crc = crc32c::crc32c(&expected[21..]);
        expected[17..21].copy_from_slice(&crc.to_be_bytes());

        assert_eq!(encode(0, &recs, &BatchOptions::default()), expected);
        let v = views(&expected);
        assert_eq!(v[1].timestamp, 999);
        assert_eq!(v[1].key, Some(&b""[..]));
        assert_eq!(v[1].value, None);
        assert_eq!(
            v[1].headers().collect::<Vec<_>>(),
            [HeaderView {
                key: "a",
                value: None
            }]
        );
    }

    #[test]
    fn flipped_byte_after_crc_field_fails_crc() {
        let hs = [Header {
            key: "x",
            value: Some(b"y"),
        }];
        let recs = [
            Record::keyed(b"key", b"value").with_headers(&hs),
            Record::value(b"second"),
        ];
        let bytes = encode(10, &recs, &BatchOptions::default());
        let mut checked = 0;
        for i in OFF_CRC..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= mask;
                match Batch::parse(&b) {
                    // Some header flips (negative counts) are caught before the CRC.
                    Err(_) => assert!((OFF_ATTRIBUTES..BATCH_HEADER_LEN).contains(&i)),
                    Ok(batch) => {
                        let err = batch.verify_crc().unwrap_err();
                        assert_eq!(err.at(), OFF_CRC, "byte {i}");
                        assert!(err.what().contains("CRC"), "{err}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 3 * (bytes.len() - OFF_CRC) - 10, "{checked}");
        // baseOffset and partitionLeaderEpoch are outside the CRC: rewriting them is free.
        let mut b = bytes.clone();
        b[0..8].copy_from_slice(&77i64.to_be_bytes());
        b[12..16].copy_from_slice(&(-5i32).to_be_bytes());
        let batch = Batch::parse(&b).unwrap();
        batch.verify_crc().unwrap();
        assert_eq!(batch.records().next().unwrap().unwrap().offset, 77);
    }

    #[test]
    fn truncation_at_every_length_is_an_error() {
        let hs = [Header {
            key: "hk",
            value: Some(b"hv"),
        }];
        let big = [3u8; 200];
        let recs = [
            Record::keyed(b"key", b"value").with_headers(&hs),
            Record::keyed(b"k2", &big).with_timestamp(5),
            Record::default(),
        ];
        let bytes = encode(0, &recs, &BatchOptions::default());
        for cut in 0..bytes.len() {
            let short = &bytes[..cut];
            assert!(Batch::parse(short).is_err(), "cut {cut}");
            assert!(BatchHeader::parse(short).is_err() == (cut < BATCH_HEADER_LEN));
            // The same cut with batchLength rewritten to match: the header parses, the
            // records do not.
            if cut >= BATCH_HEADER_LEN {
                let patched = with_batch_length(&bytes, cut);
                let batch = Batch::parse(&patched).unwrap();
                let results: Vec<_> = batch.records().collect();
                assert!(results.last().unwrap().is_err(), "cut {cut}: {results:?}");
                assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
            }
        }
    }

    #[test]
    fn header_checks() {
        let bytes = encode(0, &[Record::value(b"v")], &BatchOptions::default());
        let err_at = |mutate: &dyn Fn(&mut Vec<u8>)| {
            let mut b = bytes.clone();
            mutate(&mut b);
            let e = BatchHeader::parse(&b).unwrap_err();
            (e.at(), e.to_string())
        };
        assert_eq!(err_at(&|b| b[16] = 1).0, 16);
        assert!(err_at(&|b| b[16] = 1).1.contains("magic 1"));
        assert_eq!(
            err_at(&|b| b[8..12].copy_from_slice(&48i32.to_be_bytes())).0,
            8
        );
        assert_eq!(
            err_at(&|b| b[8..12].copy_from_slice(&(-1i32).to_be_bytes())).0,
            8
        );
        assert_eq!(
            err_at(&|b| b[23..27].copy_from_slice(&(-1i32).to_be_bytes())).0,
            23
        );
        assert_eq!(
            err_at(&|b| b[57..61].copy_from_slice(&(-1i32).to_be_bytes())).0,
            57
        );
        assert_eq!(
            err_at(&|b| b[0..8].copy_from_slice(&i64::MAX.to_be_bytes())).0,
            0
        );
        // An empty batch (count 0, as compaction can leave) is valid.
        let mut empty = with_batch_length(&bytes, BATCH_HEADER_LEN);
        empty[57..61].copy_from_slice(&0i32.to_be_bytes());
        assert_eq!(Batch::parse(&empty).unwrap().records().count(), 0);
    }

    #[test]
    fn compressed_batches_are_rejected_clearly() {
        let bytes = encode(0, &[Record::value(b"v")], &BatchOptions::default());
        for codec in 1..=7u8 {
            let mut b = bytes.clone();
            b[22] |= codec;
            let batch = Batch::parse(&b).unwrap();
            assert_eq!(batch.header().compression(), codec);
            let items: Vec<_> = batch.records().collect();
            assert_eq!(items.len(), 1);
            let e = items[0].clone().unwrap_err();
            assert_eq!(e.at(), OFF_ATTRIBUTES);
            assert!(e.what().contains("not supported"), "{e}");
        }
    }

    #[test]
    fn record_level_corruption_is_reported() {
        let hs = [Header {
            key: "ok",
            value: None,
        }];
        let recs = [Record::keyed(b"a", b"b").with_headers(&hs)];
        let bytes = encode(0, &recs, &BatchOptions::default());
        let first_err = |b: &[u8]| {
            Batch::parse(b)
                .unwrap()
                .records()
                .find_map(Result::err)
                .expect("an error")
        };
        // Record body: 61 len, 62 attrs, 63 tsDelta, 64 offsetDelta, 65 keyLen, 66 'a',
        // 67 valueLen, 68 'b', 69 count, 70 hkLen, 71 'o', 72 'k', 73 hvLen.
        assert_eq!(bytes.len(), 74);
        // Header key not UTF-8.
        let mut b = bytes.clone();
        b[71] = 0xff;
        let e = first_err(&b);
        assert_eq!(e.at(), 70);
        assert!(e.what().contains("UTF-8"));
        // Offset delta beyond lastOffsetDelta.
        let mut b = bytes.clone();
        b[64] = 0x02;
        assert_eq!(first_err(&b).at(), 64);
        // Key length < -1.
        let mut b = bytes.clone();
        b[65] = 0x03;
        assert_eq!(first_err(&b).at(), 65);
        // Record length too long for the batch.
        let mut b = bytes.clone();
        b[61] += 2;
        assert_eq!(first_err(&b).at(), 62);
        // Record length shorter than its contents.
        let mut b = bytes.clone();
        b[61] -= 2;
        assert!(Batch::parse(&b).unwrap().records().any(|r| r.is_err()));
        // One byte more in the record than its contents use.
        let mut b = bytes.clone();
        b[61] += 2;
        b.push(0);
        let b = with_batch_length(&b, b.len());
        let e = first_err(&b);
        assert!(e.what().contains("unread"), "{e}");
        // Trailing bytes after the last record.
        let mut b = bytes.clone();
        b.push(0);
        let b = with_batch_length(&b, b.len());
        let e = first_err(&b);
        assert_eq!(e.at(), 74);
        assert!(e.what().contains("after the last"), "{e}");
        // More records announced than present.
        let mut b = bytes.clone();
        b[57..61].copy_from_slice(&2i32.to_be_bytes());
        let e = first_err(&b);
        assert!(e.what().contains("1 of 2"), "{e}");
        // A negative header count.
        let mut b = bytes.clone();
        b[69] = 0x01;
        assert_eq!(first_err(&b).at(), 69);
    }

    #[test]
    fn offset_deltas_must_increase() {
        let recs = [Record::value(b"a"), Record::value(b"b")];
        let mut b = encode(0, &recs, &BatchOptions::default());
        // Second record starts at 61 + 1 + 7; its offsetDelta is at +3.
        assert_eq!(b[61], 0x0e);
        assert_eq!(b[69 + 3], 0x02);
        b[69 + 3] = 0x00;
        let items: Vec<_> = Batch::parse(&b).unwrap().records().collect();
        assert!(items[0].is_ok());
        assert_eq!(items[1].clone().unwrap_err().at(), 72);
    }

    #[test]
    fn log_append_time_reports_max_timestamp() {
        let recs = [
            Record::value(b"a").with_timestamp(10),
            Record::value(b"b").with_timestamp(-20),
            Record::value(b"c"),
        ];
        let opts = BatchOptions {
            log_append_time: true,
            ..BatchOptions::default()
        };
        let len = encoded_batch_len(&recs, NOW);
        let mut out = vec![0u8; len];
        let e = encode_batch(&mut out, 0, &recs, NOW, &opts);
        assert_eq!(e.base_timestamp, 10);
        assert_eq!(e.max_timestamp, NOW);
        let h = BatchHeader::parse(&out).unwrap();
        assert!(h.log_append_time());
        assert_eq!(h.attributes, 0x08);
        assert!(views(&out).iter().all(|v| v.timestamp == NOW));
        // Without the flag, each record keeps its own timestamp.
        let plain = encode(0, &recs, &BatchOptions::default());
        let ts: Vec<i64> = views(&plain).iter().map(|v| v.timestamp).collect();
        assert_eq!(ts, [10, -20, NOW]);
        assert_eq!(BatchHeader::parse(&plain).unwrap().max_timestamp, NOW);
    }

    #[test]
    fn extreme_timestamps_round_trip() {
        let recs = [
            Record::value(b"a").with_timestamp(i64::MAX),
            Record::value(b"b").with_timestamp(i64::MIN),
            Record::value(b"c").with_timestamp(0),
        ];
        let b = encode(0, &recs, &BatchOptions::default());
        let ts: Vec<i64> = views(&b).iter().map(|v| v.timestamp).collect();
        assert_eq!(ts, [i64::MAX, i64::MIN, 0]);
    }

    #[test]
    fn control_batch_round_trip() {
        for (kind, epoch) in [
            (ControlRecordType::Commit, 17),
            (ControlRecordType::Abort, 0),
            (ControlRecordType::Commit, i32::MAX),
        ] {
            let (key, value) = control_record(kind, epoch);
            assert_eq!(key, [0, 0, 0, kind as u8]);
            assert_eq!(value[..2], [0, 0]);
            assert_eq!(value[2..], epoch.to_be_bytes());
            let recs = [Record::keyed(&key, &value)];
            let opts = BatchOptions {
                producer: ProducerInfo {
                    producer_id: 5,
                    producer_epoch: 1,
                    base_sequence: -1,
                },
                transactional: true,
                control: true,
                ..BatchOptions::default()
            };
            let b = encode(99, &recs, &opts);
            let batch = Batch::parse(&b).unwrap();
            batch.verify_crc().unwrap();
            assert!(batch.header().is_control());
            assert!(batch.header().is_transactional());
            assert_eq!(batch.header().attributes, 0x30);
            assert_eq!(batch.control().unwrap(), (kind, epoch));
            let v = views(&b);
            assert_eq!(v[0].offset, 99);
            assert_eq!(v[0].key, Some(&key[..]));
        }
        // Not a control batch.
        let b = encode(0, &[Record::value(b"x")], &BatchOptions::default());
        assert!(Batch::parse(&b).unwrap().control().is_err());
        // A control batch with an unknown type or a short value.
        let opts = BatchOptions {
            control: true,
            ..BatchOptions::default()
        };
        let b = encode(0, &[Record::keyed(&[0, 0, 0, 9], &[0; 6])], &opts);
        let e = Batch::parse(&b).unwrap().control().unwrap_err();
        assert!(e.what().contains("type 9"), "{e}");
        let b = encode(0, &[Record::keyed(&[0, 0, 0, 1], &[0; 5])], &opts);
        assert!(Batch::parse(&b).unwrap().control().is_err());
        let b = encode(0, &[Record::value(&[0; 6])], &opts);
        assert!(Batch::parse(&b).unwrap().control().is_err());
    }

    #[test]
    fn decode_error_display() {
        let e = BatchHeader::parse(&[0; 10]).unwrap_err();
        assert_eq!(e.at(), 10);
        assert!(e.to_string().contains("at byte 10"), "{e}");
        let _: &dyn std::error::Error = &e;
    }
}
