"""The Python examples run as a user runs them (examples/python): the producer, a
consumer group member (at-least-once: a second run finds nothing new) and the
exactly-once pipeline (a second run transforms nothing)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

import oncelog
from oncelog import TopicPartition

EXAMPLES = REPO / "examples" / "python"


def example(name, *args):
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout.splitlines()


def test_the_examples_run(tmp_path):
    store = tmp_path / "store"
    out = example("producer.py", store, 20)
    assert out[-1] == "produced 20 records"
    assert sum(" -> greetings-" in line for line in out) == 20
    assert example("consumer.py", store, "readers")[-1] == "consumed 20 messages"
    assert example("consumer.py", store, "readers")[-1] == "consumed 0 messages"
    assert example("exactly_once.py", store, "--idle", "0.5")[-1] == "transformed 20 messages"
    assert example("exactly_once.py", store, "--idle", "0.5")[-1] == "transformed 0 messages"
    with oncelog.Consumer(store, {"auto.offset.reset": "earliest", "isolation.level": "read_committed"}) as c:
        c.assign([TopicPartition("greetings-upper", 0)])
        values = sorted(m.value for m in c.consume(100, 1.0))
    assert values == sorted(f"HELLO NUMBER {i}".encode() for i in range(20))
