"""kafka-python, an independent Kafka client, reads the segments written through
the Python package: every record produced (one by one, in bulk, in transactions;
with and without keys, values, headers and timestamps) is found, field by field,
in the `.log` files parsed with kafka-python's own RecordBatch classes."""

from __future__ import annotations

import pytest
from test_kafka_python_reads_segments import parse_segment

import oncelog

EVERY_BYTE = bytes(range(256))


def expected_records():
    """(key, value, headers, timestamp or None) in the order they are produced."""
    recs = []
    for i in range(40):
        key = None if i % 7 == 0 else f"key-{i}".encode()
        value = None if i % 11 == 5 else (EVERY_BYTE if i == 3 else f"value {i}".encode() * (i % 4 + 1))
        headers = [("trace", f"t{i}".encode()), ("empty", b""), ("null", None)] if i % 5 == 0 else []
        timestamp = 1_600_000_000_000 + i if i % 3 == 0 else None
        recs.append((key, value, headers, timestamp))
    return recs


def test_kafka_python_reads_what_python_wrote(tmp_path):
    store_dir = tmp_path / "store"
    recs = expected_records()
    with oncelog.Store(store_dir) as store:
        # Small segments, so several files are parsed.
        store.create_topic("py", config={"segment.bytes": 4096, "retention.ms": -1})
        with oncelog.Producer(store) as p:
            for key, value, headers, ts in recs[:20]:
                p.produce("py", value, key=key, headers=headers or None, timestamp=ts, partition=0)
            p.produce_batch("py", recs[20:30], partition=0)
        with oncelog.Producer(store, {"transactional.id": "kp"}) as tp:
            tp.init_transactions()
            with tp.transaction():
                for key, value, headers, ts in recs[30:]:
                    tp.produce("py", value, key=key, headers=headers or None, timestamp=ts, partition=0)
    partition_dir = store_dir / "py-0"
    logs = sorted(p for p in partition_dir.iterdir() if p.suffix == ".log")
    assert len(logs) >= 2, "expected several segments"
    batches = [b for path in logs for b in parse_segment(path).batches]
    data = [b for b in batches if not b.is_control_batch]
    records = [r for b in data for r in b.records]
    assert len(records) == len(recs)
    for i, (r, (key, value, headers, ts)) in enumerate(zip(records, recs)):
        where = f"record {i} ({r.file} byte {r.pos})"
        assert r.offset == i, where
        assert r.key == key, where
        assert r.value == value, where
        assert [(k, v) for k, v in r.headers] == headers, where
        if ts is not None:
            assert r.timestamp == ts, where
    # Idempotent batches carry a producer id; the transaction's are transactional
    # and end with a COMMIT control batch.
    assert all(b.producer_id >= 0 for b in data)
    assert [b.is_transactional for b in data][-1] is True
    assert any(b.is_control_batch for b in batches)
    # The bulk call made one batch of its ten records.
    assert any(b.records_count == 10 for b in data)
