//! Property tests of every encoder/decoder pair of the crate that the public tests
//! cannot reach (`tests/record_roundtrip.rs` covers record batches): varints, control
//! records, coordinator state records, committed-offset records, index entries,
//! `.txnindex` entries, producer snapshots, the recovery checkpoint. Each value
//! round-trips; a cut or damaged encoding is rejected or decodes to something, and
//! never panics.

use proptest::prelude::*;

use crate::log::checkpoint;
use crate::log::index::{IndexKind, IndexMap, OffsetEntry, TimeEntry};
use crate::log::producer_state::{
    decode_snapshot, encode_snapshot, AbortedTxn, BatchSeq, ProducerEntry, BATCHES_PER_PRODUCER,
};
use crate::record::{
    control_record, encode_batch, encoded_batch_len, varint, Batch, BatchOptions,
    ControlRecordType, ProducerInfo, Record,
};
use crate::txn::{TxnState, TxnStatus};
use crate::{offsets, txn};

/// Kafka strings: empty, short, any UTF-8, and the longest that fit (32767 bytes),
/// of one- and two-byte characters. Longer ones are refused before they are encoded
/// (`wire::check_str`; `tests/strings_too_long_for_the_log.rs`).
fn kafka_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9._-]{0,20}",
        2 => any::<String>(),
        1 => Just("é".repeat(crate::wire::MAX_STR_LEN / 2) + "a"),
        1 => Just("a".repeat(crate::wire::MAX_STR_LEN)),
    ]
}

fn status() -> impl Strategy<Value = TxnStatus> {
    prop_oneof![
        Just(TxnStatus::Empty),
        Just(TxnStatus::Ongoing),
        Just(TxnStatus::PrepareCommit),
        Just(TxnStatus::PrepareAbort),
        Just(TxnStatus::CompleteCommit),
        Just(TxnStatus::CompleteAbort),
    ]
}

fn txn_state() -> impl Strategy<Value = TxnState> {
    (
        (any::<i64>(), any::<i16>(), any::<i32>(), status()),
        proptest::collection::btree_set(("[a-z_]{1,12}", 0u32..=i32::MAX as u32), 0..5),
        (any::<i64>(), any::<i64>(), any::<i64>()),
    )
        .prop_map(
            |((producer_id, epoch, timeout_ms, status), partitions, (started, updated, owner))| {
                TxnState {
                    producer_id,
                    epoch,
                    timeout_ms,
                    status,
                    partitions,
                    started_ms: started,
                    updated_ms: updated,
                    owner,
                }
            },
        )
}

fn producer_entry() -> impl Strategy<Value = ProducerEntry> {
    let batch = (any::<i32>(), any::<i32>(), any::<i64>(), any::<i64>()).prop_map(
        |(first_seq, last_seq, base_offset, last_offset)| BatchSeq {
            first_seq,
            last_seq,
            base_offset,
            last_offset,
        },
    );
    (
        any::<i64>(),
        any::<i16>(),
        proptest::collection::vec(batch, 0..=BATCHES_PER_PRODUCER),
        any::<i64>(),
    )
        .prop_map(
            |(producer_id, epoch, batches, txn_first_offset)| ProducerEntry {
                producer_id,
                epoch,
                batches,
                txn_first_offset,
            },
        )
}

