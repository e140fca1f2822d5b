"""make bench-python: the oncelog Python package against Python's built-in sqlite3,
doing the same work in the same run.

1,000,000 records of a 16-byte key and a 100-byte value (generated once, the same
objects for both sides), each workload on a fresh store or database in its own
directory under the system's temp directory:

* produce, one record per call: ``Producer.produce(topic, value, key)`` (default
  producer: idempotent, ``acks=written``; ``flush()`` inside the timing) against
  one ``INSERT`` per call, committed every 1,000 rows;
* batched: ``Producer.produce_batch(topic, chunk)`` with chunks of 1,000
  ``(key, value)`` tuples against ``executemany`` of the same chunk in one
  transaction;
* read, every key and value touched (``len``): ``Consumer.consume(1000)`` in a
  loop, and iterating ``for msg in consumer`` (``max.poll.records = 1000``, from
  offset 0) against ``SELECT key, value ... ORDER BY offset``.

sqlite3 runs in WAL mode with ``synchronous=NORMAL``: a commit survives the crash
of the process but not of the machine, as oncelog's ``acks=written``. Both tables
of the comparison are one partition / one table with the offset as the key.

Each workload runs ``--reps`` times (default 3), oncelog and sqlite3 alternating
which goes first; the table shows the best (and the median) in million records per
second and the ratio of the bests. Speed is reported, never asserted.

    python bench.py [--records N] [--reps R] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time

import oncelog

KEY_LEN, VALUE_LEN, CHUNK = 16, 100, 1000


def make_records(n: int) -> list:
    rng = random.Random(20250611)
    blob = rng.randbytes(VALUE_LEN + 4096)
    records = []
    for i in range(n):
        start = (i * 37) % 4096
        records.append((b"%016d" % i, blob[start : start + VALUE_LEN]))
    return records


# --- oncelog ----------------------------------------------------------------------


def oncelog_produce(records, root):
    store = oncelog.Store(os.path.join(root, "store"))
    store.create_topic("bench")
    producer = oncelog.Producer(store)
    produce = producer.produce
    t0 = time.perf_counter()
    for key, value in records:
        produce("bench", value, key)
    producer.flush()
    elapsed = time.perf_counter() - t0
    return elapsed, (store, producer)


def oncelog_batch(records, root, chunks):
    store = oncelog.Store(os.path.join(root, "store"))
    store.create_topic("bench")
    producer = oncelog.Producer(store)
    produce_batch = producer.produce_batch
    t0 = time.perf_counter()
    for chunk in chunks:
        produce_batch("bench", chunk)
    producer.flush()
    elapsed = time.perf_counter() - t0
    return elapsed, (store, producer)


def oncelog_filled(root, chunks):
    store = oncelog.Store(os.path.join(root, "store"))
    store.create_topic("bench")
    with oncelog.Producer(store) as producer:
        for chunk in chunks:
            producer.produce_batch("bench", chunk)
    consumer = oncelog.Consumer(store, {"auto.offset.reset": "earliest", "max.poll.records": CHUNK})
    consumer.assign([oncelog.TopicPartition("bench", 0)])
    return store, consumer


def oncelog_consume(n, root, chunks):
    store, consumer = oncelog_filled(root, chunks)
    consume = consumer.consume
    seen = total = 0
    t0 = time.perf_counter()
    while seen < n:
        msgs = consume(CHUNK, 5.0)
        if not msgs:
            raise RuntimeError(f"consume stopped after {seen} of {n}")
        for msg in msgs:
            total += len(msg.key) + len(msg.value)
        seen += len(msgs)
    elapsed = time.perf_counter() - t0
    assert total == n * (KEY_LEN + VALUE_LEN), total
    return elapsed, (store, consumer)


def oncelog_iterate(n, root, chunks):
    store, consumer = oncelog_filled(root, chunks)
    seen = total = 0
    t0 = time.perf_counter()
    for msg in consumer:
        total += len(msg.key) + len(msg.value)
        seen += 1
        if seen == n:
            break
    elapsed = time.perf_counter() - t0
    assert total == n * (KEY_LEN + VALUE_LEN), total
    return elapsed, (store, consumer)


# --- sqlite3 ----------------------------------------------------------------------


def sqlite_open(root):
    db = sqlite3.connect(os.path.join(root, "bench.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE log (offset INTEGER PRIMARY KEY, key BLOB, value BLOB)")
    return db


def sqlite_produce(records, root):
    db = sqlite_open(root)
    execute = db.execute
    insert = "INSERT INTO log (key, value) VALUES (?, ?)"
    t0 = time.perf_counter()
    execute("BEGIN")
    for i, (key, value) in enumerate(records, 1):
        execute(insert, (key, value))
        if i % CHUNK == 0:
            execute("COMMIT")
            execute("BEGIN")
    execute("COMMIT")
    elapsed = time.perf_counter() - t0
    return elapsed, (db,)


def sqlite_batch(records, root, chunks):
    db = sqlite_open(root)
    insert = "INSERT INTO log (key, value) VALUES (?, ?)"
    t0 = time.perf_counter()
    for chunk in chunks:
        db.execute("BEGIN")
        db.executemany(insert, chunk)
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    return elapsed, (db,)


def sqlite_read(n, root, chunks):
    db = sqlite_open(root)
    insert = "INSERT INTO log (key, value) VALUES (?, ?)"
    for chunk in chunks:
        db.execute("BEGIN")
        db.executemany(insert, chunk)
        db.execute("COMMIT")
    seen = total = 0
    t0 = time.perf_counter()
    for key, value in db.execute("SELECT key, value FROM log ORDER BY offset"):
        total += len(key) + len(value)
        seen += 1
    elapsed = time.perf_counter() - t0
    assert seen == n and total == n * (KEY_LEN + VALUE_LEN), (seen, total)
    return elapsed, (db,)


# --- the run ------------------------------------------------------------------------


def measure(fn, *args):
    """Runs one repetition in a fresh directory; returns seconds. The files are
    removed before the handles close, so that no shutdown sync or writeback of this
    repetition runs under the next one."""
    root = tempfile.mkdtemp(prefix="oncelog-bench-py-")
    try:
        elapsed, handles = fn(*args, root)
        shutil.rmtree(root, ignore_errors=True)
        for h in reversed(handles):
            try:
                h.close()
            except oncelog.OncelogError:
                pass  # the clean shutdown finds its files gone: as intended
        return elapsed
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    n = args.records
    records = make_records(n)
    chunks = [records[i : i + CHUNK] for i in range(0, n, CHUNK)]
    workloads = [
        ("produce, one record per call", "produce() / INSERT",
         lambda root: oncelog_produce(records, root), lambda root: sqlite_produce(records, root)),
        ("produce_batch, 1,000 per call", "produce_batch() / executemany",
         lambda root: oncelog_batch(records, root, chunks), lambda root: sqlite_batch(records, root, chunks)),
        ("consume(1000), every key and value", "consume() / SELECT",
         lambda root: oncelog_consume(n, root, chunks), lambda root: sqlite_read(n, root, chunks)),
        ("for msg in consumer, every key and value", "iteration / SELECT",
         lambda root: oncelog_iterate(n, root, chunks), lambda root: sqlite_read(n, root, chunks)),
    ]
    load_before = os.getloadavg()[0]
    results = []
    for name, short, ours, theirs in workloads:
        times = {"oncelog": [], "sqlite3": []}
        for rep in range(args.reps):
            order = [("oncelog", ours), ("sqlite3", theirs)]
            if rep % 2:
                order.reverse()
            for side, fn in order:
                times[side].append(measure(fn))
        rate = {side: [n / t / 1e6 for t in ts] for side, ts in times.items()}
        results.append({
            "workload": name,
            "short": short,
            "oncelog_best": max(rate["oncelog"]),
            "oncelog_median": statistics.median(rate["oncelog"]),
            "sqlite3_best": max(rate["sqlite3"]),
            "sqlite3_median": statistics.median(rate["sqlite3"]),
            "ratio": max(rate["oncelog"]) / max(rate["sqlite3"]),
        })
    load_after = os.getloadavg()[0]
    info = {
        "records": n,
        "reps": args.reps,
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "oncelog": oncelog.__version__,
        "cores": os.cpu_count(),
        "load_average_before_after": [round(load_before, 2), round(load_after, 2)],
    }
    if args.json:
        print(json.dumps({"info": info, "results": results}, indent=2))
        return 0
    print(f"bench-python: {n:,} records of {KEY_LEN}+{VALUE_LEN} bytes, best (median) of {args.reps}, "
          f"Python {info['python']}, SQLite {info['sqlite']}, {info['cores']} cores, "
          f"load average {load_before:.2f} before, {load_after:.2f} after")
    print()
    print("| workload | oncelog, M rec/s | sqlite3 (WAL), M rec/s | oncelog / sqlite3 |")
    print("| --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['workload']} | {r['oncelog_best']:.2f} ({r['oncelog_median']:.2f}) "
              f"| {r['sqlite3_best']:.2f} ({r['sqlite3_median']:.2f}) | {r['ratio']:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
