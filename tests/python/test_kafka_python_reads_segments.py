"""kafka-python, an independent Kafka client, reads the segments oncelog writes.

DESIGN.md promises that "our files must parse with an independent Kafka RecordBatch
parser (kafka-python's `kafka.record` is one)". The Rust example
core/examples/kafka_fixture.rs writes topic `interop` with small segments and a varied
set of batches, closes the store, and writes a manifest of every record as appended.
Here every `.log` file is parsed with kafka-python's own classes (MemoryRecords to
frame the batches, DefaultRecordBatch to decode them and check their CRC-32C) and
compared, field by field, with the manifest. A disagreement is reported with the
file, the byte offset and the field, so it can be traced to a line of the encoder.
"""

from __future__ import annotations

import re
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import kafka
import pytest
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.memory_records import MemoryRecords
from kafka.record.util import calc_crc32c, size_of_varint

LOG_NAME = re.compile(r"^(\d{20})\.log$")
BATCH_HEADER_LEN = 61  # RecordBatch v2 header, baseOffset through recordCount
CRC_POS = 17  # byte position of the CRC in a batch header
ATTRIBUTES_POS = 21  # the CRC covers the batch from here to its end


def test_the_pinned_kafka_python_is_the_one_tested():
    # scripts/requirements-test.txt pins it; the parser classes used here are its own.
    assert kafka.__version__ == "3.0.12"


@dataclass
class Rec:
    """One record as kafka-python decoded it, with where it lies in its file."""

    file: str
    pos: int  # byte offset of the record's length varint in the file
    batch_pos: int
    offset: int
    timestamp: int
    timestamp_type: int
    key: bytes | None
    value: bytes | None
    headers: list


@dataclass
class Batch:
    """One batch header as kafka-python decoded it."""

    file: str
    pos: int
    size: int
    base_offset: int
    last_offset: int
    records_count: int
    leader_epoch: int
    magic: int
    attributes: int
    first_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    timestamp_type: int
    compression_type: int
    is_transactional: bool
    is_control_batch: bool
    records: list


@dataclass
class Segment:
    path: Path
    base: int
    size: int
    batches: list


def parse_segment(path: Path) -> Segment:
    """Parses one whole `.log` file with kafka-python; fails on the first disagreement."""
    data = path.read_bytes()
    name = path.name
    memory = MemoryRecords(data)
    batches = []
    pos = 0
    while memory.has_next():
        where = f"{name} byte {pos}"
        batch = memory.next_batch()
        assert isinstance(batch, DefaultRecordBatch), (
            f"{where}: magic byte (byte {pos + 16}) is {data[pos + 16]}, "
            f"kafka-python parsed a {type(batch).__name__}; expected RecordBatch v2"
        )
        # Must be called before iterating (kafka-python asserts so).
        if not batch.validate_crc():
            computed = calc_crc32c(memoryview(data)[pos + ATTRIBUTES_POS : pos + batch.size_in_bytes])
            pytest.fail(
                f"{where}: CRC field (bytes {pos + CRC_POS}..{pos + CRC_POS + 4}) holds "
                f"{batch.crc:#010x}; kafka-python computes {computed:#010x} over bytes "
                f"{pos + ATTRIBUTES_POS}..{pos + batch.size_in_bytes}"
            )
        records = []
        rec_pos = pos + BATCH_HEADER_LEN
        try:
            for r in batch:
                records.append(
                    Rec(
                        file=name,
                        pos=rec_pos,
                        batch_pos=pos,
                        offset=r.offset,
                        timestamp=r.timestamp,
                        timestamp_type=r.timestamp_type,
                        key=r.key,
                        value=r.value,
                        headers=list(r.headers),
                    )
                )
                rec_pos += size_of_varint(r.size_in_bytes) + r.size_in_bytes
        except (CorruptRecordError, UnicodeDecodeError) as e:
            pytest.fail(
                f"{where}: kafka-python cannot decode record {len(records)} of the batch "
                f"(at or after byte {rec_pos}): {e}"
            )
        assert rec_pos == pos + batch.size_in_bytes, (
            f"{where}: records end at byte {rec_pos}, the batch length field (bytes "
            f"{pos + 8}..{pos + 12}) says {pos + batch.size_in_bytes}"
        )
        batches.append(
            Batch(
                file=name,
                pos=pos,
                size=batch.size_in_bytes,
                base_offset=batch.base_offset,
                last_offset=batch.last_offset,
                records_count=batch.records_count,
                leader_epoch=batch.leader_epoch,
                magic=batch.magic,
                attributes=batch.attributes,
                first_timestamp=batch.first_timestamp,
                max_timestamp=batch.max_timestamp,
                producer_id=batch.producer_id,
                producer_epoch=batch.producer_epoch,
                base_sequence=batch.base_sequence,
                timestamp_type=batch.timestamp_type,
                compression_type=batch.compression_type,
                is_transactional=batch.is_transactional,
                is_control_batch=batch.is_control_batch,
                records=records,
            )
        )
        pos += batch.size_in_bytes
    # MemoryRecords stops quietly at a partial batch; a clean close leaves none.
    assert pos == len(data) and memory.valid_bytes() == len(data), (
        f"{name}: kafka-python reads whole batches up to byte {pos} of {len(data)}; "
        f"the tail from byte {pos} is not a batch: {data[pos:pos + 16].hex()}..."
    )
    m = LOG_NAME.match(name)
    assert m, name
    return Segment(path=path, base=int(m.group(1)), size=len(data), batches=batches)


