//! Property tests of the RecordBatch v2 codec: whatever records go in come back out, and
//! no input bytes, however malformed, make the decoder panic.

use oncelog::record::{
    encode_batch, encoded_batch_len, Batch, BatchHeader, BatchOptions, HeaderView, OwnedRecord,
    ProducerInfo, BATCH_HEADER_LEN,
};
use proptest::prelude::*;

/// Null, empty, short, and occasionally long (multi-byte length varint) byte strings.
fn bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Vec::new())),
        6 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Some),
        1 => proptest::collection::vec(any::<u8>(), 60..400).prop_map(Some),
        1 => (9_000usize..20_000).prop_map(|n| Some(vec![0x5a; n])),
    ]
}

fn timestamp() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        1 => Just(None),
        4 => (1_600_000_000_000i64..1_800_000_000_000).prop_map(Some),
        2 => (-1_000i64..1_000).prop_map(Some),
        1 => any::<i64>().prop_map(Some),
    ]
}

fn header() -> impl Strategy<Value = (String, Option<Vec<u8>>)> {
    (
        prop_oneof![Just(String::new()), "[a-z.-]{1,12}", any::<String>()],
        bytes(),
    )
}

fn record() -> impl Strategy<Value = OwnedRecord> {
    (
        bytes(),
        bytes(),
        proptest::collection::vec(header(), 0..5),
        timestamp(),
    )
        .prop_map(|(key, value, headers, timestamp)| OwnedRecord {
            key,
            value,
            headers,
            timestamp,
        })
}

fn options() -> impl Strategy<Value = BatchOptions> {
    (
        prop_oneof![
            Just(ProducerInfo::NONE),
            (any::<i64>(), any::<i16>(), any::<i32>()).prop_map(|(id, epoch, seq)| {
                ProducerInfo {
                    producer_id: id,
                    producer_epoch: epoch,
                    base_sequence: seq,
                }
            }),
        ],
        any::<bool>(),
        any::<bool>(),
        any::<i32>(),
    )
        .prop_map(
            |(producer, transactional, log_append_time, epoch)| BatchOptions {
                producer,
                transactional,
                control: false,
                log_append_time,
                partition_leader_epoch: epoch,
            },
        )
}

/// Encodes owned records into a fresh buffer.
fn encode(owned: &[OwnedRecord], base_offset: i64, now_ms: i64, opts: &BatchOptions) -> Vec<u8> {
    let headers = OwnedRecord::header_views(owned);
    let records = OwnedRecord::views(owned, &headers);
    let len = encoded_batch_len(&records, now_ms);
    let mut out = vec![0u8; len];
    let e = encode_batch(&mut out, base_offset, &records, now_ms, opts);
    assert_eq!(e.len, len);
    assert_eq!(e.record_count as usize, records.len());
    out
}

/// Drives every decoder entry point; only panics (not errors) fail the caller.
fn decode_everything(bytes: &[u8]) {
    let _ = BatchHeader::parse(bytes);
    if let Ok(batch) = Batch::parse(bytes) {
        let _ = batch.verify_crc();
        let _ = batch.control();
        let h = batch.header();
        let _ = (
            h.total_len(),
            h.last_offset(),
            h.next_offset(),
            h.producer(),
        );
        for r in batch.records() {
            match r {
                Ok(view) => {
                    let n = view.headers().count();
                    assert_eq!(n, view.header_count());
                }
                Err(e) => {
                    assert!(e.at() <= bytes.len());
                    let _ = e.to_string();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_parse_records_round_trip(
        owned in proptest::collection::vec(record(), 1..50),
        base_offset in prop_oneof![Just(0i64), 0i64..1 << 40, (i64::MAX - 1_000)..(i64::MAX - 50)],
        now_ms in prop_oneof![Just(1_700_000_000_000i64), any::<i64>()],
        opts in options(),
    ) {
        let bytes = encode(&owned, base_offset, now_ms, &opts);
        let batch = Batch::parse(&bytes).expect("parse");
        prop_assert!(batch.verify_crc().is_ok());
        let h = *batch.header();
        prop_assert_eq!(h.total_len(), bytes.len());
        prop_assert_eq!(h.base_offset, base_offset);
        prop_assert_eq!(h.record_count as usize, owned.len());
        prop_assert_eq!(h.last_offset_delta as usize, owned.len() - 1);
        prop_assert_eq!(h.producer(), opts.producer);
        prop_assert_eq!(h.partition_leader_epoch, opts.partition_leader_epoch);
        prop_assert_eq!(h.is_transactional(), opts.transactional);
        prop_assert_eq!(h.log_append_time(), opts.log_append_time);
        prop_assert!(!h.is_control());
        prop_assert_eq!(h.compression(), 0);

        let timestamps: Vec<i64> = owned.iter().map(|r| r.timestamp.unwrap_or(now_ms)).collect();
        prop_assert_eq!(h.base_timestamp, timestamps[0]);
        let max = if opts.log_append_time { now_ms } else { *timestamps.iter().max().unwrap() };
        prop_assert_eq!(h.max_timestamp, max);

        let views = batch.records().collect::<Result<Vec<_>, _>>().expect("records");
        prop_assert_eq!(views.len(), owned.len());
        for (i, (v, r)) in views.iter().zip(&owned).enumerate() {
            prop_assert_eq!(v.offset, base_offset + i as i64);
            let ts = if opts.log_append_time { now_ms } else { timestamps[i] };
            prop_assert_eq!(v.timestamp, ts);
            prop_assert_eq!(v.key, r.key.as_deref());
            prop_assert_eq!(v.value, r.value.as_deref());
            prop_assert_eq!(v.header_count(), r.headers.len());
            let got: Vec<HeaderView<'_>> = v.headers().collect();
            let want: Vec<HeaderView<'_>> = r
                .headers
                .iter()
                .map(|(k, val)| HeaderView { key: k, value: val.as_deref() })
                .collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        decode_everything(&bytes);
    }

    /// Random bytes behind a header that parses, so the record decoder sees them.
    #[test]
    fn arbitrary_records_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..400),
        count in prop_oneof![0i32..8, any::<i32>()],
        last_offset_delta in prop_oneof![0i32..8, any::<i32>()],
        attributes in prop_oneof![Just(0i16), any::<i16>()],
        base_offset in any::<i64>(),
    ) {
        let mut b = vec![0u8; BATCH_HEADER_LEN];
        b[0..8].copy_from_slice(&base_offset.to_be_bytes());
        let len = i32::try_from(BATCH_HEADER_LEN - 12 + tail.len()).unwrap();
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[16] = 2;
        b[21..23].copy_from_slice(&attributes.to_be_bytes());
        b[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        b.extend_from_slice(&tail);
        decode_everything(&b);
    }

    /// Valid batches with a few bytes overwritten and optionally truncated.
    #[test]
    fn mutated_batches_never_panic(
        owned in proptest::collection::vec(record(), 1..6),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = encode(&owned, 0, 1_700_000_000_000, &BatchOptions::default());
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        decode_everything(&bytes);
    }
}
