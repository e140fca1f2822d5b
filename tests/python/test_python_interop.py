"""C, Rust and Python processes share one store at the same time.

At once: the C example producer (examples/c/producer.c, built against the installed
library) and a Python process write the topic "greetings"; a Rust process (the
testkit's `append` role) writes self-checking records to "rust-to-py" while a Python
process writes the same kind of records to "py-to-rust". Meanwhile the C example
consumer reads "greetings" (C's and Python's records), a Rust process (the testkit's
`read` role) verifies every record Python wrote, and this test reads "greetings"
and verifies every record the Rust process wrote.

Builds what it needs: the C library (scripts/install.sh into target/python-interop)
and the testkit binary (cargo, debug, as `cargo test` built it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import testkit_payload as payload
from conftest import REPO, Proc, cargo

import oncelog
from oncelog import TopicPartition

COUNT = 3000
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
PY_WRITER, RUST_WRITER = 9, 7


def run(cmd, **kwargs):
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kwargs)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def c_programs():
    """The C example producer and consumer, built against the installed library."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.fail("no C compiler (cc) on PATH: this test builds the C examples")
    prefix = TARGET / "python-interop"
    run(["bash", "scripts/install.sh", "--debug", str(prefix)])
    out = {}
    for name in ("producer", "consumer"):
        exe = prefix / name
        run([cc, "-std=c11", "-O1", "-I", prefix / "include", "-o", exe, REPO / "examples" / "c" / f"{name}.c",
             "-L", prefix / "lib", "-loncelog", "-pthread", f"-Wl,-rpath,{prefix / 'lib'}"])
        out[name] = exe
    return out


@pytest.fixture(scope="module")
def testkit():
    run([cargo(), "build", "--locked", "--quiet", "-p", "oncelog-testkit", "--bin", "oncelog-testkit"])
    exe = TARGET / "debug" / "oncelog-testkit"
    assert exe.is_file(), exe
    return exe


PYTHON_WRITER = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
import oncelog, testkit_payload as payload
with oncelog.Store(sys.argv[1]) as store, oncelog.Producer(store) as p:
    print("ready", flush=True)
    for i in range({COUNT}):
        p.produce("greetings", f"python number {{i}}".encode(), key=f"py-{{i % 4}}".encode())
        p.produce("py-to-rust", payload.value({PY_WRITER}, i, 40 + i % 50), key=payload.key({PY_WRITER}, i))
        if i % 500 == 0:
            time.sleep(0.01)  # let the other writers interleave
    p.produce("py-to-rust", payload.STOP, key=payload.STOP)
print("done", flush=True)
"""


def test_c_rust_and_python_share_a_store_at_the_same_time(tmp_path, c_programs, testkit):
    store_dir = tmp_path / "store"
    with oncelog.Store(store_dir) as store:
        store.create_topic("greetings", partitions=3)
        store.create_topic("rust-to-py")
        store.create_topic("py-to-rust")

    def rust(role, topic, *args):
        return Proc(f"rust {role}", [str(testkit), role, "--store", str(store_dir), "--topic", topic, *args],
                    env={k: v for k, v in os.environ.items() if k != "ONCELOG_FAILPOINTS"})

    # Readers first, so that they read while the writers write.
    rust_reader = rust("read", "py-to-rust", "--timeout-ms", "120000")
    rust_reader.expect("ready")
    c_consumer = Proc("C consumer", [str(c_programs["consumer"]), str(store_dir), "c-readers", str(2 * COUNT)])
    py_consumer = oncelog.Consumer(store_dir, {"auto.offset.reset": "earliest"})
    py_consumer.assign([TopicPartition("greetings", p) for p in range(3)] + [TopicPartition("rust-to-py", 0)])
    writers = [
        Proc("C producer", [str(c_programs["producer"]), str(store_dir), str(COUNT)]),
        rust("append", "rust-to-py", "--id", str(RUST_WRITER), "--count", str(COUNT), "--batch", "7"),
        Proc("Python producer", [sys.executable, "-c", PYTHON_WRITER, str(store_dir)]),
    ]
    greetings, from_rust = [], []
    while len(greetings) < 2 * COUNT or len(from_rust) < COUNT:
        batch = py_consumer.consume(1000, 30)
        if not batch:
            reports = "\n".join(w.report() for w in writers)
            pytest.fail(f"Python read {len(greetings)} greetings and {len(from_rust)} Rust records, then nothing\n{reports}")
        for m in batch:
            (from_rust if m.topic == "rust-to-py" else greetings).append(m)
    py_consumer.close()
    for w in writers:
        assert w.finish(120) == 0, w.report()

    # Python read every record of C and of Python in "greetings", each partition in order.
    values = sorted(m.value for m in greetings)
    want = sorted([f"hello number {i}".encode() for i in range(COUNT)] +
                  [f"python number {i}".encode() for i in range(COUNT)])
    assert values == want
    # ... and verified every record Rust wrote: whole, its own, dense, in order.
    seqs = []
    for m in from_rust:
        writer, seq = payload.classify(m.key, m.value)
        assert writer == RUST_WRITER
        seqs.append(seq)
    assert seqs == list(range(COUNT))
    assert [m.offset for m in from_rust] == list(range(COUNT))

    # C read every record of C and of Python.
    assert c_consumer.finish(120) == 0, c_consumer.report()
    c_lines = [line for line in c_consumer.lines if line.startswith("greetings-")]
    assert sorted(line.split(": ", 1)[1].encode() for line in c_lines) == want

    # Rust verified every record Python wrote (self-checks, dense offsets) up to the stop.
    assert rust_reader.finish(120) == 0, rust_reader.report()
    recs = [line.split() for line in rust_reader.lines if line.startswith("rec ")]
    assert [(int(r[2]), int(r[3])) for r in recs] == [(PY_WRITER, i) for i in range(COUNT)]
    for r in recs[:50]:
        i = int(r[3])
        assert r[4] == payload.digest(payload.key(PY_WRITER, i), payload.value(PY_WRITER, i, 40 + i % 50))
    assert rust_reader.lines[-1].startswith(f"done {COUNT} ")