@pytest.fixture(scope="module")
def parsed(kafka_fixture):
    partition_dir, manifest = kafka_fixture
    logs = sorted(p for p in partition_dir.iterdir() if p.suffix == ".log")
    assert logs, f"no .log files in {partition_dir}"
    return partition_dir, manifest, [parse_segment(p) for p in logs]


def test_the_fixture_covers_the_edge_cases(kafka_fixture):
    """The manifest must keep every case the fixture promises, or the test proves less."""
    partition_dir, manifest = kafka_fixture
    records = manifest["records"]
    batches = manifest["batches"]
    every_byte = bytes(range(256)).hex()
    headers = [h for r in records for h in r["headers"]]
    header_keys = [k for k, _ in headers]
    cases = {
        "null key": any(r["key"] is None for r in records),
        "null value": any(r["value"] is None for r in records),
        "empty key": any(r["key"] == "" for r in records),
        "empty value": any(r["value"] == "" for r in records),
        "every byte in a value": any(r["value"] == every_byte for r in records),
        "every byte in a key": any(r["key"] == every_byte for r in records),
        "repeated header key in one record": any(
            len({k for k, _ in r["headers"]}) < len(r["headers"]) for r in records
        ),
        "empty header value": any(v == "" for _, v in headers),
        "null header value": any(v is None for _, v in headers),
        "empty header key": "" in header_keys,
        "non-ASCII header key": any(not k.isascii() for k in header_keys),
        "timestamp 0": any(r["timestamp"] == 0 for r in records),
        "single-record batch": any(b["record_count"] == 1 for b in batches),
        "batch of more than 64 records": any(b["record_count"] > 64 for b in batches),
        "producer identity": any(b["producer_id"] >= 0 for b in batches),
        "non-zero leader epoch": any(b["leader_epoch"] != 0 for b in batches),
    }
    by_offset = {r["offset"]: r for r in records}
    negative_delta = False
    for b in batches:
        ts = [by_offset[o]["timestamp"] for o in range(b["base_offset"], b["last_offset"] + 1)]
        negative_delta |= any(t < ts[0] for t in ts[1:])
    cases["negative timestamp delta in a batch"] = negative_delta
    missing = [name for name, ok in cases.items() if not ok]
    assert not missing, f"kafka_fixture no longer writes: {missing}"
    logs = [p for p in partition_dir.iterdir() if p.suffix == ".log"]
    assert len(logs) >= 3, f"expected several segments, got {len(logs)}"


def test_segment_files_are_named_by_their_first_offset_with_their_indexes(parsed):
    partition_dir, manifest, segments = parsed
    names = sorted(p.name for p in partition_dir.iterdir())
    for seg in segments:
        stem = seg.path.name[: -len(".log")]
        assert LOG_NAME.match(seg.path.name), f"{seg.path.name}: not a 20-digit base offset"
        for ext in (".index", ".timeindex", ".txnindex"):
            assert f"{stem}{ext}" in names, f"{stem}{ext} missing beside {seg.path.name}"
        if seg.batches:
            first = seg.batches[0]
            assert first.base_offset == seg.base, (
                f"{seg.path.name}: named for offset {seg.base}, but its first batch "
                f"(byte 0, baseOffset field bytes 0..8) starts at offset {first.base_offset}"
            )
    # Only the last (active) segment may be empty, and then it starts at the end.
    for seg in segments[:-1]:
        assert seg.batches, f"{seg.path.name}: a sealed segment with no batch"
    if not segments[-1].batches:
        assert segments[-1].base == manifest["end_offset"]
    # Every segment starts where the one before it ended: no gap, no overlap.
    end = 0
    for seg in segments:
        assert seg.base == end, f"{seg.path.name}: starts at {seg.base}, previous segment ended at {end}"
        for b in seg.batches:
            assert b.base_offset == end, (
                f"{b.file} byte {b.pos}: batch baseOffset {b.base_offset}, expected {end}"
            )
            end = b.last_offset + 1
    assert end == manifest["end_offset"]