/// `bytes` with a few bytes overwritten and maybe cut short.
fn damage(
    mut bytes: Vec<u8>,
    edits: &[(prop::sample::Index, u8)],
    cut: Option<prop::sample::Index>,
) -> Vec<u8> {
    if !bytes.is_empty() {
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = *b;
        }
    }
    if let Some(cut) = cut {
        bytes.truncate(cut.index(bytes.len() + 1));
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, u8)>> {
    proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn varints_round_trip_and_reject_cut_encodings(v32 in any::<i32>(), v64 in any::<i64>()) {
        let mut buf = [0u8; 10];
        let n = varint::write_i32(&mut buf, v32);
        prop_assert_eq!(n, varint::encoded_len_i32(v32));
        prop_assert_eq!(varint::read_i32(&buf[..n]), Some((v32, n)));
        prop_assert_eq!(varint::read_i32(&buf[..n - 1]), None);
        let n = varint::write_i64(&mut buf, v64);
        prop_assert_eq!(n, varint::encoded_len_i64(v64));
        prop_assert_eq!(varint::read_i64(&buf[..n]), Some((v64, n)));
        prop_assert_eq!(varint::read_i64(&buf[..n - 1]), None);
    }

    #[test]
    fn varint_readers_take_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
        if let Some((_, n)) = varint::read_i32(&bytes) {
            prop_assert!((1..=5).contains(&n) && n <= bytes.len());
        }
        if let Some((_, n)) = varint::read_i64(&bytes) {
            prop_assert!((1..=10).contains(&n) && n <= bytes.len());
        }
    }

    #[test]
    fn control_batches_round_trip(
        commit in any::<bool>(),
        coordinator_epoch in any::<i32>(),
        producer_id in 0i64..i64::MAX,
        producer_epoch in 0i16..i16::MAX,
        base_offset in 0i64..1 << 50,
        edits in edits(),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let kind = if commit { ControlRecordType::Commit } else { ControlRecordType::Abort };
        let (key, value) = control_record(kind, coordinator_epoch);
        let records = [Record::keyed(&key, &value).with_timestamp(1_700_000_000_000)];
        let opts = BatchOptions {
            producer: ProducerInfo { producer_id, producer_epoch, base_sequence: -1 },
            transactional: true,
            control: true,
            ..BatchOptions::default()
        };
        let mut bytes = vec![0u8; encoded_batch_len(&records, 0)];
        encode_batch(&mut bytes, base_offset, &records, 0, &opts);
        let batch = Batch::parse(&bytes).expect("a marker parses");
        prop_assert!(batch.verify_crc().is_ok());
        prop_assert!(batch.header().is_control() && batch.header().is_transactional());
        prop_assert_eq!(batch.header().producer(), opts.producer);
        prop_assert_eq!(batch.control(), Ok((kind, coordinator_epoch)));
        let damaged = damage(bytes, &edits, cut);
        if let Ok(batch) = Batch::parse(&damaged) {
            let _ = batch.control();
            let _ = batch.records().count();
        }
    }

    #[test]
    fn coordinator_records_round_trip(
        state in txn_state(),
        id in kafka_string(),
        edits in edits(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut value = Vec::new();
        txn::encode_value(&state, &mut value);
        prop_assert_eq!(txn::decode_value(&value), Some(state));
        let cut_at = cut.index(value.len());
        prop_assert_eq!(txn::decode_value(&value[..cut_at]), None, "cut at {}", cut_at);
        let _ = txn::decode_value(&damage(value, &edits, None));
        let mut key = Vec::new();
        txn::encode_key(&id, &mut key);
        prop_assert_eq!(txn::decode_key(&key), Some(id));
        let _ = txn::decode_key(&damage(key, &edits, Some(cut)));
    }

    #[test]
    fn committed_offset_records_round_trip(
        group in kafka_string(),
        topic in "[a-zA-Z0-9._-]{1,40}",
        partition in 0u32..=i32::MAX as u32,
        offset in any::<i64>(),
        metadata in kafka_string(),
        timestamp in any::<i64>(),
        edits in edits(),
        cut in any::<prop::sample::Index>(),
    ) {
        let key = offsets::encode_key(&group, &topic, partition);
        prop_assert_eq!(offsets::decode_key(&key), Some((group, topic, partition)));
        let value = offsets::encode_value(offset, &metadata, timestamp);
        let decoded = offsets::decode_value(&value).expect("a value decodes");
        prop_assert_eq!(
            (decoded.offset, decoded.metadata, decoded.timestamp),
            (offset, metadata, timestamp)
        );
        let cut_at = cut.index(value.len());
        prop_assert!(offsets::decode_value(&value[..cut_at]).is_none());
        let _ = offsets::decode_key(&damage(key, &edits, Some(cut)));
        let _ = offsets::decode_value(&damage(value, &edits, None));
    }

    #[test]
    fn snapshots_round_trip_and_reject_damage(
        entries in proptest::collection::vec(producer_entry(), 0..6),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = encode_snapshot(&entries);
        prop_assert_eq!(decode_snapshot(&bytes), Some(entries));
        let cut_at = cut.index(bytes.len());
        prop_assert_eq!(decode_snapshot(&bytes[..cut_at]), None);
        // Flipping bits (xor with a non-zero byte) is caught by the CRC.
        let mut flipped = bytes.clone();
        for (at, x) in &edits {
            let i = at.index(flipped.len());
            flipped[i] ^= x;
        }
        if flipped != bytes {
            prop_assert_eq!(decode_snapshot(&flipped), None);
        }
    }

    #[test]
    fn txnindex_entries_round_trip(
        raw in proptest::collection::vec(any::<(i64, i64, i64, i64)>(), 0..6),
        torn in 0usize..34,
    ) {
        let entries: Vec<AbortedTxn> = raw
            .iter()
            .map(|&(producer_id, first_offset, last_offset, last_stable_offset)| AbortedTxn {
                producer_id,
                first_offset,
                last_offset,
                last_stable_offset,
            })
            .collect();
        let mut bytes: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
        bytes.extend(std::iter::repeat_n(0xab, torn));
        prop_assert_eq!(AbortedTxn::decode_all(&bytes), entries);
    }

    #[test]
    fn index_entries_round_trip(
        base in 0i64..1 << 50,
        offsets in proptest::collection::btree_set(0i32..i32::MAX, 1..20),
        positions in proptest::collection::vec(any::<u32>(), 20),
        timestamps in proptest::collection::vec(any::<i64>(), 20),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let maps = [IndexKind::Offset, IndexKind::Time].map(|kind| {
            let path = dir.path().join(format!("{kind:?}"));
            let file = std::fs::OpenOptions::new()
                .read(true).write(true).create(true).truncate(true)
                .open(&path).unwrap();
            file.set_len((offsets.len() * kind.entry_len()) as u64).unwrap();
            IndexMap::map(kind, base, file, &path, true).unwrap()
        });
        let [index, time_index] = &maps;
        let offsets: Vec<i64> = offsets.iter().map(|&o| base + i64::from(o)).collect();
        for (i, &offset) in offsets.iter().enumerate() {
            let e = OffsetEntry { offset, position: positions[i] };
            prop_assert!(index.write_offset_entry(i, e));
            let t = TimeEntry { timestamp: timestamps[i], offset };
            prop_assert!(time_index.write_time_entry(i, t));
        }
        let past_the_end = OffsetEntry { offset: base, position: 0 };
        prop_assert!(!index.write_offset_entry(offsets.len(), past_the_end), "the file is full");
        for (i, &offset) in offsets.iter().enumerate() {
            prop_assert_eq!(index.offset_entry(i), Some(OffsetEntry { offset, position: positions[i] }));
            prop_assert_eq!(time_index.time_entry(i), Some(TimeEntry { timestamp: timestamps[i], offset }));
            prop_assert_eq!(index.lookup_offset(offsets.len(), offset).map(|e| e.offset), Some(offset));
        }
        prop_assert_eq!(index.offset_entry(offsets.len()), None);
        prop_assert_eq!(index.lookup_offset(offsets.len(), base - 1), None);
    }

    #[test]
    fn checkpoints_round_trip_and_garbage_is_an_error(
        offset in 0i64..=i64::MAX,
        garbage in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let dir = tempfile::tempdir().unwrap();
        checkpoint::write(dir.path(), offset).unwrap();
        prop_assert_eq!(checkpoint::read(dir.path()).unwrap(), Some(offset));
        std::fs::write(checkpoint::path(dir.path()), &garbage).unwrap();
        if let Ok(Some(read)) = checkpoint::read(dir.path()) {
            prop_assert!(read >= 0);
        }
    }
}
