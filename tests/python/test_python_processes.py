"""Python processes that crash: a consume-transform-produce loop (the exactly-once
example) killed with SIGKILL 50 times leaves exactly one copy of every input record
for a read_committed reader; a consumer group of three processes survives the death
of one, losing nothing, and under exactly-once processing nothing twice."""

from __future__ import annotations

import random
import signal
import sys
import time
from collections import Counter

import pytest
from conftest import REPO, Proc, first_with

import oncelog
from oncelog import TopicPartition

EXAMPLES = REPO / "examples" / "python"
SEED = 20250611


def exactly_once(store_dir, *args: str, name="exactly_once") -> Proc:
    cmd = [sys.executable, str(EXAMPLES / "exactly_once.py"), str(store_dir), *args]
    return Proc(name, cmd)


def committed_values(store_dir, topic, partitions, committed=True):
    level = "read_committed" if committed else "read_uncommitted"
    with oncelog.Store(store_dir) as store:
        c = oncelog.Consumer(store, {"auto.offset.reset": "earliest", "isolation.level": level})
        c.assign([TopicPartition(topic, p) for p in range(partitions)])
        out = []
        while True:
            batch = c.consume(10_000, 0.5)
            if not batch:
                break
            out.extend(m.value for m in batch)
        c.close()
    return out


def test_a_python_pipeline_killed_50_times_outputs_every_input_exactly_once(tmp_path):
    inputs, kills_wanted = 30_000, 50
    store_dir = tmp_path / "store"
    with oncelog.Store(store_dir) as store:
        store.create_topic("in")
        store.create_topic("out", partitions=2)
        with oncelog.Producer(store) as p:
            p.produce_batch("in", [f"in {i}".encode() for i in range(inputs)])
    rng = random.Random(SEED)
    args = ["--input", "in", "--output", "out", "--group", "g", "--transactional-id", "t", "--max-poll", "10"]
    kills = 0
    while kills < kills_wanted:
        child = exactly_once(store_dir, *args, "--idle", "0", name=f"run {kills}")
        child.expect("ready")
        time.sleep(rng.uniform(0, 0.006))
        child.kill()
        code = child.finish()
        assert code == -signal.SIGKILL, child.report()
        kills += 1
    last = exactly_once(store_dir, *args, "--idle", "1", name="last run")
    assert last.finish(120) == 0, last.report()
    assert last.lines[-1].startswith("transformed"), last.report()
    assert int(last.lines[-1].split()[1]) > 0, "the input did not outlast the kills (raise it)"

    values = committed_values(store_dir, "out", 2)
    counts = Counter(values)
    missing = [i for i in range(inputs) if f"IN {i}".encode() not in counts]
    twice = [v for v, n in counts.items() if n > 1]
    assert not missing, f"lost {len(missing)}: {missing[:20]}"
    assert not twice, f"processed twice: {twice[:20]}"
    assert len(values) == inputs
    # The kills interrupted transactions: their records are in the log, aborted.
    everything = committed_values(store_dir, "out", 2, committed=False)
    assert len(everything) > inputs, "no transaction was ever interrupted: the test proved nothing"


def test_an_exactly_once_group_of_three_survives_the_death_of_one(tmp_path):
    partitions, per_partition = 6, 4000
    store_dir = tmp_path / "store"
    with oncelog.Store(store_dir) as store:
        store.create_topic("in", partitions=partitions)
        store.create_topic("out")
        with oncelog.Producer(store) as p:
            for part in range(partitions):
                p.produce_batch("in", [f"{part}:{i}".encode() for i in range(per_partition)], partition=part)
    members = [
        exactly_once(store_dir, "--input", "in", "--output", "out", "--group", "g",
                     "--transactional-id", f"member-{i}", "--max-poll", "5", "--idle", "3",
                     name=f"member {i}")
        for i in range(3)
    ]
    for m in members:
        m.expect("ready")
    # Kill one mid-stream: the first to commit a transaction (whichever the group
    # gave partitions to first).
    victim = first_with(members, "committed")
    victim.kill()
    assert victim.finish() == -signal.SIGKILL
    survivors = [m for m in members if m is not victim]
    for m in survivors:
        assert m.finish(180) == 0, m.report()
    assert sum(int(m.lines[-1].split()[1]) for m in survivors) > 0
    values = committed_values(store_dir, "out", 1)
    counts = Counter(values)
    want = {f"{p}:{i}".upper().encode() for p in range(partitions) for i in range(per_partition)}
    missing = want - set(counts)
    twice = [v for v, n in counts.items() if n > 1]
    assert not missing, f"lost {len(missing)}: {sorted(missing)[:20]}"
    assert not twice, f"processed twice: {twice[:20]}"
    assert len(values) == partitions * per_partition


def test_an_at_least_once_group_of_three_loses_nothing_when_one_dies(tmp_path):
    per_partition = 5000
    store_dir = tmp_path / "store"
    with oncelog.Store(store_dir) as store:
        store.create_topic("greetings", partitions=3)
        with oncelog.Producer(store) as p:
            for part in range(3):
                p.produce_batch("greetings", [f"{part}:{i}".encode() for i in range(per_partition)], partition=part)
    cmd = [sys.executable, str(EXAMPLES / "consumer.py"), str(store_dir), "readers"]
    members = [Proc(f"consumer {i}", cmd) for i in range(3)]
    for m in members:
        m.expect("ready")
    victim = first_with(members, "greetings-")
    victim.kill()
    victim.finish()
    for m in members:
        if m is not victim:
            assert m.finish(120) == 0, m.report()
    processed = set()
    for m in members:
        for line in m.lines:
            if line.startswith("greetings-"):
                processed.add(line.split(": ", 1)[1])
    want = {f"{p}:{i}" for p in range(3) for i in range(per_partition)}
    assert want <= processed, f"lost {len(want - processed)}"