def test_every_batch_header_matches_what_was_appended(parsed):
    _, manifest, segments = parsed
    batches = [b for seg in segments for b in seg.batches]
    want = {b["base_offset"]: b for b in manifest["batches"]}
    assert sorted(b.base_offset for b in batches) == sorted(want), (
        "the batches kafka-python found are not the batches appended"
    )
    for b in batches:
        w = want[b.base_offset]
        where = f"{b.file} byte {b.pos} (batch at offset {b.base_offset})"
        got = {
            "magic (byte +16)": b.magic,
            "compression, attributes bits 0-2 (bytes +21..+23)": b.compression_type,
            "timestampType, attributes bit 3": b.timestamp_type,
            "isTransactional, attributes bit 4": b.is_transactional,
            "isControlBatch, attributes bit 5": b.is_control_batch,
            "lastOffsetDelta (bytes +23..+27) as last offset": b.last_offset,
            "recordCount (bytes +57..+61)": b.records_count,
            "records decoded": len(b.records),
            "partitionLeaderEpoch (bytes +12..+16)": b.leader_epoch,
            "maxTimestamp (bytes +35..+43)": b.max_timestamp,
            "producerId (bytes +43..+51)": b.producer_id,
            "producerEpoch (bytes +51..+53)": b.producer_epoch,
            "baseSequence (bytes +53..+57)": b.base_sequence,
        }
        expected = {
            "magic (byte +16)": 2,
            "compression, attributes bits 0-2 (bytes +21..+23)": 0,
            "timestampType, attributes bit 3": 0,
            "isTransactional, attributes bit 4": False,
            "isControlBatch, attributes bit 5": False,
            "lastOffsetDelta (bytes +23..+27) as last offset": w["last_offset"],
            "recordCount (bytes +57..+61)": w["record_count"],
            "records decoded": w["record_count"],
            "partitionLeaderEpoch (bytes +12..+16)": w["leader_epoch"],
            "maxTimestamp (bytes +35..+43)": w["max_timestamp"],
            "producerId (bytes +43..+51)": w["producer_id"],
            "producerEpoch (bytes +51..+53)": w["producer_epoch"],
            "baseSequence (bytes +53..+57)": w["base_sequence"],
        }
        for field, value in expected.items():
            assert got[field] == value, f"{where}: {field} is {got[field]!r}, appended {value!r}"
        # Kafka's rules for a CreateTime batch: baseTimestamp is the first record's
        # timestamp and maxTimestamp the largest.
        stamps = [r.timestamp for r in b.records]
        assert b.first_timestamp == stamps[0], (
            f"{where}: baseTimestamp (bytes +27..+35) is {b.first_timestamp}, "
            f"the first record's timestamp is {stamps[0]}"
        )
        assert b.max_timestamp == max(stamps), (
            f"{where}: maxTimestamp (bytes +35..+43) is {b.max_timestamp}, "
            f"the largest record timestamp is {max(stamps)}"
        )


def test_every_record_reads_back_exactly_as_appended_and_once(parsed):
    _, manifest, segments = parsed
    want = {r["offset"]: r for r in manifest["records"]}
    assert len(want) == len(manifest["records"]), "duplicate offsets in the manifest"
    seen = {}
    for seg in segments:
        for b in seg.batches:
            for r in b.records:
                where = f"{r.file} byte {r.pos} (record at offset {r.offset}, batch at byte {r.batch_pos})"
                assert r.offset not in seen, f"{where}: offset {r.offset} also at {seen[r.offset]}"
                seen[r.offset] = where
                assert r.offset in want, f"{where}: offset {r.offset} was never appended"
                w = want[r.offset]
                fields = {
                    "key": (r.key, None if w["key"] is None else bytes.fromhex(w["key"])),
                    "value": (r.value, None if w["value"] is None else bytes.fromhex(w["value"])),
                    "headers": (
                        r.headers,
                        [(k, None if v is None else bytes.fromhex(v)) for k, v in w["headers"]],
                    ),
                    "timestamp (baseTimestamp + timestampDelta)": (r.timestamp, w["timestamp"]),
                    "timestamp type": (r.timestamp_type, 0),
                }
                for field, (got, expected) in fields.items():
                    assert got == expected, (
                        f"{where}: {field}: kafka-python read {got!r}, appended {expected!r}"
                    )
    missing = sorted(set(want) - set(seen))
    assert not missing, f"appended but not found by kafka-python: offsets {missing[:20]}"
    assert len(seen) == len(want) == manifest["end_offset"]


