//! The `batch_decode` target: arbitrary bytes into every decoder of on-disk bytes.

use crate::log::producer_state::{decode_snapshot, encode_snapshot, AbortedTxn};
use crate::record::batch::{encode_batch, encoded_batch_len, Batch, BatchHeader, BatchOptions};
use crate::record::{varint, Header, Record, RecordView, BATCH_HEADER_LEN};
use crate::{offsets, txn};

/// Feeds `data` to the batch decoder (as one batch and as a segment of batches back
/// to back), the varint readers, the control-record decoder, and the decoders of the
/// internal records (coordinator state, committed offsets), producer snapshots and
/// `.txnindex` entries. Nothing may panic; whatever decodes must encode back to
/// something that decodes to the same value.
pub fn batch_decode(data: &[u8]) {
    varints(data);
    walk_segment(data);
    internal_records(data);
}

/// Every varint and varlong at the start of each suffix of `data` round-trips.
fn varints(data: &[u8]) {
    for start in 0..data.len().min(16) {
        let rest = data.get(start..).unwrap_or_default();
        if let Some((v, n)) = varint::read_i32(rest) {
            assert!((1..=5).contains(&n), "varint of {n} bytes");
            let mut buf = [0u8; 5];
            let m = varint::write_i32(&mut buf, v);
            assert_eq!(m, varint::encoded_len_i32(v));
            assert!(m <= n, "the shortest encoding is not longer than the input");
            assert_eq!(varint::read_i32(&buf[..m]), Some((v, m)));
        }
        if let Some((v, n)) = varint::read_i64(rest) {
            assert!((1..=10).contains(&n), "varlong of {n} bytes");
            let mut buf = [0u8; 10];
            let m = varint::write_i64(&mut buf, v);
            assert_eq!(m, varint::encoded_len_i64(v));
            assert!(m <= n, "the shortest encoding is not longer than the input");
            assert_eq!(varint::read_i64(&buf[..m]), Some((v, m)));
        }
    }
}

/// Decodes batches back to back, as a reader walks a segment, stopping at the first
/// that does not parse.
fn walk_segment(data: &[u8]) {
    let mut rest = data;
    while let Ok(batch) = Batch::parse(rest) {
        one_batch(&batch);
        let len = batch.header().total_len();
        assert!(len >= BATCH_HEADER_LEN && len <= rest.len());
        rest = rest.get(len..).unwrap_or_default();
    }
    let _ = BatchHeader::parse(rest);
}

/// Decodes one batch whole; if every record decodes, encodes them again and checks
/// that the new batch decodes to the same records.
fn one_batch(batch: &Batch<'_>) {
    let h = *batch.header();
    let _ = batch.verify_crc();
    if let Ok((kind, epoch)) = batch.control() {
        assert!(h.is_control());
        let (key, value) = crate::record::control_record(kind, epoch);
        // A fresh marker with the decoded fields decodes to the same fields.
        let record = Record::keyed(&key, &value);
        let again = reencode(&[record], &h, true);
        let parsed = Batch::parse(&again).expect("a fresh control batch parses");
        assert_eq!(parsed.control().ok(), Some((kind, epoch)));
    }
    let mut views = Vec::new();
    for r in batch.records() {
        match r {
            Ok(v) => {
                assert_eq!(v.headers().count(), v.header_count());
                views.push(v);
            }
            Err(e) => {
                assert!(e.at() <= batch.bytes().len(), "error past the batch: {e}");
                return;
            }
        }
    }
    assert_eq!(views.len(), usize::try_from(h.record_count).unwrap_or(0));
    if views.is_empty() || h.is_control() {
        return;
    }
    let headers: Vec<Vec<Header<'_>>> = views
        .iter()
        .map(|v| {
            v.headers()
                .map(|x| Header {
                    key: x.key,
                    value: x.value,
                })
                .collect()
        })
        .collect();
    let records: Vec<Record<'_>> = views
        .iter()
        .zip(&headers)
        .map(|(v, hs)| Record {
            key: v.key,
            value: v.value,
            headers: hs,
            timestamp: Some(v.timestamp),
        })
        .collect();
    let again = reencode(&records, &h, false);
    let parsed = Batch::parse(&again).expect("a re-encoded batch parses");
    assert!(parsed.verify_crc().is_ok());
    let h2 = parsed.header();
    assert_eq!(
        (h2.base_offset, h2.producer(), h2.attributes),
        (h.base_offset, h.producer(), h.attributes & 0x18)
    );
    let dense = views
        .iter()
        .enumerate()
        .all(|(i, v)| v.offset == h.base_offset.wrapping_add(i as i64));
    let decoded: Vec<RecordView<'_>> = parsed
        .records()
        .collect::<Result<_, _>>()
        .expect("re-encoded records decode");
    assert_eq!(decoded.len(), views.len());
    for (a, b) in views.iter().zip(&decoded) {
        assert_eq!((a.key, a.value, a.timestamp), (b.key, b.value, b.timestamp));
        assert!(a.headers().eq(b.headers()));
        if dense {
            assert_eq!(a.offset, b.offset);
        }
    }
}

/// Encodes `records` as a batch with the header fields of `h` that an appender sets.
fn reencode(records: &[Record<'_>], h: &BatchHeader, control: bool) -> Vec<u8> {
    let opts = BatchOptions {
        producer: h.producer(),
        transactional: h.is_transactional(),
        control,
        log_append_time: h.log_append_time(),
        partition_leader_epoch: h.partition_leader_epoch,
    };
    // With LogAppendTime every record reads as maxTimestamp: append "now" is that.
    let now = h.max_timestamp;
    let len = encoded_batch_len(records, now);
    let mut out = vec![0u8; len];
    let e = encode_batch(&mut out, h.base_offset, records, now, &opts);
    assert_eq!(e.len, len);
    out
}

/// The internal records and files: coordinator state, committed offsets, producer
/// snapshots, `.txnindex` entries.
fn internal_records(data: &[u8]) {
    if let Some(id) = txn::decode_key(data) {
        let mut out = Vec::new();
        txn::encode_key(&id, &mut out);
        assert_eq!(out, data, "a coordinator key has one encoding");
    }
    if let Some(state) = txn::decode_value(data) {
        let mut out = Vec::new();
        txn::encode_value(&state, &mut out);
        assert_eq!(txn::decode_value(&out).as_ref(), Some(&state));
    }
    if let Some((group, topic, partition)) = offsets::decode_key(data) {
        let out = offsets::encode_key(&group, &topic, partition);
        assert_eq!(
            offsets::decode_key(&out),
            Some((group, topic, partition)),
            "an offset key round-trips"
        );
    }
    if let Some(c) = offsets::decode_value(data) {
        let out = offsets::encode_value(c.offset, &c.metadata, c.timestamp);
        assert_eq!(offsets::decode_value(&out), Some(c));
    }
    if let Some(entries) = decode_snapshot(data) {
        assert_eq!(
            encode_snapshot(&entries),
            data,
            "a snapshot has one encoding"
        );
    }
    for e in AbortedTxn::decode_all(data) {
        assert_eq!(AbortedTxn::decode_all(&e.encode()), [e]);
    }
}