def read_entries(path: Path, fmt: str) -> list:
    data = path.read_bytes()
    size = struct.calcsize(fmt)
    assert len(data) % size == 0, (
        f"{path.name}: {len(data)} bytes is not a whole number of {size}-byte entries "
        "(Kafka refuses to open such an index)"
    )
    return [struct.unpack_from(fmt, data, i) for i in range(0, len(data), size)]


def test_offset_and_time_indexes_point_where_kafka_expects(parsed):
    """Kafka's `.index` maps a batch's last offset (relative to the segment base) to the
    batch's byte position; `.timeindex` maps the largest timestamp so far to the last
    offset of the batch that holds it, and ends with the segment's largest timestamp
    (Kafka appends that entry when a segment is sealed or closed)."""
    partition_dir, _, segments = parsed
    for seg in segments:
        stem = seg.path.name[: -len(".log")]
        by_pos = {b.pos: b for b in seg.batches}
        by_last = {b.last_offset: b for b in seg.batches}
        index = read_entries(partition_dir / f"{stem}.index", ">iI")
        prev = (-1, -1)
        for i, (rel, position) in enumerate(index):
            where = f"{stem}.index entry {i} (byte {8 * i})"
            assert (rel, position) > prev and rel > prev[0] and position > prev[1], (
                f"{where}: ({rel}, {position}) does not increase after {prev}"
            )
            prev = (rel, position)
            assert position in by_pos, f"{where}: position {position} is not a batch start in {seg.path.name}"
            b = by_pos[position]
            assert seg.base + rel == b.last_offset, (
                f"{where}: relative offset {rel} (offset {seg.base + rel}) but the batch at "
                f"byte {position} ends at offset {b.last_offset}"
            )
        times = read_entries(partition_dir / f"{stem}.timeindex", ">qi")
        if not seg.batches:
            continue
        running = {}
        highest = None
        for b in seg.batches:
            highest = b.max_timestamp if highest is None else max(highest, b.max_timestamp)
            running[b.last_offset] = highest
        assert times, f"{stem}.timeindex is empty for a segment with batches"
        prev_ts = None
        for i, (ts, rel) in enumerate(times):
            where = f"{stem}.timeindex entry {i} (byte {12 * i})"
            offset = seg.base + rel
            assert offset in by_last, f"{where}: offset {offset} is not the last offset of a batch"
            assert by_last[offset].max_timestamp == ts == running[offset], (
                f"{where}: timestamp {ts} at offset {offset}; that batch's maxTimestamp is "
                f"{by_last[offset].max_timestamp}, the largest so far {running[offset]}"
            )
            assert prev_ts is None or ts > prev_ts, f"{where}: timestamp {ts} does not increase after {prev_ts}"
            prev_ts = ts
        assert times[-1][0] == highest, (
            f"{stem}.timeindex: last entry has timestamp {times[-1][0]}, the segment's largest is {highest}"
        )
        txn = partition_dir / f"{stem}.txnindex"
        assert txn.stat().st_size == 0, f"{txn.name}: no transaction was aborted, yet it is not empty"


def test_a_flipped_byte_fails_kafka_pythons_crc_check(parsed, tmp_path):
    """The CRC check above can fail: flip one byte of a record and kafka-python sees it."""
    _, _, segments = parsed
    seg = next(s for s in segments if len(s.batches) >= 2)
    target = seg.batches[1]
    copy = tmp_path / seg.path.name
    shutil.copyfile(seg.path, copy)
    data = bytearray(copy.read_bytes())
    flip_at = target.pos + BATCH_HEADER_LEN + (target.size - BATCH_HEADER_LEN) // 2
    data[flip_at] ^= 0x01
    copy.write_bytes(data)

    results = [b.validate_crc() for b in MemoryRecords(bytes(copy.read_bytes()))]
    assert len(results) == len(seg.batches)
    assert results[1] is False, f"flipping byte {flip_at} of {copy.name} left its batch's CRC valid"
    assert all(ok for i, ok in enumerate(results) if i != 1), "the other batches must still check"
    # And the untouched original still checks whole.
    assert all(b.validate_crc() for b in MemoryRecords(seg.path.read_bytes()))
